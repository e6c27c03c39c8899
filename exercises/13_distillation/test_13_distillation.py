"""Tests for exercise 13. DO NOT EDIT: edit distillation.py, then run ``python -m exercises 13``.

First a two-class example you can check by hand (student logits (2 ln 3, 0), teacher (0, 0),
T = 2: q = (3/4, 1/4), p = (1/2, 1/2)), then your loss and gradient against
``refquant.distill.distillation_loss`` on fresh logits, your gradient against central
differences of your own loss, and logits large enough to overflow a naive softmax.
"""

import math

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant.distill import distillation_loss as rq_distillation_loss

ex = load_exercise(__file__, "distillation.py")

ZS = np.array([[2 * math.log(3.0), 0.0]])   # at T = 2: softmax(ZS / 2) = (3/4, 1/4); at T = 1: (9/10, 1/10)
ZT = np.array([[0.0, 0.0]])                  # softmax(ZT / T) = (1/2, 1/2) at every T


def _logits(seed, n=None, k=None, scale=3.0):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(1, 20))
    k = k or int(rng.integers(2, 12))
    return rng.normal(0, scale, (n, k)), rng.normal(0, scale, (n, k)), rng.integers(0, k, n)


CASES = [(t, a, seed) for seed, (t, a) in enumerate([(1.0, 0.5), (4.0, 0.9), (2.0, 1.0), (8.0, 0.0), (0.5, 0.3),
                                                     (3.0, 0.7), (16.0, 1.0), (1.5, 0.1)])]


def test_log_softmax_t_by_hand():
    got = ex.log_softmax_t(ZS, 2.0)
    assert np.asarray(got).shape == (1, 2) and np.asarray(got).dtype == np.float64, "return float64 (N, K)"
    np.testing.assert_allclose(np.exp(got), [[0.75, 0.25]], rtol=1e-12,
                               err_msg="softmax(z / T) with z = (2 ln 3, 0), T = 2 is (3/4, 1/4): divide by T first")
    np.testing.assert_allclose(np.exp(ex.log_softmax_t(ZS, 1.0)), [[0.9, 0.1]], rtol=1e-12)
    big = ex.log_softmax_t(np.array([[1000.0, 0.0, -1000.0]]), 1.0)
    assert np.all(np.isfinite(big)), f"logits of +-1000 gave {big}: subtract each row's max before np.exp"
    np.testing.assert_allclose(big, [[0.0, -1000.0, -2000.0]], atol=1e-9)


def test_loss_by_hand():
    want = 2 * math.log(4 / 3)   # T^2 KL(p || q) = 4 * (1/2 ln(2/3) + 1/2 ln 2)
    got = ex.distillation_loss(ZS, ZT, np.array([1]), 2.0, 1.0)
    assert isinstance(got, float), f"return a Python float, got {type(got).__name__}"
    assert got != pytest.approx(want / 4, rel=1e-9), "you left out the T^2 factor (Learn 18, eq. (2))"
    kl_qp = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert got != pytest.approx(kl_qp, rel=1e-9), "KL the wrong way round: it is KL(p || q), teacher first"
    assert got == pytest.approx(want, rel=1e-12), f"alpha = 1, T = 2: want 2 ln(4/3) = {want:.6f}, got {got}"

    ce = ex.distillation_loss(ZS, ZT, np.array([1]), 2.0, 0.0)
    assert ce != pytest.approx(math.log(4.0), rel=1e-9), "the hard-label cross-entropy is at T = 1, not at T"
    assert ce == pytest.approx(math.log(10.0), rel=1e-12), "alpha = 0: -log softmax(z_s)[y] = -log(1/10)"
    assert ex.distillation_loss(ZS, ZT, np.array([1]), 2.0, 0.25) == pytest.approx(
        0.25 * want + 0.75 * math.log(10.0), rel=1e-12), "mix the two terms: alpha * soft + (1 - alpha) * hard"
    two = ex.distillation_loss(np.vstack([ZS, ZT]), np.vstack([ZT, ZT]), np.array([1, 0]), 2.0, 0.25)
    assert two == pytest.approx((0.25 * want + 0.75 * math.log(10.0) + 0.75 * math.log(2.0)) / 2, rel=1e-12), \
        "average over the batch (the second row has KL 0 and cross-entropy ln 2)"


