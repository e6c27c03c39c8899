"""N:M semi-structured sparsity: at most $N$ nonzero weights in every group of $M$ consecutive ones.

2:4 is what NVIDIA's sparse tensor cores (Ampere and later) execute at twice the dense rate
(Mishra et al., "Accelerating Sparse Deep Neural Networks", 2021); TFMOT offers it as
``prune_low_magnitude(..., sparsity_m_by_n=(2, 4))``. The groups run along the **reduction axis**
of the layer's matrix product, per output channel:

* ``Linear`` weight ``(out, in)``: each row, groups of $M$ consecutive input features;
* ``Conv2d`` weight ``(O, C/G, kH, kW)``: each output channel's filter flattened in C order,
  index $(c, i, j) \\mapsto (c\\,k_H + i)\\,k_W + j$ — the row order of refquant's im2col matrix
  (:func:`refquant.nn.conv.im2col`), so a group is $M$ consecutive rows of the GEMM's $K$ axis.
  Consecutive weights therefore step through the kernel taps of one input channel first. (NVIDIA's
  ASP and TFMOT group along input channels of a channels-last layout instead.)

**Rows whose length $K$ is not a multiple of $M$** are refused (``ShapeError``) unless
``pad=True``: then the row is taken as padded with zeros to a multiple of $M$, so its last,
partial group of $r < M$ weights keeps its $\\min(N, r)$ largest, which is what a kernel storing the
padded row would hold. The first convolution of the bundled ``cnn`` ($K = 1 \\cdot 3 \\cdot 3 = 9$)
is such a layer.

Inside a group the $N$ largest $|w|$ are kept; equal magnitudes: the lower index is kept.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, ShapeError
from ..nn import Module
from ._checks import check_model, finite_magnitudes, select_layers

__all__ = ["nm_masks", "check_nm", "nm_violations"]


def _check_nm_args(n, m) -> tuple[int, int]:
    m = V.as_positive_int(m, "m")
    n = V.as_positive_int(n, "n")
    if n > m:
        raise QuantizationValueError(f"n must be in [1, m] = [1, {m}], got {n}")
    return n, m


def _rows(w, name: str, m: int, pad: bool) -> np.ndarray:
    """``w`` as ``(rows, K)``: one row per output channel (a 1-D array is one row); K checked against m."""
    if w.ndim == 0 or w.size == 0:
        raise ShapeError(f"{name} must be a non-empty array with output channels on axis 0, got shape {w.shape}")
    rows = w.reshape(1, -1) if w.ndim == 1 else w.reshape(w.shape[0], -1)
    k = rows.shape[1]
    if k % m and not pad:
        raise ShapeError(f"{name}: the reduction axis has {k} weights per output channel, not a multiple of "
                         f"m = {m}; pass pad=True to treat each row as zero-padded, or leave this layer out")
    return rows


def _nm_row_mask(mag: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep the n largest of each group of m along axis 1 of ``mag`` (rows, K); a partial tail keeps min(n, r)."""
    rows, k = mag.shape
    full = (k // m) * m
    keep = np.zeros(mag.shape, dtype=bool)
    if full:
        groups = mag[:, :full].reshape(rows, full // m, m)
        order = np.argsort(-groups, axis=2, kind="stable")[:, :, :n]  # (rows, G, n) largest first
        kg = np.zeros(groups.shape, dtype=bool)
        np.put_along_axis(kg, order, True, axis=2)
        keep[:, :full] = kg.reshape(rows, full)
    if full < k:
        tail = mag[:, full:]
        order = np.argsort(-tail, axis=1, kind="stable")[:, :n]
        kt = np.zeros(tail.shape, dtype=bool)
        np.put_along_axis(kt, order, True, axis=1)
        keep[:, full:] = kt
    return keep


def nm_masks(model: Module, n: int = 2, m: int = 4, *, layers=None, pad: bool = False) -> dict[str, np.ndarray]:
    """Masks keeping the ``n`` largest $|w|$ of every ``m`` consecutive weights along the reduction axis.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        n: weights kept per group, $1 \\le n \\le m$.
        m: group size.
        layers: names of the Linear/Conv2d layers to prune (None: all of them).
        pad: accept layers whose reduction length is not a multiple of ``m`` (see the module docstring).

    Returns:
        ``{layer name: bool array of the weight's shape}`` (True = kept); each passes
        :func:`check_nm`.

    Raises:
        QuantizationValueError: ``n`` > ``m`` or < 1; an unknown layer name; a NaN/Inf weight.
        ShapeError: a layer whose reduction length is not a multiple of ``m`` (without ``pad``).

    Example:
        >>> from refquant import prune
        >>> from refquant.models import load_reference_model
        >>> masks = prune.nm_masks(load_reference_model("mlp"), 2, 4)
        >>> prune.check_nm(masks["1"], 2, 4)
        True
    """
    check_model(model)
    n, m = _check_nm_args(n, m)
    pad = V.as_flag(pad, "pad")
    out = {}
    for name, layer in select_layers(model, layers).items():
        mag = _rows(finite_magnitudes(layer, name), f"layer {name!r}", m, pad)
        out[name] = _nm_row_mask(mag, n, m).reshape(layer.weight.shape)
    return out


def nm_violations(w, n: int, m: int, *, pad: bool = False) -> np.ndarray:
    """The groups of ``w`` holding more than ``n`` nonzeros (a weight or a mask; NaN counts as nonzero).

    Args:
        w: ``(O, ...)`` array (weight or boolean mask), groups along its flattened trailing axes as in
            :func:`nm_masks`; a 1-D array is one row.
        n, m: at most ``n`` nonzeros per ``m`` consecutive entries.
        pad: accept a row length that is not a multiple of ``m`` (the tail group is then checked alone).

    Returns:
        ``(k, 2)`` int64 array, one row ``[output channel, index of the group's first entry]`` per
        offending group, in row-major order; empty ``(0, 2)`` when ``w`` is N:M sparse.

    Raises:
        QuantizationTypeError: a non-numeric ``w``. ShapeError: an empty or 0-d ``w``, or a row
        length not a multiple of ``m`` without ``pad``. QuantizationValueError: bad ``n``, ``m``.
    """
    n, m = _check_nm_args(n, m)
    pad = V.as_flag(pad, "pad")
    a = V.asarray(w, "w", kinds="biuf", what="a numeric array")
    rows = _rows(a, "w", m, pad) != 0  # (rows, K) bool
    k = rows.shape[1]
    starts = np.arange(0, k, min(m, k))  # first index of each group (the last may be partial; m > k: one group)
    counts = np.add.reduceat(rows.astype(np.int64), starts, axis=1)  # (rows, groups)
    bad_r, bad_g = np.nonzero(counts > n)
    return np.stack([bad_r, starts[bad_g]], axis=1).astype(np.int64).reshape(-1, 2)


def check_nm(w, n: int, m: int, *, pad: bool = False) -> bool:
    """True if every group of ``m`` consecutive entries of ``w`` holds at most ``n`` nonzeros.

    Same arguments and errors as :func:`nm_violations` (which says which groups offend).
    """
    return bool(nm_violations(w, n, m, pad=pad).shape[0] == 0)
