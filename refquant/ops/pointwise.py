r"""The weight-free quantized ops under a profile: add, pooling, softmax, sigmoid.

Each op reads the profile's :class:`~refquant.specs.PointwiseSpec` and calls the kernel it
names. Where a spec's kernels decline an input (a dtype they do not list, scale ratios or a
rank the ``rescale`` add refuses, a max pool outside ``max_pool_when``), the spec's
``fallback`` runs it, as a delegate hands such nodes back to the builtin kernels; with no
fallback the op raises :class:`~refquant.errors.UnsupportedError`.

Internal convention: integer codes of one dtype, float32 scalar scales, int zero points,
fused activations by name (``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"``).
Inputs are validated by the faces; these functions trust them, and check only the names that
choose the arithmetic (the profile and the fused activation).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, UnsupportedError
from ..kernels import elementwise as ew
from ..kernels import lut as klut
from ..kernels import pool as kpool
from ..kernels import softmax as ksoftmax
from ..kernels.elementwise_blocks import float_add_blocks
from ..kernels.elementwise_float import float_add, float_mul
from ..kernels.elementwise_pot import pot_add, pot_add_params
from ..kernels.multiplier import ACTIVATION_FLOAT_RANGES, activation_bounds, activation_range, real_multiplier
from ..kernels.requant import requantize
from ..profiles import as_profile
from ..specs import PointwiseSpec

__all__ = ["add", "mul", "average_pool2d", "max_pool2d", "global_average_pool", "softmax", "logistic", "tanh"]


def _spec(profile) -> PointwiseSpec:
    return as_profile(profile).pointwise


def _activation(activation):
    """The fused activation's name, checked (a kernel that fuses none or only a ReLU compares it)."""
    return V.as_choice(activation, "activation", tuple(ACTIVATION_FLOAT_RANGES))


