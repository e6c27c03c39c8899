"""Moving-average min/max: batch ranges smoothed over time, as PyTorch and ONNX Runtime do it.

The two backends mean different things by "moving average", so the observer has a ``variant``:

* ``"pytorch"`` — an exponential moving average updated after every batch.
* ``"onnxruntime"`` — the arithmetic mean of the per-batch minima and maxima of one
  ``collect_data`` call (ONNX Runtime applies its ``averaging_constant`` only between calls).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError
from .minmax import symmetric_range
from .observer import Observer

__all__ = ["MovingAverageMinMaxObserver", "VARIANTS"]

VARIANTS = ("pytorch", "onnxruntime")


class MovingAverageMinMaxObserver(Observer):
    """Per-batch minima and maxima, averaged.

    ``variant="pytorch"`` (float32, $c$ = ``averaging_constant``): the first batch sets
    $lo = \\min(x_1)$, then for each batch

    $$lo \\leftarrow lo + \\mathrm{f32}(c) \\cdot (\\min(x_b) - lo)$$

    with each operation rounded to float32 (and the same for $hi$). This is PyTorch's
    ``torch.ao.quantization.MovingAverageMinMaxObserver.forward`` and, per channel,
    ``MovingAveragePerChannelMinMaxObserver.forward`` (their ``min_val`` / ``max_val``).
    The state is two float32 values per tensor or channel. The result depends on batch order:
    recent batches weigh more.

    ``variant="onnxruntime"``: $lo = \\mathrm{mean}_b \\min(x_b)$, $hi = \\mathrm{mean}_b
    \\max(x_b)$, computed as ONNX Runtime's ``MinMaxCalibrater(moving_average=True)``
    computes them in ``compute_data`` for the batches of one ``collect_data`` call:
    ``np.nanmean`` over the float32 ``ReduceMin`` / ``ReduceMax`` outputs stacked as
    ``(batches, 1)`` (or ``(batches, C)`` per channel, axis 1 in ONNX Runtime). Its
    ``averaging_constant`` is used only when a later ``collect_data`` call is merged, so it is
    not an option of this variant. ONNX Runtime keeps every batch output until
    ``compute_data``; this observer keeps the per-batch minima and maxima only, which is 8 bytes
    per batch per tensor (or channel) — the one state here that grows with the batch count.
    The mean is order-free up to float32 rounding of NumPy's pairwise sum.

    Args:
        axis: ``None`` (per tensor) or the channel axis.
        averaging_constant: $c \\in [0, 1]$, default 0.01 (PyTorch's default); only for
            ``variant="pytorch"``.
        variant: ``"pytorch"`` (default) or ``"onnxruntime"``.
        symmetric: Report $(-a, a)$ with $a = \\max(|lo|, |hi|)$ (ONNX Runtime's ``symmetric``).
    """

    name = "moving_average"
    per_channel_supported = True

    def __init__(self, axis=None, *, averaging_constant=None, variant: str = "pytorch",
                 symmetric: bool = False):
        super().__init__(axis)
        self.variant = V.as_choice(variant, "variant", VARIANTS)
        if averaging_constant is not None and self.variant == "onnxruntime":
            raise QuantizationValueError(
                "averaging_constant must be None with variant='onnxruntime' (ONNX Runtime averages the "
                f"batches of one collect_data call with a plain mean), got {averaging_constant!r}")
        c = 0.01 if averaging_constant is None else V.as_real_scalar(averaging_constant, "averaging_constant")
        if not 0.0 <= c <= 1.0:
            raise QuantizationValueError(f"averaging_constant must be in [0, 1], got {c!r}")
        self.averaging_constant = c
        self.symmetric = V.as_flag(symmetric, "symmetric", ints=False)
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        if self.axis is None:
            lo, hi = x.min().reshape(1), x.max().reshape(1)          # (1,) float32
        else:
            lo, hi = x.min(axis=1), x.max(axis=1)                    # (C,) float32
        if self.variant == "pytorch":
            self._ema(lo, hi)
        else:
            self._append(lo, hi)

    def _ema(self, lo: np.ndarray, hi: np.ndarray) -> None:
        if self._lo is None:                                         # the first batch initializes
            self._lo, self._hi = lo, hi
            return
        c = np.float32(self.averaging_constant)
        self._lo = (self._lo + c * (lo - self._lo)).astype(np.float32)
        self._hi = (self._hi + c * (hi - self._hi)).astype(np.float32)

    def _append(self, lo: np.ndarray, hi: np.ndarray) -> None:
        if self._lo is None:
            self._lo = np.empty((16, lo.size), np.float32)           # grows by doubling
            self._hi = np.empty((16, lo.size), np.float32)
        if self._count == self._lo.shape[0]:
            self._lo = np.concatenate([self._lo, np.empty_like(self._lo)])
            self._hi = np.concatenate([self._hi, np.empty_like(self._hi)])
        self._lo[self._count], self._hi[self._count] = lo, hi
        self._count += 1

    def _range(self):
        if self.variant == "pytorch":
            lo, hi = self._lo, self._hi
        else:  # exactly ONNX Runtime's call, on an array of the same shape and layout
            lo = np.nanmean(self._lo[:self._count], axis=0)
            hi = np.nanmean(self._hi[:self._count], axis=0)
        lo, hi = lo.astype(np.float32), hi.astype(np.float32)
        if self.axis is None:
            lo, hi = lo[0], hi[0]
        return symmetric_range(lo, hi) if self.symmetric else (lo, hi)

    def _reset(self) -> None:
        self._lo = self._hi = None
        self._count = 0
