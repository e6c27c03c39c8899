"""Bit-exact comparison with a report that diagnoses: the assertion a golden-reference test calls.

:func:`assert_bit_exact` compares shape, then dtype, then every element by its bits, and on failure
raises an ``AssertionError`` whose message says how many elements differ, how far (a histogram of
the differences in LSB, or in ULP for float outputs) and which ones first, side by side with the
inputs that produced them (style.md, "Failure messages that diagnose"; llm.c's ``OK`` / ``NOT OK``).

* **Integer codes**: the difference is ``actual - expected`` in LSB, computed exactly (int64 and
  uint64 in Python integers, never wrapped). All differences $\\pm 1$ usually mean a rounding rule
  (ties, single vs double rounding, float vs fixed-point multiplier); a difference that reaches
  the range end usually means saturation or a zero point added on the wrong side of the clamp.
* **Floats** are compared as bit patterns: ``-0.0`` differs from ``0.0``, and a NaN equals a NaN
  with the same bits (a different payload or sign is reported). The distance is in ULP: the
  number of representable values between the two, signed (actual after expected is positive);
  ``±0`` are 0 ULP apart, a NaN on either side has no distance (``nan`` in the histogram).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, RefquantError

__all__ = ["MismatchError", "assert_bit_exact", "mismatch_report"]

_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_EXACT_BUCKETS = 12  # up to this many distinct differences, the histogram lists each one


class MismatchError(RefquantError, AssertionError):
    """Raised by :func:`assert_bit_exact` (and :meth:`refquant.testing.Golden.check`): the arrays are
    not bit-exact. An ``AssertionError``, so a test fails with it as with ``assert``; the message is the
    report."""


def assert_bit_exact(actual, expected, *, inputs=None, max_report: int = 10) -> None:
    """Assert ``actual`` equals ``expected`` bit for bit: shape, then dtype, then every element.

    Args:
        actual: The result under test: a NumPy array or scalar (bool, integer or float). A Python
            list is refused: integer codes carry their dtype, and a list does not say int8 or uint8.
        expected: The golden result (refquant's), the same way.
        inputs: ``None``, or a dict name → what produced each output element, shown beside each
            reported mismatch: an array that broadcasts to the output's shape (indexed at the
            mismatch), an array with as many elements as the output (indexed at the flat
            position), or a callable ``index -> value`` (a row of ``x`` for a matmul output
            ``y[i, j]``: ``lambda ij: x[ij[0]]``). Arrays that fit none of these are listed by shape.
        max_report: How many mismatches to show (the first ones in C order), >= 1.

    Raises:
        MismatchError: Shapes, dtypes or values differ (an ``AssertionError``); the message is the
            report of :func:`mismatch_report`.
        QuantizationTypeError: ``actual`` or ``expected`` is not a NumPy array of bools, integers
            or floats; ``inputs`` is not a dict of arrays or callables.
        QuantizationValueError: ``max_report`` < 1.

    Example:
        >>> import numpy as np
        >>> assert_bit_exact(np.int8([1, 2]), np.int8([1, 2]))  # passes silently
    """
    report = mismatch_report(actual, expected, inputs=inputs, max_report=max_report)
    if report is not None:
        raise MismatchError(report)


def mismatch_report(actual, expected, *, inputs=None, max_report: int = 10) -> str | None:
    """The failure message of :func:`assert_bit_exact`, or ``None`` when the arrays are bit-exact.

    Same arguments and argument errors as :func:`assert_bit_exact`; never raises :class:`MismatchError`.
    """
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    inputs = _check_inputs(inputs)
    max_report = V.as_positive_int(max_report, "max_report")
    if a.shape != e.shape:
        return f"shape differs: actual {a.shape}, expected {e.shape} (dtypes and values not compared)"
    if a.dtype != e.dtype:
        return (f"dtype differs: actual {a.dtype}, expected {e.dtype} (shape {a.shape}; values not compared: "
                f"cast on purpose if the dtypes are meant to differ)")
    is_float = a.dtype.kind == "f"
    ba, be = (_bits(a), _bits(e)) if is_float else (a, e)
    flat = np.flatnonzero(ba.reshape(-1) != be.reshape(-1))  # (n_diff,) int64 positions in C order
    if flat.size == 0:
        return None
    av, ev = a.reshape(-1)[flat], e.reshape(-1)[flat]
    diffs = _ulp_diffs(av, ev) if is_float else _lsb_diffs(av, ev)
    unit = "ULP" if is_float else "LSB"
    lines = [f"arrays are not bit-exact: {flat.size} of {a.size} elements differ ({100 * flat.size / a.size:.3g}%), "
             f"shape {a.shape}, dtype {a.dtype}",
             f"difference actual - expected in {unit}{' (floats compared as bit patterns)' if is_float else ''}:"]
    lines += [f"  {label:>14}: {count}" for label, count in _histogram(diffs)]
    hint = _hint(diffs, e, unit)
    if hint:
        lines.append(hint)
    lines += _table(a, e, flat[:max_report], diffs[:max_report], inputs, is_float)
    if flat.size > max_report:
        lines.append(f"  ... and {flat.size - max_report} more (max_report={max_report})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- argument checks


def _as_array(x, name: str) -> np.ndarray:
    if not isinstance(x, (np.ndarray, np.generic)):
        raise QuantizationTypeError(f"{name} must be a NumPy array or scalar (integer codes carry their dtype: a "
                                    f"list does not say int8 or uint8), got {V.describe(x)}")
    a = np.asarray(x)
    if a.dtype.kind not in _KINDS:
        raise QuantizationTypeError(f"{name} must be an array of bools, integers or floats, got dtype {a.dtype}")
    a = V.native(a)
    return a if a.flags.c_contiguous else a.copy(order="C")  # bit views need C order; keeps 0-d arrays 0-d


def _check_inputs(inputs) -> dict:
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise QuantizationTypeError(f"inputs must be None or a dict name -> array or callable, "
                                    f"got {V.describe(inputs)}")
    out = {}
    for k, v in inputs.items():
        if not isinstance(k, str):
            raise QuantizationTypeError(f"inputs keys must be names (str), got {V.describe(k)}")
        out[k] = v if callable(v) else V.asarray(v, f"inputs[{k!r}]", kinds=_KINDS)
    return out


# ----------------------------------------------------------------------------- distances


def _bits(a: np.ndarray) -> np.ndarray:
    """The bit patterns of a float array, as unsigned integers of the same width."""
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _lsb_diffs(av: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """``actual - expected`` for the differing elements: int64, or Python ints for 64-bit dtypes."""
    if av.dtype.itemsize < 8:
        return av.astype(np.int64) - ev.astype(np.int64)  # (n,) int64, exact
    return np.array([int(x) - int(y) for x, y in zip(av.tolist(), ev.tolist())], dtype=object)


def _ordered(bits: int, width: int) -> int:
    """A float's bit pattern mapped to a signed integer that counts representable values (±0 -> 0)."""
    sign = 1 << (8 * width - 1)
    return -(bits & (sign - 1)) if bits & sign else bits


