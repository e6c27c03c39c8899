"""Magnitude against random masks, per layer and global, before any fine-tuning (Learn 16, §2)."""
from refquant import nn, prune
from refquant.data import load_digits
from refquant.models import load_reference_model

# 1. By hand: a 2x4 Linear weight at sparsity 0.5 keeps k = round(8 * 0.5) = 4 weights (eqs. (2)-(3)).
tiny = nn.Sequential(nn.Linear(4, 2, rng=0))
tiny[0].weight.value[:] = [[0.5, -0.1, 0.3, -0.5],
                           [0.2, 0.5, -0.3, 0.05]]                    # |w| = 0.5 three times: a tie
mask = prune.magnitude_masks(tiny, 0.5)["0"]
print(mask.astype(int).tolist())
assert mask.tolist() == [[True, False, True, True], [False, True, False, False]]   # 0.5, 0.5, 0.5, then 0.3 (first)
assert prune.kept_count(8, 0.5) == 4 and prune.kept_count(9, 0.5) == 4            # 4.5 rounds to even
assert prune.kept_count(10, 0.85) == 1 and prune.kept_count(15, 0.9) == 2          # float32: 1.4999998, 1.5000004

# 2. The bundled MLP and CNN, each pruned and measured on the 359 test images with no fine-tuning.
x_test, y_test = load_digits("test")
techniques = {
    "magnitude, layer": lambda m, s: prune.magnitude_masks(m, s, scope="layer"),
    "magnitude, global": lambda m, s: prune.magnitude_masks(m, s, scope="global"),
    "random, layer": lambda m, s: prune.random_masks(m, s, seed=0),
}
top1, spread = {}, {}
print("| model | sparsity | " + " | ".join(techniques) + " | layers' sparsity, global |")
print("|---|---|" + "---:|" * len(techniques) + "---|")
for name in ("mlp", "cnn"):
    float_top1 = nn.evaluate(load_reference_model(name), x_test, y_test)
    print(f"| {name} | 0 % | " + " | ".join([f"{100 * float_top1:.2f} %"] * len(techniques)) + " | |")
    for s in (0.5, 0.7, 0.9):
        cells = []
        for technique, make in techniques.items():
            model = load_reference_model(name)
            prune.apply_masks(model, make(model, s)).remove()          # zero the pruned weights
            top1[name, s, technique] = nn.evaluate(model, x_test, y_test)
            cells.append(f"{100 * top1[name, s, technique]:.2f} %")
            if technique == "magnitude, global":
                spread[name, s] = prune.sparsity(model).layers        # {layer: fraction of zeros}
        layers = ", ".join(f"{k}: {100 * v:.0f} %" for k, v in spread[name, s].items())
        print(f"| {name} | {100 * s:.0f} % | " + " | ".join(cells) + f" | {layers} |")

for (name, s, technique), value in top1.items():                      # global beats layer beats random
    if technique == "magnitude, global":
        assert value >= max(top1[name, s, "magnitude, layer"], top1[name, s, "random, layer"])
        assert name == "cnn" or top1[name, s, "magnitude, layer"] > top1[name, s, "random, layer"]
assert top1["mlp", 0.5, "magnitude, global"] > 0.95 and top1["mlp", 0.5, "random, layer"] < 0.75
assert top1["cnn", 0.5, "magnitude, layer"] < 0.2 and top1["cnn", 0.5, "magnitude, global"] > 0.9

# 3. Why the CNN collapses under per-layer pruning: its first convolution has 16 filters of 9 weights.
first = {}
for layers in (["0"], ["3"], ["7"], ["11"]):
    model = load_reference_model("cnn")
    prune.apply_masks(model, prune.magnitude_masks(model, 0.5, layers=layers)).remove()
    first[layers[0]] = nn.evaluate(model, x_test, y_test)
print("cnn, one layer at 50 %:", {k: f"{100 * v:.2f} %" for k, v in first.items()})
assert first["0"] < 0.2 and min(first["3"], first["7"], first["11"]) > 0.97
assert spread["cnn", 0.5]["0"] < 0.2                                  # global keeps that layer 85 % dense
