"""Named backend profiles: construction, lookup, ISA selection, and the choices they pin."""

from __future__ import annotations

import dataclasses

import pytest

from refquant.cpu import ISA_CHOICES, detect_isa, resolve_isa
from refquant.errors import QuantizationValueError
from refquant.profiles import PROFILES, Profile, get_profile, list_profiles
from refquant.quantize import DequantizeSpec, QuantizeSpec

pytestmark = pytest.mark.kernels

REQUIRED = {"onnx", "onnxruntime", "tflite_reference", "tflite_xnnpack", "pytorch_fbgemm", "pytorch_qnnpack",
            "gemmlowp"}


def test_required_profiles_exist():
    assert REQUIRED <= set(PROFILES)
    assert list_profiles() == sorted(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_constructs_and_round_trips(name):
    p = get_profile(name)
    assert isinstance(p, Profile) and p.name == name and p.description
    assert isinstance(p.quantize, QuantizeSpec) and isinstance(p.fake_quantize, QuantizeSpec)
    assert isinstance(p.dequantize, DequantizeSpec)
    assert get_profile(p) is p
    # every field survives a rebuild through the validating constructor
    assert Profile(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)}) == p
    assert p.sources, "every profile names where its behaviour was read or measured"


def test_profiles_are_frozen():
    p = get_profile("onnx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.requant = "fixed_double"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["tensorrt", "", None, 3])
def test_get_profile_errors(bad):
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        get_profile(bad)


@pytest.mark.parametrize("field,value", [("requant", "magic"), ("multiplier", "f16"), ("bias", "float"),
                                         ("accumulation", "int16")])
def test_profile_validation(field, value):
    with pytest.raises(QuantizationValueError, match=f"{field} must be one of"):
        Profile("x", "y", **{field: value})


def test_replace():
    p = get_profile("onnx").replace(requant="fixed_single")
    assert p.requant == "fixed_single" and get_profile("onnx").requant == "exact_rne"
    with pytest.raises(QuantizationValueError):
        get_profile("onnx").replace(requant="nope")


# ---------------------------------------------------------------- ISA

def test_resolve_isa():
    assert set(ISA_CHOICES) == {"auto", "avx2", "vnni", "exact"}
    assert resolve_isa("auto") == detect_isa() in ("avx2", "vnni", "exact")
    for isa in ("avx2", "vnni", "exact"):
        assert resolve_isa(isa) == isa
    with pytest.raises(QuantizationValueError, match="isa must be one of"):
        resolve_isa("avx512")


@pytest.mark.parametrize("name", ["onnxruntime", "pytorch_fbgemm"])
def test_with_isa_changes_u8s8_accumulation(name):
    p = get_profile(name)
    assert p.with_isa("avx2").accumulation == "pairwise_sat16_u8s8"
    assert p.with_isa("vnni").accumulation == "exact_int32"
    assert p.with_isa("exact").accumulation == "exact_int32"
    assert get_profile(name, isa="avx2").accumulation == "pairwise_sat16_u8s8"
    assert get_profile(name, isa=None) is p
    auto = p.with_isa("auto").accumulation
    assert auto == ("pairwise_sat16_u8s8" if detect_isa() == "avx2" else "exact_int32")
    # only the accumulation changes
    assert p.with_isa("avx2").replace(accumulation=p.accumulation) == p
    # the behaviour is a profile field, not a name: a renamed copy keeps it
    custom = p.replace(name="my_" + name)
    assert custom.u8s8_follows_isa
    assert custom.with_isa("avx2").accumulation == "pairwise_sat16_u8s8"


@pytest.mark.parametrize("name", sorted(set(PROFILES) - {"onnxruntime", "pytorch_fbgemm"}))
def test_with_isa_leaves_other_profiles(name):
    p = get_profile(name)
    assert not p.u8s8_follows_isa
    for isa in ("avx2", "vnni", "exact", "auto"):
        assert p.with_isa(isa) is p
    with pytest.raises(QuantizationValueError):
        p.with_isa("sse")


# ---------------------------------------------------------------- the pinned choices (backends.md §4.1)

def test_quantize_choices_match_backends_table():
    q = {n: PROFILES[n].quantize for n in PROFILES}
    assert q["onnx"] == QuantizeSpec()
    ort = q["onnxruntime"]
    assert (ort.division, ort.clamp, ort.nan) == ("divide", "before_round", "qmin")
    assert (q["tflite_reference"].rounding, q["tflite_reference"].division) == ("half_away_from_zero", "divide")
    assert q["tflite_reference"].overflow == "int_cast"
    assert (q["tflite_xnnpack"].division, q["tflite_xnnpack"].nan) == ("multiply_reciprocal", "qmax")
    for n in ("pytorch_fbgemm", "pytorch_qnnpack"):
        assert (q[n].division, q[n].zero_point, q[n].nan) == ("multiply_reciprocal", "before_round_fma", "qmax")
        fq = PROFILES[n].fake_quantize
        assert (fq.division, fq.zero_point, fq.nan) == ("multiply_reciprocal", "after_round_float", "qmin")
    assert (q["gemmlowp"].zero_point, q["gemmlowp"].rounding) == ("before_round", "half_away_from_zero")


def test_requant_and_ranges_match_backends_table():
    r = {n: PROFILES[n].requant for n in PROFILES}
    assert r["tflite_reference"] == "fixed_double" and r["tflite_optimized"] == "fixed_double_up"
    for n in ("onnxruntime", "tflite_xnnpack", "pytorch_fbgemm", "pytorch_qnnpack"):
        assert r[n] == "float32_rne", n
    assert r["onnx"] == "exact_rne"
    for n in ("tflite_reference", "tflite_xnnpack", "tflite_optimized"):
        assert PROFILES[n].weight_narrow, n
    assert PROFILES["pytorch_fbgemm"].activation_reduce_range == "pytorch"
    assert PROFILES["onnxruntime"].clamp_float_before_round and PROFILES["tflite_xnnpack"].clamp_float_before_round
    assert PROFILES["pytorch_fbgemm"].bias == "float_over_act_times_w_scale"
    assert PROFILES["pytorch_qnnpack"].bias == "runtime_quantized"
