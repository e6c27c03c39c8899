"""The ONNX specification's integer matmul and convolution ops (re-exported by
:mod:`refquant.backends.onnx`): ``MatMulInteger``, ``QLinearMatMul``, ``ConvInteger``,
``QLinearConv``, plus the binding helpers the ONNX Runtime face shares.

Each op is a thin binding: the int32 accumulators come from :func:`refquant.kernels.gemm.matmul`
/ :func:`refquant.kernels.conv.conv2d` (exact accumulation; a value outside int32 warns and
wraps, the kernels' overflow rule), the output stage
from :func:`refquant.ops.layers.output_stage` under the ``onnx`` profile (the exact rational
$S_a S_b / S_y$ of the float32 scales, rounded in mode ``exact_rne``):

$$ y = \\operatorname{saturate}\\big(\\mathrm{RNE}(\\mathrm{acc} \\cdot S_a S_b / S_y) + Z_y\\big) $$

evaluated exactly (no float rounding anywhere), ties to even, then the zero point.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError
from ..kernels.conv import conv2d
from ..kernels.gemm import gemm, matmul
from ..ops.layers import output_stage
from ..profiles import get_profile
from . import _onnx_op_args as A

__all__ = ["matmul_integer", "qlinear_matmul", "conv_integer", "qlinear_conv"]


# ----------------------------------------------------------------------------------------
# Binding helpers (shared with the ONNX Runtime face)


def integer_matmul(a2, b2, za, zb, acc_model: str) -> np.ndarray:
    """int32 accumulators ``(batch..., M, N)`` of promoted operands ``a2`` (..., M, K), ``b2`` (..., K, N).

    ``za``: shape ``()`` or ``(..., M or 1, 1)``; ``zb``: ``()`` or ``(..., 1, N or 1)`` (int64).
    Zero points that do not vary over the batch go to one :func:`matmul` call; otherwise each
    matrix of the batch is one :func:`gemm`.
    """
    M, N = a2.shape[-2], b2.shape[-1]
    if za.ndim <= 2 and zb.ndim <= 2:
        za_v = np.broadcast_to(za, (M, 1))[:, 0] if za.ndim else za  # () or (M,)
        zb_v = np.broadcast_to(zb, (1, N))[0] if zb.ndim else zb      # () or (N,)
        return matmul(a2, b2, za_v.astype(a2.dtype), zb_v.astype(b2.dtype), acc_model=acc_model)
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2], za.shape[:-2], zb.shape[:-2])
    a_b = np.broadcast_to(a2, batch + a2.shape[-2:])
    b_b = np.broadcast_to(b2, batch + b2.shape[-2:])
    za_b = np.broadcast_to(za, batch + (M, 1)).astype(a2.dtype)
    zb_b = np.broadcast_to(zb, batch + (1, N)).astype(b2.dtype)
    out = np.empty(batch + (M, N), np.int32)
    for idx in np.ndindex(*batch):
        out[idx] = gemm(a_b[idx], b_b[idx], za_b[idx][:, 0], zb_b[idx][0], acc_model=acc_model)
    return out


def squeeze_matmul(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Drop the dimensions NumPy matmul drops for 1-D operands."""
    if a.ndim == 1:
        y = y[..., 0, :]
    if b.ndim == 1:
        y = y[..., 0]
    return y


