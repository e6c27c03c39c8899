"""Tests of the int16 activation kernels: refquant.kernels.lut16, .softmax16, .sigmoid16, .fixedpoint16.

The tables against an independent vectorized float64 transcription of LiteRT's ``LUTPopulateInt16``
(and a 1-LSB bound to the function itself), the constant sigmoid table against its definition,
every NumPy reference against its Numba kernel bit for bit (all 65,536 codes where the input is
one code), hand-worked parameters, float bounds, and bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refquant.errors import (
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)
from refquant.kernels import fixedpoint16 as fp16
from refquant.kernels import lut, lut16
from refquant.kernels import sigmoid16 as sg
from refquant.kernels import softmax16 as sm

pytestmark = pytest.mark.kernels
ALL16 = np.arange(-32768, 32768, dtype=np.int16)
F32 = np.float32


def both(fn_ref, fn_fast, *args, **kw):
    ref, fast = fn_ref(*args, **kw), fn_fast(*args, **kw)
    assert ref.shape == fast.shape and ref.dtype == fast.dtype
    np.testing.assert_array_equal(fast, ref, err_msg=f"{fn_fast.__name__}: Numba != reference")
    return ref


def rhaz(v):
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def gen_lut_vectorized(fn, sx, zx, sy, zy):
    """LiteRT's LUTPopulateInt16<double>, written again with NumPy arrays (fn vectorized)."""
    a, b = sx * (-32768 - zx), sx * (32767 - zx)
    c, d = sy * (-32768 - zy), sy * (32767 - zy)
    step = (b - a) / 512
    inv = 65536.0 / (d - c)
    i = np.arange(512, dtype=np.float64)
    val, mid, nxt = fn(a + i * step), fn(a + i * step + step / 2), fn(a + (i + 1) * step)
    bias = rhaz((rhaz((nxt * inv + rhaz(val * inv)) / 2) - rhaz(mid * inv)) / 2)
    body = np.clip(rhaz(val * inv) - bias, -32768, 32767)
    return np.append(body, np.clip(rhaz(fn(np.float64(b)) * inv), -32768, 32767)).astype(np.int16)


def test_softmax_tables_vs_float64():
    exp_lut, recip_lut = lut16.softmax_exp_lut16(), lut16.softmax_reciprocal_lut16()
    assert exp_lut.shape == recip_lut.shape == (513,) and exp_lut.dtype == np.int16
    np.testing.assert_array_equal(exp_lut, gen_lut_vectorized(np.exp, 10 / 65535, 32767, 2 / 65535, 0))
    np.testing.assert_array_equal(recip_lut, gen_lut_vectorized(lambda u: 1 / (1 + u), 1 / 65535, -32768,
                                                                2 / 65535, 0))
    u = np.linspace(-10.0, 0.0, 513)  # the sample points, to within 1e-12
    # a rounded sample (0.5) minus the midpoint bias (0 or +-1)
    assert np.max(np.abs(exp_lut - np.minimum(np.exp(u) * 32768, 32767))) <= 1.5
    assert exp_lut[512] == 32767 and recip_lut[0] == 32767 and recip_lut[512] == 16384  # 1.0 clamps; 1/2
    assert not exp_lut.flags.writeable


def test_populate_lut16_generic_and_bad_input():
    t = lut16.populate_lut16(math.tanh, 8 / 32768, 0, 1 / 32768, 0)
    np.testing.assert_array_equal(t, gen_lut_vectorized(np.tanh, 8 / 32768, 0, 1 / 32768, 0))
    with pytest.raises(QuantizationTypeError, match="fn must be callable"):
        lut16.populate_lut16(3, 1.0, 0, 1.0, 0)
    with pytest.raises(QuantizationValueError, match="output_scale must be > 0"):
        lut16.populate_lut16(math.exp, 1.0, 0, -1.0, 0)


def test_lut16_lookup_twins_and_hand_values():
    exp_lut = lut16.softmax_exp_lut16()
    y = both(lut16.lut16_lookup_reference, lut16.lut16_lookup, ALL16.reshape(256, 256), exp_lut)
    t = exp_lut.astype(np.int64)
    assert y[-1, -1] == t[511] + ((t[512] - t[511]) * 127 + 64) // 128  # 32767: entry 511, offset 127
    assert y.ravel()[0] == exp_lut[0]  # -32768: entry 0, offset 0
    steep = np.random.default_rng(1).integers(-32768, 32768, 513).astype(np.int16)  # slopes past int16 wrap
    both(lut16.lut16_lookup_reference, lut16.lut16_lookup, ALL16, steep)
    with pytest.raises(QuantizationTypeError, match="x must (be a NumPy int16|have dtype int16)"):
        lut16.lut16_lookup(ALL16.astype(np.int32), exp_lut)
    with pytest.raises(ShapeError, match=r"lut must be a \(513,\) int16"):
        lut16.lut16_lookup(ALL16, exp_lut[:256])


