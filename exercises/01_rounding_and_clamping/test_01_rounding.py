"""Tests for exercise 01. DO NOT EDIT: edit rounding.py, then run ``python -m exercises 01``.

First the visible cases you can check by hand, then fresh inputs compared with refquant.
"""

import inspect

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import rounding as R
from refquant.dtypes import FORMATS, quant_range
from refquant import make_qparams, quantize

ex = load_exercise(__file__, "rounding.py")

TIES = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
EXPECTED_TIES = {
    "round_half_to_even": [-2, -2, 0, 0, 2, 2],
    "round_half_away_from_zero": [-3, -2, -1, 1, 2, 3],
    "round_half_up": [-2, -1, 0, 1, 2, 3],
}
FUNCS = list(EXPECTED_TIES)
REFERENCE = {name: getattr(R, name) for name in FUNCS}


def _which_mode(x, got):
    """Name the refquant rounding modes that give ``got`` on ``x`` (for failure messages)."""
    names = [m.value for m in R.RoundingMode if m is not R.RoundingMode.STOCHASTIC
             and np.array_equal(R.round_by_mode(x, m), got, equal_nan=True)]
    return f"your output matches refquant's {names}" if names else "your output matches no refquant rounding mode"


def _check(name, x):
    got = np.asarray(getattr(ex, name)(x))
    want = REFERENCE[name](x)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == x.dtype, f"{name}: returned dtype {got.dtype} for a {x.dtype} input; keep the input's dtype"
    bad = ~((got == want) | (np.isnan(got) & np.isnan(want)))
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        pairs = ", ".join(f"x={x.flat[j]!r}: got {got.flat[j]!r}, expected {want.flat[j]!r}" for j in i)
        pytest.fail(f"{name}: {bad.sum()} of {x.size} values differ ({_which_mode(x[bad], got[bad])}). "
                    f"First: {pairs}. See Conventions, 'Rounding names'.")


# ----------------------------------------------------------------------------- visible cases
@pytest.mark.parametrize("name", FUNCS)
def test_ties_by_hand(name):
    got = getattr(ex, name)(TIES)
    assert [int(v) for v in got] == EXPECTED_TIES[name], (
        f"{name}({TIES.tolist()}) gave {list(np.asarray(got))}, expected {EXPECTED_TIES[name]}; "
        f"{_which_mode(TIES, np.asarray(got))}")


@pytest.mark.parametrize("name", FUNCS)
def test_non_ties_by_hand(name):
    x = np.array([-1.7, -1.2, -0.2, 0.0, 0.2, 1.2, 1.7, 3.0])
    assert [int(v) for v in getattr(ex, name)(x)] == [-2, -1, 0, 0, 0, 1, 2, 3]


@pytest.mark.parametrize("name", ["round_half_away_from_zero", "round_half_up"])
def test_float32_trap(name):
    x = np.array([0.49999997, -0.49999997], dtype=np.float32)  # the float32 neighbours of +-0.5
    got = getattr(ex, name)(x)
    assert [float(v) for v in got] == [0.0, 0.0], (
        f"{name}({x.tolist()}) gave {got.tolist()}: did you compute floor(x + 0.5) in float32? "
        f"x + 0.5 rounds to 1.0 there (Learn 1, section 2)")


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_specials(name, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 2.0 ** 24 + 2, -1e30], dtype=dtype)
    got = getattr(ex, name)(x)
    assert got.dtype == dtype, f"{name} returned {got.dtype} for {np.dtype(dtype).name} input"
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf, f"{name}: NaN/inf must pass through, got {got[:3]}"
    assert got[3] == x[3] and got[4] == x[4], f"{name}: large integers must stay themselves, got {got[3:]}"


def test_rne_does_not_call_numpy_round():
    ex.round_half_to_even(TIES)  # implemented at all?
    src = inspect.getsource(ex.round_half_to_even)
    body = src.split("# BEGIN YOUR SOLUTION")[-1]
    assert "rint" not in body and "round(" not in body, \
        "round_half_to_even: build it from np.floor and the fraction, without np.rint/np.round"


def test_int_range_by_hand():
    assert ex.int_range(8, True) == (-128, 127)
    assert ex.int_range(8, False) == (0, 255)
    assert ex.int_range(8, True, narrow=True) == (-127, 127)
    assert ex.int_range(2, True) == (-2, 1)
    assert ex.int_range(4, False) == (0, 15)


def test_saturate_by_hand():
    got = ex.saturate(np.array([200, -200, 300, 100]), -128, 127)
    assert np.asarray(got).tolist() == [127, -128, 127, 100], (
        f"got {np.asarray(got).tolist()}; 200 must saturate to 127, not wrap to -56")
    assert np.asarray(got).dtype == np.int64


# ----------------------------------------------------------------------------- fresh inputs
def _fresh(dtype, seed):
    rng = np.random.default_rng(seed)
    k = rng.integers(-1000, 1000, 400).astype(dtype)
    x = np.concatenate([
        rng.uniform(-300, 300, 2000),
        k + dtype(0.5),                                            # exact ties
        np.nextafter(k + dtype(0.5), dtype(np.inf)),               # just above a tie
        np.nextafter(k + dtype(0.5), dtype(-np.inf)),              # just below a tie
        -rng.uniform(0, 1e-6, 50), rng.uniform(0, 1e-6, 50),       # tiny, both signs
    ]).astype(dtype)
    return rng.permutation(x)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fresh_inputs_against_refquant(name, dtype):
    _check(name, _fresh(dtype, seed=20250 + FUNCS.index(name)))


def test_int_range_every_format():
    for name, f in FORMATS.items():
        for narrow in (False, True):
            assert ex.int_range(f.bits, f.signed, narrow=narrow) == quant_range(name, narrow=narrow), \
                f"int_range({f.bits}, {f.signed}, narrow={narrow}) for {name}"


def test_saturate_against_refquant():
    rng = np.random.default_rng(7)
    for fmt in ("int8", "uint8", "int4", "int16"):
        f = FORMATS[fmt]
        v = rng.integers(-3 * 2 ** f.bits, 3 * 2 ** f.bits, 500)
        # refquant's quantizer with S = 1, Z = 0 saturates integer-valued input: the same thing
        want = quantize(v.astype(np.float64), make_qparams(1.0, 0, fmt))
        np.testing.assert_array_equal(ex.saturate(v, f.qmin, f.qmax), want, err_msg=f"format {fmt}")
