"""TFLite / LiteRT face: the builtin ops as a ``.tflite`` model stores them, bit for bit.

Every function takes and returns NumPy arrays and tensor parameters as the flatbuffer
holds them: float32 scales (a scalar, or a 1-D array for per-channel), integer zero
points, integer tensors of the format's NumPy dtype. A ``kernel`` keyword selects
which LiteRT kernels to reproduce:

| ``kernel`` | LiteRT op resolver | depends on the CPU? |
|---|---|---|
| ``"reference"`` | ``BUILTIN_REF`` (reference kernels) | no, for finite values inside the int32 range (see *Specials*) |
| ``"xnnpack"`` | ``BUILTIN`` (the default: builtin kernels + the XNNPACK delegate) | a little: an op XNNPACK does not take runs on the optimized kernel |
| ``"optimized"`` | ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` | yes: the result depends on the element's position (SIMD blocks of 8) |

``"xnnpack"`` returns what the interpreter with the default delegate returns, so where
XNNPACK declines a node (int16 and 4-bit QUANTIZE, per-channel tensors, empty tensors,
rank above 6) it returns the ``"optimized"`` (or reference) result, as LiteRT does.

**QUANTIZE** (float32 $x$ to int8/uint8/int16/int4/uint4), $q = \\mathrm{clamp}(\\mathrm{round}(v) + Z)$:

| kernel, case | $v$ | rounding | source |
|---|---|---|---|
| reference; every kernel for per-channel and 4-bit | ``float32(x / s)`` | half away from zero | ``reference_ops::AffineQuantize``, ``PerChannelQuantize``, ``AffineQuantizeToInt4`` |
| xnnpack (int8, uint8) | ``x * float32(1/s)``, clamped to $[q_{min}-Z, q_{max}-Z]$ first, FTZ/DAZ | half to even | XNNPACK ``f32-qs8-vcvt`` |
| optimized: elements ``0 .. 8*floor(n/8) - 1`` (C order) | ``x * float32(1/s)`` | half to even | ``optimized_ops::AffineQuantize`` (NEON, or NEON_2_SSE on x86) |
| optimized: the last ``n % 8`` elements | ``double(x) / double(s)`` | half away from zero | the same function's scalar tail |

**DEQUANTIZE** (int8/uint8/int16 to float32): ``float32((q - Z) * s)`` (exact integer
difference, one rounding) for every kernel, except the optimized kernel's 8-wide blocks
(int8, uint8 per-tensor), which compute ``float32(q*s) - float32(Z*s)`` (two roundings).

**Specials** (NaN, $\\pm\\infty$, $|v| \\ge 2^{31}$), as measured on x86-64:

* reference and optimized: the C cast ``(int32)`` gives INT32_MIN (``cvttss2si``/
  ``cvtps2dq``); the zero point is then added with int32 wrap-around, so NaN, $\\pm\\infty$
  and huge values become $q_{min}$ when $Z \\ge 0$ and $q_{max}$ when $Z < 0$ (int16:
  $-32768$ / $32767$). Also a finite $v$ just below $2^{31}$ wraps when $Z$ is added.
  ARM's conversions saturate instead (NaN to 0): not modelled (read in the ISA manual, not run).
* xnnpack: NaN and $+\\infty$ go to $q_{max}$, $-\\infty$ to $q_{min}$; with FTZ/DAZ a
  subnormal $x$ counts as 0, and a scale above $2^{126}$ (subnormal reciprocal) maps
  every finite $x$ to $Z$ and $\\pm\\infty$ to $q_{max}$.

**What the interpreter refuses** (LiteRT 2.3.0), refused here with the same meaning:
a DEQUANTIZE int16 zero point other than 0 (Prepare error; QUANTIZE to int16 accepts any
zero point and applies it); per-channel int16 DEQUANTIZE and per-channel 4-bit QUANTIZE
(Eval error); a subnormal scale under XNNPACK (DEQUANTIZE fails to prepare, QUANTIZE
crashes the process). An empty per-channel tensor crashes LiteRT 2.3.0
(``PerChannelQuantize`` / ``PerChannelDequantize`` loop once over nothing); refquant
returns the empty result.

Per-channel parameters: as in the flatbuffer, a scale with more than one element is
per-channel along ``axis`` (``quantized_dimension``, default 0); a one-element scale is
per-tensor; a one-element zero point is shared by every channel.

Op-level functions (``fully_connected``, ``conv2d``, ``depthwise_conv2d``, ``add``, ``mul``,
``average_pool2d``, ``max_pool2d``, ``mean``, ``requantize`` (QUANTIZE from an integer tensor),
``softmax``, ``logistic``, ``tanh``) bind the kernels of :mod:`refquant.kernels` per ``kernel``;
which requantization, multiplier derivation and activation clamp each kernel uses is tabled in
:mod:`refquant.backends._tflite_ops` (weights, int8 and 16x8), :mod:`refquant.backends._tflite_ops_misc`
(weight-free ops) and :mod:`refquant.backends._tflite_ops_act` (SOFTMAX, LOGISTIC, TANH).

**16x8 mode** (int16 activations with zero point 0, int8 weights, int64 bias): FULLY_CONNECTED,
CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D, SOFTMAX, LOGISTIC, TANH,
QUANTIZE and DEQUANTIZE take int16 tensors, and ``requantize`` converts between int8 and int16
tensors. XNNPACK takes no int16 node: ``kernel="xnnpack"`` returns the builtin kernels' result there.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import IntFormat, get_format
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..qparams import QParams, make_qparams
from ..quantization import dequantize as _dequantize
from ..quantization import quantize as _quantize
from ._tflite_ops import KERNELS, PROFILE_OF_KERNEL, conv2d, depthwise_conv2d, fully_connected, kernel_profile
from ._tflite_ops_act import logistic, softmax, tanh
from ._tflite_ops_misc import add, average_pool2d, max_pool2d, mean, mul, requantize
from ._tflite_params import activation_qparams, bias_quantize, symmetric_weight_quantize

__all__ = ["KERNELS", "PROFILE_OF_KERNEL", "activation_qparams", "symmetric_weight_quantize", "bias_quantize", "QUANTIZE_DTYPES", "DEQUANTIZE_DTYPES", "quantize", "dequantize",
           "fully_connected", "conv2d", "depthwise_conv2d", "add", "mul", "average_pool2d", "max_pool2d", "mean",
           "requantize", "softmax", "logistic", "tanh"]

QUANTIZE_DTYPES = ("int8", "uint8", "int16", "int4", "uint4")
DEQUANTIZE_DTYPES = ("int8", "uint8", "int16")


def _qparams(scale, zero_point, fmt: IntFormat, axis, shape) -> QParams:
    """Validate the tensor's (scale, zero point) as a flatbuffer holds them; return QParams.

    A scale with more than one element is per-channel along ``axis``; otherwise per-tensor.
    """
    V.as_int(axis, "axis")  # checked even where a per-tensor scale ignores it
    s = V.as_scale(scale, "scale")  # float32, finite, > 0
    z = V.as_zero_point(zero_point, fmt, "zero_point")  # int64, integer-valued, in range
    if s.ndim > 1 or z.ndim > 1:
        bad, name = (s, "scale") if s.ndim > 1 else (z, "zero_point")
        raise ShapeError(f"{name} must be a scalar or 1-D, got shape {bad.shape}")
    if s.size == 1:
        if z.size != 1:
            raise ShapeError(f"zero_point must be a scalar for a per-tensor scale, got shape {z.shape}")
        return make_qparams(s.reshape(()), z.reshape(()), fmt)
    if len(shape) == 0:
        raise ShapeError(f"a per-channel scale (shape {s.shape}) needs an input of rank >= 1, got a scalar")
    ax = V.normalize_axis(axis, len(shape))
    if z.size == 1:
        z = z.reshape(())  # TFLite repeats a single zero point over the channels
    elif z.shape != s.shape:
        raise ShapeError(f"zero_point must be a scalar or have the scale's shape {s.shape}, got {z.shape}")
    if shape[ax] != s.size:
        raise ShapeError(f"scale must have {shape[ax]} elements to match x.shape[{ax}] = {shape[ax]}, "
                         f"got {s.size}")
    return make_qparams(s, z, fmt, axis=ax)


def quantize(x, scale, zero_point, *, dtype="int8", axis=0, kernel="reference") -> np.ndarray:
    """TFLite QUANTIZE: $q = \\mathrm{clamp}(\\mathrm{round}(x / s) + Z,\\ q_{min},\\ q_{max})$.

    The division, rounding and specials depend on ``kernel`` (table in the module
    docstring). Mirrors ``tflite/kernels/quantize.cc`` with float32 input.

    Args:
        x: float array of any shape (empty and 0-d allowed). The op's input is float32:
            float64/float16 values are first rounded to float32 (RNE). NaN and
            $\\pm\\infty$ are data: they map as the kernel maps them.
        scale: float32 scale $s > 0$ (scalar or 1-element: per-tensor), or a 1-D array of
            ``x.shape[axis]`` scales (per-channel; int8, uint8, int16 only).
        zero_point: integer $Z$ in the range of ``dtype``; per-channel: a scalar or one per
            channel.
        dtype: ``"int8"``, ``"uint8"``, ``"int16"``, ``"int4"`` or ``"uint4"`` (or a NumPy
            dtype). 4-bit results are returned unpacked, one per ``int8``/``uint8``.
        axis: the quantized dimension of a per-channel scale (TFLite ``quantized_dimension``;
            negative counts from the end). Ignored for a per-tensor scale.
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        Array of ``x``'s shape and the format's dtype (``np.int8``, ``np.uint8``, ``np.int16``).

    Raises:
        QuantizationTypeError: ``x`` not a float array; zero point not an integer.
        QuantizationValueError: bad scale, zero point out of range, unknown dtype or kernel.
        ShapeError: scale / zero point shapes do not fit ``x`` and ``axis``.
        UnsupportedError: per-channel 4-bit; a subnormal scale where XNNPACK takes the op.
    """
    profile = kernel_profile(kernel)
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in QUANTIZE_DTYPES:
        raise QuantizationValueError(
            f"dtype must be one of {QUANTIZE_DTYPES} (TFLite QUANTIZE outputs), got {fmt.name!r}")
    x = V.as_float_array(x, "x")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)  # the op's float32 input tensor
    qp = _qparams(scale, zero_point, fmt, axis, x32.shape)
    if qp.axis is not None and fmt.bits == 4:
        raise UnsupportedError(f"TFLite has no per-channel QUANTIZE to {fmt.name} (Eval error); pass a scalar scale")
    return _quantize(x32, qp, profile)  # the profile picks the kernel by format, granularity, size, rank


def dequantize(q, scale, zero_point, *, axis=0, kernel="reference") -> np.ndarray:
    """TFLite DEQUANTIZE: $r = s\\,(q - Z)$, float32.

    ``float32((q - Z) * s)`` with the exact integer difference and one rounding, except the
    optimized kernel's 8-wide blocks (``float32(q*s) - float32(Z*s)``, int8/uint8
    per-tensor). Mirrors ``tflite/kernels/dequantize.cc``.

    Args:
        q: int8, uint8 or int16 array (the tensor's type; any shape, empty and 0-d allowed).
        scale: float32 scale $s > 0$, or a 1-D per-channel array (int8, uint8 only).
        zero_point: integer $Z$ in the range of ``q``'s dtype; **0 for int16** (TFLite
            refuses other values); per-channel: a scalar or one per channel.
        axis: the quantized dimension of a per-channel scale (default 0).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"``.

    Returns:
        float32 array of ``q``'s shape.

    Raises:
        QuantizationTypeError: ``q`` is not an int8/uint8/int16 array; zero point not an integer.
        QuantizationValueError: bad scale, zero point out of range (or nonzero for int16),
            unknown kernel.
        ShapeError: scale / zero point shapes do not fit ``q`` and ``axis``.
        UnsupportedError: per-channel int16; a subnormal scale where XNNPACK takes the op.
    """
    profile = kernel_profile(kernel)
    q = V.as_int_array(q, "q")
    if q.dtype.name not in DEQUANTIZE_DTYPES:
        raise QuantizationTypeError(
            f"q must have dtype {', '.join(DEQUANTIZE_DTYPES)} (TFLite DEQUANTIZE inputs), got {q.dtype}")
    fmt = get_format(q.dtype)
    qp = _qparams(scale, zero_point, fmt, axis, q.shape)
    if fmt.name == "int16" and np.any(qp.zero_point != 0):
        raise QuantizationValueError(
            f"zero_point must be 0 for int16 (TFLite DEQUANTIZE), got {int(qp.zero_point[qp.zero_point != 0].flat[0])}")
    if qp.axis is not None and fmt.name == "int16":
        raise UnsupportedError("TFLite has no per-channel DEQUANTIZE of int16 (Eval error); pass a scalar scale")
    return _dequantize(q, qp, profile)  # the profile picks the kernel by format, granularity, size, rank