def test_softmax16_twins_edges_and_float():
    rng = np.random.default_rng(2)
    for xs, beta in ((1e-3, 1.0), (2.0 ** -10, 0.7), (1e-6, 3.0), (4.0, 1.0)):
        q, s = sm.softmax16_params(xs, beta)
        for shape in ((1,), (9,), (3, 1), (4, 257), (2, 3, 5), (2, 2, 2, 31)):
            x = rng.integers(-32768, 32768, shape).astype(np.int16)
            both(sm.softmax16_reference, sm.softmax16, x, q, s)
        for fill in (-32768, 32767):
            y = both(sm.softmax16_reference, sm.softmax16, np.full((2, 4), fill, np.int16), q, s)
            assert np.all(y == y.ravel()[0])
    q, s = sm.softmax16_params(1e-3, 1.0)
    x = rng.integers(-3000, 3000, (50, 20)).astype(np.int16)
    y = sm.softmax16(x, q, s).astype(np.float64) / 32768
    e = np.exp((x - x.max(axis=1, keepdims=True)) * np.float64(F32(1e-3)))
    assert np.max(np.abs(y - e / e.sum(axis=1, keepdims=True))) < 2e-3  # tables are 16-bit, 513 entries
    assert sm.softmax16(np.zeros((0, 3), np.int16), q, s).shape == (0, 3)


def test_softmax16_params_and_refusals():
    assert sm.softmax16_params(10 / 65535, 1.0)[1] == 1  # x_scale * beta = 10/65535 maps to multiplier ~1
    q, s = sm.softmax16_params(2.0 ** -10, 1.0)  # 2^-10 * 6553.5 = 6.3999 -> 0.79999 * 2^3
    assert s == 3 and abs(q / 2 ** 31 * 8 - 2.0 ** -10 / (10 / 65535)) < 1e-9
    with pytest.raises(UnsupportedError, match="left shift of 33"):
        sm.softmax16_params(2.0 ** 20, 1.0)
    with pytest.raises(QuantizationValueError, match="beta must be finite and > 0"):
        sm.softmax16_params(0.1, 0.0)
    assert sm.softmax16(np.zeros((1, 65548), np.int16), *sm.softmax16_params(1e-3)).shape == (1, 65548)
    long_row = np.zeros((1, 65549), np.int16)  # 65549 * 32762 > 2^31 - 1 (T_exp at 0 is 32762)
    for fn in (sm.softmax16_reference, sm.softmax16):
        with pytest.raises(UnsupportedError, match="65548"):
            fn(long_row, *sm.softmax16_params(1e-3))
    with pytest.raises(ShapeError, match="at least one dimension"):
        sm.softmax16(np.zeros((), np.int16), 1 << 30, 0)


def test_sigmoid_table_definition():
    """The transcribed constant is sigma(i/24) in 0.16 to within 1.5 LSB (upstream rounds some entries past the nearest),
    monotone, and its checksum pins the transcription."""
    i = np.arange(256)
    t = sg.SIGMOID_TABLE_UINT16.astype(np.float64)
    assert sg.SIGMOID_TABLE_UINT16.dtype == np.uint16 and t[0] == 32768 and t[255] == 65535
    assert np.max(np.abs(t[:255] - 65536 / (1 + np.exp(-i[:255] / 24)))) < 1.5
    assert np.all(np.diff(t) >= 0) and int(t.sum()) == 15_670_629


