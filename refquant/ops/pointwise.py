r"""The weight-free quantized ops under a profile: add, mul, pooling, softmax, sigmoid.

MEAN and requantization have modules of their own, :mod:`refquant.ops.reduce` and
:mod:`refquant.ops.requantize`; :func:`mean` and :func:`requantize` are re-exported here.

Each op reads the profile's :class:`~refquant.specs.PointwiseSpec` and calls the kernel it
names. Where a spec's kernels decline an input (a dtype they do not list, scale ratios or a
rank the ``rescale`` add refuses, a max pool outside ``max_pool_when``), the spec's
``fallback`` runs it, as a delegate hands such nodes back to the builtin kernels; with no
fallback the op raises :class:`~refquant.errors.UnsupportedError`.

int16 codes (TFLite's 16x8 mode) run where the profile's spec lists int16 for the op
(``add``, ``mul``, ``mean``, ``requantize`` pairs, ``pool_dtypes``), or its fallback does; a
profile with no int16 kernel raises :class:`~refquant.errors.UnsupportedError` naming it.

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
from ..kernels.elementwise_add16 import fixed_point_add16_blocks
from ..kernels.elementwise_add8 import fixed_point_add8_simd
from ..kernels.elementwise_narrow import MUL_SIMD_BLOCK, fixed_point_mul_blocks
from ..kernels import softmax as ksoftmax
from ..kernels import softmax16 as ksoftmax16
from ..kernels import sigmoid16 as ksigmoid16
from ..kernels import fixedpoint16 as kfp16
from ..kernels.elementwise_blocks import float_add_blocks
from ..kernels.elementwise_float import float_add, float_mul
from ..kernels.elementwise_pot import pot_add, pot_add_params
from ..kernels.multiplier import ACTIVATION_FLOAT_RANGES, activation_bounds, activation_range, real_multiplier
from ..kernels.requant import requantize as requantize_accumulator
from ..profiles import as_profile
from ..specs import PointwiseSpec
from .reduce import mean
from .requantize import requantize

__all__ = ["add", "mul", "average_pool2d", "max_pool2d", "global_average_pool", "mean", "requantize", "softmax",
           "logistic", "tanh"]


def _spec(profile) -> PointwiseSpec:
    return as_profile(profile).pointwise


def _name(profile) -> str:
    return as_profile(profile).name


def _activation(activation):
    """The fused activation's name, checked (a kernel that fuses none or only a ReLU compares it)."""
    return V.as_choice(activation, "activation", tuple(ACTIVATION_FLOAT_RANGES))