def _bounds(spec: PointwiseSpec, activation, scale, zero_point, dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return activation_bounds(activation, scale, zero_point, int(info.min), int(info.max),
                             rounding=spec.activation_bounds)


def _add_kernel(spec: PointwiseSpec, a, b, a_scale, b_scale, y_scale):
    """(spec, kernel, params) that run this add: the first spec along the fallback chain that takes it."""
    why = ""
    while spec is not None:
        kernel = spec.add_kernel(a.dtype)
        if kernel == "rescale":
            shape = np.broadcast_shapes(a.shape, b.shape)
            try:
                params = ew.rescale_add_params(a_scale, b_scale, y_scale)
            except QuantizationValueError as err:
                why = f"the rescale add declines these scales ({err})"
            else:
                if spec.add_max_rank is not None and len(shape) > spec.add_max_rank:
                    why = f"the rescale add declines rank {len(shape)} > {spec.add_max_rank}"
                elif 0 in shape:
                    why = f"the rescale add declines an empty tensor (shape {shape})"
                else:
                    return spec, kernel, params
        elif kernel == "not_modelled":
            raise UnsupportedError(f"this profile's {a.dtype} add runs a kernel refquant does not model"
                                   + (f" ({why}; the fallback kernel runs it)" if why else ""))
        elif kernel is not None:
            return spec, kernel, None
        spec = spec.fallback
    raise UnsupportedError(f"this profile has no {a.dtype} add" + (f" ({why})" if why else ""))


def add(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, y_scale, y_zero_point: int, *, profile,
        activation=None, num_threads: int = 1) -> np.ndarray:
    """Quantized element-wise add: $y \\approx \\mathrm{clamp}(\\mathrm{round}((S_a(a - Z_a) + S_b(b - Z_b)) / S_y) + Z_y)$.

    The kernel is the profile's (:data:`refquant.modes.ADD_KERNELS`): the fixed-point pipeline
    with inputs shifted left 20 (8-bit) or 15 (16-bit), the ``rescale`` add, float32 multiply-adds,
    float32 in SIMD blocks and tail, or power-of-two multipliers.

    Args:
        a, b: Codes of one dtype (int8, uint8 or int16), broadcastable (``float32_blocks`` and
            ``pot_shift``: one shape).
        a_scale, b_scale, y_scale: float32 scalars. Zero points: ints.
        profile: A profile or its name.
        activation: A fused activation name; ``float32_blocks`` takes ``None`` or ``"RELU"``
            (a ReLU on the float sum).
        num_threads: ``float32_blocks`` only: the thread count that splits long ranges.

    Returns:
        Codes of the broadcast shape and ``a``'s dtype.

    Raises:
        UnsupportedError: The profile's backend has no modelled kernel for this add.
    """
    spec, kernel, params = _add_kernel(_spec(profile), a, b, a_scale, b_scale, y_scale)
    dt = a.dtype.type
    if kernel == "float32_blocks":
        if _activation(activation) not in (None, "NONE", "RELU"):
            raise UnsupportedError(f"this add kernel fuses only a ReLU, got activation {activation!r}")
        return float_add_blocks(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point,
                                relu=activation == "RELU", num_threads=num_threads)
    if kernel == "float32_fma":
        if _activation(activation) not in (None, "NONE"):
            raise UnsupportedError(f"this add kernel fuses no activation, got {activation!r}")
        return float_add(a, a_scale, dt(a_zero_point), b, b_scale, dt(b_zero_point), y_scale, dt(y_zero_point))
    lo, hi = _bounds(spec, activation, y_scale, y_zero_point, a.dtype)
    if kernel == "pot_shift":
        if lo >= hi:
            raise UnsupportedError(f"this add kernel needs output_min < output_max, got [{lo}, {hi}]")
        return pot_add(a, a_zero_point, b, b_zero_point, y_zero_point, pot_add_params(a_scale, b_scale, y_scale),
                       lo=lo, hi=hi)
    if kernel == "rescale":
        return ew.rescale_add(a, dt(a_zero_point), b, dt(b_zero_point), dt(y_zero_point), params, act_min=lo,
                              act_max=hi)
    shift = 20 if kernel == "fixed_point_shift20" else 15
    p = ew.fixed_point_add_params(a_scale, b_scale, y_scale, left_shift=shift)
    return ew.fixed_point_add(a, dt(a_zero_point), b, dt(b_zero_point), dt(y_zero_point), p, act_min=lo, act_max=hi)


def mul(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, y_scale, y_zero_point: int, *, profile,
        activation=None) -> np.ndarray:
    """Quantized element-wise multiply: $y \\approx \\mathrm{clamp}(\\mathrm{round}(S_a S_b (a - Z_a)(b - Z_b) / S_y) + Z_y)$.

    The kernel is the profile's (:data:`refquant.modes.MUL_KERNELS`): the fixed-point multiplier
    of TFLite's reference MUL (double rounding), the exact product requantized in float32 (the
    XNNPACK delegate), or float32 on the dequantized codes (ONNX Runtime's QLinearMul). The fused
    activation's bounds are TFLite's (:func:`refquant.kernels.multiplier.activation_range`) for the
    integer kernels, as measured for both TFLite kernel sets.

    Args:
        a, b: Codes of one dtype (int8 or uint8), broadcastable.
        a_scale, b_scale, y_scale: float32 scalars. Zero points: ints.
        profile: A profile or its name.
        activation: A fused activation name (``float32_fma`` takes none).

    Returns:
        Codes of the broadcast shape and ``a``'s dtype.

    Raises:
        UnsupportedError: The profile's backend has no modelled kernel for this multiply.
    """
    spec = _spec(profile)
    kernel = dict(spec.mul).get(a.dtype.name)
    if kernel in (None, "not_modelled"):
        raise UnsupportedError(f"this profile's {a.dtype} multiply runs a kernel refquant does not model")
    dt = a.dtype.type
    if kernel == "float32_fma":
        if _activation(activation) not in (None, "NONE"):
            raise UnsupportedError(f"this multiply kernel fuses no activation, got {activation!r}")
        return float_mul(a, a_scale, dt(a_zero_point), b, b_scale, dt(b_zero_point), y_scale, dt(y_zero_point))
    info = np.iinfo(a.dtype)
    lo, hi = activation_range(activation, y_scale, y_zero_point, int(info.min), int(info.max))
    if kernel == "fixed_point":
        q, shift = ew.fixed_point_mul_params(a_scale, b_scale, y_scale)
        return ew.fixed_point_mul(a, dt(a_zero_point), b, dt(b_zero_point), dt(y_zero_point), q, shift, act_min=lo,
                                  act_max=hi)
    prod = (a.astype(np.int64) - a_zero_point) * (b.astype(np.int64) - b_zero_point)  # exact: |prod| < 2^16
    m = real_multiplier(a_scale, b_scale, y_scale, derivation="f32_ab_div_c")
    return requantize(prod.astype(np.int32), m, y_zero_point, lo, hi, mode="float32_rne", dtype=a.dtype)


def average_pool2d(x, x_scale, x_zero_point: int, filter_size, *, profile, stride=None, padding="VALID",
                   activation=None) -> np.ndarray:
    """AVERAGE_POOL_2D on NHWC codes: the rounded mean of the valid taps, then the activation
    clamp (:func:`refquant.kernels.pool.average_pool2d`); output parameters are the input's."""
    spec = _spec(profile)
    while not spec.average_pool and spec.fallback is not None:
        spec = spec.fallback
    lo, hi = _bounds(spec, activation, x_scale, x_zero_point, x.dtype)
    return kpool.average_pool2d(x, filter_size, stride=stride, padding=padding, act_min=lo, act_max=hi)


def _takes_max_pool(spec: PointwiseSpec, dtype, f, s) -> bool:
    if spec.max_pool_when == "always":
        return True
    return (np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.uint8)) and s[0] <= f[0] and s[1] <= f[1]
            and not (tuple(f) == (1, 1) and max(s) > 1))


