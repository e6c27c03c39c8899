"""Entropy calibration: the threshold whose quantized histogram loses the least information
(ONNX Runtime's ``CalibrationMethod.Entropy``).

The idea is TensorRT's (8-bit inference with TensorRT, GTC 2017): for each candidate window of
the histogram, fold the outliers into its end bins (the reference $P$), merge the window into
``num_quantized_bins`` bins and spread them back (the candidate $Q$), and keep the window with
the smallest Kullback-Leibler divergence $D(P\\|Q)$. Implementations differ in every detail,
so this module follows ONNX Runtime's code line by line; see
:class:`~refquant.calibration.TensorRTEntropyObserver` for NVIDIA's.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import CalibrationError, QuantizationValueError
from .observer import Observer
from .ort_histogram import SignedHistogram

__all__ = ["EntropyObserver", "entropy_threshold", "smooth_distribution", "kl_divergence"]


def smooth_distribution(p: np.ndarray, eps: float = 0.0001):
    """ONNX Runtime's ``quant_utils.smooth_distribution``: move mass $\\epsilon$ into each empty bin.

    With $n_0$ empty and $n_1$ non-empty bins, $\\epsilon_1 = \\epsilon n_0 / n_1$:
    $p_i + \\epsilon$ where $p_i = 0$, $p_i - \\epsilon_1$ elsewhere (float32).

    Returns:
        float32 array, or ``None`` if every bin is empty.

    Raises:
        CalibrationError: $\\epsilon_1 \\ge 1$ or a smoothed bin $\\le 0$ (ONNX Runtime asserts).
    """
    is_zeros = (p == 0).astype(np.float32)
    is_nonzeros = (p != 0).astype(np.float32)
    n_zeros = is_zeros.sum()
    n_nonzeros = p.size - n_zeros
    if not n_nonzeros:
        return None
    eps1 = eps * float(n_zeros) / float(n_nonzeros)
    if not eps1 < 1.0:
        raise CalibrationError(
            f"entropy calibration failed: {int(n_zeros)} empty bins against {int(n_nonzeros)} non-empty ones "
            f"(ONNX Runtime's smooth_distribution asserts eps1 < 1, got {eps1})")
    hist = p.astype(np.float32)
    hist += eps * is_zeros + (-eps1) * is_nonzeros
    if (hist <= 0).sum():
        raise CalibrationError("entropy calibration failed: a smoothed bin is <= 0 (ONNX Runtime asserts)")
    return hist


def kl_divergence(pk: np.ndarray, qk: np.ndarray) -> np.float32:
    """ONNX Runtime's ``calibrate.entropy(pk, qk)``, float32: both normalized to sum 1, then
    $\\sum_i p_i \\log(p_i / q_i)$ with $0$ where $p_i = 0 \\le q_i$ and $+\\infty$ where
    $q_i = 0 < p_i$ (its ``rel_entr``)."""
    pk = pk.astype(np.float32)
    pk = 1.0 * pk / np.sum(pk, axis=0, keepdims=True)
    qk = qk.astype(np.float32)
    qk = 1.0 * qk / np.sum(qk, axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        vec = pk * np.log(pk / qk)
    vec[(pk == 0) & (qk >= 0)] = 0
    vec[~((pk > 0) & (qk > 0))] = np.inf
    return np.sum(vec, axis=0).astype(pk.dtype)


def entropy_threshold(hist: np.ndarray, edges: np.ndarray, min_value, max_value, num_quantized_bins: int):
    """ONNX Runtime's ``HistogramCollector.get_entropy_threshold`` for one histogram.

    With $n$ bins, $z = \\lfloor n/2 \\rfloor$ and $h = \\lfloor$ ``num_quantized_bins``$/2\\rfloor$,
    for $i = h, \\dots, z$ the window is bins $[z - i, \\min(z + i + 1, n))$, threshold
    ``(edges[z - i], edges[end])``:

    * $P$: the window's counts, the counts left of it added to its first bin and right of it
      to its last;
    * $Q$: the window cut into ``num_quantized_bins`` groups of $m = \\lfloor |w| / k \\rfloor$
      bins (the remainder added to the last group's sum but to no bin of $Q$); each group's sum
      divided by its count of non-zero $P$ bins and stored in an **int64** array (truncated),
      in every bin of the group;
    * $D = $ :func:`kl_divergence` of the :func:`smooth_distribution` of each, $+\\infty$ if
      either is all zeros.

    The first window with the smallest $D$ wins; its threshold is clamped to
    ``[min_value, max_value]``.

    Returns:
        ``(lo, hi)``: float32 scalars.
    """
    num_bins = hist.size
    zero_bin_index = num_bins // 2
    num_half_quantized_bin = num_quantized_bins // 2
    dtype = edges.dtype
    kl = np.zeros(zero_bin_index - num_half_quantized_bin + 1)                  # float64
    thresholds = [None] * kl.size
    for i in range(num_half_quantized_bin, zero_bin_index + 1):
        start_index = zero_bin_index - i
        end_index = min(zero_bin_index + i + 1, num_bins)
        thresholds[i - num_half_quantized_bin] = (edges[start_index], edges[end_index])
        sliced = hist[start_index:end_index].copy()
        p = sliced.copy()                                                       # int64
        p[0] += hist[:start_index].sum()
        p[-1] += hist[end_index:].sum()
        nonzeros = (p != 0).astype(np.int64)
        m = sliced.size // num_quantized_bins
        sums = sliced[:num_quantized_bins * m].reshape(num_quantized_bins, m).sum(axis=1)   # int64
        sums[-1] += sliced[num_quantized_bins * m:].sum()
        norms = nonzeros[:num_quantized_bins * m].reshape(num_quantized_bins, m).sum(axis=1)
        q = np.zeros(p.size, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(norms != 0, sums / np.maximum(norms, 1), 0)       # float64 quotient
        q[:num_quantized_bins * m] = np.repeat(np.where(norms != 0, spread, 0), m).astype(np.int64)  # truncates
        # a group with norm 0 keeps q = 0, as ONNX Runtime's loop skips it
        p_s, q_s = smooth_distribution(p), smooth_distribution(q)
        kl[i - num_half_quantized_bin] = np.inf if p_s is None or q_s is None else \
            np.array(kl_divergence(p_s, q_s), dtype=dtype)
    lo, hi = thresholds[int(np.argmin(kl))]
    if lo < min_value:
        lo = min_value
    if hi > max_value:
        hi = max_value
    return np.float32(lo), np.float32(hi)


class EntropyObserver(Observer):
    """The histogram window with the smallest KL divergence (:func:`entropy_threshold`).

    Reproduces ONNX Runtime's ``EntropyCalibrater`` as ``create_calibrator`` builds it
    (``CalibrationMethod.Entropy``, defaults ``num_bins=128``, ``num_quantized_bins=128``):
    ``HistogramCollector.collect_value`` (a histogram of $x$ over $\\pm$ its largest magnitude,
    :class:`~refquant.calibration.ort_histogram.SignedHistogram`) then ``compute_entropy``.
    Each :meth:`update` is one ``collect_data`` call of ONNX Runtime with one batch. ONNX
    Runtime's ``symmetric`` option does not change this range, so it is not an option here.

    With the defaults there is a single window — the whole histogram — until a later batch
    widens it, so the range is then the data's min and max; more bins than quantized bins
    (e.g. ``num_bins=2048``) give the method room to clip.

    Depends on batch order: the first batch fixes the stride of the histogram.

    Args:
        axis: Must be ``None``.
        num_bins: Bins of the first batch's histogram (default 128).
        num_quantized_bins: $k$, at most ``num_bins`` (default 128).
    """

    name = "entropy"

    def __init__(self, axis=None, *, num_bins: int = 128, num_quantized_bins: int = 128):
        super().__init__(axis)
        self.num_bins = V.as_positive_int(num_bins, "num_bins")
        V.check_allocation(self.num_bins, 16, "num_bins")
        self.num_quantized_bins = V.as_positive_int(num_quantized_bins, "num_quantized_bins")
        if self.num_quantized_bins // 2 > self.num_bins // 2:
            raise QuantizationValueError(
                f"num_quantized_bins must be at most num_bins = {self.num_bins} (ONNX Runtime has no window "
                f"to try otherwise), got {self.num_quantized_bins}")
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        self._hist.add(x)

    def _range(self):
        h = self._hist
        return entropy_threshold(h.hist, h.edges, h.min, h.max, self.num_quantized_bins)

    def _reset(self) -> None:
        self._hist = SignedHistogram(self.num_bins)
