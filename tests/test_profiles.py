"""Named backend profiles: construction, lookup, ISA selection, and the choices they pin."""

from __future__ import annotations

import dataclasses

import pytest

import numpy as np

from refquant import modes
from refquant.cpu import ISA_CHOICES, detect_isa, detect_isa_class, resolve_isa, resolve_isa_class
from refquant.errors import QuantizationValueError
from refquant.profiles import PROFILES, Profile, get_profile, list_profiles
from refquant.qparams import make_qparams
from refquant.specs import Case, Cases, ConvDispatch, DequantizeSpec, LayerSpec, PointwiseSpec, QuantizeSpec, SimdSplit, select_spec

pytestmark = pytest.mark.kernels

REQUIRED = {"onnx", "onnxruntime", "tflite_reference", "tflite_xnnpack", "pytorch_fbgemm", "pytorch_qnnpack",
            "gemmlowp"}


def test_required_profiles_exist():
    assert REQUIRED <= set(PROFILES)
    assert list_profiles() == sorted(PROFILES)


STEP_TYPES = (QuantizeSpec, DequantizeSpec, Cases, SimdSplit)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_constructs_and_round_trips(name):
    p = get_profile(name)
    assert isinstance(p, Profile) and p.name == name and p.description
    assert isinstance(p.quantize, STEP_TYPES) and isinstance(p.fake_quantize, STEP_TYPES)
    assert isinstance(p.dequantize, STEP_TYPES)
    for family in ("linear", "conv", "grouped_conv", "depthwise"):
        assert isinstance(p.layer(family), LayerSpec)
    assert get_profile(p) is p
    # every field survives a rebuild through the validating constructor
    assert Profile(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)}) == p
    assert p.sources, "every profile names where its behaviour was read or measured"


