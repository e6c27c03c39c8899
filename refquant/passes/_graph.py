"""What every pass shares (internal): the argument check, the working copy, and the walk over
the ``Sequential`` containers where passes find their patterns.

A pass never edits its input. It deep-copies the model, rewrites the copy in place, and returns
it in evaluation mode. Layers are named in messages by their dotted names in the *input* model
(``"3.body.1"``, as :meth:`refquant.nn.Module.named_modules` gives them).
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from .. import _validate as V
from .._validate import describe
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..nn import Conv2d, Linear, Module, Sequential

__all__ = ["AFFINE", "check_model", "channel_values", "working_copy", "sequentials", "child_name", "set_layers",
           "check_no_weight_transform", "out_channels", "in_channels", "check_channels"]

#: The layers a pass rewrites: one weight with output channels on axis 0, and a bias.
AFFINE = (Conv2d, Linear)


def check_model(model, name: str = "model") -> Module:
    """``model`` itself if it is a :class:`refquant.nn.Module`, else a named type error."""
    if not isinstance(model, Module):
        raise QuantizationTypeError(f"{name} must be a refquant.nn Module (a float model), got {describe(model)}")
    return model


def channel_values(v, name: str, length: int | None = None, *, of: str = "", nonnegative: bool = False) -> np.ndarray:
    """``v`` as a finite float64 ``(C,)`` array: one value per channel (a range, a BatchNorm
    statistic), of ``length`` channels if given (``of`` says whose), >= 0 with ``nonnegative``."""
    a = V.asarray(v, name, kinds="iuf", what="a 1-D real array")
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        want = "(C,)" if length is None else f"({length},){' ' + of if of else ''}"
        raise ShapeError(f"{name} must have shape {want}, got {a.shape}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a) | (a < 0) if nonnegative else ~np.isfinite(a)
    if bad.any():
        raise QuantizationValueError(f"{name} must be finite{' and >= 0' if nonnegative else ''}, "
                                     f"got {a[bad][0].item()!r} at index {int(np.argmax(bad))}")
    return a


def working_copy(model: Module) -> Module:
    """A deep copy of ``model`` in evaluation mode, without forward caches or hooks.

    ``copy.deepcopy`` rather than :func:`refquant.nn.architecture` + :func:`refquant.nn.build` +
    the state dict: it works for any Module subclass (one without ``get_config`` too) and keeps
    every dtype, buffer, ``requires_grad`` flag and ``weight_transform`` as they are. Two things
    are left out on purpose, through deepcopy's memo (an object already in the memo is replaced
    by the memo's value instead of being copied):

    * each layer's ``_cache`` (what its last forward kept for backward: inputs, im2col
      matrices; possibly much larger than the weights) becomes None;
    * hooks: they observed the layers of the input model, whose outputs a pass changes (a conv
      after BN folding outputs what the BatchNorm did). A flow re-attaches its hooks to the copy.
    """
    memo: dict = {}
    state = {id(p.value) for p in model.parameters()} | {id(b) for _, b in model.named_buffers()}
    for m in model.modules():
        cache = m.__dict__.get("_cache")
        # an array or a non-empty tuple that is not also a weight; never a shared immutable (None, 3, "()")
        if (isinstance(cache, np.ndarray) or (isinstance(cache, tuple) and len(cache) > 0)) and id(cache) not in state:
            memo[id(cache)] = None
        memo[id(m._forward_hooks)] = OrderedDict()
        memo[id(m._forward_pre_hooks)] = OrderedDict()
    return copy.deepcopy(model, memo).eval()


def sequentials(model: Module) -> list[tuple[str, Sequential]]:
    """Every :class:`refquant.nn.Sequential` in ``model`` (itself included) with its dotted name,
    outermost first. A list, so that a pass may rewrite the containers while it walks them."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Sequential)]


def child_name(prefix: str, i: int) -> str:
    """The dotted name of child ``i`` of the Sequential named ``prefix`` (``""`` is the root)."""
    return f"{prefix}.{i}" if prefix else str(i)


def set_layers(seq: Sequential, layers: list[Module]) -> None:
    """Replace the children of ``seq`` by ``layers``, renamed ``"0"``, ``"1"``, ... (in place).

    Only for the pass's own working copy. Reaches into ``Module``'s child registry, because
    ``Sequential`` has no public way to remove a child.
    """
    for name in list(seq._modules):
        del seq._modules[name]
        del seq.__dict__[name]
    for layer in layers:
        seq.append(layer)


def check_no_weight_transform(layer: Module, name: str, pass_name: str) -> None:
    """A pass rewrites ``layer.weight``: refuse when a ``weight_transform`` would see new values
    (a fake quantizer's grid, for one, does not commute with a per-channel scaling)."""
    if getattr(layer, "weight_transform", None) is not None:
        raise UnsupportedError(
            f"{pass_name}: {type(layer).__name__} {name!r} has a weight_transform, and this pass rewrites its "
            f"weight; run the pass on the float model and attach the transform afterwards")


def out_channels(layer: Module) -> int:
    return layer.out_channels if isinstance(layer, Conv2d) else layer.out_features


def in_channels(layer: Module) -> int:
    return layer.in_channels if isinstance(layer, Conv2d) else layer.in_features


def check_channels(first: Module, first_name: str, second: Module, second_name: str, pass_name: str) -> None:
    """``first``'s output channels must be ``second``'s input channels (else the model cannot run)."""
    if out_channels(first) != in_channels(second):
        raise ShapeError(
            f"{pass_name}: {type(first).__name__} {first_name!r} has {out_channels(first)} output channels but "
            f"{type(second).__name__} {second_name!r} after it expects {in_channels(second)} input channels")
