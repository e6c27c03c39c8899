"""ONNX Runtime's running histograms (``HistogramCollector`` in its ``calibrate.py``).

ONNX Runtime's percentile and entropy calibrators summarize a tensor by a histogram that grows
as batches arrive; the range is chosen from it at the end. There are two:

* :class:`SignedHistogram` — ``collect_value`` and ``merge_histogram``: a histogram of $x$ over
  $[-t, t]$, $t = \\max(|\\min x|, |\\max x|)$, widened by whole bins on both sides when a batch
  exceeds it. Used by the entropy method, and by the percentile method with ``symmetric=False``.
* :class:`AbsoluteHistogram` — ``collect_absolute_value``: a histogram of $|x|$ whose first
  batch fixes the left edge and the bin width; later batches append whole bins on the right.
  Used by the percentile method with ``symmetric=True`` (ONNX Runtime's default).

ONNX Runtime histograms all batches of one ``collect_data`` call at once; these classes see one
batch per :meth:`add`, which is ONNX Runtime calling ``collect_data`` once per batch. Both are
plain NumPy exactly as ONNX Runtime writes them: int64 counts, edges in the data's float32.
Memory grows with the ratio of the largest range to the first batch's, never with the number of
batches.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import CalibrationError

__all__ = ["SignedHistogram", "AbsoluteHistogram"]


def _check_growth(n_bins) -> None:
    """Refuse a histogram of ``n_bins`` bins that could not fit in memory (ONNX Runtime would run out)."""
    if not n_bins * 24 < V.memory_limit():
        raise CalibrationError(
            f"x widens the histogram to {float(n_bins):.4g} bins (the first batch fixed the bin width): "
            "more than this machine's memory")


def _histogram(a, bins, value_range=None):
    """``np.histogram``; its refusal of a range too narrow for ``bins`` distinct float32 edges
    (ONNX Runtime fails there too) as a :class:`~refquant.errors.CalibrationError`."""
    try:
        return np.histogram(a, bins, range=value_range)
    except ValueError as err:
        n = bins if np.ndim(bins) == 0 else len(bins) - 1
        raise CalibrationError(
            f"the range of batch x cannot be cut into {n} histogram bins in float32 (np.histogram: {err}); "
            "ONNX Runtime's calibrator fails the same way: use fewer bins") from None


class SignedHistogram:
    """``HistogramCollector.collect_value`` / ``merge_histogram`` for one tensor.

    First batch: ``np.histogram(x, num_bins, range=(-t, t))`` with $t$ in float32. A later batch
    with threshold $t' \\le t$ is histogrammed on the existing range and added. If $t' > t$,
    with stride $w = 2t/n$: ``half = int((t' - t) // w + 1)`` bins are added on each side, the
    range becomes $\\pm(\\mathrm{half}\\cdot w + t)$, the batch is histogrammed on the wider range
    and the old counts are added at offset ``half`` (a previous $t = 0$ is simply replaced).
    The result depends on batch order: the first batch fixes the stride.

    Attributes:
        hist: int64 counts.
        edges: float32 edges, ``len(hist) + 1`` of them.
        min: float32 minimum of every batch.
        max: float32 maximum of every batch.
        threshold: float32 $t$, the half-width of the histogram.
    """

    def __init__(self, num_bins: int):
        self.num_bins = num_bins
        self.hist = self.edges = self.min = self.max = self.threshold = None

    def add(self, x: np.ndarray) -> None:
        """Observe one float32 batch (flattened)."""
        data_arr = x.reshape(-1)
        min_value, max_value = np.nanmin(data_arr), np.nanmax(data_arr)
        threshold = np.array(max(abs(min_value), abs(max_value)), dtype=data_arr.dtype)
        if self.hist is None:
            self.hist, self.edges = _histogram(data_arr, self.num_bins, value_range=(-threshold, threshold))
            self.min, self.max, self.threshold = min_value, max_value, threshold
        else:
            self._merge(data_arr, min_value, max_value, threshold)

    def _merge(self, data_arr, new_min, new_max, new_threshold) -> None:
        old_hist, old_threshold = self.hist, self.threshold
        if new_threshold <= old_threshold:
            new_hist, _ = _histogram(data_arr, len(old_hist), value_range=(-old_threshold, old_threshold))
            self.hist = new_hist + old_hist
        elif old_threshold == 0:
            hist, self.edges = _histogram(data_arr, len(old_hist), value_range=(-new_threshold, new_threshold))
            self.hist = hist + old_hist
            self.threshold = new_threshold
        else:
            old_num_bins = len(old_hist)
            old_stride = 2 * old_threshold / old_num_bins                          # float32
            half = (new_threshold - old_threshold) // old_stride + 1                   # float32
            _check_growth(2 * half)
            half_increased_bins = int(half)
            new_num_bins = old_num_bins + 2 * half_increased_bins
            new_threshold = half_increased_bins * old_stride + old_threshold       # float32
            hist, self.edges = _histogram(data_arr, new_num_bins, value_range=(-new_threshold, new_threshold))
            hist[half_increased_bins:new_num_bins - half_increased_bins] += old_hist
            self.hist, self.threshold = hist, new_threshold
        self.min, self.max = min(self.min, new_min), max(self.max, new_max)

    def nbytes(self) -> int:
        """Bytes of state (the counts and edges)."""
        return 0 if self.hist is None else self.hist.nbytes + self.edges.nbytes


class AbsoluteHistogram:
    """``HistogramCollector.collect_absolute_value`` for one tensor.

    First batch: ``np.histogram(|x|, bins=num_bins)`` — its range is $[\\min|x|, \\max|x|]$ of
    that batch, so a later $|x|$ below the first batch's smallest is not counted. A later batch
    whose $\\max|x|$ exceeds the last edge extends the edges with
    ``np.arange(last + w, max + w, w)`` (float32, $w$ the first bin's width); the batch is then
    histogrammed on the edges and the old counts added to the first bins. ``min`` / ``max`` are
    the extremes of $x$ itself (not $|x|$). The result depends on batch order: the first batch
    fixes the left edge and the width.

    Attributes:
        hist: int64 counts.
        edges: float32 edges, ``len(hist) + 1`` of them.
        min: float32 minimum of $x$ (not $|x|$) over every batch.
        max: float32 maximum of $x$ over every batch.
    """

    def __init__(self, num_bins: int):
        self.num_bins = num_bins
        self.hist = self.edges = self.min = self.max = None

    def add(self, x: np.ndarray) -> None:
        """Observe one float32 batch (flattened)."""
        data_arr_np = x.reshape(-1)
        min_value, max_value = np.nanmin(data_arr_np), np.nanmax(data_arr_np)
        data_arr_np = np.absolute(data_arr_np)
        if self.hist is None:
            hist, hist_edges = _histogram(data_arr_np, self.num_bins)
            self.hist, self.edges = hist, hist_edges.astype(data_arr_np.dtype)
            self.min, self.max = min_value, max_value
            return
        old_hist, old_hist_edges = self.hist, self.edges
        temp_amax = np.nanmax(data_arr_np)
        if temp_amax > old_hist_edges[-1]:
            width = old_hist_edges[1] - old_hist_edges[0]
            _check_growth((temp_amax - old_hist_edges[-1]) / width)
            new_bin_edges = np.arange(old_hist_edges[-1] + width, temp_amax + width, width)
            old_hist_edges = np.hstack((old_hist_edges, new_bin_edges))
        hist, hist_edges = _histogram(data_arr_np, old_hist_edges)
        hist[:len(old_hist)] += old_hist
        self.hist, self.edges = hist, hist_edges.astype(data_arr_np.dtype)
        self.min, self.max = min(self.min, min_value), max(self.max, max_value)

    def nbytes(self) -> int:
        """Bytes of state (the counts and edges)."""
        return 0 if self.hist is None else self.hist.nbytes + self.edges.nbytes
