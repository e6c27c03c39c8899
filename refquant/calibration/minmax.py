"""Running minimum and maximum: the simplest calibrator, and the default of every backend.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .observer import Observer

__all__ = ["MinMaxObserver", "symmetric_range"]


def symmetric_range(lo, hi):
    """ONNX Runtime's ``symmetric=True`` range: $(-a, a)$ with $a = \\max(|lo|, |hi|)$ (float32).

    As ``MinMaxCalibrater.compute_data`` computes it: ``np.nanmax([abs(min), abs(max)], axis=0)``.
    """
    a = np.nanmax([np.abs(lo), np.abs(hi)], axis=0).astype(np.float32)
    return -a, a


class MinMaxObserver(Observer):
    """The running minimum and maximum of every value seen.

    $$lo = \\min_b \\min(x_b), \\qquad hi = \\max_b \\max(x_b)$$

    over batches $b$ (per channel: over every element of channel $c$ in every batch). Exact in
    float32 (a minimum rounds nothing).

    Reproduces:

    * PyTorch ``torch.ao.quantization.MinMaxObserver`` and ``PerChannelMinMaxObserver``: their
      ``min_val`` / ``max_val`` buffers after ``forward`` on each batch (``torch.aminmax`` of the
      batch cast to float32, folded with ``torch.min`` / ``torch.max``). Per channel, torch's
      ``ch_axis`` is ``axis`` here.
    * ONNX Runtime ``MinMaxCalibrater`` (``moving_average=False``): ``np.nanmin`` / ``np.nanmax``
      of the per-batch ``ReduceMin`` / ``ReduceMax`` outputs; with ``per_channel=True`` its axis
      is 1. ``symmetric=True`` gives its symmetric range (:func:`symmetric_range`).

    Batch order does not matter: min and max are associative and exact. The state is two
    float32 values per tensor (or per channel), whatever the number of batches.

    Args:
        axis: ``None`` (per tensor) or the channel axis.
        symmetric: Report $(-a, a)$ with $a = \\max(|lo|, |hi|)$, as ONNX Runtime's
            ``symmetric=True`` does (PyTorch keeps the raw range and makes it symmetric in
            ``calculate_qparams``).
    """

    name = "minmax"
    per_channel_supported = True

    def __init__(self, axis=None, *, symmetric: bool = False):
        super().__init__(axis)
        self.symmetric = V.as_flag(symmetric, "symmetric", ints=False)
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        if self.axis is None:
            lo, hi = x.min(), x.max()                                  # float32 scalars
        else:
            lo, hi = x.min(axis=1), x.max(axis=1)                      # (C,) float32
        if self._lo is None:
            self._lo, self._hi = lo, hi
        else:
            self._lo, self._hi = np.minimum(self._lo, lo), np.maximum(self._hi, hi)

    def _range(self):
        if self.axis is None:
            lo, hi = np.float32(self._lo), np.float32(self._hi)
        else:
            lo, hi = self._lo.copy(), self._hi.copy()
        return symmetric_range(lo, hi) if self.symmetric else (lo, hi)

    def _reset(self) -> None:
        self._lo = self._hi = None
