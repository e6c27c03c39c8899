"""Pruning and int8 together: bytes and accuracy side by side with each alone (Learn 16, §7)."""
import numpy as np

from refquant import nn, prune
from refquant.data import load_digits
from refquant.evaluate import model_bytes
from refquant.models import load_reference_model
from refquant.prune.sparse import to_bitmask, to_csr, to_nm
from refquant.ptq import quantize_static

x_train, y_train = load_digits("train")
x_test, y_test = load_digits("test")
x_calibration = x_train[:512]
PROFILE = "pytorch_fbgemm"                   # int8 per-channel symmetric weights: a pruned weight is the code 0


def pruned_mlp(make_masks):
    """The MLP pruned with make_masks(model) and fine-tuned 3 epochs with the masks kept (Adam, lr 1e-3)."""
    model = load_reference_model("mlp")
    masks = make_masks(model)
    opt = nn.Adam(model, lr=1e-3)
    with prune.apply_masks(model, masks, optimizer=opt):
        nn.fit(model, x_train, y_train, epochs=3, batch_size=32, optimizer=opt, seed=0, progress=False)
    return model


def stored_bytes(total, weights, fmt):
    """`total` bytes with each dense weight replaced by its sparse format's bytes (scales, biases unchanged)."""
    if fmt == "dense":
        return total
    store = {"CSR": to_csr, "bitmask": to_bitmask, "2:4": lambda w, **kw: to_nm(w, 2, 4, **kw)}[fmt]
    return total - sum(w.nbytes for w in weights) + sum(store(w).nbytes for w in weights)


variants = {"float": lambda: load_reference_model("mlp"),
            "magnitude 50 %": lambda: pruned_mlp(lambda m: prune.magnitude_masks(m, 0.5, scope="global")),
            "2:4": lambda: pruned_mlp(lambda m: prune.nm_masks(m, 2, 4)),
            "magnitude 80 %": lambda: pruned_mlp(lambda m: prune.magnitude_masks(m, 0.8, scope="global")),
            "magnitude 90 %": lambda: pruned_mlp(lambda m: prune.magnitude_masks(m, 0.9, scope="global"))}
print("| model | weights | zeros (weights) | top-1 | dense B | CSR B | bitmask B | 2:4 B |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
rows = {}
for label, build in variants.items():
    model = build()
    qmodel = quantize_static(model, x_calibration, profile=PROFILE)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    as_float = [m.weight.value for m in layers]                       # (O, K) float32
    as_int8 = [n.params["weight"] for n in qmodel if "weight" in n.params]   # (O, K) int8 codes, Z = 0
    for kind, weights, total, top1 in (
            ("float32", as_float, model_bytes(model), nn.evaluate(model, x_test, y_test)),
            ("int8", as_int8, qmodel.nbytes, float(np.mean(qmodel.run(x_test).argmax(axis=1) == y_test)))):
        zeros = sum(int(np.count_nonzero(w == 0)) for w in weights) / sum(w.size for w in weights)
        is_24 = all(prune.check_nm(w, 2, 4) for w in weights)
        sizes = {fmt: stored_bytes(total, weights, fmt) for fmt in ("dense", "CSR", "bitmask")}
        sizes["2:4"] = stored_bytes(total, weights, "2:4") if is_24 else None
        rows[label, kind] = (top1, sizes)
        print(f"| {label} | {kind} | {100 * zeros:.1f} % | {100 * top1:.2f} % | "
              + " | ".join("—" if v is None else f"{v:,}" for v in sizes.values()) + " |")

best = {key: min(v for v in sizes.values() if v is not None) for key, (_, sizes) in rows.items()}
print(f"smallest: float {best['float', 'float32']:,} B, int8 alone {best['float', 'int8']:,} B, "
      f"90 % alone {best['magnitude 90 %', 'float32']:,} B, 90 % + int8 {best['magnitude 90 %', 'int8']:,} B")
assert rows["float", "int8"][1]["dense"] == rows["magnitude 90 %", "int8"][1]["dense"]   # §1: zeros cost bytes
assert best["magnitude 90 %", "int8"] < best["magnitude 90 %", "float32"] < best["float", "float32"]
assert best["magnitude 90 %", "int8"] < best["float", "int8"] / 2                        # the two multiply
for label in variants:                                                 # int8 costs at most 3 images here
    assert abs(rows[label, "int8"][0] - rows[label, "float32"][0]) <= 3 / y_test.size + 1e-9
assert abs(rows["2:4", "int8"][1]["2:4"] - rows["2:4", "int8"][1]["bitmask"]) <= 8     # int8: K/8 bytes either way
