"""Observers by name: what ``quantize_static(calibrator=...)`` accepts.

Added in 0.1.0.
"""

from __future__ import annotations

import inspect

from .. import _validate as V
from ..errors import QuantizationTypeError
from .entropy import EntropyObserver
from .entropy_tensorrt import TensorRTEntropyObserver
from .minmax import MinMaxObserver
from .moving_average import MovingAverageMinMaxObserver
from .mse import HistogramMSEObserver
from .observer import Observer
from .percentile import PercentileObserver

__all__ = ["CALIBRATORS", "ALL_CALIBRATORS", "OBSERVERS", "make_observer"]

#: The calibrator names ``refquant.ptq.quantize_static`` accepts.
CALIBRATORS = ("minmax", "moving_average", "percentile", "mse", "entropy")
#: Every name :func:`make_observer` accepts: :data:`CALIBRATORS` and NVIDIA's entropy variant.
ALL_CALIBRATORS = CALIBRATORS + ("entropy_tensorrt",)

#: name -> observer class
OBSERVERS = {cls.name: cls for cls in (MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver,
                                       HistogramMSEObserver, EntropyObserver, TensorRTEntropyObserver)}


def make_observer(name: str, axis=None, **options) -> Observer:
    """A fresh observer for the calibrator called ``name``.

    | name | reproduces | per channel | options (default) |
    |---|---|---|---|
    | ``minmax`` | PyTorch ``MinMaxObserver``; ONNX Runtime ``MinMaxCalibrater`` | yes | ``symmetric`` (False) |
    | ``moving_average`` | PyTorch ``MovingAverageMinMaxObserver``; ONNX Runtime ``moving_average=True`` | yes | ``averaging_constant`` (0.01), ``variant`` ("pytorch"), ``symmetric`` (False) |
    | ``percentile`` | ONNX Runtime ``CalibrationMethod.Percentile`` | no | ``num_bins`` (2048), ``percentile`` (99.999), ``symmetric`` (True) |
    | ``mse`` | PyTorch ``HistogramObserver`` | no | ``num_bins`` (2048), ``dtype`` ("quint8"), ``capability`` ("auto") |
    | ``entropy`` | ONNX Runtime ``CalibrationMethod.Entropy`` | no | ``num_bins`` (128), ``num_quantized_bins`` (128) |
    | ``entropy_tensorrt`` | NVIDIA pytorch-quantization ``HistogramCalibrator``, entropy | no | ``num_bins`` (2048), ``num_bits`` (8), ``unsigned`` (False), ``start_bin`` (128), ``stride`` (1), ``skip_zeros`` (False), ``capability`` ("auto") |

    Args:
        name: One of :data:`ALL_CALIBRATORS`.
        axis: ``None`` for one range per tensor, or the channel axis (``minmax`` and
            ``moving_average`` only).
        **options: The observer's keyword options above (see each class).

    Returns:
        An :class:`~refquant.calibration.Observer` that has seen nothing.

    Raises:
        QuantizationValueError: Unknown ``name`` or an option value out of range.
        QuantizationTypeError: An option the observer does not take, or of the wrong type.
        UnsupportedError: ``axis`` given for a histogram observer.
    """
    name = V.as_choice(name, "name", ALL_CALIBRATORS)
    cls = OBSERVERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "axis")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise QuantizationTypeError(
            f"{unknown[0]} is not an option of the {name!r} observer; it takes {', '.join(accepted)}")
    return cls(axis, **options)
