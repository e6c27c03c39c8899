"""Entropy calibration as NVIDIA's pytorch-quantization toolkit does it (TensorRT-style).

pytorch-quantization's ``HistogramCalibrator`` collects a histogram of $|x|$ from 0 with
``torch.histc`` and picks ``amax`` with ``_compute_amax_entropy``. It differs from ONNX
Runtime's entropy method (:class:`~refquant.calibration.EntropyObserver`) in every detail that
decides the result: one-sided $|x|$ bins, $P$ without smoothing, $Q$ averaged over the non-empty
source bins only, SciPy's KL divergence, and the *last* minimum rather than the first.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import CalibrationError, QuantizationValueError
from . import aten
from .observer import Observer

__all__ = ["TensorRTEntropyObserver", "compute_amax_entropy", "scipy_entropy"]


def scipy_entropy(pk: np.ndarray, qk: np.ndarray) -> float:
    """``scipy.stats.entropy(pk, qk)``: $\\sum_i p_i \\log(p_i / q_i)$ after normalizing both to
    sum 1 (float64), with SciPy's ``rel_entr``: NaN if either is NaN, 0 where $p_i = 0 \\le q_i$,
    $+\\infty$ where $q_i = 0 < p_i$. An all-zero ``qk`` normalizes to NaN and gives NaN.

    ``np.log`` stands in for the C library's ``log`` SciPy calls; the two can differ in the last
    bit of a term, which can reorder only divergences equal to within that rounding.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        pk = 1.0 * pk / np.sum(pk, axis=0, keepdims=True)
        qk = 1.0 * qk / np.sum(qk, axis=0, keepdims=True)
        both = (pk > 0) & (qk > 0)
        vec = np.where(both, pk * np.log(np.where(both, pk / qk, 1.0)), np.inf)
    vec = np.where((pk == 0) & (qk >= 0), 0.0, vec)
    vec = np.where(np.isnan(pk) | np.isnan(qk), np.nan, vec)
    return float(np.sum(vec, axis=0))


def compute_amax_entropy(calib_hist: np.ndarray, calib_bin_edges: np.ndarray, num_bits: int = 8,
                         unsigned: bool = False, stride: int = 1, start_bin: int = 128) -> np.float32:
    """pytorch-quantization's ``calib.histogram._compute_amax_entropy``.

    With $h$ the int32 histogram, its first bin replaced by the second (the spike of zeros
    dropped) and $k = 2^{\\mathrm{bits} - 1 + \\mathrm{unsigned}}$ (128 for signed 8-bit), for
    each $i$ = ``start_bin``, ``start_bin + stride``, ... up to ``len(h)``:

    * $P = h_{0..i-1}$ with $\\sum_{j \\ge i} h_j$ added to its last bin;
    * source bin $j < i$ belongs to group $g_j$ = ``np.digitize(j, linspace(0, i, k + 1)) - 1``
      (empty source bins to none); $Q_j$ = (sum of its group) / (number of non-empty bins in
      the group), float64, and 0 for empty bins;
    * $D_i$ = :func:`scipy_entropy` $(P, Q)$ — no smoothing, so $+\\infty$ where $Q$ misses mass
      of $P$, NaN where $Q$ is all zero.

    The **last** minimum of $D$ wins (``len(D) - 1 - np.argmin(D[::-1])``, so the last NaN if
    there is one, as ``np.argmin`` returns the first NaN); ``amax`` is the left edge of bin
    ``i``, ``calib_bin_edges[i]``.

    Returns:
        ``amax``, float32.

    Raises:
        CalibrationError: The histogram has fewer than ``start_bin`` bins, or its counts do not
            add up (pytorch-quantization's "Count mismatch").
    """
    bins = np.array(calib_hist)                                                     # int32 copy
    bins[0] = bins[1]
    total_data = np.sum(bins)
    nbins = 1 << (num_bits - 1 + int(unsigned))
    stop = len(bins)
    if start_bin > stop:
        raise CalibrationError(f"entropy_tensorrt: the histogram has {stop} bins, fewer than start_bin = {start_bin}")
    divergences = []
    for i in range(start_bin, stop + 1, stride):
        space = np.linspace(0, i, num=nbins + 1)                                    # float64 group edges
        digitized = np.digitize(np.arange(i), space) - 1                            # (i,) group of each bin
        digitized[bins[:i] == 0] = -1
        used = digitized != -1
        group_sum = np.bincount(digitized[used], weights=bins[:i][used].astype(np.float64), minlength=nbins)
        group_count = np.bincount(digitized[used], minlength=nbins)
        density = np.divide(group_sum, group_count, out=np.zeros(nbins), where=group_count != 0)
        new_density = np.where(used, density[np.maximum(digitized, 0)], 0.0)      # (i,) float64
        outliers = np.sum(bins[i:])
        reference_density = np.array(bins[:i])
        reference_density[-1] += outliers
        if round(np.sum(new_density) + outliers) != total_data or round(np.sum(reference_density)) != total_data:
            raise CalibrationError(f"entropy_tensorrt: count mismatch at i = {i} (pytorch-quantization raises too)")
        divergences.append(scipy_entropy(reference_density, new_density))
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return np.float32(calib_bin_edges[last_argmin * stride + start_bin])


