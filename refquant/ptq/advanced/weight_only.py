"""Weight-only quantization with a rounding method: :func:`refquant.ptq.quantize_weights`'s grid,
codes chosen by RTN, GPTQ or AdaRound, optionally followed by bias correction."""

from __future__ import annotations

import numpy as np

from ... import _validate as V
from ... import nn
from ...errors import QuantizationTypeError, QuantizationValueError
from ..flows import quantize_weights
from .adaptive_rounding import adaround
from .bias_shift import bias_correction
from .gptq_rounding import gptq

__all__ = ["METHODS", "quantize_weights_advanced"]

#: Rounding methods of :func:`quantize_weights_advanced`.
METHODS = ("rtn", "gptq", "adaround")

_OPTIONS = {"rtn": (), "gptq": ("block_size", "damp", "act_order"),
            "adaround": ("iters", "lr", "reg_weight", "beta", "warmup")}


def _check_finite_weights(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        if not np.all(np.isfinite(p.value)):
            raise QuantizationValueError(f"model parameter {name!r} must be finite to be quantized, got NaN or Inf")


def quantize_weights_advanced(model, calibration_data=None, *, bits: int = 4, group_size=None, method: str = "gptq",
                              correct_bias=None, profile: str = "onnx", **method_options):
    """Weight-only ``bits``-bit quantization (:func:`refquant.ptq.quantize_weights`'s grid: symmetric,
    per output channel or per group of ``group_size`` input channels), codes by ``method``.

    Args:
        model: A float :class:`refquant.nn.Module` (left unchanged).
        calibration_data: ``(N, ...)`` float array; needed by ``"gptq"``, ``"adaround"`` and
            ``correct_bias="empirical"``, else ``None``.
        bits: 2 to 8. group_size: ``None`` or input channels per scale (dividing each layer's).
        method: ``"rtn"`` (round to nearest), ``"gptq"`` (:func:`~refquant.ptq.advanced.gptq_rounding.gptq`)
            or ``"adaround"`` (:func:`~refquant.ptq.advanced.adaptive_rounding.adaround`).
        correct_bias: ``None``, ``"empirical"`` or ``"analytical"``
            (:func:`~refquant.ptq.advanced.bias_shift.bias_correction`, after the rounding).
        profile: Recorded in the model (weight-only nodes compute in float32).
        **method_options: Passed to the method (``block_size``, ``damp``, ``act_order`` for GPTQ;
            ``iters``, ``lr``, ``reg_weight``, ``beta``, ``warmup`` for AdaRound).

    Returns:
        A :class:`~refquant.qmodel.QuantizedModel`, a drop-in replacement of
        ``quantize_weights(model, bits=bits, group_size=group_size)`` (same scales, other codes).

    Raises:
        QuantizationTypeError: ``model`` not a Module; an option the method does not take.
        QuantizationValueError: ``bits`` outside 2-8, a ``group_size`` that does not divide, a
            non-finite parameter, missing or bad ``calibration_data``, an unknown ``method``.
    """
    if not isinstance(model, nn.Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {V.describe(model)}")
    method = V.as_choice(method, "method", METHODS)
    correct_bias = V.as_choice(correct_bias, "correct_bias", (None, "empirical", "analytical"))
    unknown = sorted(set(method_options) - set(_OPTIONS[method]))
    if unknown:
        raise QuantizationTypeError(f"method_options: method {method!r} takes {list(_OPTIONS[method])}, "
                                    f"got {unknown}")
    needs_data = method != "rtn" or correct_bias == "empirical"
    if needs_data and calibration_data is None:
        raise QuantizationValueError(f"calibration_data must be an (N, ...) float array for method={method!r}, "
                                     f"correct_bias={correct_bias!r}, got None")
    _check_finite_weights(model)
    qm = quantize_weights(model, bits=bits, group_size=group_size, profile=profile)
    if method != "rtn":
        rounding = gptq if method == "gptq" else adaround
        qm = rounding(qm, model, calibration_data, **method_options)
    if correct_bias is not None:
        qm = bias_correction(qm, model, calibration_data if correct_bias == "empirical" else None, mode=correct_bias)
    return qm
