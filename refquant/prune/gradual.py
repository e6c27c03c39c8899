"""Gradual magnitude pruning during training (Zhu & Gupta 2017; TFMOT's ``prune_low_magnitude``).

:func:`prune_gradually` trains with :func:`refquant.nn.fit` (same mini-batches, shuffling, validation
and history) while a schedule raises the sparsity: at every training step $t$ (the $t$-th optimizer
step, counted from 1) for which ``schedule(t)`` says to prune, the masks are recomputed from the
current weights at ``sparsity(t)`` **before that step's forward pass** — the moment TFMOT's
``PruneLowMagnitude`` wrapper updates its mask — and the steps in between fine-tune the kept weights.
The test against TFMOT 0.8.1 checks the steps and the masks.

One difference from TFMOT, on purpose: pruned weights stay exactly 0 between mask updates (their
gradient is masked and they are re-zeroed after every step: :mod:`refquant.prune.train_masks`), as Zhu
& Gupta describe ("weights that were masked in the forward execution do not get updated"). TFMOT lets
the optimizer update them and masks them again at the next forward pass, so a pruned weight can
grow back at a later mask update; here a pruned weight (then $|w| = 0$) ranks last and stays pruned
unless the schedule lowers the sparsity.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError
from ..nn import Adam, History, Module, Optimizer, fit
from ._checks import as_sparsity, check_model, select_layers
from .masks import SCOPES, magnitude_masks
from .train_masks import apply_masks

__all__ = ["prune_gradually", "GradualHistory"]


@dataclasses.dataclass
class GradualHistory(History):
    """:class:`refquant.nn.History` plus what the schedule did.

    Attributes:
        mask_steps: the training steps (from 1) at which the masks were recomputed.
        target_sparsity: the schedule's sparsity at each of those steps.
        achieved_sparsity: the fraction of pruned weights over the pruned layers after each update.
        masks: the final ``{layer name: bool array}`` (True = kept).
    """

    mask_steps: list = dataclasses.field(default_factory=list)
    target_sparsity: list = dataclasses.field(default_factory=list)
    achieved_sparsity: list = dataclasses.field(default_factory=list)
    masks: dict = dataclasses.field(default_factory=dict)


def _ask(schedule, step: int) -> tuple[bool, float]:
    """``schedule(step)`` checked: a pair (should_prune, sparsity in [0, 1))."""
    out = schedule(step)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (bool, np.bool_))):
        raise QuantizationTypeError(f"schedule(step) must return (should_prune: bool, sparsity: float), "
                                    f"got {V.describe(out)} at step {step}")
    return bool(out[0]), as_sparsity(out[1], f"schedule's sparsity at step {step}")


def prune_gradually(model: Module, x, y, schedule, *, epochs: int, batch_size: int,
                    optimizer: Optimizer | None = None, scope: str = "layer", layers=None, seed: int = 0,
                    validation_data=None, progress: bool = False) -> GradualHistory:
    """Train ``model`` (in place) while pruning it by magnitude on ``schedule``; pruned weights end at 0.

    Args:
        model: a :class:`refquant.nn.Module`, trained and pruned in place.
        x, y: training data, as for :func:`refquant.nn.fit`.
        schedule: a callable ``step -> (should_prune, sparsity)``, e.g.
            :class:`~refquant.prune.schedules.PolynomialDecay`.
        epochs: passes over ``x``.
        batch_size: examples per step.
        optimizer: a refquant.nn Optimizer over ``model`` (default ``Adam(model, lr=1e-3)``, fit's own).
        scope: ``"layer"`` or ``"global"`` (see :func:`~refquant.prune.masks.magnitude_masks`).
        layers: names of the Linear/Conv2d layers to prune (None: all).
        seed: seeds fit's shuffling.
        validation_data: ``(x_val, y_val)`` evaluated after every epoch.
        progress: show fit's progress bar.

    Returns:
        A :class:`GradualHistory`; the model is left in evaluation mode with the masks removed and
        the pruned weights at 0.

    Raises:
        QuantizationTypeError: ``model``, ``schedule`` or ``optimizer`` of the wrong type, or a
            schedule that does not return ``(bool, float)``; and what :func:`refquant.nn.fit` raises.
        QuantizationValueError: a bad ``scope``, ``layers``, or a schedule sparsity outside [0, 1).
    """
    check_model(model)
    if not callable(schedule):
        raise QuantizationTypeError(f"schedule must be a callable step -> (should_prune, sparsity), "
                                    f"e.g. prune.PolynomialDecay, got {V.describe(schedule)}")
    scope = V.as_choice(scope, "scope", SCOPES)
    names = list(select_layers(model, layers))
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise QuantizationTypeError(f"optimizer must be a refquant.nn Optimizer or None, got {V.describe(optimizer)}")
    optimizer = Adam(model, lr=1e-3) if optimizer is None else optimizer
    record = GradualHistory()
    kept_all = {name: np.ones(layer.weight.shape, bool) for name, layer in select_layers(model, names).items()}
    pruning = apply_masks(model, kept_all, optimizer=optimizer)
    steps = [0]

    def before_forward(module, inputs):  # TFMOT: pruning_step += 1, then the conditional mask update
        if not module.training:
            return  # validation and predict do not count
        steps[0] += 1
        t = steps[0]
        should, s = _ask(schedule, t)
        if should:
            masks = magnitude_masks(model, s, scope=scope, layers=names)
            pruning.update(masks)
            pruned = sum(int((~m).sum()) for m in masks.values())
            record.mask_steps.append(t)
            record.target_sparsity.append(s)
            record.achieved_sparsity.append(pruned / sum(m.size for m in masks.values()))

    hook = model.register_forward_pre_hook(before_forward)
    try:
        hist = fit(model, x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                   validation_data=validation_data, progress=progress)
    finally:
        hook.remove()
        record.masks = pruning.masks
        pruning.remove()
    for f in dataclasses.fields(History):
        setattr(record, f.name, getattr(hist, f.name))
    return record
