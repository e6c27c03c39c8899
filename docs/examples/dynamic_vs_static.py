"""Float, dynamic range, full integer and weight-only int4 on the MLP: top-1 and bytes (Learn 10)."""
import numpy as np

from refquant.backends.pytorch import choose_qparams_dynamic, dynamic_linear
from refquant.data import load_digits
from refquant.models import load_reference_model
from refquant.ptq import quantize_dynamic, quantize_static, quantize_weights

x_calibration = load_digits("train")[0][:512]
x_test, y_test = load_digits("test")
model = load_reference_model("mlp")               # Flatten, Linear 64->128, ReLU, Linear 128->64, ReLU, Linear 64->10


def right(logits):
    return int(np.sum(np.asarray(logits).argmax(axis=1) == y_test))


# 1. The three flows (and float), all under PyTorch's tool and kernels.
float_bytes = sum(p.value.nbytes for p in model.parameters())          # float32 weights and biases
flows = {
    "float32": (right(model(x_test)), float_bytes),
}
dynamic = quantize_dynamic(model, profile="pytorch_fbgemm")
flows["dynamic (int8 weights)"] = (right(dynamic.run(x_test)), dynamic.nbytes)
static = quantize_static(model, x_calibration, profile="pytorch_fbgemm", calibrator="mse")  # PyTorch's default observer
flows["static (full int8)"] = (right(static.run(x_test)), static.nbytes)
for group_size in (None, 32, 16):
    weights = quantize_weights(model, bits=4, group_size=group_size)
    label = "weight-only int4, " + ("per channel" if group_size is None else f"groups of {group_size}")
    flows[label] = (right(weights.run(x_test)), weights.nbytes)
print(f"{'flow':>34s}  {'top-1':>7s}  {'bytes':>6s}  {'vs float':>8s}")
for label, (n, nbytes) in flows.items():
    print(f"{label:>34s}  {n / y_test.size:7.2%}  {nbytes:6d}  {float_bytes / nbytes:7.1f}x")
assert flows["dynamic (int8 weights)"][1] < float_bytes / 3.5 and flows["static (full int8)"][1] < float_bytes / 3.5
assert flows["weight-only int4, per channel"][1] < flows["dynamic (int8 weights)"][1] * 0.6

# 2. Dynamic range as each tool does it: where the activation scale comes from decides whether an
#    image's logits depend on the batch it is in (image 0 alone vs inside the whole test batch).
print(f"{'dynamic range':>16s}  {'top-1':>7s}  {'bytes':>6s}  {'int8 Linear':>11s}  {'alone vs in batch':>17s}")
moved = {}
for profile in ("pytorch_fbgemm", "onnxruntime", "tflite_reference"):
    qm = quantize_dynamic(model, profile=profile)
    out = qm.run(x_test)
    moved[profile] = float(np.max(np.abs(qm.run(x_test[:1]) - out[:1])))
    n_int8 = sum(n.op == "dynamic_linear" for n in qm)
    print(f"{profile:>16s}  {right(out) / y_test.size:7.2%}  {qm.nbytes:6d}  {n_int8:8d} of 3  {moved[profile]:17.2e}")
    if profile == "tflite_reference":                                   # per-row scales: the int8 layers'
        alone, batch = qm.trace(x_test[:1]), qm.trace(x_test)           # outputs are batch-independent
        for n in qm:
            if n.op == "dynamic_linear":
                np.testing.assert_array_equal(alone[n.output], batch[n.output][:1])
assert moved["pytorch_fbgemm"] > 1e-2 and moved["onnxruntime"] > 1e-2 and moved["tflite_reference"] < 1e-4

# 3. What runs in each: the nodes and the dtype of every tensor between them.
for qm in (dynamic, static):
    print(qm.summary())
assert all(dynamic.tensors[n.output].dtype == "float32" for n in dynamic)        # float between every layer
assert static.nodes[0].op == "quantize" and static.nodes[-1].op == "dequantize"

# 4. PyTorch's dynamic range: S_x comes from each call's own min and max, so an image's logits depend on the batch
#    it is in. The static model's parameters are fixed, so its outputs do not.
alone = dynamic.run(x_test[:1])                                          # (1, 10)
in_batch = dynamic.run(x_test)[:1]
print(f"dynamic: image 0 alone vs in the test batch: max |logit difference| {np.max(np.abs(alone - in_batch)):.2e}")
np.testing.assert_array_equal(static.run(x_test[:1]), static.run(x_test)[:1])
assert not np.array_equal(alone, in_batch)
s_one, _ = choose_qparams_dynamic(float(x_test[:1].min()), float(x_test[:1].max()), reduce_range=True)
s_all, _ = choose_qparams_dynamic(float(x_test.min()), float(x_test.max()), reduce_range=True)
print(f"largest pixel: image 0 {x_test[:1].max():.4f}, test batch {x_test.max():.4f}; first layer's input scale "
      f"(reduce_range, [0, 127]): image 0 alone {float(s_one):.6f}, whole batch {float(s_all):.6f}")

# 5. PyTorch's dynamic Linear by hand (eqs. (1)-(4)): quantize x with its own range, integer GEMM, then
#    y = acc * (S_x S_w) + b in float. Three inputs in [0, 1.27], reduce_range: S_x = 1.27 / 127 = 0.01.
x = np.array([[0.0, 0.5, 1.27]], np.float32)
w_q = np.array([[100, -50, 20], [-127, 0, 127]], np.int8)               # (N, K) int8, S_w = 0.002, Z_w = 0
b = np.array([0.25, -0.5], np.float32)
s_x, z_x = choose_qparams_dynamic(0.0, 1.27, reduce_range=True)          # [0, 127]: S_x = 0.01, Z_x = 0
x_q = np.round(x / np.float32(s_x)).astype(np.int64) + z_x               # [0, 50, 127] (no ties here)
acc = x_q @ w_q.astype(np.int64).T                                       # [0 - 2500 + 2540, 0 + 0 + 16129] = [40, 16129]
y = dynamic_linear(x, w_q, np.float32(0.002), 0, b)                      # the face, bit-exact with torch
print(f"S_x = {float(s_x):.6f}, Z_x = {z_x}, x_q = {x_q.tolist()}, acc = {acc.tolist()}, y = {y.tolist()}")
assert z_x == 0 and x_q.tolist() == [[0, 50, 127]] and acc.tolist() == [[40, 16129]]
np.testing.assert_allclose(y, acc * (float(s_x) * 0.002) + b, rtol=1e-6)  # [0.2508, -0.17742]
