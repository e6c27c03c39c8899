"""Argument checks shared by every public function (internal).

Each check raises a :mod:`refquant.errors` exception whose message names the
argument, the expected value and the received one. Arrays in a non-native byte order
(``np.dtype(">f4")``, e.g. read from a big-endian file) are accepted everywhere and
converted to the machine's order on the way in, so that every result is native.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .dtypes import IntFormat, get_format
from .errors import QuantizationTypeError, QuantizationValueError, ShapeError


def describe(v) -> str:
    """A short description of a received value for messages (arrays by shape and dtype)."""
    if isinstance(v, np.ndarray) and v.size > 4:
        return f"an array of shape {v.shape} and dtype {v.dtype}"
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def native(a: np.ndarray) -> np.ndarray:
    """``a`` in the machine's byte order: itself if already native, else a converted copy."""
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def asarray(x, name: str, *, kinds: str | None = "biuf", what: str = "a numeric array") -> np.ndarray:
    """``np.asarray(x)`` in native byte order, with a named error for what NumPy cannot
    convert (ragged nested lists, unhashable or arbitrary objects) and, with ``kinds``,
    for a dtype kind outside ``kinds`` (``"biuf"``: bool, integers, floats)."""
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except (ValueError, TypeError, OverflowError):
            raise QuantizationTypeError(
                f"{name} must be {what} (a NumPy array or a rectangular nested sequence of numbers), "
                f"got {describe(x)}") from None
    if kinds is not None and a.dtype.kind not in kinds:
        raise QuantizationTypeError(f"{name} must be {what}, got {describe(x)} of dtype {a.dtype}")
    return native(a)


def first_outside(a: np.ndarray, lo, hi):
    """The first element of integer array ``a`` outside ``[lo, hi]`` as a Python int, or None.

    Exact for every integer dtype (uint64 values above ``2**63 - 1`` are compared as
    Python ints, never wrapped)."""
    if a.size == 0 or (int(a.min()) >= lo and int(a.max()) <= hi):
        return None
    return next(v for v in a.reshape(-1).tolist() if not lo <= v <= hi)


def as_int_scalar(v, name: str, *, lo=None, hi=None) -> int:
    """A Python int from a Python or NumPy integer or a 0-d integer array (never a bool or a
    float, even an integer-valued one), optionally inside ``[lo, hi]`` (``None``: unbounded)."""
    if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iu":
        v = v[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer, got {describe(v)}")
    i = int(v)
    if (lo is not None and i < lo) or (hi is not None and i > hi):
        if lo is not None and hi is not None:
            expected = f"in [{lo}, {hi}]"
        else:
            expected = f">= {lo}" if lo is not None else f"<= {hi}"
        raise QuantizationValueError(f"{name} must be {expected}, got {i}")
    return i


def as_real_scalar(v, name: str, *, finite: bool = True) -> float:
    """A Python float from a real Python or NumPy scalar or a 0-d real array (not a bool);
    with ``finite``, NaN and ±Inf are errors."""
    if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iuf":
        v = v[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.integer, np.floating)):
        raise QuantizationTypeError(f"{name} must be a real number, got {describe(v)}")
    try:
        f = float(v)
    except OverflowError:  # a Python int beyond the float range
        f = float("inf") if v > 0 else float("-inf")
    if finite and not np.isfinite(f):
        raise QuantizationValueError(f"{name} must be finite, got {describe(v)}")
    return f


def as_finite_f32(v, name: str) -> np.float32:
    """A finite real scalar rounded to float32; one beyond float32's range is an error, not inf."""
    f = as_real_scalar(v, name)
    with np.errstate(over="ignore"):
        f32 = np.float32(f)
    if not np.isfinite(f32):
        raise QuantizationValueError(f"{name} must be finite in float32, got {f!r}")
    return f32


