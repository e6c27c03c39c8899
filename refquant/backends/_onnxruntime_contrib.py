"""ONNX Runtime's QGemm, QLinearMul, QLinearConcat, QLinearAveragePool, QLinearSoftmax,
QLinearLeakyRelu (com.microsoft) and MaxPool on 8-bit tensors (re-exported by
:mod:`refquant.backends.onnxruntime`). Validation here; arithmetic in
:mod:`refquant.kernels.qlinear_lut`, :mod:`refquant.kernels.pool_nd`,
:mod:`refquant.kernels.elementwise_float` and the QLinearMatMul path (QGemm).

Measured on ONNX Runtime 1.32, CPU EP, one thread, default graph optimization level, x86-64
with AVX-512 VNNI (``tests/test_conformance_onnxruntime_more_ops.py``).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..cpu import resolve_isa
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels import lut as klut
from ..kernels import pool as kpool
from ..kernels import pool_nd as kpnd
from ..kernels import qlinear_lut as kql
from ..kernels.requant import requantize
from ..ops import pointwise
from ..profiles import get_profile
from . import _onnx_op_args as OA
from . import _onnx_ops as X

__all__ = ["qgemm", "qlinear_mul", "qlinear_concat", "qlinear_average_pool", "qlinear_softmax",
           "qlinear_leaky_relu", "max_pool"]

_PROFILE = "onnxruntime"
_U8, _S8 = np.dtype(np.uint8), np.dtype(np.int8)
_F32 = np.float32


def _zp(zp, x, name: str, x_name: str = "x") -> int:
    """A per-tensor zero point of ``x``'s type (``None`` = 0; a Python int accepted: the type is known)."""
    z = OA.input_zero_point(zp, x, name, x_name)
    OA.scalar_shape(z, name)
    return int(z.reshape(()))


def _scale(s, name: str) -> np.float32:
    return _F32(V.as_scalar_scale(s, name, max_ndim=1))


def _codes(x, name: str) -> np.ndarray:
    a = OA.operand(x, name)
    if a.dtype not in (_U8, _S8):
        raise QuantizationTypeError(f"{name} must be an int8 or uint8 array, got {a.dtype}")
    return a


# ----------------------------------------------------------------------------------------
# QGemm


def _qgemm_operands(A_, B, transA, transB):
    a, b = _codes(A_, "A"), _codes(B, "B")
    for v, n in ((a, "A"), (b, "B")):
        if v.ndim != 2:
            raise ShapeError(f"{n} must be 2-D, got shape {v.shape}")
    if a.dtype == _S8 and b.dtype == _U8:
        raise UnsupportedError("ONNX Runtime's QGemm has no kernel for int8 A with uint8 B (it has uint8·uint8, "
                               "uint8·int8 and int8·int8)")
    ta = V.as_int_scalar(transA, "transA", lo=0, hi=1)
    tb = V.as_int_scalar(transB, "transB", lo=0, hi=1)
    a2, b2 = (a.T if ta else a), (b.T if tb else b)
    if a2.shape[1] != b2.shape[0]:
        raise ShapeError(f"QGemm needs op(A) (M, K) and op(B) (K, N) with one K, got {a2.shape} and {b2.shape} "
                         f"(A {a.shape}, transA={ta}; B {b.shape}, transB={tb})")
    if a2.shape[1] == 0:
        raise UnsupportedError("QGemm with K = 0: ONNX Runtime then ignores alpha and per-column scales (and writes "
                               "bytes into a float output); not modelled")
    return a, b, np.ascontiguousarray(a2), np.ascontiguousarray(b2)


def _qgemm_bias(C, M: int, N: int):
    if C is None:
        return None
    c = V.asarray(C, "C", kinds=None, what="an int32 array")
    if c.dtype != np.int32:
        raise QuantizationTypeError(f"C must be an int32 array (scale a_scale·b_scale, zero point 0), got {c.dtype}")
    if c.size == 1 or c.shape in ((N,), (1, N), (M, 1), (M, N)):
        return np.broadcast_to(c.reshape(()) if c.size == 1 else (c.reshape(M, 1) if c.shape == (M, 1) else c),
                               (M, N))
    raise ShapeError(f"C must broadcast to (M, N) = ({M}, {N}) as ONNX Runtime's Gemm bias: (), (1,), (N,), (1, N), "
                     f"(M, 1) or (M, N); got {c.shape}")


