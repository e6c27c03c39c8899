"""L2 (MSE) calibration over a histogram: PyTorch's ``HistogramObserver``.

PyTorch's search (``_non_linear_param_search``, a port of Caffe2's norm minimization) narrows
the histogram from its ends, one quantile step of $10^{-5}$ at a time, always trimming the side
whose next cut drops fewer bins, and stops as soon as the estimated L2 quantization error of
the narrowed range grows. Everything is float32 torch arithmetic, reproduced here op by op; the
comparisons in the search make a one-bin difference change the scale, so every rounding counts.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from . import aten
from .observer import Observer
from .torch_histogram import TorchHistogram

__all__ = ["HistogramMSEObserver", "quantization_error", "non_linear_param_search", "DST_NBINS"]

# 2 ** torch.iinfo(dtype).bits: the number of quantization levels HistogramObserver assumes
DST_NBINS = {"quint8": 2 ** 8, "qint8": 2 ** 8, "uint8": 2 ** 8, "int8": 2 ** 8,
             "int16": 2 ** 16, "uint16": 2 ** 16, "qint32": 2 ** 32, "int32": 2 ** 32}

_F = np.float32


def _norm(delta_begin, delta_end, density):
    """``HistogramObserver._get_norm``: $\\rho\\,(e^3 - b^3)/3$, float32, each product rounded."""
    return density * ((delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / _F(3))


def quantization_error(hist: TorchHistogram, start_bin: int, end_bin: int, dst_nbins: int,
                       capability: str = "auto") -> float:
    """``HistogramObserver._compute_quantization_error(start_bin, end_bin)``.

    Source bins of width $w$ (float64 ``(max_val - min_val) / bins``) are mapped onto
    ``dst_nbins`` destination bins of width $d = w\\,(e - s + 1)/n_{dst}$ spanning bins
    $s..e$. Source bin $i$ covers $[b_i, b_i + w)$, $b_i = (i - s)\\,w$; with $j_0$, $j_1$ the
    destination bins of its ends (floor division, clamped to $[0, n_{dst} - 1]$) and density
    $\\rho_i = h_i / w$, its error is

    $$\\rho_i\\big[f(b_i - c_{j_0}, \\tfrac d2) + (j_1 - j_0 - 1) f(-\\tfrac d2, \\tfrac d2)
    + f(-\\tfrac d2, b_i + w - c_{j_1})\\big], \\quad f(a, b) = (b^3 - a^3)/3$$

    with $c_j = (j + \\tfrac12) d$, in float32 (scalars rounded to float32 as torch does), summed
    by ``torch.sum`` (:func:`~refquant.calibration.aten.cascade_sum_f32`).

    Returns:
        The error as a Python float (``.item()``); 0.0 when $d = 0$.
    """
    bins = hist.bins
    bin_width = (float(hist.max_val) - float(hist.min_val)) / bins                 # Python float64
    dst_bin_width = bin_width * (end_bin - start_bin + 1) / dst_nbins
    if dst_bin_width == 0.0:
        return 0.0
    d = _F(dst_bin_width)
    src_bin_begin = (np.arange(bins) - start_bin).astype(_F) * _F(bin_width)       # (bins,) float32
    src_bin_end = src_bin_begin + _F(bin_width)
    top = _F(dst_nbins - 1)
    dst_bin_of_begin = np.clip(np.floor_divide(src_bin_begin, d), _F(0), top)      # torch.div(..., "floor")
    dst_bin_of_begin_center = (dst_bin_of_begin + _F(0.5)) * d
    dst_bin_of_end = np.clip(np.floor_divide(src_bin_end, d), _F(0), top)
    density = hist.histogram / _F(bin_width)

    norm = np.zeros(bins, _F)
    delta_begin = src_bin_begin - dst_bin_of_begin_center
    norm += _norm(delta_begin, np.ones(bins, _F) * _F(dst_bin_width / 2), density)
    norm += (dst_bin_of_end - dst_bin_of_begin - _F(1)) * _norm(
        _F(-dst_bin_width / 2), _F(dst_bin_width / 2), density)
    dst_bin_of_end_center = dst_bin_of_end * d + _F(dst_bin_width / 2)
    delta_end = src_bin_end - dst_bin_of_end_center
    norm += _norm(_F(-dst_bin_width / 2), delta_end, density)
    return float(aten.cascade_sum_f32(norm, capability))


def non_linear_param_search(hist: TorchHistogram, dst_nbins: int, capability: str = "auto"):
    """``HistogramObserver._non_linear_param_search``: the range ``calculate_qparams`` quantizes.

    With the float32 cumulative counts $C$ (``torch.cumsum``) and total $T$ (``torch.sum``):
    starting from all bins $[s, e] = [0, \\mathrm{bins} - 1]$, $\\alpha = 0$, $\\beta = 1$, and
    while $\\alpha < \\beta$ (Python floats, steps of $10^{-5}$): find the first $l \\ge s$ with
    $C_l \\ge \\mathrm{f32}((\\alpha + 10^{-5})T)$ and the last $r \\le e$ with
    $C_r \\le \\mathrm{f32}((\\beta - 10^{-5})T)$; move $s$ to $l$ if that drops more bins than
    moving $e$ to $r$, else move $e$ (and advance $\\alpha$ or $\\beta$ accordingly); skip if
    nothing moved; stop when :func:`quantization_error` exceeds the best so far.

    Returns:
        ``(new_min, new_max)``: float32 scalars, ``min_val + w·s`` and ``min_val + w·(e + 1)``
        with the float32 bin width $w$ = ``(max_val - min_val) / bins``.
    """
    bins = hist.bins
    bin_width = _F(hist.max_val - hist.min_val) / _F(bins)                          # float32
    total = float(aten.cascade_sum_f32(hist.histogram, capability))
    c_sum = aten.cumsum_f32(hist.histogram)                                         # (bins,) float32
    c = c_sum.tolist()                                                              # the same values, fast to index
    stepsize = 1e-5
    alpha, beta = 0.0, 1.0
    start_bin, end_bin = 0, bins - 1
    norm_min = float("inf")
    while alpha < beta:
        if start_bin == end_bin:  # nothing can move any more: torch spins until alpha >= beta, same bins
            break
        next_alpha, next_beta = alpha + stepsize, beta - stepsize
        lo_count, hi_count = _F(next_alpha * total), _F(next_beta * total)  # torch compares in float32
        # torch: while l < end_bin and cSum[l] < next_alpha * total: l += 1   (cSum is non-decreasing)
        l = start_bin
        if l < end_bin and c[l] < lo_count:
            l += int(np.searchsorted(c_sum[start_bin:end_bin], lo_count, side="left"))
        # torch: while r > start_bin and cSum[r] > next_beta * total: r -= 1
        r = end_bin
        if r > start_bin and c[r] > hi_count:
            r = start_bin + int(np.searchsorted(c_sum[start_bin + 1:end_bin + 1], hi_count, side="right"))
        next_start_bin, next_end_bin = start_bin, end_bin
        if (l - start_bin) > (end_bin - r):
            next_start_bin = l
            alpha = next_alpha
        else:
            next_end_bin = r
            beta = next_beta
        if next_start_bin == start_bin and next_end_bin == end_bin:
            continue
        norm = quantization_error(hist, next_start_bin, next_end_bin, dst_nbins, capability)
        if norm > norm_min:
            break
        norm_min = norm
        start_bin, end_bin = next_start_bin, next_end_bin
    new_min = _F(hist.min_val + bin_width * _F(start_bin))
    new_max = _F(hist.min_val + bin_width * _F(end_bin + 1))
    return new_min, new_max


class HistogramMSEObserver(Observer):
    """The histogram range that minimizes an L2 quantization-error estimate.

    Reproduces PyTorch's ``torch.ao.quantization.HistogramObserver`` (per tensor): ``forward``
    on each batch (:class:`~refquant.calibration.torch_histogram.TorchHistogram`), then the
    ``(new_min, new_max)`` that ``calculate_qparams`` passes to ``_calculate_qparams``
    (:func:`non_linear_param_search`). So ``refquant.backends.pytorch.choose_qparams(lo, hi,
    dtype=..., qscheme=..., reduce_range=...)`` of this range is the observer's
    ``calculate_qparams()``.

    The search assumes ``2 ** bits(dtype)`` quantization levels (``dst_nbins``); PyTorch
    ignores ``quant_min``, ``quant_max`` and ``reduce_range`` there, so only ``dtype`` is an
    option.

    Depends on batch order: a batch that widens the range re-bins the histogram (16-fold
    upsampling, see :mod:`~refquant.calibration.torch_histogram`). The state is ``num_bins``
    float32 counts and two bounds. Bit-exact against torch 2.13 on x86-64 while one batch puts
    fewer than $2^{24}$ values in a bin and ``num_bins`` is below 32768 (torch counts in float32,
    and splits longer sums across its threads).

    Args:
        axis: Must be ``None`` (``HistogramObserver`` is per tensor).
        num_bins: Histogram bins, PyTorch's ``bins`` (default 2048).
        dtype: The quantized dtype (default ``"quint8"``, PyTorch's default): ``"quint8"``,
            ``"qint8"``, ``"uint8"``, ``"int8"`` (256 levels), ``"int16"``, ``"uint16"``,
            ``"qint32"``, ``"int32"``.
        capability: ATen CPU dispatch, ``"auto"`` (default: what torch picks on this machine),
            ``"avx512"``, ``"avx2"`` or ``"default"`` (only the last changes a result: its
            ``linspace`` does not fuse multiply-adds).
    """

    name = "mse"

    def __init__(self, axis=None, *, num_bins: int = 2048, dtype: str = "quint8", capability: str = "auto"):
        super().__init__(axis)
        self.num_bins = V.as_positive_int(num_bins, "num_bins")
        V.check_allocation(self.num_bins * 16, 16, "num_bins * 16")
        self.dtype = V.as_choice(dtype, "dtype", tuple(DST_NBINS))
        self.capability = aten.resolve_capability(capability)
        self._reset()

    def _observe(self, x: np.ndarray) -> None:
        with np.errstate(all="ignore"):  # a range beyond float32's maximum overflows, silently as in torch
            self._hist.add(x)

    def _range(self):
        with np.errstate(all="ignore"):
            return non_linear_param_search(self._hist, DST_NBINS[self.dtype], self.capability)

    def _reset(self) -> None:
        self._hist = TorchHistogram(self.num_bins, self.capability)
