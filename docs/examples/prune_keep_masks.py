"""Keeping pruned weights at zero through fine-tuning, and what happens when you do not (Learn 16, §3)."""
import numpy as np

from refquant import nn, prune
from refquant.data import load_digits
from refquant.models import load_reference_model

x_train, y_train = load_digits("train")
x_test, y_test = load_digits("test")


def fine_tune(model, optimizer, epochs=3):
    nn.fit(model, x_train, y_train, epochs=epochs, batch_size=32, optimizer=optimizer, seed=0, progress=False)


def regrown(model, masks):
    """How many pruned weights are no longer 0."""
    found = dict(model.named_modules())
    return sum(int(np.count_nonzero(found[name].weight.value[~m])) for name, m in masks.items())


results = {}

# (a) Zero the weights once, then fine-tune as usual: the gradient of a zero weight is not zero.
model = load_reference_model("mlp")
masks = prune.magnitude_masks(model, 0.9, scope="global")
prune.apply_masks(model, masks).remove()
before = nn.evaluate(model, x_test, y_test)
fine_tune(model, nn.Adam(model, lr=1e-3))
results["zeroed once"] = (regrown(model, masks), prune.sparsity(model).overall, nn.evaluate(model, x_test, y_test))

# (b) apply_masks through the fine-tuning, with a fresh optimizer: the masked gradient keeps them at 0.
model = load_reference_model("mlp")
opt = nn.Adam(model, lr=1e-3)
with prune.apply_masks(model, masks):
    fine_tune(model, opt)
results["masked, fresh Adam"] = (regrown(model, masks), prune.sparsity(model).overall,
                                 nn.evaluate(model, x_test, y_test))

# (c) An optimizer that already has state (Adam's moments from earlier training) still moves them ...
for attach in (False, True):
    model = load_reference_model("mlp")
    opt = nn.Adam(model, lr=1e-3)
    fine_tune(model, opt, epochs=1)                                    # Adam's m and v are now nonzero everywhere
    with prune.apply_masks(model, masks, optimizer=opt if attach else None):
        fine_tune(model, opt)
    label = "masked, Adam with state" + (", attached" if attach else "")
    results[label] = (regrown(model, masks), prune.sparsity(model).overall, nn.evaluate(model, x_test, y_test))

print(f"90 % global magnitude masks on the MLP: test top-1 {100 * before:.2f} % before fine-tuning")
print("| fine-tuning | pruned weights no longer 0 | zeros after | test top-1 after |")
print("|---|---:|---:|---:|")
for label, (n, zeros, top1) in results.items():
    print(f"| {label} | {n:,} | {100 * zeros:.1f} % | {100 * top1:.2f} % |")

pruned_count = sum(int((~m).sum()) for m in masks.values())
assert results["zeroed once"][0] > 0.8 * pruned_count                 # most of them grew back
assert results["masked, fresh Adam"][0] == 0 and results["masked, Adam with state, attached"][0] == 0
assert results["masked, Adam with state"][0] > 0.5 * pruned_count     # ... unless the optimizer is attached
assert results["masked, fresh Adam"][2] > before + 0.2                 # fine-tuning recovers most of the loss
