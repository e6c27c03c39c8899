"""Calibration observers: stream batches, keep a bounded summary, report a float range.

Each observer reproduces one backend's calibrator, named after it, and states whether its result
depends on the order of the batches::

    from refquant.calibration import make_observer

    obs = make_observer("minmax", axis=None)
    for x in batches:
        obs.update(x)            # one float batch, any shape
    lo, hi = obs.range()         # float32 scalars (float32 (C,) arrays per channel)

The range is raw: the caller widens it to contain zero and turns it into a scale and zero point
with its backend's rule (e.g. :func:`refquant.backends.pytorch.choose_qparams`).

* :class:`MinMaxObserver` (``"minmax"``) — running min/max: PyTorch ``MinMaxObserver`` /
  ``PerChannelMinMaxObserver``, ONNX Runtime ``MinMaxCalibrater``.
* :class:`MovingAverageMinMaxObserver` (``"moving_average"``) — PyTorch's exponential moving
  average, or ONNX Runtime's mean of batch ranges (``variant=``).
* :class:`PercentileObserver` (``"percentile"``) — ONNX Runtime ``CalibrationMethod.Percentile``.
* :class:`HistogramMSEObserver` (``"mse"``) — PyTorch ``HistogramObserver``'s L2 search.
* :class:`EntropyObserver` (``"entropy"``) — ONNX Runtime ``CalibrationMethod.Entropy``.
* :class:`TensorRTEntropyObserver` (``"entropy_tensorrt"``) — NVIDIA pytorch-quantization's
  ``HistogramCalibrator`` entropy method.

The modules: :mod:`.observer` (the protocol and input checks), :mod:`.minmax`,
:mod:`.moving_average`, :mod:`.ort_histogram` and :mod:`.torch_histogram` (the two backends'
running histograms), :mod:`.percentile`, :mod:`.entropy`, :mod:`.mse`, :mod:`.entropy_tensorrt`,
:mod:`.registry` (names), and :mod:`.aten` (the ATen float32 kernels PyTorch's calibrators rely on).

Added in 0.1.0.
"""

from __future__ import annotations

from .entropy import EntropyObserver
from .entropy_tensorrt import TensorRTEntropyObserver
from .minmax import MinMaxObserver
from .moving_average import MovingAverageMinMaxObserver
from .mse import HistogramMSEObserver
from .observer import Observer
from .percentile import PercentileObserver
from .registry import ALL_CALIBRATORS, CALIBRATORS, make_observer

__all__ = ["make_observer", "CALIBRATORS", "ALL_CALIBRATORS", "Observer", "MinMaxObserver",
           "MovingAverageMinMaxObserver", "PercentileObserver", "HistogramMSEObserver", "EntropyObserver",
           "TensorRTEntropyObserver"]
