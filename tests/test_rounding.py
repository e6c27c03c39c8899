"""Rounding modes against an exact oracle written with ``fractions.Fraction``.

The oracle never rounds in floating point: it takes the exact rational value of
each float, its exact floor and fractional part, and applies the mode's rule on
ties. Inputs are edge values for float16, float32 and float64: exact ties, the
nextafter neighbours of every tie, the float32 trap 0.49999997, signed zeros,
subnormals, values past the last fractional bit, the largest finite value, ±inf, NaN.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError
from refquant.rounding import (
    RoundingMode,
    round_by_mode,
    round_ceil,
    round_floor,
    round_half_away_from_zero,
    round_half_down,
    round_half_to_even,
    round_half_toward_zero,
    round_half_up,
    round_stochastic,
    round_toward_zero,
)
from support.exact_oracle import round_exact

pytestmark = pytest.mark.kernels

DTYPES = (np.float16, np.float32, np.float64)
DETERMINISTIC = [m for m in RoundingMode if m is not RoundingMode.STOCHASTIC]
FUNCS = {
    RoundingMode.HALF_TO_EVEN: round_half_to_even,
    RoundingMode.HALF_AWAY_FROM_ZERO: round_half_away_from_zero,
    RoundingMode.HALF_UP: round_half_up,
    RoundingMode.HALF_DOWN: round_half_down,
    RoundingMode.HALF_TOWARD_ZERO: round_half_toward_zero,
    RoundingMode.FLOOR: round_floor,
    RoundingMode.CEIL: round_ceil,
    RoundingMode.TOWARD_ZERO: round_toward_zero,
}


def oracle(value: float, mode: RoundingMode) -> float:
    """Exact rounding of one finite or special float, by the definition of the mode."""
    if math.isnan(value) or math.isinf(value):
        return value
    return float(round_exact(Fraction(value), mode))  # an integer that came from a float: exact


def edge_values(dtype) -> np.ndarray:
    """Deterministic edge set for one float dtype."""
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    mant = fi.nmant  # 10, 23, 52
    ints = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 127, 128, 255, 256, 1023, 1024, 2047]
    ints += [2 ** k + d for k in (mant - 2, mant - 1, mant, mant + 1) for d in (-2, -1, 0, 1)]
    vals = []
    for n in ints:
        for frac in (0.0, 0.25, 0.5, 0.75):
            vals.append(n + frac)
    vals += [0.49999997, 0.5000001, 1e-3, 0.1, 0.7, 1.3, 2.6]
    base = np.array(vals + [-v for v in vals], np.float64)
    base = base[np.isfinite(base.astype(dt))]
    x = base.astype(dt)
    x = x[x.astype(np.float64) == base]  # keep only exactly representable values (the ties)
    up = np.nextafter(x, dt.type(np.inf))
    down = np.nextafter(x, dt.type(-np.inf))
    specials = np.array([0.0, -0.0, fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny, -fi.tiny,
                         fi.max, -fi.max, np.nextafter(fi.max, dt.type(0)), np.inf, -np.inf, np.nan,
                         2.0 ** mant, 2.0 ** (mant + 1), -2.0 ** mant, 2.0 ** mant - 0.5,
                         np.nextafter(dt.type(0.5), dt.type(0)), -np.nextafter(dt.type(0.5), dt.type(0))], dt)
    return np.concatenate([x, up, down, specials]).astype(dt)


def _check(got: np.ndarray, x: np.ndarray, mode: RoundingMode):
    assert got.shape == x.shape
    assert got.dtype == x.dtype, f"{mode.value}: dtype {got.dtype} != input dtype {x.dtype}"
    want = np.array([oracle(float(v), mode) for v in x], np.float64)
    g = got.astype(np.float64)
    same = (g == want) | (np.isnan(g) & np.isnan(want))
    if not same.all():
        i = np.flatnonzero(~same)[:8]
        rows = "\n".join(f"  x={x[j]!r:>28}  got={g[j]!r:>24}  want={want[j]!r}" for j in i)
        pytest.fail(f"{mode.value} on {x.dtype}: {int((~same).sum())} mismatches\n{rows}")
    # IEEE roundToIntegral: a zero result carries the sign of x (as np.rint/floor/ceil/trunc do)
    zero = (want == 0)
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(x[zero]),
                                  err_msg=f"{mode.value}: sign of zero not preserved")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", DETERMINISTIC, ids=lambda m: m.value)
def test_modes_against_fraction_oracle(mode, dtype):
    x = edge_values(dtype)
    _check(FUNCS[mode](x), x, mode)
    _check(round_by_mode(x, mode), x, mode)
    _check(round_by_mode(x, mode.value), x, mode)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", DETERMINISTIC, ids=lambda m: m.value)
def test_modes_random_against_oracle(mode, dtype):
    rng = np.random.default_rng(1234)
    scale = {np.float16: 100.0, np.float32: 1e4, np.float64: 1e6}[dtype]
    x = (rng.standard_normal(600) * scale).astype(dtype)
    halves = (rng.integers(-4000, 4000, 200) + 0.5).astype(dtype)  # many exact ties
    x = np.concatenate([x, halves, np.nextafter(halves, dtype(np.inf))])
    _check(FUNCS[mode](x), x, mode)


def test_float32_trap():
    """floor(x + 0.5) rounds 0.49999997f + 0.5 to 1.0; the modes must not."""
    x = np.float32(0.49999997)
    assert np.floor(x + np.float32(0.5)) == 1.0  # the trap is real
    for mode in (RoundingMode.HALF_AWAY_FROM_ZERO, RoundingMode.HALF_UP, RoundingMode.HALF_TO_EVEN,
                 RoundingMode.HALF_DOWN, RoundingMode.HALF_TOWARD_ZERO):
        assert round_by_mode(np.array([x, -x]), mode).tolist() == [0.0, -0.0], mode


def test_hand_values_on_ties():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)
    table = {
        "half_to_even": [0, 2, 2, 0, -2, -2],
        "half_away_from_zero": [1, 2, 3, -1, -2, -3],
        "half_up": [1, 2, 3, 0, -1, -2],
        "half_down": [0, 1, 2, -1, -2, -3],
        "half_toward_zero": [0, 1, 2, 0, -1, -2],
        "floor": [0, 1, 2, -1, -2, -3],
        "ceil": [1, 2, 3, 0, -1, -2],
        "toward_zero": [0, 1, 2, 0, -1, -2],
    }
    for mode, want in table.items():
        np.testing.assert_array_equal(round_by_mode(x, mode), np.array(want, np.float32), err_msg=mode)


def test_integer_input_becomes_float64():
    out = round_by_mode(np.array([1, -2, 3], np.int32), "half_up")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, -2.0, 3.0])


def test_scalar_and_empty_inputs():
    assert round_by_mode(2.5, "half_to_even") == 2.0
    assert round_half_away_from_zero(np.float32(-2.5)) == -3.0
    for mode in RoundingMode:
        out = round_by_mode(np.zeros((0, 3), np.float32), mode, seed=0)
        assert out.shape == (0, 3) and out.dtype == np.float32


@pytest.mark.parametrize("mode", list(RoundingMode), ids=lambda m: m.value)
def test_every_mode_rejects_non_numeric_input(mode):
    fn = FUNCS.get(mode, round_stochastic)
    for bad in (np.array(["a"]), np.array([1 + 2j]), np.array([None], dtype=object)):
        with pytest.raises(QuantizationTypeError, match="x must be a real numeric array"):
            fn(bad)
        with pytest.raises(QuantizationTypeError, match="x must be a real numeric array"):
            round_by_mode(bad, mode)


def test_bad_inputs():
    with pytest.raises(QuantizationValueError, match="mode must be one of"):
        round_by_mode(np.ones(2), "nearest")
    with pytest.raises(QuantizationTypeError, match="dtype"):
        round_half_up(np.array(["a"]))
    with pytest.raises(QuantizationTypeError):
        round_floor(np.array([1 + 2j]))
    with pytest.raises(QuantizationValueError, match="seed or rng"):
        round_stochastic(np.ones(2), seed=1, rng=np.random.default_rng(1))


# ---------------------------------------------------------------- stochastic rounding

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_stochastic_only_floor_or_ceil_and_deterministic(dtype):
    x = edge_values(dtype)
    r1 = round_stochastic(x, seed=7)
    r2 = round_stochastic(x, seed=7)
    r3 = round_by_mode(x, "stochastic", rng=np.random.default_rng(7))
    assert r1.dtype == x.dtype
    np.testing.assert_array_equal(r1.view(np.uint8), r2.view(np.uint8))  # bit-identical per seed
    np.testing.assert_array_equal(r1.view(np.uint8), r3.view(np.uint8))
    fin = np.isfinite(x)
    lo = np.floor(x[fin].astype(np.float64))
    hi = np.ceil(x[fin].astype(np.float64))
    got = r1[fin].astype(np.float64)
    assert np.all((got == lo) | (got == hi)), "stochastic rounding produced a value other than floor/ceil"
    np.testing.assert_array_equal(r1[~fin], x[~fin])  # inf and NaN pass through
    ints = fin & (x == np.floor(x))
    np.testing.assert_array_equal(r1[ints], x[ints])  # integers never move


def test_stochastic_changes_with_seed():
    x = np.full(1000, 0.5, np.float32)
    assert not np.array_equal(round_stochastic(x, seed=1), round_stochastic(x, seed=2))


@pytest.mark.parametrize("value", [0.3, -2.7, 5.5, -0.125, 1e-3, 123.875])
def test_stochastic_unbiased(value):
    """E[round(x)] = x: the sample mean is within 5 standard errors (p < 1e-6 per case)."""
    n = 200_000
    x = np.full(n, value, np.float32)
    r = round_stochastic(x, seed=2024).astype(np.float64)
    p = float(np.float32(value)) - math.floor(float(np.float32(value)))
    stderr = math.sqrt(max(p * (1 - p), 1e-12) / n)
    assert abs(r.mean() - float(np.float32(value))) <= 5 * stderr + 1e-12, (r.mean(), value, stderr)
