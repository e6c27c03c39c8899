"""Check a layer's backward against central finite differences in float64 (Learn 7, eq. (6))."""
import numpy as np

from refquant import nn


def numerical_grad(f, a, h=1e-6):
    """Central differences of the scalar f() with respect to every element of a (changed in place)."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        up = f()
        a[i] = old - h
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * h)            # eq. (6): error O(h^2)
    return grad


def check(layer, x):
    rng = np.random.default_rng(1)
    g = rng.standard_normal(layer(x).shape)       # a random G = dL/dY, so L(x) = sum(G * layer(x))

    def loss():
        return float((g * layer(x)).sum())

    layer.zero_grad()
    gx = layer.backward(g)                        # the analytic gradients
    errors = {"x": np.abs(gx - numerical_grad(loss, x)).max()}
    for name, p in layer.named_parameters():
        errors[name] = np.abs(p.grad - numerical_grad(loss, p.value)).max()
    return errors


rng = np.random.default_rng(0)
linear = nn.Linear(5, 4, rng=0, dtype=np.float64)
conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=0, dtype=np.float64)
for name, layer, x in [("Linear(5, 4)", linear, rng.standard_normal((3, 5))),
                       ("Conv2d(3, 4, 3, stride=2, padding=1)", conv, rng.standard_normal((2, 3, 5, 5)))]:
    errors = check(layer, x)
    print(f"{name:38s}", "  ".join(f"max|analytic - numeric| {k}: {v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) < 1e-8, errors    # float64: h^2 ~ 1e-12, rounding ~ 1e-16 / h ~ 1e-10
