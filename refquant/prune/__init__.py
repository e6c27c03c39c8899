"""Pruning of :mod:`refquant.nn` float models: masks, N:M sparsity, gradual schedules, thinning.

::

    from refquant import nn, prune
    masks = prune.magnitude_masks(model, 0.5)                 # {layer name: bool mask}, True = kept
    with prune.apply_masks(model, masks):                     # pruned weights stay exactly 0 ...
        nn.fit(model, x, y, epochs=3)                         # ... through fine-tuning
    prune.sparsity(model).overall                             # 0.5
    small = prune.prune_channels(model, 0.3)                  # 30 % of the filters removed for real

| module | what |
|---|---|
| :mod:`~refquant.prune.masks` | :func:`magnitude_masks` (layer or global scope), :func:`random_masks`, :func:`sparsity` |
| :mod:`~refquant.prune.train_masks` | :func:`apply_masks` → :class:`Pruning`: zeros kept through any optimizer |
| :mod:`~refquant.prune.nm` | :func:`nm_masks` (2:4 and N:M), :func:`check_nm`, :func:`nm_violations` |
| :mod:`~refquant.prune.schedules` | :class:`PolynomialDecay` (TFMOT's, bit for bit), :func:`agp_sparsity` (Zhu & Gupta) |
| :mod:`~refquant.prune.gradual` | :func:`prune_gradually`: train while the schedule raises the sparsity |
| :mod:`~refquant.prune.structured` | :func:`prune_channels`: remove filters and shrink what follows |
| :mod:`~refquant.prune.sparse` | real sparse storage with exact bytes: :func:`to_csr`, :func:`to_bitmask`, :func:`to_nm` (2:4 compressed values + metadata), :func:`storage_table`, :func:`break_even_sparsity` |

Only the weights of ``Linear`` and ``Conv2d`` layers are pruned; biases and BatchNorm never are.
Layers are named by their dotted names in the model (``"3"``, ``"2.body.0"``).
"""

from __future__ import annotations

from ._checks import kept_count
from .gradual import GradualHistory, prune_gradually
from .masks import SparsityReport, magnitude_masks, random_masks, sparsity
from .nm import check_nm, nm_masks, nm_violations
from .schedules import PolynomialDecay, agp_sparsity
from .sparse import BitmaskMatrix, CSRMatrix, NMMatrix, break_even_sparsity, storage_table, to_bitmask, to_csr, to_nm
from .structured import prune_channels, remove_channels, select_channels, thinnable_layers
from .train_masks import Pruning, apply_masks

__all__ = ["magnitude_masks", "random_masks", "sparsity", "SparsityReport", "kept_count", "apply_masks", "Pruning",
           "nm_masks", "check_nm", "nm_violations", "PolynomialDecay", "agp_sparsity", "prune_gradually",
           "GradualHistory", "thinnable_layers", "select_channels", "remove_channels", "prune_channels", "to_csr",
           "to_bitmask", "to_nm", "CSRMatrix", "BitmaskMatrix", "NMMatrix", "storage_table", "break_even_sparsity"]
