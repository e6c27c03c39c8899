r"""TFLite face, op level (internal): the weight-free ops ADD, AVERAGE_POOL_2D, MAX_POOL_2D,
SOFTMAX, LOGISTIC.

Re-exported by :mod:`refquant.backends.tflite`. Validation first, then the kernels of
:mod:`refquant.kernels` (measured against LiteRT 2.3.0 x86-64 AVX2,
``tests/test_conformance_tflite_ops.py``):

| op | ``"reference"`` | ``"optimized"`` | ``"xnnpack"`` |
|---|---|---|---|
| ADD int8/uint8 | :func:`~refquant.kernels.elementwise.fixed_point_add` (left shift 20, three double-rounding MBQM) | not modelled: :class:`~refquant.errors.UnsupportedError` | :func:`~refquant.kernels.elementwise.rescale_add`; when XNNPACK declines (a scale ratio $S_{a,b}/S_y$ outside $[2^{-10}, 2^8)$) the optimized kernel runs: UnsupportedError |
| ADD int16 | ``fixed_point_add`` (left shift 15; zero points 0) | the same | the same (XNNPACK does not take int16) |
| AVERAGE_POOL_2D | :func:`~refquant.kernels.pool.average_pool2d` | the same | the same (XNNPACK never takes it) |
| MAX_POOL_2D | :func:`~refquant.kernels.pool.max_pool2d` | the same | the same, with XNNPACK's activation bounds where it takes the node |
| SOFTMAX | :func:`~refquant.kernels.softmax.softmax_fixed_point` (gemmlowp) | :func:`~refquant.kernels.softmax.softmax_lut` (float table) | ``softmax_lut`` (XNNPACK never takes it) |
| LOGISTIC | :func:`~refquant.kernels.lut.logistic_lut` + :func:`~refquant.kernels.lut.apply_lut` | the same | :func:`~refquant.kernels.lut.logistic_lut_double_rne` |

The optimized int8/uint8 ADD (NEON intrinsics through NEON_2_SSE on x86) folds shifts and
narrows to int16 without saturation in blocks of 16 elements; a test transcription exists for
equal shapes (``tests/test_conformance_kernels_misc.py``) but broadcasting is not derived, so it
is refused rather than guessed. XNNPACK takes MAX_POOL_2D (int8/uint8) unless a stride exceeds
the filter or a 1x1 filter has a stride > 1; its fused activation then clamps with
:func:`~refquant.kernels.multiplier.activation_range_rne`.

Implicit output parameters, as the interpreter requires them: pooling outputs share the
input's scale and zero point; SOFTMAX and LOGISTIC output scale 1/256 with zero point -128
(int8) or 0 (uint8). int16 ADD needs every zero point 0 (Prepare error otherwise) and is
modelled with ``pot_scale_int16 = false`` (what the converter writes; LiteRT takes a
shift-only path when that flag is true and all three scales are powers of two).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels import pool as _pool
from ..kernels import softmax as _softmax
from ..ops import pointwise
from ..dtypes import get_format
from ._tflite_ops import check_activation, check_kernel, check_padding, kernel_profile

__all__ = ["add", "average_pool2d", "max_pool2d", "softmax", "logistic"]

def _lut_input(x, op):
    a = V.asarray(x, "x", kinds=None, what="an int8 or uint8 array")
    if a.dtype == np.int16:
        raise UnsupportedError(f"x has dtype int16: {op} int16 is not modelled (TFLite's int16 kernels are not "
                               f"LUT-based); pass int8 or uint8")
    return V.as_typed_array(a, "x", ("int8", "uint8"))


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
        UnsupportedError: 8-bit ADD on the optimized kernel (see the module docstring).
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


# --------------------------------------------------------------------------- SOFTMAX, LOGISTIC


def softmax(x, x_scale, x_zero_point, *, beta=1.0, kernel="reference") -> np.ndarray:
    """TFLite SOFTMAX over the last axis: $y_j \\approx 256\\,e^{\\beta S_x x_j} / \\sum_k e^{\\beta S_x x_k} + Z_y$.

    ``reference``: gemmlowp fixed point (``BUILTIN_REF``); ``optimized`` and ``xnnpack``: the
    float32 exponential table of the default kernel. Output scale 1/256, zero point -128 (int8)
    or 0 (uint8). The input zero point cancels (only differences to the row maximum count).

    Args:
        x: int8 or uint8, rank >= 1.
        x_scale, x_zero_point: Input parameters.
        beta: finite float > 0 (stored as float32).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of ``x``'s shape and dtype.

    Raises:
        QuantizationValueError: ``beta`` not finite and > 0, or (reference)
            $\\beta S_x 2^{26} \\le 1$, where TFLite's Prepare CHECK aborts.
        UnsupportedError: int16; a reference-kernel row whose exponential sum overflows
            TFLite's range (it aborts there).
    """
    kernel = check_kernel(kernel)
    x = _lut_input(x, "SOFTMAX")
    if x.ndim < 1:
        raise ShapeError(f"x must have rank >= 1 (softmax runs over the last axis), got shape {x.shape}")
    xs = V.as_scalar_scale(x_scale, "x_scale")
    _scalar_zero_point(x_zero_point, x.dtype, "x_zero_point")
    bt = np.float32(V.as_real_scalar(beta, "beta", finite=False))
    if not (np.isfinite(bt) and bt > 0):
        raise QuantizationValueError(f"beta must be finite and > 0 (as float32), got {beta!r}")
    if kernel_profile(kernel) == "tflite_reference":  # Prepare's CHECK, before any kernel runs
        _softmax.softmax_fixed_point_params(xs, bt)
    return pointwise.softmax(x, xs, bt, profile=kernel_profile(kernel))


def logistic(x, x_scale, x_zero_point, *, kernel="reference") -> np.ndarray:
    """TFLite LOGISTIC (sigmoid) through a 256-entry table: $y = \\mathrm{round}(256\\,\\sigma(S_x(x - Z_x))) + Z_y$.

    ``reference`` and ``optimized``: TFLite's float32 table (round half away from zero);
    ``xnnpack``: XNNPACK's table (double-precision sigmoid, ties to even). Output scale
    1/256, zero point -128 (int8) or 0 (uint8).

    Args:
        x: int8 or uint8 array of any shape.
        x_scale, x_zero_point: Input parameters.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of ``x``'s shape and dtype.

    Raises:
        UnsupportedError: int16.
    """
    kernel = check_kernel(kernel)
    x = _lut_input(x, "LOGISTIC")
    xs = V.as_scalar_scale(x_scale, "x_scale")
    xz = _scalar_zero_point(x_zero_point, x.dtype, "x_zero_point")
    return pointwise.logistic(x, xs, xz, profile=kernel_profile(kernel))
