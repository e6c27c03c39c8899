r"""Debugging a quantized model: layer-by-layer error, per-layer sensitivity, mixed precision.

**Layer report** (:func:`layer_report`). For every integer tensor $q$ of the integer model with
parameters $(S, Z)$ and the float model's value $r$ of the same tensor on the same input:

$$ \mathrm{SQNR} = 10 \log_{10} \frac{\sum r^2}{\sum (r - S(q - Z))^2}\ \mathrm{dB}, \qquad
   \text{max error} = \max |r - S(q - Z)| / S\ \text{LSB}, $$

and the share of values saturated: $r$ outside the representable range
$[S(q_{min} - Z), S(q_{max} - Z)]$. Errors accumulate: a tensor's error includes every earlier
layer's, which is what a user sees at that point of the network.

**Sensitivity** (:func:`sensitivity`). Quantize one layer at a time (every other layer in
float32) and rank the layers by the accuracy lost. **Mixed precision**
(:func:`mixed_precision_plan`): step the most sensitive layers up, one more at a time, first to
int16 activations (where the profile has 16x8 kernels), then to float32, until the accuracy is
within ``max_drop`` of the float model's; the plan prints its accuracy/size trade-off and
:meth:`MixedPrecisionPlan.apply` builds the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import numbers

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..qmodel import QuantizedModel
from .flows import Calibrated, calibrate_model
from .trace import float_outputs

__all__ = ["layer_report", "format_report", "sensitivity", "MixedPrecisionPlan", "mixed_precision_plan", "accuracy"]


def _top1(logits, y, source: str) -> float:
    """Share of rows of ``(N, classes)`` ``logits`` (what ``source`` returned for x) whose argmax is the label."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ShapeError(f"{source} must give (N, classes) logits with N >= 1 (a non-empty x), got shape "
                         f"{logits.shape}")
    labels = V.as_int_array(y, "y")
    if labels.shape != (logits.shape[0],):
        raise ShapeError(f"y must have shape ({logits.shape[0]},), one label per row of x, got {labels.shape}")
    return float((logits.argmax(axis=1) == labels).mean())


def _calibrated(cal) -> Calibrated:
    if not isinstance(cal, Calibrated):
        raise QuantizationTypeError(f"cal must be a Calibrated model (refquant.ptq.flows.calibrate_model), "
                                    f"got {V.describe(cal)}")
    return cal


def accuracy(model_or_fn, x, y) -> float:
    """Top-1 accuracy of a float model or :class:`~refquant.qmodel.QuantizedModel` on ``(x, y)``.

    Args:
        model_or_fn: A model, a QuantizedModel (its ``run``) or a function of ``x``, giving
            ``(N, classes)`` logits.
        x: The input batch the model takes (N >= 1 samples).
        y: ``(N,)`` integer labels.
    """
    run = getattr(model_or_fn, "run", model_or_fn)
    if not callable(run):
        raise QuantizationTypeError(f"model_or_fn must be a model or a function of x, got {V.describe(model_or_fn)}")
    return _top1(run(x), y, "model_or_fn")


def layer_report(cal: Calibrated, qmodel, x) -> list[dict]:
    """One row per integer tensor of ``qmodel`` that the float model also computes.

    Args:
        cal: The :class:`~refquant.ptq.flows.Calibrated` model ``qmodel`` was lowered from
            (:func:`~refquant.ptq.flows.calibrate_model`).
        qmodel: The integer model.
        x: Float32 input batch.

    Returns:
        Rows with keys ``tensor``, ``op``, ``sqnr_db``, ``max_error_lsb``, ``saturated``.
    """
    cal = _calibrated(cal)
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a QuantizedModel, got {V.describe(qmodel)}")
    x = V.as_float_array(x, "x")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ShapeError(f"x must be an (N, ...) batch with N >= 1, got shape {x.shape}")
    return tensor_error_rows(qmodel, float_outputs(cal.model, cal.steps, x), qmodel.trace(x))


