"""Argument handling of the op-level ONNX and ONNX Runtime faces (internal).

Everything here runs before any kernel: operands, zero points, scales, the shapes of
per-row / per-column parameters of ``MatMulInteger`` / ``QLinearMatMul``, and the
attributes of ``ConvInteger`` / ``QLinearConv`` (``auto_pad``, ``pads``, ``strides``,
``dilations``, ``group``, ``kernel_shape``). Errors name the ONNX argument, the expected
and the received value. The ONNX Runtime restrictions (what ORT refuses) live in
:mod:`._onnxruntime_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..dtypes import FORMATS, IntFormat
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels._conv_args import same_pads

# (This module does not import refquant.backends.onnx, which imports it and re-exports the ops built on it.)
_OPERAND_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8))
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def is_python_int(v) -> bool:
    """A Python int (or a non-empty list/tuple of them): a zero point that carries no type."""
    if isinstance(v, (list, tuple)):
        return len(v) > 0 and all(is_python_int(e) for e in v)
    return isinstance(v, int) and not isinstance(v, (bool, np.integer))


# ----------------------------------------------------------------------------------------
# Tensors, zero points, scales


def operand(x, name: str) -> np.ndarray:
    """An int8/uint8 NumPy array (ONNX T1/T2 of the integer matmul and conv ops)."""
    return V.as_typed_array(x, name, _OPERAND_DTYPES, array_only=True)


def input_zero_point(zp, x: np.ndarray, name: str, x_name: str) -> np.ndarray:
    """Zero point of an int8/uint8 input -> int64 array (its shape kept).

    ``None`` is 0; a Python int (or list of them) takes ``x``'s type; a NumPy array must
    have ``x``'s dtype (ONNX: the zero point has its tensor's type).
    """
    if zp is None:
        return np.zeros((), np.int64)
    if not is_python_int(zp):
        zp = V.asarray(zp, name, kinds=None, what="an integer or integer array")
        if zp.dtype != x.dtype:
            raise QuantizationTypeError(f"{name} must have {x_name}'s type {x.dtype} (ONNX: a zero point has "
                                        f"its tensor's type), got dtype {zp.dtype}")
    arr = V.as_zero_point(zp, FORMATS[x.dtype.name], name)  # exact range check, huge Python ints included
    if arr.size == 0:
        raise ShapeError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def output_format(y_zero_point, name: str = "y_zero_point", like=None) -> IntFormat:
    """The output type of a QLinear op: ``y_zero_point``'s dtype, int8 or uint8.

    ``like``: a dtype to use when the zero point carries no type (``None`` or a Python int);
    without it such a zero point raises (the ONNX face has no other way to know the type).
    """
    if like is not None and (y_zero_point is None or is_python_int(y_zero_point)):
        fmt = FORMATS[np.dtype(like).name]
    elif y_zero_point is None:
        raise QuantizationTypeError(f"{name} is required: its dtype is the output type (np.uint8 or np.int8)")
    elif is_python_int(y_zero_point):
        raise QuantizationTypeError(f"{name} is a Python int, which does not say the output type: pass a NumPy "
                                    f"integer (np.uint8 or np.int8; its dtype is the output type, as in ONNX), "
                                    f"got {y_zero_point!r}")
    else:
        dt = V.asarray(y_zero_point, name, kinds=None, what="an int8 or uint8 scalar").dtype
        if dt not in _OPERAND_DTYPES:
            raise QuantizationTypeError(f"{name} must be int8 or uint8 (its dtype is the output type), got dtype {dt}")
        fmt = FORMATS[dt.name]
    if fmt.name not in ("int8", "uint8"):
        raise QuantizationTypeError(f"{name} must be int8 or uint8 (its dtype is the output type), got {fmt.name}")
    return fmt


def output_zero_point(y_zero_point, fmt: IntFormat, name: str = "y_zero_point") -> int:
    """A per-tensor output zero point in ``fmt``'s range, as a Python int."""
    z = V.as_zero_point(y_zero_point, fmt, name)
    scalar_shape(z, name)
    return int(z.reshape(()))


def scalar_shape(arr: np.ndarray, name: str) -> None:
    """Per-tensor only: a scalar or a 1-element 1-D array."""
    if arr.size != 1 or arr.ndim > 1:
        raise ShapeError(f"{name} must be a scalar (per-tensor) or a 1-element 1-D array, got shape {arr.shape}")


# ----------------------------------------------------------------------------------------
# MatMul: per-row (a) and per-column (b) parameters


def promote(a: np.ndarray, b: np.ndarray):
    """NumPy matmul's promotion of 1-D operands: a (K,) -> (1, K), b (K,) -> (K, 1); checks K."""
    a2 = a[None, :] if a.ndim == 1 else a  # (..., M, K)
    b2 = b[:, None] if b.ndim == 1 else b  # (..., K, N)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"a and b must be at least 1-D (numpy matmul), got shapes {a.shape} and {b.shape}")
    if a2.shape[-1] != b2.shape[-2]:
        raise ShapeError(f"a has K = {a2.shape[-1]} columns but b has {b2.shape[-2]} rows "
                         f"(a {a.shape}, b {b.shape})")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ShapeError(f"the batch dimensions of a {a.shape} and b {b.shape} do not broadcast") from None
    return a2, b2


