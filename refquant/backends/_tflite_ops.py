r"""TFLite face, op level (internal): FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D.

Re-exported by :mod:`refquant.backends.tflite`; read that module for the conventions. Each
function validates everything first (``refquant.errors``), then binds the kernels:
accumulate with :func:`refquant.kernels.gemm.gemm` / :func:`refquant.kernels.conv.conv2d`,
add the int32 bias (:func:`refquant.kernels.bias.add_bias`), requantize
(:func:`refquant.kernels.requant.requantize` with :func:`refquant.kernels.multiplier.requant_params`)
and clamp to the fused activation's range. Per kernel (measured, LiteRT 2.3.0 x86-64 AVX2,
``tests/test_conformance_tflite_ops.py``):

| op | ``"reference"`` | ``"optimized"`` (x86 AVX2) | ``"xnnpack"`` |
|---|---|---|---|
| FULLY_CONNECTED | ``float64_rhaz``, ``f64_ab_div_c`` | ``fixed_double_up_wrap``; ``f64_ab_div_c`` per-channel, ``f32_ab_then_f64_div`` per-tensor | ``float32_rne``, ``f32_ab_div_c`` |
| CONV_2D | ``fixed_double``, ``f64_ab_div_c`` | ``fixed_double_up_wrap``, ``f64_ab_div_c``; grouped: the reference | ``float32_rne``, ``f32_ab_div_c`` |
| DEPTHWISE_CONV_2D | ``fixed_double``, ``f64_ab_div_c`` | ``fixed_double_up`` for output channels ``< O - O % 8``, ``fixed_double`` for the last ``O % 8`` | ``float32_rne``, ``f32_ab_div_c`` |

(requantization ``mode`` and multiplier ``derivation`` names of :mod:`refquant.kernels.requant`
and :mod:`refquant.kernels.multiplier`). The fused activation clamps with
:func:`~refquant.kernels.multiplier.activation_range` (TFLite's kernels) or, under XNNPACK,
:func:`~refquant.kernels.multiplier.activation_range_rne` (zero point added before a
ties-to-even rounding). XNNPACK takes every int8 node here; a requantization scale
$\mathrm{fl}(\mathrm{fl}(S_x S_w[c]) / S_y) \ge 256$ makes the delegate fail to prepare (LiteRT
raises): refused with :class:`~refquant.errors.UnsupportedError`.

Formats: int8 input and output, int8 weights with zero point 0 (per-tensor, or per-channel
along the output channels), int32 bias of scale $S_x S_w[c]$. Legacy uint8 models (uint8
weights with a zero point) and 16x8 models are not expressible in these signatures:
:class:`~refquant.errors.UnsupportedError`.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, get_format
from ..errors import QuantizationTypeError, ShapeError, UnsupportedError
from ..kernels.multiplier import ACTIVATION_FLOAT_RANGES
from ..ops import layers

__all__ = ["fully_connected", "conv2d", "depthwise_conv2d"]

# kernel= selects a profile: every arithmetic choice of that kernel set is in it
PROFILE_OF_KERNEL = {"reference": "tflite_reference", "xnnpack": "tflite_xnnpack", "optimized": "tflite_optimized"}
KERNELS = tuple(PROFILE_OF_KERNEL)
ACTIVATIONS = tuple(ACTIVATION_FLOAT_RANGES)  # None, "NONE", "RELU", "RELU6", "RELU_N1_TO_1"
PADDINGS = ("SAME", "VALID")
_INT8 = get_format("int8")


# --------------------------------------------------------------------------- validation (shared)


def check_kernel(kernel) -> str:
    return V.as_choice(kernel, "kernel", KERNELS)


def kernel_profile(kernel) -> str:
    """Validate ``kernel``; return the name of the profile that holds its arithmetic."""
    return PROFILE_OF_KERNEL[check_kernel(kernel)]


def check_activation(activation):
    return V.as_choice(activation, "activation", ACTIVATIONS)


def check_padding(padding) -> str:
    return V.as_choice(padding, "padding", PADDINGS)


def _weight_scales(w_scale, n: int) -> tuple[np.ndarray, bool]:
    """(float32 scales, per_channel): a scalar or one element is per-tensor, else ``(n,)``."""
    s = V.as_scale(w_scale, "w_scale")
    if s.ndim > 1:
        raise ShapeError(f"w_scale must be a scalar or 1-D, got shape {s.shape}")
    if s.size == 1:
        return s.reshape(()), False
    if s.size != n:
        raise ShapeError(f"w_scale must be a scalar or have one scale per output channel ({n}), got {s.size}")
    return s, True


def _bias(b, n: int) -> np.ndarray:
    if b is None:
        return np.zeros(n, np.int32)  # no bias: the same arithmetic as a zero int32 bias
    a = V.asarray(b, "b", kinds=None, what="an int32 array")
    if a.dtype != np.int32:
        raise QuantizationTypeError(f"b must be an int32 array (TFLite's int8 bias tensor), got dtype {a.dtype}")
    if a.shape != (n,):
        raise ShapeError(f"b must have shape ({n},), one per output channel of w, got {a.shape}")
    return a


def _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, n: int):
    """The tensor parameters of a weighted int8 op, validated: ``(xs, xz, ws, per_channel, bias, ys, yz)``."""
    xs, ys = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    ws, per_channel = _weight_scales(w_scale, n)
    xz = V.as_scalar_zero_point(x_zero_point, _INT8, "x_zero_point")
    yz = V.as_scalar_zero_point(y_zero_point, _INT8, "y_zero_point")
    return xs, xz, ws, per_channel, _bias(b, n), ys, yz


def _int8_activations(x, name="x", ndim=None) -> np.ndarray:
    a = V.asarray(x, name, kinds=None, what="an int8 array")
    if a.dtype in (np.uint8, np.int16):
        raise UnsupportedError(
            f"{name} has dtype {a.dtype}: only int8 activations with int8 symmetric weights are modelled "
            f"(legacy uint8 weights carry a zero point these signatures lack; 16x8 is not modelled)")
    return V.as_typed_array(a, name, ("int8",), ndim=ndim, min_ndim=1)


def _geometry(x, kh, kw, stride, padding, dilation):
    st, dl = V.as_int_pair(stride, "stride", maximum=INT32_MAX), V.as_int_pair(dilation, "dilation", maximum=INT32_MAX)
    pad = check_padding(padding)
    for axis, k, n, s, d in (("height", kh, x.shape[1], st[0], dl[0]), ("width", kw, x.shape[2], st[1], dl[1])):
        if pad == "VALID" and d * (k - 1) + 1 > n:
            raise ShapeError(f"the dilated kernel {axis} {d * (k - 1) + 1} is larger than the input {axis} {n} "
                             f"with VALID padding (empty output)")
    return st, dl, ("SAME_UPPER" if pad == "SAME" else "VALID")


# --------------------------------------------------------------------------- ops


def fully_connected(x, x_scale, x_zero_point, w, w_scale, b, y_scale, y_zero_point, *, activation=None,
                    kernel="reference") -> np.ndarray:
    """TFLite FULLY_CONNECTED int8:
    $y_c = \\mathrm{clamp}(\\mathrm{round}(M_c\\,(\\sum_k (x_k - Z_x) w_{ck} + b_c)) + Z_y)$.

    $M_c = S_x S_w[c] / S_y$; the rounding per ``kernel`` is in the module table
    (``reference``: float64 with round half away from zero). Mirrors
    ``tflite/kernels/fully_connected.cc`` (``keep_num_dims = false``).

    Args:
        x: int8 array ``(..., K)``; the leading dimensions are flattened (TFLite's batch).
        x_scale, x_zero_point: Input parameters (float32 scalar; int in [-128, 127]).
        w: int8 weights ``(N, K)`` (zero point 0).
        w_scale: float32 scalar, or ``(N,)`` per output channel.
        b: int32 bias ``(N,)`` (scale $S_x S_w[c]$, zero point 0), or ``None`` (no bias).
        y_scale, y_zero_point: Output parameters.
        activation: ``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        int8 array ``(prod(x.shape[:-1]), N)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named).
        UnsupportedError: uint8/int16 activations; under XNNPACK a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _int8_activations(x)
    w = V.as_typed_array(w, "w", ("int8",), ndim=2)
    n, k = w.shape
    if x.shape[-1] != k:
        raise ShapeError(f"x must have shape (..., K) with K = w.shape[1] = {k}, got {x.shape}")
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, n)
    return layers.linear(x.reshape(-1, k), xs, xz, w, ws, 0, bias, ys, yz, profile=profile, activation=activation)