def test_grad_by_hand():
    got = ex.distillation_grad(ZS, ZT, np.array([1]), 2.0, 1.0)
    assert np.asarray(got).shape == (1, 2), "the gradient has the logits' shape (N, K)"
    if np.allclose(got, [[0.125, -0.125]]):
        pytest.fail("dL/dz_s = T (q - p) / N here: you dropped the T^2 of the loss (or used 1/T)")
    if np.allclose(got, [[1.0, -1.0]]):
        pytest.fail("dL/dz_s = T (q - p) / N: the chain rule through z_s / T divides the T^2 by T once")
    np.testing.assert_allclose(got, [[0.5, -0.5]], rtol=1e-12, err_msg="alpha = 1: T (q - p) / N = 2 (1/4, -1/4)")
    np.testing.assert_allclose(ex.distillation_grad(ZS, ZT, np.array([1]), 2.0, 0.0), [[0.9, -0.9]], rtol=1e-12,
                               err_msg="alpha = 0: softmax(z_s) - onehot(y) = (9/10, 1/10) - (0, 1)")


@pytest.mark.parametrize("t,a,seed", CASES)
def test_loss_and_grad_match_refquant(t, a, seed):
    zs, zt, y = _logits(seed)
    want_value, want_grad = rq_distillation_loss(zs, zt, y, temperature=t, alpha=a)
    got_value = ex.distillation_loss(zs, zt, y, t, a)
    assert got_value == pytest.approx(want_value, rel=1e-10), (
        f"T={t}, alpha={a}, logits {zs.shape}: loss {got_value}, refquant {want_value}")
    got_grad = np.asarray(ex.distillation_grad(zs, zt, y, t, a))
    assert got_grad.shape == zs.shape
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-9, atol=1e-13,
                               err_msg=f"T={t}, alpha={a}: your gradient (first) vs refquant's (second)")


@pytest.mark.parametrize("t,a,seed", CASES[:4])
def test_grad_matches_finite_differences_of_your_loss(t, a, seed):
    zs, zt, y = _logits(100 + seed, n=4, k=5)
    h = 1e-6
    num = np.zeros_like(zs)
    for idx in np.ndindex(zs.shape):
        up, down = zs.copy(), zs.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (ex.distillation_loss(up, zt, y, t, a) - ex.distillation_loss(down, zt, y, t, a)) / (2 * h)
    np.testing.assert_allclose(ex.distillation_grad(zs, zt, y, t, a), num, rtol=1e-5, atol=1e-8,
                               err_msg=f"T={t}, alpha={a}: analytic eq. (3) (first) vs central differences "
                                       f"of your eq. (2) (second)")


def test_large_logits_stay_finite():
    zs, zt, y = _logits(7, n=6, k=10, scale=1000.0)
    value, grad = ex.distillation_loss(zs, zt, y, 1.0, 0.5), ex.distillation_grad(zs, zt, y, 1.0, 0.5)
    assert math.isfinite(value) and np.all(np.isfinite(grad)), (
        "logits of size 1000 gave NaN or Inf: use log-probabilities (log_softmax_t), never np.log(softmax)")
    want_value, want_grad = rq_distillation_loss(zs, zt, y, temperature=1.0, alpha=0.5)
    assert value == pytest.approx(want_value, rel=1e-9)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12)


def test_t_squared_keeps_the_soft_gradient_scale():
    """Learn 18, section 3: with T^2 the soft gradient's norm barely moves with T; without it, it falls as 1/T^2."""
    zs, zt, y = _logits(0, n=64, k=10, scale=2.0)
    norms = {t: float(np.linalg.norm(ex.distillation_grad(zs, zt, y, t, 1.0))) for t in (1.0, 2.0, 4.0, 8.0)}
    assert max(norms.values()) / min(norms.values()) < 1.25, f"gradient norms by T: {norms}"
