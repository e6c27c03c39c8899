"""Tests for exercise 07. DO NOT EDIT: edit linear.py, then run ``python -m exercises 07``.

First the visible cases you can check by hand (the numbers of Learn 7, section 2), then fresh
shapes checked two independent ways: against central finite differences in float64 (Learn 7,
eq. (6)) and against ``refquant.nn.Linear`` (float64 to 1e-12, float32 to 1e-5 relative).
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import nn

ex = load_exercise(__file__, "linear.py")

X = np.array([[1.0, 0.0, 2.0],
              [0.0, 1.0, -1.0]])           # (N=2, K=3)
W = np.array([[1.0, 2.0, 0.0],
              [-1.0, 0.5, 3.0]])           # (J=2, K=3)
B = np.array([0.5, -1.0])                  # (J,)
G = np.array([[1.0, 0.0],
              [0.0, 2.0]])                 # dL/dY, (N, J)


def _diagnose(name, got, want, x, grad_y):
    """Name the usual mistakes when ``got`` is not ``want``."""
    got = np.asarray(got)
    if got.shape != want.shape:
        if got.shape == want.T.shape:
            return (f"{name} has shape {got.shape}, expected {want.shape}: transposed? "
                    "(every gradient has the shape of its variable)")
        if name == "grad_b" and got.shape == grad_y.shape:
            return "grad_b has the shape of grad_y: sum it over the batch (axis 0), eq. (4)"
        return f"{name} has shape {got.shape}, expected {want.shape}"
    n = x.shape[0]
    if n > 1 and np.allclose(got * n, want, rtol=1e-6, atol=1e-12):
        return f"{name} is the true gradient divided by N = {n}: sum over the batch, do not average (eq. (3)-(4))"
    return None


def _check(name, got, want, x, grad_y, rtol, atol=0.0):
    msg = _diagnose(name, got, want, x, grad_y)
    if msg:
        pytest.fail(msg)
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, expected {want.dtype} (keep the input's dtype)"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        i = np.unravel_index(np.argmax(np.abs(got - want)), want.shape)
        pytest.fail(f"{name}: at {i} got {got[i]!r}, expected {want[i]!r}; see Learn 7, section 2")


# ----------------------------------------------------------------------------- visible cases
def test_forward_by_hand():
    y = ex.linear_forward(X, W, B)
    # row 0: [1*1 + 0*2 + 2*0 + 0.5, 1*(-1) + 0*0.5 + 2*3 - 1] = [1.5, 4.0]
    # row 1: [0*1 + 1*2 - 1*0 + 0.5, 0*(-1) + 1*0.5 - 1*3 - 1] = [2.5, -3.5]
    assert np.asarray(y).tolist() == [[1.5, 4.0], [2.5, -3.5]]


def test_backward_by_hand():
    gx, gw, gb = ex.linear_backward(X, W, G)
    _check("grad_w", gw, np.array([[1.0, 0.0, 2.0], [0.0, 2.0, -2.0]]), X, G, rtol=0)  # G^T X
    _check("grad_b", gb, np.array([1.0, 2.0]), X, G, rtol=0)                            # column sums of G
    _check("grad_x", gx, np.array([[1.0, 2.0, 0.0], [-2.0, 1.0, 6.0]]), X, G, rtol=0)  # G W


def test_numerical_gradient_of_a_quadratic():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    original = a.copy()
    got = ex.numerical_gradient(lambda: float((a ** 2).sum() + 3 * a[0, 1]), a)
    assert np.asarray(got).shape == a.shape, "numerical_gradient must return an array of a's shape"
    np.testing.assert_array_equal(a, original, err_msg="numerical_gradient must restore a exactly")
    want = 2 * original + np.array([[0.0, 3.0], [0.0, 0.0]])  # d/da (a^2) = 2a, plus the 3*a[0, 1] term
    # central differences are exact on a quadratic, up to rounding ~ 1e-16 / h
    assert np.allclose(got, want, rtol=0, atol=1e-8), f"got {np.asarray(got).tolist()}, expected {want.tolist()}"


def test_numerical_gradient_is_central():
    a = np.array([0.3])
    got = float(np.asarray(ex.numerical_gradient(lambda: float(a[0] ** 3), a, h=1e-3))[0])
    # central: 3a^2 + h^2 = 0.270001; forward (one-sided): 3a^2 + 3ah + h^2 = 0.270901
    assert abs(got - 0.270001) < 1e-9, f"got {got}: use (f(a + h) - f(a - h)) / (2h), eq. (6)"


# ----------------------------------------------------------------------------- fresh inputs
@pytest.mark.parametrize("n, k, j", [(1, 1, 1), (1, 4, 3), (5, 3, 2), (8, 7, 5)])
def test_backward_matches_finite_differences(n, k, j):
    rng = np.random.default_rng(100 * n + 10 * k + j)
    x, w, b = rng.standard_normal((n, k)), rng.standard_normal((j, k)), rng.standard_normal(j)
    g = rng.standard_normal((n, j))

    def loss():  # L = sum(G * Y), so dL/dY = G
        return float((g * (x @ w.T + b)).sum())

    def numeric(a, h=1e-6):  # the tests' own central differences (eq. (6))
        out = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = loss()
            a[i] = old - h
            out[i] = (up - loss()) / (2 * h)
            a[i] = old
        return out

    gx, gw, gb = ex.linear_backward(x, w, g)
    for name, got, var in (("grad_x", gx, x), ("grad_w", gw, w), ("grad_b", gb, b)):
        _check(name, got, numeric(var), x, g, rtol=1e-6, atol=1e-7)
        _check(f"{name} (your numerical_gradient)", got, np.asarray(ex.numerical_gradient(loss, var)), x, g,
               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_matches_refquant_linear(dtype, rtol):
    rng = np.random.default_rng(7)
    layer = nn.Linear(6, 4, rng=3, dtype=dtype)
    x = rng.standard_normal((9, 6)).astype(dtype)
    w, b = layer.weight.value, layer.bias.value
    y = layer(x)
    _check("linear_forward", ex.linear_forward(x, w, b), y, x, y, rtol=rtol, atol=rtol)
    g = rng.standard_normal(y.shape).astype(dtype)
    layer.zero_grad()
    want_x = layer.backward(g)
    gx, gw, gb = ex.linear_backward(x, w, g)
    _check("grad_x", gx, want_x, x, g, rtol=rtol, atol=rtol)
    _check("grad_w", gw, layer.weight.grad, x, g, rtol=rtol, atol=rtol)
    _check("grad_b", gb, layer.bias.grad, x, g, rtol=rtol, atol=rtol)
