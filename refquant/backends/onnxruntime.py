"""ONNX Runtime's CPU execution provider, op by op (pinned face): what
``onnxruntime`` returns, bit for bit, on an x86-64 CPU.

The functions have the signatures of :mod:`refquant.backends.onnx` and bind the same core
functions to the ``onnxruntime`` profile, which differs from the
specification only where ORT's MLAS kernels do:

* **QuantizeLinear** (``MlasQuantizeLinear``): float32 division ``divps``, then a clamp *in
  float* to $[q_{min} - Z, q_{max} - Z]$ with ``maxps``/``minps``, then ``cvtps2dq`` (ties to
  even), then $+Z$. So NaN gives $q_{min}$ and $\\pm\\infty$ saturate. float16 inputs are widened
  to float32 and divided in float32 (the spec divides in float16).
* **DequantizeLinear**: $x - Z$ in int32 (wraps for int32 ``x``), converted to float32, times
  the float32 scale; a float16 scale gives that float32 result rounded to float16.
* **DynamicQuantizeLinear**: min/max by ORT's AVX reduction kernel (NaN skipped or kept
  depending on its position), ``scale = 1`` for an all-zero input, a NaN zero point becomes
  255 (:func:`dynamic_qparams` with ``variant="onnxruntime"``).

Measured against onnxruntime 1.32 (``ORT_DISABLE_ALL``, one intra-op thread) on an AVX2 CPU
without VNNI; none of these three ops depends on VNNI. Type rules are ORT's: ``x`` and the
scale share one float type (a Python float or float64 scale takes ``x``'s type). Every integer
output type ran on onnxruntime 1.32 (int2/uint2 with opset 25); 4- and 2-bit results come back
unpacked, as in the ONNX face. ``DynamicQuantizeLinear`` on NaN is modelled for a session with
one intra-op thread (with more, ORT reduces blocks separately and a NaN may land elsewhere).

**Integer matmul and convolution, contrib ops** (:func:`matmul_integer`, :func:`qlinear_matmul`,
:func:`conv_integer`, :func:`qlinear_conv`, :func:`qlinear_add`, :func:`qlinear_global_average_pool`,
:func:`qlinear_sigmoid`; code in ``refquant/backends/_onnxruntime_ops.py``; and :func:`qgemm`,
:func:`qlinear_mul`, :func:`qlinear_concat`, :func:`qlinear_average_pool`, :func:`qlinear_softmax`,
:func:`qlinear_leaky_relu`, :func:`max_pool` on 8-bit codes, in ``_onnxruntime_contrib.py``, measured
against ONNX Runtime 1.32 on an AVX-512 VNNI CPU). The ONNX face's
bindings with ONNX Runtime's choices:

* **requantization** (QLinearMatMul, QLinearConv): profile ``onnxruntime``,
  $m = \\mathrm{fl}(\\mathrm{fl}(S_a S_b[n]) / S_y)$ in float32, then
  ``float(acc) * m`` in float32, clamp, ``cvtps2dq`` (ties to even), $+ Z_y$
  (:func:`refquant.kernels.requant.requantize`, mode ``float32_rne``). QLinearConv adds its
  int32 bias before the conversion.
* **accumulation** (``isa=``): on x86-64 without VNNI (``"avx2"``) MLAS multiplies uint8 × int8
  with ``vpmaddubsw``, which saturates each pair sum to int16 (:mod:`refquant.kernels.gemm`,
  eq. (3)). Measured on ONNX Runtime 1.32, AVX2 without VNNI:

  | op | x / a | w / b | accumulation |
  |---|---|---|---|
  | MatMulInteger, QLinearMatMul | uint8 | int8 | ``pairwise_sat16_u8s8`` |
  | ConvInteger | int8 | uint8 | ``pairwise_sat16_s8u8``, pairs in (c, kH, kW) order |
  | QLinearConv (not depthwise with multiplier 1 and one w zero point) | uint8 | int8 | ``pairwise_sat16_u8s8``, pairs in (kH, kW, c) order |
  | everything else | | | exact |

  ``isa="vnni"`` (``vpdpbusd``, no intermediate saturation; read, not run) and ``"exact"``
  accumulate exactly; ``"auto"`` (default) asks :func:`refquant.cpu.resolve_isa`.
* **what ORT refuses** raises :class:`~refquant.errors.UnsupportedError`: a per-row
  ``a_zero_point`` (MatMulInteger) or any non-scalar ``a``/``y`` parameter (QLinearMatMul);
  per-column ``b`` parameters other than (N,) for a 2-D ``b`` or ``b.shape[:-2] + (1, N)``;
  a per-channel ``w_zero_point`` in ConvInteger; QLinearMatMul/QLinearConv type combinations
  other than uint8·uint8→uint8, uint8·int8→uint8 and int8·int8→int8 (e.g. int8 ``x`` with
  uint8 ``w``); dilations with ``auto_pad`` SAME_UPPER/SAME_LOWER.
* **SAME padding**: with $p = (\\lceil n/s \\rceil - 1)s + k - n < 0$ (a stride larger than the
  kernel), ORT starts the first window at input index $-b$ with $b = \\mathrm{trunc}((p + 1)/2)$
  (SAME_UPPER) or $\\mathrm{trunc}((p + 2)/2)$ (SAME_LOWER), where the spec and ``onnx.reference``
  start it at 0 (measured for $p \\in [-6, -1]$, ConvInteger and QLinearConv, int8 and uint8).
* float16 scales are accepted and used as their exact float32 values (measured on
  QLinearMatMul). Convolutions are 1-D or 2-D (3-D: UnsupportedError).

QLinearConv with per-channel **unequal** weight zero points ran on ORT 1.32 (its sources
suggest they must be equal; measured otherwise) and matches the same model, except that a
depthwise convolution with multiplier 1 then leaves MLAS's exact depthwise kernel for the
pair-saturating GEMM (measured).

The contrib ops bind :func:`refquant.kernels.elementwise_float.float_add` (QLinearAdd, the
AVX2/FMA kernel), :func:`refquant.kernels.pool.global_average_pool` and
:func:`refquant.kernels.lut.rational_logistic_lut` (QLinearSigmoid, FMA3 kernel): x86-64 with
AVX2 and FMA, as measured.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import FORMATS
from ..errors import QuantizationTypeError, UnsupportedError
from ..qparams import QParams
from ..quantization import dequantize, quantize
from ._onnx_params import dynamic_qparams, reduced_range, tool_qparams
from .onnx import (
    _as_scale,
    _check_saturate,
    _dequantize_zero_point,
    _float_input,
    _int_input,
    _output_format,
    _qparams,
)

__all__ = ["quantize_linear", "dequantize_linear", "dynamic_quantize_linear", "dynamic_qparams", "tool_qparams", "reduced_range", "matmul_integer", "qlinear_matmul",
           "conv_integer", "qlinear_conv", "qlinear_add", "qlinear_global_average_pool", "qlinear_sigmoid",
           "qgemm", "qlinear_mul", "qlinear_concat", "qlinear_average_pool", "qlinear_softmax", "qlinear_leaky_relu",
           "max_pool"]

_PROFILE = "onnxruntime"  # quantize: divide f32, clamp in float, RNE, NaN -> qmin; dequantize: int32 difference


def _ort_input(x) -> np.ndarray:
    """QuantizeLinear's ``x``: float32 or float16 (T1); float64 is rounded to float32 first."""
    a = V.asarray(x, "x", kinds=None, what="a float32 or float16 array")
    if a.dtype.kind in "iu":
        raise UnsupportedError(f"ONNX Runtime's QuantizeLinear takes float32 or float16 x, got {a.dtype}")
    a = _float_input(a)
    with np.errstate(over="ignore"):  # |x| > FLT_MAX becomes +-inf, which saturates
        return a.astype(np.float32) if a.dtype == np.float64 else a