def _batch_fits(shape, batch) -> bool:
    """``shape`` broadcasts to ``batch`` (right-aligned) without enlarging it."""
    return len(shape) <= len(batch) and all(d in (1, e) for d, e in zip(shape[::-1], batch[::-1]))


def row_param(v: np.ndarray, a: np.ndarray, name: str) -> np.ndarray:
    """A per-tensor or per-row parameter of ``a`` -> shape ``()`` or ``(..., M or 1, 1)``.

    ONNX: a scalar; an ``(M,)`` vector for a 2-D ``a``; ``(D1, ..., M, 1)`` for an N-D ``a``
    (batch dimensions 1 or equal to ``a``'s).
    """
    if v.size == 1 and v.ndim <= 1:
        return v.reshape(())
    M = a.shape[-2] if a.ndim >= 2 else 1
    if a.ndim >= 2 and v.ndim == 1 and v.shape[0] == M:
        return v.reshape(M, 1)
    if a.ndim >= 2 and 2 <= v.ndim <= a.ndim and v.shape[-1] == 1 and v.shape[-2] in (1, M) \
            and _batch_fits(v.shape[:-2], a.shape[:-2]):
        return v
    raise ShapeError(f"{name} must be a scalar, an ({M},) vector (per row of a) or of shape "
                     f"{a.shape[:-1] + (1,)}, got shape {v.shape}")


def col_param(v: np.ndarray, b: np.ndarray, name: str) -> np.ndarray:
    """A per-tensor or per-column parameter of ``b`` -> shape ``()`` or ``(..., 1, N or 1)``.

    ONNX: a scalar; an ``(N,)`` vector; ``(D1, ..., 1, N)`` for an N-D ``b``.
    """
    if v.size == 1 and v.ndim <= 1:
        return v.reshape(())
    N = b.shape[-1] if b.ndim >= 2 else 1
    if b.ndim >= 2 and v.ndim == 1 and v.shape[0] == N:
        return v.reshape(1, N)
    if b.ndim >= 2 and 2 <= v.ndim <= b.ndim and v.shape[-2] == 1 and v.shape[-1] in (1, N) \
            and _batch_fits(v.shape[:-2], b.shape[:-2]):
        return v
    raise ShapeError(f"{name} must be a scalar, an ({N},) vector (per column of b) or of shape "
                     f"{b.shape[:-2] + (1, N)}, got shape {v.shape}")


# ----------------------------------------------------------------------------------------
# Conv attributes


@dataclass(frozen=True)
class ConvGeometry:
    """A 1-D or 2-D ONNX convolution as the 2-D kernel sees it.

    Attributes:
        x: (N, C, H, W) input (a 1-D conv has H = 1); for ONNX Runtime's negative SAME padding
            the leading rows/columns it skips are cropped off.
        w: (M, C/group, kH, kW) weights.
        group, strides, dilations: as the kernel takes them (pairs).
        pads: (top, left, bottom, right), all >= 0.
        out_hw: (OH, OW): the output size (the kernel's result is cut to it).
        one_d: drop the H axis of the result.
    """

    x: np.ndarray
    w: np.ndarray
    group: int
    strides: tuple
    dilations: tuple
    pads: tuple
    out_hw: tuple
    one_d: bool

    def restore(self, y: np.ndarray) -> np.ndarray:
        """(N, M, OH', OW') kernel result -> the ONNX output (N, M, OH, OW) or (N, M, OL)."""
        y = y[:, :, :self.out_hw[0], :self.out_hw[1]]
        return y[:, :, 0] if self.one_d else y


def _ints(v, n: int, name: str, default: int, minimum: int) -> tuple:
    """An ONNX INTS attribute: ``n`` ints (one per spatial axis; ``pads``: begins, then ends),
    each >= ``minimum``; ``None`` -> ``default``."""
    if v is None:
        return (default,) * n
    return V.as_int_sequence(v, name, length=n, minimum=minimum)