def requant_matmul(acc, sa, sb, sy, zy: int, fmt, profile: str) -> np.ndarray:
    """Requantize ``acc`` (batch..., M, N) with $M_{mn} = S_a[m] S_b[n] / S_y$.

    ``sa``: ``()`` or ``(..., M or 1, 1)``; ``sb``: ``()`` or ``(..., 1, N or 1)`` (float32).
    One :func:`requantize` call per distinct (batch, parameter) slice: per-tensor, per-column
    (``axis=-1``), per-row (``axis=-2``), or row by row when both vary.
    """
    out = np.empty(acc.shape, fmt.dtype)
    pb = np.broadcast_shapes(sa.shape[:-2], sb.shape[:-2])  # batch dims on which the scales vary
    lead = acc.ndim - 2 - len(pb)
    sa_b = np.broadcast_to(sa.reshape(sa.shape or (1, 1)), pb + (sa.shape[-2] if sa.ndim else 1, 1))
    sb_b = np.broadcast_to(sb.reshape(sb.shape or (1, 1)), pb + (1, sb.shape[-1] if sb.ndim else 1))

    spec = get_profile(profile).layer("linear")

    def run(sel, s_in, s_w, axis, names=("a_scale", "b_scale", "y_scale")):
        out[sel] = output_stage(acc[sel], spec, s_in, s_w, sy, zy, axis=axis, out_dtype=fmt.dtype, scale_names=names)

    for pidx in np.ndindex(*pb):
        sel = (slice(None),) * lead + tuple(i if d > 1 else slice(None) for i, d in zip(pidx, pb))
        rows, cols = sa_b[pidx][:, 0], sb_b[pidx][0]  # (M or 1,), (N or 1,)
        if rows.size == 1:
            run(sel, rows[0], cols if cols.size > 1 else cols[0], -1)
        elif cols.size == 1:  # S_b S_a / S_y: the same product, exact and commutative in float32
            run(sel, cols[0], rows, -2, ("b_scale", "a_scale", "y_scale"))
        else:
            for m in range(rows.size):
                run(sel + (m,), rows[m], cols, -1)
    return out


def bias(B, M: int):
    """QLinearConv's optional ``B``: an int32 (M,) array, or None."""
    if B is None:
        return None
    arr = V.asarray(B, "B", kinds=None, what="an int32 array")
    if arr.dtype != np.int32:
        raise QuantizationTypeError(f"B must be an int32 array (scale x_scale·w_scale, zero point 0), got dtype "
                                    f"{arr.dtype}")
    if arr.shape != (M,):
        raise ShapeError(f"B must have shape ({M},), one per output channel of w, got {arr.shape}")
    return arr


def integer_conv(g: A.ConvGeometry, xz: int, wz, acc_model: str = "exact", k_order: str = "chw") -> np.ndarray:
    """int32 accumulators (N, M, OH', OW') of a validated :class:`ConvGeometry` (before ``restore``)."""
    wz_a = np.asarray(wz, np.int64)
    wz_k = (wz_a.reshape(-1) if wz_a.size > 1 else wz_a.reshape(())).astype(g.w.dtype)
    return conv2d(np.ascontiguousarray(g.x), np.ascontiguousarray(g.w), g.x.dtype.type(xz), wz_k,
                  strides=g.strides, dilations=g.dilations, pads=g.pads, groups=g.group, acc_model=acc_model,
                  k_order=k_order)


def requant_conv(acc, B, sx, sw, sy, zy: int, fmt, profile: str, family: str = "conv") -> np.ndarray:
    """$\\mathrm{acc} + B$ (int32, exact; overflow rule), then requantize per output channel (axis 1)."""
    return output_stage(acc, get_profile(profile).layer(family), sx, sw if sw.size > 1 else sw.reshape(()), sy, zy,
                        bias=B, axis=1, out_dtype=fmt.dtype)


def conv_zero_points(x, w, x_zero_point, w_zero_point):
    """x: per-tensor; w: per-tensor or (M,). Returns (int, int64 array () or (M,))."""
    xz = A.input_zero_point(x_zero_point, x, "x_zero_point", "x")
    A.scalar_shape(xz, "x_zero_point")
    wz = A.input_zero_point(w_zero_point, w, "w_zero_point", "w")
    if wz.size > 1 and wz.shape != (w.shape[0],):
        raise ShapeError(f"w_zero_point must be a scalar or have shape ({w.shape[0]},) (per output channel), "
                         f"got {wz.shape}")
    return int(xz.reshape(())), (wz if wz.size > 1 else wz.reshape(()))


def check_w_scale(w_scale, w) -> np.ndarray:
    """QLinearConv's ``w_scale``: per-tensor or (M,), float32."""
    sw = V.as_scale(w_scale, "w_scale")
    if sw.size > 1 and sw.shape != (w.shape[0],):
        raise ShapeError(f"w_scale must be a scalar or have shape ({w.shape[0]},) (per output channel), "
                         f"got {sw.shape}")
    return sw


# ----------------------------------------------------------------------------------------
# The ONNX face


