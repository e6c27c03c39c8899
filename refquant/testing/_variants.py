"""The candidate arithmetics a mismatching result is tested against.

A candidate (:class:`Variant`) is a complete recipe for one op: a
:class:`~refquant.profiles.Profile` (every backend choice, as data), plus, where it matters,
which of the profile's steps makes the codes and a requantization rounding that replaces the
profile's. :func:`variants_for` lists, for one call and one expectation:

1. **the backends** — every registered profile (:data:`refquant.profiles.PROFILES`); a profile whose
   accumulation depends on the instruction set twice, ``@avx2`` (x86 ``vpmaddubsw``: u8 x s8 pair
   sums saturate to int16) and ``@vnni`` (exact); for quantize ops also each profile's
   fake-quantize step (``:fake_quantize``), for fake-quantize ops each profile's quantize followed
   by dequantize (``:quantize+dequantize``);
2. **one change to your expectation** — the expectation's spec with one field replaced
   (``dataclasses.replace``): rounding mode, divide vs reciprocal multiply, zero point before or
   after rounding, clamp before or after, precision (quantize); requantization mode (single vs
   double rounding, fixed point vs float), multiplier derivation, bias handling, fused-activation
   bounds (layers); the add kernel (add);
3. **a hand-written requantization** (layers) — the expectation's accumulation and bias, then
   $\\mathrm{round}(\\mathrm{fl}(\\mathrm{acc} \\cdot M))$ with $M$ in float32 or float64 and each of
   half to even, half away from zero, half up, floor, toward zero: what a kernel written from the
   equation computes.

Labels name the candidate: ``tflite_reference``, ``onnxruntime@avx2``,
``pytorch_fbgemm:fake_quantize``, ``tflite_xnnpack[requant=fixed_single]``,
``round=half_up/float32``.

Added in 0.2.0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import RefquantError
from ..modes import ADD_KERNELS, DERIVATIONS
from ..profiles import PROFILES, Profile
from ..specs import SimdSplit, select_spec
from ._variants_words import isa_dependent

__all__ = ["ROUNDINGS", "Variant", "expected_variant", "profile_label", "variants_for"]

#: The rounding rules of the hand-written requantization candidates.
ROUNDINGS = ("half_to_even", "half_away_from_zero", "half_up", "floor", "toward_zero")
_ISA_SUFFIX = {"avx2": "@avx2", "avx512_vnni": "@vnni", "avx_vnni": "@avx_vnni", "exact": ""}
_QUANTIZE_FLIPS = {"rounding": ROUNDINGS, "division": ("divide", "multiply_reciprocal"),
                   "zero_point": ("after_round", "before_round", "before_round_fma"),
                   "clamp": ("after_round", "before_round"), "precision": ("float32", "float64")}
_DEQUANTIZE_FLIPS = {"subtract": ("int", "int32_wrap", "float", "mul_then_sub"), "scale_precision": (None, "float64")}
_REQUANTS = ("fixed_double", "fixed_single", "fixed_double_up", "float32_rne", "float64_rhaz", "float64_rne",
             "exact_rne")
_BIASES = ("int32", "float_over_act_times_w_scale", "runtime_quantized")
_BOUNDS = ("round_then_add_zero_point", "add_zero_point_then_rne")


@dataclass(frozen=True)
class Variant:
    """One candidate arithmetic.

    Attributes:
        label: Its short name (module docstring).
        profile: The profile whose specs it runs (ISA resolved).
        origin: ``"backend"`` (a registered profile), ``"spec"`` (one field of the expectation
            changed) or ``"rounding"`` (a hand-written requantization).
        step: Quantize ops: the profile step that makes the codes (``"quantize"`` or
            ``"fake_quantize"``); fake-quantize ops: ``"fake_quantize"`` or ``"quantize"``
            (quantize, then dequantize).
        rounding: ``origin="rounding"``: the rule of :mod:`refquant.rounding` that rounds
            $\\mathrm{acc} \\cdot M$; else ``None``.
        precision: ``origin="rounding"``: ``"float32"`` or ``"float64"``, the product's precision.
    """

    label: str
    profile: Profile
    origin: str = "backend"
    step: str = "quantize"
    rounding: str | None = None
    precision: str = "float32"


def profile_label(profile: Profile) -> str:
    """``"onnxruntime@avx2"``: the profile's name and, if its accumulation depends on it, the ISA."""
    return profile.name + (_ISA_SUFFIX.get(profile.isa, "@" + profile.isa) if isa_dependent(profile) else "")


