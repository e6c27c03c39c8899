"""Soft targets at a temperature, and the KD loss and its gradient on a two-class example (Learn 18, §1-3)."""
import math

import numpy as np

from refquant import models, nn
from refquant.data import load_digits
from refquant.distill import distillation_loss

# 1. The teacher's distribution for one test image (a 0), softened by T (eq. 1).
x_test, y_test = load_digits("test")
z_t = nn.predict(models.load_reference_model("cnn"), x_test[:1])        # (1, 10) float32 logits
print("teacher logits:", np.round(z_t[0], 2), " label", y_test[0])
entropies = []
for t in (1.0, 2.0, 4.0, 8.0):
    p = nn.softmax(z_t.astype(np.float64) / t)[0]
    entropies.append(float(-(p * np.log(p)).sum()))
    order = np.argsort(-p)[:3]
    print(f"T={t:g}: p = {np.round(p, 3)}  top 3 classes {order.tolist()}, entropy {entropies[-1]:.2f} nats")
    assert order[0] == 0 and order.tolist()[1:] == [6, 7]  # dividing by T never reorders the classes
assert entropies == sorted(entropies) and entropies[-1] < math.log(10)  # softer with T, never uniform

# 2. By hand: z_s = (2 ln 3, 0), z_t = (0, 0), T = 2, so q = softmax(z_s / 2) = (3/4, 1/4) and p = (1/2, 1/2).
#    Soft term (eq. 2): T^2 KL(p || q) = 4 (1/2 ln(2/3) + 1/2 ln 2) = 2 ln(4/3); gradient (eq. 3): T (q - p) = (1/2, -1/2).
z_s, z_t2, label = np.array([[2 * math.log(3.0), 0.0]]), np.array([[0.0, 0.0]]), np.array([1])
value, grad = distillation_loss(z_s, z_t2, label, temperature=2.0, alpha=1.0)
print(f"alpha=1: loss {value:.6f} (2 ln(4/3) = {2 * math.log(4 / 3):.6f}), gradient {grad[0]}")
assert math.isclose(value, 2 * math.log(4 / 3), rel_tol=1e-12)
np.testing.assert_allclose(grad, [[0.5, -0.5]], rtol=1e-12)
#    The hard term is at T = 1: softmax(z_s) = (9/10, 1/10), so -log(1/10) = ln 10 for label 1.
value, grad = distillation_loss(z_s, z_t2, label, temperature=2.0, alpha=0.25)
print(f"alpha=0.25: loss {value:.6f} = 0.25 * 2 ln(4/3) + 0.75 * ln 10, gradient {grad[0]}")
assert math.isclose(value, 0.25 * 2 * math.log(4 / 3) + 0.75 * math.log(10), rel_tol=1e-12)
np.testing.assert_allclose(grad, 0.25 * np.array([[0.5, -0.5]]) + 0.75 * np.array([[0.9, -0.9]]), rtol=1e-12)

# 3. Eq. (3) against central differences of eq. (2), on random logits.
rng = np.random.default_rng(0)
zs, zt, y = rng.normal(0, 3, (4, 5)), rng.normal(0, 3, (4, 5)), rng.integers(0, 5, 4)
_, g = distillation_loss(zs, zt, y, temperature=4.0, alpha=0.9)
num, h = np.zeros_like(zs), 1e-6
for i in np.ndindex(zs.shape):
    e = np.zeros_like(zs)
    e[i] = h
    num[i] = (distillation_loss(zs + e, zt, y, temperature=4.0, alpha=0.9)[0]
              - distillation_loss(zs - e, zt, y, temperature=4.0, alpha=0.9)[0]) / (2 * h)
print(f"eq. (3) vs central differences: max |difference| {np.abs(g - num).max():.1e}")
np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)