def conv2d(x, x_scale, x_zero_point, w, w_scale, b, y_scale, y_zero_point, *, stride=1, padding="VALID",
           dilation=1, activation=None, kernel="reference") -> np.ndarray:
    """TFLite CONV_2D int8, NHWC input, OHWI weights; grouped when ``w.shape[3] < C``.

    $\\mathrm{acc}[n,h,w,o] = \\sum_{i,j,c} (x[n, h s_H + i d_H - p_t, w s_W + j d_W - p_l, g C_g + c] - Z_x)
    \\,W[o,i,j,c] + b_o$
    (out-of-image taps skipped), then requantized and clamped as in the module table.
    ``SAME``: output $\\lceil n/s \\rceil$, the odd padding pixel at the end; ``VALID``:
    $\\lfloor (n - d(k-1) - 1)/s \\rfloor + 1$. Mirrors ``tflite/kernels/conv.cc``.

    Args:
        x: int8 ``(N, H, W, C)``.
        x_scale, x_zero_point, y_scale, y_zero_point: As in :func:`fully_connected`.
        w: int8 ``(O, kH, kW, C_g)`` with $C_g$ dividing $C$ (groups $G = C / C_g$, $G$ dividing $O$).
        w_scale: float32 scalar, or ``(O,)``.
        b: int32 ``(O,)``, or ``None``: a zero bias (a CONV_2D int8 node needs a bias tensor;
            ``None`` is the same arithmetic as zeros).
        stride, dilation: int or ``(h, w)`` pair, each >= 1.
        padding: ``"SAME"`` or ``"VALID"``.
        activation, kernel: As in :func:`fully_connected`.

    Returns:
        int8 ``(N, OH, OW, O)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), including
            channels not divisible by the weights' channels and a kernel larger than the input (VALID).
        UnsupportedError: uint8/int16 activations; under XNNPACK a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _int8_activations(x, ndim=4)
    w = V.as_typed_array(w, "w", ("int8",), ndim=4)
    o, kh, kw, cg = w.shape
    c = x.shape[3]
    if min(o, kh, kw, cg) < 1:
        raise ShapeError(f"w must have non-empty dimensions (O, kH, kW, C_g), got {w.shape}")
    if c % cg:
        raise ShapeError(f"input channels x.shape[3] = {c} must be a multiple of w.shape[3] = {cg} (groups)")
    groups = c // cg
    if o % groups:
        raise ShapeError(f"output channels w.shape[0] = {o} must be divisible by groups = {groups}")
    st, dl, pads = _geometry(x, kh, kw, stride, padding, dilation)
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, o)
    # a CONV_2D node is never depthwise: grouped convolutions run the profile's grouped kernel
    return layers.conv2d(x, xs, xz, w, ws, 0, bias, ys, yz, profile=profile, strides=st, dilations=dl, pads=pads,
                         groups=groups, layout="NHWC", w_layout="OHWI",
                         family="conv" if groups == 1 else "grouped_conv", activation=activation)


def depthwise_conv2d(x, x_scale, x_zero_point, w, w_scale, b, y_scale, y_zero_point, *, stride=1, padding="VALID",
                     dilation=1, depth_multiplier=1, activation=None, kernel="reference") -> np.ndarray:
    """TFLite DEPTHWISE_CONV_2D int8, NHWC input, 1HWO weights, $O = C \\cdot$ ``depth_multiplier``.

    Output channel $o$ reads input channel $\\lfloor o / m \\rfloor$:
    $\\mathrm{acc}[n,h,w,o] = \\sum_{i,j} (x[n, \\cdot, \\cdot, \\lfloor o/m \\rfloor] - Z_x)\\,W[0,i,j,o] + b_o$,
    geometry as :func:`conv2d`. Requantization per the module table (the optimized kernel
    rounds the last ``O % 8`` channels differently). Mirrors ``tflite/kernels/depthwise_conv.cc``.

    Args:
        x: int8 ``(N, H, W, C)``.
        w: int8 ``(1, kH, kW, O)``.
        w_scale: float32 scalar, or ``(O,)`` (TFLite's quantized dimension 3).
        b: int32 ``(O,)``, or ``None`` (a zero bias).
        depth_multiplier: int >= 1 with ``O == C * depth_multiplier``.
        Others: as in :func:`conv2d`.

    Returns:
        int8 ``(N, OH, OW, O)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named).
        UnsupportedError: uint8/int16 activations; under XNNPACK a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _int8_activations(x, ndim=4)
    w = V.as_typed_array(w, "w", ("int8",), ndim=4)
    if w.shape[0] != 1 or min(w.shape) < 1:
        raise ShapeError(f"w must have shape (1, kH, kW, O), got {w.shape}")
    _, kh, kw, o = w.shape
    m = V.as_positive_int(depth_multiplier, "depth_multiplier")
    if o != x.shape[3] * m:
        raise ShapeError(f"w must have O = C * depth_multiplier = {x.shape[3]} * {m} = {x.shape[3] * m} "
                         f"output channels, got w.shape[3] = {o}")
    st, dl, pads = _geometry(x, kh, kw, stride, padding, dilation)
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, o)
    return layers.conv2d(x, xs, xz, w, ws, 0, bias, ys, yz, profile=profile, strides=st, dilations=dl, pads=pads,
                         layout="NHWC", w_layout="1HWO", family="depthwise", activation=activation)
