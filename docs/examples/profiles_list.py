"""The named profiles and the choices one of them holds (Concepts, §2)."""
from refquant.profiles import get_profile, list_profiles

names = list_profiles()
print(names)
assert {"onnx", "onnx_reference", "onnxruntime", "tflite_reference", "tflite_xnnpack", "tflite_optimized",
        "pytorch_fbgemm", "pytorch_qnnpack", "gemmlowp"} <= set(names)

p = get_profile("pytorch_fbgemm")
print(p.description)
print("quantize:     ", p.quantize)
print("fake_quantize:", p.fake_quantize)
print("requant:", p.requant, " multiplier:", p.multiplier, " bias:", p.bias, " accumulation:", p.accumulation)

assert p.quantize.division == "multiply_reciprocal" and p.quantize.zero_point == "before_round_fma"
assert p.fake_quantize.zero_point == "after_round_float"   # fake-quant adds Z after rounding, as a float sum
assert get_profile("tflite_reference").quantize.rounding == "half_away_from_zero"
assert get_profile("onnxruntime", isa="avx2").accumulation == "pairwise_sat16_u8s8"
assert get_profile("onnxruntime", isa="vnni").accumulation == "exact_int32"