def _bounds(spec: PointwiseSpec, activation, scale, zero_point, dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return activation_bounds(activation, scale, zero_point, int(info.min), int(info.max),
                             rounding=spec.activation_bounds)


def _add_kernel(spec: PointwiseSpec, a, b, a_scale, b_scale, y_scale, name: str = "this profile"):
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
            raise UnsupportedError(f"{name}'s {a.dtype} add runs a kernel refquant does not model"
                                   + (f" ({why}; the fallback kernel runs it)" if why else ""))
        elif kernel is not None:
            return spec, kernel, None
        spec = spec.fallback
    raise UnsupportedError(f"{name} has no {a.dtype} add" + (f" ({why})" if why else ""))


def add(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, y_scale, y_zero_point: int, *, profile,
        activation=None, num_threads: int = 1) -> np.ndarray:
    """Quantized element-wise add: $y \\approx \\mathrm{clamp}(\\mathrm{round}((S_a(a - Z_a) + S_b(b - Z_b)) / S_y) + Z_y)$.

    The kernel is the profile's (:data:`refquant.modes.ADD_KERNELS`): the fixed-point pipeline
    with inputs shifted left 20 (8-bit) or 15 (16-bit), the same in TFLite's optimized int16
    16-element blocks (``fixed_point_shift15_simd16``,
    :func:`refquant.kernels.elementwise_add16.fixed_point_add16_blocks`, for operands whose shapes
    are equal once padded with leading 1s; a broadcast runs the reference formula), TFLite's
    optimized int8 blocks placed by its broadcast dispatch (``fixed_point_shift20_simd16``,
    :func:`refquant.kernels.elementwise_add8.fixed_point_add8_simd`), the
    ``rescale`` add, float32 multiply-adds, float32 in SIMD blocks and tail, or power-of-two
    multipliers.

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
    spec, kernel, params = _add_kernel(_spec(profile), a, b, a_scale, b_scale, y_scale, f"profile {_name(profile)!r}")
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
    shift = 20 if kernel.startswith("fixed_point_shift20") else 15
    p = ew.fixed_point_add_params(a_scale, b_scale, y_scale, left_shift=shift)
    if kernel == "fixed_point_shift20_simd16":  # places its SIMD blocks as TFLite's broadcast dispatch does
        return fixed_point_add8_simd(a, a_zero_point, b, b_zero_point, y_zero_point, p, act_min=lo, act_max=hi)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if kernel == "fixed_point_shift15_simd16" and _same_padded_shape(a.shape, b.shape):  # one flat loop
        return fixed_point_add16_blocks(a.reshape(shape), b.reshape(shape), p, act_min=lo, act_max=hi)
    return ew.fixed_point_add(a, dt(a_zero_point), b, dt(b_zero_point), dt(y_zero_point), p, act_min=lo, act_max=hi)


def _same_padded_shape(a_shape, b_shape) -> bool:
    """Whether two shapes are equal once the shorter is padded with leading 1s (TFLite's
    ``ProcessBroadcastShapes``: no broadcast, the flat element-wise loop runs)."""
    rank = max(len(a_shape), len(b_shape))
    return (1,) * (rank - len(a_shape)) + tuple(a_shape) == (1,) * (rank - len(b_shape)) + tuple(b_shape)


def _mul_kernel(spec: PointwiseSpec, a, b, a_scale, b_scale, y_scale, name: str):
    """(spec, kernel) that run this multiply: the first spec along the fallback chain that takes it."""
    why = ""
    while spec is not None:
        kernel = dict(spec.mul).get(a.dtype.name)
        if kernel == "float32_requant":  # a delegate: declines some ratios and ranks
            with np.errstate(over="ignore", under="ignore"):
                ratio = float(np.float32(np.float32(np.float32(a_scale) * np.float32(b_scale)) / np.float32(y_scale)))
            rank = max(a.ndim, b.ndim)
            if not 2.0 ** -16 <= ratio < 256.0:
                why = f"the float32 multiply declines a_scale * b_scale / y_scale = {ratio!r} outside [2^-16, 256)"
            elif spec.add_max_rank is not None and rank > spec.add_max_rank:
                why = f"the float32 multiply declines rank {rank} > {spec.add_max_rank}"
            else:
                return spec, kernel
        elif kernel == "not_modelled":
            raise UnsupportedError(f"{name}'s {a.dtype} multiply runs a kernel refquant does not model"
                                   + (f" ({why}; the fallback kernel runs it)" if why else ""))
        elif kernel is not None:
            return spec, kernel
        spec = spec.fallback
    raise UnsupportedError(f"{name} has no {a.dtype} multiply" + (f" ({why})" if why else ""))


def mul(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, y_scale, y_zero_point: int, *, profile,
        activation=None) -> np.ndarray:
    """Quantized element-wise multiply: $y \\approx \\mathrm{clamp}(\\mathrm{round}(S_a S_b (a - Z_a)(b - Z_b) / S_y) + Z_y)$.

    The kernel is the profile's (:data:`refquant.modes.MUL_KERNELS`), the first along the spec's
    fallback chain that takes the operands:

    * ``fixed_point``: TFLite's reference MUL, ``MBQM((a - Z_a)(b - Z_b), q, shift) + Z_y`` with
      double rounding (:func:`refquant.kernels.elementwise.fixed_point_mul`); int8, uint8, int16
      (zero points 0), every TFLite kernel set for int16;
    * ``fixed_point_narrow16``: TFLite's optimized 8-bit MUL, the same product narrowed to int16
      in SIMD blocks before $Z_y$ is added (:mod:`refquant.kernels.elementwise_narrow`); it only
      differs where the product leaves int16, which broadcast operands (whose blocks follow the
      broadcast loops) refuse;
    * ``float32_requant``: the XNNPACK delegate, the exact product requantized in float32; it
      declines $\\mathrm{fl}(\\mathrm{fl}(S_a S_b) / S_y)$ outside $[2^{-16}, 256)$ and ranks above
      ``add_max_rank`` (the fallback runs those);
    * ``float32_fma``: ONNX Runtime's QLinearMul, float32 on the dequantized codes.

    The fused activation's bounds are TFLite's (:func:`refquant.kernels.multiplier.activation_range`)
    for the integer kernels, as measured for every TFLite kernel set.

    Args:
        a, b: Codes of one dtype (int8, uint8, or int16 where the profile lists it), broadcastable.
        a_scale, b_scale, y_scale: float32 scalars. Zero points: ints.
        profile: A profile or its name.
        activation: A fused activation name (``float32_fma`` takes none).

    Returns:
        Codes of the broadcast shape and ``a``'s dtype.

    Raises:
        UnsupportedError: The profile's backend has no modelled kernel for this multiply (named),
            or a broadcast optimized 8-bit multiply whose SIMD narrowing would change a result.
    """
    spec, kernel = _mul_kernel(_spec(profile), a, b, a_scale, b_scale, y_scale, f"profile {_name(profile)!r}")
    dt = a.dtype.type
    if kernel == "float32_fma":
        if _activation(activation) not in (None, "NONE"):
            raise UnsupportedError(f"this multiply kernel fuses no activation, got {activation!r}")
        return float_mul(a, a_scale, dt(a_zero_point), b, b_scale, dt(b_zero_point), y_scale, dt(y_zero_point))
    info = np.iinfo(a.dtype)
    lo, hi = activation_range(activation, y_scale, y_zero_point, int(info.min), int(info.max))
    if kernel == "float32_requant":
        prod = (a.astype(np.int64) - a_zero_point) * (b.astype(np.int64) - b_zero_point)  # exact: |prod| < 2^16
        m = real_multiplier(a_scale, b_scale, y_scale, derivation="f32_ab_div_c")
        return requantize_accumulator(prod.astype(np.int32), m, y_zero_point, lo, hi, mode="float32_rne", dtype=a.dtype)
    q, shift = ew.fixed_point_mul_params(a_scale, b_scale, y_scale)
    y = ew.fixed_point_mul(a, dt(a_zero_point), b, dt(b_zero_point), dt(y_zero_point), q, shift, act_min=lo,
                           act_max=hi)
    if kernel == "fixed_point":
        return y
    block = MUL_SIMD_BLOCK[a.dtype.name]  # fixed_point_narrow16
    if a.size == b.size == y.size:  # no broadcast: one flat loop, blocks from the first element
        return fixed_point_mul_blocks(a.reshape(y.shape), a_zero_point, b.reshape(y.shape), b_zero_point,
                                      y_zero_point, q, shift, block=block, act_min=lo, act_max=hi)
    a_full, b_full = np.broadcast_to(a, y.shape).copy(), np.broadcast_to(b, y.shape).copy()
    narrowed = fixed_point_mul_blocks(a_full, a_zero_point, b_full, b_zero_point, y_zero_point, q, shift, block=1,
                                      act_min=lo, act_max=hi)
    if not np.array_equal(narrowed, y):
        raise UnsupportedError(f"profile {_name(profile)!r}: a broadcast {a.dtype} multiply whose products leave int16 "
                               f"(S_a S_b / S_y too large): the SIMD narrowing of the kernel's broadcast loops is "
                               f"not modelled")
    return y


def average_pool2d(x, x_scale, x_zero_point: int, filter_size, *, profile, stride=None, padding="VALID",
                   activation=None) -> np.ndarray:
    """AVERAGE_POOL_2D on NHWC codes: the rounded mean of the valid taps, then the activation
    clamp (:func:`refquant.kernels.pool.average_pool2d`); output parameters are the input's.
    int8, uint8, or int16 where the profile's ``pool_dtypes`` list it (TFLite: the reference loop
    on every kernel set, any zero point).

    Raises:
        UnsupportedError: No spec along the profile's chain pools this dtype (named)."""
    spec = _spec(profile)
    while not (spec.average_pool and x.dtype.name in spec.pool_dtypes) and spec.fallback is not None:
        spec = spec.fallback
    _check_pool_dtype(spec, x.dtype, profile)
    lo, hi = _bounds(spec, activation, x_scale, x_zero_point, x.dtype)
    return kpool.average_pool2d(x, filter_size, stride=stride, padding=padding, act_min=lo, act_max=hi)