class TensorRTEntropyObserver(Observer):
    """``amax`` by KL divergence over a histogram of $|x|$, as NVIDIA pytorch-quantization.

    Reproduces ``pytorch_quantization.calib.HistogramCalibrator`` with its defaults
    (``num_bins=2048``, ``torch_hist=True``, ``skip_zeros=False``): ``collect`` on each batch,
    then ``compute_amax("entropy")`` (:func:`compute_amax_entropy`, ``start_bin=128``,
    ``stride=1``). Collection, in float32 torch arithmetic: $|x|$ (if any value is negative);
    the first batch fixes the bin width, ``histc(x, num_bins, 0, max)`` with edges
    ``linspace(0, max, num_bins + 1)``; a later batch beyond the last edge re-derives the edges
    as ``arange(0, max + w, w)`` and the bin count as $\\lceil \\max / w \\rceil$; each batch is
    histogrammed over $[0, \\text{last edge}]$ and the old counts added to the first bins.

    :meth:`range` returns $(-\\mathrm{amax}, \\mathrm{amax})$, or $(0, \\mathrm{amax})$ with
    ``unsigned=True`` (pytorch-quantization quantizes to $[-\\mathrm{amax}, \\mathrm{amax}]$ or
    $[0, \\mathrm{amax}]$).

    Depends on batch order: the first batch fixes the bin width. Memory grows with the ratio of
    the largest $|x|$ to the first batch's, never with the number of batches; so does the time
    of :meth:`range`, quadratically in the number of bins. Bit-exact against the original's
    code on torch 2.13 (x86-64) while the histogram has fewer than 32768 bins (torch splits a
    longer ``arange`` across its threads); SciPy's ``log`` is the C library's, see
    :func:`scipy_entropy`.

    Args:
        axis: Must be ``None`` (the calibrator is per tensor).
        num_bins: Bins of the first batch's histogram (default 2048).
        num_bits: Bits of the target integer (default 8).
        unsigned: Unsigned target ($2^{\\mathrm{bits}}$ levels on $[0, \\mathrm{amax}]$).
        start_bin, stride: The candidates $i$ (defaults 128 and 1).
        skip_zeros: Drop exact zeros before histogramming (the calibrator's option).
        capability: ATen CPU dispatch for ``linspace`` (see
            :class:`~refquant.calibration.HistogramMSEObserver`).
    """

    name = "entropy_tensorrt"

    def __init__(self, axis=None, *, num_bins: int = 2048, num_bits: int = 8, unsigned: bool = False,
                 start_bin: int = 128, stride: int = 1, skip_zeros: bool = False, capability: str = "auto"):
        super().__init__(axis)
        self.num_bins = V.as_positive_int(num_bins, "num_bins")
        V.check_allocation(self.num_bins, 16, "num_bins")
        self.num_bits = V.as_positive_int(num_bits, "num_bits", maximum=16)
        self.unsigned = V.as_flag(unsigned, "unsigned", ints=False)
        self.start_bin = V.as_positive_int(start_bin, "start_bin")
        if self.start_bin > self.num_bins:
            raise QuantizationValueError(
                f"start_bin must be at most num_bins = {self.num_bins}, got {self.start_bin}")
        self.stride = V.as_positive_int(stride, "stride")
        self.skip_zeros = V.as_flag(skip_zeros, "skip_zeros", ints=False)
        self.capability = aten.resolve_capability(capability)
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        with np.errstate(all="ignore"):  # a range beyond float32's maximum overflows, silently as in torch
            self._collect(x.reshape(-1))

    def _collect(self, x: np.ndarray) -> None:
        """``HistogramCalibrator.collect`` (the ``torch_hist=True`` path) on one flat float32 batch."""
        if x.min() < 0:
            x = np.abs(x)
        if self.skip_zeros:
            x = x[x != 0]
            if x.size == 0:
                raise QuantizationValueError("x must have a non-zero value with skip_zeros=True (max of nothing)")
        x_max = x.max()
        if self._hist is None:
            self._hist = aten.histc_f32(x, self._bins, 0.0, float(x_max), self.capability)
            self._edges = aten.linspace_f32(0.0, x_max, self._bins + 1, self.capability)
            return
        bins, edges = self._bins, self._edges
        if x_max > edges[-1]:
            width = edges[1] - edges[0]                                              # float32
            if width == 0:
                raise CalibrationError(
                    "entropy_tensorrt: the first batch was all zeros, so the bin width is 0 and the histogram "
                    "cannot grow (pytorch-quantization fails here too); reset() and start with non-zero data")
            quotient = np.ceil(x_max / width)                                        # float32
            if not (quotient * 16 < V.memory_limit() and np.isfinite(x_max + width)):  # torch: int(inf) or OOM
                raise CalibrationError(
                    f"x's largest |x| = {float(x_max)!r} would grow the histogram to {float(quotient):.4g} bins of "
                    f"width {float(width)!r} (fixed by the first batch): more than this machine's memory")
            bins = int(quotient)
            edges = aten.arange_f32(0.0, float(x_max + width), float(width), self.capability)
        hist = aten.histc_f32(x, bins, 0.0, float(edges[-1]), self.capability)
        if hist.size < self._hist.size:
            raise CalibrationError(
                f"entropy_tensorrt: the grown histogram has {hist.size} bins, fewer than the {self._hist.size} "
                "collected (pytorch-quantization fails here too)")
        hist[:self._hist.size] += self._hist
        self._hist, self._bins, self._edges = hist, bins, edges

    def _range(self):
        amax = compute_amax_entropy(self._hist.astype(np.int32), self._edges, self.num_bits, self.unsigned,
                                    self.stride, self.start_bin)
        return (np.float32(0), amax) if self.unsigned else (-amax, amax)

    def _reset(self) -> None:
        self._hist = self._edges = None
        self._bins = self.num_bins