def tensor_error_rows(qmodel, reference: dict, traced: dict) -> list[dict]:
    """The rows of :func:`layer_report` from the float tensors ``reference`` (tensor name -> float array,
    :func:`~refquant.ptq.trace.float_outputs`) and ``traced`` (:meth:`QuantizedModel.trace` on the same
    input). Shared with :func:`refquant.evaluate.layer_errors` (internal: arguments not checked)."""
    ops = {n.output: n.op for n in qmodel}
    rows = []
    for name, t in qmodel.tensors.items():
        base = name.split(":")[0]
        if not t.is_integer or base not in reference or name not in traced:
            continue
        r = np.asarray(reference[base], np.float64)
        deq = t.scale * (traced[name].astype(np.float64) - t.zero_point)
        if r.size != deq.size:
            raise ShapeError(f"the float model's tensor {base!r} has shape {r.shape}, the integer model's "
                             f"{name!r} {deq.shape}: the float model must be the one the integer model was made from")
        if r.shape != deq.shape:
            r = r.reshape(deq.shape)
        err = r - deq
        noise = float(np.sum(err ** 2))
        signal = float(np.sum(r ** 2))
        sqnr = float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf"))
        info = np.iinfo(np.dtype(t.dtype))
        lo, hi = t.scale * (info.min - t.zero_point), t.scale * (info.max - t.zero_point)
        rows.append({"tensor": name, "op": ops.get(name, "input"), "sqnr_db": sqnr,
                     "max_error_lsb": float(np.max(np.abs(err)) / t.scale) if err.size else 0.0,
                     "saturated": float(np.mean((r < lo) | (r > hi))) if r.size else 0.0})
    return rows


_ROW_KEYS = {"tensor": str, "op": str, "sqnr_db": numbers.Real, "max_error_lsb": numbers.Real,
             "saturated": numbers.Real}


def format_report(rows) -> str:
    """A Markdown table of :func:`layer_report` rows."""
    if not isinstance(rows, (list, tuple)) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), t) for k, t in _ROW_KEYS.items()) for r in rows):
        raise QuantizationTypeError(f"rows must be layer_report rows (dicts with keys {list(_ROW_KEYS)}), "
                                    f"got {V.describe(rows)}")
    lines = ["| tensor | op | SQNR (dB) | max error (LSB) | saturated |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['tensor']} | {r['op']} | {r['sqnr_db']:.1f} | {r['max_error_lsb']:.2f} | "
                     f"{100 * r['saturated']:.2f}% |")
    return "\n".join(lines)


def _quantizable(cal: Calibrated) -> list[str]:
    """Steps that compute (the ones a mixed-precision plan may keep in float); pools, flatten and
    clamps follow their input's domain."""
    return [s.name for s in cal.steps if s.op in ("linear", "conv2d", "add", "global_average_pool", "clamp")]


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(got, np.float64)) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref ** 2)) / noise)


def sensitivity(cal: Calibrated, x, y, *, per_channel: bool = True) -> list[dict]:
    """Accuracy with only one layer quantized, for each layer, most sensitive first.

    Layers are ranked by the top-1 drop, then (a finer measure, which also orders a healthy
    model where every drop is 0) by the SQNR of the model's logits against the float model's,
    lowest first.

    Returns:
        Rows ``{"layer", "accuracy", "drop", "logits_sqnr_db"}`` (``drop`` = float accuracy - accuracy).
    """
    cal = _calibrated(cal)
    per_channel = V.as_flag(per_channel, "per_channel")
    ref = np.asarray(cal.model(x))
    base = _top1(ref, y, "cal.model")
    rows = []
    names = [s.name for s in cal.steps]
    for name in _quantizable(cal):
        qm = cal.lower(per_channel=per_channel, float_layers=[n for n in names if n != name], allow_float=True)
        logits = np.asarray(qm.run(x))
        acc = _top1(logits, y, "the integer model")
        rows.append({"layer": name, "accuracy": acc, "drop": base - acc, "logits_sqnr_db": _sqnr(ref, logits)})
    return sorted(rows, key=lambda r: (-r["drop"], r["logits_sqnr_db"]))


@dataclass
class MixedPrecisionPlan:
    """Layers to run in int16 or keep in float32, and the measured trade-off of each step of the plan.

    Attributes:
        int16_layers: Layers run with int16 activations (TFLite's 16x8 kernels).
        float_layers: Layers kept in float32 (most sensitive first).
        float_accuracy: The float model's accuracy.
        trade_off: Rows ``{"int16_layers", "float_layers", "accuracy", "nbytes"}``, one per step tried.
        ranking: The sensitivity rows the plan followed (empty if the integer model was already
            within ``max_drop``).
    """

    float_layers: list
    float_accuracy: float
    trade_off: list = field(default_factory=list)
    ranking: list = field(default_factory=list)
    cal: Calibrated | None = field(default=None, repr=False)
    per_channel: bool = True
    int16_layers: list = field(default_factory=list)

    def apply(self):
        """The integer model with :attr:`int16_layers` in int16 and :attr:`float_layers` in float32."""
        if self.cal is None:
            raise QuantizationValueError("this plan has no calibrated model to apply to")
        return self.cal.lower(per_channel=self.per_channel, float_layers=self.float_layers,
                              int16_layers=self.int16_layers, allow_float=True)

    def table(self) -> str:
        lines = [f"float model: top-1 {100 * self.float_accuracy:.2f}%",
                 "| int16 layers | float layers | top-1 | bytes |", "|---|---|---:|---:|"]
        for r in self.trade_off:
            lines.append(f"| {', '.join(r['int16_layers']) or '(none)'} | {', '.join(r['float_layers']) or '(none)'} "
                         f"| {100 * r['accuracy']:.2f}% | {r['nbytes']} |")
        return "\n".join(lines)


