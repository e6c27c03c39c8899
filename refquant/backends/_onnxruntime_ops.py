"""ONNX Runtime's integer matmul, convolution and com.microsoft QLinear ops (re-exported by
:mod:`refquant.backends.onnxruntime`, whose docstring lists the measured accumulation models,
what ONNX Runtime refuses and the SAME-padding rule). They bind the ONNX face's helpers
(:mod:`._onnx_ops`) to the ``onnxruntime`` profile.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..cpu import resolve_isa
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..profiles import get_profile
from ..ops import layers, pointwise
from . import _onnx_op_args as A
from . import _onnx_ops as X

__all__ = ["matmul_integer", "qlinear_matmul", "conv_integer", "qlinear_conv", "qlinear_add",
           "qlinear_global_average_pool", "qlinear_sigmoid"]

_U8, _S8 = np.dtype(np.uint8), np.dtype(np.int8)
_QLINEAR_TYPES = {(_U8, _U8): _U8, (_U8, _S8): _U8, (_S8, _S8): _S8}  # (a or x, b or w) -> y, ORT's kernels


_PROFILE = "onnxruntime"


def _accumulation(family: str, x, w, isa) -> str:
    """The accumulation model of the profile's ``family`` spec, resolved for ``isa``, for these operands."""
    prof = get_profile(_PROFILE).with_isa(resolve_isa(isa))  # auto, avx2, vnni or exact (ORT: any VNNI is exact)
    return prof.layer(family).accumulation_for(prof.isa, x.dtype, w.dtype)


def _ort_scalar(v: np.ndarray, name: str, op: str) -> None:
    """ORT's ``IsScalarOr1ElementVector``."""
    if v.size != 1 or v.ndim > 1:
        raise UnsupportedError(f"ONNX Runtime's {op} takes a scalar or 1-element 1-D {name}, got shape {v.shape}")


def _ort_b_param(v: np.ndarray, b: np.ndarray, name: str, op: str) -> None:
    """ORT's ``IsBQuantParamSupported``: per-tensor, (N,) for a 2-D b, or b.shape[:-2] + (1, N)."""
    if (v.size == 1 and v.ndim <= 1) or (b.ndim == 2 and v.shape == (b.shape[1],)) \
            or (b.ndim >= 2 and v.shape == b.shape[:-2] + (1, b.shape[-1])):
        return
    want = b.shape[:-2] + (1, b.shape[-1]) if b.ndim >= 2 else (1,)
    raise UnsupportedError(f"ONNX Runtime's {op} takes {name} per-tensor or of shape {want}, got {v.shape}")


def _qlinear_types(x, w, y_zero_point, op: str, names=("a", "b")):
    out = _QLINEAR_TYPES.get((x.dtype, w.dtype))
    if out is None:
        raise UnsupportedError(f"ONNX Runtime has no {op} kernel for {names[0]} {x.dtype} and {names[1]} {w.dtype} "
                               f"(it has uint8·uint8, uint8·int8 and int8·int8)")
    fmt = A.output_format(y_zero_point, like=out)
    if fmt.dtype != out:
        raise UnsupportedError(f"ONNX Runtime's {op} with {names[0]} {x.dtype} outputs {out}, got a y_zero_point "
                               f"of {fmt.name}")
    return fmt


# ----------------------------------------------------------------------------------------
# MatMul


def matmul_integer(a, b, a_zero_point=None, b_zero_point=None, *, isa="auto"):
    """ONNX Runtime ``MatMulInteger``: int32 $(A - Z_a)(B - Z_b)$, NumPy matmul semantics.

    Exact, except uint8 ``a`` × int8 ``b`` on ``isa="avx2"``: pair sums saturate to int16
    (module docstring). Arguments as :func:`refquant.backends.onnx.matmul_integer`;
    ``a_zero_point`` per-tensor only, ``b_zero_point`` per-tensor, (N,) for a 2-D ``b`` or
    ``b.shape[:-2] + (1, N)``.

    Args:
        isa: ``"auto"`` (the running CPU), ``"avx2"``, ``"vnni"`` or ``"exact"``.

    Raises:
        UnsupportedError: a zero-point shape ORT refuses (per-row ``a_zero_point``).
        QuantizationTypeError, QuantizationValueError, ShapeError: as the ONNX face.
    """
    a, b = A.operand(a, "a"), A.operand(b, "b")
    a2, b2 = A.promote(a, b)
    za_raw = A.input_zero_point(a_zero_point, a, "a_zero_point", "a")
    zb_raw = A.input_zero_point(b_zero_point, b, "b_zero_point", "b")
    za, zb = A.row_param(za_raw, a2, "a_zero_point"), A.col_param(zb_raw, b2, "b_zero_point")
    _ort_scalar(za_raw, "a_zero_point", "MatMulInteger")
    _ort_b_param(zb_raw, b, "b_zero_point", "MatMulInteger")
    return X.squeeze_matmul(X.integer_matmul(a2, b2, za, zb, _accumulation("linear", a, b, isa)), a, b)


