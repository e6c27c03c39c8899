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
| FULLY_CONNECTED 16x8, int64 bias | int64 accumulator, ``float64_rhaz``, ``f64_ab_div_c`` | as reference | as optimized |
| FULLY_CONNECTED 16x8, int32 bias or none | int32 accumulator (wraps), ``float64_rhaz``, ``f64_ab_div_c`` | int32 accumulator (wraps), ``fixed_double_up_wrap`` (ruy); ``f64_ab_div_c`` per-channel, ``f32_ab_then_f64_div`` per-tensor | as optimized |
| CONV_2D 16x8, int64 bias | int64 accumulator, ``fixed_int64_reduced16``, ``f64_ab_div_c`` | as reference | as optimized |
| CONV_2D 16x8, int32 bias | int32 accumulator (wraps), ``fixed_double``, ``f64_ab_div_c`` | int32 accumulator (wraps), ``fixed_double_up_wrap`` (ruy), ``f64_ab_div_c``; grouped: the reference | as optimized |
| DEPTHWISE_CONV_2D 16x8 (int64 bias only) | int64 accumulator, ``fixed_int64_reduced16``, ``f64_ab_div_c`` | as reference | as optimized |

(requantization ``mode`` and multiplier ``derivation`` names of :mod:`refquant.kernels.requant`
and :mod:`refquant.kernels.multiplier`). The fused activation clamps with
:func:`~refquant.kernels.multiplier.activation_range` (TFLite's kernels) or, under XNNPACK,
:func:`~refquant.kernels.multiplier.activation_range_rne` (zero point added before a
ties-to-even rounding). XNNPACK takes every int8 node here; a requantization scale
$\mathrm{fl}(\mathrm{fl}(S_x S_w[c]) / S_y) \ge 256$ makes the delegate fail to prepare (LiteRT
raises): refused with :class:`~refquant.errors.UnsupportedError`.

Formats: int8 input and output, int8 weights with zero point 0 (per-tensor, or per-channel
along the output channels), int32 bias of scale $S_x S_w[c]$. Legacy uint8 models (uint8
weights with a zero point) are not expressible in these signatures:
:class:`~refquant.errors.UnsupportedError`.

**16x8 mode** (int16 ``x``): int16 input and output with zero point 0 (LiteRT's Prepare refuses
any other), int8 weights as above, and an int64 bias (what the TFLite converter writes) or an
int32 bias (a model whose op sets ``quantized_bias_type`` to INT32; DEPTHWISE_CONV_2D refuses
it). The products $x \cdot w$ need up to 22 bits each, so an int32 accumulator overflows from
$K = 512$ extreme terms; it wraps, as measured. The bias type picks the kernel (table above):
an int64 bias runs the reference kernels on every resolver; the XNNPACK delegate takes no 16x8
node, so ``"xnnpack"`` is the optimized result. Under the reference FULLY_CONNECTED a product
$|\mathrm{round}(\mathrm{acc} \cdot M)| \ge 2^{31}$ becomes INT32_MIN (x86 ``cvttsd2si``), so a
huge *positive* value gives $-32768$ (measured). Not modelled (refused): int16 weights
(LiteRT's 16x16 FULLY_CONNECTED) and uint8 weights with int16 activations (LiteRT reads them
as int8).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, get_format
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels.multiplier import ACTIVATION_FLOAT_RANGES
from ..ops import layers

__all__ = ["fully_connected", "conv2d", "depthwise_conv2d"]

# kernel= selects a profile: every arithmetic choice of that kernel set is in it
PROFILE_OF_KERNEL = {"reference": "tflite_reference", "xnnpack": "tflite_xnnpack", "optimized": "tflite_optimized"}
KERNELS = tuple(PROFILE_OF_KERNEL)
ACTIVATIONS = tuple(ACTIVATION_FLOAT_RANGES)  # None, "NONE", "RELU", "RELU6", "RELU_N1_TO_1"
PADDINGS = ("SAME", "VALID")
_INT8 = get_format("int8")
_INT16 = get_format("int16")


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


def _bias(b, n: int, wide: bool = False, dtypes=("int64", "int32"), none_ok: bool = False):
    """The bias, validated. int8: int32 (``None``: zeros). 16x8 (``wide``): one of ``dtypes``
    (``None``: absent if ``none_ok``, else zeros of the first)."""
    if wide:
        if b is None:
            return None if none_ok else np.zeros(n, dtypes[0])
        a = V.asarray(b, "b", kinds=None, what="an int64 or int32 array")
        if a.dtype == np.int32 and "int32" not in dtypes:
            raise QuantizationTypeError("b must be an int64 array for int16 activations, got dtype int32 (LiteRT's "
                                        "DEPTHWISE_CONV_2D refuses an int32 16x8 bias in Prepare)")
        if a.dtype.name not in dtypes:
            raise QuantizationTypeError(f"b must be an {' or '.join(dtypes)} array for int16 activations (TFLite "
                                        f"16x8), got dtype {a.dtype}")
        if a.shape != (n,):
            raise ShapeError(f"b must have shape ({n},), one per output channel of w, got {a.shape}")
        return a
    if b is None:
        return np.zeros(n, np.int32)  # no bias: the same arithmetic as a zero int32 bias
    a = V.asarray(b, "b", kinds=None, what="an int32 array")
    if a.dtype != np.int32:
        raise QuantizationTypeError(f"b must be an int32 array (TFLite's int8 bias tensor), got dtype {a.dtype}")
    if a.shape != (n,):
        raise ShapeError(f"b must have shape ({n},), one per output channel of w, got {a.shape}")
    return a


def _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, n: int, wide: bool = False, **bias_kw):
    """The tensor parameters of a weighted int8 (or 16x8, ``wide``) op, validated:
    ``(xs, xz, ws, per_channel, bias, ys, yz)``."""
    xs, ys = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    ws, per_channel = _weight_scales(w_scale, n)
    fmt = _INT16 if wide else _INT8
    xz = V.as_scalar_zero_point(x_zero_point, fmt, "x_zero_point")
    yz = V.as_scalar_zero_point(y_zero_point, fmt, "y_zero_point")
    for name, z in (("x_zero_point", xz), ("y_zero_point", yz)):
        if wide and z != 0:
            raise QuantizationValueError(f"{name} must be 0 for int16 activations (TFLite 16x8; LiteRT's Prepare "
                                         f"refuses any other), got {z}")
    return xs, xz, ws, per_channel, _bias(b, n, wide, **bias_kw), ys, yz