def mixed_precision_plan(model, calibration_data, x, y, *, profile=None, max_drop: float = 0.005,
                         per_channel=True, calibrator: str = "minmax", int16: bool | None = None,
                         max_float_layers: int | None = None) -> MixedPrecisionPlan:
    """Step the most sensitive layers up from int8 until top-1 is within ``max_drop`` of float.

    The ladder, each step measured on ``(x, y)``, layers ranked by :func:`sensitivity`:

    1. all int8 (the plan stops at the first step within ``max_drop``);
    2. with int16 (profiles with 16x8 kernels, unless ``int16=False``): the $k$ most sensitive layers
       run with int16 activations, $k = 1, 2, \\ldots$ up to every layer;
    3. float32: the $k$ most sensitive layers kept in float, the others as step 2 left them
       (int16 when it ran, else int8), up to ``max_float_layers``.

    int16 costs little memory for the model (the weights stay int8; a 16x8 layer's bias is int64)
    and twice the activation memory; float costs four times the weights.

    Args:
        model: A float model, or a :class:`~refquant.ptq.flows.Calibrated` one (then
            ``calibration_data``, ``profile`` and ``calibrator`` are not used: pass ``None``).
        calibration_data, profile, per_channel, calibrator: As :func:`~refquant.ptq.quantize_static`.
        x, y: Evaluation data (a held-out split, not the test set you report).
        max_drop: Accepted top-1 loss as a fraction (0.005 = half a point).
        int16: Use step 2: ``None`` (default) when the profile has 16x8 kernels, ``False`` never;
            ``True`` on a profile without them is an error.
        max_float_layers: Stop after this many float layers (default: all of them; then the model
            is float but for its input's quantization).

    Raises:
        UnsupportedError: ``int16=True`` on a profile without int16-activation kernels.
    """
    max_drop = V.as_real_scalar(max_drop, "max_drop")
    if not 0 <= max_drop <= 1:
        raise QuantizationValueError(f"max_drop must be in [0, 1], got {max_drop!r}")
    if isinstance(model, Calibrated):
        cal = model
    else:
        if profile is None:
            raise QuantizationValueError("profile is required when model is not a Calibrated model")
        cal = calibrate_model(model, calibration_data, profile=profile, calibrator=calibrator)
    has16 = bool(cal.profile.layers_16x8)
    if int16 is None:
        int16 = has16
    elif V.as_flag(int16, "int16") and not has16:
        raise UnsupportedError(f"int16=True: profile {cal.profile.name!r} has no int16-activation (16x8) kernels")
    base = accuracy(cal.model, x, y)
    plan = MixedPrecisionPlan([], base, [], [], cal, per_channel, [])

    def measure(int16_layers, float_layers):
        qm = cal.lower(per_channel=per_channel, float_layers=float_layers, int16_layers=int16_layers,
                       allow_float=True)
        acc = accuracy(qm, x, y)
        plan.trade_off.append({"int16_layers": list(int16_layers), "float_layers": list(float_layers),
                               "accuracy": acc, "nbytes": qm.nbytes})
        plan.int16_layers, plan.float_layers = list(int16_layers), list(float_layers)
        return base - acc <= max_drop

    if measure([], []):
        return plan
    plan.ranking = sensitivity(cal, x, y, per_channel=per_channel)
    ranking = [r["layer"] for r in plan.ranking]
    if int16:
        for k in range(1, len(ranking) + 1):
            if measure(ranking[:k], []):
                return plan
    limit = len(ranking) if max_float_layers is None else V.as_int_scalar(max_float_layers, "max_float_layers", lo=0)
    for k in range(1, min(limit, len(ranking)) + 1):
        if measure(ranking[k:] if int16 else [], ranking[:k]):
            break
    return plan
