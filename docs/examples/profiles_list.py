"""The named profiles and the choices one of them holds (Concepts, §2)."""
from refquant.profiles import get_profile, list_profiles
from refquant.qparams import make_qparams

names = list_profiles()
print(names)
assert {"onnx", "onnx_reference", "onnxruntime", "tflite_reference", "tflite_xnnpack", "tflite_optimized",
        "pytorch_fbgemm", "pytorch_qnnpack", "gemmlowp"} <= set(names)

p = get_profile("pytorch_fbgemm")
qp = make_qparams(0.1, 3, "uint8")                 # a per-tensor quint8 tensor
q = p.spec_for("quantize", qp, (4,))                # the spec PyTorch applies to it
fq = p.spec_for("fake_quantize", qp, (4,), "float32")
print(p.description)
print("quantize:     ", q)
print("fake_quantize:", fq)
print("linear layer: ", p.linear)

assert q.division == "multiply_reciprocal" and q.zero_point == "before_round_fma"
assert fq.zero_point == "after_round_float"          # fake-quant adds Z after rounding, as a float sum
# per-tensor qint32 runs another kernel: the profile's cases say which
assert p.spec_for("quantize", make_qparams(0.1, 3, "int32"), (4,)).zero_point == "before_round"
assert p.linear.requant == "float32_rne" and p.linear.bias == "float_over_act_times_w_scale"
assert get_profile("tflite_reference").quantize.rounding == "half_away_from_zero"
assert get_profile("onnxruntime", isa="avx2").accumulation("linear") == "pairwise_sat16_u8s8"
assert get_profile("onnxruntime", isa="vnni").accumulation("linear") == "exact_int32"