def as_flag(v, name: str, *, ints: bool = True) -> bool:
    """A bool from a Python or NumPy bool, or (with ``ints``) the integers 0 and 1 (ONNX attributes)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if ints and isinstance(v, (numbers.Integral, np.integer)) and int(v) in (0, 1):
        return bool(v)
    raise QuantizationTypeError(f"{name} must be a bool, got {describe(v)}")


def as_choice(v, name: str, choices) -> str | None:
    """The element of ``choices`` (strings, and ``None`` where "not given" is a choice) equal to
    ``v``; anything else (an array, a number, an unknown string) is a named error."""
    choices = tuple(choices)
    if v is None and None in choices:
        return None
    if isinstance(v, str):
        for c in choices:
            if isinstance(c, str) and v == c:
                return c
        raise QuantizationValueError(f"{name} must be one of {choices}, got {v!r}")
    raise QuantizationTypeError(f"{name} must be one of {choices}, got {describe(v)} (not a string)")


def memory_limit() -> int:
    """Bytes of physical memory (an allocation beyond it is refused before it is tried)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 1 << 40


def check_allocation(n_elements: int, itemsize: int, what: str) -> None:
    """Refuse an array of ``n_elements`` items that could not fit in this machine's memory;
    ``what`` names the arguments that ask for it (``"in_features * out_features"``)."""
    nbytes = int(n_elements) * int(itemsize)
    limit = memory_limit()
    if nbytes > limit:
        raise QuantizationValueError(
            f"{what} = {int(n_elements)} elements needs {nbytes / 2**30:.3g} GiB, more than this "
            f"machine's {limit / 2**30:.3g} GiB of memory")


def as_float_array(x, name: str = "x", *, allow_int: bool = False) -> np.ndarray:
    """Return ``x`` as a float ndarray (float16/32/64 kept, native byte order); reject non-numeric input."""
    a = asarray(x, name, kinds=None, what="a real float array")
    if a.dtype.kind == "f":
        return a
    if allow_int and a.dtype.kind in "iub":
        return a.astype(np.float32)
    if a.dtype.kind in "iub":
        raise QuantizationTypeError(f"{name} must be a float array, got integer dtype {a.dtype}")
    raise QuantizationTypeError(f"{name} must be a real float array, got dtype {a.dtype} ({type(x).__name__})")


def as_int_array(q, name: str = "q", fmt: IntFormat | None = None) -> np.ndarray:
    """Return ``q`` as an integer ndarray (native byte order); with ``fmt``, its dtype must be the format's dtype."""
    a = asarray(q, name, kinds=None, what="an integer array")
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
    a = asarray(scale, name, kinds=None, what="a positive float or float array")
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


def as_scalar_scale(scale, name: str = "scale", *, dtype=np.float32, allow_zero: bool = False,
                    max_ndim: int | None = None):
    """:func:`as_scale` for a per-tensor scale: one element (a scalar, or a one-element array of
    rank <= ``max_ndim`` if given), returned as a NumPy scalar of ``dtype``."""
    a = as_scale(scale, name, dtype=dtype, allow_zero=allow_zero)
    if a.size != 1 or (max_ndim is not None and a.ndim > max_ndim):
        raise ShapeError(f"{name} must be a scalar (per-tensor), got shape {a.shape}")
    return a.reshape(())[()]