def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    """ONNX ``MatMulInteger`` (opset 10): $Y = (A - Z_a)(B - Z_b)$ in int32, NumPy matmul semantics.

    $$ Y[\\ldots, m, n] = \\sum_k (A[\\ldots, m, k] - Z_a[m])(B[\\ldots, k, n] - Z_b[n]) $$

    Args:
        a: int8/uint8 array (..., M, K) or (K,).
        b: int8/uint8 array (..., K, N) or (K,); batch dimensions broadcast.
        a_zero_point: ``None`` (0), a Python int, or an array of ``a``'s dtype: scalar, (M,)
            per row (2-D ``a``), or (D1, ..., M, 1) for N-D ``a``.
        b_zero_point: Likewise for ``b``: scalar, (N,) per column, or (D1, ..., 1, N).

    Returns:
        int32 array of shape ``broadcast(a.shape[:-2], b.shape[:-2]) + (M, N)`` (1-D
        operands drop their dimension). An accumulator outside int32 (the spec allows
        overflow "only in 32 bits") warns (:class:`~refquant.errors.AccumulatorOverflowWarning`)
        and wraps.

    Raises:
        QuantizationTypeError: a non-int8/uint8 operand, or a zero point of another dtype.
        QuantizationValueError: a zero point outside its type's range.
        ShapeError: K mismatch, batch dimensions that do not broadcast, zero-point shapes.
    """
    a, b = A.operand(a, "a"), A.operand(b, "b")
    a2, b2 = A.promote(a, b)
    za = A.row_param(A.input_zero_point(a_zero_point, a, "a_zero_point", "a"), a2, "a_zero_point")
    zb = A.col_param(A.input_zero_point(b_zero_point, b, "b_zero_point", "b"), b2, "b_zero_point")
    return squeeze_matmul(integer_matmul(a2, b2, za, zb, "exact"), a, b)


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """ONNX ``QLinearMatMul`` (opset 10-21) as the specification states it.

    $$ y = \\operatorname{saturate}\\Big(\\mathrm{RNE}\\Big(\\frac{S_a[m] S_b[n]}{S_y}
       \\sum_k (a_{mk} - Z_a[m])(b_{kn} - Z_b[n])\\Big) + Z_y\\Big) $$

    The product is exact (a rational number), rounded once, ties to even; then $Z_y$ is
    added and the result saturates to the output type.

    Args:
        a: int8/uint8 (..., M, K) or (K,). b: int8/uint8 (..., K, N) or (K,).
        a_scale, a_zero_point: per-tensor, or per row: (M,) for a 2-D ``a``, (D1, ..., M, 1)
            for N-D. Scales positive finite floats (float16/float32; float64 becomes float32);
            zero points of ``a``'s dtype (or Python ints). The spec gives a scale and its zero
            point one shape; a per-tensor one is also accepted with a per-row partner.
        b_scale, b_zero_point: per-tensor, or per column: (N,), or (D1, ..., 1, N).
        y_scale: positive scalar. y_zero_point: int8 or uint8 scalar; **its dtype is the
            output type**.

    Returns:
        Array of ``y_zero_point``'s dtype and the matmul's shape.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad types, values or shapes
            (as :func:`matmul_integer`, plus scales).
    """
    a, b = A.operand(a, "a"), A.operand(b, "b")
    a2, b2 = A.promote(a, b)
    fmt = A.output_format(y_zero_point)
    zy = A.output_zero_point(y_zero_point, fmt)
    sy = V.as_scale(y_scale, "y_scale")
    A.scalar_shape(sy, "y_scale")
    sa, za, sb, zb = (V.as_scale(a_scale, "a_scale"), A.input_zero_point(a_zero_point, a, "a_zero_point", "a"),
                      V.as_scale(b_scale, "b_scale"), A.input_zero_point(b_zero_point, b, "b_zero_point", "b"))
    sa, za = A.row_param(sa, a2, "a_scale"), A.row_param(za, a2, "a_zero_point")
    sb, zb = A.col_param(sb, b2, "b_scale"), A.col_param(zb, b2, "b_zero_point")
    acc = integer_matmul(a2, b2, za, zb, "exact")
    return squeeze_matmul(requant_matmul(acc, sa, sb, sy.reshape(()), zy, fmt, "onnx"), a, b)


def conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET", dilations=None, group=1,
                 kernel_shape=None, pads=None, strides=None):
    """ONNX ``ConvInteger`` (opset 10): int32 convolution of $x - Z_x$ with $w - Z_w$, NCHW.

    $$ Y[n, o, h, w] = \\sum_{c, i, j} (\\tilde x[n, gC_g + c, h s_H - p_t + i d_H, w s_W - p_l + j d_W] - Z_x)
       (W[o, c, i, j] - Z_w[o]) $$

    with out-of-image taps equal to $Z_x$ (they contribute 0) (:mod:`refquant.kernels.conv`).

    Args:
        x: int8/uint8 (N, C, H, W), or (N, C, L) for a 1-D convolution.
        w: int8/uint8 (M, C/group, kH, kW) (or (M, C/group, k)).
        x_zero_point: per-tensor (``None`` = 0; Python int or ``x``'s dtype).
        w_zero_point: per-tensor or (M,) per output channel (``w``'s dtype).
        auto_pad: ``"NOTSET"`` (use ``pads``), ``"SAME_UPPER"``, ``"SAME_LOWER"`` (output
            $\\lceil n / s \\rceil$; the odd pad at the end / the beginning) or ``"VALID"``.
        dilations, strides: one int >= 1 per spatial axis (default 1).
        group: number of groups; ``C`` and ``M`` must be divisible by it.
        kernel_shape: optional; must equal ``w.shape[2:]``.
        pads: ``[x1_begin, x2_begin, x1_end, x2_end]`` (>= 0), not with ``auto_pad``.

    Returns:
        int32 (N, M, OH, OW) (or (N, M, OL)); overflow warns and wraps (kernels' rule).

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad types, values, shapes
            or attributes. UnsupportedError: 3-D convolutions.
    """
    x, w = A.operand(x, "x"), A.operand(w, "w")
    g = A.conv_geometry(x, w, auto_pad, dilations, group, kernel_shape, pads, strides)
    xz, wz = conv_zero_points(x, w, x_zero_point, w_zero_point)
    return g.restore(integer_conv(g, xz, wz))


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
                 auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    """ONNX ``QLinearConv`` (opset 10) as the specification states it.

    $$ y[n, o] = \\operatorname{saturate}\\Big(\\mathrm{RNE}\\Big(\\frac{S_x S_w[o]}{S_y}
       \\big(\\mathrm{acc}[n, o] + B[o]\\big)\\Big) + Z_y\\Big) $$

    ``acc`` as :func:`conv_integer`; the bias is added in int32 (exact; overflow rule), the
    product is exact, rounded once, ties to even, then $Z_y$ is added and the result saturates.

    Args:
        x, x_scale, x_zero_point: input, per-tensor scale and zero point.
        w: weights (M, C/group, kH, kW). w_scale, w_zero_point: per-tensor or (M,) per output
            channel (a per-tensor one broadcasts against a per-channel partner).
        y_scale: positive scalar. y_zero_point: int8/uint8 scalar; its dtype is the output type.
        B: optional int32 (M,) bias with scale $S_x S_w[o]$ and zero point 0.
        auto_pad, dilations, group, kernel_shape, pads, strides: as :func:`conv_integer`.

    Returns:
        Array of ``y_zero_point``'s dtype, (N, M, OH, OW) (or (N, M, OL)).

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError: as
            :func:`conv_integer`, plus scales, ``B`` and the output zero point.
    """
    x, w = A.operand(x, "x"), A.operand(w, "w")
    g = A.conv_geometry(x, w, auto_pad, dilations, group, kernel_shape, pads, strides)
    xz, wz = conv_zero_points(x, w, x_zero_point, w_zero_point)
    sx, sw, sy = V.as_scale(x_scale, "x_scale"), check_w_scale(w_scale, w), V.as_scale(y_scale, "y_scale")
    A.scalar_shape(sx, "x_scale")
    A.scalar_shape(sy, "y_scale")
    fmt = A.output_format(y_zero_point)
    zy = A.output_zero_point(y_zero_point, fmt)
    bq = bias(B, w.shape[0])
    acc = integer_conv(g, xz, wz)
    return g.restore(requant_conv(acc, bq, sx.reshape(()), sw, sy.reshape(()), zy, fmt, "onnx"))
