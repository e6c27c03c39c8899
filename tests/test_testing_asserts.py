"""``refquant.testing.assert_bit_exact``: shape, then dtype, then bits, and a report that diagnoses.

Each branch of the report is checked on a hand-made pair whose answer is known: the count of
differing elements, the histogram in LSB (integers) or ULP (floats as bit patterns), the first
mismatches with their indices and both values, and the inputs beside them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError, RefquantError
from refquant.testing import MismatchError, assert_bit_exact, mismatch_report


def _report(actual, expected, **kw) -> str:
    with pytest.raises(MismatchError) as exc:
        assert_bit_exact(actual, expected, **kw)
    assert str(exc.value) == mismatch_report(actual, expected, **kw)  # the message is the report
    return str(exc.value)


def _histogram(report: str) -> dict:
    """``{label: count}`` from the report's histogram lines (``  -1: 2``)."""
    lines = report.split("in LSB:" if "in LSB:" in report else "patterns):", 1)[1].split("first ")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\S+): (\d+)$", lines, re.M)}


# --------------------------------------------------------------------------- equal arrays pass


@pytest.mark.parametrize("a", [np.int8([[1, -128], [127, 0]]), np.uint64([2**64 - 1]), np.bool_([True, False]),
                               np.float32([0.5, -0.0, np.inf, np.nan]), np.float64(1.5), np.int16(7),
                               np.zeros((0, 3), np.int32)])
def test_equal_arrays_pass_and_report_none(a):
    assert_bit_exact(a, a.copy())
    assert mismatch_report(a, a.copy()) is None


def test_byte_order_and_layout_do_not_matter():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert_bit_exact(a.astype(">i4"), a)  # big-endian values, same numbers
    assert_bit_exact(np.asfortranarray(a), a)
    assert_bit_exact(np.arange(24, dtype=np.int32).reshape(3, 8)[:, ::2] // 2, a)  # a strided view


def test_nan_equals_nan_with_the_same_bits_only():
    nan = np.float32(np.nan)
    other = np.array([0x7FC00001], np.uint32).view(np.float32)  # a NaN with another payload
    assert_bit_exact(np.float32([nan]), np.float32([nan]))
    report = _report(other, np.float32([nan]))
    assert _histogram(report) == {"nan": 1}
    assert "0x7fc00001" in report and "0x7fc00000" in report


# --------------------------------------------------------------------------- shape, then dtype


def test_shape_is_checked_first():
    report = _report(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int16))
    assert report.startswith("shape differs: actual (2, 3), expected (3, 2)")


def test_dtype_is_checked_before_values():
    report = _report(np.int16([1, 2]), np.int8([1, 3]))
    assert report.startswith("dtype differs: actual int16, expected int8")
    assert "values not compared" in report


# --------------------------------------------------------------------------- integers: LSB


def test_integer_report_counts_histograms_and_lists_first_mismatches():
    expected = np.int8([[1, 2, 3], [4, 5, 6]])
    actual = np.int8([[1, 3, 3], [4, 5, 4]])  # +1 at (0, 1), -2 at (1, 2)
    report = _report(actual, expected)
    assert report.startswith("arrays are not bit-exact: 2 of 6 elements differ (33.3%), shape (2, 3), dtype int8")
    assert _histogram(report) == {"-2": 1, "+1": 1}
    rows = report.split("mismatches (C order):\n")[1].splitlines()
    assert rows[0].split() == ["index", "actual", "expected", "diff"]
    assert rows[1].split() == ["(0,", "1)", "3", "2", "+1"]
    assert rows[2].split() == ["(1,", "2)", "4", "6", "-2"]


def test_plus_minus_one_gets_the_rounding_hint():
    report = _report(np.int8([3, 5]), np.int8([2, 6]))
    assert "all differences are ±1 LSB" in report and "rounding" in report


def test_many_distinct_differences_are_bucketed_by_powers_of_two():
    expected = np.zeros(40, np.int32)
    actual = np.concatenate([np.arange(1, 21), -np.arange(1, 21)]).astype(np.int32)
    hist = _histogram(_report(actual, expected))
    assert hist == {"-17..-32": 4, "-9..-16": 8, "-5..-8": 4, "-3..-4": 2, "-2": 1, "-1": 1,
                    "+1": 1, "+2": 1, "+3..+4": 2, "+5..+8": 4, "+9..+16": 8, "+17..+32": 4}
    assert sum(hist.values()) == 40


