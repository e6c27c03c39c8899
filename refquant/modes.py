"""The names of every arithmetic choice, in one table.

A backend profile (:mod:`refquant.profiles`) is a record of these names; the kernels
(:mod:`refquant.kernels`) dispatch on them. Each name says what the arithmetic does, never
which backend does it: the profiles say that.

| table | names |
|---|---|
| :data:`REQUANT_MODES` | how an int32 accumulator is scaled to the output format (``fixed_*``: a fixed-point multiplier and shift; ``float*``: a float multiplier and one rounding; ``exact_rne``: the exact real product) |
| :data:`DERIVATIONS` | how the real multiplier $S_x S_w / S_y$ is formed from the three float32 scales |
| :data:`BIAS_MODES` | how a layer's bias reaches the accumulator |
| :data:`ACCUMULATIONS` | how u8×s8 products are summed (exact, wrapping, or x86 ``vpmaddubsw`` pair saturation) |
| :data:`ACTIVATION_BOUNDS` | how a fused activation's float range becomes integer clamp bounds |
| :data:`ISAS` | the instruction-set classes a profile may resolve its accumulation for |
| :data:`ADD_KERNELS` | the arithmetic of a quantized element-wise add |
| :data:`MUL_KERNELS` | the arithmetic of a quantized element-wise multiply |
| :data:`MEAN_KERNELS` | the arithmetic of a quantized MEAN over some axes |
| :data:`REQUANTIZE_KERNELS` | the arithmetic of codes rescaled to another tensor's parameters |
| :data:`SOFTMAX_KERNELS`, :data:`LOGISTIC_KERNELS`, :data:`TANH_KERNELS` | the arithmetic of quantized softmax, sigmoid and tanh |
| :data:`INT16_SIGMOID_KERNELS` | the arithmetic of int16 (16x8) sigmoid and tanh |
| :data:`GLOBAL_POOL_KERNELS` | the arithmetic of a quantized global average pool |
| :data:`DYNAMIC_INPUTS`, :data:`DYNAMIC_OUTPUTS` | dynamic quantization: how float activations become codes at run time, and how the accumulator becomes float |
| :data:`POOL_BOUNDS_WHEN` | which max pools a pointwise spec's kernels take |
| :data:`CONV_GEOMETRIES` | convolution geometries that select a backend's kernel, or that a kernel mishandles |
"""

from __future__ import annotations

import numpy as np

from .errors import QuantizationValueError

__all__ = ["REQUANT_MODES", "DERIVATIONS", "BIAS_MODES", "ACCUMULATIONS", "ACTIVATION_BOUNDS", "ISAS",
           "ADD_KERNELS", "MUL_KERNELS", "MEAN_KERNELS", "REQUANTIZE_KERNELS", "TANH_KERNELS", "INT16_SIGMOID_KERNELS", "SOFTMAX_KERNELS", "LOGISTIC_KERNELS", "GLOBAL_POOL_KERNELS", "GLOBAL_POOL_KEEPS_PARAMS", "POOL_BOUNDS_WHEN", "CONV_GEOMETRIES", "DYNAMIC_INPUTS", "DYNAMIC_OUTPUTS", "check_name"]

# requant mode -> kind of multiplier it consumes
REQUANT_MODES = {
    "fixed_double": "fixed",           # SRDHM, then RoundingDivideByPOT (two roundings, half away / half up)
    "fixed_single": "fixed",           # one rounding of the 64-bit product (single-rounding builds)
    "fixed_double_up": "fixed",        # SRDHM, then a half-up shift
    "fixed_double_up_wrap": "fixed",         # fixed_double_up, except where acc << l = q = INT32_MIN
    "fixed_int64_reduced16": "fixed",  # 64-bit product with a 16-bit-reduced multiplier (16x8 kernels)
    "float32_rne": "float32",          # lrintf(float(acc) * m), m float32
    "float64_rhaz": "float64",         # round half away of double(acc) * m, m float64
    "float64_rne": "float64",          # rint(double(acc) * m)
    "exact_rne": "exact",              # the exact real product, ties to even
    "float32_scale_chain": "scale_chain",  # fl(acc) * s_x * s_w (+ float bias) * (1/S_y) + Z_y, then RNE
}

DERIVATIONS = (
    "f32_ab_div_c",          # float32 (S_x * S_w) / S_y
    "f64_ab_div_c",          # double(S_x) * double(S_w) / double(S_y)
    "f32_ba_times_recip_c",  # float32 (S_w * S_x) * (1 / S_y)
    "f32_ab_then_f64_div",   # double(float32(S_x * S_w)) / double(S_y)
    "exact",                 # the exact rational value
)