def _check_pool_dtype(spec: PointwiseSpec, dtype, profile) -> None:
    if np.dtype(dtype).name not in spec.pool_dtypes:
        raise UnsupportedError(f"profile {_name(profile)!r} has no {np.dtype(dtype)} pooling (it pools "
                               f"{', '.join(spec.pool_dtypes)})")


def _takes_max_pool(spec: PointwiseSpec, dtype, f, s) -> bool:
    if np.dtype(dtype).name not in spec.pool_dtypes:
        return False
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
    _check_pool_dtype(spec, x.dtype, profile)
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
        x: int8/uint8 codes ``(N, C, H, W)`` (or ``(N, H, W, C)`` with ``channels_last``); int16
            where the profile's MEAN (or pooling) takes it: TFLite's reference MEAN on every kernel set.
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
    x = V.native(np.asarray(x))
    dt = x.dtype.type
    if x.dtype == np.int16:  # TFLite 16x8: the MEAN or AVERAGE_POOL_2D the profile lists for int16
        if kind == "average_pool":
            return _global_average_pool_as_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, profile,
                                                channels_last)
        if kind not in ("mean_fixed_point", "mean_float32"):
            raise UnsupportedError(f"profile {_name(profile)!r} has no int16 global average pool")
        axes = (1, 2) if channels_last else (2, 3)
        return mean(x, x_scale, x_zero_point, y_scale, y_zero_point, axes, profile=profile)
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
    return _global_average_pool_as_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, profile, channels_last)


