r"""TFLite face, op level (internal): the activations SOFTMAX, LOGISTIC and TANH on int8, uint8 and int16.

Re-exported by :mod:`refquant.backends.tflite`. Validation first (LiteRT's Prepare checks,
named), then :mod:`refquant.ops.pointwise` under the kernel's profile. Measured bit for bit
against LiteRT 2.3.0 on x86-64 (``tests/test_conformance_tflite_activations16.py``):

| op | ``"reference"`` | ``"optimized"`` | ``"xnnpack"`` |
|---|---|---|---|
| SOFTMAX int8/uint8 | gemmlowp fixed point (:func:`~refquant.kernels.softmax.softmax_fixed_point`) | float32 exp table (:func:`~refquant.kernels.softmax.softmax_lut`) | the optimized kernel (XNNPACK never takes SOFTMAX) |
| SOFTMAX int16 | two interpolated 513-entry tables (:func:`~refquant.kernels.softmax16.softmax16`) | the same | the same (XNNPACK takes no int16 node) |
| LOGISTIC int8/uint8 | float32 table, half away (:func:`~refquant.kernels.lut.logistic_lut`) | the same | XNNPACK's double-precision table, ties to even (:func:`~refquant.kernels.lut.logistic_lut_double_rne`) |
| LOGISTIC int16 | interpolated sigmoid table (:func:`~refquant.kernels.sigmoid16.logistic16`) | the same, except input scale $2^{-12}$: gemmlowp int16 fixed point (:func:`~refquant.kernels.fixedpoint16.logistic_q3`) | the optimized kernel |
| TANH int8/uint8 | float32 ``tanhf`` table, half away (:func:`~refquant.kernels.lut.tanh_lut`) | the same | XNNPACK's ``tanhf`` table, ties to even (:func:`~refquant.kernels.lut.tanh_lut_rne`) |
| TANH int16 | interpolated sigmoid table (:func:`~refquant.kernels.sigmoid16.tanh16`) | the same, except input scales $2^{-12}$, $2^{-11}$: gemmlowp (:func:`~refquant.kernels.fixedpoint16.tanh_q3`) | the optimized kernel |

**Output parameters.** ``y_scale=None`` / ``y_zero_point=None`` mean the values the converter
writes; other values are checked as LiteRT's Prepare checks them:

| op | dtype | LiteRT requires | modelled |
|---|---|---|---|
| SOFTMAX | int8 | $Z_y = -128$, $\lvert S_y - 1/256 \rvert \le 0.001/256$ | $S_y = 1/256$ |
| SOFTMAX | uint8 | nothing | $S_y = 1/256$, $Z_y = 0$ |
| SOFTMAX | int16 | $Z_x = Z_y = 0$, $\lvert S_y - 1/32768 \rvert \le 0.001/32768$ | all it accepts (the kernel never reads $S_y$) |
| LOGISTIC | int8/uint8 | $S_y = 1/256$ exactly (the XNNPACK delegate: nothing) | $S_y = 1/256$, $Z_y = -128$ (int8) / 0 (uint8) |
| LOGISTIC | int16 | $Z_x = Z_y = 0$, $S_y = 1/32768$ exactly | all it accepts |
| TANH | int8/uint8 | nothing | any $S_y$, $Z_y$ (default $1/128$ and 0 / 128) |
| TANH | int16 | $Z_x = Z_y = 0$, $\log_2 S_y = -15$ within ``CheckedLog2``'s tolerance | all it accepts |

A value LiteRT refuses raises :class:`~refquant.errors.QuantizationValueError`; one LiteRT
accepts but refquant does not model raises :class:`~refquant.errors.UnsupportedError`.

**Transcendental functions.** The 8-bit tables use the correctly rounded float32 ``expf`` /
``tanhf`` (:mod:`refquant.kernels.lut`); LiteRT calls the system C library, which on glibc 2.36
differs in the last bit for some inputs. For TANH that changes about one table in 10,000
random parameter sets (the conformance test pins one such case, where LiteRT equals the table
built with ``math="libm"``).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import get_format
from ..errors import QuantizationValueError, ShapeError, UnsupportedError
from ..kernels import sigmoid16 as _sigmoid16
from ..kernels import softmax as _softmax
from ..kernels import softmax16 as _softmax16
from ..ops import pointwise
from ._tflite_ops import check_kernel, kernel_profile

__all__ = ["softmax", "logistic", "tanh"]

_F32 = np.float32
_DTYPES = ("int8", "uint8", "int16")


def _input(x, x_scale, x_zero_point, op):
    x = V.as_typed_array(x, "x", _DTYPES)
    xs = V.as_scalar_scale(x_scale, "x_scale")
    xz = V.as_scalar_zero_point(x_zero_point, get_format(x.dtype), "x_zero_point")
    if x.dtype == np.int16 and xz != 0:
        raise QuantizationValueError(f"x_zero_point must be 0 for int16 {op} (TFLite 16x8; LiteRT Prepare error), "
                                     f"got {xz}")
    return x, xs, xz


def _output(x, y_scale, y_zero_point, default):
    sy = _F32(default[0]) if y_scale is None else V.as_scalar_scale(y_scale, "y_scale")
    zy = default[1] if y_zero_point is None else V.as_scalar_zero_point(y_zero_point, get_format(x.dtype),
                                                                          "y_zero_point")
    return sy, zy


def _require_zero_point(zy, want, op, dtype):
    if zy != want:
        raise QuantizationValueError(f"y_zero_point must be {want} for {dtype} {op} (LiteRT Prepare error), got {zy}")


def _require_near(sy, want, op, dtype, *, modelled_exactly):
    """``TF_LITE_ENSURE_NEAR(scale, want, 0.001 * want)`` (float32), then what refquant models."""
    if abs(float(_F32(sy) - _F32(want))) > float(_F32(0.001) * _F32(want)):
        raise QuantizationValueError(f"y_scale must be within 0.1% of {want!r} for {dtype} {op} (LiteRT Prepare "
                                     f"error), got {float(sy)!r}")
    if modelled_exactly and sy != _F32(want):
        raise UnsupportedError(f"y_scale {float(sy)!r}: LiteRT accepts it for {dtype} {op}, but only {want!r} "
                               f"is modelled")


def softmax(x, x_scale, x_zero_point, *, beta=1.0, kernel="reference", y_scale=None, y_zero_point=None):
    """TFLite SOFTMAX over the last axis: $y_j \\approx e^{\\beta S_x x_j} / (S_y \\sum_k e^{\\beta S_x x_k}) + Z_y$.

    int8/uint8: ``reference`` runs gemmlowp fixed point, ``optimized`` and ``xnnpack`` the float32
    exponential table; output scale 1/256, zero point -128 (int8) or 0 (uint8). The input zero
    point cancels (only differences to the row maximum count). int16 (16x8): every kernel runs
    LiteRT's ``SoftmaxInt16`` (:mod:`refquant.kernels.softmax16`): input zero point 0, output
    scale 1/32768, zero point 0; differences below about $-10 / (\\beta S_x)$ all map to $e^{-10}$.

    Args:
        x: int8, uint8 or int16, rank >= 1.
        x_scale, x_zero_point: Input parameters (zero point 0 for int16).
        beta: Finite float > 0 (stored as float32).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.
        y_scale, y_zero_point: Output parameters; ``None`` for the required ones (module docstring).

    Returns:
        Array of ``x``'s shape and dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: Bad input (named), including
            output parameters LiteRT's Prepare refuses, and (int8/uint8 reference)
            $\\beta S_x 2^{26} \\le 1$, where TFLite's Prepare CHECK aborts.
        UnsupportedError: Accepted output parameters that are not modelled; a reference-kernel
            row whose exponential sum overflows TFLite's range; an int16 row sum past $2^{31}$
            (rows over 65,548 entries); $\\beta S_x$ too large for the int16 multiplier.
    """
    kernel = check_kernel(kernel)
    x, xs, _ = _input(x, x_scale, x_zero_point, "SOFTMAX")
    if x.ndim < 1:
        raise ShapeError(f"x must have rank >= 1 (softmax runs over the last axis), got shape {x.shape}")
    bt = _F32(V.as_real_scalar(beta, "beta", finite=False))
    if not (np.isfinite(bt) and bt > 0):
        raise QuantizationValueError(f"beta must be finite and > 0 (as float32), got {beta!r}")
    dtype = x.dtype.name
    if dtype == "int16":
        sy, zy = _output(x, y_scale, y_zero_point, (1.0 / 32768, 0))
        _require_zero_point(zy, 0, "SOFTMAX", dtype)
        _require_near(sy, 1.0 / 32768, "SOFTMAX", dtype, modelled_exactly=False)
        _softmax16.softmax16_params(xs, bt)  # Prepare's multiplier, before any kernel runs
    else:
        sy, zy = _output(x, y_scale, y_zero_point, (1.0 / 256, -128 if dtype == "int8" else 0))
        if dtype == "int8":
            _require_zero_point(zy, -128, "SOFTMAX", dtype)
            _require_near(sy, 1.0 / 256, "SOFTMAX", dtype, modelled_exactly=True)
        elif (sy, zy) != (_F32(1.0 / 256), 0):
            raise UnsupportedError(f"y_scale, y_zero_point = {float(sy)!r}, {zy}: LiteRT accepts them for uint8 "
                                   f"SOFTMAX, but only 1/256 and 0 are modelled")
        if kernel_profile(kernel) == "tflite_reference":  # Prepare's CHECK, before any kernel runs
            _softmax.softmax_fixed_point_params(xs, bt)
    return pointwise.softmax(x, xs, bt, profile=kernel_profile(kernel))


def logistic(x, x_scale, x_zero_point, *, kernel="reference", y_scale=None, y_zero_point=None):
    """TFLite LOGISTIC (sigmoid): $y = \\mathrm{round}(\\sigma(S_x(x - Z_x)) / S_y) + Z_y$.

    int8/uint8 through a 256-entry table: ``reference`` and ``optimized`` TFLite's float32 table
    (round half away from zero), ``xnnpack`` XNNPACK's (double-precision sigmoid, ties to even);
    output scale 1/256, zero point -128 (int8) or 0 (uint8). int16 (16x8): zero points 0, output
    scale 1/32768, through the interpolated sigmoid table (:mod:`refquant.kernels.sigmoid16`), or
    on ``optimized``/``xnnpack`` for input scale $2^{-12}$ gemmlowp int16 fixed point
    (:mod:`refquant.kernels.fixedpoint16`).

    Args:
        x: int8, uint8 or int16 array of any shape.
        x_scale, x_zero_point: Input parameters (zero point 0 for int16).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.
        y_scale, y_zero_point: Output parameters; ``None`` for the required ones.

    Returns:
        Array of ``x``'s shape and dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError: Bad input (named), including output
            parameters LiteRT's Prepare refuses.
        UnsupportedError: An 8-bit output zero point LiteRT accepts but refquant does not model;
            an int16 input scale whose multiplier overflows int32 ($S_x \\ge 2^{31}/12288$).
    """
    kernel = check_kernel(kernel)
    x, xs, xz = _input(x, x_scale, x_zero_point, "LOGISTIC")
    dtype = x.dtype.name
    want = (1.0 / 32768, 0) if dtype == "int16" else (1.0 / 256, -128 if dtype == "int8" else 0)
    sy, zy = _output(x, y_scale, y_zero_point, want)
    if sy != _F32(want[0]):
        if kernel == "xnnpack" and dtype != "int16":  # the delegate takes the node before TFLite's Prepare runs
            raise UnsupportedError(f"y_scale {float(sy)!r}: the XNNPACK delegate accepts it for {dtype} LOGISTIC, "
                                   f"but only {want[0]!r} is modelled")
        raise QuantizationValueError(f"y_scale must be {want[0]!r} for {dtype} LOGISTIC (LiteRT Prepare error), "
                                     f"got {float(sy)!r}")
    if dtype == "int16":
        _require_zero_point(zy, 0, "LOGISTIC", dtype)
        _sigmoid16.sigmoid16_params(xs, op="logistic")
    elif zy != want[1]:
        raise UnsupportedError(f"y_zero_point {zy}: LiteRT accepts it for {dtype} LOGISTIC, but only {want[1]} "
                               f"is modelled")
    return pointwise.logistic(x, xs, xz, profile=kernel_profile(kernel))


def tanh(x, x_scale, x_zero_point, *, kernel="reference", y_scale=None, y_zero_point=None):
    """TFLite TANH: $y = \\mathrm{round}(\\tanh(S_x(x - Z_x)) / S_y) + Z_y$.

    int8/uint8 through a 256-entry table of float32 ``tanhf``: ``reference`` and ``optimized``
    round half away from zero; ``xnnpack`` (the delegate takes the node) multiplies by the float32
    reciprocal of $S_y$, adds $Z_y$ in float and rounds ties to even. The output parameters are
    free (default $1/128$ with zero point 0 for int8, 128 for uint8). int16 (16x8): zero points 0,
    output scale $2^{-15}$, through the interpolated sigmoid table ($\\tanh u = 2\\sigma(2u) - 1$),
    or on ``optimized``/``xnnpack`` for input scales $2^{-12}$ and $2^{-11}$ gemmlowp int16 fixed point.

    Args:
        x: int8, uint8 or int16 array of any shape.
        x_scale, x_zero_point: Input parameters (zero point 0 for int16).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.
        y_scale, y_zero_point: Output parameters; ``None`` for the defaults.

    Returns:
        Array of ``x``'s shape and dtype.

    Raises:
        QuantizationTypeError, QuantizationValueError: Bad input (named), including int16
            output parameters LiteRT's Prepare refuses.
        UnsupportedError: An int16 input scale whose multiplier overflows int32.
    """
    kernel = check_kernel(kernel)
    x, xs, xz = _input(x, x_scale, x_zero_point, "TANH")
    dtype = x.dtype.name
    want = {"int8": (1.0 / 128, 0), "uint8": (1.0 / 128, 128), "int16": (1.0 / 32768, 0)}[dtype]
    sy, zy = _output(x, y_scale, y_zero_point, want)
    if dtype == "int16":
        _require_zero_point(zy, 0, "TANH", dtype)
        log2, pot = _sigmoid16.checked_log2(sy)
        if not (pot and log2 == -15):
            raise QuantizationValueError(f"y_scale must be 2^-15 = {1 / 32768!r} (CheckedLog2 within 1e-3) for "
                                         f"int16 TANH (LiteRT Prepare error), got {float(sy)!r}")
        _sigmoid16.sigmoid16_params(xs, op="tanh")
    return pointwise.tanh(x, xs, xz, sy, zy, profile=kernel_profile(kernel))