BIAS_MODES = (
    "int32",                         # int32 bias of scale S_x S_w[c], added to the accumulator
    "float_over_act_times_w_scale",  # float32 bias divided by float32(S_x S_w[c]), added in float
    "runtime_quantized",             # float32 bias quantized at run time: RNE(b * (1 / (S_w S_x)))
    "float_after_scales",            # float32 bias added after the source and weight scales (scale chain)
    "int64",                         # int64 bias of scale S_x S_w[c], added to an int64 accumulator (wraps at 2^64)
)

ACCUMULATIONS = ("exact_int32", "wrap_int32", "pairwise_sat16_u8s8", "pairwise_sat16_s8u8",
                 "int64")  # int64: int16 x int8 products summed exactly in int64 (16x8 layers)

ACTIVATION_BOUNDS = (
    "round_then_add_zero_point",  # Z + round_half_away(f / S), clamped to the format
    "add_zero_point_then_rne",    # RNE(Z + f / S) in float32, clamped to the format
)

ISAS = ("avx2", "avx512_vnni", "avx_vnni", "exact")

ADD_KERNELS = (
    "fixed_point_shift20",  # inputs << 20, three fixed-point multipliers, double rounding (8-bit)
    "fixed_point_shift15",  # the same with << 15 (16-bit, zero points 0)
    "fixed_point_shift15_simd16",  # shift15, except a flat (non-broadcast) add's whole 16-element blocks: input
                                   # shift folded into the left shift, one rounding per input (TFLite optimized int16)
    "fixed_point_shift20_simd16",  # shift20 in TFLite's optimized int8 SIMD blocks (16 element-wise, 8 against a
                                   # broadcast scalar) placed by its broadcast dispatch; int16 narrowing without saturation
    "rescale",              # two 21-bit multipliers, one rounding shift; declines ratios outside [2^-10, 2^8)
    "float32_fma",          # float32 multiply-adds of the dequantized codes, RNE (no SIMD position effects)
    "float32_blocks",       # float32, zero point after rounding in 64-element blocks, before in the tail
    "pot_shift",            # power-of-two multipliers, RDBPOT, int16-saturating zero point (uint8)
    "not_modelled",         # the backend runs a kernel refquant does not model: refused
)

MUL_KERNELS = (
    "fixed_point",      # MBQM((a - Z_a)(b - Z_b), q, shift) + Z_y, double rounding
    "float32_requant",  # the exact product requantized with fl(fl(S_a S_b) / S_y), lrintf
    "float32_fma",      # float32 product of the dequantized codes, zero point before rounding
    "fixed_point_narrow16",  # fixed_point, but SIMD blocks (16 int8 / 8 uint8) narrow to int16 before adding Z_y
    "not_modelled",     # the backend runs a kernel refquant does not model: refused
)

MEAN_KERNELS = (
    "fixed_point",             # MBQM(sum - n Z_x, M / n) + Z_y, reference MBQM
    "fixed_point_4d_blocks",   # fixed_point, except 4-D axes {1, 2} keep_dims: MBQM(sum, fl(S_x / fl(n S_y))) + bias,
                               # 16-channel SIMD blocks rounding half up
    "float32",                 # XNNPACK: RNE(fl(fl(sum) * m) + fl(Z_y - fl(n Z_x) * m)), m = fl(fl(S_x / S_y) fl(1/n))
    "not_modelled",            # the backend runs a kernel refquant does not model: refused
)

REQUANTIZE_KERNELS = (
    "fixed_point",          # MBQM(x - Z_x, QuantizeMultiplier(S_x / S_y)) + Z_y, double rounding
    "fixed_point_simd16",   # fixed_point, but whole 16-element blocks round the second step half up
    "shift8",               # (256 Z_y + lrintf(256 fl(S_x / S_y)) (x - Z_x) + 128) >> 8; ratios in [2^-8, 128]
)

TANH_KERNELS = (
    "float_table_rhaz",  # 256-entry table of float32 tanhf, round half away, + Z_y
    "float_table_rne",   # 256-entry table of float32 tanhf: fl(fl(t * fl(1/S_y)) + Z_y), ties to even
    "not_modelled",
)

# int16 LOGISTIC and TANH (TFLite 16x8): the 256-entry uint16 sigmoid table, interpolated
INT16_SIGMOID_KERNELS = (
    "table_interpolation",               # every input scale through the interpolated sigmoid table
    "table_interpolation_pot_fixed_point",  # the same, except power-of-two input scales (2^-12; TANH also
                                            # 2^-11): gemmlowp fixed point on int16 (Q3.12 in, Q0.15 out)
)

SOFTMAX_KERNELS = (
    "fixed_point",  # gemmlowp fixed-point exp and reciprocal
    "float_table",  # a float32 table of exp(beta * S * (x - max)), float sum, rounded quotient
)

