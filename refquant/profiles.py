"""Backend profiles: every arithmetic choice that makes backends disagree, by name.

A :class:`Profile` is a frozen record of choices built from the specs of :mod:`refquant.specs`
(whose step names live in :mod:`refquant.modes`); the core functions and the ops layer read
it, so a new backend is a new profile, never an ``if backend == ...`` below the faces. The
named profiles reproduce:

| name | backend behaviour |
|---|---|
| ``onnx`` | the ONNX operator specification (QuantizeLinear, QLinearMatMul, ...) |
| ``onnx_reference`` | ``onnx.reference.ReferenceEvaluator`` where it departs from the spec |
| ``onnxruntime`` | ONNX Runtime CPU execution provider (MLAS), x86-64 |
| ``tflite_reference`` | TFLite/LiteRT builtin reference kernels (``BUILTIN_REF``) |
| ``tflite_xnnpack`` | TFLite with the XNNPACK delegate (default ``BUILTIN`` resolver) |
| ``tflite_optimized`` | TFLite builtin optimized kernels on x86 (ruy AVX2), no delegate |
| ``pytorch_fbgemm`` | PyTorch 2.13 quantized CPU ops, engine ``fbgemm`` |
| ``pytorch_x86`` | PyTorch 2.13, engine ``x86`` (fbgemm; oneDNN convolutions on AVX-512 VNNI) |
| ``pytorch_fbgemm_zp_after`` | PyTorch 1.6 - 2.12 quantize (zero point after rounding) |
| ``pytorch_qnnpack`` | PyTorch 2.13 quantized CPU ops, engine ``qnnpack`` |
| ``gemmlowp`` | gemmlowp's documented quantization example and fixed-point output stage |
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import _validate as V
from ._validate import describe
from .cpu import resolve_isa_class
from .errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from .modes import CONV_GEOMETRIES, ISAS, check_name
from .specs import (Case, Cases, ConvDispatch, DequantizeSpec, LayerSpec, PointwiseSpec, QuantizeSpec, SimdSplit,
                    select_spec)

__all__ = ["Profile", "get_profile", "list_profiles", "PROFILES"]

_STEP_TYPES = (QuantizeSpec, DequantizeSpec, Cases, SimdSplit)
_FAMILIES = ("linear", "conv", "grouped_conv", "depthwise", "integer_conv")
_FAMILIES_16X8 = ("linear", "conv", "grouped_conv", "depthwise")
_BIASES_16X8 = ("int64", "int32", "none")


@dataclass(frozen=True)
class Profile:
    """One backend's arithmetic choices, per op family.

    Attributes:
        name: Registry name.
        description: One line: which backend, version and path.
        quantize: float -> int: a :class:`~refquant.specs.QuantizeSpec`, or
            :class:`~refquant.specs.Cases` / :class:`~refquant.specs.SimdSplit` where the
            backend runs other kernels for other formats, granularities or positions.
        dequantize: int -> float, likewise with :class:`~refquant.specs.DequantizeSpec`.
        fake_quantize: float -> float simulation used in training, quantize half (PyTorch
            adds the zero point after rounding there, unlike its ``quantize_per_tensor``).
        fake_dequantize: Its dequantize half; ``None``: the same as ``dequantize``.
        linear: Fully connected / matmul layers (:class:`~refquant.specs.LayerSpec`).
        conv: Convolutions (groups = 1).
        grouped_conv: Grouped convolutions that are not depthwise; ``None``: as ``conv``.
        depthwise: Depthwise convolutions; ``None``: as ``conv``.
        conv_families: ``(geometry, family)`` rules: a convolution whose geometry matches (a name of
            :data:`refquant.modes.CONV_GEOMETRIES`) takes that layer family (the backend runs another
            kernel for it); the first match wins; otherwise ``conv`` (one group) or ``grouped_conv``.
        conv_dispatch: Rules (:class:`~refquant.specs.ConvDispatch`) by which the backend sends
            some convolutions to another kernel on some CPUs; the first that applies wins.
        pointwise: The weight-free ops: add, pooling, softmax, sigmoid
            (:class:`~refquant.specs.PointwiseSpec`).
        integer_conv: Convolutions that stop at the int32 accumulator (ONNX ``ConvInteger``),
            where a backend runs another kernel; ``None``: as ``conv``.
        layers_16x8: ``(family, bias, LayerSpec)`` triples: the layers with int16 activations and
            int8 weights (TFLite's 16x8 mode), by family (``"linear"``, ``"conv"``,
            ``"grouped_conv"``, ``"depthwise"``) and bias tensor (``"int64"``, ``"int32"``, or
            ``"none"`` for a layer without one): the backend picks its kernel by both. ``()``:
            the backend has no 16x8 layers (refused).
        isa: The instruction-set class the accumulation models are resolved for (one of
            ``"avx2"``, ``"avx512_vnni"``, ``"avx_vnni"``, ``"exact"``); set by
            :meth:`with_isa`. ``"exact"`` (the default) never saturates.
        sources: Where the behaviour was read or measured.
    """

    name: str
    description: str
    quantize: object = field(default_factory=QuantizeSpec)
    dequantize: object = field(default_factory=DequantizeSpec)
    fake_quantize: object = field(default_factory=QuantizeSpec)
    fake_dequantize: object = None
    linear: LayerSpec = field(default_factory=LayerSpec)
    conv: LayerSpec = field(default_factory=LayerSpec)
    grouped_conv: LayerSpec | None = None
    depthwise: LayerSpec | None = None
    integer_conv: LayerSpec | None = None
    conv_families: tuple = ()
    conv_dispatch: tuple = ()
    pointwise: PointwiseSpec = field(default_factory=PointwiseSpec)
    layers_16x8: tuple = ()
    isa: str = "exact"
    sources: str = ""

    def __post_init__(self):
        for name in ("name", "description", "sources"):
            if not isinstance(getattr(self, name), str):
                raise QuantizationTypeError(f"{name} must be a string, got {describe(getattr(self, name))}")
        for name in ("quantize", "dequantize", "fake_quantize"):
            if not isinstance(getattr(self, name), _STEP_TYPES):
                raise QuantizationValueError(f"{name} must be a QuantizeSpec, DequantizeSpec, Cases or SimdSplit, "
                                             f"got {type(getattr(self, name)).__name__}")
        for name in _FAMILIES:
            v = getattr(self, name)
            if not (isinstance(v, LayerSpec) or (v is None and name not in ("linear", "conv"))):
                raise QuantizationValueError(f"{name} must be a LayerSpec, got {type(v).__name__}")
        if not (isinstance(self.conv_families, tuple)
                and all(isinstance(rule, tuple) and len(rule) == 2 for rule in self.conv_families)):
            raise QuantizationTypeError(f"conv_families must be a tuple of (geometry, family) pairs, "
                                        f"got {describe(self.conv_families)}")
        for geometry, family in self.conv_families:
            check_name(geometry, "conv_families geometry", CONV_GEOMETRIES)
            check_name(family, "conv_families family", _FAMILIES)
        if not (isinstance(self.conv_dispatch, tuple) and all(isinstance(r, ConvDispatch) for r in self.conv_dispatch)):
            raise QuantizationTypeError(f"conv_dispatch must be a tuple of ConvDispatch, "
                                        f"got {describe(self.conv_dispatch)}")
        if not isinstance(self.pointwise, PointwiseSpec):
            raise QuantizationValueError(f"pointwise must be a PointwiseSpec, got {type(self.pointwise).__name__}")
        V.as_choice(self.isa, "isa", ISAS)
        if not (isinstance(self.layers_16x8, tuple) and all(
                isinstance(t, tuple) and len(t) == 3 and isinstance(t[2], LayerSpec) for t in self.layers_16x8)):
            raise QuantizationTypeError(f"layers_16x8 must be a tuple of (family, bias, LayerSpec) triples, "
                                        f"got {describe(self.layers_16x8)}")
        for family, bias, _ in self.layers_16x8:
            check_name(family, "layers_16x8 family", _FAMILIES_16X8)
            check_name(bias, "layers_16x8 bias", _BIASES_16X8)

    def replace(self, **changes) -> "Profile":
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_isa(self, isa: str = "auto") -> "Profile":
        """Return this profile with its accumulation models resolved for an instruction set.

        Args:
            isa: ``"auto"`` (the running CPU), ``"avx2"`` (x86 without VNNI), ``"vnni"`` (AVX-512
                VNNI), ``"avx512_vnni"``, ``"avx_vnni"`` (AVX-VNNI without AVX-512 VNNI) or
                ``"exact"`` (no saturation model).

        Each layer spec's ``pair_saturation_isas`` says on which of these its backend sums u8×s8
        products in saturating int16 pairs (x86 ``vpmaddubsw``).
        """
        return self.replace(isa=resolve_isa_class(isa))

    def spec_for(self, step: str, qparams, shape, input_dtype=None):
        """The spec this profile applies to one tensor in ``step`` (``"quantize"``, ``"dequantize"``,
        ``"fake_quantize"``, ``"fake_dequantize"``), after its cases (:func:`~refquant.specs.select_spec`).

        Example: ``get_profile("pytorch_fbgemm").spec_for("quantize", make_qparams(0.1, 0, "int32"), (4,))``
        is the scalar-path spec PyTorch uses for per-tensor qint32.
        """
        if step not in ("quantize", "dequantize", "fake_quantize", "fake_dequantize"):
            raise QuantizationValueError(f"step must be 'quantize', 'dequantize', 'fake_quantize' or "
                                         f"'fake_dequantize', got {step!r}")
        entry = getattr(self, step)
        if entry is None:  # fake_dequantize: the same as dequantize
            entry = self.dequantize
        return select_spec(entry, qparams, shape, input_dtype)

    def accumulation(self, family: str = "linear", x_dtype="uint8", w_dtype="int8") -> str:
        """The accumulation model of ``family`` on this profile's ISA for these operand dtypes.

        Example: ``get_profile("onnxruntime", isa="avx2").accumulation()`` is
        ``"pairwise_sat16_u8s8"`` (x86 ``vpmaddubsw``); with ``isa="vnni"`` it is ``"exact_int32"``.
        """
        return self.layer(family).accumulation_for(self.isa, x_dtype, w_dtype)

    def layer_16x8(self, family: str, bias: str) -> LayerSpec:
        """The :class:`~refquant.specs.LayerSpec` of a 16x8 layer (int16 activations, int8 weights)
        of ``family`` with a bias tensor of kind ``bias`` (``"int64"``, ``"int32"``, ``"none"``);
        ``"grouped_conv"`` falls back to ``"conv"``.

        Raises:
            UnsupportedError: The profile has no 16x8 layers, or none with that bias.
        """
        V.as_choice(family, "family", _FAMILIES_16X8)
        V.as_choice(bias, "bias", _BIASES_16X8)
        if not self.layers_16x8:
            raise UnsupportedError(f"profile {self.name!r} has no int16-activation (16x8) layers: int16 activations "
                                   f"with int8 weights are TFLite's 16x8 mode (profiles tflite_reference, "
                                   f"tflite_optimized, tflite_xnnpack)")
        table = {(f, b): spec for f, b, spec in self.layers_16x8}
        for fam in (family, "conv") if family == "grouped_conv" else (family,):
            if (fam, bias) in table:
                return table[(fam, bias)]
        biases = sorted(b for f, b in table if f == family or (family == "grouped_conv" and f == "conv"))
        raise UnsupportedError(f"profile {self.name!r} has no 16x8 {family} layer with bias {bias!r} "
                               f"(its backend takes {biases or 'none'})")

    def layer(self, family: str) -> LayerSpec:
        """The :class:`~refquant.specs.LayerSpec` of a family in :data:`_FAMILIES` (``"linear"``,
        ``"conv"``; ``"grouped_conv"``, ``"depthwise"``, ``"integer_conv"`` fall back to ``conv``).
        Rescaling one tensor's codes to another's parameters (TFLite's QUANTIZE from an integer
        tensor) is a weight-free op: ``pointwise.requantize``."""
        V.as_choice(family, "family", _FAMILIES)
        return getattr(self, family) or self.conv


# --------------------------------------------------------------------------- shared specs

_RNE_DIV = QuantizeSpec()  # divide, round half to even, add the zero point, saturate
_ONNX_Q = QuantizeSpec(precision="scale")  # the ONNX specification: x / y_scale in y_scale's type
# TFLite reference QUANTIZE: (int32)std::round(x / (float)s) + zp, clamp (float32 division, RHAZ).
_TFL_REF_Q = QuantizeSpec(rounding="half_away_from_zero", nan="int_cast", overflow="int_cast")
# TFLite optimized QUANTIZE, 8-wide blocks: vcvtnq_s32_f32(x * (float)(1.0 / (double)s)) + zp (RNE,
# C-cast specials). (float)(1.0/(double)s) == 1.0f/s for every float32 s: rounding a quotient of
# 24-bit operands first to 53 bits, then to 24, is innocuous (53 >= 2*24 + 2).
_TFL_OPT_BLOCK_Q = QuantizeSpec(division="multiply_reciprocal", nan="int_cast", overflow="int_cast")
# ... and its scalar tail: (int32)TfLiteRound(x / (double)s) + zp (float64 division, RHAZ).
_TFL_OPT_TAIL_Q = QuantizeSpec(precision="float64", rounding="half_away_from_zero", nan="int_cast",
                               overflow="int_cast")
_TFL_OPT_Q = SimdSplit(8, _TFL_OPT_BLOCK_Q, _TFL_OPT_TAIL_Q)
# XNNPACK f32-qs8-vcvt: lrintf(clamp(x * (1.0f/s), qmin - zp, qmax - zp)) + zp, with FTZ/DAZ set by
# its thread pool (measured: subnormal x -> 0); a subnormal scale is refused.
_XNN_Q = QuantizeSpec(division="multiply_reciprocal", clamp="before_round", nan="qmax", denormals="flush",
                      subnormal_scale="refuse")
_TFL_DQ = DequantizeSpec()  # float32((q - Z) * s): the exact integer difference, one rounding
# Optimized DEQUANTIZE, 8-wide blocks: vmlaq_f32(float(-zp*s), float(q), s) = float32(q*s) + float32(-zp*s).
_TFL_OPT_DQ = SimdSplit(8, DequantizeSpec(subtract="mul_then_sub"), _TFL_DQ)
# Per-channel and 4-bit QUANTIZE, per-channel DEQUANTIZE: the reference functions serve every kernel.
_TFL_REF_CASES = (Case(_TFL_REF_Q, granularity="per_axis"), Case(_TFL_REF_Q, formats=("int4", "uint4")))
# The XNNPACK delegate takes int8/uint8 per-tensor QUANTIZE/DEQUANTIZE of rank <= 6 (XNN_MAX_TENSOR_DIMS)
# with at least one element; LiteRT runs every other node on the optimized kernel.
_XNN_TAKES = dict(formats=("int8", "uint8"), granularity="per_tensor", nonempty=True, max_rank=6)

# torch 2.13 quantize_per_tensor, quint8/qint8 (fbgemm QuantizeAvx2, measured on x86): RNE of
# fma(x, 1.0f/s, zp), NaN -> qmax. Per-tensor qint32 and every per-channel quantize take the scalar
# path (ATen quantize_val: two roundings, zp added as a float32; NaN through (T)(double)NaN).
_MUL32 = dict(division="multiply_reciprocal", reciprocal="float32")
_TORCH_Q = QuantizeSpec(**_MUL32, zero_point="before_round_fma", nan="qmax")
_TORCH_Q_SCALAR = QuantizeSpec(**_MUL32, zero_point="before_round", nan="int_cast_truncate")
_TORCH_QUANTIZE = Cases((Case(_TORCH_Q, formats=("uint8", "int8"), granularity="per_tensor"),), _TORCH_Q_SCALAR)
# torch 1.6 - 2.12: the zero point is added after rounding (vector path) / as a float (scalar path).
_TORCH_QUANTIZE_ZP_AFTER = Cases(
    (Case(QuantizeSpec(**_MUL32, zero_point="after_round", nan="qmax"), formats=("uint8", "int8"),
          granularity="per_tensor"),),
    QuantizeSpec(**_MUL32, zero_point="after_round_float", nan="int_cast_truncate"))
# dequantize: per tensor fbgemm Dequantize (q - Z wraps in int32 for qint32); per channel ATen
# dequantize_per_channel_affine_kernel: float(q) - float(Z), times the float64 scale, one rounding.
_TORCH_DEQUANTIZE = Cases((Case(DequantizeSpec(subtract="float", scale_precision="float64"), granularity="per_axis"),),
                          DequantizeSpec(subtract="int32_wrap"))
# torch 2.13 fake_quantize_per_tensor_affine (measured, x86): qval = zp + nearbyint(x * inv) as a
# float sum; NaN -> quant_min (mask 0); +-inf and 1e10 saturate (mask 0); the mask is compared in
# float. Float64 inputs compute in double. Per channel: static_cast<int64_t> (NaN, Inf -> INT64_MIN ->
# quant_min), exact mask, output in the input's precision through the float64 scale.
_TORCH_FQ32 = QuantizeSpec(**_MUL32, zero_point="after_round_float", nan="qmin", overflow="saturate",
                           mask_compare="float")
_TORCH_FQ64 = dataclasses.replace(_TORCH_FQ32, precision="float64")
_TORCH_FAKE_QUANTIZE = Cases((
    Case(dataclasses.replace(_TORCH_FQ64, overflow="int64_cast", mask_compare="int"), granularity="per_axis",
         input_dtypes=("float64",)),
    Case(dataclasses.replace(_TORCH_FQ32, overflow="int64_cast", mask_compare="int"), granularity="per_axis"),
    Case(_TORCH_FQ64, input_dtypes=("float64",)),
), _TORCH_FQ32)
_TORCH_FAKE_DEQUANTIZE = Cases((
    Case(DequantizeSpec(precision="float64", scale_precision="float64"), granularity="per_axis",
         input_dtypes=("float64",)),
    Case(DequantizeSpec(scale_precision="float64"), granularity="per_axis"),
), DequantizeSpec())

# Layers.
_EXACT = LayerSpec()  # the ONNX specification: exact real product, ties to even
# hybrid FULLY_CONNECTED (float input, int8 weights; ref and builtin share tensor_utils' x86 kernels, measured)
_TFL_HYBRID = dict(dynamic_input="per_row_asymmetric_s8", dynamic_output="mul_then_add")
_TFL_REF_FC = LayerSpec("float64_rhaz", "f64_ab_div_c", **_TFL_HYBRID)  # double(acc) * (double(Sx) * double(Sw) / double(Sy))
_TFL_REF_CONV = LayerSpec("fixed_double", "f64_ab_div_c")
_XNN_LAYER = LayerSpec("float32_rne", "f32_ab_div_c", activation_bounds="add_zero_point_then_rne",
                       dynamic_input="per_row_asymmetric_qd8", dynamic_output="scale_then_fma",  # qd8 GEMM (AVX2+)
                       max_requant_scale=256.0)  # xnn_create_*_qs8: the requantization scale must be < 256
_ORT_LAYER = LayerSpec("float32_rne", "f32_ab_div_c", pair_saturation_isas=("avx2",),
                       dynamic_input="per_tensor_u8_dql", dynamic_output="mul_then_add")  # DynamicQuantizeMatMul
# fbgemm: float32 bias / float32(Sx*Sw) added in float (per tensor: times the reciprocal), lrintf of
# acc * M; a product past 2^31 converts to INT32_MIN, which packing saturates to 0. fbgemm multiplies
# u8 x s8 with vpmaddubsw unless the CPU has AVX-512 VNNI; its depthwise kernel always does.
_FBGEMM = dict(requant="float32_rne", multiplier="f32_ab_div_c", bias="float_over_act_times_w_scale",
               bias_reciprocal_per_tensor=True, overflow_to_zero=True, k_order="hwc")  # im2col is NHWC
_FBGEMM_LAYER = LayerSpec(**_FBGEMM, pair_saturation_isas=("avx2", "avx_vnni"), dynamic_input="per_tensor_u8_nudged")
_FBGEMM_DEPTHWISE = LayerSpec(**_FBGEMM, pair_saturation_isas=("avx2", "avx_vnni", "avx512_vnni"))
_FBGEMM_FAMILIES = (("depthwise_k3k5_c8_same_padding", "depthwise"),)  # fbgemmConv's depthwise fast path
# qnnpack: weights + 128 to uint8 (exact), multiplier float32 (Sw * Sx) * (1 / Sy), bias quantized at
# run time, a multiplier that is not a positive normal float32 refused.
_QNNPACK_LAYER = LayerSpec("float32_rne", "f32_ba_times_recip_c", bias="runtime_quantized", k_order="hwc",
                           dynamic_input="per_tensor_u8_nudged",
                           require_normal_multiplier=True, overflow_to_zero=True, dynamic_output="mul_then_add",
                           dynamic_reduce_range=False)

# 16x8 layers (int16 activations with zero point 0, int8 weights; LiteRT 2.3.0, measured). The bias tensor picks
# the kernel: an int64 bias (what the converter writes) runs the reference kernels on every resolver, with an
# int64 accumulator; an int32 bias (quantized_bias_type INT32) keeps an int32 accumulator that wraps, and the
# optimized resolver runs it on ruy (int8 x int16, the int8 output stage). XNNPACK takes no 16x8 node.
_I64 = dict(bias="int64", accumulation="int64")
_I32 = dict(bias="int32", accumulation="wrap_int32")
_TFL16_REF_FC = LayerSpec("float64_rhaz", "f64_ab_div_c", **_I64)  # std::round(double(acc) * M), (int32) cast
_TFL16_REF_FC_I32 = LayerSpec("float64_rhaz", "f64_ab_div_c", **_I32)
_TFL16_REF_CONV = LayerSpec("fixed_int64_reduced16", "f64_ab_div_c", **_I64)  # MBQM(int64 acc): 16-bit multiplier
_TFL16_REF_CONV_I32 = LayerSpec("fixed_double", "f64_ab_div_c", **_I32)  # ConvPerChannel<int32>: the int32 MBQM
_TFL16_RUY_FC = LayerSpec("fixed_double_up_wrap", "f64_ab_div_c", multiplier_per_tensor="f32_ab_then_f64_div", **_I32)
_TFL16_RUY_CONV = LayerSpec("fixed_double_up_wrap", "f64_ab_div_c", **_I32)
# a CONV_2D / DEPTHWISE_CONV_2D without a bias ("none") computes as a zero int64 bias
_TFL16_COMMON = (("conv", "int64", _TFL16_REF_CONV), ("conv", "none", _TFL16_REF_CONV),
                 ("depthwise", "int64", _TFL16_REF_CONV), ("depthwise", "none", _TFL16_REF_CONV),
                 ("linear", "int64", _TFL16_REF_FC))
_TFL16_REFERENCE = _TFL16_COMMON + (("linear", "none", _TFL16_REF_FC), ("linear", "int32", _TFL16_REF_FC_I32),
                                    ("conv", "int32", _TFL16_REF_CONV_I32))
# optimized: FULLY_CONNECTED without a bias and quantized_bias_type unset runs ruy too; grouped convolutions
# run the reference kernel
_TFL16_OPTIMIZED = _TFL16_COMMON + (("linear", "none", _TFL16_RUY_FC), ("linear", "int32", _TFL16_RUY_FC),
                                    ("conv", "int32", _TFL16_RUY_CONV), ("grouped_conv", "int32", _TFL16_REF_CONV_I32))

# Weight-free ops. TFLite's builtin optimized kernels: the int8 ADD (NEON intrinsics through NEON_2_SSE,
# int16 narrowing in blocks of 16 / 8, placed by the broadcast dispatch) is modelled, the uint8 ADD is not; SOFTMAX uses a float32 exp table. The XNNPACK delegate
# takes 8-bit ADD (up to rank 6, scale ratios in [2^-10, 2^8)) and 8-bit MAX_POOL_2D with stride <= filter
# (never AVERAGE_POOL_2D),
# quantizing fused-activation bounds with RNE after adding Z_y; the builtin kernels run what it declines.
# 16x8 (int16) MUL, MEAN, pooling and requantization run the reference functions on every kernel set; the
# optimized 8-bit MUL narrows to int16 in SIMD blocks, the optimized 8-bit requantization and 4-D MEAN
# round half up in 16-element blocks (NEON through NEON_2_SSE on x86; measured, LiteRT 2.3.0).
_TFL_POOL_DTYPES = ("int8", "uint8", "int16")
_TFL_REQUANTIZE = tuple((x, y, "fixed_point") for x in ("int8", "uint8") for y in ("int8", "uint8", "int16")) + (
    ("int16", "int8", "fixed_point"), ("int16", "int16", "fixed_point"))
_TFL_REF_POINTWISE = PointwiseSpec(add=(("int8", "fixed_point_shift20"), ("uint8", "fixed_point_shift20"),
                                        ("int16", "fixed_point_shift15")),
                                   mul=(("int8", "fixed_point"), ("uint8", "fixed_point"), ("int16", "fixed_point")),
                                   pool_dtypes=_TFL_POOL_DTYPES,
                                   mean=(("int8", "fixed_point"), ("uint8", "fixed_point"), ("int16", "fixed_point")),
                                   requantize=_TFL_REQUANTIZE)
_TFL_OPT_POINTWISE = PointwiseSpec(add=(("int8", "fixed_point_shift20_simd16"), ("uint8", "not_modelled"),
                                        ("int16", "fixed_point_shift15_simd16")),
                                   mul=(("int8", "fixed_point_narrow16"), ("uint8", "fixed_point_narrow16"),
                                        ("int16", "fixed_point")), softmax="float_table",
                                   int16_sigmoid="table_interpolation_pot_fixed_point",  # LOGISTIC/TANH int16
                                   pool_dtypes=_TFL_POOL_DTYPES,
                                   mean=(("int8", "fixed_point_4d_blocks"), ("uint8", "fixed_point_4d_blocks"),
                                         ("int16", "fixed_point")),
                                   requantize=tuple((x, y, "fixed_point_simd16" if "int16" not in (x, y) else k)
                                                    for x, y, k in _TFL_REQUANTIZE))
# XNNPACK MUL (measured where it takes the node): the exact product, float32 RNE requantization,
# TFLite's own activation bounds; it declines int16 and ratios fl(fl(S_a S_b) / S_y) outside [2^-16, 256).
# MEAN int8/uint8 (any axes, rank <= 6): the raw int32 sum converted in float32 with both zero points folded
# into one float32 constant (also the global average pool); QUANTIZE int8 -> int8, uint8 -> uint8: an 8-bit converter.
_XNN_POINTWISE = PointwiseSpec(add=(("int8", "rescale"), ("uint8", "rescale")), add_max_rank=6,
                               mul=(("int8", "float32_requant"), ("uint8", "float32_requant")),
                               mean=(("int8", "float32"), ("uint8", "float32")),
                               requantize=(("int8", "int8", "shift8"), ("uint8", "uint8", "shift8")),
                               activation_bounds="add_zero_point_then_rne", average_pool=False,
                               max_pool_when="8bit_stride_in_filter",
                               softmax="float_table", logistic="double_table_rne", global_average_pool="mean_float32",
                               tanh="float_table_rne",  # int8/uint8 TANH: XNNPACK's table of tanhf (measured)
                               int16_sigmoid="table_interpolation_pot_fixed_point",  # int16: the builtin kernels
                               fallback=_TFL_OPT_POINTWISE)
# ATen's qadd_kernel in float32 (vector blocks and tail); qnnpack's q8vadd for quint8.
_NO_MUL = (("int8", "not_modelled"), ("uint8", "not_modelled"))
_TORCH_POINTWISE = PointwiseSpec(add=(("uint8", "float32_blocks"), ("int8", "float32_blocks")), mul=_NO_MUL,
                                 tanh="not_modelled", global_average_pool="mean_codes_rne")
_QNNPACK_POINTWISE = PointwiseSpec(add=(("uint8", "pot_shift"), ("int8", "float32_blocks")), mul=_NO_MUL,
                                   tanh="not_modelled", global_average_pool="mean_offset_codes_rne")
_ORT_POINTWISE = PointwiseSpec(add=(("uint8", "float32_fma"), ("int8", "float32_fma")),
                               mul=(("uint8", "float32_fma"), ("int8", "float32_fma")), logistic="rational_float32",
                               tanh="not_modelled", global_average_pool="float_requant")

# PyTorch's x86 engine: fbgemm, except that on a CPU with AVX-512 VNNI a convolution with symmetric weights
# and at most 100 groups is packed for oneDNN (should_use_onednn_quant), whose output stage applies the
# scales one by one (float32, bias between, Z_y before rounding; measured on oneDNN 3.12, torch 2.13).
# Geometries where oneDNN 3.12's results change from run to run (or it crashes) are refused; one
# deterministic defect (a zero accumulator) is modelled.
_ONEDNN_CONV = ConvDispatch(
    LayerSpec("float32_scale_chain", "exact", bias="float_after_scales", accumulation="wrap_int32"),
    isas=("avx512_vnni",), max_groups=100, symmetric_weights=True,
    refused=("one_channel_groups", "padded_single_column", "strided_dilated_padded_column"),
    zero_accumulator=("depthwise_kh1_row_padding",))

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("onnx", "ONNX operator specification (QuantizeLinear: RNE of x / y_scale, then + zero point, saturate)",
            quantize=_ONNX_Q, dequantize=DequantizeSpec(precision="scale"),  # the output type is the scale's
            fake_quantize=_RNE_DIV, fake_dequantize=DequantizeSpec(), linear=_EXACT, conv=_EXACT,
            sources="the ONNX operator specification (QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv)"),
    Profile("onnx_reference", "onnx.reference.ReferenceEvaluator (np.rint, int32 cast before the clip)",
            quantize=QuantizeSpec(precision="input", nan="int_cast", overflow="int_cast"),
            dequantize=DequantizeSpec(subtract="float"), fake_quantize=_RNE_DIV,
            linear=LayerSpec("float64_rne", "f32_ab_div_c"), conv=LayerSpec("float64_rne", "f32_ab_div_c"),
            sources="onnx.reference op implementations (measured, onnx 1.23)"),
    Profile("onnxruntime", "ONNX Runtime CPU EP (MLAS), x86-64: divps, clamp in float, cvtps2dq (RNE)",
            quantize=QuantizeSpec(clamp="before_round", nan="qmin"),
            dequantize=DequantizeSpec(subtract="int32_wrap"),  # MLAS: (int32)(x - zp) * scale
            # QLinearConv's im2col is NHWC: u8 x s8 pairs in (kH, kW, c) order on AVX2
            fake_quantize=_RNE_DIV, linear=_ORT_LAYER, conv=dataclasses.replace(_ORT_LAYER, k_order="hwc"),
            # depthwise with multiplier 1 runs MLAS's exact u8s8 depthwise kernel
            depthwise=dataclasses.replace(_ORT_LAYER, pair_saturation_isas=()),
            conv_families=(("depthwise_equal_weight_zero_points", "depthwise"),),
            # ConvInteger: W . im2col(x) through QGEMM, so int8 x with uint8 w pairs (weights unsigned)
            integer_conv=dataclasses.replace(_ORT_LAYER, pair_operands=(("int8", "uint8"),)),
            pointwise=_ORT_POINTWISE,
            sources="MLAS QuantizeLinear, QGEMM and requantize kernels (measured, ONNX Runtime 1.32)"),
    Profile("tflite_reference", "TFLite/LiteRT reference kernels (BUILTIN_REF): std::round(x / s), gemmlowp double rounding",
            quantize=_TFL_REF_Q, dequantize=_TFL_DQ, fake_quantize=QuantizeSpec(rounding="half_away_from_zero"),
            linear=_TFL_REF_FC, conv=_TFL_REF_CONV,
            layers_16x8=_TFL16_REFERENCE,
            pointwise=_TFL_REF_POINTWISE,
            sources="reference_ops / reference_integer_ops (measured, LiteRT 2.3.0)"),
    Profile("tflite_xnnpack", "TFLite with the XNNPACK delegate: x * (1/s) RNE; fp32 requantization",
            quantize=Cases(_TFL_REF_CASES + (Case(_XNN_Q, **_XNN_TAKES),), _TFL_OPT_Q),
            dequantize=Cases((Case(_TFL_DQ, granularity="per_axis"),
                              Case(DequantizeSpec(subnormal_scale="refuse"), **_XNN_TAKES)), _TFL_OPT_DQ),
            fake_quantize=QuantizeSpec(division="multiply_reciprocal"), fake_dequantize=_TFL_DQ,
            linear=_XNN_LAYER, conv=_XNN_LAYER, pointwise=_XNN_POINTWISE,
            layers_16x8=_TFL16_OPTIMIZED,  # the delegate declines every 16x8 node
            sources="XNNPACK qs8/qu8 kernels through the LiteRT delegate (measured, LiteRT 2.3.0)"),
    Profile("tflite_optimized", "TFLite builtin optimized kernels on x86 (ruy AVX2: two half-up roundings)",
            quantize=Cases(_TFL_REF_CASES, _TFL_OPT_Q),
            dequantize=Cases((Case(_TFL_DQ, granularity="per_axis"),), _TFL_OPT_DQ),
            fake_quantize=QuantizeSpec(division="multiply_reciprocal", nan="int_cast", overflow="int_cast"),
            fake_dequantize=_TFL_DQ,
            # ruy; per-tensor FC: GetQuantizedConvolutionMultipler (float32 product, then double)
            linear=LayerSpec("fixed_double_up_wrap", "f64_ab_div_c", multiplier_per_tensor="f32_ab_then_f64_div",
                             **_TFL_HYBRID),
            conv=LayerSpec("fixed_double_up_wrap", "f64_ab_div_c"),
            grouped_conv=_TFL_REF_CONV,  # LiteRT runs grouped convolutions on the reference kernel
            # 8-channel vector blocks round the second step half up (DepthwiseConvOutputRounding
            # kUpward); the scalar tail of the last O % 8 channels calls the reference MBQM.
            depthwise=LayerSpec("fixed_double_up", "f64_ab_div_c", tail_block=8, tail_requant="fixed_double"),
            pointwise=_TFL_OPT_POINTWISE, layers_16x8=_TFL16_OPTIMIZED,
            sources="optimized_ops, ruy AVX2 kernels (measured, LiteRT 2.3.0 x86-64)"),
    Profile("pytorch_fbgemm", "PyTorch 2.13 CPU, engine fbgemm: fma(x, 1/s, zp) RNE; lrintf requantization",
            quantize=_TORCH_QUANTIZE, dequantize=_TORCH_DEQUANTIZE, fake_quantize=_TORCH_FAKE_QUANTIZE,
            fake_dequantize=_TORCH_FAKE_DEQUANTIZE, linear=_FBGEMM_LAYER, conv=_FBGEMM_LAYER,
            depthwise=_FBGEMM_DEPTHWISE, conv_families=_FBGEMM_FAMILIES, pointwise=_TORCH_POINTWISE,
            sources="fbgemm QuantizeAvx2 / requantization, ATen quantized CPU kernels (measured, torch 2.13)"),
    Profile("pytorch_x86", "PyTorch 2.13 CPU, engine x86: fbgemm, with symmetric-weight convolutions on oneDNN "
            "on AVX-512 VNNI CPUs",
            quantize=_TORCH_QUANTIZE, dequantize=_TORCH_DEQUANTIZE, fake_quantize=_TORCH_FAKE_QUANTIZE,
            fake_dequantize=_TORCH_FAKE_DEQUANTIZE, linear=_FBGEMM_LAYER, conv=_FBGEMM_LAYER,
            depthwise=_FBGEMM_DEPTHWISE, conv_families=_FBGEMM_FAMILIES, conv_dispatch=(_ONEDNN_CONV,),
            pointwise=_TORCH_POINTWISE,
            sources="fbgemm and oneDNN 3.12 int8 convolution through ideep (measured, torch 2.13, AVX-512 VNNI)"),
    Profile("pytorch_fbgemm_zp_after", "PyTorch 1.6-2.12 CPU quantize (zero point added after rounding); "
            "otherwise as pytorch_fbgemm",
            quantize=_TORCH_QUANTIZE_ZP_AFTER, dequantize=_TORCH_DEQUANTIZE, fake_quantize=_TORCH_FAKE_QUANTIZE,
            fake_dequantize=_TORCH_FAKE_DEQUANTIZE, linear=_FBGEMM_LAYER, conv=_FBGEMM_LAYER,
            depthwise=_FBGEMM_DEPTHWISE, conv_families=_FBGEMM_FAMILIES, pointwise=_TORCH_POINTWISE,
            sources="fbgemm QuantizeAvx2 before torch 2.13 (read in source)"),
    Profile("pytorch_qnnpack", "PyTorch 2.13 CPU, engine qnnpack: weights +128 to uint8; runtime-quantized bias",
            quantize=_TORCH_QUANTIZE, dequantize=_TORCH_DEQUANTIZE, fake_quantize=_TORCH_FAKE_QUANTIZE,
            fake_dequantize=_TORCH_FAKE_DEQUANTIZE, linear=_QNNPACK_LAYER, conv=_QNNPACK_LAYER,
            pointwise=_QNNPACK_POINTWISE,
            sources="qnnpack requantization and PackedLinearWeightsQnnp (measured, torch 2.13)"),
    Profile("gemmlowp", "gemmlowp: quantization_example.cc (round(zp + x/s)) and the fixed-point output stage",
            # NaN -> qmax: std::max(0.f, std::min(255.f, NaN)) is 255 (std::min returns its first
            # argument when the comparison with NaN is false).
            quantize=QuantizeSpec(rounding="half_away_from_zero", zero_point="before_round", clamp="before_round",
                                  nan="qmax"),
            fake_quantize=QuantizeSpec(rounding="half_away_from_zero"),
            linear=_TFL_REF_CONV, conv=_TFL_REF_CONV, sources="gemmlowp doc/quantization.md"),
)}

def as_profile(value, name: str = "profile") -> Profile:
    """``value`` (a :class:`Profile` or a key of :data:`PROFILES`) as a :class:`Profile`; the
    error names the argument ``name`` (the callers' ``profile=``)."""
    if isinstance(value, Profile):
        return value
    if isinstance(value, str) and value in PROFILES:
        return PROFILES[value]
    raise QuantizationValueError(f"{name} must be one of {sorted(PROFILES)} or a Profile, got {describe(value)}")


def get_profile(name, *, isa: str | None = None) -> Profile:
    """Return a named profile (or pass a :class:`Profile` through).

    Args:
        name: A key of :data:`PROFILES` or a :class:`Profile`.
        isa: Resolve the accumulation models for an instruction set (see :meth:`Profile.with_isa`);
            ``None`` keeps the profile's own (``"exact"`` for the registered profiles).

    Raises:
        QuantizationValueError: Unknown name.
    """
    p = as_profile(name, "name")
    return p if isa is None else p.with_isa(isa)


def list_profiles() -> list[str]:
    """Names of the registered profiles."""
    return sorted(PROFILES)
