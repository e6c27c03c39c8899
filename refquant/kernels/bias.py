r"""Bias handling of quantized linear layers, per a profile's ``bias`` field (runtime helpers).

| ``Profile.bias`` | what happens to a bias $b_c$ | function |
|---|---|---|
| ``"int32"`` | an int32 $b_q$ (scale $S_x S_w[c]$, zero point 0) is added to the accumulator | :func:`add_bias` |
| ``"int32"`` / ``"int64"`` of a 16x8 layer | added in the accumulator's width, wrapping (TFLite's ``acc += bias``) | :func:`add_bias_wrapping` |
| ``"float_over_act_times_w_scale"`` | fbgemm: the float bias joins the float-converted accumulator as $b_c / (S_x S_w[c])$ | :func:`float_bias_accumulator` |
| ``"runtime_quantized"`` | qnnpack: quantized at run time to int32, then added | :func:`quantize_bias_runtime`, :func:`add_bias` |

Also qnnpack's output stage with its int16-saturating zero-point add
(:func:`add_zero_point_sat16`). The requantization itself is :mod:`.requant`.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, INT32_MIN, get_format, wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..quantization import fma_f32
from ._checks import check_on_overflow, finish_int64, int_scalar

__all__ = ["add_bias", "add_bias_wrapping", "float_bias_accumulator", "quantize_bias_runtime",
           "add_zero_point_sat16"]

_F32 = np.float32




def _int32_values(v, name: str) -> np.ndarray:
    """An integer array whose values fit int32 (any integer dtype; compared exactly)."""
    a = V.asarray(v, name, kinds=None, what="an integer array")
    if a.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    bad = V.first_outside(a, INT32_MIN, INT32_MAX)
    if bad is not None:
        raise QuantizationValueError(f"{name} must hold int32 values, got {bad}")
    return a


def _along_axis(v: np.ndarray, name: str, a: np.ndarray, axis: int) -> np.ndarray:
    """A scalar or ``(C,)`` parameter shaped to broadcast along ``axis`` of ``a`` (C = a.shape[axis])."""
    if v.ndim > 1:
        raise ShapeError(f"{name} must be a scalar or 1-D (per channel), got shape {v.shape}")
    if v.ndim == 1 and v.size != 1:
        if a.ndim == 0 or not -a.ndim <= axis < a.ndim or a.shape[axis] != v.size:
            raise ShapeError(f"{name} must have acc.shape[axis] elements, got {v.size} for acc shape {a.shape} "
                             f"and axis {axis}")
        shape = [1] * a.ndim
        shape[axis] = v.size
        return v.reshape(shape)
    return v.reshape(()) if v.size == 1 else v


def add_bias(acc, bias, *, axis=-1, on_overflow="warn"):
    """$\\mathrm{acc} + b_c$: an int32 bias added to int32 accumulators (ONNX, TFLite, qnnpack).

    The sum is formed exactly; a result outside int32 follows the kernels' overflow rule
    (``on_overflow="warn"``: warn and return the wrapped value; ``"raise"``; see ``_checks``).

    Args:
        acc: int32 array.
        bias: int32 scalar or ``(C,)`` along ``axis``.
        axis: Channel axis of ``acc`` for a 1-D bias.
        on_overflow: ``"warn"`` or ``"raise"``.

    Returns:
        int32 array of ``acc``'s shape.
    """
    a = _int32_values(acc, "acc")
    b = _int32_values(bias, "bias")
    check_on_overflow(on_overflow)
    axis = V.as_int(axis, "axis")
    if b.ndim > 1:
        raise ShapeError(f"bias must be a scalar or 1-D, got shape {b.shape}")
    if b.ndim == 1 and b.size != 1:
        if a.ndim == 0 or not -a.ndim <= axis < a.ndim or a.shape[axis] != b.size:
            raise ShapeError(f"bias must have acc.shape[axis] elements, got {b.size} for acc shape {a.shape}")
        shape = [1] * a.ndim
        shape[axis] = b.size
        b = b.reshape(shape)
    s = a.astype(np.int64) + b.astype(np.int64).reshape(b.shape if b.ndim != 1 or b.size != 1 else ())
    return finish_int64(s, "exact", on_overflow, "add_bias")


def add_bias_wrapping(acc, bias, *, bits: int, axis=-1) -> np.ndarray:
    """$(\\mathrm{acc} + b_c) \\bmod 2^{\\text{bits}}$ in two's complement: the ``acc += bias[c]`` of a
    ``bits``-wide C accumulator (TFLite's 16x8 kernels: an int64, or an int32 with an int32 bias).

    Args:
        acc: Integer array whose values fit ``bits`` bits (the accumulator, already wrapped).
        bias: Integer scalar or ``(C,)`` along ``axis`` whose values fit ``bits`` bits.
        bits: 32 or 64.
        axis: Channel axis of ``acc`` for a 1-D bias.

    Returns:
        int64 array of ``acc``'s shape (values in the ``bits``-bit range).
    """
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)) or int(bits) not in (32, 64):
        raise QuantizationValueError(f"bits must be 32 or 64, got {V.describe(bits)}")
    a = V.asarray(acc, "acc", kinds="iu", what="an integer array")
    b = _along_axis(V.asarray(bias, "bias", kinds="iu", what="an integer array"), "bias", a, V.as_int(axis, "axis"))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for v, name in ((a, "acc"), (b, "bias")):
        bad = V.first_outside(v, lo, hi)
        if bad is not None:
            raise QuantizationValueError(f"{name} must hold int{bits} values, got {bad}")
    with np.errstate(over="ignore"):
        s = a.astype(np.int64) + b.astype(np.int64)  # NumPy int64 arrays wrap at 2^64, as the C sum
    return s if bits == 64 else wrap_int32(s)


def float_bias_accumulator(acc, bias, act_times_w_scale, *, axis=-1, reciprocal=False, fused=True):
    r"""fbgemm's float bias: the accumulator as float32 with $b_c / (S_x S_w[c])$ added.

    | path | ``raw_f`` | fbgemm code |
    |---|---|---|
    | ``reciprocal=False`` (per-channel; also the generic C path) | $\mathrm{fl}(\mathrm{fl}(\mathrm{acc}) + \mathrm{fl}(b_c / a_c))$ | ``_mm256_div_ps`` then ``add`` |
    | ``reciprocal=True`` (AVX2 per-*tensor*) | $\mathrm{fma}(b_c, r, \mathrm{fl}(\mathrm{acc}))$, $r = \mathrm{fl}(1.0 / \mathrm{double}(a))$ | ``add(cvt(x), mul(bias, rcp))``, contracted to one FMA by GCC |
    | ``reciprocal=True, fused=False`` | $\mathrm{fl}(\mathrm{fl}(\mathrm{acc}) + \mathrm{fl}(b_c r))$ | the same source without FMA contraction (not seen here) |

    with $a_c$ = ``act_times_w_scale``. Pass the result to :func:`~refquant.kernels.requant.requantize`
    with ``mode="float32_rne"`` and the float32 multiplier ``act_times_w_scale / output_scale``:
    that is fbgemm's ``cvtps2dq(raw_f * multiplier) + zp`` and clamp. Measured on torch 2.13
    (``nnq.Linear``, engine ``fbgemm``, x86-64 AVX2): per-channel 0 mismatches for the division,
    per-tensor 0 for the FMA form, on outputs selected where the candidate forms disagree
    (``tests/test_conformance_kernels_misc.py``). A separately rounded ``bias * rcp`` (as the
    source suggests) is ``fused=False``, which does not match this build.

    Args:
        acc: int32 array (``raw``: zero-point corrections already applied).
        bias: float array ``(C,)`` or scalar (float32, as PyTorch stores it).
        act_times_w_scale: ``(float)in_scale * w_scale[c]`` as float32, scalar or ``(C,)``.
        axis: Channel axis of ``acc`` for 1-D parameters.
        reciprocal: Use the per-tensor reciprocal path (a scalar ``act_times_w_scale``).
        fused: With ``reciprocal``: one FMA (default) or a multiply and an add.

    Returns:
        float32 array of ``acc``'s shape.
    """
    a = V.asarray(acc, "acc", kinds=None, what="an integer array")
    if a.dtype.kind not in "iu":
        raise QuantizationTypeError(f"acc must be an integer array, got dtype {a.dtype}")
    with np.errstate(over="ignore"):  # a float64 bias past float32 becomes inf, as the float32 parameter would
        b = V.as_float_array(bias, "bias", allow_int=True).astype(_F32)
    if b.size == 0:
        raise ShapeError(f"bias must not be empty, got shape {b.shape}")
    s = V.as_scale(act_times_w_scale, "act_times_w_scale").astype(_F32)
    axis = V.as_int(axis, "axis")
    reciprocal, fused = V.as_flag(reciprocal, "reciprocal"), V.as_flag(fused, "fused")
    if reciprocal and s.size != 1:
        raise ShapeError(f"reciprocal=True is the per-tensor path: act_times_w_scale must be a scalar, got {s.shape}")

    def along_axis(v, name="bias"):
        return _along_axis(v, name, a, axis)

    acc32 = a.astype(_F32)  # cvtdq2ps: RNE for |acc| > 2^24
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not reciprocal:
            return (acc32 + along_axis(b) / along_axis(s, "act_times_w_scale")).astype(_F32)
        rcp = _F32(1.0 / float(s.reshape(())))  # (float)(1.0 / (double)act_times_w_scale)
        bb = np.broadcast_to(along_axis(b), acc32.shape).astype(_F32)
        if fused:
            return fma_f32(bb, np.broadcast_to(rcp, acc32.shape), acc32)
        return (acc32 + (bb * rcp).astype(_F32)).astype(_F32)


def add_zero_point_sat16(r, output_zero_point, dtype, qmin=None, qmax=None):
    """qnnpack's output stage: ``packs_epi32`` (int16 saturation), ``adds_epi16(zp)`` (saturating),
    ``packus_epi16``/``packs_epi16`` (8-bit saturation), then ``min``/``max`` with the output range.

    $$ y = \\operatorname{clamp}\\big(\\mathrm{sat}_8(\\mathrm{sat}_{16}(\\mathrm{sat}_{16}(r) + Z_y)),\\;
    q_{min}, q_{max}\\big) $$

    For 8-bit outputs and $Z_y$ in the format's range this always equals the plain
    $\\operatorname{clamp}(r + Z_y)$ (a saturated int16 is still beyond every 8-bit bound with the
    same sign); it is kept as the transcription of PyTorch ``q8gemm/4x4c2-sse2.c`` and tested.

    Args:
        r: Rounded, not yet offset integers (int32 array).
        output_zero_point: $Z_y$ (int).
        dtype: ``"uint8"`` or ``"int8"``.
        qmin, qmax: Output range (default the dtype's).

    Returns:
        Array of ``dtype``.
    """
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in ("uint8", "int8"):
        raise QuantizationValueError(f"dtype must be uint8 or int8, got {fmt.name}")
    zp = V.as_int_scalar(int_scalar(output_zero_point, "output_zero_point"), "output_zero_point",
                         lo=fmt.qmin, hi=fmt.qmax)
    lo = fmt.qmin if qmin is None else int_scalar(qmin, "qmin")
    hi = fmt.qmax if qmax is None else int_scalar(qmax, "qmax")
    if not fmt.qmin <= lo <= hi <= fmt.qmax:
        raise QuantizationValueError(
            f"qmin <= qmax must lie in [{fmt.qmin}, {fmt.qmax}] for {fmt.name}, got [{lo}, {hi}]")
    v = np.clip(_int32_values(r, "r").astype(np.int64), -32768, 32767)  # packs_epi32
    v = np.clip(v + zp, -32768, 32767)  # adds_epi16
    v = np.clip(v, fmt.qmin, fmt.qmax)  # packus_epi16 / packs_epi16
    return np.clip(v, lo, hi).astype(fmt.dtype)


def quantize_bias_runtime(bias, input_scale, weight_scale) -> np.ndarray:
    """Quantize a float bias to int32 at run time as PyTorch's qnnpack engine does.

    $$ b_q = \\mathrm{RNE}\\big(b \\cdot \\mathrm{fl}(1 / \\mathrm{fl}(S_w S_x))\\big) $$

    all in float32: the product $S_w S_x$, its reciprocal ``1.f / (w_s * in_s)`` and the
    product with the bias each round once; ``rint`` (RNE). Values past int32 saturate,
    NaN gives INT32_MIN (the qint32 quantizer's behaviour). Matched
    ``nnq.Linear`` on the qnnpack engine (``tests/test_conformance_pytorch_ops.py``).
    The result is added to the int32 accumulator like any int32 bias
    (:func:`add_bias`).

    Args:
        bias: float array ``(C,)`` (cast to float32, as PyTorch stores it).
        input_scale: $S_x$, scalar.
        weight_scale: $S_w$, scalar or ``(C,)``.

    Returns:
        int32 array of the broadcast shape of ``bias`` and ``weight_scale``.
    """
    with np.errstate(over="ignore"):
        b = V.as_float_array(bias, "bias").astype(_F32)
    sx = V.as_scalar_scale(input_scale, "input_scale")
    sw = V.as_scale(weight_scale, "weight_scale").astype(_F32)
    try:
        np.broadcast_shapes(b.shape, sw.shape)
    except ValueError:
        raise ShapeError(f"weight_scale must broadcast against bias {b.shape} (a scalar or one per channel), "
                         f"got shape {sw.shape}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        inv = (_F32(1.0) / (sw * sx).astype(_F32)).astype(_F32)
        v = np.rint((b * inv).astype(_F32)).astype(np.float64)  # RNE
    nan = np.isnan(v)
    q = np.clip(np.where(nan, 0.0, v), -2.0 ** 31, 2.0 ** 31 - 1).astype(np.int64)
    return np.where(nan, INT32_MIN, q).astype(np.int32)
