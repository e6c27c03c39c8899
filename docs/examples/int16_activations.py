"""int16 activations (TFLite's 16x8 mode): where int8 fails, one CONV_2D by hand, the mixed plan (Learn 14)."""
import numpy as np

from refquant import models
from refquant.backends import tflite
from refquant.data import load_digits
from refquant.fixedpoint_multiplier import quantize_multiplier
from refquant.ptq.debug import accuracy, mixed_precision_plan
from refquant.ptq.flows import calibrate_model

x_calibration = load_digits("train")[0][:512]
x_val, y_val = load_digits("val")
x_test, y_test = load_digits("test")

# 1. An outlier channel: scale the first block's channel 0 up by 128 after its batch norm, and the next
#    convolution's weights of that channel down by 128. The float function is unchanged (ReLU(128 v) / 128 = ReLU(v)).
model = models.load_reference_model("cnn")
bn0, conv1 = model[1], model[3]
bn0.weight.value[0] *= 128
bn0.bias.value[0] *= 128
conv1.weight.value[:, 0] /= 128
assert abs(accuracy(model, x_test, y_test) - accuracy(models.load_reference_model("cnn"), x_test, y_test)) < 1e-9

cal = calibrate_model(model, x_calibration, profile="tflite_reference")
int8, int16 = cal.lower(), cal.lower(int16_layers="all")
lo, hi = cal.ranges[cal.steps[0].output]
print(f"first block's output range [{lo:.2f}, {hi:.2f}]: one int8 step = {hi / 255:.3f}, one int16 step = "
      f"{hi / 32767:.5f}")
acc = {name: accuracy(m, x_test, y_test) for name, m in (("float", model), ("int8", int8), ("16x8", int16))}
print({k: f"{100 * v:.2f}%" for k, v in acc.items()}, f"bytes: int8 {int8.nbytes}, 16x8 {int16.nbytes}")
assert acc["float"] - acc["int8"] > 0.03 and acc["float"] - acc["16x8"] < 0.005

# 2. One 16x8 CONV_2D by hand: int16 x (zero point 0), int8 weights, int64 bias, int64 accumulator,
#    and the 64-bit MultiplyByQuantizedMultiplier with its multiplier rounded to 16 bits.
rng = np.random.default_rng(0)
x = rng.integers(-32768, 32768, (1, 6, 6, 64), dtype=np.int64).astype(np.int16)   # NHWC
x[0, :3, :3, :] = 32767                                                            # extreme codes: a big sum
w = rng.integers(-127, 128, (4, 3, 3, 64), dtype=np.int64).astype(np.int8)         # OHWI
w[0] = 127
b = rng.integers(-2**20, 2**20, 4, dtype=np.int64)                                 # int64 bias, scale S_x S_w
s_x, s_w, s_y = np.float32(1 / 4096), np.float32(0.002), np.float32(1 / 16)
y = tflite.conv2d(x, s_x, 0, w, s_w, b, s_y, 0, kernel="reference")               # (1, 4, 4, 4) int16

patches = np.lib.stride_tricks.sliding_window_view(x.astype(np.int64), (3, 3), axis=(1, 2))  # (1, 4, 4, 40, 3, 3)
acc = np.einsum("nhwcij,oijc->nhwo", patches, w.astype(np.int64)) + b               # exact int64
print(f"largest |accumulator| 2^{np.log2(np.abs(acc).max()):.2f}: past int32, kept by int64")
assert np.abs(acc).max() > 2**31
q, shift = quantize_multiplier(float(s_x) * float(s_w) / float(s_y))               # M = q 2^(shift - 31)
reduced = (q + (1 << 15)) >> 16 if q < 0x7FFF0000 else 0x7FFF                      # 16-bit multiplier
by_hand = (acc * reduced + (1 << (14 - shift))) >> (15 - shift)                    # one rounding, half up
by_hand = np.clip(by_hand, -32768, 32767).astype(np.int16)
np.testing.assert_array_equal(y, by_hand)
print(f"multiplier {q} -> {reduced} (16 bits), shift {shift}: the face and the hand loop agree")

# 3. The mixed plan: the most sensitive layers step up to int16 first, one at a time.
plan = mixed_precision_plan(cal, None, x_val, y_val, max_drop=0.01)
print(plan.table())
mixed = plan.apply()
print(f"mixed: int16 layers {plan.int16_layers}, top-1 {100 * accuracy(mixed, x_test, y_test):.2f}%, "
      f"{mixed.nbytes} bytes")
assert plan.int16_layers and not plan.float_layers