def _c_half(v: int) -> int:
    """C's ``v / 2`` (truncation toward zero)."""
    return -((-v) // 2) if v < 0 else v // 2


def ort_same_pads(size: int, kernel: int, stride: int, mode: str) -> tuple[int, int]:
    """ONNX Runtime 1.32's SAME_UPPER/SAME_LOWER (begin, end) pads; begin may be negative.

    For $p = (\\lceil n/s \\rceil - 1)s + k - n \\ge 0$ it is ONNX's split (UPPER: begin
    $\\lfloor p/2 \\rfloor$; LOWER: begin $\\lceil p/2 \\rceil$). For $p < 0$ (stride larger than
    the kernel and the input size not a multiple of the stride) ONNX Runtime starts the
    first window at $-b$ with $b = \\mathrm{trunc}((p + 1)/2)$ (UPPER) or
    $\\mathrm{trunc}((p + 2)/2)$ (LOWER): measured on ConvInteger and QLinearConv, int8 and
    uint8, all $p$ from -6 to -1 (``tests/test_conformance_onnx_ops.py``). The spec (and
    ``onnx.reference``) pad nothing there: the first window starts at 0.
    """
    p = (-(-size // stride) - 1) * stride + kernel - size
    if p < 0:
        p += 1  # measured, see above
    begin = _c_half(p + 1) if mode == "SAME_LOWER" else _c_half(p)
    return begin, p - begin


def conv_geometry(x, w, auto_pad, dilations, group, kernel_shape, pads, strides, *, same="spec") -> ConvGeometry:
    """Validate ONNX Conv attributes; 1-D convs become 2-D with H = 1.

    ``same``: ``"spec"`` (SAME pads as the ONNX spec, with dilations) or ``"onnxruntime"``
    (:func:`ort_same_pads`; ORT refuses dilations with SAME_*).
    """
    if x.ndim < 3:
        raise ShapeError(f"x must be (N, C, D1, ...) with at least one spatial axis, got shape {x.shape}")
    if x.ndim > 4:
        raise UnsupportedError(f"refquant implements 1-D and 2-D convolutions, got x of rank {x.ndim}")
    if w.ndim != x.ndim:
        raise ShapeError(f"w must have x's rank {x.ndim} (M, C/group, k...), got shape {w.shape}")
    n_sp = x.ndim - 2
    group = V.as_positive_int(group, "group")
    C, M = x.shape[1], w.shape[0]
    if C % group:
        raise ShapeError(f"x's channels C = {C} must be divisible by group = {group}")
    if M % group:
        raise ShapeError(f"w's output channels M = {M} must be divisible by group = {group}")
    if w.shape[1] * group != C:
        raise ShapeError(f"w must have C / group = {C // group} input channels (w.shape[1]), got {w.shape[1]} "
                         f"(x {x.shape}, w {w.shape}, group {group})")
    kernel = tuple(w.shape[2:])
    if kernel_shape is not None and _ints(kernel_shape, n_sp, "kernel_shape", 1, 1) != kernel:
        raise ShapeError(f"kernel_shape must equal w.shape[2:] = {list(kernel)}, got {list(kernel_shape)}")
    if min(kernel) < 1:
        raise ShapeError(f"w's kernel must be at least 1 along each axis, got {list(kernel)}")
    st = _ints(strides, n_sp, "strides", 1, 1)
    dl = _ints(dilations, n_sp, "dilations", 1, 1)
    auto_pad = V.as_choice(auto_pad, "auto_pad", AUTO_PADS)
    if auto_pad != "NOTSET" and pads is not None:
        raise QuantizationValueError(f"pads cannot be used with auto_pad={auto_pad!r} (ONNX: pads 'cannot be "
                                     f"used simultaneously with auto_pad'), got pads={pads!r}")
    sizes = tuple(x.shape[2:])
    begin, end = [0] * n_sp, [0] * n_sp
    if auto_pad == "NOTSET":
        pd = _ints(pads, 2 * n_sp, "pads", 0, 0)
        begin, end = list(pd[:n_sp]), list(pd[n_sp:])
    elif auto_pad != "VALID":
        if same == "onnxruntime" and max(dl) > 1:
            raise UnsupportedError(f"ONNX Runtime refuses dilations with auto_pad={auto_pad!r} ('Dilation not "
                                   f"supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER'), got "
                                   f"dilations={list(dl)}")
        for i in range(n_sp):
            if same == "onnxruntime":
                begin[i], end[i] = ort_same_pads(sizes[i], kernel[i], st[i], auto_pad)
            else:
                begin[i], end[i] = same_pads(sizes[i], kernel[i], st[i], dl[i], auto_pad)
    out = []
    for i in range(n_sp):
        eff = dl[i] * (kernel[i] - 1) + 1
        padded = sizes[i] + begin[i] + end[i]
        if eff > padded:
            raise ShapeError(f"w's kernel {kernel[i]} (dilated: {eff}) is larger than the padded input "
                             f"{padded} along spatial axis {i} (x {x.shape}, pads {begin + end})")
        out.append(-(-sizes[i] // st[i]) if auto_pad.startswith("SAME") else (padded - eff) // st[i] + 1)
    crop = [max(-b, 0) for b in begin]  # ORT's negative begin pad: skip those leading inputs
    if n_sp == 1:
        x4 = x[:, :, None, crop[0]:]
        w4 = w[:, :, None, :]
        return ConvGeometry(x4, w4, group, (1, st[0]), (1, dl[0]), (0, max(begin[0], 0), 0, max(end[0], 0)),
                            (1, out[0]), True)
    x4 = x[:, :, crop[0]:, crop[1]:] if any(crop) else x
    pads4 = (max(begin[0], 0), max(begin[1], 0), max(end[0], 0), max(end[1], 0))
    return ConvGeometry(x4, w, group, st, dl, pads4, tuple(out), False)
