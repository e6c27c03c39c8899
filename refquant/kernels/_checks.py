"""Argument checks and the int32 accumulator rule shared by the integer kernels (internal).

Every public kernel validates here, before any kernel runs, and raises a
:mod:`refquant.errors` exception naming the argument, the expected and the received value.

**The overflow rule** (``on_overflow``), used by the ``"exact"`` and the pairwise models:
the kernels compute each accumulator exactly (int64 or an exactness proof) and then look at
the final value. If it lies in $[-2^{31}, 2^{31}-1]$ an int32 accumulator gives the same
value whatever the order of its additions, because two's-complement addition is exact
modulo $2^{32}$; so only the *final* value is checked, never partial sums. If it does not:

* ``on_overflow="warn"`` (default): emit :class:`~refquant.errors.AccumulatorOverflowWarning`
  and return the two's-complement wrapped int32 value (what an int32 adder holds);
* ``on_overflow="raise"``: raise :class:`~refquant.errors.AccumulatorOverflowError`.

``acc_model="wrap"`` wraps silently: use it only where the backend is known to wrap.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._validate import as_choice, asarray, describe, first_outside
from ..dtypes import INT32_MAX, INT32_MIN
from ..errors import (
    UnsupportedError,
    AccumulatorOverflowError,
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
)

ACC_MODELS = ("exact", "wrap", "pairwise_sat16_u8s8", "pairwise_sat16_s8u8")
# Names used by refquant.profiles.Profile.accumulation.
_ACC_ALIASES = {"exact_int32": "exact", "wrap_int32": "wrap"}
_PAIR_DTYPES = {  # acc_model -> (dtype of the first operand, dtype of the second)
    "pairwise_sat16_u8s8": (np.dtype(np.uint8), np.dtype(np.int8)),
    "pairwise_sat16_s8u8": (np.dtype(np.int8), np.dtype(np.uint8)),
}
_OPERAND_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))


_IINFO: dict = {}


def _iinfo(dtype) -> np.iinfo:
    """Cached ``np.iinfo`` (it costs about a microsecond per call)."""
    key = np.dtype(dtype)
    info = _IINFO.get(key)
    if info is None:
        info = _IINFO[key] = np.iinfo(key)
    return info


def check_operand(x, name: str, ndim=None) -> np.ndarray:
    """Return ``x`` as an int8/uint8 ndarray; ``ndim``: required rank (int) or minimum (tuple)."""
    if not isinstance(x, (np.ndarray, np.generic)):
        raise QuantizationTypeError(
            f"{name} must be a NumPy int8 or uint8 array, got {type(x).__name__}")
    x = np.asarray(x)
    if x.dtype not in _OPERAND_DTYPES:
        raise QuantizationTypeError(f"{name} must have dtype int8 or uint8, got {x.dtype}")
    if isinstance(ndim, int) and x.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if isinstance(ndim, tuple) and x.ndim < ndim[0]:
        raise ShapeError(f"{name} must be at least {ndim[0]}-D, got shape {x.shape}")
    return x


def check_zero_point(zp, dtype: np.dtype, name: str, length=None, what: str = "") -> np.ndarray:
    """Return a zero point as int64 of shape ``()`` or ``(length,)``.

    Accepted: a Python int, or a NumPy integer scalar/array whose dtype is the operand's
    own ``dtype`` (as in ONNX, where the zero point's type is the tensor's type). The value
    must lie in the operand format's range. ``length=None`` allows only a scalar.
    """
    info = _iinfo(dtype)
    if isinstance(zp, (bool, np.bool_)) or isinstance(zp, (str, bytes)) or zp is None:
        raise QuantizationTypeError(f"{name} must be an integer or a {dtype} array, got {describe(zp)}")
    if isinstance(zp, numbers.Integral) and not isinstance(zp, np.generic):
        v = int(zp)
        if v < info.min or v > info.max:  # checked as a Python int: 2**63 must not overflow int64
            raise QuantizationValueError(f"{name} must be in [{info.min}, {info.max}] for {dtype}, got {v}")
        arr = np.asarray(v, np.int64)
    else:
        arr = asarray(zp, name, kinds=None, what=f"an integer or a {dtype} array")
        if arr.dtype != dtype:
            raise QuantizationTypeError(
                f"{name} must be a Python int or have the dtype of its tensor ({dtype}), got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.ndim == 1 and arr.size == 1 and length != 1:
        arr = arr.reshape(())  # a 1-element vector is per-tensor (ONNX)
    if arr.ndim > 1 or (arr.ndim == 1 and length is None):
        raise ShapeError(f"{name} must be a scalar{'' if length is None else ' or 1-D'}, got shape {arr.shape}")
    if arr.ndim == 1 and arr.shape[0] != length:
        raise ShapeError(f"{name} must have {length} elements ({what}), got {arr.shape[0]}")
    if arr.ndim == 0:  # scalar fast path: Python ints (this runs on every batch-1 call)
        v = int(arr)
        if v < info.min or v > info.max:
            raise QuantizationValueError(f"{name} must be in [{info.min}, {info.max}] for {dtype}, got {v}")
        return arr
    bad = first_outside(arr, info.min, info.max)
    if bad is not None:
        raise QuantizationValueError(f"{name} must be in [{info.min}, {info.max}] for {dtype}, got {bad}")
    return arr


def int_scalar(v, name: str) -> int:
    """Return an integer scalar as an int: a Python int, a NumPy integer or a 0-d integer array (not a bool)."""
    if not isinstance(v, (bool, np.bool_)):
        if isinstance(v, (numbers.Integral, np.integer)):
            return int(v)
        if isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iu":
            return int(v)
    raise QuantizationTypeError(f"{name} must be an integer scalar, got {describe(v)}")


def zero_point_scalar(z, dtype, name: str) -> int:
    """Return a per-tensor zero point (a scalar or one-element integer array) inside ``dtype``'s range."""
    bad_type = QuantizationTypeError(f"{name} must be an integer scalar, got {describe(z)}")
    if isinstance(z, (bool, np.bool_)):
        raise bad_type
    if isinstance(z, numbers.Integral) and not isinstance(z, np.generic):
        v = int(z)  # a Python int of any size: range-checked below, never through int64
    else:
        a = asarray(z, name, kinds=None, what="an integer scalar")
        if a.size != 1 or a.dtype.kind not in "iu":
            raise bad_type
        v = int(a.reshape(()))
    info = np.iinfo(dtype)
    if not info.min <= v <= info.max:
        raise QuantizationValueError(f"{name} must be in [{info.min}, {info.max}] for {np.dtype(dtype).name}, got {v}")
    return v