LOGISTIC_KERNELS = (
    "float_table_rhaz",  # 256-entry table of float32 1/(1+expf(-d)), round half away, + Z_y
    "double_table_rne",  # 256-entry table of the double-precision sigmoid, + Z_y, ties to even
    "rational_float32",  # 256-entry table of a rational float32 approximation, RNE
)

GLOBAL_POOL_KERNELS = (
    "float_requant",   # ONNX Runtime QLinearGlobalAveragePool: float32 multiplier S_x / (S_y * size), own output params
    "average_pool",    # TFLite AVERAGE_POOL_2D over the whole plane: (sum + size/2) / size, input params kept
    "mean_fixed_point",  # TFLite MEAN (builtin kernels): MBQM(sum - n Z_x, M / n) + Z_y, own output params
    "mean_float32",    # XNNPACK MEAN: RNE(fl(fl(sum) * m) + fl(Z_y - fl(n Z_x) * m)), m = fl(fl(S_x / S_y) fl(1/n)),
                       # own output params
    "mean_codes_rne",  # PyTorch fbgemm/x86 adaptive_avg_pool2d(q, 1): RNE(fl(sum q) * fl(1/N)), input params kept
    "mean_offset_codes_rne",  # PyTorch qnnpack: RNE(fl(sum q - N Z) * fl(1/N)) + Z, input params kept
)

DYNAMIC_INPUTS = (
    "per_tensor_u8_nudged",      # one (S, Z) per call, [0, 255]: float64 S, smaller-error zero point (ChooseQuantizationParams)
    "per_tensor_u8_dql",         # one (S, Z) per call: S = fl((max - min) / 255), Z = RNE(-min / S) (DynamicQuantizeLinear)
    "per_row_symmetric_s8",      # per row: S = max|x| / 127, q = round(x * 127 / max|x|) in [-127, 127], SSSE3 dot
    "per_row_asymmetric_s8",     # per row: S = fl(max - min) / 255, zero point in double, SSSE3 dot minus Z * row sums
    "per_row_asymmetric_qd8",    # per row, float32 throughout: q = RNE(x * 255 / (max - min)) + Z, exact dot
)

DYNAMIC_OUTPUTS = (
    "fma",              # fma(fl(acc), fl(S_x S_w[c]), b_c): one rounding
    "mul_then_add",     # fl(fl(fl(acc) * fl(S_x S_w[c])) + b_c): two roundings
    "scale_then_fma",   # fma(fl(fl(acc) * S_x), S_w[c], b_c): the input scale first, then one rounding
)

#: The global-pool kernels whose output keeps the input's scale and zero point.
GLOBAL_POOL_KEEPS_PARAMS = ("average_pool", "mean_codes_rne", "mean_offset_codes_rne")

POOL_BOUNDS_WHEN = (
    "always",                 # every max pool
    "8bit_stride_in_filter",  # only 8-bit max pools whose stride does not exceed the filter (and not a
                              # 1x1 filter with stride > 1)
)


CONV_GEOMETRIES = (
    # one input channel per group, more than one output channel per group, dilation_w 1, and kW > 1
    # (or kH > 1 with dilation_h 1 and more than 4 output columns)
    "one_channel_groups",
    # a single output column whose taps all lie in the padding, with a nonzero input zero point
    "padded_single_column",
    # stride_w > 1, dilation_w > 1 and an output column whose taps all lie in the padding
    "strided_dilated_padded_column",
    # depthwise (multiplier 1), channels a multiple of 16, kH 1, dilation 1, row padding only, and a
    # nonzero input zero point
    "depthwise_kh1_row_padding",
    # depthwise with multiplier 1 (groups == C == O) and one weight zero point for every channel
    "depthwise_equal_weight_zero_points",
    # depthwise with multiplier 1 or 2, channels a multiple of 8, a square 3x3 or 5x5 kernel, strides in
    # {1, 2}, dilation 1 and padding (k - 1) / 2
    "depthwise_k3k5_c8_same_padding",
)


def check_name(value, name: str, allowed) -> str:
    """Return ``value`` if it is one of ``allowed`` (a tuple or a dict's keys), else raise.

    A NumPy array is never a name (comparing it with a tuple's items is elementwise).

    Raises:
        QuantizationValueError: ``value`` is not a string in ``allowed``.
    """
    keys = tuple(allowed)
    if isinstance(value, np.ndarray):
        raise QuantizationValueError(f"{name} must be one of {keys}, got an array")
    try:
        ok = value in keys
    except TypeError:  # an unhashable value, e.g. a list or an array
        ok = False
    if not ok or isinstance(value, bool):
        raise QuantizationValueError(f"{name} must be one of {keys}, got {value!r}")
    return value