def _global_average_pool_as_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, profile, channels_last):
    if np.float32(x_scale) != np.float32(y_scale) or int(x_zero_point) != int(y_zero_point):
        raise UnsupportedError(f"this profile's global average pool keeps the input's parameters: y_scale and "
                               f"y_zero_point must equal x_scale and x_zero_point, got ({y_scale!r}, {y_zero_point}) "
                               f"and ({x_scale!r}, {x_zero_point})")
    nhwc = x if channels_last else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = average_pool2d(nhwc, x_scale, x_zero_point, nhwc.shape[1:3], profile=profile)
    return y.reshape(y.shape[0], y.shape[-1])


def softmax(x, x_scale, beta=1.0, *, profile) -> np.ndarray:
    """Softmax over the last axis.

    int8/uint8: output scale 1/256, zero point -128 (int8) or 0 (uint8); gemmlowp fixed point or
    a float32 exp table, as the profile says. int16 (16x8): output scale 1/32768, zero point 0,
    through TFLite's two interpolated int16 tables (:mod:`refquant.kernels.softmax16`), the one
    int16 softmax modelled (LiteRT runs it for every kernel set).
    """
    x = V.native(np.asarray(x))
    if x.dtype == np.int16:
        return ksoftmax16.softmax16(x, *ksoftmax16.softmax16_params(x_scale, beta))
    if _spec(profile).softmax == "fixed_point":
        return ksoftmax.softmax_fixed_point(x, ksoftmax.softmax_fixed_point_params(x_scale, beta))
    return ksoftmax.softmax_lut(x, ksoftmax.softmax_exp_table(x_scale, beta))


def _sigmoid16(x, x_scale, op: str, profile) -> np.ndarray:
    """int16 LOGISTIC / TANH (zero points 0, output scale 2^-15) as the spec's ``int16_sigmoid`` says."""
    x = V.native(x)
    multiplier, left_shift = ksigmoid16.sigmoid16_params(x_scale, op=op)
    if multiplier == 0 and _spec(profile).int16_sigmoid == "table_interpolation_pot_fixed_point":
        if op == "logistic":
            return kfp16.logistic_q3(x)
        return kfp16.tanh_q3(x, double_input=left_shift != 0)  # measured: any nonzero left shift doubles
    if multiplier == 0 and left_shift > 1:
        raise UnsupportedError(f"x_scale = {float(x_scale)!r} is too small for TFLite's int16 {op.upper()} reference "
                               f"kernel: its input multiplier rounds to 0 and the power-of-two branch then computes "
                               f"3 << {left_shift}, undefined in C")
    kernel = ksigmoid16.logistic16 if op == "logistic" else ksigmoid16.tanh16
    return kernel(x, multiplier, left_shift)


def logistic(x, x_scale, x_zero_point: int, y_scale=None, y_zero_point=None, *, profile) -> np.ndarray:
    """Sigmoid.

    int8/uint8: a 256-entry table built as the profile says, looked up by byte;
    ``float_table_rhaz`` and ``double_table_rne`` use the fixed output scale 1/256 and zero
    point -128 (int8) or 0 (uint8); ``rational_float32`` takes ``y_scale`` and ``y_zero_point``.
    int16 (16x8): zero points 0, output scale 1/32768 (``y_scale``, ``y_zero_point`` unused), as
    the spec's ``int16_sigmoid`` says (:mod:`refquant.kernels.sigmoid16`,
    :mod:`refquant.kernels.fixedpoint16`).
    """
    x = V.native(np.asarray(x))
    if x.dtype == np.int16:
        return _sigmoid16(x, x_scale, "logistic", profile)
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
    """Tanh.

    int8/uint8: a 256-entry table of float32 ``tanhf`` looked up by byte, rounded half away
    from zero (``float_table_rhaz``, :func:`refquant.kernels.lut.tanh_lut`) or with XNNPACK's
    float zero point and ties to even (``float_table_rne``, :func:`refquant.kernels.lut.tanh_lut_rne`).
    int16 (16x8): zero points 0, output scale 1/32768 (``y_scale``, ``y_zero_point`` unused), as
    the spec's ``int16_sigmoid`` says.

    Raises:
        UnsupportedError: The profile's backend has no modelled tanh.
    """
    kind = _spec(profile).tanh
    if kind == "not_modelled":
        raise UnsupportedError("this profile's tanh runs a kernel refquant does not model")
    x = V.native(np.asarray(x))
    if x.dtype == np.int16:
        return _sigmoid16(x, x_scale, "tanh", profile)
    make = klut.tanh_lut_rne if kind == "float_table_rne" else klut.tanh_lut
    return klut.apply_lut(x, make(x_scale, x_zero_point, y_scale, y_zero_point, dtype=x.dtype))