def _ulp_diffs(av: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Signed ULP distance of the differing elements (Python ints), ``None`` where either is NaN."""
    width = av.dtype.itemsize
    ba, be = _bits(av).tolist(), _bits(ev).tolist()
    nan = (np.isnan(av) | np.isnan(ev)).tolist()
    return np.array([None if n else _ordered(x, width) - _ordered(y, width) for x, y, n in zip(ba, be, nan)],
                    dtype=object)


def _histogram(diffs: np.ndarray) -> list[tuple[str, int]]:
    """(label, count) rows: every distinct difference when few, else signed power-of-two buckets."""
    values = [d for d in diffs.tolist() if d is not None]
    distinct = sorted(set(values))
    if len(distinct) <= _EXACT_BUCKETS:
        rows = [(f"{d:+d}" if d else "0", values.count(d)) for d in distinct]
    else:
        buckets: dict[int, int] = {}  # signed upper end (a power of two) -> count
        for d in values:
            hi = 1 << (abs(d) - 1).bit_length() if d else 0  # |d| in (hi/2, hi]
            buckets[hi if d >= 0 else -hi] = buckets.get(hi if d >= 0 else -hi, 0) + 1
        rows = []
        for key in sorted(buckets):
            hi = abs(key)
            lo = hi // 2 + 1 if hi > 2 else hi
            sign = -1 if key < 0 else 1
            label = "0" if hi == 0 else f"{sign * hi:+d}" if lo == hi else f"{sign * lo:+d}..{sign * hi:+d}"
            rows.append((label, buckets[key]))
    n_nan = sum(d is None for d in diffs.tolist())
    if n_nan:
        rows.append(("nan", n_nan))
    return rows


def _hint(diffs: np.ndarray, e: np.ndarray, unit: str) -> str:
    values = [d for d in diffs.tolist() if d is not None]
    if unit == "LSB" and values and all(abs(d) == 1 for d in values):
        return ("all differences are ±1 LSB: usually a rounding rule (ties to even vs away from zero, single vs "
                "double rounding, float vs fixed-point multiplier)")
    if unit == "ULP" and values and all(d == 0 for d in values):
        return "the values differ only in the sign of zero (+0.0 vs -0.0)"
    return ""


# ----------------------------------------------------------------------------- the table


def _fmt(v, is_float: bool) -> str:
    if is_float:
        bits = int(np.asarray(v).view(np.dtype(f"u{np.asarray(v).dtype.itemsize}")))
        return f"{v.item()!r} (0x{bits:0{2 * np.asarray(v).dtype.itemsize}x})"
    return str(v.item() if isinstance(v, np.generic) else v)


def _short(v) -> str:
    if isinstance(v, np.ndarray) and v.ndim > 0:
        text = np.array2string(v, threshold=8, edgeitems=3, max_line_width=60)
        return " ".join(text.split())
    if isinstance(v, (np.generic, np.ndarray)):
        return repr(np.asarray(v).item())
    return V.describe(v)


def _input_columns(inputs: dict, shape: tuple) -> tuple[dict, list[str]]:
    """name -> function(flat position, index) -> text, and notes about inputs shown by shape only."""
    size = int(np.prod(shape, dtype=np.int64))
    cols, notes = {}, []
    for name, v in inputs.items():
        if callable(v):
            cols[name] = lambda flat, idx, fn=v: _short(fn(idx))
            continue
        try:
            full = np.broadcast_to(v, shape)
        except ValueError:
            full = None
        if full is not None:
            cols[name] = lambda flat, idx, arr=full: _short(arr[idx])
        elif v.size == size:
            cols[name] = lambda flat, idx, arr=v.reshape(-1): _short(arr[flat])
        else:
            notes.append(f"{name}: shape {v.shape} {v.dtype} does not broadcast to the output's {shape} (pass a "
                         f"callable index -> value to show what produced each element)")
    return cols, notes


def _table(a, e, flat, diffs, inputs: dict, is_float: bool) -> list[str]:
    cols, notes = _input_columns(inputs, a.shape)
    header = ["index", "actual", "expected", "diff"] + list(cols)
    rows = []
    for pos, d in zip(flat.tolist(), diffs.tolist()):
        idx = tuple(int(i) for i in np.unravel_index(pos, a.shape)) if a.ndim else ()
        diff = "nan" if d is None else f"{d:+d}" if d else "0"
        row = [str(idx), _fmt(a[idx], is_float), _fmt(e[idx], is_float), diff]
        rows.append(row + [fn(pos, idx) for fn in cols.values()])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [f"first {len(rows)} mismatches (C order):"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]
    lines += [f"  input {n}" for n in notes]
    return lines