def _ort_scale(scale, dtype, name: str) -> np.ndarray:
    """The scale in ``dtype`` (x's type or the output type): ORT binds both to one type T."""
    given = V.native(np.asarray(scale)).dtype if isinstance(scale, (np.ndarray, np.generic)) else None
    if given in (np.float16, np.float32) and given != dtype:
        raise UnsupportedError(f"ONNX Runtime needs x and {name} of one float type, got {np.dtype(dtype).name} "
                               f"and {np.dtype(given).name}")
    return _as_scale(scale, name, dtype=dtype)


def quantize_linear(x, y_scale, y_zero_point=None, *, axis=1, block_size=0, saturate=1, output_dtype=None):
    """ONNX Runtime ``QuantizeLinear`` (CPU, MLAS): $y = \\mathrm{RNE}(\\operatorname{clamp}(x/S,\\,
    q_{min} - Z,\\, q_{max} - Z)) + Z$ with a float32 division.

    NaN -> $q_{min}$; $\\pm\\infty$ and values past int32 saturate. Per-tensor, per-axis and
    blocked as in :func:`refquant.backends.onnx.quantize_linear` (same arguments, same
    checks); for float32 ``x`` the result equals the ONNX face; for float16 ``x`` ORT divides
    in float32 where the spec divides in float16.

    Args:
        x: float32 or float16 array (float64 is rounded to float32).
        y_scale: float > 0; Python floats and float64 take ``x``'s type; a float16/float32
            array must have ``x``'s type (ORT's type constraint).
        y_zero_point, axis, block_size, saturate, output_dtype: As in the ONNX face.

    Returns:
        Integer array of ``x``'s shape (int4/int2 unpacked in int8, uint4/uint2 in uint8).

    Raises:
        UnsupportedError: int32 ``x``, float8 outputs, or ``x``/``y_scale`` of different types.
        QuantizationTypeError, QuantizationValueError, ShapeError: As in the ONNX face.
    """
    fmt = _output_format(y_zero_point, output_dtype)
    _check_saturate(saturate)
    a = _ort_input(x)
    scale = _ort_scale(y_scale, a.dtype, "y_scale")
    qp = _qparams(a.shape, scale, y_zero_point, fmt, axis, block_size, "y_scale", "y_zero_point")
    with np.errstate(over="ignore"):
        return quantize(a, qp, _PROFILE)  # precision float32: float16 widens exactly


def dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1, block_size=0):
    """ONNX Runtime ``DequantizeLinear`` (CPU): ``float(int32(x - Z)) * S`` in float32.

    $x - Z$ is computed in int32 (an int32 ``x`` with a nonzero zero point wraps, e.g.
    INT32_MIN - 5 becomes positive); the product is float32, rounded to float16 when
    ``x_scale`` is float16 (the output type).

    Args:
        x, x_scale, x_zero_point, axis, block_size: As in the ONNX face; an int32 ``x`` may
            have a nonzero int32 zero point here.

    Returns:
        float32 array (float16 for a float16 scale) of ``x``'s shape.
    """
    q, fmt = _int_input(x)
    scale = _as_scale(x_scale, "x_scale")
    zp = _dequantize_zero_point(x_zero_point, q.dtype, fmt)
    qp = _qparams(q.shape, scale, zp, fmt, axis, block_size, "x_scale", "x_zero_point")
    y = dequantize(q, qp, _PROFILE)  # float32
    with np.errstate(over="ignore"):
        return y.astype(scale.dtype)  # float16 output: the float32 result, rounded (RNE)


def dynamic_quantize_linear(x):
    """ONNX Runtime ``DynamicQuantizeLinear`` (uint8), exactly, NaN and $\\pm\\infty$ included.

    Parameters from :func:`dynamic_qparams` with
    ``variant="onnxruntime"`` (``qmath.h GetQuantizationParameter``: scale 1.0 when
    $\\max = \\min$, e.g. all zeros or empty; ORT's min/max kernel order for NaN), then ORT's
    QuantizeLinear (:func:`quantize_linear` arithmetic) with that scale, even when it is 0,
    inf or NaN as ORT computes it (every element then maps as MLAS maps $x/S$).

    Args:
        x: float array (ORT takes float32; float16/float64 are converted to float32).

    Returns:
        ``(y, y_scale, y_zero_point)``: uint8 array of ``x``'s shape, 0-d float32, 0-d uint8.

    Raises:
        QuantizationTypeError: ``x`` is not a float array.
    """
    a = V.asarray(x, "x", kinds=None, what="a float32 array")
    if a.dtype.kind != "f":
        raise QuantizationTypeError(f"x must be a float32 array, got dtype {a.dtype}")
    with np.errstate(over="ignore"):
        a = a.astype(np.float32)
    scale, zp = dynamic_qparams(a, variant="onnxruntime")
    # Not make_qparams: ORT goes on with a degenerate scale (0, inf or NaN) where make_qparams would refuse it.
    qp = QParams(scale, zp, FORMATS["uint8"], qmin=0, qmax=255)
    with np.errstate(all="ignore"):
        y = quantize(a, qp, _PROFILE)
    return y, scale, zp.astype(np.uint8)


from ._onnxruntime_ops import (  # noqa: E402  (op-level functions, re-exported)
    conv_integer,
    matmul_integer,
    qlinear_add,
    qlinear_conv,
    qlinear_global_average_pool,
    qlinear_matmul,
    qlinear_sigmoid,
)
from ._onnxruntime_contrib import (  # noqa: E402  (more contrib ops and the 8-bit MaxPool, re-exported)
    max_pool,
    qgemm,
    qlinear_average_pool,
    qlinear_concat,
    qlinear_leaky_relu,
    qlinear_mul,
    qlinear_softmax,
)
