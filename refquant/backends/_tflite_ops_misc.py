r"""TFLite face, op level (internal): the weight-free ops ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D.
MEAN and QUANTIZE from an integer tensor (requantization) are in
:mod:`refquant.backends._tflite_ops_rescale` (re-exported here), the activations SOFTMAX, LOGISTIC
and TANH in :mod:`refquant.backends._tflite_ops_act`.

Re-exported by :mod:`refquant.backends.tflite`. Validation first, then the kernels of
:mod:`refquant.kernels` (measured against LiteRT 2.3.0 x86-64 AVX2,
``tests/test_conformance_tflite_ops.py``, ``tests/test_conformance_tflite_int16_pointwise.py``):

| op | ``"reference"`` | ``"optimized"`` | ``"xnnpack"`` |
|---|---|---|---|
| ADD int8 | :func:`~refquant.kernels.elementwise.fixed_point_add` (left shift 20, three double-rounding MBQM) | :func:`~refquant.kernels.elementwise_add8.fixed_point_add8_simd` (SIMD blocks of 16, or 8 against a broadcast scalar, narrowing to int16 without saturation; placed by TFLite's broadcast dispatch) | :func:`~refquant.kernels.elementwise.rescale_add`; when XNNPACK declines (a scale ratio $S_{a,b}/S_y$ outside $[2^{-10}, 2^8)$) the optimized kernel's result |
| ADD uint8 | ``fixed_point_add`` | not modelled: :class:`~refquant.errors.UnsupportedError` | ``rescale_add``; when XNNPACK declines, the optimized kernel runs: UnsupportedError |
| ADD int16 | ``fixed_point_add`` (left shift 15; zero points 0) | :func:`~refquant.kernels.elementwise_add16.fixed_point_add16_blocks` (16-element blocks, each input rounded once) when the shapes are equal once padded with leading 1s; a broadcast: ``fixed_point_add`` | the same as ``"optimized"`` (XNNPACK does not take int16) |
| MUL int8/uint8 | :func:`~refquant.kernels.elementwise.fixed_point_mul` (double-rounding MBQM) | :func:`~refquant.kernels.elementwise_narrow.fixed_point_mul_blocks` (int16 narrowing in blocks of 16 / 8); broadcast operands whose products leave int16: UnsupportedError | the exact product requantized in float32 (:mod:`~refquant.kernels.requant`, ``float32_rne``); when XNNPACK declines ($\mathrm{fl}(\mathrm{fl}(S_a S_b)/S_y)$ outside $[2^{-16}, 256)$, rank > 6) the optimized kernel |
| MUL int16 | ``fixed_point_mul`` (zero points 0) | the same | the same (XNNPACK does not take int16) |
| AVERAGE_POOL_2D int8/uint8/int16 | :func:`~refquant.kernels.pool.average_pool2d` | the same | the same (XNNPACK never takes it) |
| MAX_POOL_2D int8/uint8/int16 | :func:`~refquant.kernels.pool.max_pool2d` | the same | the same, with XNNPACK's activation bounds where it takes the node (8-bit only) |

The optimized int8 ADD (NEON intrinsics through NEON_2_SSE on x86) folds shifts and narrows to
int16 without saturation in blocks of 16 elements (element-wise loop) or 8 (scalar-broadcast
loop), each loop call starting its own blocks where ``BinaryBroadcastFiveFold`` splits a broadcast
(measured, broadcast shapes included); the optimized uint8 ADD (another kernel) is refused rather
than guessed. XNNPACK takes MAX_POOL_2D (int8/uint8) unless a stride exceeds
the filter or a 1x1 filter has a stride > 1; its fused activation then clamps with
:func:`~refquant.kernels.multiplier.activation_range_rne`.

The optimized kernel's 8-bit MUL and int16 ADD run NEON code through NEON_2_SSE on x86
(measured on an AVX-512 machine; an ARM build runs the same NEON code natively). int16 (16x8)
ops need zero points 0 where LiteRT checks them: ADD and MUL here (pooling applies any zero
point, as LiteRT does).

Implicit output parameters, as the interpreter requires them: pooling outputs share the
input's scale and zero point. int16 ADD needs every zero point 0 (Prepare error otherwise) and is
modelled with ``pot_scale_int16 = false`` (what the converter writes; LiteRT takes a
shift-only path when that flag is true and all three scales are powers of two).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels import elementwise as _elementwise
from ..kernels import pool as _pool
from ..ops import pointwise
from ..dtypes import get_format
from ._tflite_ops import check_activation, check_kernel, check_padding, kernel_profile
from ._tflite_ops_rescale import int16_zero_points, mean, requantize

__all__ = ["add", "mul", "mean", "requantize", "average_pool2d", "max_pool2d"]


def _scalar_zero_point(zero_point, dtype, name: str) -> int:
    return V.as_scalar_zero_point(zero_point, get_format(dtype), name)


# --------------------------------------------------------------------------- ADD


def add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, activation=None,
        kernel="reference") -> np.ndarray:
    """TFLite ADD: $y = \\mathrm{clamp}(\\mathrm{round}((S_a(a - Z_a) + S_b(b - Z_b)) / S_y) + Z_y)$,
    evaluated as in the module table; ``a`` and ``b`` broadcast as NumPy. Mirrors ``tflite/kernels/add.cc``.

    Args:
        a, b: Arrays of one dtype: int8, uint8 or int16.
        a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point: Per-tensor
            parameters (float32 scales; zero points in the dtype's range, 0 for int16).
        activation: ``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of the broadcast shape and the inputs' dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), including
            scales whose ratio the reference Prepare refuses ($S_y < 2\\max(S_a, S_b)/2^{20}$).
        UnsupportedError: uint8 ADD on the optimized kernel, or under XNNPACK where the delegate
            declines and the optimized kernel runs (see the module docstring).
    """
    kernel, activation = check_kernel(kernel), check_activation(activation)
    a = V.as_typed_array(a, "a", ("int8", "uint8", "int16"))
    b = V.as_typed_array(b, "b", ("int8", "uint8", "int16"))
    if a.dtype != b.dtype:
        raise QuantizationTypeError(f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    sa, sb, sy = (V.as_scalar_scale(s, n) for s, n in ((a_scale, "a_scale"), (b_scale, "b_scale"),
                                                       (y_scale, "y_scale")))
    za, zb, zy = (_scalar_zero_point(z, a.dtype, n) for z, n in
                  ((a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point"), (y_zero_point, "y_zero_point")))
    wide = a.dtype == np.int16
    if wide and (za, zb, zy) != (0, 0, 0):
        name, z = next((n, z) for n, z in (("a_zero_point", za), ("b_zero_point", zb), ("y_zero_point", zy)) if z)
        raise QuantizationValueError(f"{name} must be 0 for int16 ADD (TFLite Prepare error), got {z}")
    try:
        return pointwise.add(a, sa, za, b, sb, zb, sy, zy, profile=kernel_profile(kernel), activation=activation)
    except UnsupportedError as err:
        raise UnsupportedError(f"kernel={kernel!r}: {err}") from None


# --------------------------------------------------------------------------- pooling


def _pool_args(x, x_scale, x_zero_point, filter_size, stride, padding, activation, kernel):
    kernel, activation = check_kernel(kernel), check_activation(activation)
    x = V.as_typed_array(x, "x", ("int8", "uint8", "int16"), ndim=4)
    fh, fw = V.as_int_pair(filter_size, "filter_size")
    sh, sw = (fh, fw) if stride is None else V.as_int_pair(stride, "stride")
    padding = check_padding(padding)
    _pool.pool_geometry(x.shape[1:3], (fh, fw), (sh, sw), padding)  # ShapeError for an empty output
    xs = V.as_scalar_scale(x_scale, "x_scale")
    xz = _scalar_zero_point(x_zero_point, x.dtype, "x_zero_point")
    return x, (fh, fw), (sh, sw), padding, activation, kernel, xs, xz, np.iinfo(x.dtype)


def average_pool2d(x, x_scale, x_zero_point, *, filter_size, stride=None, padding="VALID", activation=None,
                   kernel="reference") -> np.ndarray:
    """TFLite AVERAGE_POOL_2D on NHWC codes: the rounded mean of the valid taps,
    $\\mathrm{RHAZ}(\\sum x / n)$ (C integer division with a $\\pm n/2$ nudge), then the
    activation clamp. Every kernel computes the same (XNNPACK never takes this op).

    Args:
        x: int8, uint8 or int16 ``(N, H, W, C)``.
        x_scale, x_zero_point: The input's (and the output's) parameters.
        filter_size: int or ``(h, w)``.
        stride: int, ``(h, w)`` or ``None`` (the filter size).
        padding: ``"SAME"`` (padding taps are not counted) or ``"VALID"``.
        activation, kernel: As in :func:`add`.

    Returns:
        Array of ``x``'s dtype, ``(N, OH, OW, C)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), including
            a filter larger than the input with VALID padding (empty output).
    """
    x, f, s, padding, activation, kernel, xs, xz, info = _pool_args(x, x_scale, x_zero_point, filter_size, stride,
                                                                     padding, activation, kernel)
    return pointwise.average_pool2d(x, xs, xz, f, profile=kernel_profile(kernel), stride=s, padding=padding,
                                    activation=activation)


def max_pool2d(x, x_scale, x_zero_point, *, filter_size, stride=None, padding="VALID", activation=None,
               kernel="reference") -> np.ndarray:
    """TFLite MAX_POOL_2D on NHWC codes: $y = \\mathrm{clamp}(\\max_{(i,j) \\in W} x_{n,i,j,c},\\ a_{min},\\ a_{max})$.

    The maximum of the valid taps $W$ (padding taps never count), exact in the input's dtype,
    then the fused-activation clamp: TFLite's bounds
    (:func:`~refquant.kernels.multiplier.activation_range`), or XNNPACK's
    (:func:`~refquant.kernels.multiplier.activation_range_rne`) where ``kernel="xnnpack"``
    and the delegate takes the node (int8/uint8, stride <= filter, not a 1x1 filter with
    stride > 1). Mirrors ``tflite/kernels/pooling.cc`` (``MaxEval``).

    Args:
        x: int8, uint8 or int16 ``(N, H, W, C)``.
        x_scale, x_zero_point, filter_size, stride, padding, activation, kernel: As in
            :func:`average_pool2d`.

    Returns:
        Array of ``x``'s dtype, ``(N, OH, OW, C)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: As :func:`average_pool2d`.
    """
    x, f, s, padding, activation, kernel, xs, xz, info = _pool_args(x, x_scale, x_zero_point, filter_size, stride,
                                                                     padding, activation, kernel)
    return pointwise.max_pool2d(x, xs, xz, f, profile=kernel_profile(kernel), stride=s, padding=padding,
                                activation=activation)


# --------------------------------------------------------------------------- MUL

_MAX_BROADCAST_RANK = 6  # reference_integer_ops::BroadcastMul6DSlow


def mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, activation=None,
        kernel="reference") -> np.ndarray:
    """TFLite MUL: $y = \\mathrm{clamp}(\\mathrm{MBQM}((a - Z_a)(b - Z_b), q, e) + Z_y,\\ a_{min}, a_{max})$,
    with $(q, e) = \\mathrm{QuantizeMultiplier}(\\mathrm{fl}(\\mathrm{fl}(S_a S_b) / S_y))$ (float32 product
    and quotient, widened to double), evaluated as in the module table; ``a`` and ``b`` broadcast as
    NumPy. Mirrors ``tflite/kernels/mul.cc``.

    Args:
        a, b: Arrays of one dtype: int8, uint8 or int16 (16x8 mode).
        a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point: Per-tensor
            parameters (float32 scales; zero points in the dtype's range, 0 for int16).
        activation: ``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of the broadcast shape and the inputs' dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), mixed
            dtypes, a nonzero int16 zero point, shapes that do not broadcast.
        UnsupportedError: a broadcast above rank 6 (LiteRT's broadcast loop), or a broadcast
            optimized 8-bit MUL whose products leave int16 (see the module docstring).
    """
    kernel, activation = check_kernel(kernel), check_activation(activation)
    a = V.as_typed_array(a, "a", ("int8", "uint8", "int16"))
    b = V.as_typed_array(b, "b", ("int8", "uint8", "int16"))
    if a.dtype != b.dtype:
        raise QuantizationTypeError(f"a and b must have the same dtype (TFLite MUL), got {a.dtype} and {b.dtype}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    if a.shape != b.shape and a.size != b.size and len(shape) > _MAX_BROADCAST_RANK:
        raise UnsupportedError(f"TFLite's broadcast MUL takes rank <= {_MAX_BROADCAST_RANK}, got shapes {a.shape} "
                               f"and {b.shape}")
    sa, sb, sy = (V.as_scalar_scale(s, n) for s, n in ((a_scale, "a_scale"), (b_scale, "b_scale"),
                                                       (y_scale, "y_scale")))
    za, zb, zy = (_scalar_zero_point(z, a.dtype, n) for z, n in
                  ((a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point"), (y_zero_point, "y_zero_point")))
    if a.dtype == np.int16:
        int16_zero_points("MUL", (("a_zero_point", za), ("b_zero_point", zb), ("y_zero_point", zy)))
    try:  # Prepare's QuantizeMultiplier, on every kernel set; a left shift past 31 is undefined in C
        _, shift = _elementwise.fixed_point_mul_params(sa, sb, sy)
        if shift > 31:
            raise QuantizationValueError(f"its shift {shift} exceeds 31")
    except QuantizationValueError as err:
        raise QuantizationValueError(f"a_scale * b_scale / y_scale gives no TFLite MUL multiplier (a_scale="
                                     f"{float(sa)!r}, b_scale={float(sb)!r}, y_scale={float(sy)!r}): {err}") from None
    try:
        return pointwise.mul(a, sa, za, b, sb, zb, sy, zy, profile=kernel_profile(kernel), activation=activation)
    except UnsupportedError as err:
        raise UnsupportedError(f"kernel={kernel!r}: {err}") from None
