"""Backend profiles: every arithmetic choice that makes backends disagree, by name.

A :class:`Profile` is a small frozen record of choices (backends.md §4.2); the
core functions and kernels read them, so a new backend is a new profile, never an
``if backend == ...`` inside a kernel. The named profiles reproduce:

| name | backend behaviour |
|---|---|
| ``onnx`` | the ONNX operator specification (QuantizeLinear, QLinearMatMul, ...) |
| ``onnx_reference`` | ``onnx.reference.ReferenceEvaluator`` where it departs from the spec |
| ``onnxruntime`` | ONNX Runtime CPU execution provider (MLAS), x86-64 |
| ``tflite_reference`` | TFLite/LiteRT builtin reference kernels (``BUILTIN_REF``) |
| ``tflite_xnnpack`` | TFLite with the XNNPACK delegate (default ``BUILTIN`` resolver) |
| ``tflite_optimized`` | TFLite builtin optimized kernels on x86 (ruy AVX2), no delegate |
| ``pytorch_fbgemm`` | PyTorch 2.13 quantized CPU ops, engines ``fbgemm`` / ``x86`` |
| ``pytorch_qnnpack`` | PyTorch 2.13 quantized CPU ops, engine ``qnnpack`` |
| ``gemmlowp`` | gemmlowp's documented quantization example and fixed-point output stage |

Requantization names (field ``requant``), used by :mod:`refquant.kernels`:
``fixed_double`` (gemmlowp SRDHM then RoundingDivideByPOT), ``fixed_single``
(``TFLITE_SINGLE_ROUNDING``), ``fixed_double_up`` (SRDHM then a half-up shift: ruy
AVX2, NEON 4Rows), ``fixed_int64_reduced16`` (TFLite 16x8), ``float32_rne``
(``lrintf(float(acc) * m)``: ORT, XNNPACK, fbgemm, qnnpack), ``float64_rhaz`` (TFLite
reference FullyConnected), ``float64_rne`` (onnx reference evaluator), ``exact_rne``
(the ONNX specification: exact real product, ties to even).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .cpu import resolve_isa
from .errors import QuantizationValueError
from .quantize import DequantizeSpec, QuantizeSpec

__all__ = ["Profile", "get_profile", "list_profiles", "PROFILES"]

_REQUANT = ("fixed_double", "fixed_single", "fixed_double_up", "fixed_int64_reduced16",
            "float32_rne", "float64_rhaz", "float64_rne", "exact_rne")
_MULTIPLIER = ("f32_ab_div_c", "f64_ab_div_c", "f32_ba_times_recip_c", "f32_ab_then_f64_div", "exact")
_BIAS = ("int32", "float_over_act_times_w_scale", "runtime_quantized")
_ACC = ("exact_int32", "wrap_int32", "pairwise_sat16_u8s8", "int64")


@dataclass(frozen=True)
class Profile:
    """One backend's arithmetic choices.

    Attributes:
        name: Registry name.
        description: One line: which backend, version and path.
        quantize: float -> int (:class:`refquant.quantize.QuantizeSpec`).
        dequantize: int -> float (:class:`refquant.quantize.DequantizeSpec`).
        fake_quantize: float -> float simulation used in training (PyTorch adds the
            zero point after rounding there, unlike its ``quantize_per_tensor``).
        requant: Requantization of int32 accumulators (see module docstring).
        multiplier: How the real multiplier $S_x S_w / S_y$ is formed: ``f32_ab_div_c``
            (float32 ``(a*b)/c``), ``f64_ab_div_c`` (double), ``f32_ba_times_recip_c``
            (float32 ``(w*x)*(1/y)``, qnnpack), ``f32_ab_then_f64_div`` (TFLite legacy
            uint8), ``exact``.
        single_rounding: ``TFLITE_SINGLE_ROUNDING`` build of ``QuantizeMultiplier``.
        bias: ``int32`` (added to the accumulator), ``float_over_act_times_w_scale``
            (fbgemm: float bias divided by $S_x S_w$ in float), ``runtime_quantized``
            (qnnpack: quantized at run time with RNE of ``b * (1/(S_w S_x))``).
        accumulation: ``exact_int32``, ``wrap_int32``, ``pairwise_sat16_u8s8`` (x86
            ``vpmaddubsw`` without VNNI) or ``int64``.
        weight_narrow: Weights use $[-127, 127]$ (TFLite).
        activation_reduce_range: ``None``, ``"pytorch"`` or ``"onnxruntime"``.
        clamp_float_before_round: Requant clamps in float before rounding (ORT, XNNPACK).
        u8s8_follows_isa: The backend runs u8×s8 products through x86 ``vpmaddubsw`` when the
            CPU has no VNNI (ONNX Runtime MLAS, fbgemm), so :meth:`with_isa` sets ``accumulation``.
        sources: Where the behaviour was read or measured (backends.md sections).
    """

    name: str
    description: str
    quantize: QuantizeSpec = field(default_factory=QuantizeSpec)
    dequantize: DequantizeSpec = field(default_factory=DequantizeSpec)
    fake_quantize: QuantizeSpec = field(default_factory=QuantizeSpec)
    requant: str = "exact_rne"
    multiplier: str = "exact"
    single_rounding: bool = False
    bias: str = "int32"
    accumulation: str = "exact_int32"
    weight_narrow: bool = False
    activation_reduce_range: str | None = None
    clamp_float_before_round: bool = False
    u8s8_follows_isa: bool = False
    sources: str = ""

    def __post_init__(self):
        for name, allowed in (("requant", _REQUANT), ("multiplier", _MULTIPLIER),
                              ("bias", _BIAS), ("accumulation", _ACC)):
            if getattr(self, name) not in allowed:
                raise QuantizationValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def replace(self, **changes) -> "Profile":
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_isa(self, isa: str = "auto") -> "Profile":
        """Return this profile with the u8×s8 accumulation model of an instruction set.

        Only profiles with ``u8s8_follows_isa`` (their backend uses ``vpmaddubsw`` on x86) change:
        ``"avx2"`` gives ``pairwise_sat16_u8s8``, ``"vnni"``/``"exact"`` give ``exact_int32``.
        """
        isa = resolve_isa(isa)
        if not self.u8s8_follows_isa or self.accumulation not in ("exact_int32", "pairwise_sat16_u8s8"):
            return self
        return self.replace(accumulation="pairwise_sat16_u8s8" if isa == "avx2" else "exact_int32")


_RNE_DIV = QuantizeSpec()  # the ONNX specification
# torch 2.13 quantize_per_tensor, quint8/qint8 (fbgemm QuantizeAvx2, measured on x86): RNE of
# fma(x, 1.0f/s, zp), NaN -> qmax. Per-tensor qint32 and every per-channel quantize take the scalar
# path (two roundings, zp added as a float32): the PyTorch face selects that spec by dtype/granularity.
_TORCH_Q = QuantizeSpec(division="multiply_reciprocal", reciprocal="float32", zero_point="before_round_fma",
                        nan="qmax")
# torch 2.13 fake_quantize_per_tensor_affine (measured, x86): qval = zp + nearbyint(x * inv) as a
# float32 sum; NaN -> quant_min (mask 0); +-inf and 1e10 saturate (mask 0); the mask is compared in
# float. The per-channel kernel differs on +inf (static_cast<int64_t>(inf) -> INT64_MIN ->
# quant_min) and computes in double: the PyTorch face derives that spec from this one.
_TORCH_FQ = QuantizeSpec(division="multiply_reciprocal", reciprocal="float32", zero_point="after_round_float",
                         nan="qmin", overflow="saturate", mask_compare="float")

PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("onnx", "ONNX operator specification (QuantizeLinear: RNE of x / y_scale, then + zero point, saturate)",
            quantize=_RNE_DIV, fake_quantize=_RNE_DIV, requant="exact_rne", multiplier="exact",
            sources="backends.md §2.1-§2.4"),
    Profile("onnx_reference", "onnx.reference.ReferenceEvaluator (np.rint, int32 cast before the clip)",
            quantize=QuantizeSpec(precision="input", nan="int_cast", overflow="int_cast"),
            dequantize=DequantizeSpec(subtract="float"),
            fake_quantize=_RNE_DIV, requant="float64_rne", multiplier="f32_ab_div_c",
            sources="backends.md §2.1, §2.4, §9"),
    Profile("onnxruntime", "ONNX Runtime CPU EP (MLAS), x86-64: divps, clamp in float, cvtps2dq (RNE)",
            quantize=QuantizeSpec(clamp="before_round", nan="qmin"), fake_quantize=_RNE_DIV,
            requant="float32_rne", multiplier="f32_ab_div_c", accumulation="exact_int32",
            activation_reduce_range=None, clamp_float_before_round=True, u8s8_follows_isa=True,
            sources="backends.md §2.5, §2.6"),
    Profile("tflite_reference", "TFLite/LiteRT reference kernels (BUILTIN_REF): std::round(x / s), gemmlowp double rounding",
            quantize=QuantizeSpec(rounding="half_away_from_zero", nan="int_cast", overflow="int_cast"),
            fake_quantize=QuantizeSpec(rounding="half_away_from_zero"),
            requant="fixed_double", multiplier="f64_ab_div_c", weight_narrow=True,
            sources="backends.md §1.1-§1.9, §8"),
    Profile("tflite_xnnpack", "TFLite with the XNNPACK delegate: x * (1/s) RNE; fp32 requantization",
            # XNNPACK's thread pool runs its kernels with FTZ/DAZ set (measured: subnormal x -> 0)
            quantize=QuantizeSpec(division="multiply_reciprocal", clamp="before_round", nan="qmax",
                                  denormals="flush"),
            fake_quantize=QuantizeSpec(division="multiply_reciprocal"),
            requant="float32_rne", multiplier="f32_ab_div_c", weight_narrow=True,
            clamp_float_before_round=True, sources="backends.md §1.7, §8"),
    Profile("tflite_optimized", "TFLite builtin optimized kernels on x86 (ruy AVX2: two half-up roundings)",
            quantize=QuantizeSpec(division="multiply_reciprocal", nan="int_cast", overflow="int_cast"),
            requant="fixed_double_up", multiplier="f64_ab_div_c", weight_narrow=True,
            sources="backends.md §1.4, §1.9, §8 (QUANTIZE is position dependent: blocks of 8 vs tail)"),
    Profile("pytorch_fbgemm", "PyTorch 2.13 CPU, engines fbgemm/x86: fma(x, 1/s, zp) RNE; lrintf requantization",
            quantize=_TORCH_Q, fake_quantize=_TORCH_FQ, requant="float32_rne", multiplier="f32_ab_div_c",
            bias="float_over_act_times_w_scale", accumulation="exact_int32", activation_reduce_range="pytorch",
            u8s8_follows_isa=True, sources="backends.md §3.1-§3.4"),
    Profile("pytorch_qnnpack", "PyTorch 2.13 CPU, engine qnnpack: weights +128 to uint8; runtime-quantized bias",
            quantize=_TORCH_Q, fake_quantize=_TORCH_FQ, requant="float32_rne", multiplier="f32_ba_times_recip_c",
            bias="runtime_quantized", sources="backends.md §3.5"),
    Profile("gemmlowp", "gemmlowp: quantization_example.cc (round(zp + x/s)) and the fixed-point output stage",
            # NaN -> qmax: std::max(0.f, std::min(255.f, NaN)) is 255 (std::min returns its first
            # argument when the comparison with NaN is false).
            quantize=QuantizeSpec(rounding="half_away_from_zero", zero_point="before_round", clamp="before_round",
                                  nan="qmax"),
            fake_quantize=QuantizeSpec(rounding="half_away_from_zero"),
            requant="fixed_double", multiplier="f64_ab_div_c", sources="gemmlowp doc/quantization.md"),
)}

def get_profile(name, *, isa: str | None = None) -> Profile:
    """Return a named profile (or pass a :class:`Profile` through).

    Args:
        name: A key of :data:`PROFILES` or a :class:`Profile`.
        isa: For profiles with ``u8s8_follows_isa`` (``onnxruntime``, ``pytorch_fbgemm``): ``"auto"`` (the running CPU),
            ``"avx2"``, ``"vnni"`` or ``"exact"``; ``None`` keeps the stored model.

    Raises:
        QuantizationValueError: Unknown name.
    """
    if isinstance(name, Profile):
        p = name
    else:
        try:
            p = PROFILES[name]
        except (KeyError, TypeError):
            raise QuantizationValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}") from None
    return p if isa is None else p.with_isa(isa)


def list_profiles() -> list[str]:
    """Names of the registered profiles."""
    return sorted(PROFILES)