def max_pool2d(x, x_scale, x_zero_point: int, filter_size, *, profile, stride=None, padding="VALID",
               activation=None) -> np.ndarray:
    """MAX_POOL_2D on NHWC codes: the maximum of the valid taps, then the activation clamp, its
    bounds from the first spec along the fallback chain that takes the pool."""
    spec = _spec(profile)
    f = (filter_size, filter_size) if np.ndim(filter_size) == 0 else tuple(filter_size)
    s = f if stride is None else ((stride, stride) if np.ndim(stride) == 0 else tuple(stride))
    while not _takes_max_pool(spec, x.dtype, f, s) and spec.fallback is not None:
        spec = spec.fallback
    lo, hi = _bounds(spec, activation, x_scale, x_zero_point, x.dtype)
    return kpool.max_pool2d(x, f, stride=s, padding=padding, act_min=lo, act_max=hi)


def global_average_pool(x, x_scale, x_zero_point: int, y_scale, y_zero_point: int, *, profile,
                        channels_last: bool = False) -> np.ndarray:
    """Global average pool over the spatial axes, in the profile's kernel
    (:data:`refquant.modes.GLOBAL_POOL_KERNELS`):

    * ``float_requant``: ONNX Runtime's QLinearGlobalAveragePool, float32 requantization to
      ``(y_scale, y_zero_point)`` (:func:`refquant.kernels.pool.global_average_pool`);
    * ``mean_fixed_point`` / ``mean_float32``: TFLite's MEAN (what its converter writes for a global
      average pool) on the builtin kernels / the XNNPACK delegate
      (:func:`refquant.kernels.pool.mean_fixed_point`, :func:`refquant.kernels.pool.mean_float32`);
    * ``average_pool``: TFLite's AVERAGE_POOL_2D with the filter covering the plane
      (:func:`refquant.kernels.pool.average_pool2d`), output parameters = input parameters;
    * ``mean_codes_rne`` / ``mean_offset_codes_rne``: PyTorch's ``adaptive_avg_pool2d(q, 1)`` on
      fbgemm / qnnpack (:func:`refquant.kernels.pool.mean_codes_rne`, the mean of the codes or of
      the codes minus the zero point), output parameters = input parameters.

    Args:
        x: int8/uint8 codes ``(N, C, H, W)`` (or ``(N, H, W, C)`` with ``channels_last``).
        x_scale, x_zero_point, y_scale, y_zero_point: Parameters (the last two must equal the
            first two for the kernels that keep them).
        profile: A profile or its name.
        channels_last: Layout flag.

    Returns:
        ``(N, C, 1, 1)`` codes for ``float_requant`` (``(N, 1, 1, C)`` channels-last), as ONNX
        Runtime returns them; ``(N, C)`` for the others.

    Raises:
        UnsupportedError: Output parameters differ from the input's for a kernel that keeps them.
    """
    spec = _spec(profile)
    kind = spec.global_average_pool
    dt = x.dtype.type
    if kind == "float_requant":
        return kpool.global_average_pool(x, x_scale, dt(x_zero_point), y_scale, dt(y_zero_point),
                                         channels_last=channels_last)
    if kind in ("mean_fixed_point", "mean_float32"):
        fn = kpool.mean_fixed_point if kind == "mean_fixed_point" else kpool.mean_float32
        return fn(x, x_scale, x_zero_point, y_scale, y_zero_point, channels_last=channels_last)
    if np.float32(x_scale) != np.float32(y_scale) or int(x_zero_point) != int(y_zero_point):
        raise UnsupportedError(f"this profile's global average pool keeps the input's parameters: y_scale and "
                               f"y_zero_point must equal x_scale and x_zero_point, got ({y_scale!r}, {y_zero_point}) "
                               f"and ({x_scale!r}, {x_zero_point})")
    if kind == "mean_codes_rne":
        return kpool.mean_codes_rne(x, channels_last=channels_last)
    if kind == "mean_offset_codes_rne":
        return kpool.mean_codes_rne(x, channels_last=channels_last, zero_point=int(x_zero_point))
    nhwc = x if channels_last else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = average_pool2d(nhwc, x_scale, x_zero_point, nhwc.shape[1:3], profile=profile)
    return y.reshape(y.shape[0], y.shape[-1])


