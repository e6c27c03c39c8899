"""Hooks and weight transforms: what calibration and quantization-aware training build on (Learn 7, §6)."""
import numpy as np

from refquant import nn
from refquant.data import load_digits
from refquant.models import load_reference_model

x_test, y_test = load_digits("test")
model = load_reference_model("cnn")

# 1. Observe every ReLU's output range, as a calibration pass would.
ranges = {}


def observer(name):
    def hook(module, inputs, output):  # runs after module.forward; returning None keeps the output
        lo, hi = ranges.get(name, (np.inf, -np.inf))
        ranges[name] = (min(lo, float(output.min())), max(hi, float(output.max())))
    return hook


handles = [m.register_forward_hook(observer(name)) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
base = nn.evaluate(model, x_test, y_test)
for h in handles:
    h.remove()
for name, (lo, hi) in ranges.items():
    print(f"ReLU {name:>2s}: output in [{lo:.3f}, {hi:.3f}]")
assert all(lo == 0.0 and hi > 0 for lo, hi in ranges.values())

# 2. Replace every conv weight by a coarse copy of itself in the forward pass: round to a grid
#    of step 1/k (a crude fake quantization), with the straight-through gradient for training.
accuracy = {}
for k in (64, 8):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight_transform = nn.straight_through(lambda w, k=k: np.round(w * k) / k)  # RNE; illustration
    accuracy[k] = nn.evaluate(model, x_test, y_test)
print(f"test accuracy: float weights {base:.4f}, on a 1/64 grid {accuracy[64]:.4f}, on a 1/8 grid {accuracy[8]:.4f}")
assert base >= 0.97 and accuracy[8] < accuracy[64]