def _activations(x, name="x", ndim=None) -> np.ndarray:
    """int8 activations, or int16 (16x8 mode); uint8 is refused."""
    a = V.asarray(x, name, kinds=None, what="an int8 or int16 array")
    if a.dtype == np.uint8:
        raise UnsupportedError(
            f"{name} has dtype uint8: only int8 (or int16, 16x8) activations with int8 symmetric weights are "
            f"modelled (legacy uint8 weights carry a zero point these signatures lack)")
    return V.as_typed_array(a, name, ("int8", "int16"), ndim=ndim, min_ndim=1)


def _weights(w, x, ndim: int) -> np.ndarray:
    """int8 weights; with int16 activations, int16 and uint8 weights are refused as not modelled."""
    if x.dtype == np.int16:
        dt = getattr(w, "dtype", None)
        if dt in (np.int16, np.uint8):
            raise UnsupportedError(
                f"w has dtype {dt} with int16 activations: only 16x8 (int8 weights) is modelled; "
                + ("LiteRT's 16x16 FULLY_CONNECTED (int16 weights, an int64 accumulator of int16 x int16) is not"
                   if dt == np.int16 else "LiteRT reads uint8 weights of an int16 layer as int8, which is not modelled"))
    return V.as_typed_array(w, "w", ("int8",), ndim=ndim)


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

    $M_c = S_x S_w[c] / S_y$; the accumulator and the rounding per ``kernel`` (and, in 16x8
    mode, per bias type) are in the module table (``reference``: float64 with round half away
    from zero). Mirrors ``tflite/kernels/fully_connected.cc`` (``keep_num_dims = false``).

    Args:
        x: int8 array ``(..., K)``, or int16 (16x8 mode, module docstring); the leading
            dimensions are flattened (TFLite's batch).
        x_scale, x_zero_point: Input parameters (float32 scalar; int in [-128, 127], 0 for int16).
        w: int8 weights ``(N, K)`` (zero point 0).
        w_scale: float32 scalar, or ``(N,)`` per output channel.
        b: ``(N,)`` bias of scale $S_x S_w[c]$, zero point 0: int32 for int8 ``x``; int64 (the
            converter's) or int32 (an op with ``quantized_bias_type`` INT32) for int16 ``x``.
            ``None``: no bias tensor (16x8: ``quantized_bias_type`` unset, as the converter writes
            it, so the optimized kernel runs its int32 ruy path).
        y_scale, y_zero_point: Output parameters (zero point 0 for int16).
        activation: ``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        ``(prod(x.shape[:-1]), N)`` of ``x``'s dtype (int8, or int16).

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), including a
            nonzero int16 zero point and a bias of the wrong dtype.
        UnsupportedError: uint8 activations; int16 or uint8 weights with int16 activations; under
            XNNPACK (int8) a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _activations(x)
    w = _weights(w, x, 2)
    n, k = w.shape
    if x.shape[-1] != k:
        raise ShapeError(f"x must have shape (..., K) with K = w.shape[1] = {k}, got {x.shape}")
    wide = x.dtype == np.int16
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, n, wide,
                                                **(dict(none_ok=True) if wide else {}))
    return layers.linear(x.reshape(-1, k), xs, xz, w, ws, 0, bias, ys, yz, profile=profile, activation=activation,
                         out_dtype=x.dtype)


