"""Tests for exercise 10. DO NOT EDIT: edit int16x8.py, then run ``python -m exercises 10``.

First values you can check by hand, then your parameters against the TFLite converter's rule
(``refquant.backends.tflite.activation_qparams``), the 16-bit multiplier at its edges, and your 1x1
convolution against ``refquant.backends.tflite.conv2d`` (LiteRT's reference kernel, bit for bit) on
random codes, extreme codes whose sums pass 2^31, and int64 biases beyond int32.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant.backends import tflite

ex = load_exercise(__file__, "int16x8.py")


def test_int16_activation_params_by_hand():
    s, z = ex.int16_activation_params(0.0, 6.0)
    assert isinstance(z, int) and z == 0, "the zero point of an int16 activation is always 0"
    assert np.asarray(s).dtype == np.float32, "return the scale as np.float32"
    assert s == np.float32(6) / np.float32(32767)
    s2, _ = ex.int16_activation_params(-10.0, 3.0)
    assert s2 == np.float32(10) / np.float32(32767), "symmetric: the scale comes from max(|min|, |max|)"
    s3, _ = ex.int16_activation_params(2.0, 5.0)
    assert s3 == np.float32(5) / np.float32(32767), "widen the range to contain 0 first"


def test_int16_activation_params_match_the_converter():
    rng = np.random.default_rng(10)
    for _ in range(300):
        lo, hi = sorted(rng.normal(0, 10, 2) * rng.choice([1e-3, 1, 1e3]))
        want = tflite.activation_qparams(lo, hi, "int16")
        s, z = ex.int16_activation_params(lo, hi)
        assert (s, z) == (np.float32(want.scale), int(want.zero_point)), (
            f"range [{lo!r}, {hi!r}]: got {s!r}, want {np.float32(want.scale)!r}; divide in float32")


@pytest.mark.parametrize("q, want", [(1 << 30, 1 << 14), ((1 << 30) + (1 << 15) - 1, 1 << 14),
                                     ((1 << 30) + (1 << 15), (1 << 14) + 1), (0x7FFEFFFF, 0x7FFF),
                                     (0x7FFF0000, 0x7FFF), (2 ** 31 - 1, 0x7FFF)])
def test_reduced_multiplier(q, want):
    got = ex.reduced_multiplier(q)
    assert got == want, f"q = {q:#x}: got {got:#x}, want {want:#x} (add 2**15, shift right 16; cap at 0x7FFF)"


def test_mbqm_int64_by_hand():
    q = 1 << 30                                          # 0.5, reduced to 2**14
    got = ex.mbqm_int64(np.array([3, -3, 5, 2 ** 40], np.int64), q, 0)
    np.testing.assert_array_equal(got, [2, -1, 3, 2 ** 39],
                                  err_msg="0.5 * x rounds half UP: 1.5 -> 2, -1.5 -> -1, 2.5 -> 3")
    got = ex.mbqm_int64(np.array([12, 13], np.int64), q, -2)   # 0.5 * 2**-2 = 1/8
    np.testing.assert_array_equal(got, [2, 2], err_msg="shift -2: (x * r + 2**16) >> 17")


def _check(x, w, b, xs, ws, ys):
    want = tflite.conv2d(x[:, None, None, :], xs, 0, w[:, None, None, :], ws, b, ys, 0, kernel="reference")[:, 0, 0]
    got = ex.conv1x1_16x8(x, w, b, xs, ws, ys)
    assert got.dtype == np.int16 and got.shape == want.shape, f"want int16 {want.shape}, got {got.dtype} {got.shape}"
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{len(bad)} of {want.size} outputs differ; first at {tuple(bad[0])}: got "
                           f"{got[tuple(bad[0])]}, want {want[tuple(bad[0])]}. Accumulate in int64, form the "
                           f"multiplier in double, and use the 16-bit reduced multiplier (eq. (3)).")


def test_conv1x1_random():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n, k, o = rng.integers(1, 9), rng.integers(1, 70), rng.integers(1, 9)
        x = rng.integers(-32768, 32768, (n, k)).astype(np.int16)
        w = rng.integers(-127, 128, (o, k)).astype(np.int8)
        b = rng.integers(-2 ** 20, 2 ** 20, o).astype(np.int64)
        xs, ys = np.float32(rng.uniform(1e-4, 1e-2)), np.float32(rng.uniform(1e-2, 1))
        ws = rng.uniform(1e-3, 1e-2, o).astype(np.float32)
        _check(x, w, b, xs, ws, ys)


def test_conv1x1_sums_past_int32_and_wide_bias():
    k = 700
    x = np.full((2, k), 32767, np.int16)
    x[1] = -32768
    w = np.full((3, k), 127, np.int8)
    w[1] = -127
    b = np.array([2 ** 40, -(2 ** 40), 7], np.int64)     # an int64 bias beyond int32
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    assert np.abs(acc).max() > 2 ** 31
    _check(x, w, b, np.float32(2 ** -12), np.full(3, 2 ** -7, np.float32), np.float32(2 ** 20))