def as_zero_point(zero_point, fmt: IntFormat, name: str = "zero_point", *, qmin=None, qmax=None) -> np.ndarray:
    """Return a zero point as an int64 array; integer-valued and inside ``[qmin, qmax]``
    (default: the format's range).

    Integers of any dtype and size are compared exactly (``np.uint64(2**64 - 1)`` and a Python
    int ``2**70`` are out of range, never wrapped); integer-valued floats are accepted; bools,
    fractional or non-finite floats are type errors.
    """
    if zero_point is None:
        return np.zeros((), np.int64)
    if isinstance(zero_point, (str, bytes, bool, np.bool_)):
        raise QuantizationTypeError(f"{name} must be an integer or integer array, got {zero_point!r}")
    a = asarray(zero_point, name, kinds=None, what="an integer or integer array")
    lo = fmt.qmin if qmin is None else int(qmin)
    hi = fmt.qmax if qmax is None else int(qmax)
    rng = f"[{lo}, {hi}] for {fmt.name}" if qmin is None and qmax is None else f"[qmin, qmax] = [{lo}, {hi}]"
    if a.dtype.kind == "O":  # Python ints beyond int64 (or anything else NumPy keeps as objects)
        items = a.reshape(-1).tolist()
        if not items or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
            raise QuantizationTypeError(f"{name} must be an integer or integer array, got {describe(zero_point)}")
        v = next((v for v in items if not lo <= v <= hi), None)
        if v is not None:
            raise QuantizationValueError(f"{name} must be in {rng}, got {v}")
        return np.array(items, np.int64).reshape(a.shape)
    if a.dtype.kind == "f":
        ok = np.isfinite(a) & (a == np.trunc(a))
        if not ok.all():
            raise QuantizationTypeError(f"{name} must be an integer, got {a[~ok].flat[0].item()!r}")
        out = (a < lo) | (a > hi)
        if out.any():
            v = a[out].flat[0].item()
            raise QuantizationValueError(f"{name} must be in {rng}, got {int(v)}")
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer or integer array, got dtype {a.dtype}")
    v = first_outside(a, lo, hi)
    if v is not None:
        raise QuantizationValueError(f"{name} must be in {rng}, got {v}")
    return a.astype(np.int64)


def as_scalar_zero_point(zero_point, fmt: IntFormat, name: str = "zero_point", *, qmin=None, qmax=None) -> int:
    """:func:`as_zero_point` for a per-tensor zero point that must be given: one element (a
    scalar or a one-element array), returned as a Python int. ``None`` is a type error."""
    if zero_point is None:
        raise QuantizationTypeError(f"{name} must be an integer, got None")
    z = as_zero_point(zero_point, fmt, name, qmin=qmin, qmax=qmax)
    if z.size != 1:
        raise ShapeError(f"{name} must be a scalar (per-tensor), got shape {z.shape}")
    return int(z.reshape(()))


def as_tuple(v, name: str, what: str, *, item_len: int | None = None) -> tuple:
    """``v`` itself if it is a tuple (frozen records hold tuples: they stay hashable); with
    ``item_len``, a tuple of tuples of that length (``(dtype, kernel)`` pairs)."""
    if not isinstance(v, tuple) or (item_len is not None
                                    and not all(isinstance(i, tuple) and len(i) == item_len for i in v)):
        raise QuantizationTypeError(f"{name} must be a tuple of {what}, got {describe(v)}")
    return v


