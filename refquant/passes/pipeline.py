"""The standard preparation a post-training quantization flow runs on a float model first."""

from __future__ import annotations

from .. import _validate as V
from ..nn import Module
from . import _graph as G
from .batchnorm import fold_batch_norm
from .identities import remove_identities

__all__ = ["prepare_for_quantization"]


def prepare_for_quantization(model: Module, *, keep_names: bool = False) -> Module:
    """``fold_batch_norm(remove_identities(model))``: an evaluation-mode copy without Identity and
    Dropout layers, with every BatchNorm that follows a Conv2d or Linear folded into it.

    Identities go first so that a Dropout between a layer and its BatchNorm does not hide the
    pair. Cross-layer equalization is not part of it (opt in with
    :func:`refquant.passes.cross_layer_equalization` on the result); ReLU and ReLU6 stay as
    layers here and are fused into the clamp of the integer layer before them when the model
    is lowered to integer nodes.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        keep_names: Keep every remaining layer's name: folded BatchNorms become ``Identity``
            and Identity/Dropout layers stay (both compute the identity in evaluation mode).
            The quantization flows use it, so integer nodes are named after ``model``'s layers.

    Returns:
        A new model in evaluation mode; its outputs equal ``model``'s in evaluation mode up to
        the float32 rounding of the folded weights.

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module.
        ShapeError, UnsupportedError: as :func:`refquant.passes.fold_batch_norm`.
    """
    G.check_model(model)
    if V.as_flag(keep_names, "keep_names"):
        return fold_batch_norm(model, keep_names=True)
    return fold_batch_norm(remove_identities(model))
