"""Percentile calibration: clip the rarest values (ONNX Runtime's ``CalibrationMethod.Percentile``).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError
from .observer import Observer
from .ort_histogram import AbsoluteHistogram, SignedHistogram

__all__ = ["PercentileObserver", "percentile_range"]


def percentile_range(hist: np.ndarray, edges: np.ndarray, min_value, max_value, percentile: float,
                     symmetric: bool):
    """ONNX Runtime's ``HistogramCollector.compute_percentile`` for one histogram.

    With $p$ = ``percentile``/100 and the float64 CDF ``cdf = np.cumsum(hist / hist.sum())``:

    * symmetric (a histogram of $|x|$): $i$ = ``np.searchsorted(cdf, p)``, range
      $(-e_i, e_i)$;
    * otherwise: $\\kappa = (1 - p)/2$, $i_l$ = ``searchsorted(cdf, κ)``,
      $i_r$ = ``searchsorted(cdf, 1 - κ)``, range $(e_{i_l}, e_{i_r})$;

    then the low end is raised to ``min_value`` and the high end lowered to ``max_value`` where
    they exceed the data (so a symmetric range of positive data starts at its minimum).

    Returns:
        ``(lo, hi)``: float32 scalars.
    """
    total = hist.sum()
    cdf = np.cumsum(hist / total)                                  # float64
    if symmetric:
        idx_right = np.searchsorted(cdf, percentile / 100.0)
        lo = -np.array(edges[idx_right], dtype=edges.dtype)
        hi = np.array(edges[idx_right], dtype=edges.dtype)
    else:
        percent_to_cut_one_side = (100.0 - percentile) / 200.0
        idx_right = np.searchsorted(cdf, 1.0 - percent_to_cut_one_side)
        idx_left = np.searchsorted(cdf, percent_to_cut_one_side)
        lo = np.array(edges[idx_left], dtype=edges.dtype)
        hi = np.array(edges[idx_right], dtype=edges.dtype)
    if lo < min_value:
        lo = min_value
    if hi > max_value:
        hi = max_value
    return np.float32(lo), np.float32(hi)


class PercentileObserver(Observer):
    """The range that keeps ``percentile`` percent of the values seen, from a histogram.

    Reproduces ONNX Runtime's ``PercentileCalibrater`` as ``create_calibrator`` builds it
    (``CalibrationMethod.Percentile``; defaults ``num_bins=2048``, ``percentile=99.999``,
    ``symmetric=True``): ``HistogramCollector.collect`` then ``compute_percentile``
    (:func:`percentile_range`). With ``symmetric=True`` the histogram is of $|x|$
    (:class:`~refquant.calibration.ort_histogram.AbsoluteHistogram`), otherwise of $x$
    (:class:`~refquant.calibration.ort_histogram.SignedHistogram`). Each :meth:`update` is one
    ``collect_data`` call of ONNX Runtime with one batch.

    Depends on batch order: the first batch fixes the bin width (and, for $|x|$, the left edge).

    Args:
        axis: Must be ``None`` (ONNX Runtime keeps one histogram per tensor).
        num_bins: Bins of the first batch's histogram (default 2048).
        percentile: In $[0, 100]$ (default 99.999).
        symmetric: Histogram $|x|$ and report $\\pm$ one threshold (default True, as
            ``create_calibrator``).
    """

    name = "percentile"

    def __init__(self, axis=None, *, num_bins: int = 2048, percentile=99.999, symmetric: bool = True):
        super().__init__(axis)
        self.num_bins = V.as_positive_int(num_bins, "num_bins")
        V.check_allocation(self.num_bins, 16, "num_bins")
        p = V.as_real_scalar(percentile, "percentile")
        if not 0.0 <= p <= 100.0:
            raise QuantizationValueError(f"percentile must be in [0, 100], got {p!r}")
        self.percentile = p
        self.symmetric = V.as_flag(symmetric, "symmetric", ints=False)
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        self._hist.add(x)

    def _range(self):
        h = self._hist
        return percentile_range(h.hist, h.edges, h.min, h.max, self.percentile, self.symmetric)

    def _reset(self) -> None:
        self._hist = (AbsoluteHistogram if self.symmetric else SignedHistogram)(self.num_bins)