def test_64_bit_differences_are_exact():
    report = _report(np.int64([2**63 - 1]), np.int64([-(2**63)]))
    assert _histogram(report) == {f"+{2**64 - 1}": 1}
    report = _report(np.uint64([0]), np.uint64([2**64 - 1]))
    assert _histogram(report) == {f"-{2**64 - 1}": 1}


def test_max_report_limits_the_table():
    report = _report(np.arange(30, dtype=np.int16), np.zeros(30, np.int16), max_report=3)
    assert "first 3 mismatches" in report
    assert report.rstrip().endswith("... and 26 more (max_report=3)")


def test_zero_d_arrays():
    report = _report(np.int8(3), np.int8(4))
    assert "1 of 1 elements differ" in report and "shape ()" in report and "\n  ()" in report


# --------------------------------------------------------------------------- floats: bit patterns, ULP


def test_float_distance_is_in_ulp_and_signed():
    one = np.float32(1.0)
    up = np.nextafter(one, np.float32(2))
    tiny = np.finfo(np.float32).smallest_subnormal
    actual = np.float32([up, one, tiny, 2.0])
    expected = np.float32([one, up, -tiny, 1.0])
    report = _report(actual, expected)
    assert "ULP (floats compared as bit patterns)" in report
    assert _histogram(report) == {"-1": 1, "+1": 1, "+2": 1, f"+{2**23}": 1}  # 1.0 to 2.0: 2^23 float32 steps
    assert "1.0000001192092896 (0x3f800001)" in report


def test_signed_zero_differs_by_bits_at_zero_ulp():
    report = _report(np.float64([0.0]), np.float64([-0.0]))
    assert _histogram(report) == {"0": 1}
    assert "sign of zero" in report and "0x8000000000000000" in report


# --------------------------------------------------------------------------- inputs beside each mismatch


def test_inputs_are_shown_broadcast_flat_or_by_callable():
    y = np.int8([[1, 2, 3], [4, 5, 6]])
    bad = y.copy()
    bad[1, 2] = 9
    x_row = np.float32([0.5, 1.5, 2.5])  # broadcasts along the rows
    x_flat = np.arange(6, dtype=np.int32) * 10  # one per element, another shape
    w = np.zeros((4, 4), np.int8)  # neither: listed by shape
    report = _report(bad, y, inputs={"x": x_row, "flat": x_flat, "row": lambda ij: y[ij[0]], "w": w})
    header, row = report.split("mismatches (C order):\n")[1].splitlines()[:2]
    assert header.split() == ["index", "actual", "expected", "diff", "x", "flat", "row"]
    assert row.split() == ["(1,", "2)", "9", "6", "+3", "2.5", "50", "[4", "5", "6]"]
    assert "input w: shape (4, 4) int8 does not broadcast to the output's (2, 3)" in report


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("arg", ["actual", "expected"])
@pytest.mark.parametrize("value", [[1, 2], 3, "abc", None, np.array(["a", "b"]), np.array([1, None], dtype=object),
                                   np.complex64([1j])])
def test_non_arrays_are_refused_by_name(arg, value):
    kw = {"actual": np.int8([1, 2]), "expected": np.int8([1, 2]), arg: value}
    with pytest.raises(QuantizationTypeError, match=rf"^{arg} must be"):
        assert_bit_exact(**kw)


@pytest.mark.parametrize("inputs, match", [
    ([1, 2], "inputs must be None or a dict"),
    ({1: np.int8([1])}, "inputs keys must be names"),
    ({"x": "text"}, r"inputs\['x'\] must be"),
    ({"x": np.array([None], dtype=object)}, r"inputs\['x'\] must be"),
])
def test_bad_inputs_are_refused(inputs, match):
    with pytest.raises(QuantizationTypeError, match=match):
        assert_bit_exact(np.int8([1]), np.int8([2]), inputs=inputs)


@pytest.mark.parametrize("max_report, error", [(0, QuantizationValueError), (-3, QuantizationValueError),
                                               (2.0, QuantizationTypeError), (True, QuantizationTypeError)])
def test_bad_max_report_is_refused(max_report, error):
    with pytest.raises(error, match="max_report"):
        assert_bit_exact(np.int8([1]), np.int8([1]), max_report=max_report)


def test_the_failure_is_an_assertion_error_and_a_refquant_error():
    """pytest reports it as a failed assertion; ``except RefquantError`` catches it too."""
    assert issubclass(MismatchError, AssertionError) and issubclass(MismatchError, RefquantError)
    with pytest.raises(AssertionError):
        assert_bit_exact(np.int8([1]), np.int8([2]))
