"""Unstructured pruning masks: keep the largest weights (magnitude pruning) or random ones (the baseline).

A mask is a boolean array of a weight's shape, **True = kept**. For a sparsity $s$ the number kept
out of $n$ weights is TFMOT's $k = \\max(\\operatorname{round}(n(1-s)), 1)$
(:func:`~refquant.prune._checks.kept_count`), and magnitude pruning keeps the $k$ weights of largest
$|w|$ (Han et al., "Learning both Weights and Connections for Efficient Neural Networks", 2015;
TFMOT's ``prune_low_magnitude``):

$$ M_i = [\\, \\operatorname{rank}(|w_i|) < k \\,], \\qquad \\text{ranks counted from the largest.} $$

* ``scope="layer"``: $k$ per layer, each layer at sparsity $s$.
* ``scope="global"``: one ranking of every included layer's $|w|$ together (one threshold,
  ``torch.nn.utils.prune.global_unstructured``); layers end up at different sparsities.

**Ties** are broken by position, so the masks are deterministic: among equal $|w|$ the weight that
comes first is kept — first in model order (``named_modules``), then by C-order index inside the
weight. (TFMOT keeps every weight equal to the $k$-th largest magnitude, so on ties it keeps more
than $k$; refquant keeps exactly $k$.)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._validate import as_choice
from ..nn import Module
from ..nn.init import as_seed
from ._checks import as_sparsity, check_model, finite_magnitudes, kept_count, prunable_layers, select_layers

__all__ = ["magnitude_masks", "random_masks", "sparsity", "SparsityReport"]

SCOPES = ("layer", "global")


def _keep_largest(mag: np.ndarray, k: int) -> np.ndarray:
    """Boolean (n,): the k largest of a flat array; equal values: the lower index first."""
    order = np.argsort(-mag, kind="stable")  # largest first, stable on ties
    keep = np.zeros(mag.size, dtype=bool)
    keep[order[:k]] = True
    return keep


def _split(flat: np.ndarray, layers: dict[str, Module]) -> dict[str, np.ndarray]:
    """Cut one flat mask over the layers (in order) back into per-layer masks of the weights' shapes."""
    out, start = {}, 0
    for name, layer in layers.items():
        shape = layer.weight.shape
        n = int(np.prod(shape))
        out[name] = flat[start:start + n].reshape(shape)
        start += n
    return out


def magnitude_masks(model: Module, sparsity, *, scope: str = "layer", layers=None) -> dict[str, np.ndarray]:
    """Masks keeping the weights of largest magnitude, per layer or across layers.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        sparsity: fraction of weights to remove, in [0, 1).
        scope: ``"layer"`` (each layer at ``sparsity``) or ``"global"`` (one $|w|$ ranking over
            all included layers).
        layers: names of the Linear/Conv2d layers to prune (None: all of them).

    Returns:
        ``{layer name: bool array of the weight's shape}`` (True = kept), in model order.

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module; ``layers`` not a list of names.
        QuantizationValueError: ``sparsity`` outside [0, 1); an unknown ``scope``; a name in
            ``layers`` that is not a Linear/Conv2d of the model; a NaN/Inf weight.
        UnsupportedError: a model without a Linear or Conv2d.

    Example:
        >>> from refquant import prune
        >>> from refquant.models import load_reference_model
        >>> masks = prune.magnitude_masks(load_reference_model("mlp"), 0.5)
        >>> {name: int(m.sum()) for name, m in masks.items()}
        {'1': 4096, '3': 4096, '5': 320}
    """
    check_model(model)
    s = as_sparsity(sparsity)
    scope = as_choice(scope, "scope", SCOPES)
    chosen = select_layers(model, layers)
    mags = {name: finite_magnitudes(layer, name).reshape(-1) for name, layer in chosen.items()}
    if scope == "layer":
        return {name: _keep_largest(mag, kept_count(mag.size, s)).reshape(chosen[name].weight.shape)
                for name, mag in mags.items()}
    flat = np.concatenate(list(mags.values()))  # (N,) float64, model order
    return _split(_keep_largest(flat, kept_count(flat.size, s)), chosen)


def random_masks(model: Module, sparsity, *, seed: int = 0, scope: str = "layer",
                 layers=None) -> dict[str, np.ndarray]:
    """Masks keeping randomly chosen weights: the same counts as :func:`magnitude_masks`, uniform positions.

    The baseline magnitude pruning must beat. ``scope="layer"`` keeps $k$ random weights per layer
    (layers in model order, one ``numpy.random.default_rng(seed)`` stream); ``"global"`` keeps $k$
    random weights among all of them (layers then differ in sparsity by chance).

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        sparsity: fraction of weights to remove, in [0, 1).
        seed: integer >= 0 for the generator.
        scope: ``"layer"`` or ``"global"``.
        layers: names of the layers to prune (None: every Linear and Conv2d).

    Returns:
        ``{layer name: bool array of the weight's shape}`` (True = kept).

    Raises:
        QuantizationTypeError, QuantizationValueError, UnsupportedError: as :func:`magnitude_masks`,
            and for a bad ``seed``.
    """
    check_model(model)
    s = as_sparsity(sparsity)
    rng = np.random.default_rng(as_seed(seed, "seed"))
    scope = as_choice(scope, "scope", SCOPES)
    chosen = select_layers(model, layers)

    def draw(n: int) -> np.ndarray:
        keep = np.zeros(n, dtype=bool)
        keep[rng.permutation(n)[:kept_count(n, s)]] = True
        return keep

    if scope == "layer":
        return {name: draw(layer.weight.value.size).reshape(layer.weight.shape) for name, layer in chosen.items()}
    return _split(draw(sum(layer.weight.value.size for layer in chosen.values())), chosen)


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Zero weights of a model's Linear and Conv2d layers (biases and BatchNorm not counted).

    Attributes:
        layers: ``{layer name: fraction of its weights that are exactly 0}``, model order.
        zeros: zero weights over all those layers.
        total: weights over all those layers.
        overall: ``zeros / total``.
    """

    layers: dict
    zeros: int
    total: int
    overall: float


def sparsity(model: Module) -> SparsityReport:
    """The fraction of weights equal to 0 (``== 0``, so ``-0.0`` too) in each Linear/Conv2d, and overall.

    Reads ``layer.weight.value`` (what :func:`~refquant.prune.train_masks.apply_masks` keeps at zero).

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module.
    """
    check_model(model)
    per, zeros, total = {}, 0, 0
    for name, layer in prunable_layers(model).items():
        w = layer.weight.value
        z = int(np.count_nonzero(w == 0))
        per[name] = z / w.size if w.size else 0.0
        zeros, total = zeros + z, total + w.size
    return SparsityReport(layers=per, zeros=zeros, total=total, overall=zeros / total if total else 0.0)
