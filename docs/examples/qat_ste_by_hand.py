"""Fake quantization, the clamp mask, and a layer whose fake-quant and integer outputs are equal (Learn: QAT)."""
import numpy as np

from refquant import nn, qat
from refquant.profiles import get_profile
from refquant.ptq.recipes import recipe_for

# 1. One FakeQuantize, TFLite recipe. A training batch sets the range [-4, 3.96875] = [-128, 127] / 32,
#    so S = 2^-5, Z = 0 (eq. 1); in evaluation mode the range stays.
prof = get_profile("tflite_reference")
fq = qat.FakeQuantize("t", profile=prof, recipe=recipe_for(prof)).train()
fq(np.array([[-4.0, 3.96875]], np.float32))
fq.eval()
x = np.array([[0.3, 0.328125, -0.328125, 3.96875, 4.5, -4.2]], np.float32)
y = fq(x)
s, z = float(fq.qparams.scale), int(fq.qparams.zero_point)
print(f"range {fq.range()}: S = {s}, Z = {z}")
print("x     =", x.ravel())
print("y     =", y.ravel())
assert (s, z) == (2.0 ** -5, 0)
# 0.3 / S = 9.6 -> 10; 0.328125 / S = 10.5 rounds half away from zero (TFLite) to 11; 4.5 and -4.2 clip
np.testing.assert_array_equal(y, np.float32([[10, 11, -11, 127, 127, -128]]) / 32)

# 2. Backward: the straight-through estimator with the clamp mask (eq. 2). The values the
#    clamp changed get no gradient; the others pass it unchanged, rounded or not.
g = fq.backward(np.ones_like(x))
print("dL/dx =", g.ravel())
np.testing.assert_array_equal(g, [[1, 1, 1, 1, 0, 0]])

# 3. Power-of-two scales, TFLite FullyConnected: S_x = 2^-4, S_w = 2^-7, S_y = 2^-3, the bias on
#    the S_x S_w = 2^-11 grid. Every float step of the fake-quant forward is exact and both sides
#    round y / S_y once, half away from zero: the converted model equals it bit for bit (eq. 6).
rng = np.random.default_rng(0)
layer = nn.Linear(16, 8)
layer.weight.value[...] = rng.integers(-127, 128, size=(8, 16)) / 128.0
layer.weight.value[:, 0] = 127 / 128.0                         # max|w| = 127 S_w in every row
layer.bias.value[...] = rng.integers(-2000, 2000, size=8) / 2048.0
model = qat.prepare_qat(nn.Sequential(layer), profile="tflite_reference")
xs = (rng.integers(-128, 128, size=(1000, 16)) / 16.0).astype(np.float32)
xs[0, :2] = -8.0, 127 / 16.0                                   # input range [-128, 127] * 2^-4
qat.calibrate(model, xs)
out = model.fake_quantizers()["0"]
out.observer.reset()
out.observe(np.array([-16.0, 127 / 8.0], np.float32))         # output range [-128, 127] * 2^-3
qm = qat.convert(model)
fake, integer = nn.predict(model, xs), qm.run(xs)
print(f"fake-quant == integer model on {np.mean(fake == integer):.0%} of {fake.size} outputs")
np.testing.assert_array_equal(fake, integer)