def conv2d(x, x_scale, x_zero_point, w, w_scale, b, y_scale, y_zero_point, *, stride=1, padding="VALID",
           dilation=1, activation=None, kernel="reference") -> np.ndarray:
    """TFLite CONV_2D int8, NHWC input, OHWI weights; grouped when ``w.shape[3] < C``.

    $\\mathrm{acc}[n,h,w,o] = \\sum_{i,j,c} (x[n, h s_H + i d_H - p_t, w s_W + j d_W - p_l, g C_g + c] - Z_x)
    \\,W[o,i,j,c] + b_o$
    (out-of-image taps skipped), then requantized and clamped as in the module table.
    ``SAME``: output $\\lceil n/s \\rceil$, the odd padding pixel at the end; ``VALID``:
    $\\lfloor (n - d(k-1) - 1)/s \\rfloor + 1$. Mirrors ``tflite/kernels/conv.cc``.

    Args:
        x: int8 ``(N, H, W, C)``, or int16 (16x8 mode, module docstring).
        x_scale, x_zero_point, y_scale, y_zero_point: As in :func:`fully_connected`.
        w: int8 ``(O, kH, kW, C_g)`` with $C_g$ dividing $C$ (groups $G = C / C_g$, $G$ dividing $O$).
        w_scale: float32 scalar, or ``(O,)``.
        b: ``(O,)``: int32 for int8 ``x``; int64 or int32 for int16 ``x`` (as in
            :func:`fully_connected`); or ``None``: a zero bias of the first type (a CONV_2D node
            needs a bias tensor; ``None`` is the same arithmetic as zeros).
        stride, dilation: int or ``(h, w)`` pair, each >= 1.
        padding: ``"SAME"`` or ``"VALID"``.
        activation, kernel: As in :func:`fully_connected`.

    Returns:
        ``(N, OH, OW, O)`` of ``x``'s dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), including
            channels not divisible by the weights' channels and a kernel larger than the input (VALID).
        UnsupportedError: uint8 activations; int16/uint8 weights with int16 activations; under
            XNNPACK (int8) a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _activations(x, ndim=4)
    w = _weights(w, x, 4)
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
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, o,
                                                x.dtype == np.int16)
    # a CONV_2D node is never depthwise: grouped convolutions run the profile's grouped kernel
    return layers.conv2d(x, xs, xz, w, ws, 0, bias, ys, yz, profile=profile, strides=st, dilations=dl, pads=pads,
                         groups=groups, layout="NHWC", w_layout="OHWI",
                         family="conv" if groups == 1 else "grouped_conv", activation=activation, out_dtype=x.dtype)


def depthwise_conv2d(x, x_scale, x_zero_point, w, w_scale, b, y_scale, y_zero_point, *, stride=1, padding="VALID",
                     dilation=1, depth_multiplier=1, activation=None, kernel="reference") -> np.ndarray:
    """TFLite DEPTHWISE_CONV_2D int8, NHWC input, 1HWO weights, $O = C \\cdot$ ``depth_multiplier``.

    Output channel $o$ reads input channel $\\lfloor o / m \\rfloor$:
    $\\mathrm{acc}[n,h,w,o] = \\sum_{i,j} (x[n, \\cdot, \\cdot, \\lfloor o/m \\rfloor] - Z_x)\\,W[0,i,j,o] + b_o$,
    geometry as :func:`conv2d`. Requantization per the module table (the optimized kernel
    rounds the last ``O % 8`` channels differently). Mirrors ``tflite/kernels/depthwise_conv.cc``.

    Args:
        x: int8 ``(N, H, W, C)``, or int16 (16x8 mode, module docstring).
        w: int8 ``(1, kH, kW, O)``.
        w_scale: float32 scalar, or ``(O,)`` (TFLite's quantized dimension 3).
        b: ``(O,)``: int32 for int8 ``x``, int64 for int16 ``x`` (LiteRT refuses an int32 16x8
            bias); or ``None`` (a zero bias).
        depth_multiplier: int >= 1 with ``O == C * depth_multiplier``.
        Others: as in :func:`conv2d`.

    Returns:
        ``(N, OH, OW, O)`` of ``x``'s dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named).
        UnsupportedError: uint8 activations; int16/uint8 weights with int16 activations; under
            XNNPACK (int8) a requantization scale >= 256.
    """
    profile, activation = kernel_profile(kernel), check_activation(activation)
    x = _activations(x, ndim=4)
    w = _weights(w, x, 4)
    if w.shape[0] != 1 or min(w.shape) < 1:
        raise ShapeError(f"w must have shape (1, kH, kW, O), got {w.shape}")
    _, kh, kw, o = w.shape
    m = V.as_positive_int(depth_multiplier, "depth_multiplier")
    if o != x.shape[3] * m:
        raise ShapeError(f"w must have O = C * depth_multiplier = {x.shape[3]} * {m} = {x.shape[3] * m} "
                         f"output channels, got w.shape[3] = {o}")
    st, dl, pads = _geometry(x, kh, kw, stride, padding, dilation)
    xs, xz, ws, _, bias, ys, yz = _layer_params(x_scale, x_zero_point, w_scale, b, y_scale, y_zero_point, o,
                                                x.dtype == np.int16, dtypes=("int64",))
    return layers.conv2d(x, xs, xz, w, ws, 0, bias, ys, yz, profile=profile, strides=st, dilations=dl, pads=pads,
                         layout="NHWC", w_layout="1HWO", family="depthwise", activation=activation, out_dtype=x.dtype)
