"""`prepare_qat`: a float model made trainable with the integer model's rounding in its forward pass.

Where the fake quantizers go is read from the integer model the float model will become: the
model is traced as :func:`refquant.ptq.quantize_static` traces it (identities removed, batch norm
folded, the recipe's activations fused), and

* the model input and every step output that gets parameters of its own are followed by a
  :class:`~refquant.qat.fake_quant.FakeQuantize` (after the fused ReLU when the step has one);
* an average pool, a standalone clamp (PyTorch's ReLU6) and a global average pool whose kernel
  keeps its input's parameters are followed by a
  :class:`~refquant.qat.fake_quant.SharedFakeQuantize` with their input's parameters; a max pool
  and a flatten need none (their outputs stay on their input's grid);
* every Linear and Conv2d gets a :class:`~refquant.qat.weights.WeightFakeQuantize`, and every
  Conv2d/Linear + BatchNorm pair becomes one :class:`~refquant.qat.bn.LayerBatchNorm`.

The fake quantizers are real modules (a :class:`WithFakeQuantize` wrapping the layer whose output
they quantize), not forward hooks: a hook's replacement output passes its gradient straight
through, and eq. (2) of :mod:`refquant.qat.fake_quant` needs the clamp mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from .. import nn, passes
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..nn import Module
from ..profiles import Profile, get_profile, list_profiles
from ..ptq.flows import iter_batches
from ..ptq.lower import keeps_params
from ..ptq.recipes import Recipe, recipe_for
from ..ptq.trace import INPUT, trace
from .bn import LayerBatchNorm
from .fake_quant import FakeQuantize, SharedFakeQuantize
from .lsq import LearnedScaleFakeQuantize
from .weights import WeightFakeQuantize

__all__ = ["prepare_qat", "calibrate", "QATModel", "QATConfig", "WithFakeQuantize"]

_AFFINE = (nn.Linear, nn.Conv2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_SHARED = ("average_pool2d", "clamp", "global_average_pool")  # re-rounded to the input's grid


@dataclass(frozen=True)
class QATConfig:
    """What :func:`prepare_qat` was asked for (read again by :func:`refquant.qat.conversion.convert`)."""

    profile: Profile
    recipe: Recipe
    per_channel: bool
    weight_bits: int
    learn_scales: bool
    freeze_bn_after: int | None


class WithFakeQuantize(Module):
    """$y = \\mathrm{fq}(\\mathrm{module}(x))$; backward ``module.backward(fq.backward(G))``."""

    def __init__(self, module: Module, fq: Module):
        super().__init__()
        self.module = module
        self.fq = fq

    def forward(self, *inputs):
        return self.fq(self.module(*inputs))

    def backward(self, grad_out):
        return self.module.backward(self.fq.backward(grad_out))


class QATModel(Module):
    """The model :func:`prepare_qat` returns: input fake quantizer, then the prepared float model.

    It counts epochs for ``freeze_bn_after``: an epoch is counted at the first training step after
    a call of ``train()`` (:func:`refquant.nn.fit` calls it at the start of every epoch, and so
    does a hand-written loop), so the ``train(True)`` with which evaluation restores the mode
    between epochs does not count an epoch of its own.

    Attributes:
        model: The prepared float model.
        input_quantizer: The :class:`~refquant.qat.fake_quant.FakeQuantize` of the model input.
        config: The :class:`QATConfig`.
        epoch: Epochs started (0 before the first training step).
    """

    def __init__(self, model: Module, input_quantizer: FakeQuantize, config: QATConfig):
        super().__init__()
        self.input_quantizer = input_quantizer
        self.model = model
        self.config = config
        self.epoch = 0
        self._new_epoch = True

    def train(self, mode: bool = True) -> QATModel:
        if mode:
            self._new_epoch = True
        return super().train(mode)

    def get_config(self) -> dict:
        raise UnsupportedError("a QATModel is not saved with refquant.nn.save (its fake quantizers hold observers "
                               "and a profile); save refquant.qat.convert(model) (QuantizedModel.save) or "
                               "refquant.qat.float_model(model) instead")

    def extra_repr(self) -> str:
        c = self.config
        return (f"profile={c.profile.name!r}, per_channel={c.per_channel}, weight_bits={c.weight_bits}, "
                f"learn_scales={c.learn_scales}, freeze_bn_after={c.freeze_bn_after}, epoch={self.epoch}")

    def set_mode(self, mode: bool) -> QATModel:
        """``Module.train(mode)`` without counting an epoch."""
        return super().train(mode)

    def bn_frozen(self) -> bool:
        """Whether batch norm uses running statistics in training now (``epoch > freeze_bn_after``)."""
        after = self.config.freeze_bn_after
        return after is not None and self.epoch > after

    def fake_quantizers(self) -> dict:
        """``{tensor name: FakeQuantize}`` of every tensor with parameters of its own, input first."""
        return {m.tensor: m for m in self.modules() if isinstance(m, FakeQuantize)}

    def forward(self, x):
        if self.training:
            if self._new_epoch:
                self.epoch, self._new_epoch = self.epoch + 1, False
            frozen = self.bn_frozen()
            for m in self.modules():
                if isinstance(m, LayerBatchNorm):
                    m.frozen = frozen
        return self.model(self.input_quantizer(x))

    def backward(self, grad_out):
        return self.input_quantizer.backward(self.model.backward(grad_out))


# ---------------------------------------------------------------------------------- arguments
def _check_args(model, profile, per_channel, freeze_bn_after, learn_scales, weight_bits, isa) -> QATConfig:
    if not isinstance(model, Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {V.describe(model)}")
    if isinstance(model, QATModel):
        raise QuantizationValueError("model is already prepared for QAT (a QATModel); pass the float model")
    prof = get_profile(V.as_choice(profile, "profile", tuple(list_profiles())), isa=isa)
    per_channel = V.as_flag(per_channel, "per_channel", ints=False)
    learn_scales = V.as_flag(learn_scales, "learn_scales", ints=False)
    weight_bits = V.as_int_scalar(weight_bits, "weight_bits", lo=2, hi=8)
    if freeze_bn_after is not None:
        freeze_bn_after = V.as_int_scalar(freeze_bn_after, "freeze_bn_after", lo=0)
    return QATConfig(prof, recipe_for(prof), per_channel, weight_bits, learn_scales, freeze_bn_after)


# ---------------------------------------------------------------------------------- rewriting
def _set_layers(seq: nn.Sequential, layers: list) -> None:
    """Replace the children of ``seq`` (our own working copy) by ``layers``, renamed 0, 1, ..."""
    for name in list(seq._modules):
        del seq._modules[name]
        del seq.__dict__[name]
    for layer in layers:
        seq.append(layer)


def _pair_batch_norms(work: Module, cfg: QATConfig) -> None:
    """Every Sequential's adjacent (Linear or Conv2d, BatchNorm) → one LayerBatchNorm, in place.

    The children are renumbered as :func:`refquant.passes.fold_batch_norm` renumbers them, so the
    prepared model's paths are the traced folded model's.
    """
    for prefix, seq in [(n, m) for n, m in work.named_modules() if isinstance(m, nn.Sequential)]:
        layers, changed = [], False
        for i, layer in enumerate(seq):
            prev = layers[-1] if layers else None
            if isinstance(layer, _BATCH_NORMS) and isinstance(prev, _AFFINE):
                fq = WeightFakeQuantize(cfg.recipe, cfg.profile, per_channel=cfg.per_channel, bits=cfg.weight_bits,
                                        inner=prev.weight_transform)
                layers[-1], changed = LayerBatchNorm(prev, layer, fq), True
            elif isinstance(layer, _BATCH_NORMS) and isinstance(prev, LayerBatchNorm):
                raise UnsupportedError(f"layer {prefix + '.' if prefix else ''}{i}: a second BatchNorm in a row "
                                       f"after one layer has no QAT folding; merge them first")
            else:
                layers.append(layer)
        if changed:
            _set_layers(seq, layers)


def _keeps_params(op: str, profile: Profile) -> bool:
    """Whether the integer op's output keeps its input's parameters (:func:`refquant.ptq.lower.keeps_params`)."""
    return keeps_params(op, profile)


def _replace(root: Module, modules: dict, path: str, new: Module) -> Module:
    """Put ``new`` at ``path`` (its parent's attribute); returns the new root."""
    if path == "":
        return new
    parent, _, name = path.rpartition(".")
    setattr(modules[parent], name, new)
    return root


def _insert_quantizers(work: Module, ref: Module, cfg: QATConfig) -> tuple[Module, FakeQuantize]:
    """Weight fake quantizers on every layer and activation fake quantizers after every step."""
    steps = trace(ref, fuse=cfg.recipe.fuse)
    ref_path = {id(m): name for name, m in ref.named_modules()}
    modules = dict(work.named_modules())
    make = LearnedScaleFakeQuantize if cfg.learn_scales else FakeQuantize
    source = {INPUT: make(INPUT, profile=cfg.profile, recipe=cfg.recipe)}  # tensor → FakeQuantize of its (S, Z)
    wraps = []
    for s in steps:
        if s.op in ("linear", "conv2d"):
            layer = modules[ref_path[id(s.layer)]]
            if isinstance(layer, _AFFINE):  # a LayerBatchNorm has its folded quantizer already
                layer.weight_transform = WeightFakeQuantize(cfg.recipe, cfg.profile, per_channel=cfg.per_channel,
                                                            bits=cfg.weight_bits, inner=layer.weight_transform)
        if _keeps_params(s.op, cfg.profile):
            source[s.output] = source[s.inputs[0]]
            fq = SharedFakeQuantize(s.output, source[s.output]) if s.op in _SHARED else None
        else:
            fq = source[s.output] = make(s.output, profile=cfg.profile, recipe=cfg.recipe)
        if fq is not None:
            wraps.append((ref_path[id(s.hook)], fq))
    for path, fq in wraps:  # the hooks are leaves: wrapping one moves no other hook's path
        work = _replace(work, modules, path, WithFakeQuantize(modules[path], fq))
    return work, source[INPUT]


def prepare_qat(model, *, profile, per_channel: bool = True, freeze_bn_after=None, learn_scales: bool = False,
                weight_bits: int = 8, isa: str = "auto") -> QATModel:
    """A copy of ``model`` that trains through the integer model's rounding.

    Identity and Dropout layers are removed (:func:`refquant.passes.remove_identities`); see the
    module docstring for where the fake quantizers go. The result trains with
    :func:`refquant.nn.fit` and becomes a :class:`~refquant.qmodel.QuantizedModel` with
    :func:`refquant.qat.conversion.convert`. It is returned in training mode; its fake quantizers have seen
    no data until the first training step (or :func:`calibrate`).

    Args:
        model: A float :class:`refquant.nn.Module` (not modified).
        profile: Profile name: the runtime the model is for; its tool's recipe chooses the
            parameters, its ``fake_quantize`` spec rounds.
        per_channel: Per-output-channel weight scales (else per tensor).
        freeze_bn_after: ``None``, or an epoch count $E \\ge 0$: from epoch $E + 1$ on, batch norm
            uses and keeps its running statistics (eq. (2) of :mod:`refquant.qat.bn`).
        learn_scales: Learn every activation scale by LSQ (:mod:`refquant.qat.lsq`) after the
            first batch sets it, instead of following the moving-average range.
        weight_bits: 2 to 8. Below 8 the weights are symmetric in $[-(2^{b-1}-1), 2^{b-1}-1]$
            (:mod:`refquant.qat.weights`, eq. (1)); activations stay 8-bit.
        isa: The ISA the profile is resolved for (``"auto"``: this CPU), as in
            :func:`refquant.ptq.quantize_static`.

    Returns:
        A :class:`QATModel`.

    Raises:
        QuantizationTypeError: ``model`` is not a Module; ``per_channel`` or ``learn_scales`` is
            not a bool; ``weight_bits`` or ``freeze_bn_after`` is not an integer.
        QuantizationValueError: Unknown profile; ``weight_bits`` outside 2-8; a negative
            ``freeze_bn_after``; ``model`` already prepared.
        UnsupportedError: A layer with no integer node, naming it.
    """
    cfg = _check_args(model, profile, per_channel, freeze_bn_after, learn_scales, weight_bits, isa)
    ref = passes.prepare_for_quantization(model)  # what the integer model is made from
    work = passes.remove_identities(model)
    _pair_batch_norms(work, cfg)
    work, input_fq = _insert_quantizers(work, ref, cfg)
    return QATModel(work, input_fq, cfg).set_mode(True)


def calibrate(model: QATModel, data, *, batch_size: int = 256) -> QATModel:
    """Feed ``data`` through ``model`` with every fake quantizer observing and everything else
    in evaluation mode (weights and batch-norm statistics unchanged); in place.

    Sets the ranges before training (the first batch sets each moving average, as PyTorch's
    first training step does), or makes a model that converts without training: post-training
    quantization whose ranges were observed on the fake-quantized network.

    Args:
        model: A :class:`QATModel`.
        data: ``(N, ...)`` float32 array or an iterable of batches.
        batch_size: Batch size for an array.

    Returns:
        ``model`` (its mode restored).
    """
    if not isinstance(model, QATModel):
        raise QuantizationTypeError(f"model must be a QATModel from refquant.qat.prepare_qat, got {V.describe(model)}")
    was_training = model.training
    model.set_mode(False)
    quantizers = list(model.fake_quantizers().values())
    try:
        for q in quantizers:
            q.training = True
        for batch in iter_batches(data, V.as_positive_int(batch_size, "batch_size")):
            try:
                model(np.asarray(batch, np.float32))
            except ShapeError as err:
                raise ShapeError(f"data batches must have the shape the model takes (batch shape "
                                 f"{np.shape(batch)}): {err}") from None
    finally:
        model.set_mode(was_training)
    return model
