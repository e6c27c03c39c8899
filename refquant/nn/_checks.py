"""Argument and input checks shared by the layers of :mod:`refquant.nn` (internal).

Every check raises a :mod:`refquant.errors` exception whose message names the argument,
the expected value and the received one.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as V
from .._validate import as_flag, as_choice  # noqa: F401 - re-exported for the layers
from .._validate import as_positive_int as as_int  # (v, name, *, minimum=1) -> int >= minimum
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_input(x, layer: str, *, ndim: tuple[int, ...] | int, channels: int | None = None,
             channel_axis: int = 1, layout: str = "", name: str = "x") -> np.ndarray:
    """Return ``x`` as a float ndarray (native byte order) after checking its dtype, rank and channel count.

    Args:
        x: the layer input.
        layer: the layer's name for messages, e.g. ``"Conv2d(3, 8)"``.
        ndim: the allowed rank(s).
        channels: the expected size of ``channel_axis`` (None: not checked).
        channel_axis: the axis holding the channels.
        layout: a name such as ``"(N, C, H, W)"`` for messages.
        name: the argument's name for messages (``x``; ``a`` and ``b`` for ``Add``).
    """
    a = V.asarray(x, f"{layer}: input {name}", kinds=None, what="a float32 or float64 array")
    if a.dtype not in FLOAT_DTYPES:
        raise QuantizationTypeError(
            f"{layer}: input {name} must be a float32 or float64 array, got dtype {a.dtype}; "
            f"convert it with {name}.astype(np.float32)")
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(
            f"{layer}: input {name} must have rank {want} {layout}, got rank {a.ndim} with shape {a.shape}")
    if channels is not None and a.shape[channel_axis] != channels:
        raise ShapeError(
            f"{layer}: input {name} must have {channels} channels on axis {channel_axis} {layout}, "
            f"got {a.shape[channel_axis]} (shape {a.shape})")
    return a


def check_size(n_elements: int, itemsize: int, what: str) -> None:
    """Refuse a parameter tensor that cannot fit in memory (``what`` names the arguments)."""
    V.check_allocation(n_elements, itemsize, what)


def check_finite(x: np.ndarray, name: str = "x") -> None:
    """Raise QuantizationValueError if ``x`` holds NaN or Inf, naming the first bad index."""
    if x.dtype.kind != "f":
        return
    if np.isfinite(x).all():
        return
    bad = ~np.isfinite(x)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    n_nan = int(np.isnan(x).sum())
    raise QuantizationValueError(
        f"{name} must be finite, got {n_nan} NaN and {int(bad.sum()) - n_nan} Inf values "
        f"(first at index {first}: {x[first]!r})")


SIZE_MAX = 2 ** 31 - 1  # layer sizes, kernel sizes, strides, paddings: beyond any array that fits in memory


def as_pair(v, name: str, *, minimum: int = 1) -> tuple[int, int]:
    """Return an int or an ``(h, w)`` pair as a pair of ints in ``[minimum, 2^31 - 1]``."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise QuantizationValueError(f"{name} must be an int or an (h, w) pair, got {V.describe(v)}")
        return (as_int(v[0], name, minimum=minimum, maximum=SIZE_MAX),
                as_int(v[1], name, minimum=minimum, maximum=SIZE_MAX))
    n = as_int(v, name, minimum=minimum, maximum=SIZE_MAX)
    return n, n


def as_padding(v, name: str = "padding") -> tuple[int, int, int, int]:
    """Return padding as ``(top, bottom, left, right)`` from an int, ``(ph, pw)`` or a 4-tuple."""
    if isinstance(v, (tuple, list)) and len(v) == 4:
        return tuple(as_int(p, name, minimum=0) for p in v)  # type: ignore[return-value]
    ph, pw = as_pair(v, name, minimum=0)
    return ph, ph, pw, pw


def as_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``dtype`` as float32 or float64."""
    try:
        d = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError, SyntaxError):
        d = None
    if d is None:
        raise QuantizationTypeError(f"{name} must be float32 or float64, got {V.describe(dtype)}")
    d = d.newbyteorder("=")
    if d not in FLOAT_DTYPES:
        raise QuantizationTypeError(f"{name} must be float32 or float64, got {d}")
    return d


def as_probability(p, name: str, *, upper_open: bool = True) -> float:
    """Return ``p`` as a float in [0, 1) (or [0, 1] with ``upper_open=False``)."""
    rng = "[0, 1)" if upper_open else "[0, 1]"
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (numbers.Real, np.floating, np.integer)):
        raise QuantizationTypeError(f"{name} must be a float in {rng}, got {V.describe(p)}")
    p = V.as_real_scalar(p, name, finite=False)
    ok = 0.0 <= p < 1.0 if upper_open else 0.0 <= p <= 1.0
    if not ok:
        raise QuantizationValueError(f"{name} must be in {rng}, got {p}")
    return p


def as_positive_float(v, name: str, *, allow_zero: bool = False) -> float:
    """Return ``v`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise QuantizationTypeError(f"{name} must be a float, got {V.describe(v)}")
    f = V.as_real_scalar(v, name, finite=False)
    if not np.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        op = ">= 0" if allow_zero else "> 0"
        raise QuantizationValueError(f"{name} must be finite and {op}, got {f}")
    return f
