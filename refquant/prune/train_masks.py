"""Keep pruned weights at exactly zero while a model trains: :func:`apply_masks` and its :class:`Pruning` handle.

Three things together make a pruned weight stay 0 through :func:`refquant.nn.fit` with any optimizer:

1. **the weight itself** is set to 0 when the mask is applied;
2. **its gradient** is 0: each pruned layer gets the weight transform
   $W \\mapsto W \\odot M$ with backward $G \\mapsto G \\odot M$
   (:func:`refquant.nn.mask_transform`), so a fresh optimizer's state for a pruned weight stays 0
   (SGD's momentum buffer, Adam's $m_t$ and $v_t$), and so does its L2 or decoupled weight decay
   ($\\lambda \\cdot 0$);
3. **an optimizer that already has state** (Adam moments from earlier training, a momentum buffer)
   would still move a pruned weight: $\\theta \\leftarrow \\theta - \\eta\\, \\hat m_t / (\\sqrt{\\hat v_t} + \\epsilon)$
   with $\\hat m_t \\neq 0$. Hand it to ``apply_masks(..., optimizer=opt)`` or
   :meth:`Pruning.attach`: its ``step`` is wrapped so that after every step the pruned weights are
   set to 0 again and the optimizer's per-weight state arrays (``m``, ``v``, ``buf``) are zeroed at
   the pruned positions.

(1)+(2) suffice for ``nn.fit(model, ...)`` with its default, fresh Adam; (3) is the guarantee for
any optimizer. :meth:`Pruning.remove` detaches all of it and leaves the zeros in the weights.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError
from ..nn import Module, Optimizer, compose, mask_transform
from ._checks import check_masks, check_model, select_layers

__all__ = ["Pruning", "apply_masks"]


class Pruning:
    """Masks attached to a model's layers: ``Pruning(model, masks)`` is :func:`apply_masks` without an optimizer.

    Attributes:
        model: the model whose layers are masked (in place).
        masks: ``{layer name: bool array}`` currently applied (True = kept); read-only copies.
    """

    def __init__(self, model: Module, masks: dict[str, np.ndarray]):
        check_model(model)
        masks = check_masks(model, masks)
        self.model = model
        self._layers = select_layers(model, list(masks), name="masks")
        self._masks: dict[str, np.ndarray] = {}
        self._previous = {name: layer.weight_transform for name, layer in self._layers.items()}
        self._transforms: dict[str, object] = {}
        self._optimizers: list = []  # (optimizer, instance step it had, our wrapper)
        self._attached = True
        self._set(masks)

    @property
    def masks(self) -> dict[str, np.ndarray]:
        return {name: m.copy() for name, m in self._masks.items()}

    def _set(self, masks: dict[str, np.ndarray]) -> None:
        for name, mask in masks.items():
            layer = self._layers[name]
            self._masks[name] = mask
            t = mask_transform(mask)
            prev = self._previous[name]
            self._transforms[name] = t if prev is None else compose(t, prev)
            layer.weight_transform = self._transforms[name]
        self.apply()

    def update(self, masks) -> Pruning:
        """Replace the masks of some or all of this handle's layers (gradual pruning), then :meth:`apply`.

        Raises:
            QuantizationValueError: a layer this handle does not mask (or as :func:`apply_masks`).
        """
        masks = check_masks(self.model, masks)
        extra = [k for k in masks if k not in self._layers]
        if extra:
            raise QuantizationValueError(f"masks: layer(s) {extra} are not masked by this Pruning; "
                                         f"it masks {list(self._layers)}")
        self._set(masks)
        return self

    def apply(self) -> None:
        """Set every pruned weight to 0 and zero the attached optimizers' state there."""
        for name, mask in self._masks.items():
            self._layers[name].weight.value[~mask] = 0
        for opt, _, _ in self._optimizers:
            self._zero_state(opt)

    def _zero_state(self, opt: Optimizer) -> None:
        masks = {id(self._layers[name].weight): mask for name, mask in self._masks.items()}
        for i, p in enumerate(opt.params):
            mask = masks.get(id(p))
            if mask is None:
                continue
            for value in opt.state.get(i, {}).values():
                if isinstance(value, np.ndarray) and value.shape == mask.shape:
                    value[~mask] = 0

    def attach(self, optimizer: Optimizer) -> Pruning:
        """Wrap ``optimizer.step``: after each step, pruned weights and their optimizer state go back to 0.

        Raises:
            QuantizationTypeError: ``optimizer`` is not a refquant.nn Optimizer.
        """
        if not isinstance(optimizer, Optimizer):
            raise QuantizationTypeError(f"optimizer must be a refquant.nn Optimizer, got {V.describe(optimizer)}")
        inner = optimizer.step  # the class's step, or an earlier wrapper

        def step():
            inner()
            if self._attached:
                self.apply()

        self._optimizers.append((optimizer, optimizer.__dict__.get("step"), step))
        optimizer.step = step
        self._zero_state(optimizer)
        return self

    def remove(self) -> None:
        """Detach: restore each layer's previous ``weight_transform`` and each optimizer's ``step``.

        The weights keep their zeros. An optimizer whose ``step`` was wrapped again after this
        handle attached keeps a wrapper that now does nothing but call through.
        """
        if not self._attached:
            return
        self._attached = False
        for name, layer in self._layers.items():
            if layer.weight_transform is self._transforms[name]:
                layer.weight_transform = self._previous[name]
        for opt, had, wrapper in reversed(self._optimizers):
            if opt.__dict__.get("step") is wrapper:
                if had is None:
                    del opt.step
                else:
                    opt.step = had
        self._optimizers.clear()

    def __enter__(self) -> Pruning:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        kept = sum(int(m.sum()) for m in self._masks.values())
        total = sum(m.size for m in self._masks.values())
        state = "attached" if self._attached else "removed"
        return f"Pruning({len(self._masks)} layers, {total - kept}/{total} weights pruned, {state})"


def apply_masks(model: Module, masks, *, optimizer: Optimizer | None = None) -> Pruning:
    """Zero the pruned weights of ``model`` (in place) and keep them zero through training.

    Args:
        model: a :class:`refquant.nn.Module`, modified in place.
        masks: ``{layer name: bool array of the weight's shape}`` (True = kept), as
            :func:`~refquant.prune.masks.magnitude_masks` returns; 0/1 arrays are accepted.
        optimizer: an optimizer to :meth:`~Pruning.attach` (needed only if it already has state).

    Returns:
        A :class:`Pruning` handle; ``remove()`` detaches it (also usable as a context manager).

    Raises:
        QuantizationTypeError: ``model`` not a refquant.nn Module, ``masks`` not a dict,
            ``optimizer`` not an Optimizer.
        QuantizationValueError: an unknown layer name (the message lists the Linear/Conv2d layers),
            mask values other than 0/1, an empty dict. ShapeError: a mask of another shape than its weight.

    Example:
        >>> from refquant import nn, prune
        >>> model = nn.Sequential(nn.Linear(4, 3, rng=0))
        >>> handle = prune.apply_masks(model, prune.magnitude_masks(model, 0.5))
        >>> int((model[0].weight.value == 0).sum())
        6
    """
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise QuantizationTypeError(f"optimizer must be a refquant.nn Optimizer or None, got {V.describe(optimizer)}")
    handle = Pruning(model, masks)  # checks model and masks
    if optimizer is not None:
        handle.attach(optimizer)
    return handle