def qgemm(A, a_scale, a_zero_point, B, b_scale, b_zero_point, C=None, y_scale=None, y_zero_point=None, *,
          alpha=1.0, transA=0, transB=0, isa="auto"):
    """ONNX Runtime ``com.microsoft.QGemm``: $\\mathrm{acc} = C + (A' - Z_a)(B' - Z_b)$ (int32) with
    $A' = A^T$ if ``transA``, $B' = B^T$ if ``transB``, then

    * with ``y_scale``: $y = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc}) \\cdot m_n))) + Z_y$;
    * without: float32 $y = \\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc}) \\cdot m_n)$,

    $m_n = \\mathrm{fl}(\\mathrm{fl}(\\mathrm{fl}(\\alpha S_a) S_b[n]) / S_y)$ (no division without
    ``y_scale``), all float32 (MLAS's requantize or scale output processor). Accumulation as
    :func:`qlinear_matmul` (``isa="avx2"``: uint8 A × int8 B pair sums saturate to int16).

    Args:
        A: (M, K) uint8 or int8 ((K, M) with ``transA=1``). a_scale: positive scalar;
            a_zero_point: scalar of A's type.
        B: (K, N) uint8 or int8 ((N, K) with ``transB=1``); int8 A needs int8 B.
        b_scale, b_zero_point: per-tensor, or per-column (N,); the two of one shape.
        C: optional int32 bias, shape (), (1,), (N,), (1, N), (M, 1) or (M, N).
        y_scale, y_zero_point: both given (output codes of A's type) or both ``None``
            (float32 output).
        alpha: float multiplier of the scale. transA, transB: 0 or 1.
        isa: ``"auto"``, ``"avx2"``, ``"vnni"`` or ``"exact"``.

    Returns:
        (M, N) codes of A's type, or float32.

    Raises:
        UnsupportedError: int8 A with uint8 B, K = 0.
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named).
    """
    a, b, a2, b2 = _qgemm_operands(A, B, transA, transB)
    M, N = a2.shape[0], b2.shape[1]
    za = _zp(a_zero_point, a, "a_zero_point", "A")
    zb = OA.input_zero_point(b_zero_point, b, "b_zero_point", "B")
    sa, sb = _scale(a_scale, "a_scale"), V.as_scale(b_scale, "b_scale")
    for v, n in ((sb, "b_scale"), (zb, "b_zero_point")):
        if not (v.ndim == 0 or (v.ndim == 1 and v.shape[0] in (1, N))):
            raise ShapeError(f"{n} must be a scalar or a 1-D array of size 1 or N = {N}, got shape {v.shape}")
    if sb.shape != zb.shape:
        raise ShapeError(f"b_scale and b_zero_point must have one shape (ONNX Runtime's QGemm), got {sb.shape} and "
                         f"{zb.shape}")
    if (y_scale is None) != (y_zero_point is None):
        raise QuantizationValueError("y_scale and y_zero_point must be given together (quantized output) or both "
                                     "omitted (float output)")
    al = V.as_finite_f32(alpha, "alpha")
    prof = get_profile(_PROFILE).with_isa(resolve_isa(isa))
    acc_model = prof.layer("linear").accumulation_for(prof.isa, a.dtype, b.dtype)
    zb_v = zb.reshape(-1) if zb.size > 1 else zb.reshape(())
    acc = X.integer_matmul(a2, b2, np.int64(za), zb_v.astype(np.int64), acc_model)  # (M, N) int32
    bias = _qgemm_bias(C, M, N)
    if bias is not None:
        acc = (acc.astype(np.int64) + bias).astype(np.uint32).view(np.int32) if acc.size else acc  # int32, wraps
    m = (_F32(al * sa) * sb.astype(_F32)).astype(_F32)  # alpha * a_scale * b_scale[n], left to right
    if y_scale is None:
        return (acc.astype(_F32) * m).astype(_F32)
    fmt = OA.output_format(y_zero_point, like=a.dtype)
    if fmt.dtype != a.dtype:
        raise UnsupportedError(f"ONNX Runtime's QGemm outputs A's type {a.dtype}, got a y_zero_point of {fmt.name}")
    zy = int(OA.output_zero_point(y_zero_point, fmt))
    with np.errstate(all="ignore"):
        m = (m / _scale(y_scale, "y_scale")).astype(_F32)
    if not np.all(np.isfinite(m) & (m > 0)):
        bad = float(np.ravel(m)[~np.ravel(np.isfinite(m) & (m > 0))][0])
        raise QuantizationValueError(f"alpha * a_scale * b_scale / y_scale must be finite and > 0 in float32 (the "
                                     f"requantization scale of a quantized output), got {bad!r}")
    info = np.iinfo(a.dtype)
    with np.errstate(all="ignore"):
        return requantize(acc, m.reshape(-1) if m.size > 1 else m.reshape(()), zy, int(info.min), int(info.max),
                          mode="float32_rne", axis=-1, dtype=a.dtype)


