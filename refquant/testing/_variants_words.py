"""The mismatch explainer's vocabulary: every arithmetic choice of :mod:`refquant.modes` and
:mod:`refquant.specs` in the words a kernel author uses.

The explainer (:mod:`refquant.testing.explain`) describes each candidate arithmetic as a dict
*step → words* (:func:`layer_facts`, :func:`quantize_facts`, ...); two candidates differ where
their dicts differ, so "what differs from the expectation" is a dict comparison
(:func:`differences`). Nothing here computes: it only names.

Added in 0.2.0.
"""

from __future__ import annotations

from ..specs import DequantizeSpec, LayerSpec, QuantizeSpec, SimdSplit

__all__ = [
    "BACKENDS",
    "add_facts",
    "backend_words",
    "dequantize_facts",
    "differences",
    "face_family",
    "isa_dependent",
    "layer_facts",
    "quantize_facts",
    "rounding_facts",
]

#: profile name -> the backend (and version) it reproduces
BACKENDS = {
    "onnx": "the ONNX specification",
    "onnx_reference": "onnx.reference (ReferenceEvaluator)",
    "onnxruntime": "ONNX Runtime CPU (MLAS)",
    "tflite_reference": "TFLite reference kernels",
    "tflite_xnnpack": "TFLite with the XNNPACK delegate",
    "tflite_optimized": "TFLite optimized kernels (ruy, x86)",
    "pytorch_fbgemm": "PyTorch 2.13, engine fbgemm",
    "pytorch_x86": "PyTorch 2.13, engine x86",
    "pytorch_fbgemm_zp_after": "PyTorch 1.6-2.12, engine fbgemm",
    "pytorch_qnnpack": "PyTorch 2.13, engine qnnpack",
    "gemmlowp": "gemmlowp's output stage",
}

_ISA = {"avx2": "on AVX2 without VNNI", "avx512_vnni": "with AVX-512 VNNI", "avx_vnni": "with AVX-VNNI",
        "exact": ""}

#: requantization mode -> (how acc * M is formed, how it is rounded)
REQUANT = {
    "fixed_double": ("fixed-point multiplier: SRDHM, then a rounding right shift",
                     "two roundings: half up, then half away from zero (gemmlowp)"),
    "fixed_single": ("fixed-point multiplier: one 64-bit product and shift", "one rounding, half up"),
    "fixed_double_up": ("fixed-point multiplier: SRDHM, then a rounding right shift",
                        "two roundings, both half up (ruy)"),
    "fixed_double_up_wrap": ("fixed-point multiplier: SRDHM, then a rounding right shift",
                             "two roundings, both half up (ruy)"),
    "fixed_int64_reduced16": ("16-bit fixed-point multiplier on an int64 accumulator", "one rounding, half up"),
    "float32_rne": ("float32 product fl(acc * M)", "round half to even (lrintf / cvtps2dq)"),
    "float64_rhaz": ("float64 product acc * M", "round half away from zero (std::round)"),
    "float64_rne": ("float64 product acc * M + Z_y: the zero point before rounding", "round half to even (rint)"),
    "exact_rne": ("exact real product acc * M", "round half to even"),
    "float32_scale_chain": ("the scales applied one at a time in float32, the bias between them (oneDNN)",
                            "round half to even"),
}
DERIVATION = {
    "f32_ab_div_c": "M = fl32(fl32(S_x S_w) / S_y)",
    "f64_ab_div_c": "M = S_x S_w / S_y in float64",
    "f32_ba_times_recip_c": "M = fl32(fl32(S_w S_x) * fl32(1 / S_y))",
    "f32_ab_then_f64_div": "M = float64(fl32(S_x S_w)) / S_y",
    "exact": "M = S_x S_w / S_y exactly",
}
BIAS = {
    "int32": "int32 bias added to the accumulator before requantization",
    "float_over_act_times_w_scale": "float32 bias divided by S_x S_w and added in float (fbgemm)",
    "runtime_quantized": "float32 bias quantized at run time, RNE(b / (S_w S_x)) (qnnpack)",
    "float_after_scales": "float32 bias added after the input and weight scales (oneDNN)",
    "int64": "int64 bias on an int64 accumulator",
}
ACCUMULATION = {
    "exact_int32": "exact int32 accumulation",
    "wrap_int32": "int32 accumulation, wrapping",
    "pairwise_sat16_u8s8": "u8 x s8 pair sums saturated to int16 (x86 vpmaddubsw, AVX2 without VNNI)",
    "pairwise_sat16_s8u8": "s8 x u8 pair sums saturated to int16 (x86 vpmaddubsw, weights unsigned)",
    "int64": "exact int64 accumulation",
}
BOUNDS = {
    "round_then_add_zero_point": "fused-activation bounds Z + round half away(f / S) (TFLite)",
    "add_zero_point_then_rne": "fused-activation bounds RNE(Z + f / S) (XNNPACK)",
}
ROUNDING = {
    "half_to_even": "round half to even", "half_away_from_zero": "round half away from zero",
    "half_up": "round half up", "half_down": "round half down", "half_toward_zero": "round half toward zero",
    "floor": "floor", "ceil": "ceil", "toward_zero": "truncate toward zero", "stochastic": "stochastic rounding",
}
_DIVISION = {"divide": "x / S", "multiply_reciprocal": "x * (1/S)"}
_ZERO_POINT = {
    "after_round": "zero point added after rounding",
    "before_round": "zero point added before rounding (two float roundings)",
    "before_round_fma": "zero point added before rounding, fused: fma(x, 1/S, Z)",
    "after_round_float": "zero point added after rounding, as a float sum",
}
_PRECISION = {"input": "the input's float type", "scale": "the scale's float type"}
_CLAMP = {"after_round": "clamp after rounding", "before_round": "clamp in float before rounding"}
_SUBTRACT = {"int": "exact integer q - Z", "int32_wrap": "q - Z in int32 (wraps)", "float": "float(q) - float(Z)",
             "mul_then_sub": "q*S - Z*S (two roundings)"}
