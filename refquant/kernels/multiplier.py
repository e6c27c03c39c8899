r"""Offline requantization parameters: the real multiplier, fused-activation ranges, runtime bias.

A quantized linear layer ends by rescaling its int32 accumulator with the real multiplier

$$ M_c = \frac{S_x \, S_w[c]}{S_y} \tag{1} $$

(one per output channel $c$ for per-channel weights). Every factor is a float32 scale, but
backends do not agree on *how* eq. (1) is evaluated, and the last bit of $M_c$ can move a
result across a rounding tie. :func:`real_multiplier` evaluates it in each backend's way:

| ``derivation`` | operations | result | backends |
|---|---|---|---|
| ``"f32_ab_div_c"`` | ``(a * b) / c`` in float32 | float32 | ONNX Runtime (QLinearMatMul/Conv), XNNPACK, fbgemm, onnx.reference |
| ``"f64_ab_div_c"`` | ``double(a) * double(b) / double(c)`` | float64 | TFLite per-channel conv/FC (``PopulateConvolutionQuantizationParams``) |
| ``"f32_ba_times_recip_c"`` | ``(b * a) * (1.f / c)`` in float32 | float32 | PyTorch qnnpack (``generate_requantization_scales``) |
| ``"f32_ab_then_f64_div"`` | ``double(a * b) / double(c)``, product in float32 | float64 | TFLite legacy uint8 (``GetQuantizedConvolutionMultipler``) |
| ``"exact"`` | the exact rational $S_x S_w / S_y$ of the float32 values | ``Fraction`` | the ONNX specification |

:func:`requant_params` then turns $M_c$ into what a requantization mode consumes
(:mod:`refquant.kernels.requant`): a float, or TFLite's ``(quantized_multiplier, shift)``
(:func:`refquant.fixedpoint_multiplier.quantize_multiplier`). Everything here runs once per model
(float allowed); the runtime integer path is in :mod:`.requant`.

Added in 0.1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, INT32_MIN
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..fixedpoint_multiplier import quantize_multiplier
from ..modes import ACTIVATION_BOUNDS, DERIVATIONS, REQUANT_MODES
from ..rounding import round_half_away_from_zero

__all__ = [
    "DERIVATIONS",
    "REQUANT_MODES",
    "RequantParams",
    "real_multiplier",
    "requant_params",
    "activation_range",
    "activation_range_rne",
    "activation_bounds",
    "quantize_bound_rne",
    "ACTIVATION_FLOAT_RANGES",
]

# The names live in refquant.modes, the one table of arithmetic choices.
# The real-valued range [f_lo, f_hi] each fused activation clamps to (TFLite's ActivationFunctionType);
# Its ends become integers in one of two ways (ACTIVATION_BOUNDS): activation_range (Z + RHAZ(f/S))
# or activation_range_rne (RNE(f/S + Z) in float32).
ACTIVATION_FLOAT_RANGES = {
    None: (-np.inf, np.inf),
    "NONE": (-np.inf, np.inf),
    "RELU": (0.0, np.inf),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}
_ACTIVATIONS = tuple(ACTIVATION_FLOAT_RANGES)
_F32 = np.float32


def real_multiplier(input_scale, weight_scale, output_scale, *, derivation: str):
    """Evaluate $M = S_x S_w / S_y$ (eq. (1)) the way a backend does. Offline code.

    Args:
        input_scale: $S_x$, a positive scalar (stored as float32).
        weight_scale: $S_w$, a positive scalar or 1-D array (per output channel), float32.
        output_scale: $S_y$, a positive scalar, float32.
        derivation: One of :data:`DERIVATIONS` (table in the module docstring).

    Returns:
        An array of ``weight_scale``'s shape (0-d for a scalar): float32 for the ``f32_*``
        derivations, float64 for ``f64_ab_div_c`` and ``f32_ab_then_f64_div``, and an object
        array of :class:`fractions.Fraction` (exact) for ``"exact"``. Float results are
        computed with one IEEE rounding per operation, as the C expression does.

    Raises:
        QuantizationValueError: a scale that is not finite and > 0 (in float32), an unknown
            ``derivation``, or a non-scalar input/output scale.
        QuantizationTypeError: a scale that is not a real number.
    """
    V.as_choice(derivation, "derivation", DERIVATIONS)
    a = V.as_scalar_scale(input_scale, "input_scale")
    sw = V.as_scale(weight_scale, "weight_scale")
    c = V.as_scalar_scale(output_scale, "output_scale")
    if sw.ndim > 1:
        raise ShapeError(f"weight_scale must be a scalar or 1-D, got shape {sw.shape}")
    b = sw.astype(_F32)
    with np.errstate(over="ignore", under="ignore"):
        if derivation == "f32_ab_div_c":
            return ((a * b).astype(_F32) / c).astype(_F32)
        if derivation == "f64_ab_div_c":
            return np.float64(a) * b.astype(np.float64) / np.float64(c)
        if derivation == "f32_ba_times_recip_c":
            return ((b * a).astype(_F32) * (_F32(1.0) / c)).astype(_F32)
        if derivation == "f32_ab_then_f64_div":
            return (a * b).astype(_F32).astype(np.float64) / np.float64(c)
    out = np.empty(b.shape, dtype=object)  # "exact": Fraction of each float32's exact binary value
    for idx in np.ndindex(b.shape):
        out[idx] = Fraction(float(a)) * Fraction(float(b[idx])) / Fraction(float(c))
    return out


@dataclass(frozen=True)
class RequantParams:
    """What :func:`refquant.kernels.requant.requantize` needs besides the accumulators.

    Attributes:
        mode: A key of :data:`REQUANT_MODES`.
        multiplier: For ``fixed_*`` modes the int32 ``quantized_multiplier`` $q$; for
            ``float32_rne`` a float32; for ``float64_*`` a float64; for ``exact_rne`` an object
            array of :class:`~fractions.Fraction`. Shape ``()`` or ``(C,)``.
        shift: int32 array of the multiplier's shape for ``fixed_*`` modes (+ left, - right,
            TFLite's convention), else ``None``.
        real: The real multiplier before quantization (see :func:`real_multiplier`).
    """

    mode: str
    multiplier: np.ndarray
    shift: np.ndarray | None
    real: np.ndarray

    def __post_init__(self):
        V.as_choice(self.mode, "mode", REQUANT_MODES)
        for name in ("multiplier", "real"):  # native byte order; Fractions (object arrays) for "exact"
            object.__setattr__(self, name, V.asarray(getattr(self, name), name, kinds="iufO",
                                                     what="a real number or array"))
        if self.shift is not None:
            object.__setattr__(self, "shift", V.asarray(self.shift, "shift", kinds="iu", what="an integer array"))
        elif REQUANT_MODES[self.mode] == "fixed":
            raise QuantizationTypeError(f"shift must be an integer array for mode {self.mode!r}, got None")


def requant_params(input_scale, weight_scale, output_scale, *, mode, derivation,
                   single_rounding=None) -> RequantParams:
    """Derive the requantization multiplier(s) for a mode. Offline code.

    $M_c$ comes from :func:`real_multiplier`; then, by the kind of ``mode``:

    * ``fixed_*``: $(q_c, \\text{shift}_c)$ = :func:`refquant.fixedpoint_multiplier.quantize_multiplier`
      $(M_c)$ (``single_rounding`` applies the shift-30 saturation of
      ``TFLITE_SINGLE_ROUNDING`` builds);
    * ``float32_rne``: $M_c$ as float32 (a float64 derivation is rounded once to float32);
    * ``float64_rhaz`` / ``float64_rne``: $M_c$ as float64 (a float32 derivation widens exactly);
    * ``exact_rne``: $M_c$ as an exact :class:`~fractions.Fraction` (a float derivation's exact value).

    Args:
        input_scale, weight_scale, output_scale: As in :func:`real_multiplier`.
        mode: A key of :data:`refquant.modes.REQUANT_MODES` (a profile's layer spec gives it).
        derivation: A name of :data:`refquant.modes.DERIVATIONS`.
        single_rounding: Quantize the multiplier for single-rounding builds; default ``True``
            for ``fixed_single`` only.

    Returns:
        A :class:`RequantParams`.

    Raises:
        QuantizationValueError: unknown names; invalid scales.
    """
    V.as_choice(mode, "mode", REQUANT_MODES)
    real = real_multiplier(input_scale, weight_scale, output_scale, derivation=derivation)
    kind = REQUANT_MODES[mode]
    if kind == "exact":
        return RequantParams(mode, _as_fractions(real), None, real)
    as_float = np.vectorize(float, otypes=[np.float64])(real) if derivation == "exact" else real
    if kind == "float32":
        return RequantParams(mode, np.asarray(as_float, dtype=_F32), None, real)
    if kind == "float64":
        return RequantParams(mode, np.asarray(as_float, dtype=np.float64), None, real)
    if single_rounding is None:
        single_rounding = mode == "fixed_single"
    flat = np.asarray(as_float, dtype=np.float64).ravel()
    qs = [quantize_multiplier(float(m), single_rounding=single_rounding) for m in flat]
    shape = np.shape(as_float)
    q = np.array([p[0] for p in qs], dtype=np.int32).reshape(shape)
    s = np.array([p[1] for p in qs], dtype=np.int32).reshape(shape)
    return RequantParams(mode, q, s, real)


def _as_fractions(real) -> np.ndarray:
    arr = np.asarray(real)
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        v = arr[idx]
        out[idx] = v if isinstance(v, Fraction) else Fraction(float(v))
    return out


def _code_range(qmin, qmax, lo=None, hi=None) -> tuple[int, int]:
    """The output format's code range ``qmin <= qmax`` as Python ints."""
    qmin, qmax = V.as_int_scalar(qmin, "qmin", lo=lo, hi=hi), V.as_int_scalar(qmax, "qmax", lo=lo, hi=hi)
    if qmin > qmax:
        raise QuantizationValueError(f"qmin must be <= qmax, got [{qmin}, {qmax}]")
    return qmin, qmax


def activation_range(activation, output_scale, output_zero_point, qmin: int, qmax: int) -> tuple[int, int]:
    """The fused-activation clamp of a TFLite int8 op, ``tflite::CalculateActivationRangeQuantized``.

    With $Q(f) = Z + \\mathrm{RHAZ}(f / S)$ (float32 division, ``std::round`` on the float,
    as ``kernel_util.cc``'s ``Quantize``):

    | activation | range |
    |---|---|
    | ``None`` / ``"NONE"`` | $[q_{min}, q_{max}]$ |
    | ``"RELU"`` | $[\\max(q_{min}, Q(0)), q_{max}]$ |
    | ``"RELU6"`` | $[\\max(q_{min}, Q(0)), \\min(q_{max}, Q(6))]$ |
    | ``"RELU_N1_TO_1"`` | $[\\max(q_{min}, Q(-1)), \\min(q_{max}, Q(1))]$ |

    Offline code. Note $Q(0) = Z$ exactly. The float ranges are :data:`ACTIVATION_FLOAT_RANGES`;
    the XNNPACK delegate quantizes the same ends with the zero point added before a ties-to-even
    rounding (:func:`activation_range_rne`).

    Args:
        activation: ``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"`` or ``"RELU_N1_TO_1"``.
        output_scale: The output's scale (float32).
        output_zero_point: The output's zero point (int).
        qmin, qmax: The output format's range, e.g. ``(-128, 127)``.

    Returns:
        ``(act_min, act_max)`` as Python ints.

    Raises:
        QuantizationValueError: unknown activation, or $f/S$ beyond the int32 range (TFLite's
            ``Quantize`` check fails, e.g. RELU6 with a scale of 1e-30).
    """
    V.as_choice(activation, "activation", _ACTIVATIONS)
    scale = V.as_scalar_scale(output_scale, "output_scale")
    zp = V.as_int_scalar(output_zero_point, "output_zero_point")
    qmin, qmax = _code_range(qmin, qmax)

    def quantize(f: float) -> int:
        with np.errstate(over="ignore"):
            tmp = round_half_away_from_zero(_F32(_F32(f) / scale))  # std::round(float): float32 RHAZ
        if not -2.0 ** 31 <= float(tmp) <= 2.0 ** 31 - 1:
            raise QuantizationValueError(
                f"activation {activation}: {f} / output_scale = {float(tmp)} is outside the int32 range")
        return zp + int(tmp)

    f_lo, f_hi = ACTIVATION_FLOAT_RANGES[activation]
    act_min = qmin if f_lo == -np.inf else max(qmin, quantize(f_lo))
    act_max = qmax if f_hi == np.inf else min(qmax, quantize(f_hi))
    return act_min, act_max



def quantize_bound_rne(value, output_scale, output_zero_point, qmin: int, qmax: int) -> int:
    """One float bound quantized with the zero point added before a ties-to-even rounding.

    ``lrintf(fminf(fmaxf(value / scale + (float) zero_point, qmin), qmax))``: float32
    division and addition (one rounding each), clamp, round half to even. Mirrors XNNPACK's
    ``xnn_qs8_quantize`` / ``xnn_qu8_quantize``. Offline code.

    Args:
        value: The float bound ($\\pm\\infty$ allowed).
        output_scale: $S_y$ (float32).
        output_zero_point: $Z_y$ (int).
        qmin, qmax: The output format's range.

    Returns:
        The quantized bound as a Python int in ``[qmin, qmax]``.
    """
    value = V.as_real_scalar(value, "value", finite=False)
    if np.isnan(value):
        raise QuantizationValueError("value must be a number or +-inf (a bound of the activation's range), got nan")
    s = V.as_scalar_scale(output_scale, "output_scale")
    # C ints, converted to float below
    zp = V.as_int_scalar(output_zero_point, "output_zero_point", lo=INT32_MIN, hi=INT32_MAX)
    qmin, qmax = _code_range(qmin, qmax, lo=INT32_MIN, hi=INT32_MAX)
    with np.errstate(over="ignore"):
        v = _F32(_F32(_F32(value) / s) + _F32(zp))  # float32 ops, one rounding each
    v = min(max(v, _F32(qmin)), _F32(qmax))
    return int(np.rint(v))  # RNE (half to even), as lrintf in the default rounding mode


def activation_range_rne(activation, output_scale, output_zero_point, qmin: int, qmax: int) -> tuple[int, int]:
    """The fused-activation clamp with each float bound quantized by :func:`quantize_bound_rne`.

    $q(f) = \\operatorname{RNE}(\\operatorname{clamp}(\\mathrm{fl}(\\mathrm{fl}(f / S_y) + Z_y), q_{min}, q_{max}))$
    for the ends of :data:`ACTIVATION_FLOAT_RANGES`; mirrors the XNNPACK delegate of TFLite
    (every quantized operator it creates). It differs from :func:`activation_range` on ties:
    RELU6 with $S_y = 4$, $Z_y = 1$ gives $\\mathrm{RNE}(2.5) = 2$ here, $1 + \\mathrm{RHAZ}(1.5) = 3$ there.

    Same arguments and result as :func:`activation_range`.
    """
    V.as_choice(activation, "activation", _ACTIVATIONS)
    lo, hi = ACTIVATION_FLOAT_RANGES[activation]
    return (quantize_bound_rne(lo, output_scale, output_zero_point, qmin, qmax),
            quantize_bound_rne(hi, output_scale, output_zero_point, qmin, qmax))


def activation_bounds(activation, output_scale, output_zero_point, qmin: int, qmax: int, *,
                      rounding: str = "round_then_add_zero_point") -> tuple[int, int]:
    """The fused-activation clamp ``(act_min, act_max)`` by the rule ``rounding`` names.

    Args:
        rounding: ``"round_then_add_zero_point"`` (:func:`activation_range`) or
            ``"add_zero_point_then_rne"`` (:func:`activation_range_rne`); the names of
            :data:`refquant.modes.ACTIVATION_BOUNDS`.
        Others: As :func:`activation_range`.
    """
    V.as_choice(rounding, "rounding", ACTIVATION_BOUNDS)
    fn = activation_range if rounding == "round_then_add_zero_point" else activation_range_rne
    return fn(activation, output_scale, output_zero_point, qmin, qmax)
