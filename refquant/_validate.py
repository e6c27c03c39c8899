"""Argument checks shared by every public function (internal).

Each check raises a :mod:`refquant.errors` exception whose message names the
argument, the expected value and the received one.
"""

from __future__ import annotations

import numbers

import numpy as np

from .dtypes import IntFormat, get_format
from .errors import QuantizationTypeError, QuantizationValueError, ShapeError


def as_float_array(x, name: str = "x", *, allow_int: bool = False) -> np.ndarray:
    """Return ``x`` as a float ndarray (float16/32/64 kept); reject non-numeric input."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return a
    if allow_int and a.dtype.kind in "iub":
        return a.astype(np.float32)
    if a.dtype.kind in "iub":
        raise QuantizationTypeError(f"{name} must be a float array, got integer dtype {a.dtype}")
    raise QuantizationTypeError(f"{name} must be a real float array, got dtype {a.dtype} ({type(x).__name__})")


def as_int_array(q, name: str = "q", fmt: IntFormat | None = None) -> np.ndarray:
    """Return ``q`` as an integer ndarray; with ``fmt``, its dtype must be the format's dtype."""
    a = np.asarray(q)
    if a.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if fmt is not None and a.dtype != fmt.dtype:
        raise QuantizationTypeError(f"{name} must have dtype {fmt.dtype} for {fmt.name}, got {a.dtype}")
    return a


def as_scale(scale, name: str = "scale", *, dtype=np.float32, allow_zero: bool = False) -> np.ndarray:
    """Return a scale as a 0-d or N-d float array of ``dtype``; every element finite and > 0
    (>= 0 with ``allow_zero``, for the scale 0 TFLite writes for an all-zero weight channel).

    Float64 inputs are rounded to ``dtype`` (float32 by default), as the backends store
    scales in float32.
    """
    if isinstance(scale, (str, bytes)) or scale is None:
        raise QuantizationTypeError(f"{name} must be a positive float or float array, got {scale!r}")
    a = np.asarray(scale)
    if a.dtype.kind not in "fiu":
        raise QuantizationTypeError(f"{name} must be a positive float or float array, got dtype {a.dtype}")
    if a.size == 0:
        raise ShapeError(f"{name} must not be empty, got shape {a.shape}")
    op = ">= 0" if allow_zero else "> 0"
    bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
    if bad.any():
        v = a[bad].flat[0]
        raise QuantizationValueError(f"{name} must be finite and {op}, got {v.item()!r}")
    with np.errstate(over="ignore"):
        a_in, a = a, a.astype(dtype)
    # under/overflow of the cast, e.g. 1e-50 -> 0.0 in float32
    bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
    if bad.any():
        v = a_in[bad].flat[0]
        raise QuantizationValueError(
            f"{name} must be finite and {op} in {np.dtype(dtype).name}, got {v.item()!r} "
            f"(becomes {a[bad].flat[0].item()!r})")
    return a


def as_zero_point(zero_point, fmt: IntFormat, name: str = "zero_point", *, qmin=None, qmax=None) -> np.ndarray:
    """Return a zero point as an int64 array; integer-valued and inside ``[qmin, qmax]``."""
    if zero_point is None:
        return np.zeros((), np.int64)
    if isinstance(zero_point, (str, bytes)):
        raise QuantizationTypeError(f"{name} must be an integer or integer array, got {zero_point!r}")
    a = np.asarray(zero_point)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.trunc(a)):
            v = a[~(np.isfinite(a) & (a == np.trunc(a)))].flat[0]
            raise QuantizationTypeError(f"{name} must be an integer, got {v.item()!r}")
    elif a.dtype.kind not in "iub":
        raise QuantizationTypeError(f"{name} must be an integer or integer array, got dtype {a.dtype}")
    a = a.astype(np.int64)
    lo = fmt.qmin if qmin is None else qmin
    hi = fmt.qmax if qmax is None else qmax
    if a.size and (a.min() < lo or a.max() > hi):
        v = a[(a < lo) | (a > hi)].flat[0]
        raise QuantizationValueError(f"{name} must be in [{lo}, {hi}] for {fmt.name}, got {int(v)}")
    return a


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """Return ``axis`` in ``[0, ndim)``; negative axes count from the end."""
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise QuantizationValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a rank-{ndim} input, got {axis}")
    return axis % ndim


def as_int(v, name: str) -> int:
    """Return ``v``, a Python or NumPy integer (not a bool), as an int."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer, got {v!r}")
    return int(v)


def as_int_pair(v, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Return an int or an ``(h, w)`` pair of ints as ``(h, w)``, each >= ``minimum``."""
    items = (v, v) if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) else v
    try:
        items = tuple(items)
    except TypeError:
        raise QuantizationTypeError(f"{name} must be an int or an (h, w) pair of ints, got {v!r}") from None
    if len(items) != 2 or any(isinstance(i, bool) or not isinstance(i, (numbers.Integral, np.integer))
                              for i in items):
        raise QuantizationTypeError(f"{name} must be an int or an (h, w) pair of ints, got {v!r}")
    if min(items) < minimum:
        raise QuantizationValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(items[0]), int(items[1])


def grad_and_mask(grad, mask, grad_name: str = "grad_output") -> tuple[np.ndarray, np.ndarray]:
    """A float gradient and a bool straight-through mask of exactly its shape (no broadcasting)."""
    g = as_float_array(grad, grad_name)
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise QuantizationTypeError(f"mask must be a bool array, got dtype {m.dtype}")
    if m.shape != g.shape:
        raise ShapeError(f"mask must have {grad_name}'s shape {g.shape}, got {m.shape}")
    return g, m


def as_positive_int(v, name: str, *, minimum: int = 1) -> int:
    """Return ``v`` as an int >= ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer >= {minimum}, got {v!r}")
    if int(v) < minimum:
        raise QuantizationValueError(f"{name} must be an integer >= {minimum}, got {int(v)}")
    return int(v)


def check_format(fmt, name: str = "dtype") -> IntFormat:
    """Alias of :func:`refquant.dtypes.get_format` with an argument name."""
    return get_format(fmt, name=name)