ADD = {
    "fixed_point_shift20": "fixed point, inputs << 20, double rounding (TFLite reference)",
    "fixed_point_shift15": "fixed point, inputs << 15 (16-bit)",
    "fixed_point_shift15_simd16": "fixed point << 15 in 16-element SIMD blocks",
    "fixed_point_shift20_simd16": "fixed point << 20 in 16-element SIMD blocks (TFLite optimized)",
    "rescale": "two 21-bit multipliers, one rounding shift (XNNPACK)",
    "float32_fma": "float32 multiply-adds, round half to even (MLAS)",
    "float32_blocks": "float32, zero point after rounding in 64-element blocks (ATen)",
    "pot_shift": "power-of-two multipliers, rounding shifts (qnnpack)",
}


def isa_dependent(profile) -> bool:
    """Whether the profile's layers accumulate differently on different instruction sets."""
    specs = [profile.layer(f) for f in ("linear", "conv", "grouped_conv", "depthwise", "integer_conv")]
    return bool(profile.conv_dispatch) or any(s.pair_saturation_isas for s in specs)


def face_family(name: str) -> str:
    """``"tflite"``, ``"onnx"`` or ``"pytorch"``: the face a profile or op name belongs to (else the name)."""
    return next((f for f in ("tflite", "onnx", "pytorch") if name.startswith(f)), name)


def backend_words(profile) -> str:
    """``"ONNX Runtime CPU (MLAS) on AVX2 without VNNI"``: a profile's backend and, where its
    arithmetic depends on it, the ISA, in words (a profile refquant does not name is described by
    its own ``description``)."""
    name = BACKENDS.get(profile.name, profile.description or profile.name)
    isa = _ISA.get(profile.isa, profile.isa) if isa_dependent(profile) else ""
    return f"{name} {isa}".strip()


def layer_facts(spec: LayerSpec, accumulation: str, per_channel: bool, has_bias: bool, activation) -> dict:
    """A linear or convolution layer's arithmetic, step by step."""
    product, rounding = REQUANT[spec.requant]
    facts = {"accumulation": ACCUMULATION.get(accumulation, accumulation), "requantization": product,
             "rounding": rounding, "multiplier": DERIVATION[spec.derivation(per_channel)]}
    if spec.requant.startswith("fixed") and spec.single_rounding:
        facts["multiplier"] += " (quantized for a single-rounding build)"
    if has_bias:
        facts["bias"] = BIAS[spec.bias]
    if activation not in (None, "NONE"):
        facts["activation"] = BOUNDS[spec.activation_bounds]
    return facts


def rounding_facts(base: dict, rounding: str, precision: str) -> dict:
    """``base`` with the requantization replaced by "multiply in ``precision``, then ``rounding``"."""
    facts = dict(base)
    facts["requantization"] = "float32 product fl(acc * M)" if precision == "float32" else "float64 product acc * M"
    facts["rounding"] = ROUNDING[rounding]
    facts["multiplier"] = DERIVATION["f32_ab_div_c" if precision == "float32" else "f64_ab_div_c"]
    return facts


def _quantize_spec_words(spec: QuantizeSpec) -> dict:
    return {"scaling": f"{_DIVISION[spec.division]} in {_PRECISION.get(spec.precision, spec.precision)}",
            "rounding": ROUNDING[spec.rounding],
            "zero point": _ZERO_POINT[spec.zero_point], "clamp": _CLAMP[spec.clamp]}


def quantize_facts(spec) -> dict:
    """Float to codes (a :class:`~refquant.specs.QuantizeSpec`, or a :class:`~refquant.specs.SimdSplit`
    whose SIMD blocks and scalar tail compute differently)."""
    if isinstance(spec, SimdSplit):
        body, tail = _quantize_spec_words(spec.body), _quantize_spec_words(spec.tail)
        return {k: body[k] if body[k] == tail[k] else f"{body[k]} in {spec.block}-element SIMD blocks, "
                f"{tail[k]} in the tail" for k in body}
    return _quantize_spec_words(spec)


def dequantize_facts(spec) -> dict:
    """Codes to float (a :class:`~refquant.specs.DequantizeSpec` or a :class:`~refquant.specs.SimdSplit`)."""
    if isinstance(spec, SimdSplit):
        return {"subtraction": f"{_SUBTRACT[spec.body.subtract]} in {spec.block}-element SIMD blocks, "
                               f"{_SUBTRACT[spec.tail.subtract]} in the tail", "precision": spec.body.precision}
    assert isinstance(spec, DequantizeSpec)
    scale = "times the float64 scale, one rounding" if spec.scale_precision == "float64" else "times the scale"
    return {"subtraction": f"{_SUBTRACT[spec.subtract]}, {scale}", "precision": spec.precision}


def add_facts(kernel: str, bounds: str, activation) -> dict:
    """A quantized element-wise add."""
    facts = {"add": ADD.get(kernel, kernel)}
    if activation not in (None, "NONE"):
        facts["activation"] = BOUNDS[bounds]
    return facts


def differences(expected: dict, found: dict) -> list[str]:
    """``"requantization: expected A; actual B"`` for every step on which two descriptions differ."""
    return [f"{step}: expected {expected.get(step, '-')}; actual {found.get(step, '-')}"
            for step in list(expected) + [s for s in found if s not in expected]
            if expected.get(step) != found.get(step)]
