"""Tests for exercise 03. DO NOT EDIT: edit choose.py, then run ``python -m exercises 03``.

First the visible cases you can check by hand (and two measured on PyTorch 2.13), then fresh ranges
compared bit for bit with refquant.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import dequantize, make_qparams, quantize
from refquant.qparams import choose_qparams
from refquant.dtypes import quant_range

ex = load_exercise(__file__, "choose.py")
EPS = np.float32(np.finfo(np.float32).eps)


def _bits(s):
    return f"{float(s)!r} (0x{np.float32(s).view(np.uint32):08X})"


def _check(got, want_scale, want_zp, what):
    scale, zp = got
    assert isinstance(zp, int), f"{what}: return the zero point as a Python int, got {type(zp).__name__}"
    s = np.float32(scale)
    if s.view(np.uint32) != np.float32(want_scale).view(np.uint32):
        hint = ""
        if np.isclose(s, want_scale, rtol=1e-6):
            hint = " (one ulp or so away: do every step in float32, e.g. np.float32(max_val) - np.float32(min_val))"
        pytest.fail(f"{what}: scale {_bits(s)}, expected {_bits(want_scale)}{hint}")
    assert zp == want_zp, f"{what}: zero point {zp}, expected {want_zp}"


# ----------------------------------------------------------------------------- visible cases
def test_affine_worked_example_by_hand():
    # Learn 2, section 4: S = (1.5 + 0.9) / 3 = 0.8, Z = -2 - round(-1.125) = -1
    _check(ex.affine_qparams(-0.9, 1.5, -2, 1), np.float32(0.8), -1, "int2, [-0.9, 1.5]")
    _check(ex.affine_qparams(-1 / 3, 2 / 3, -2, 1), np.float32(1 / 3), -1, "int2, [-1/3, 2/3]")


def test_affine_range_without_zero_by_hand():
    # [2, 4] is widened to [0, 4] (eq. (6)): S = 4 / 255, Z = 0 - round(0 / S) = 0
    _check(ex.affine_qparams(2.0, 4.0, 0, 255), np.float32(4) / np.float32(255), 0, "uint8, [2, 4]")
    # [-4, -2] is widened to [-4, 0]: S = 4 / 255, Z = 0 - round(-4 / S) = 255
    _check(ex.affine_qparams(-4.0, -2.0, 0, 255), np.float32(4) / np.float32(255), 255, "uint8, [-4, -2]")


def test_affine_pytorch_measured():
    # torch 2.13 MinMaxObserver on [-1.3, 0.2, 2.7, 5.1]: quint8 (0.02509804, 52), qint8 (0.02509804, -76)
    _check(ex.affine_qparams(-1.3, 5.1, 0, 255), np.uint32(0x3CCD9A66).view(np.float32), 52, "quint8, [-1.3, 5.1]")
    _check(ex.affine_qparams(-1.3, 5.1, -128, 127), np.uint32(0x3CCD9A66).view(np.float32), -76, "qint8, [-1.3, 5.1]")


def test_affine_all_zero_range_by_hand():
    # (0 - 0) / 255 = 0 < EPS: the scale is EPS; Z = qmin - round(0 / EPS) = qmin (torch 2.13 agrees)
    _check(ex.affine_qparams(0.0, 0.0, 0, 255), EPS, 0, "uint8, all zeros")
    _check(ex.affine_qparams(0.0, 0.0, -128, 127), EPS, -128, "int8, all zeros")


def test_symmetric_by_hand():
    # max(|-1.3|, |5.1|) = 5.1; 5.1 / 127.5 = 0.04 (torch 2.13: qint8 (0.04, 0), quint8 (0.04, 128))
    _check(ex.symmetric_qparams(-1.3, 5.1, -128, 127), np.float32(5.1) / np.float32(127.5), 0, "int8 symmetric")
    _check(ex.symmetric_qparams(-1.3, 5.1, 0, 255), np.float32(5.1) / np.float32(127.5), 128, "uint8 symmetric")
    # narrow range [-127, 127]: the divisor is 127 (TFLite, ONNX Runtime)
    _check(ex.symmetric_qparams(-1.3, 5.1, -127, 127), np.float32(5.1) / np.float32(127), 0, "int8 narrow symmetric")
    _check(ex.symmetric_qparams(-6.0, 1.0, -128, 127), np.float32(6) / np.float32(127.5), 0, "int8 symmetric, [-6, 1]")


# ----------------------------------------------------------------------------- fresh inputs
RANGES = [("int8", {}), ("uint8", {}), ("int8", {"narrow": True}), ("uint8", {"reduce_range": True}),
          ("int8", {"reduce_range": True}), ("int4", {}), ("uint4", {}), ("int16", {}), ("int2", {})]


def _fresh_ranges(seed, n=150):
    rng = np.random.default_rng(seed)
    lo = -(10.0 ** rng.uniform(-4, 2, n)) * (rng.random(n) < 0.85)   # mostly negative, some 0
    hi = (10.0 ** rng.uniform(-4, 2, n)) * (rng.random(n) < 0.85)
    shifted = rng.random(n) < 0.15                                     # ranges that exclude zero
    lo, hi = np.where(shifted, np.abs(lo) + 0.0, lo), np.where(shifted, np.abs(lo) + np.abs(hi), hi)
    return np.minimum(lo, hi).astype(np.float32), np.maximum(lo, hi).astype(np.float32)


@pytest.mark.parametrize("symmetric", [False, True], ids=["affine", "symmetric"])
@pytest.mark.parametrize("fmt,kw", RANGES, ids=[f"{f}{'-' + '-'.join(map(str, k.values())) if k else ''}" for f, k in RANGES])
def test_fresh_ranges_against_refquant(fmt, kw, symmetric):
    qmin, qmax = quant_range(fmt, **kw)
    fn = ex.symmetric_qparams if symmetric else ex.affine_qparams
    lo, hi = _fresh_ranges(seed=31 + RANGES.index((fmt, kw)) + 100 * symmetric)
    for a, b in zip(lo, hi):
        want = choose_qparams(a, b, fmt, symmetric=symmetric, **kw)
        _check(fn(a, b, qmin, qmax), want.scale, int(want.zero_point),
               f"{fn.__name__}({a!r}, {b!r}, {qmin}, {qmax})")


@pytest.mark.parametrize("fmt", ["int8", "uint8", "int4"])
def test_zero_is_exactly_representable(fmt):
    qmin, qmax = quant_range(fmt)
    lo, hi = _fresh_ranges(seed=77)
    for a, b in zip(lo[:50], hi[:50]):
        scale, zp = ex.affine_qparams(a, b, qmin, qmax)
        qp = make_qparams(scale, zp, fmt)
        z = dequantize(quantize(np.zeros(1, np.float32), qp), qp)
        assert z[0] == 0.0, f"affine_qparams({a!r}, {b!r}): 0.0 comes back as {z[0]!r}; Z must be an integer code"