def softmax(x, x_scale, beta=1.0, *, profile) -> np.ndarray:
    """Softmax over the last axis, output scale 1/256 and zero point -128 (int8) or 0 (uint8):
    gemmlowp fixed point or a float32 exp table, as the profile says."""
    if _spec(profile).softmax == "fixed_point":
        return ksoftmax.softmax_fixed_point(x, ksoftmax.softmax_fixed_point_params(x_scale, beta))
    return ksoftmax.softmax_lut(x, ksoftmax.softmax_exp_table(x_scale, beta))


def logistic(x, x_scale, x_zero_point: int, y_scale=None, y_zero_point=None, *, profile) -> np.ndarray:
    """Sigmoid through a 256-entry table built as the profile says, looked up by byte.

    ``float_table_rhaz`` and ``double_table_rne`` use the fixed output scale 1/256 and zero
    point -128 (int8) or 0 (uint8); ``rational_float32`` takes ``y_scale`` and ``y_zero_point``.
    """
    kind = _spec(profile).logistic
    if kind == "rational_float32":
        if y_scale is None or y_zero_point is None:
            raise QuantizationValueError("y_scale and y_zero_point are required for this profile's sigmoid")
        dt = x.dtype.type
        table = klut.rational_logistic_lut(x_scale, dt(x_zero_point), y_scale, dt(y_zero_point), dtype=x.dtype)
    elif kind == "double_table_rne":
        table = klut.logistic_lut_double_rne(x_scale, x_zero_point, dtype=x.dtype)
    else:
        table = klut.logistic_lut(x_scale, x_zero_point, dtype=x.dtype)
    return klut.apply_lut(x, table)


def tanh(x, x_scale, x_zero_point: int, y_scale, y_zero_point: int, *, profile) -> np.ndarray:
    """Tanh through a 256-entry table of float32 ``tanhf``, rounded half away from zero, looked up
    by byte (:func:`refquant.kernels.lut.tanh_lut`); TFLite's TANH for every kernel set.

    Raises:
        UnsupportedError: The profile's backend has no modelled tanh.
    """
    if _spec(profile).tanh == "not_modelled":
        raise UnsupportedError("this profile's tanh runs a kernel refquant does not model")
    return klut.apply_lut(x, klut.tanh_lut(x_scale, x_zero_point, y_scale, y_zero_point, dtype=x.dtype))
