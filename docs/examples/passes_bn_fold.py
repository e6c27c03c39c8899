"""Fold BatchNorm, fuse ReLU6 into the clamp, equalize a MobileNet (Learn 11)."""
import numpy as np

import refquant
from refquant import nn, passes
from refquant.data import load_digits
from refquant.kernels.multiplier import activation_range
from refquant.models import load_reference_model

x_test, y_test = load_digits("test")

# 1. One 1x1 convolution with two channels and a BatchNorm, small enough to fold by hand (eq. 3):
#    a = gamma / sqrt(var + eps) = [3/2, 1];  W' = a W = [3, -1];  b' = a (0 - mean) + beta = [-1, 2]
model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2, eps=1.0)).eval()
model[0].weight.value[:, 0, 0, 0] = [2.0, -1.0]
bn = model[1]
bn.weight.value[:], bn.bias.value[:] = [3.0, 1.0], [0.5, 0.0]
bn.running_mean[:], bn.running_var[:] = [1.0, -2.0], [3.0, 0.0]
folded = passes.fold_batch_norm(model)
print("folded:", folded, "W' =", folded[0].weight.value.ravel(), "b' =", folded[0].bias.value)
assert len(folded) == 1 and len(model) == 2                     # a new model; the input keeps its BatchNorm
np.testing.assert_array_equal(folded[0].weight.value.ravel(), [3.0, -1.0])
np.testing.assert_array_equal(folded[0].bias.value, [-1.0, 2.0])
pixel = np.full((1, 1, 1, 1), 0.5, np.float32)
print("conv + BN:", model(pixel).ravel(), " folded conv:", folded(pixel).ravel())  # both [0.5, 1.5]
np.testing.assert_array_equal(folded(pixel), model(pixel))

# 2. The same on a trained network: every Conv-BN pair of the CNN becomes one Conv2d with a bias.
cnn = load_reference_model("cnn")
prepared = passes.prepare_for_quantization(cnn)                # remove_identities, then fold_batch_norm
print("prepared cnn:", [type(m).__name__ for m in prepared])
ref, out = cnn(x_test), prepared(x_test)
diff = float(np.max(np.abs(out - ref)))
print(f"max |logit difference| {diff:.1e} (largest |logit| {np.max(np.abs(ref)):.1f}); "
      f"accuracy {nn.evaluate(cnn, x_test, y_test):.4f} -> {nn.evaluate(prepared, x_test, y_test):.4f}")
assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())
assert diff <= 1e-5 * np.max(np.abs(ref)) and np.array_equal(out.argmax(1), ref.argmax(1))

# 3. Fusion: an int8 output calibrated to [-1, 8] after a ReLU6. The ReLU6 is the clamp of eq. (4).
qp = refquant.choose_qparams(-1.0, 8.0, "int8")                 # S = 9/255, Z = -100
s, z = float(qp.scale), int(qp.zero_point)
lo, hi = activation_range("RELU6", s, z, -128, 127)             # TFLite's CalculateActivationRangeQuantized
print(f"S = {s:.6f}, Z = {z}: the ReLU6 clamp is [{lo}, {hi}], i.e. [{s * (lo - z):.4f}, {s * (hi - z):.4f}]")
assert (lo, hi) == (z, z + round(6 / s)) == (-100, 70)
assert s * (lo - z) == 0.0 and abs(s * (hi - z) - 6.0) <= s / 2

# 4. Cross-layer equalization: the depthwise layers of the folded MobileNet, int8 per tensor.
def sqnr_db(w):
    r = float(np.max(np.abs(w)))
    error = w - refquant.fake_quantize(w, refquant.choose_qparams(-r, r, "int8", symmetric=True))
    return 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum(error.astype(np.float64) ** 2))


mobilenet = passes.prepare_for_quantization(load_reference_model("mobilenet"))
equalized = passes.cross_layer_equalization(mobilenet)          # ReLU6 -> ReLU inside each pair
layers = dict(equalized.named_modules())
for name, m in mobilenet.named_modules():
    if isinstance(m, nn.Conv2d) and m.groups > 1:
        r0, r1 = passes.output_channel_ranges(m), passes.output_channel_ranges(layers[name])
        before, after = sqnr_db(m.weight.value), sqnr_db(layers[name].weight.value)
        print(f"depthwise {name:>9s}: channel ranges max/min {r0.max() / r0.min():.2f} -> {r1.max() / r1.min():.2f}, "
              f"int8 per-tensor SQNR {before:.1f} -> {after:.1f} dB")
        assert after > before + 1.0
accuracy = nn.evaluate(mobilenet, x_test, y_test), nn.evaluate(equalized, x_test, y_test)
print(f"float accuracy before and after CLE: {accuracy[0]:.4f}, {accuracy[1]:.4f}")
assert accuracy[1] == accuracy[0]

# 5. What replacing ReLU6 by ReLU costs: the inputs of the replaced ReLU6s above 6, and the logits' move.
seen = []
hooks = [m.register_forward_hook(lambda module, inputs, output: seen.append(np.ravel(inputs[0])))
         for name, m in mobilenet.named_modules() if isinstance(m, nn.ReLU6) and isinstance(layers[name], nn.ReLU)]
ref, out = mobilenet(x_test), equalized(x_test)
for hook in hooks:
    hook.remove()
v = np.concatenate(seen)
move = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
print(f"replaced ReLU6 inputs above 6: {np.sum(v > 6)} of {v.size}, the largest {v.max():.2f}; "
      f"logits move by up to {move:.1%} of the largest")
assert 0 < np.sum(v > 6) < 1e-4 * v.size and move < 0.05 and np.array_equal(out.argmax(1), ref.argmax(1))
