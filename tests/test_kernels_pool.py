"""Tests of refquant.kernels.pool: hand-worked values, the Numba kernels against the NumPy
references on random and edge inputs, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.kernels import pool

pytestmark = pytest.mark.kernels


def both(fn_ref, fn_fast, *args, **kw):
    ref, fast = fn_ref(*args, **kw), fn_fast(*args, **kw)
    assert ref.shape == fast.shape and ref.dtype == fast.dtype
    np.testing.assert_array_equal(fast, ref, err_msg="Numba != reference")
    return ref


def avg(*a, **k):
    return both(pool.average_pool2d_reference, pool.average_pool2d, *a, **k)


def mx(*a, **k):
    return both(pool.max_pool2d_reference, pool.max_pool2d, *a, **k)


def test_average_rounds_half_away_from_zero():
    # 2x2 windows with sums 7, -7, 6, -6, 2, -2, 10, -10 -> 1.75, -1.75, 1.5, -1.5, .5, -.5, 2.5, -2.5
    sums = [7, -7, 6, -6, 2, -2, 10, -10]
    x = np.zeros((1, 2, 2 * len(sums), 1), np.int8)
    for i, s in enumerate(sums):
        x[0, 0, 2 * i, 0] = s  # one tap carries the sum, the other three are 0
    y = avg(x, 2, padding="VALID")
    np.testing.assert_array_equal(y.ravel(), [2, -2, 2, -2, 1, -1, 3, -3])  # RNE would give 2.5 -> 2


def test_average_same_padding_excludes_padding_from_count():
    x = np.full((1, 3, 3, 1), 9, np.int8)
    x[0, 0, 0, 0] = 0
    y = avg(x, 3, stride=1, padding="SAME")
    assert y.shape == (1, 3, 3, 1)
    assert y[0, 0, 0, 0] == 7  # corner window: 4 valid taps, sum 27 -> 6.75 -> 7 (a count of 9 would give 3)
    assert y[0, 1, 1, 0] == 8  # the centre sees all 9 taps: (72 + 4) / 9 = 8


def test_pool_geometry():
    assert pool.pool_geometry((5, 5), 3, 2, "SAME") == ((3, 3), (1, 1))
    assert pool.pool_geometry((5, 5), 3, 2, "VALID") == ((2, 2), (0, 0))
    assert pool.pool_geometry((4, 7), (2, 3), None, "VALID") == ((2, 2), (0, 0))
    assert pool.pool_geometry((6, 6), 3, 2, "SAME") == ((3, 3), (0, 0))  # total pad 1 goes after
    with pytest.raises(ShapeError, match="empty output"):
        pool.pool_geometry((2, 2), 3, 1, "VALID")


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_reference_equals_numba(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    info = np.iinfo(dtype)
    for trial in range(60):
        n, h, w, c = (int(v) for v in rng.integers(1, [3, 10, 10, 6]))
        x = rng.integers(info.min, info.max, (n, h, w, c), endpoint=True).astype(dtype)
        if trial % 5 == 0:  # extremes: all min / all max windows
            x[..., 0] = info.min
            x[..., -1] = info.max
        k = (int(rng.integers(1, min(h, 4) + 1)), int(rng.integers(1, min(w, 4) + 1)))
        s = None if trial % 3 == 0 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = "SAME" if trial % 2 else "VALID"
        lo = int(rng.integers(info.min, 0 if info.min < 0 else 10))
        hi = int(rng.integers(max(lo, 1), info.max + 1))
        for bounds in ({}, {"act_min": lo, "act_max": hi}):
            avg(x, k, stride=s, padding=padding, **bounds)
            mx(x, k, stride=s, padding=padding, **bounds)


def test_max_pool_and_clamp():
    x = np.array([[-5, 3], [7, -128]], np.int8).reshape(1, 2, 2, 1)
    assert mx(x, 2)[0, 0, 0, 0] == 7
    assert mx(x, 2, act_max=6)[0, 0, 0, 0] == 6
    assert avg(x, 2, act_min=-1)[0, 0, 0, 0] == -1  # -123/4 -> -31, clamped


def test_global_average_pool_hand_example():
    # uint8, zx = 10, image 2x2 = [10, 11, 12, 14]: acc = 47 - 40 = 7; m = 0.5 / (0.25 * 4) = 0.5 -> 3.5 -> 4 (RNE)
    x = np.array([10, 11, 12, 14], np.uint8).reshape(1, 1, 2, 2)
    y = both(pool.global_average_pool_reference, pool.global_average_pool, x, 0.5, np.uint8(10), 0.25, np.uint8(0))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 4
    x2 = np.array([10, 11, 12, 12], np.uint8).reshape(1, 1, 2, 2)  # acc 5 -> 2.5 -> 2 (ties to even)
    assert both(pool.global_average_pool_reference, pool.global_average_pool, x2, 0.5, np.uint8(10), 0.25,
                np.uint8(0))[0, 0, 0, 0] == 2


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_global_average_pool_reference_equals_numba(dtype):
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    for trial in range(80):
        rank = int(rng.integers(3, 6))
        shape = tuple(int(v) for v in rng.integers(1, 7, rank))
        x = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        xs = np.float32(rng.uniform(0.01, 0.2) if trial % 2 else 2.0 ** -int(rng.integers(1, 7)))
        ys = np.float32(rng.uniform(0.01, 0.2) if trial % 2 else 2.0 ** -int(rng.integers(1, 7)))
        zx, zy = (dtype(rng.integers(info.min, info.max, endpoint=True)) for _ in range(2))
        for cl in (0, 1):
            both(pool.global_average_pool_reference, pool.global_average_pool, x, xs, zx, ys, zy, channels_last=cl)


def test_global_average_pool_params():
    assert pool.global_average_pool_params(0.5, 0.25, 4) == np.float32(0.5)
    with pytest.raises(QuantizationValueError, match="outside"):
        pool.global_average_pool_params(300.0, 1.0, 1)
    with pytest.raises(QuantizationValueError, match="2\\^24"):
        pool.global_average_pool_params(1.0, 1.0, 2 ** 24)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: pool.average_pool2d(np.zeros((1, 2, 2, 1), np.float32), 2), QuantizationTypeError, "dtype int8"),
    (lambda: pool.average_pool2d(np.zeros((2, 2, 1), np.int8), 2), ShapeError, "4-D NHWC"),
    (lambda: pool.max_pool2d(np.zeros((1, 2, 2, 1), np.int8), 0), QuantizationValueError, ">= 1"),
    (lambda: pool.max_pool2d(np.zeros((1, 2, 2, 1), np.int8), 2, padding="FULL"), QuantizationValueError,
     "SAME"),
    (lambda: pool.max_pool2d(np.zeros((1, 2, 2, 1), np.int8), 2, act_min=5, act_max=4), QuantizationValueError,
     "act_min"),
    (lambda: pool.global_average_pool(np.zeros((1, 2), np.int8), 1.0, 0, 1.0, 0), ShapeError, "rank >= 3"),
    (lambda: pool.global_average_pool(np.zeros((1, 2, 2), np.uint8), 1.0, 300, 1.0, 0), QuantizationValueError,
     "x_zero_point"),
    (lambda: pool.global_average_pool(np.zeros((1, 2, 2), np.uint8), -1.0, 0, 1.0, 0), QuantizationValueError,
     "x_scale"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_xnnpack_mean_folds_the_zero_points_before_rounding():
    """XNNPACK's MEAN (eq. (3) of :mod:`refquant.kernels.mean`): codes [1, 2], S_x = S_y, Z_x = Z_y = 1:
    fl(3 * 0.5) + fl(1 - fl(2 * 0.5)) = 1.5 rounds to even: 2. Rounding the offset mean first
    (RNE((3 - 2) / 2) + 1 = 0 + 1) would give 1. The global pool (NCHW or NHWC) and the MEAN agree."""
    from refquant.kernels import mean as kmean

    s = np.float32(0.1)
    x = np.array([1, 2], np.int8).reshape(1, 1, 1, 2)  # NCHW: one channel, a 1x2 plane
    assert pool.mean_float32(x, s, 1, s, 1).tolist() == [[2]]
    assert pool.mean_float32(x.reshape(1, 1, 2, 1), s, 1, s, 1, channels_last=True).tolist() == [[2]]
    assert kmean.mean_float32(x.reshape(2).astype(np.uint8), s, 1, s, 1, 0).tolist() == [2]
    assert kmean.mean_float32(np.array([-128, -128], np.int8), s, 127, s, -128, 0).tolist() == [-128]  # saturates
    with pytest.raises(QuantizationTypeError, match="int16"):
        kmean.mean_float32(np.zeros(2, np.int16), s, 0, s, 0, 0)
    with pytest.raises(ShapeError, match="rank <= 6"):
        kmean.mean_float32(np.zeros((1,) * 7, np.int8), s, 0, s, 0, 0)