def test_checked_log2_and_params():
    assert sg.checked_log2(2.0 ** -12) == (-12, True)
    assert sg.checked_log2(2.0 ** -12 * 1.0006) == (-12, True)  # |log2 frac| = 8.7e-4 < 1e-3
    assert sg.checked_log2(2.0 ** -12 * 1.0008) == (-12, False)
    assert sg.sigmoid16_params(2.0 ** -12) == (0, 0)
    assert sg.sigmoid16_params(2.0 ** -11) == (24576, 12)  # logistic: only 2^-12 is its power-of-two case; 6 * 2^12
    assert sg.sigmoid16_params(2.0 ** -11, op="tanh") == (0, 1)
    assert sg.sigmoid16_params(2.0 ** -10) == (24576, 11)  # 12 * 2^11
    assert sg.sigmoid16_params(1.0) == (24576, 1)  # 12288 <= 16383.5: doubled once
    assert sg.sigmoid16_params(1e-12) == (int(F32(1e-12) * 12288.0 * 2.0 ** 31), 31)  # the loop stops at 31
    with pytest.raises(UnsupportedError, match="does not fit an int32"):
        sg.sigmoid16_params(2.0 ** 18)


@pytest.mark.parametrize("xs", [2.0 ** -12, 2.0 ** -11, 1 / 32767, 3e-4, 1e-6, 0.02, 6.0, 100.0])
def test_logistic_tanh16_twins_every_code(xs):
    for op, ref, fast in (("logistic", sg.logistic16_reference, sg.logistic16),
                          ("tanh", sg.tanh16_reference, sg.tanh16)):
        m, ls = sg.sigmoid16_params(xs, op=op)
        y = both(ref, fast, ALL16.reshape(64, 1024), m, ls).ravel()
        if xs < 1e-3 and xs > 1e-5:  # the interpolated table: a few LSB of the float function
            u = ALL16 * np.float64(F32(xs))
            f = 1 / (1 + np.exp(-u)) if op == "logistic" else np.tanh(u)
            assert np.max(np.abs(y / 32768 - f)) < 5e-4, op
        assert np.all(np.diff(y.astype(np.int64)) >= 0) or xs >= 6.0  # monotone until the product wraps


def test_sigmoid16_bad_input():
    with pytest.raises(QuantizationValueError, match="input_left_shift must be 0 or 1"):
        sg.logistic16(ALL16, 0, 2)
    with pytest.raises(QuantizationTypeError, match="x must (be a NumPy int16|have dtype int16)"):
        sg.tanh16(ALL16.astype(np.int8), 3, 0)
    with pytest.raises(QuantizationValueError, match="op must be"):
        sg.sigmoid16_params(1e-3, op="relu")


def test_fixedpoint16_twins_lanes_and_float():
    for ref, fast, kw in ((fp16.logistic_q3_reference, fp16.logistic_q3, {}),
                          (fp16.tanh_q3_reference, fp16.tanh_q3, {}),
                          (fp16.tanh_q3_reference, fp16.tanh_q3, {"double_input": True})):
        scalar = both(ref, fast, ALL16, **kw)
        lanes = both(ref, fast, ALL16, lanes=True, **kw)
        np.testing.assert_array_equal(lanes, scalar)  # the two roundings never reach the output
    u = ALL16 / 4096.0
    assert np.max(np.abs(fp16.logistic_q3(ALL16) / 32768 - 1 / (1 + np.exp(-u)))) < 2.5e-4  # about 6 LSB of Q0.15
    assert np.max(np.abs(fp16.tanh_q3(ALL16) / 32768 - np.tanh(u))) < 4e-4  # about 12 LSB
    assert fp16.logistic_q3(np.zeros(1, np.int16))[0] == 16384 and fp16.tanh_q3(np.zeros(1, np.int16))[0] == 0
    with pytest.raises(QuantizationTypeError, match="x must (be a NumPy int16|have dtype int16)"):
        fp16.logistic_q3(ALL16.astype(np.int32))


def test_tanh_lut_rne_vs_float64():
    rng = np.random.default_rng(4)
    for trial in range(40):
        dt = np.int8 if trial % 2 == 0 else np.uint8
        info = np.iinfo(dt)
        xs, xz = F32(rng.uniform(0.005, 0.3)), int(rng.integers(info.min, info.max + 1))
        ys, yz = F32(rng.uniform(1 / 200, 1 / 40)), int(rng.integers(info.min, info.max + 1))
        d = lut.lut_inputs(xs, xz, dt).astype(np.float64)
        want = np.clip(np.round(np.tanh(d) / np.float64(ys)) + yz, info.min, info.max)
        t = lut.tanh_lut_rne(xs, xz, ys, yz, dtype=dt)
        assert t.dtype == dt and np.max(np.abs(t.astype(np.int64) - want)) <= 1
    assert lut.tanh_lut_rne(1.0, 0, dtype="int8")[0] == 0 and lut.tanh_lut_rne(1.0, 0, dtype="int8")[127] == 127