def activation_bounds(act_min, act_max, dtype) -> tuple[int, int]:
    """Return the fused-activation clamp ``(lo, hi)``: ``None`` means the dtype's end; checks lo <= hi inside it."""
    info = np.iinfo(dtype)
    lo = info.min if act_min is None else int_scalar(act_min, "act_min")
    hi = info.max if act_max is None else int_scalar(act_max, "act_max")
    if not info.min <= lo <= hi <= info.max:
        raise QuantizationValueError(
            f"act_min <= act_max must lie in [{info.min}, {info.max}] for {np.dtype(dtype).name}, got [{lo}, {hi}]")
    return lo, hi


def check_acc_model(acc_model, first: np.dtype, second: np.dtype, names=("a", "b")) -> str:
    """Return the canonical accumulation model; pairwise models require their dtypes."""
    if not isinstance(acc_model, str):
        raise QuantizationTypeError(f"acc_model must be a string, got {describe(acc_model)}")
    model = _ACC_ALIASES.get(acc_model, acc_model)
    if model not in ACC_MODELS:
        raise QuantizationValueError(f"acc_model must be one of {ACC_MODELS}, got {acc_model!r}")
    if model in _PAIR_DTYPES and (first, second) != _PAIR_DTYPES[model]:
        want = _PAIR_DTYPES[model]
        raise QuantizationTypeError(
            f"acc_model={model!r} needs {names[0]} {want[0]} and {names[1]} {want[1]}, "
            f"got {names[0]} {first} and {names[1]} {second}")
    return model


