"""Removing layers that compute $y = x$ in evaluation mode: ``Identity`` and ``Dropout``.

Inverted dropout scales by $1/(1-p)$ while training, so in evaluation it is the identity
exactly (no rescaling left to fold anywhere). Removing both leaves fewer nodes for an integer
model to carry and lets the other passes see the layers on either side as neighbours
(a ``Conv2d``, ``Dropout``, ``BatchNorm2d`` chain folds only once the dropout is gone).
"""

from __future__ import annotations

from ..nn import Dropout, Identity, Module, Residual
from . import _graph as G

__all__ = ["remove_identities", "IDENTITY_LAYERS"]

#: The layers :func:`remove_identities` drops (both compute $y = x$ in evaluation mode).
IDENTITY_LAYERS = (Identity, Dropout)


def remove_identities(model: Module) -> Module:
    """A copy of ``model`` without ``Identity`` and ``Dropout`` layers.

    They are removed from every :class:`refquant.nn.Sequential` (children renamed ``"0"``,
    ``"1"``, ...); a :class:`refquant.nn.Residual` whose ``shortcut`` or ``activation`` is one
    of them gets ``None`` there (the identity shortcut, no activation), which computes the same.
    Anywhere else (the model itself, a Residual's body, a custom container) they stay.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.

    Returns:
        A new model in evaluation mode (a deep copy; :mod:`refquant.passes` says what it keeps),
        whose outputs are bit-identical to ``model``'s in evaluation mode.

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module.
    """
    G.check_model(model)
    out = G.working_copy(model)
    for _, seq in G.sequentials(out):
        layers = list(seq)
        kept = [m for m in layers if not isinstance(m, IDENTITY_LAYERS)]
        if len(kept) != len(layers):
            G.set_layers(seq, kept)
    for m in list(out.modules()):  # a list: the loop edits the tree
        if isinstance(m, Residual):
            for slot in ("shortcut", "activation"):
                if isinstance(getattr(m, slot), IDENTITY_LAYERS):
                    setattr(m, slot, None)
    return out
