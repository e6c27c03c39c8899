"""PyTorch ``HistogramObserver``'s running histogram (its ``forward``), in float32.

The histogram has a fixed number of bins over the running ``[min_val, max_val]``. A batch is
histogrammed with ``torch.histc`` over the new range; when the range grew, the old histogram is
re-binned into it by ``_upscale_histogram``: each old bin is split into ``upsample_rate`` = 16
equal parts, each part is moved whole to the new bin holding its midpoint, and the parts are
summed with ``torch.bincount``. The re-binning smears counts, so the result depends on batch
order. Every step below is the float32 arithmetic of the torch ops named (see
:mod:`refquant.calibration.aten`); the state is ``bins`` float32 counts and two float32 bounds.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from . import aten

__all__ = ["TorchHistogram", "UPSAMPLE_RATE"]

UPSAMPLE_RATE = 16  # HistogramObserver.upsample_rate


class TorchHistogram:
    """``HistogramObserver``'s ``histogram``, ``min_val``, ``max_val`` buffers and ``forward``.

    Args:
        bins: Number of bins (``HistogramObserver(bins=...)``).
        capability: ATen CPU capability (see :func:`refquant.calibration.aten.resolve_capability`).

    Attributes:
        histogram: ``(bins,)`` float32 counts.
        min_val: float32 lower bound of the histogram (the smallest value seen), None before data.
        max_val: float32 upper bound (the largest value seen).
    """

    def __init__(self, bins: int, capability: str = "auto"):
        self.bins = bins
        self.capability = capability
        self.histogram = np.zeros(bins, np.float32)
        self.min_val = self.max_val = None

    def add(self, x: np.ndarray) -> None:
        """``HistogramObserver.forward`` on one finite float32 batch."""
        x = x.reshape(-1)
        x_min, x_max = x.min(), x.max()                                  # torch.aminmax: exact
        if self.min_val is None:                                         # reset_histogram
            self.min_val, self.max_val = x_min, x_max
            self.histogram = self._histc(x, x_min, x_max)
            return
        new_min, new_max = min(self.min_val, x_min), max(self.max_val, x_max)
        update = self._histc(x, new_min, new_max)
        if new_min == self.min_val and new_max == self.max_val:
            self.histogram = (self.histogram + update).astype(np.float32)
        else:
            self.histogram = self._combine(update, new_min, new_max)
            self.min_val, self.max_val = new_min, new_max

    def _histc(self, x, lo, hi) -> np.ndarray:
        return aten.histc_f32(x, self.bins, float(lo), float(hi), self.capability)

    def _combine(self, update_hist, update_min, update_max) -> np.ndarray:
        """``_combine_histograms``: the old histogram moved into ``[update_min, update_max]``, plus the batch's."""
        orig_min, orig_max = self.min_val, self.max_val
        if orig_min == orig_max:  # one value seen so far: all its counts go to that value's new bin
            bin_value = aten.cascade_sum_f32(self.histogram, self.capability)
            one = self._histc(np.array([orig_min], np.float32), update_min, update_max)
            return (one * bin_value + update_hist).astype(np.float32)
        return (update_hist + self._upscale(update_min, update_max)).astype(np.float32)

    def _upscale(self, update_min, update_max) -> np.ndarray:
        """``_upscale_histogram``: split each bin in 16, bucket the parts' midpoints into the new bins.

        ``mid = linspace(orig_min, orig_max, 16·bins + 1)[:-1] + 0.5·(orig_max − orig_min)/(16·bins)``;
        ``bucket = bucketize(mid, linspace(update_min, update_max, bins + 1), right=True) − 1``,
        clamped to ``[0, bins − 1]``; ``bincount(bucket, weights=histogram.repeat(16)/16)``
        accumulated in float32, in index order.
        """
        n = self.bins * UPSAMPLE_RATE
        orig_min, orig_max = self.min_val, self.max_val
        parts = np.repeat(self.histogram, UPSAMPLE_RATE) / np.float32(UPSAMPLE_RATE)      # (n,) float32
        bin_size = np.float32(orig_max - orig_min) / np.float32(n)                          # float32
        mid = aten.linspace_f32(orig_min, orig_max, n + 1, self.capability)[:-1] + np.float32(0.5) * bin_size
        boundaries = aten.linspace_f32(update_min, update_max, self.bins + 1, self.capability)
        bucket = np.searchsorted(boundaries, mid, side="right") - 1                         # (n,) int64
        bucket = np.clip(bucket, 0, self.bins - 1)
        out = np.zeros(self.bins, np.float32)
        np.add.at(out, bucket, parts.astype(np.float32))                                    # sequential float32
        return out
