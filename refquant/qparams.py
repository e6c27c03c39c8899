"""Quantization parameters: scale, zero point, format and granularity.

A real value $r$ and its integer code $q$ are related by (Conventions, eq. (1))

$$ r = S\\,(q - Z), \\qquad q \\in [q_{min}, q_{max}] $$

with a float32 scale $S > 0$ and an integer zero point $Z \\in [q_{min}, q_{max}]$.
:class:`QParams` holds $S$ and $Z$ at one of three granularities:

* **per-tensor**: one $(S, Z)$; ``axis is None``.
* **per-axis** (per-channel): $S$ and $Z$ are 1-D of length ``x.shape[axis]``.
* **per-block**: $S$ and $Z$ have the input's shape except
  $\\lceil D_{axis} / B \\rceil$ on ``axis``; element $i$ along ``axis`` uses block
  $\\lfloor i / B \\rfloor$ (the last block may be partial, as in ONNX opset 21+).

This module stores and expands parameters, and chooses them from a range with the textbook
rule (:func:`choose_qparams`); each backend's own formula is in its face (for example
:func:`refquant.backends.tflite.activation_qparams`). Applying them is in
:mod:`refquant.quantization`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as V
from .dtypes import IntFormat, get_format, quant_range
from .errors import QuantizationTypeError, QuantizationValueError, ShapeError
from .rounding import as_rounding_mode, round_by_mode

__all__ = ["QParams", "make_qparams", "choose_qparams"]


@dataclass(frozen=True, eq=False)
class QParams:
    """Scale, zero point, integer format and granularity of a quantized tensor.

    Build with :func:`make_qparams` (which validates); the fields are:

    Attributes:
        scale: float32 array, shape ``()`` per-tensor, ``(C,)`` per-axis, or the
            block shape per-block.
        zero_point: int64 array of the same shape as ``scale``.
        fmt: The integer format (:class:`refquant.dtypes.IntFormat`).
        axis: ``None`` per-tensor, else the quantized axis (may be negative until
            expanded against a shape).
        block_size: ``None`` unless per-block.
        qmin, qmax: The code range (full, narrow or reduced; see
            :func:`refquant.dtypes.quant_range`).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    fmt: IntFormat
    axis: int | None = None
    block_size: int | None = None
    qmin: int = 0
    qmax: int = 0

    def __post_init__(self):
        # Arrays in a non-native byte order are stored in the machine's order, so that every
        # result computed from them is native (make_qparams validates everything else).
        for name in ("scale", "zero_point"):
            v = getattr(self, name)
            if isinstance(v, np.ndarray) and not v.dtype.isnative:
                object.__setattr__(self, name, V.native(v))

    @property
    def granularity(self) -> str:
        """``"per_tensor"``, ``"per_axis"`` or ``"per_block"``."""
        if self.block_size is not None:
            return "per_block"
        return "per_tensor" if self.axis is None else "per_axis"

    def expand(self, shape) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scale, zero_point)`` broadcastable against an array of ``shape``.

        Per-axis parameters are reshaped to ``(1, .., C, .., 1)``; per-block ones are
        repeated ``block_size`` times along ``axis`` and cut to ``shape[axis]``.

        Raises:
            ShapeError: The parameters do not fit ``shape``.
        """
        shape = tuple(int(d) for d in shape)
        if self.axis is None:
            return self.scale, self.zero_point
        ndim = len(shape)
        axis = V.normalize_axis(self.axis, max(ndim, 1))
        if ndim == 0:
            raise ShapeError(f"per-axis parameters need an input of rank >= 1, got a scalar (axis={self.axis})")
        d = shape[axis]
        if self.block_size is None:
            if self.scale.shape != (d,):
                raise ShapeError(
                    f"scale must have shape ({d},) to match x.shape[{axis}] = {d}, got {self.scale.shape}")
            bshape = [1] * ndim
            bshape[axis] = d
            return self.scale.reshape(bshape), self.zero_point.reshape(bshape)
        b = self.block_size
        nblocks = -(-d // b)
        expected = shape[:axis] + (nblocks,) + shape[axis + 1:]
        if self.scale.shape != expected:
            raise ShapeError(
                f"blocked scale must have shape {expected} for x of shape {shape}, axis={axis}, "
                f"block_size={b}, got {self.scale.shape}")
        block_of = np.arange(d) // b  # (d,): element i along axis uses block i // B (never more than d)
        return np.take(self.scale, block_of, axis=axis), np.take(self.zero_point, block_of, axis=axis)

    def __repr__(self) -> str:
        if self.axis is None:
            return (f"QParams(scale={float(self.scale)!r}, zero_point={int(self.zero_point)}, "
                    f"fmt={self.fmt.name}, range=[{self.qmin}, {self.qmax}])")
        extra = f", block_size={self.block_size}" if self.block_size is not None else ""
        return (f"QParams(scale=<{self.scale.shape} float32>, zero_point=<{self.zero_point.shape}>, "
                f"fmt={self.fmt.name}, axis={self.axis}{extra}, range=[{self.qmin}, {self.qmax}])")


def _scale_dtype(scale_dtype) -> np.dtype:
    try:
        dt = np.dtype(scale_dtype) if scale_dtype is not None else None
    except (TypeError, ValueError, SyntaxError):
        dt = None
    if dt is None or dt.kind != "f":
        raise QuantizationTypeError(f"scale_dtype must be a NumPy float dtype, got {V.describe(scale_dtype)}")
    return dt.newbyteorder("=")


def make_qparams(scale, zero_point=None, fmt="int8", *, axis=None, block_size=None,
                 narrow: bool = False, reduce_range=None, qmin=None, qmax=None,
                 scale_dtype=np.float32) -> QParams:
    """Validate and build a :class:`QParams`.

    Args:
        scale: Positive finite float (per-tensor) or array (per-axis: 1-D; per-block:
            the block shape). Stored as ``scale_dtype`` (float32 by default, as backends
            store scales).
        zero_point: Integer or integer array of the scale's shape; ``None`` means 0.
            Must lie in the code range.
        fmt: Integer format name or dtype (``"int8"``, ``"uint4"``, ``np.uint8``...).
        axis: Quantized axis for per-axis / per-block; ``None`` for per-tensor.
            A 1-D scale without an axis is an error.
        block_size: Block length along ``axis`` (per-block only).
        narrow, reduce_range: Code range variant (:func:`refquant.dtypes.quant_range`).
        qmin, qmax: Explicit code range (integers); must lie inside the format's range.
            An explicit range also bounds the zero point; under ``narrow``/``reduce_range`` the
            zero point is checked against the format only (PyTorch's symmetric quint8 observer
            keeps $Z = 128$ under the reduced range [0, 127]).

    Raises:
        QuantizationValueError, QuantizationTypeError, ShapeError: As named in the message.
    """
    f = get_format(fmt, name="fmt")
    lo, hi = quant_range(f, narrow=V.as_flag(narrow, "narrow"), reduce_range=reduce_range)
    if qmin is not None or qmax is not None:
        lo = lo if qmin is None else V.as_int_scalar(qmin, "qmin")
        hi = hi if qmax is None else V.as_int_scalar(qmax, "qmax")
        if lo < f.qmin or hi > f.qmax or lo > hi:
            raise QuantizationValueError(
                f"[qmin, qmax] must lie inside [{f.qmin}, {f.qmax}] for {f.name} with qmin <= qmax, got [{lo}, {hi}]")
    s = V.as_scale(scale, "scale", dtype=_scale_dtype(scale_dtype))
    explicit = qmin is not None or qmax is not None
    z = V.as_zero_point(zero_point, f, "zero_point", qmin=lo if explicit else None, qmax=hi if explicit else None)
    if z.ndim and z.shape != s.shape:
        if not (s.ndim == 0 and z.size == 1):
            raise ShapeError(f"zero_point must have the scale's shape {s.shape}, got {z.shape}")
    if z.ndim == 0 and s.ndim:
        z = np.broadcast_to(z, s.shape).copy()
    if s.ndim == 0 and z.ndim:
        z = z.reshape(())
    if block_size is not None:
        block_size = V.as_positive_int(block_size, "block_size")
        if axis is None:
            raise QuantizationValueError("block_size needs an axis, got axis=None")
    if axis is None:
        if s.ndim != 0 and s.size != 1:
            raise ShapeError(f"a per-tensor scale must be a scalar, got shape {s.shape}; pass axis= for per-axis")
        s, z = s.reshape(()), z.reshape(())
    else:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise QuantizationTypeError(f"axis must be an integer or None, got {V.describe(axis)}")
        axis = int(axis)
        if block_size is None and s.ndim != 1:
            raise ShapeError(f"a per-axis scale must be 1-D, got shape {s.shape}")
    return QParams(s, z, f, axis, block_size, lo, hi)


# --------------------------------------------------------------------------- choosing (S, Z)


def _check_scale_finite(scale, what):
    if not np.isfinite(scale).all():
        raise QuantizationValueError(
            f"min_val and max_val: scale must be finite, got inf ({what} overflows float32)")


def _min_max(min_val, max_val, names=("min_val", "max_val")):
    arrays = []
    for name, v in zip(names, (min_val, max_val)):
        a = V.asarray(v, name, kinds=None, what="a real number or array")
        if a.dtype.kind not in "fiu":
            raise QuantizationTypeError(f"{name} must be a real number or array, got {V.describe(v)}")
        arrays.append(a)
    with np.errstate(over="ignore"):
        lo = arrays[0].astype(np.float64 if arrays[0].dtype == np.float64 else np.float32)
        hi = arrays[1].astype(lo.dtype)
    if lo.shape != hi.shape:
        raise ShapeError(f"{names[0]} and {names[1]} must have the same shape, got {lo.shape} and {hi.shape}")
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise QuantizationValueError(f"{names[0]} and {names[1]} must not be NaN")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        bad = lo[~np.isfinite(lo)] if not np.isfinite(lo).all() else hi[~np.isfinite(hi)]  # a float64 past float32
        raise QuantizationValueError(
            f"{names[0]} and {names[1]} must be finite (in {lo.dtype}), got {bad.flat[0].item()!r}")
    if (lo > hi).any():
        i = np.argmax((lo > hi).reshape(-1))
        raise QuantizationValueError(
            f"{names[0]} must be <= {names[1]}, got {names[0]}={float(lo.reshape(-1)[i])!r} > "
            f"{names[1]}={float(hi.reshape(-1)[i])!r}")
    return lo, hi


def choose_qparams(min_val, max_val, fmt="int8", *, symmetric: bool = False, narrow: bool = False,
                   reduce_range=None, axis=None, zero_point_rounding="half_to_even",
                   eps: float = float(np.finfo(np.float32).eps)) -> QParams:
    """Textbook scale and zero point from a range (per-tensor, or per-axis with arrays).

    $S = \\max\\big((r_{max} - r_{min}) / (q_{max} - q_{min}), \\varepsilon\\big)$ in float32;
    affine $Z = \\operatorname{clamp}(q_{min} - \\operatorname{round}(r_{min}/S))$;
    symmetric $S = \\max(\\varepsilon, \\max(|r_{min}|, |r_{max}|) / ((q_{max} - q_{min})/2))$ with
    $Z = 0$ (signed) or $\\lceil (q_{min} + q_{max}) / 2 \\rceil$ (unsigned: 128 for uint8).

    Args:
        min_val, max_val: Observed range; scalars, or 1-D arrays for per-axis with ``axis``.
        fmt: Integer format.
        symmetric: Symmetric scheme.
        narrow, reduce_range: Code range variant (:func:`refquant.dtypes.quant_range`).
        axis: Quantized axis when the ranges are arrays.
        zero_point_rounding: Rounding of $Z$ (PyTorch/ONNX Runtime: ``"half_to_even"``;
            TFLite: ``"half_away_from_zero"``).
        eps: Smallest scale (guards all-zero ranges); PyTorch uses float32 eps.

    Returns:
        A validated :class:`refquant.qparams.QParams`.
    """
    f = get_format(fmt, name="fmt")
    qmin, qmax = quant_range(f, narrow=narrow, reduce_range=reduce_range)
    symmetric = V.as_flag(symmetric, "symmetric")
    as_rounding_mode(zero_point_rounding, name="zero_point_rounding")
    with np.errstate(over="ignore"):
        eps32 = np.float32(V.as_real_scalar(eps, "eps"))
    if not (np.isfinite(eps32) and eps32 > 0):
        raise QuantizationValueError(f"eps must be finite and > 0 in float32 (the smallest scale), got {eps!r}")
    lo, hi = _min_max(min_val, max_val)
    if lo.ndim and axis is None:
        raise ShapeError(f"array min_val/max_val need axis=, got shape {lo.shape} with axis=None")
    rmin = np.minimum(lo, 0).astype(np.float32)
    rmax = np.maximum(hi, 0).astype(np.float32)
    if symmetric:
        half = np.float32((qmax - qmin) / 2)
        scale = np.maximum(np.maximum(-rmin, rmax) / half, eps32).astype(np.float32)
        mid = 0 if f.signed else (qmin + qmax + 1) // 2
        zp = np.full(scale.shape, mid, np.int64)
    else:
        with np.errstate(over="ignore"):
            scale = np.maximum((rmax - rmin) / np.float32(qmax - qmin), eps32).astype(np.float32)
        _check_scale_finite(scale, "max_val - min_val")
        z = np.float32(qmin) - round_by_mode((rmin / scale).astype(np.float32), zero_point_rounding)
        zp = np.clip(z, qmin, qmax).astype(np.int64)
    return make_qparams(scale, zp, f, axis=axis, qmin=qmin, qmax=qmax)