def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, isa="auto"):
    """ONNX Runtime ``QLinearMatMul``: the accumulator of :func:`matmul_integer`, then
    $y = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc}) \\cdot m_n))) + Z_y$ with
    $m_n = \\mathrm{fl}(\\mathrm{fl}(S_a S_b[n]) / S_y)$ (float32).

    Args:
        a, a_scale, a_zero_point: uint8 or int8 operand; per-tensor scale and zero point.
        b, b_scale, b_zero_point: per-tensor, or per column ((N,) for a 2-D ``b``, else
            ``b.shape[:-2] + (1, N)``); the two may differ in shape.
        y_scale, y_zero_point: per-tensor; the output type is ``a``'s (uint8·uint8 and
            uint8·int8 give uint8, int8·int8 gives int8); ``y_zero_point`` may be a Python int.
        isa: as :func:`matmul_integer`.

    Returns:
        Array of the output type and the matmul's shape.

    Raises:
        UnsupportedError: type combinations or parameter shapes ORT refuses.
    """
    a, b = A.operand(a, "a"), A.operand(b, "b")
    a2, b2 = A.promote(a, b)
    fmt = _qlinear_types(a, b, y_zero_point, "QLinearMatMul")
    zy = A.output_zero_point(y_zero_point, fmt)
    raw = {"a_scale": V.as_scale(a_scale, "a_scale"), "b_scale": V.as_scale(b_scale, "b_scale"),
           "a_zero_point": A.input_zero_point(a_zero_point, a, "a_zero_point", "a"),
           "b_zero_point": A.input_zero_point(b_zero_point, b, "b_zero_point", "b"),
           "y_scale": V.as_scale(y_scale, "y_scale")}
    sa, za = A.row_param(raw["a_scale"], a2, "a_scale"), A.row_param(raw["a_zero_point"], a2, "a_zero_point")
    sb, zb = A.col_param(raw["b_scale"], b2, "b_scale"), A.col_param(raw["b_zero_point"], b2, "b_zero_point")
    A.scalar_shape(raw["y_scale"], "y_scale")
    for name in ("a_scale", "a_zero_point", "y_scale"):
        _ort_scalar(raw[name], name, "QLinearMatMul")
    for name in ("b_scale", "b_zero_point"):
        _ort_b_param(raw[name], b, name, "QLinearMatMul")
    acc = X.integer_matmul(a2, b2, za, zb, _accumulation("linear", a, b, isa))
    y = X.requant_matmul(acc, sa, sb, raw["y_scale"].reshape(()), zy, fmt, _PROFILE)
    return X.squeeze_matmul(y, a, b)


# ----------------------------------------------------------------------------------------
# Conv


def conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET", dilations=None, group=1,
                 kernel_shape=None, pads=None, strides=None, isa="auto"):
    """ONNX Runtime ``ConvInteger`` (NCHW, 1-D and 2-D): int32 accumulators.

    Exact, except int8 ``x`` × uint8 ``w`` on ``isa="avx2"``: ORT computes
    $W \\cdot \\mathrm{im2col}(x)$ and the u8×s8 pairs (weights unsigned) saturate to int16, in
    (c, kH, kW) order. Arguments as :func:`refquant.backends.onnx.conv_integer`, with ORT's
    SAME padding rule (:func:`._onnx_op_args.ort_same_pads`).

    Raises:
        UnsupportedError: a per-channel ``w_zero_point`` ("Non per-tensor quantization is not
            supported now"), dilations with SAME_UPPER/SAME_LOWER, 3-D convolutions.
        QuantizationTypeError, QuantizationValueError, ShapeError: as the ONNX face.
    """
    x, w = A.operand(x, "x"), A.operand(w, "w")
    g = A.conv_geometry(x, w, auto_pad, dilations, group, kernel_shape, pads, strides, same="onnxruntime")
    xz, wz = X.conv_zero_points(x, w, x_zero_point, w_zero_point)
    if wz.size > 1:
        raise UnsupportedError(f"ONNX Runtime's ConvInteger refuses a per-channel w_zero_point ('Non per-tensor "
                               f"quantization is not supported now'), got shape {wz.shape}")
    return g.restore(X.integer_conv(g, xz, wz, _accumulation("integer_conv", x, w, isa), "chw"))


