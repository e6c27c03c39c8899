r"""TFLite face, op level (internal): the ops whose output has parameters of its own, MEAN and
QUANTIZE from an integer tensor (requantization).

Re-exported by :mod:`refquant.backends.tflite` (through :mod:`refquant.backends._tflite_ops_misc`).
Validation first, then :func:`refquant.ops.reduce.mean` / :func:`refquant.ops.requantize.requantize`
under the kernel's profile (measured against LiteRT 2.3.0 x86-64,
``tests/test_conformance_tflite_int16_pointwise.py``):

| op | ``"reference"`` | ``"optimized"`` | ``"xnnpack"`` |
|---|---|---|---|
| MEAN int8/uint8 | :func:`~refquant.kernels.mean.mean_fixed_point` | ``mean_fixed_point``, except 4-D over axes (1, 2) with ``keep_dims``: :func:`~refquant.kernels.mean.mean_fixed_point_4d` | :func:`~refquant.kernels.mean.mean_float32` (XNNPACK takes every int8/uint8 MEAN of rank <= 6; a higher rank: UnsupportedError, LiteRT fails to prepare it) |
| MEAN int16 | ``mean_fixed_point`` (zero points 0) | the same | the same (XNNPACK does not take int16) |
| QUANTIZE int8/uint8 -> int8/uint8 | :func:`~refquant.kernels.requant_codes.fixed_point_requantize` | the same with ``simd_block=16`` (whole 16-element blocks round half up) | :func:`~refquant.kernels.requant_codes.shift8_requantize` for int8 -> int8 and uint8 -> uint8 with $\mathrm{fl}(S_x/S_y) \in [2^{-8}, 128]$, else the optimized kernel |
| QUANTIZE with int16 in or out | ``fixed_point_requantize`` | the same | the same |

The optimized kernel's 4-D MEAN and 8-bit requantization run NEON code through NEON_2_SSE on x86
(measured on an AVX-512 machine; an ARM build runs the same NEON code natively). The 4-D MEAN
splits its channels across threads when more than one is allowed; refquant models one thread
(``num_threads=1``). int16 (16x8) tensors need zero points 0 where LiteRT checks them: MEAN, and
QUANTIZE int16 -> int16 (the other requantization pairs apply any zero point, as LiteRT does).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import get_format
from ..errors import QuantizationValueError, ShapeError, UnsupportedError
from ..ops.reduce import mean as _mean
from ..ops.requantize import requantize as _requantize
from ._tflite_ops import check_kernel, kernel_profile

__all__ = ["mean", "requantize"]


def _scalar_zero_point(zero_point, dtype, name: str) -> int:
    return V.as_scalar_zero_point(zero_point, get_format(dtype), name)


def int16_zero_points(op: str, pairs) -> None:
    """TFLite requires these zero points to be 0 for int16 tensors (Prepare / Eval error otherwise)."""
    for name, z in pairs:
        if z:
            raise QuantizationValueError(f"{name} must be 0 for int16 activations (TFLite 16x8 {op}), got {z}")


def mean(x, x_scale, x_zero_point, y_scale, y_zero_point, *, axis=(1, 2), keep_dims=False,
         kernel="reference") -> np.ndarray:
    """TFLite MEAN: $y = \\mathrm{clamp}(\\mathrm{round}(\\tfrac{S_x}{S_y} \\cdot \\tfrac{1}{n}\\sum (x - Z_x)) + Z_y)$
    over ``axis``, with the output's own parameters, evaluated as in the module table. Mirrors
    ``tflite/kernels/reduce.cc`` (what the converter writes for a global average pool: NHWC,
    ``axis=(1, 2)``, ``keep_dims`` as the layer asks).

    Args:
        x: int8, uint8 or int16 (16x8 mode) array, rank >= 1, non-empty.
        x_scale, x_zero_point, y_scale, y_zero_point: Per-tensor parameters (zero points 0 for
            int16).
        axis: An int or a sequence of ints (negative counts from the end; repeats allowed), as
            the constant axis tensor holds them.
        keep_dims: Keep the reduced axes as size 1.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of ``x``'s dtype: ``x``'s shape with the reduced axes dropped (or 1 with ``keep_dims``).

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named), an axis
            out of range, a nonzero int16 zero point, an empty input (LiteRT writes an
            undefined value there).
        UnsupportedError: int8/uint8 of rank above 6 with ``kernel="xnnpack"`` (see the module docstring).
    """
    kernel = check_kernel(kernel)
    x = V.as_typed_array(x, "x", ("int8", "uint8", "int16"), min_ndim=1)
    if x.size == 0:
        raise ShapeError(f"x must not be empty (TFLite MEAN writes no defined value), got shape {x.shape}")
    axes = V.as_int_sequence((axis,) if isinstance(axis, (int, np.integer)) else axis, "axis", minimum=-(2 ** 31))
    if len(axes) == 0:
        raise ShapeError("axis must name at least one axis")
    keep_dims = V.as_flag(keep_dims, "keep_dims")
    xs, ys = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    xz = _scalar_zero_point(x_zero_point, x.dtype, "x_zero_point")
    yz = _scalar_zero_point(y_zero_point, x.dtype, "y_zero_point")
    if x.dtype == np.int16:
        int16_zero_points("MEAN", (("x_zero_point", xz), ("y_zero_point", yz)))
    try:
        return _mean(x, xs, xz, ys, yz, axes, profile=kernel_profile(kernel), keep_dims=keep_dims)
    except UnsupportedError as err:
        raise UnsupportedError(f"kernel={kernel!r}: {err}") from None


# QUANTIZE with an integer input: the (input, output) dtypes LiteRT's Prepare accepts.
_REQUANTIZE_OUTPUTS = {"int8": ("int8", "uint8", "int16"), "uint8": ("int8", "uint8", "int16"),
                       "int16": ("int8", "int16")}


def requantize(q, x_scale, x_zero_point, y_scale, y_zero_point, *, dtype, kernel="reference") -> np.ndarray:
    """TFLite QUANTIZE with an integer input (requantization):
    $y = \\mathrm{clamp}(\\mathrm{MBQM}(q - Z_x, M, e) + Z_y)$ with
    $(M, e) = \\mathrm{QuantizeMultiplier}(\\mathrm{double}(S_x) / \\mathrm{double}(S_y))$, evaluated as in
    the module table. Mirrors ``tflite/kernels/quantize.cc`` (``Requantize``).

    Args:
        q: int8, uint8 or int16 codes (any shape).
        x_scale, x_zero_point: The input tensor's parameters.
        y_scale, y_zero_point: The output tensor's parameters (zero point in ``dtype``'s range).
        dtype: The output type: ``"int8"``, ``"uint8"`` or ``"int16"`` (an int16 input takes
            ``"int8"`` or ``"int16"``). int16 to int16 needs both zero points 0; other pairs
            apply any zero point, as LiteRT does.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of ``q``'s shape and ``dtype``.

    Raises:
        QuantizationTypeError, QuantizationValueError: bad input (named), a dtype pair LiteRT's
            Prepare refuses, nonzero zero points for int16 to int16.
    """
    kernel = check_kernel(kernel)
    q = V.as_typed_array(q, "q", ("int8", "uint8", "int16"))
    out = get_format(dtype, name="dtype")
    if out.name not in _REQUANTIZE_OUTPUTS[q.dtype.name]:
        raise QuantizationValueError(f"dtype must be one of {_REQUANTIZE_OUTPUTS[q.dtype.name]} for a {q.dtype} "
                                     f"input (TFLite QUANTIZE), got {out.name!r}")
    xs, ys = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    xz = _scalar_zero_point(x_zero_point, q.dtype, "x_zero_point")
    yz = V.as_scalar_zero_point(y_zero_point, out, "y_zero_point")
    if q.dtype == np.int16 and out.name == "int16":
        int16_zero_points("QUANTIZE from an int16 q to int16", (("x_zero_point", xz), ("y_zero_point", yz)))
    return _requantize(q, xs, xz, ys, yz, profile=kernel_profile(kernel), out_dtype=np.dtype(out.name))