def expected_variant(profile: Profile, kind: str) -> Variant:
    """The candidate that is the expectation itself (the profile's own step for the op)."""
    return Variant(profile_label(profile), profile, "backend", "fake_quantize" if kind == "fake_quantize" else "quantize")


def _backends(call) -> list[Variant]:
    out = []
    for p in PROFILES.values():
        if call.kind in ("layer", "model") and isa_dependent(p):
            out += [Variant(profile_label(q), q) for q in (p.with_isa("avx2"), p.with_isa("vnni"))]
        elif call.kind == "quantize":
            out += [Variant(p.name, p), Variant(p.name + ":fake_quantize", p, step="fake_quantize")]
        elif call.kind == "fake_quantize":
            out += [Variant(p.name, p, step="fake_quantize"), Variant(p.name + ":quantize+dequantize", p)]
        else:
            out.append(Variant(p.name, p))
    return out


def _replace(spec, **change):
    """``dataclasses.replace`` on a spec, or on both halves of a :class:`~refquant.specs.SimdSplit`."""
    if isinstance(spec, SimdSplit):
        return SimdSplit(spec.block, _replace(spec.body, **change), _replace(spec.tail, **change))
    return dataclasses.replace(spec, **change)


def _flips(spec, table: dict):
    """``(field, value, new spec)`` for each one-field change of ``spec`` that is valid and new."""
    for name, values in table.items():
        for value in values:
            try:
                new = _replace(spec, **{name: value})
            except (RefquantError, TypeError):  # a combination the spec refuses, or a field it lacks
                continue
            if new != spec:
                yield name, value, new


def _spec_variants(call, expected: Variant) -> list[Variant]:
    e, base = expected.profile, expected.label
    out = []

    def add(name, value, **profile_change):
        out.append(Variant(f"{base}[{name}={value}]", e.replace(**profile_change), "spec", expected.step))

    if call.kind in ("quantize", "fake_quantize"):  # the step that makes the expectation's codes
        for name, value, new in _flips(_select(getattr(e, expected.step), call.qparams, call.x), _QUANTIZE_FLIPS):
            add(name, value, **{expected.step: new})
    elif call.kind == "dequantize":
        for name, value, new in _flips(_select(e.dequantize, call.qparams, call.q), _DEQUANTIZE_FLIPS):
            add(name, value, dequantize=new)
    elif call.kind == "layer":
        family, spec = call.family(e), call.spec(e)
        table = {"requant": _REQUANTS, "multiplier": DERIVATIONS}
        if spec.requant.startswith("fixed"):
            table["single_rounding"] = (not spec.single_rounding,)
        if call.bias is not None:
            table["bias"] = _BIASES
        if call.activation not in (None, "NONE"):
            table["activation_bounds"] = _BOUNDS
        for name, value, new in _flips(spec, table):
            if name == "multiplier" and value == "exact" and spec.require_normal_multiplier:
                continue  # an exact rational multiplier has no float32 normality to check
            if name == "multiplier":
                new = dataclasses.replace(new, multiplier_per_tensor=None)
            add(name, value, **{family: new})
    elif call.kind == "add":
        own, _ = call.kernel(e)
        pw = e.pointwise
        for kernel in ADD_KERNELS:
            if kernel not in (own, "not_modelled"):
                add("add", kernel, pointwise=dataclasses.replace(pw, add=((call.a.dtype.name, kernel),), fallback=None))
        if call.activation not in (None, "NONE"):
            for name, value, new in _flips(pw, {"activation_bounds": _BOUNDS}):
                add(name, value, pointwise=new)
    return out


def _select(entry, qparams, tensor):
    """The spec ``entry`` applies to ``tensor`` (its cases resolved)."""
    return select_spec(entry, qparams, tensor.shape, tensor.dtype if tensor.dtype.kind == "f" else None)


def _rounding_variants(expected: Variant) -> list[Variant]:
    return [Variant(f"round={r}/{p}", expected.profile, "rounding", rounding=r, precision=p)
            for p in ("float32", "float64") for r in ROUNDINGS]


def variants_for(call, expected: Variant) -> list[Variant]:
    """Every candidate for ``call`` (a record of ``_variants_calls``), given
    the expectation: the backends, then one-field changes of the expectation, then (layers) the
    hand-written requantizations. Labels are unique; the order is the tie-break of a ranking."""
    found = _backends(call) + _spec_variants(call, expected)
    if call.kind == "layer":
        found += _rounding_variants(expected)
    seen, out = set(), []
    for v in found:
        if v.label not in seen:
            seen.add(v.label)
            out.append(v)
    return out