def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
                 auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None,
                 isa="auto"):
    """ONNX Runtime ``QLinearConv`` (NCHW, 1-D and 2-D).

    $\\mathrm{acc} + B$ in int32, then
    $y = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc} + B) \\cdot m_o))) + Z_y$
    with $m_o = \\mathrm{fl}(\\mathrm{fl}(S_x S_w[o]) / S_y)$. Accumulation exact, except uint8
    ``x`` × int8 ``w`` on ``isa="avx2"``: pairs in (kH, kW, c) order saturate to
    int16, unless the convolution is depthwise with multiplier 1 (``group == C == M``) and all
    weight zero points are equal, which MLAS runs in an exact kernel.

    Args:
        x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B: as the
            ONNX face; ``w_scale`` and ``w_zero_point`` may differ in shape; the output type is
            ``x``'s (``y_zero_point`` may be a Python int).
        auto_pad, dilations, group, kernel_shape, pads, strides: as :func:`conv_integer`.
        isa: ``"auto"``, ``"avx2"``, ``"vnni"`` or ``"exact"``.

    Raises:
        UnsupportedError: int8 ``x`` with uint8 ``w`` (no ORT kernel), an output type other
            than ``x``'s, dilations with SAME padding, 3-D convolutions.
        QuantizationTypeError, QuantizationValueError, ShapeError: as the ONNX face.
    """
    x, w = A.operand(x, "x"), A.operand(w, "w")
    fmt = _qlinear_types(x, w, y_zero_point, "QLinearConv", ("x", "w"))
    g = A.conv_geometry(x, w, auto_pad, dilations, group, kernel_shape, pads, strides, same="onnxruntime")
    xz, wz = X.conv_zero_points(x, w, x_zero_point, w_zero_point)
    sx, sw, sy = V.as_scale(x_scale, "x_scale"), X.check_w_scale(w_scale, w), V.as_scale(y_scale, "y_scale")
    A.scalar_shape(sx, "x_scale")
    A.scalar_shape(sy, "y_scale")
    zy = A.output_zero_point(y_zero_point, fmt)
    bq = X.bias(B, w.shape[0])
    # the profile's conv_families pick MLAS's exact depthwise kernel (multiplier 1, one weight zero point)
    family = layers.conv_family(_PROFILE, g.x.shape, g.w.shape, g.strides, g.pads[:2], g.dilations, g.group, int(xz),
                                wz)
    acc = X.integer_conv(g, xz, wz, _accumulation(family, x, w, isa), "hwc")
    return g.restore(X.requant_conv(acc, bq, sx.reshape(()), sw, sy.reshape(()), zy, fmt, _PROFILE, family))


# ----------------------------------------------------------------------------------------
# com.microsoft contrib ops


def _same_type_zero_point(zp, x, name: str, x_name: str = "x") -> np.ndarray:
    """A per-tensor zero point of ``x``'s type (contrib ops bind one type T), as an ``x.dtype`` scalar."""
    z = A.input_zero_point(zp, x, name, x_name)
    A.scalar_shape(z, name)
    return x.dtype.type(z.reshape(()))


def qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point):
    """ONNX Runtime ``com.microsoft.QLinearAdd`` (MLAS AVX2/FMA kernel), NumPy broadcasting.

    $y = \\mathrm{sat}(\\mathrm{RNE}(\\mathrm{fma}(a, r_a, \\mathrm{fma}(b, r_b, F))))$ with
    $r_a = \\mathrm{fl}(S_a / S_c)$, $r_b = \\mathrm{fl}(S_b / S_c)$ and
    $F = \\mathrm{fl}(Z_c - \\mathrm{fma}(r_a, Z_a, \\mathrm{fl}(r_b Z_b)))$, the operands' roles
    swapped when ``a`` is a scalar over ORT's innermost broadcast span
    (:func:`refquant.kernels.elementwise_float.float_add`).

    Args:
        a, b: int8 or uint8 arrays of one dtype (the output's). Scales: positive scalars.
        a_zero_point, b_zero_point, c_zero_point: scalars of that dtype (Python ints or
            ``None`` = 0 accepted: the type is known).

    Returns:
        Array of ``a.dtype`` and the broadcast shape.
    """
    a, b = A.operand(a, "a"), A.operand(b, "b")
    if a.dtype != b.dtype:
        raise QuantizationTypeError(f"a and b must share one type (QLinearAdd's T), got {a.dtype} and {b.dtype}")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    za, zb, zc = (_same_type_zero_point(z, a, n, "a") for z, n in ((a_zero_point, "a_zero_point"),
                                                                   (b_zero_point, "b_zero_point"),
                                                                   (c_zero_point, "c_zero_point")))
    sa, sb, sc = (V.as_scalar_scale(s, n, max_ndim=1) for s, n in ((a_scale, "a_scale"), (b_scale, "b_scale"),
                                                                     (c_scale, "c_scale")))
    return pointwise.add(a, sa, int(za), b, sb, int(zb), sc, int(zc), profile=_PROFILE)


def qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=0):
    """ONNX Runtime ``com.microsoft.QLinearGlobalAveragePool`` (MLAS ``qlgavgpool.cpp``).

    $\\mathrm{acc}_c = \\sum_p x_{p,c} - Z_x N$ (int32),
    $y_c = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{acc}_c) \\cdot m)) + Z_y$,
    $m = \\mathrm{fl}(S_x / \\mathrm{fl}(S_y \\cdot \\mathrm{fl}(N)))$ over the $N$
    pixels of each image (:func:`refquant.kernels.pool.global_average_pool`).

    Args:
        x: int8/uint8, (N, C, *spatial) or, with ``channels_last=1``, (N, *spatial, C).
        x_scale, y_scale: positive scalars. x_zero_point, y_zero_point: scalars of ``x``'s type.
        channels_last: 0 or 1.

    Returns:
        Array of ``x.dtype`` with every spatial dimension 1.

    Raises:
        QuantizationValueError: where MLAS throws (image of $2^{24}$ pixels or more, or
            $m \\notin [2^{-32}, 256)$), and the usual bad-input errors.
    """
    x = A.operand(x, "x")
    channels_last = V.as_int_scalar(channels_last, "channels_last")  # an ONNX INT attribute
    if channels_last not in (0, 1):
        raise QuantizationValueError(f"channels_last must be 0 or 1, got {channels_last}")
    if x.ndim < 3:
        raise ShapeError(f"x must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    zx = _same_type_zero_point(x_zero_point, x, "x_zero_point")
    zy = _same_type_zero_point(y_zero_point, x, "y_zero_point")
    sx, sy = V.as_scalar_scale(x_scale, "x_scale", max_ndim=1), V.as_scalar_scale(y_scale, "y_scale", max_ndim=1)
    return pointwise.global_average_pool(x, sx, int(zx), sy, int(zy), profile=_PROFILE, channels_last=channels_last)


def qlinear_sigmoid(x, x_scale, x_zero_point, y_scale, y_zero_point):
    """ONNX Runtime ``com.microsoft.QLinearSigmoid``: a 256-entry table, looked up by byte.

    $T[v] = \\mathrm{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\sigma(\\mathrm{fl}(S_x (v - Z_x))) / S_y))) + Z_y$
    with MLAS's rational logistic $\\sigma$ (FMA3 kernel)
    (:func:`refquant.kernels.lut.rational_logistic_lut`, :func:`refquant.kernels.lut.apply_lut`).

    Args:
        x: int8/uint8 array. Scales: positive scalars. Zero points: scalars of ``x``'s type.

    Returns:
        Array of ``x``'s dtype and shape.
    """
    x = A.operand(x, "x")
    zx = _same_type_zero_point(x_zero_point, x, "x_zero_point")
    zy = _same_type_zero_point(y_zero_point, x, "y_zero_point")
    sx, sy = V.as_scalar_scale(x_scale, "x_scale", max_ndim=1), V.as_scalar_scale(y_scale, "y_scale", max_ndim=1)
    return pointwise.logistic(x, sx, int(zx), sy, int(zy), profile=_PROFILE)