# ----------------------------------------------------------------------------------------
# Element-wise, tables


def qlinear_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point):
    """ONNX Runtime ``com.microsoft.QLinearMul`` (MLAS ``qlmul.cpp``), NumPy broadcasting.

    $y = \\mathrm{sat}(\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}(p\\,m) + Z_c)))$ with the exact
    $p = (a - Z_a)(b - Z_b)$ and $m = \\mathrm{fl}(\\mathrm{fl}(S_a S_b) / S_c)$: the zero point is
    added **before** rounding (:func:`refquant.kernels.elementwise_float.float_mul`).

    Args:
        a, b: int8 or uint8 arrays of one dtype (the output's). Scales: positive scalars.
        a_zero_point, b_zero_point, c_zero_point: scalars of that dtype (Python ints or ``None``
            = 0 accepted).

    Returns:
        Array of ``a.dtype`` and the broadcast shape.
    """
    a, b = _codes(a, "a"), _codes(b, "b")
    if a.dtype != b.dtype:
        raise QuantizationTypeError(f"a and b must share one type (QLinearMul's T), got {a.dtype} and {b.dtype}")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    za, zb, zc = (_zp(z, a, n, "a") for z, n in ((a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point"),
                                                 (c_zero_point, "c_zero_point")))
    sa, sb, sc = _scale(a_scale, "a_scale"), _scale(b_scale, "b_scale"), _scale(c_scale, "c_scale")
    return pointwise.mul(a, sa, za, b, sb, zb, sc, zc, profile=_PROFILE)


def qlinear_leaky_relu(x, x_scale, x_zero_point, y_scale, y_zero_point, *, alpha=0.01):
    """ONNX Runtime ``com.microsoft.QLinearLeakyRelu``: a 256-entry table, looked up by byte.

    $T[v] = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(f(d_v) / S_y))) + Z_y$, $d_v = \\mathrm{fl}(S_x (v - Z_x))$,
    $f(d) = d$ for $d \\ge 0$ else $\\mathrm{fl}(\\alpha d)$ (:func:`refquant.kernels.qlinear_lut.leaky_relu_lut`).

    Args:
        x: int8/uint8 array. Scales: positive scalars. Zero points: scalars of ``x``'s type.
        alpha: the float attribute (default 0.01), used as float32.

    Returns:
        Array of ``x``'s dtype and shape.
    """
    x = _codes(x, "x")
    zx, zy = _zp(x_zero_point, x, "x_zero_point"), _zp(y_zero_point, x, "y_zero_point")
    table = kql.leaky_relu_lut(_scale(x_scale, "x_scale"), zx, _scale(y_scale, "y_scale"), zy,
                               V.as_finite_f32(alpha, "alpha"), dtype=x.dtype)
    return klut.apply_lut(x, table)


def qlinear_concat(y_scale, y_zero_point, *inputs, axis):
    """ONNX Runtime ``com.microsoft.QLinearConcat``: inputs as ``(x, x_scale, x_zero_point)`` triples.

    Each input whose scale and zero point equal the output's is copied; the others go through
    a 256-entry table $T[v] = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{fl}(S_x (v - Z_x)) / S_y))) + Z_y$
    (:func:`refquant.kernels.qlinear_lut.requantize_lut`), then the results are concatenated.

    Args:
        y_scale, y_zero_point: the output's (zero point's type: the output type, int8 or uint8;
            a NumPy integer, or a Python int taken as the inputs' type).
        *inputs: ``x0, x0_scale, x0_zero_point, x1, ...``: at least one triple; every ``x`` of
            the output type, of one rank, equal outside ``axis``.
        axis: the concatenation axis (negative counts from the end).

    Returns:
        The concatenated codes.
    """
    if len(inputs) < 3 or len(inputs) % 3:
        raise QuantizationValueError(f"inputs must be (x, x_scale, x_zero_point) triples, got {len(inputs)} values")
    xs = [_codes(inputs[i], f"x{i // 3}") for i in range(0, len(inputs), 3)]
    dt = xs[0].dtype
    if isinstance(y_zero_point, (np.ndarray, np.generic)) and np.asarray(y_zero_point).dtype != dt:
        raise QuantizationTypeError(f"y_zero_point must have the inputs' type (x0 is {dt}), got "
                                    f"{np.asarray(y_zero_point).dtype}")
    zy, sy = _zp(y_zero_point, xs[0], "y_zero_point", "x0"), _scale(y_scale, "y_scale")
    if xs[0].ndim == 0:
        raise ShapeError("x0 must have rank >= 1 to be concatenated, got a 0-d array")
    ax = V.normalize_axis(axis, xs[0].ndim)
    parts = []
    for i, x in enumerate(xs):
        if x.dtype != dt or x.ndim != xs[0].ndim or x.shape[:ax] + x.shape[ax + 1:] != xs[0].shape[:ax] + xs[0].shape[ax + 1:]:
            raise ShapeError(f"x{i} must have x0's type {dt} and shape {xs[0].shape} outside axis {ax}, got "
                             f"{x.dtype} {x.shape}")
        sx, zx = _scale(inputs[3 * i + 1], f"x{i}_scale"), _zp(inputs[3 * i + 2], x, f"x{i}_zero_point", f"x{i}")
        if sx == sy and zx == zy:
            parts.append(x)
        else:
            parts.append(klut.apply_lut(np.ascontiguousarray(x), kql.requantize_lut(sx, zx, sy, zy, dtype=dt)))
    return np.concatenate(parts, axis=ax)


def qlinear_softmax(x, x_scale, x_zero_point, y_scale, y_zero_point, *, axis=-1, opset=13):
    """ONNX Runtime ``com.microsoft.QLinearSoftmax``.

    Rows of $D$ codes (opset >= 13: ``axis`` alone, the other axes batch; opset < 13: the
    input flattened to 2-D at ``axis``); in each, a float32 table of exponentials aligned to the
    row's maximum, a float32 sum in order, and
    $y_k = \\operatorname{sat}(\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}(e_k \\lfloor 1/S_y \\rfloor) / \\Sigma)) + Z_y)$
    (:mod:`refquant.kernels.qlinear_lut`, eqs. (2)-(3)). ``x_zero_point`` does not enter (a
    softmax is shift-invariant); it is checked for type only.

    Args:
        x: int8/uint8 array of rank >= 1. x_scale, y_scale: positive scalars. Zero points:
            scalars of ``x``'s type.
        axis: the softmax axis (default -1). opset: the ``opset`` attribute (>= 1).

    Returns:
        Array of ``x``'s dtype and shape.
    """
    x = _codes(x, "x")
    _zp(x_zero_point, x, "x_zero_point")
    zy = _zp(y_zero_point, x, "y_zero_point")
    sx, sy = _scale(x_scale, "x_scale"), _scale(y_scale, "y_scale")
    opset = V.as_int_scalar(opset, "opset", lo=1)
    if x.ndim == 0:
        raise ShapeError("x must have rank >= 1, got a 0-d array")
    ax = V.normalize_axis(axis, x.ndim)
    if x.size == 0:
        return x.copy()
    if opset < 13:
        rows = x.reshape(int(np.prod(x.shape[:ax], dtype=np.int64)), -1)
        return kql.qlinear_softmax(rows, kql.softmax_exp_table(sx, rows.shape[1], dtype=x.dtype), sy, zy
                                   ).reshape(x.shape)
    moved = np.moveaxis(x, ax, -1)
    rows = np.ascontiguousarray(moved).reshape(-1, x.shape[ax])
    y = kql.qlinear_softmax(rows, kql.softmax_exp_table(sx, x.shape[ax], dtype=x.dtype), sy, zy)
    return np.moveaxis(y.reshape(moved.shape), -1, ax)


# ----------------------------------------------------------------------------------------
# Pooling


def _pool_args(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode, channels_last=0):
    x = _codes(x, "x")
    cl = V.as_int_scalar(channels_last, "channels_last", lo=0, hi=1)
    if x.ndim not in (3, 4):
        raise ShapeError(f"x must be 3-D or 4-D (a 1-D or 2-D pool; 3-D pools are not modelled), got shape {x.shape}")
    nchw = np.moveaxis(x, -1, 1) if cl else x
    r = x.ndim - 2
    k = V.as_int_sequence(kernel_shape, "kernel_shape", length=r, minimum=1)
    s = V.as_int_sequence(strides if strides is not None else [1] * r, "strides", length=r, minimum=1)
    d = V.as_int_sequence(dilations if dilations is not None else [1] * r, "dilations", length=r, minimum=1)
    p = V.as_int_sequence(pads if pads is not None else [0] * 2 * r, "pads", length=2 * r, minimum=0)
    auto_pad = V.as_choice(auto_pad, "auto_pad", ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"))
    ceil_mode = V.as_int_scalar(ceil_mode, "ceil_mode", lo=0, hi=1)
    out, heads, used = kpnd.ort_pool_geometry(nchw.shape[2:], k, s, p, d, ceil_mode=ceil_mode, auto_pad=auto_pad)
    if r == 1:  # a 1-D pool is a 2-D pool over (L, 1)
        nchw = nchw[..., None]
        k, s, d, heads, out = list(k) + [1], list(s) + [1], list(d) + [1], tuple(heads) + (0,), tuple(out) + (1,)
    return x, np.ascontiguousarray(nchw), cl, k, s, d, heads, out, used


def _restore(y, x, cl):
    if x.ndim == 3:
        y = y[..., 0]
    return np.ascontiguousarray(np.moveaxis(y, 1, -1)) if cl else y


def qlinear_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, auto_pad="NOTSET", ceil_mode=0,
                         channels_last=0, count_include_pad=0, kernel_shape, pads=None, strides=None):
    """ONNX Runtime ``com.microsoft.QLinearAveragePool`` (1-D and 2-D).

    Codes dequantized to float32, summed in float32 over each window in row order, divided by
    the window size (the clipped size, or $\\prod k$ with ``count_include_pad``), then
    $\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}(a / S_y) + Z_y))$ clamped
    (:func:`refquant.kernels.pool_nd.average_pool_float`). A kernel covering the whole image
    with zero pads runs QLinearGlobalAveragePool's integer kernel, as ORT does. Window
    geometry: :func:`refquant.kernels.pool_nd.ort_pool_geometry`.

    Args:
        x: int8/uint8 (N, C, L) or (N, C, H, W); with ``channels_last=1`` (N, L, C) / (N, H, W, C).
        x_scale, y_scale: positive scalars. Zero points: scalars of ``x``'s type.
        auto_pad, ceil_mode, count_include_pad, kernel_shape, pads, strides: ONNX attributes.
        channels_last: 0 or 1.

    Returns:
        Codes of ``x``'s dtype.

    Raises:
        QuantizationValueError: a pad not smaller than the kernel. ShapeError: 3-D pools, bad shapes.
    """
    x, nchw, cl, k, s, _, heads, out, used = _pool_args(x, kernel_shape, strides, pads, None, auto_pad, ceil_mode,
                                                        channels_last)
    zx, zy = _zp(x_zero_point, x, "x_zero_point"), _zp(y_zero_point, x, "y_zero_point")
    sx, sy = _scale(x_scale, "x_scale"), _scale(y_scale, "y_scale")
    cip = V.as_int_scalar(count_include_pad, "count_include_pad", lo=0, hi=1)
    spatial = nchw.shape[2:] if x.ndim == 4 else nchw.shape[2:3]
    if tuple(spatial) == tuple(k[:len(spatial)]) and not any(used):  # ORT: the global average pool kernel
        y = kpool.global_average_pool(nchw, sx, x.dtype.type(zx), sy, x.dtype.type(zy))
        return _restore(y, x, cl)
    y = kpnd.average_pool_float(nchw, sx, zx, sy, zy, k, s, heads, out, count_include_pad=bool(cip))
    return _restore(y, x, cl)


def max_pool(x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape, pads=None, storage_order=0,
             strides=None):
    """ONNX Runtime ``MaxPool`` on int8/uint8 tensors (1-D and 2-D, NCHW): the maximum of each
    window's taps inside the input (exact; a window with none gives the type's minimum).

    Args:
        x: int8/uint8 (N, C, L) or (N, C, H, W).
        auto_pad, ceil_mode, dilations, kernel_shape, pads, strides: ONNX attributes (window
            geometry: :func:`refquant.kernels.pool_nd.ort_pool_geometry`).
        storage_order: 0 or 1 (it only orders the optional indices output, not returned here).

    Returns:
        Codes of ``x``'s dtype (the ``Y`` output).
    """
    V.as_int_scalar(storage_order, "storage_order", lo=0, hi=1)
    x, nchw, _, k, s, d, heads, out, _ = _pool_args(x, kernel_shape, strides, pads, dilations, auto_pad, ceil_mode)
    return _restore(kpnd.max_pool(nchw, k, s, heads, out, d), x, 0)
