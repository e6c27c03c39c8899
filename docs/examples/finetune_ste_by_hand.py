"""The straight-through backward pass of an integer layer, by hand (Learn 19, §1-2)."""
import numpy as np

from refquant import nn, ptq
from refquant.finetune.ste import GraphBackward, real_value

# A one-layer integer model: int8 input, int8 weights (per channel), int32 bias, int8 output.
rng = np.random.default_rng(0)
layer = nn.Linear(4, 3, rng=rng)
x_cal = rng.normal(0, 1, (64, 4)).astype(np.float32)
qm = ptq.quantize_static(nn.Sequential(layer), x_cal, profile="tflite_reference")
node = next(n for n in qm.nodes if n.op == "linear")

# Forward: the integer model itself. The last input is inside the input's range, but aligned with
# the signs of the first output's weights, so that output saturates at the int8 limit.
x_extreme = 0.9 * np.abs(x_cal).max() * np.sign(layer.weight.value[0])
x = np.concatenate([rng.normal(0, 1, (3, 4)), [x_extreme]]).astype(np.float32)
env = qm.trace(x)                                                  # every tensor's codes
x_in, y_out = qm.tensors[node.inputs[0]], qm.tensors[node.output]
x_hat = real_value(x_in, env[node.inputs[0]], np.float64)          # S_x (q_x - Z_x): what the layer saw
logits = real_value(y_out, env[node.output], np.float64)           # S_y (q_y - Z_y)
labels = np.array([0, 1, 2, 0])
loss = nn.CrossEntropyLoss()
loss(logits, labels)
g_y = loss.backward()                                              # dL/dy, (4, 3)

# Backward by hand, eq. (2): the twin's accumulator a = W_hat x_hat + b_hat in real units, the mask
# "the unclamped output code round(a / S_y) + Z_y is in [-128, 127]", then the Linear's gradients.
s_w = node.params["weight_scale"].astype(np.float64)
w_hat = node.params["weight"].astype(np.float64) * s_w[:, None]             # symmetric weights: Z_w = 0
b_hat = node.params["bias"].astype(np.float64) * (np.float64(np.float32(x_in.scale) * s_w.astype(np.float32)))
a = x_hat @ w_hat.T + b_hat
code = np.rint(a / y_out.scale) + y_out.zero_point
mask = (code >= -128) & (code <= 127)
g_a = g_y * mask
want = {"weight": g_a.T @ x_hat, "bias": g_a.sum(axis=0)}
print("output codes:\n", env[node.output])
print("mask (1 = gradient passes):\n", mask.astype(int))

got = GraphBackward(qm, [node.name]).run(qm, env, {qm.outputs[0]: g_y.astype(np.float32)})[node.name]
for name in ("weight", "bias"):
    print(f"dL/d{name} =\n{np.round(got[name], 4)}")
    np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-7)
assert env[node.output][3, 0] == 127 and not mask[3, 0] and mask[:3].all()  # saturated: no gradient there