def check_on_overflow(on_overflow) -> str:
    return as_choice(on_overflow, "on_overflow", ("warn", "raise"))


def wrap_int32(acc: np.ndarray) -> np.ndarray:
    """:func:`refquant.dtypes.wrap_int32` of int64 values, returned as an **int32 array**."""
    return acc.astype(np.int64).astype(np.int32)  # NumPy int64 -> int32 keeps the low 32 bits


def report_overflow(n_bad: int, model: str, on_overflow: str, what: str) -> None:
    """Apply the overflow rule (module docstring) to ``n_bad`` out-of-range accumulators."""
    if n_bad == 0 or model == "wrap":
        return
    msg = (f"{what}: {n_bad} int32 accumulator(s) outside [-2^31, 2^31 - 1] under acc_model={model!r}; "
           f"returned two's-complement wrapped values")
    if on_overflow == "raise":
        raise AccumulatorOverflowError(msg.replace("; returned two's-complement wrapped values", ""))
    warnings.warn(msg, AccumulatorOverflowWarning, stacklevel=3)


def finish_int64(acc: np.ndarray, model: str, on_overflow: str, what: str) -> np.ndarray:
    """Exact int64 accumulators -> int32 under the overflow rule."""
    n_bad = int(np.count_nonzero((acc < INT32_MIN) | (acc > INT32_MAX)))
    report_overflow(n_bad, model, on_overflow, what)
    return wrap_int32(acc)


def max_abs_centered(dtype: np.dtype, zp: np.ndarray) -> int:
    """Largest $|q - z|$ over the format's codes $q$ and the zero points $z$."""
    info = _iinfo(dtype)
    if zp.ndim == 0:
        z = int(zp)
        return max(info.max - z, z - info.min)
    if zp.size == 0:
        return 0
    return int(max(info.max - int(zp.min()), int(zp.max()) - info.min))


GEMM_K_MAX = 2**24 - 1  # row/column sums are formed in int32 (exact below 2^24 terms)


def _own_zero_point(zp, dtype, name, length, what):
    """:func:`check_zero_point`; a NumPy scalar of the operand's own dtype is valid by construction
    and skips the general path (about 5 µs, a quarter of a batch-1 call)."""
    if isinstance(zp, np.generic) and zp.dtype == dtype:
        return np.asarray(int(zp), np.int64)
    return check_zero_point(zp, dtype, name, length, what)


def gemm_args(a, b, a_zero_point, b_zero_point, acc_model, on_overflow):
    """The checks of an int8/uint8 GEMM ``a`` (M, K) × ``b`` (K, N): operands, K below 2^24,
    zero points per tensor / row / column, the accumulation model and the overflow rule.

    Returns:
        ``(a, b, za, zb, model, on_overflow)`` with int64 zero points of shape ``()``, ``(M,)`` or ``(N,)``.
    """
    a = check_operand(a, "a", 2)
    b = check_operand(b, "b", 2)
    M, K = a.shape
    if b.shape[0] != K:
        raise ShapeError(f"b must have K = a.shape[1] = {K} rows, got b.shape = {b.shape}")
    if K > GEMM_K_MAX:
        raise UnsupportedError(f"K must be < 2^24, got {K}")
    za = _own_zero_point(a_zero_point, a.dtype, "a_zero_point", M, "one per row of a, M")
    zb = _own_zero_point(b_zero_point, b.dtype, "b_zero_point", b.shape[1], "one per column of b, N")
    model = check_acc_model(acc_model, a.dtype, b.dtype)
    return a, b, za, zb, model, check_on_overflow(on_overflow)