def as_typed_array(x, name: str, dtypes, *, ndim: int | None = None, min_ndim: int | None = None,
                   array_only: bool = False, labels: str | None = None) -> np.ndarray:
    """``x`` as a native-order ndarray whose dtype is one of ``dtypes`` (names or dtypes),
    of rank ``ndim`` (exact) or at least ``min_ndim``.

    ``array_only``: ``x`` must already be a NumPy array or scalar (integer codes carry their
    type: a list of ints does not say whether it holds int8 or uint8 codes). ``labels``: the
    expected dtypes as messages should say them (``"uint8 (quint8)"``)."""
    want = tuple(np.dtype(d) for d in dtypes)
    names = labels or " or ".join(d.name for d in want)
    if array_only and not isinstance(x, (np.ndarray, np.generic)):
        raise QuantizationTypeError(f"{name} must be a NumPy {names} array, got {describe(x)}")
    a = asarray(x, name, kinds=None, what=f"an array of dtype {names}")
    if a.dtype not in want:
        raise QuantizationTypeError(f"{name} must have dtype {names}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ShapeError(f"{name} must have rank {ndim}, got shape {a.shape}")
    if min_ndim is not None and a.ndim < min_ndim:
        raise ShapeError(f"{name} must have rank >= {min_ndim}, got shape {a.shape}")
    return a


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """Return ``axis`` in ``[0, ndim)``; negative axes count from the end."""
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer, got {describe(axis)}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise QuantizationValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a rank-{ndim} input, got {axis}")
    return axis % ndim


def as_int(v, name: str) -> int:
    """Return ``v``, a Python or NumPy integer (not a bool), as an int."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer, got {describe(v)}")
    return int(v)


def as_int_pair(v, name: str, *, minimum: int = 1, maximum: int | None = None) -> tuple[int, int]:
    """Return an int or an ``(h, w)`` pair of ints as ``(h, w)``, each in ``[minimum, maximum]``."""
    items = (v, v) if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) else v
    try:
        items = tuple(items)
    except TypeError:
        raise QuantizationTypeError(f"{name} must be an int or an (h, w) pair of ints, got {describe(v)}") from None
    if len(items) != 2 or any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (numbers.Integral, np.integer))
                              for i in items):
        raise QuantizationTypeError(f"{name} must be an int or an (h, w) pair of ints, got {describe(v)}")
    pair = int(items[0]), int(items[1])
    if min(pair) < minimum:
        raise QuantizationValueError(f"{name} must be >= {minimum}, got {describe(v)}")
    if maximum is not None and max(pair) > maximum:
        raise QuantizationValueError(f"{name} must be <= {maximum}, got {describe(v)}")
    return pair


def as_int_sequence(v, name: str, *, length: int | None = None, minimum: int | None = None,
                    maximum: int | None = None) -> tuple[int, ...]:
    """A list, tuple or 1-D integer array of ints (not bools) as a tuple, of ``length`` items
    (``None``: any), each in ``[minimum, maximum]`` (``None``: unbounded)."""
    what = f"a sequence of {length} ints" if length is not None else "a sequence of ints"
    if isinstance(v, np.ndarray):
        if v.ndim != 1 or (v.size and v.dtype.kind not in "iu"):
            raise QuantizationTypeError(f"{name} must be {what}, got {describe(v)}")
        items = tuple(v.tolist())
    elif isinstance(v, (list, tuple)):
        items = tuple(v)
    else:
        raise QuantizationTypeError(f"{name} must be {what}, got {describe(v)}")
    if any(isinstance(i, (bool, np.bool_)) or not isinstance(i, (numbers.Integral, np.integer)) for i in items):
        raise QuantizationTypeError(f"{name} must be {what}, got {describe(v)}")
    items = tuple(int(i) for i in items)
    if length is not None and len(items) != length:
        raise QuantizationValueError(f"{name} must have {length} values, got {list(items)}")
    if minimum is not None and any(i < minimum for i in items):
        raise QuantizationValueError(f"{name} must be >= {minimum}, got {list(items)}")
    if maximum is not None and any(i > maximum for i in items):
        raise QuantizationValueError(f"{name} must be <= {maximum}, got {list(items)}")
    return items


def grad_and_mask(grad, mask, grad_name: str = "grad_output") -> tuple[np.ndarray, np.ndarray]:
    """A float gradient and a bool straight-through mask of exactly its shape (no broadcasting)."""
    g = as_float_array(grad, grad_name)
    m = asarray(mask, "mask", kinds=None, what="a bool array")
    if m.dtype != np.bool_:
        raise QuantizationTypeError(f"mask must be a bool array, got dtype {m.dtype}")
    if m.shape != g.shape:
        raise ShapeError(f"mask must have {grad_name}'s shape {g.shape}, got {m.shape}")
    return g, m


def as_positive_int(v, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``v`` as an int >= ``minimum`` (and <= ``maximum`` if given)."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer >= {minimum}, got {describe(v)}")
    if int(v) < minimum:
        raise QuantizationValueError(f"{name} must be an integer >= {minimum}, got {int(v)}")
    if maximum is not None and int(v) > maximum:
        raise QuantizationValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {int(v)}")
    return int(v)


def check_format(fmt, name: str = "dtype") -> IntFormat:
    """Alias of :func:`refquant.dtypes.get_format` with an argument name."""
    return get_format(fmt, name=name)
