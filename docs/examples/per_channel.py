"""Per-tensor vs per-channel weight scales on the bundled models, and per-group int4 (Learn 9)."""
import copy

import numpy as np

from refquant import nn
from refquant.backends.tflite import symmetric_weight_quantize
from refquant.data import load_digits
from refquant.fixedpoint_multiplier import quantize_multiplier_array
from refquant.models import REFERENCE_MODELS, load_reference_model
from refquant.passes import prepare_for_quantization
from refquant.ptq import quantize_weights
from refquant.ptq.flows import calibrate_model

x_calibration = load_digits("train")[0][:512]
x_test, y_test = load_digits("test")


def sqnr_db(w, w_hat):
    w = w.astype(np.float64)
    return 10 * np.log10(np.sum(w * w) / np.sum((w - w_hat) ** 2))


def per_channel_shape(s, w):
    return s.reshape((-1,) + (1,) * (w.ndim - 1))                     # (O,) -> (O, 1, ...) broadcasts over w


# 1. Weight SQNR of every layer of the folded MobileNet, int8 with TFLite's rule (S = max|w| / 127),
#    one scale per tensor vs one per output channel; eq. (2) predicts the gap from the channel ranges.
mobilenet = prepare_for_quantization(load_reference_model("mobilenet"), keep_names=True)  # names as the nodes
print(f"{'layer':>10s}  {'weight':>15s}  {'max r / min r':>13s}  {'per tensor':>10s}  {'per channel':>11s}  "
      f"{'gap':>5s}  {'eq. (2)':>7s}")
gaps = {}
for name, layer in mobilenet.named_modules():
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        continue
    w = layer.weight.value                                            # (O, C/groups, kH, kW) or (O, K) float32
    r = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)   # (O,) channel ranges
    q_t, s_t = symmetric_weight_quantize(w, axis=None)                 # one scale
    q_c, s_c = symmetric_weight_quantize(w, axis=0)                    # (O,) scales
    per_tensor = sqnr_db(w, q_t * s_t.astype(np.float64))
    per_channel = sqnr_db(w, q_c * per_channel_shape(s_c.astype(np.float64), w))
    predicted = 10 * np.log10(r.max() ** 2 / np.mean(r**2))
    depthwise = isinstance(layer, nn.Conv2d) and layer.groups > 1
    gaps[name] = (per_channel - per_tensor, predicted, depthwise)
    print(f"{name:>10s}  {w.shape!s:>15}  {r.max() / r.min():13.1f}  {per_tensor:8.1f} dB  {per_channel:9.1f} dB  "
          f"{per_channel - per_tensor:5.1f}  {predicted:7.1f}{'  depthwise' if depthwise else ''}")
    assert per_channel >= per_tensor
    assert abs((per_channel - per_tensor) - predicted) <= 1.5            # eq. (2), to within 1.5 dB
worst = max(gaps, key=lambda n: gaps[n][0])
miss = max(abs(gap - predicted) for gap, predicted, _ in gaps.values())
print(f"largest gap: layer {worst}, {gaps[worst][0]:.1f} dB; eq. (2) is within {miss:.1f} dB of every gap")
assert gaps[worst][2]                                                   # ... is a depthwise layer

# 2. Where the per-channel scales go: M_c = S_x S_w[c] / S_y, one (q, shift) per output channel.
cal = calibrate_model(load_reference_model("mobilenet"), x_calibration, profile="tflite_reference")
qmodel = cal.lower(per_channel=True)
node = next(n for n in qmodel if n.op == "conv2d" and n.attrs["groups"] > 1)   # the first depthwise layer
s_x, s_y = qmodel.tensors[node.inputs[0]].scale, qmodel.tensors[node.output].scale
s_w = node.params["weight_scale"].astype(np.float64)                   # (C,) float32 -> float64
m = s_x * s_w / s_y                                                     # (C,) eq. (4)
q, shift = quantize_multiplier_array(m)
print(f"depthwise node {node.name}: S_x = {s_x:.5f}, S_y = {s_y:.5f}, S_w[c] in [{s_w.min():.5f}, {s_w.max():.5f}]"
      f" -> M_c in [{m.min():.5f}, {m.max():.5f}], shifts {sorted(set(shift.tolist()))}")
assert s_w.size == node.params["weight"].shape[0] and len(set(q.tolist())) > 1

# 3. int8 static quantization, per tensor vs per channel: top-1 on the 359 test images.
print(f"{'model':>9s}  {'float':>6s}  {'per tensor':>10s}  {'per channel':>11s}   (int8, tflite_reference)")
int8 = {}
for name in REFERENCE_MODELS:
    model = load_reference_model(name)
    cal = calibrate_model(model, x_calibration, profile="tflite_reference")
    right = [int(np.sum(model(x_test).argmax(axis=1) == y_test))]
    for per_channel in (False, True):
        right.append(int(np.sum(cal.lower(per_channel=per_channel).run(x_test).argmax(axis=1) == y_test)))
    int8[name] = right
    print(f"{name:>9s}  {right[0]:6d}  {right[1]:10d}  {right[2]:11d}")
    assert all(abs(r - right[0]) <= 3 for r in right)                   # int8: a few images at most


# 4. int4 weights (weight-only: float compute): one scale per tensor, per channel, per group of inputs.
def fake_quantize_int4_per_tensor(model):
    model = copy.deepcopy(prepare_for_quantization(model))
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            w = layer.weight.value
            s = np.float32(np.abs(w).max() / np.float32(7))               # the symmetric rule of eq. (5), one group
            layer.weight.value = (np.clip(np.rint(w / s), -7, 7) * s).astype(np.float32)
    return model


print(f"{'model':>9s}  {'float32':>15s}  {'per tensor':>10s}  {'per channel':>17s}  {'groups of 16':>17s}  "
      f"{'groups of 8':>17s}   (int4 weights: images right, bytes)")
int4 = {}
for name in REFERENCE_MODELS:
    model = load_reference_model(name)
    float_bytes = sum(p.value.nbytes for p in prepare_for_quantization(model).parameters())   # BatchNorm folded
    row = [int(np.sum(nn.predict(fake_quantize_int4_per_tensor(model), x_test).argmax(axis=1) == y_test))]
    cells = [f"{int(np.sum(model(x_test).argmax(axis=1) == y_test)):6d}, {float_bytes:6d} B", f"{row[0]:10d}"]
    for group_size in (None, 16, 8):
        try:
            qm = quantize_weights(model, bits=4, group_size=group_size)
        except ValueError:                                              # a layer's inputs not a multiple of 16
            row.append(None)
            cells.append(f"{'-':>17s}")
            continue
        right = int(np.sum(qm.run(x_test).argmax(axis=1) == y_test))
        row.append(right)
        cells.append(f"{right:6d}, {qm.nbytes:6d} B")
    int4[name] = row
    print(f"{name:>9s}  " + "  ".join(cells))
assert int4["mobilenet"][0] < int4["mobilenet"][1] - 3 and int4["cnn"][0] < int4["cnn"][1] - 3