def test_profiles_are_frozen():
    p = get_profile("onnx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.isa = "avx2"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["tensorrt", "", None, 3])
def test_get_profile_errors(bad):
    with pytest.raises(QuantizationValueError, match="name must be one of"):  # get_profile's argument
        get_profile(bad)


@pytest.mark.parametrize("field,value", [("requant", "magic"), ("multiplier", "f16"), ("bias", "float"),
                                         ("accumulation", "int16"), ("pair_saturation_isas", ("sse",)),
                                         ("activation_bounds", "floor"), ("dynamic_output", "fmadd")])
def test_layer_spec_validation(field, value):
    with pytest.raises(QuantizationValueError, match=f"{field} must be one of"):
        LayerSpec(**{field: value})


@pytest.mark.parametrize("field,value", [("quantize", "rne"), ("linear", None), ("isa", "sse")])
def test_profile_validation(field, value):
    with pytest.raises(QuantizationValueError, match=f"{field} must be"):
        Profile("x", "y", **{field: value})


def test_replace():
    p = get_profile("onnx").replace(linear=LayerSpec("fixed_single", "f64_ab_div_c"))
    assert p.linear.requant == "fixed_single" and get_profile("onnx").linear.requant == "exact_rne"
    with pytest.raises(QuantizationValueError):
        get_profile("onnx").replace(isa="nope")


def test_mode_names_live_in_one_table():
    """The profile, the kernels and the specs read the same tables of names."""
    from refquant.kernels import multiplier, requant
    assert multiplier.REQUANT_MODES is modes.REQUANT_MODES and requant.REQUANT_MODES is modes.REQUANT_MODES
    assert multiplier.DERIVATIONS is modes.DERIVATIONS
    for p in PROFILES.values():
        for family in ("linear", "conv", "grouped_conv", "depthwise"):
            spec = p.layer(family)
            assert spec.requant in modes.REQUANT_MODES and spec.multiplier in modes.DERIVATIONS
    LayerSpec(requant="fixed_double_up_wrap")  # every mode a face uses is a valid profile value


# ---------------------------------------------------------------- ISA

def test_resolve_isa():
    assert set(ISA_CHOICES) == {"auto", "avx2", "vnni", "exact"}
    assert resolve_isa("auto") == detect_isa() in ("avx2", "vnni", "exact")
    for isa in ("avx2", "vnni", "exact"):
        assert resolve_isa(isa) == isa
    with pytest.raises(QuantizationValueError, match="isa must be one of"):
        resolve_isa("avx512")
    assert resolve_isa_class("vnni") == "avx512_vnni"
    assert resolve_isa_class("auto") == detect_isa_class() in ("avx2", "avx512_vnni", "avx_vnni", "exact")
    assert (detect_isa_class() in ("avx512_vnni", "avx_vnni")) == (detect_isa() == "vnni")


@pytest.mark.parametrize("name,pairs_on", [("onnxruntime", {"avx2"}), ("pytorch_fbgemm", {"avx2", "avx_vnni"})])
def test_with_isa_resolves_u8s8_accumulation(name, pairs_on):
    p = get_profile(name)
    assert p.isa == "exact" and p.linear.accumulation_for(p.isa, 'uint8', 'int8') == "exact_int32"
    for isa in ("avx2", "avx512_vnni", "avx_vnni", "exact"):
        q = p.with_isa(isa)
        assert q.isa == isa and get_profile(name, isa=isa) == q
        want = "pairwise_sat16_u8s8" if isa in pairs_on else "exact_int32"
        assert q.linear.accumulation_for(q.isa, 'uint8', 'int8') == want, isa
        assert q.linear.accumulation_for(q.isa, 'int8', 'int8') == "exact_int32"  # only u8 x s8 operand pairs
        assert q.replace(isa=p.isa) == p  # only the ISA changes
    assert p.with_isa("vnni").isa == "avx512_vnni"
    assert get_profile(name, isa=None) is p
    # the behaviour is a field of the layer spec, not a name: a renamed copy keeps it
    assert p.replace(name="my_" + name).with_isa("avx2").linear.accumulation_for("avx2", "uint8", "int8") == "pairwise_sat16_u8s8"


def test_fbgemm_depthwise_pairs_on_every_x86():
    """fbgemm's depthwise kernel (GenerateI8Depthwise, AVX2 only) keeps vpmaddubsw on VNNI hosts."""
    d = get_profile("pytorch_fbgemm").layer("depthwise")
    assert {isa for isa in ("avx2", "avx512_vnni", "avx_vnni", "exact")
            if d.accumulation_for(isa, 'uint8', 'int8') == "pairwise_sat16_u8s8"} == {"avx2", "avx512_vnni", "avx_vnni"}


@pytest.mark.parametrize("name", sorted(set(PROFILES) - {"onnxruntime", "pytorch_fbgemm", "pytorch_fbgemm_zp_after",
                                                         "pytorch_x86"}))
def test_with_isa_leaves_other_profiles_exact(name):
    p = get_profile(name)
    for isa in ("avx2", "vnni", "exact", "auto"):
        for family in ("linear", "conv", "depthwise"):
            assert p.with_isa(isa).layer(family).accumulation_for(p.with_isa(isa).isa, 'uint8', 'int8') == "exact_int32"
    with pytest.raises(QuantizationValueError):
        p.with_isa("sse")


# ---------------------------------------------------------------- the pinned choices

def _q(name, fmt="int8", axis=None, shape=(16,)):
    qp = make_qparams(np.float32(0.5) if axis is None else np.full(shape[axis], 0.5, np.float32),
                      0 if axis is None else np.zeros(shape[axis], np.int64), fmt, axis=axis)
    return select_spec(PROFILES[name].quantize, qp, shape, np.float32)


def test_quantize_choices_match_backends_table():
    assert _q("onnx") == QuantizeSpec(precision="scale")  # x / y_scale in the scale's type
    ort = _q("onnxruntime")
    assert (ort.division, ort.clamp, ort.nan) == ("divide", "before_round", "qmin")
    ref = _q("tflite_reference")
    assert (ref.rounding, ref.division, ref.overflow) == ("half_away_from_zero", "divide", "int_cast")
    xnn = _q("tflite_xnnpack")
    assert (xnn.division, xnn.nan, xnn.subnormal_scale) == ("multiply_reciprocal", "qmax", "refuse")
    # XNNPACK declines int16, per-channel and empty tensors: LiteRT runs them on the builtin kernels
    assert isinstance(_q("tflite_xnnpack", "int16"), SimdSplit) and _q("tflite_xnnpack", axis=0) == ref
    assert isinstance(_q("tflite_xnnpack", shape=(0,)), SimdSplit)
    opt = _q("tflite_optimized")
    assert isinstance(opt, SimdSplit) and opt.block == 8 and opt.tail.precision == "float64"
    for n in ("pytorch_fbgemm", "pytorch_qnnpack"):
        q = _q(n)
        assert (q.division, q.zero_point, q.nan) == ("multiply_reciprocal", "before_round_fma", "qmax")
        scalar = _q(n, "int32")  # per-tensor qint32 and per-channel take the scalar path
        assert (scalar.zero_point, scalar.nan) == ("before_round", "int_cast_truncate") and _q(n, axis=0) == scalar
        fq = select_spec(PROFILES[n].fake_quantize, make_qparams(0.5, 0, "int8"), (4,), np.float32)
        assert (fq.division, fq.zero_point, fq.nan) == ("multiply_reciprocal", "after_round_float", "qmin")
    g = _q("gemmlowp")
    assert (g.zero_point, g.rounding) == ("before_round", "half_away_from_zero")


def test_layer_choices_match_backends_table():
    layer = {n: PROFILES[n].layer("conv") for n in PROFILES}
    assert layer["tflite_reference"].requant == "fixed_double" and layer["tflite_optimized"].requant == "fixed_double_up_wrap"
    assert PROFILES["tflite_reference"].linear.requant == "float64_rhaz"
    assert PROFILES["tflite_optimized"].layer("grouped_conv").requant == "fixed_double"
    dw = PROFILES["tflite_optimized"].layer("depthwise")
    assert (dw.requant, dw.tail_block, dw.tail_requant) == ("fixed_double_up", 8, "fixed_double")
    for n in ("onnxruntime", "tflite_xnnpack", "pytorch_fbgemm", "pytorch_qnnpack"):
        assert layer[n].requant == "float32_rne", n
    assert layer["onnx"].requant == "exact_rne"
    assert layer["tflite_xnnpack"].activation_bounds == "add_zero_point_then_rne"
    assert layer["tflite_xnnpack"].max_requant_scale == 256.0
    assert layer["pytorch_fbgemm"].bias == "float_over_act_times_w_scale"
    assert layer["pytorch_qnnpack"].bias == "runtime_quantized"


# ---------------------------------------------------------------- every field documented and read

RECORDS = (Profile, QuantizeSpec, DequantizeSpec, LayerSpec, ConvDispatch, PointwiseSpec, Case, Cases, SimdSplit)


def test_docs_profile_table_lists_every_field():
    from pathlib import Path
    page = (Path(__file__).resolve().parents[1] / "docs" / "concepts" / "backends.md").read_text()
    section = page[page.index("## 2. What a profile holds"):page.index("## 3.")]
    missing = [f"{rec.__name__}.{f.name}" for rec in RECORDS for f in dataclasses.fields(rec)
               if f"`{f.name}`" not in section]
    assert not missing, f"fields missing from the profile tables of docs/concepts/backends.md: {missing}"


def test_every_spec_field_is_read_by_the_library():
    """A field nothing reads is deleted: each one is read as ``.name``, or by name through ``getattr``."""
    import re
    from pathlib import Path
    pkg = Path(__file__).resolve().parents[1] / "refquant"
    sources = {p: p.read_text() for p in pkg.rglob("*.py")}
    unread = []
    for rec in RECORDS:
        for f in dataclasses.fields(rec):
            if f.name in ("name", "description", "sources"):
                continue  # shown by `refquant info` and the docs
            attr, quoted = re.compile(rf"\.{f.name}\b"), re.compile(rf"[\"']{f.name}[\"']")
            if not any(attr.search(t) or ("getattr(" in t and quoted.search(t)) for t in sources.values()):
                unread.append(f"{rec.__name__}.{f.name}")
    assert not unread, f"fields no library code reads: {unread}"
