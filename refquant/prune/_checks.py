"""What the pruning modules share (internal): the prunable layers of a model, the argument checks,
and the count of weights a sparsity keeps.

A *prunable layer* is a :class:`refquant.nn.Linear` or :class:`refquant.nn.Conv2d`, named by its
dotted name in the model (``"3"``, ``"2.body.0"``: :meth:`refquant.nn.Module.named_modules`).
Only its ``weight`` is pruned; biases and BatchNorm parameters never are.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..nn import Conv2d, Linear, Module
from ..nn._checks import as_probability
from ..passes._graph import check_model

__all__ = ["PRUNABLE", "check_model", "as_sparsity", "prunable_layers", "select_layers", "kept_count",
           "finite_magnitudes", "check_masks"]

#: The layers whose weights are pruned.
PRUNABLE = (Linear, Conv2d)


def as_sparsity(v, name: str = "sparsity") -> float:
    """A fraction of weights to remove, in [0, 1) (as TFMOT's schedules require)."""
    return as_probability(v, name)


def prunable_layers(model: Module) -> dict[str, Module]:
    """Every Linear and Conv2d of ``model`` by dotted name, in the order of ``named_modules``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def select_layers(model: Module, layers, name: str = "layers") -> dict[str, Module]:
    """The prunable layers named in ``layers`` (None: all of them), in model order.

    Raises:
        QuantizationTypeError: ``layers`` is not a list or tuple of strings.
        QuantizationValueError: a name that is no layer of the model, or a layer that is not a
            Linear or Conv2d (the message lists the prunable ones); an empty list.
        UnsupportedError: a model without any Linear or Conv2d.
    """
    found = prunable_layers(model)
    if not found:
        raise UnsupportedError(f"model has no Linear or Conv2d layer to prune ({type(model).__name__})")
    if layers is None:
        return found
    if not isinstance(layers, (list, tuple)) or not all(isinstance(s, str) for s in layers):
        raise QuantizationTypeError(f"{name} must be a list of layer names (strings) or None, got {V.describe(layers)}")
    if not layers:
        raise QuantizationValueError(f"{name} must name at least one layer, got an empty list; "
                                     f"the Linear and Conv2d layers are {list(found)}")
    every = dict(model.named_modules())
    for s in layers:
        if s not in every:
            raise QuantizationValueError(f"{name}: model has no layer named {s!r}; "
                                         f"its Linear and Conv2d layers are {list(found)}")
        if s not in found:
            raise QuantizationValueError(f"{name}: layer {s!r} is a {type(every[s]).__name__}, not a Linear or "
                                         f"Conv2d; its Linear and Conv2d layers are {list(found)}")
    wanted = set(layers)
    return {k: m for k, m in found.items() if k in wanted}


def kept_count(n: int, sparsity) -> int:
    """How many of ``n`` weights a sparsity keeps: TFMOT's count,

    $$ k = \\max\\big(\\operatorname{round}(n\\,(1 - s)),\\ 1\\big), $$

    computed as ``pruning_impl.Pruning._update_mask`` does: $n$ and $s$ in float32, the product in
    float32, rounded half to even (``tf.math.round``). So ``kept_count(9, 0.5) == 4`` (4.5 rounds
    to 4), and at least one weight is always kept. Equal to TFMOT's count for every $n$ and $s$ (its
    float32 rounding included; $n$ itself is exact in float32 up to $2^{24}$).

    Args:
        n: number of weights, >= 1.
        sparsity: fraction to remove, in [0, 1).

    Returns:
        $k$, an int in ``[1, n]``.
    """
    n = V.as_positive_int(n, "n")
    s = np.float32(as_sparsity(sparsity))
    k = np.rint(np.float32(n) * (np.float32(1.0) - s))  # float32 product, half to even
    return int(min(max(int(k), 1), n))


def finite_magnitudes(layer: Module, name: str) -> np.ndarray:
    """$|W|$ of a layer as float64 (exact for float32 and float64 weights); NaN/Inf refused."""
    w = layer.weight.value
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError(f"layer {name!r} has a NaN or infinite weight; prune a finite model")
    return np.abs(w.astype(np.float64))


def _as_mask(m, key: str, shape: tuple) -> np.ndarray:
    a = V.asarray(m, f"masks[{key!r}]", kinds="biuf", what="a boolean array")
    if a.dtype != np.bool_:
        if not np.all((a == 0) | (a == 1)):
            raise QuantizationValueError(f"masks[{key!r}] must be boolean (True = kept) or hold only 0 and 1, "
                                         f"got other values of dtype {a.dtype}")
        a = a != 0
    if a.shape != shape:
        raise ShapeError(f"masks[{key!r}] must have the weight's shape {shape}, got {a.shape}")
    return np.array(a, dtype=bool, copy=True)


def check_masks(model: Module, masks) -> dict[str, np.ndarray]:
    """``masks`` as ``{layer name: bool array of the weight's shape}`` (copies), in model order.

    Raises:
        QuantizationTypeError: ``masks`` is not a dict, or a value is not numeric.
        QuantizationValueError: an unknown layer name, a non-prunable layer, an empty dict, values
            other than 0/1. ShapeError: a mask of another shape than its weight.
    """
    if not isinstance(masks, dict):
        raise QuantizationTypeError(f"masks must be a dict {{layer name: bool array}}, got {V.describe(masks)}")
    if not masks:
        raise QuantizationValueError("masks must hold at least one layer's mask, got an empty dict")
    if not all(isinstance(k, str) for k in masks):
        raise QuantizationTypeError(f"masks must be keyed by layer names (strings), got keys {list(masks)[:5]}")
    layers = select_layers(model, list(masks), name="masks")
    return {k: _as_mask(masks[k], k, layer.weight.shape) for k, layer in layers.items()}
