"""`convert`: a trained :class:`~refquant.qat.prepare.QATModel` → a :class:`~refquant.qmodel.QuantizedModel`.

1. Every :class:`~refquant.qat.fake_quant.FakeQuantize` reports the range whose parameters it
   used last (a fake quantizer that never saw data raises, naming its tensor).
2. The fake quantizers are unwrapped, every :class:`~refquant.qat.bn.LayerBatchNorm` becomes its
   layer with $W'$, $b'$ folded from the current running statistics, and the weight fake
   quantizers are removed: the float model :func:`refquant.ptq.quantize_static` would start from.
3. It is traced and lowered by :func:`refquant.ptq.lower.lower` with those ranges, the profile,
   the recipe and the granularity: activation parameters are the ones the fake quantizers used,
   and 8-bit weights are quantized from the same float weights by the same rule, so the integer
   weights are the codes the last forward multiplied by.

Weights of fewer than 8 bits (``weight_bits`` of :func:`refquant.qat.prepare.prepare_qat`) are stored as
their codes in int8 (the integer kernels take int8; a code in $[-7, 7]$ is an int8 code), with
their own scales and the bias re-quantized for them. The model's ``nbytes`` therefore counts one
byte per weight; packed int4 storage is what :func:`refquant.ptq.quantize_weights` makes.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError
from ..nn import Module, Parameter
from ..ptq.lower import lower
from ..ptq.recipes import quantize_bias
from ..ptq.trace import trace
from ..qmodel import QuantizedModel
from .bn import LayerBatchNorm
from .prepare import QATModel, WithFakeQuantize
from .weights import WeightFakeQuantize, symmetric_codes

__all__ = ["convert", "float_model"]


def _unwrap(m: Module) -> Module:
    """Step 2 on a copy, in place: the plain float layer for ``m`` and below."""
    if isinstance(m, WithFakeQuantize):
        return _unwrap(m.module)
    if isinstance(m, LayerBatchNorm):
        w, b = m.folded_parameters()
        layer = m.layer
        layer.weight_transform = None
        layer.weight.value, layer.weight.grad = w, np.zeros_like(w)
        layer.bias = Parameter(b)
        return layer
    if isinstance(getattr(m, "weight_transform", None), WeightFakeQuantize):
        t = m.weight_transform
        m.weight.value = np.array(t.prepare(m.weight.value)[0], copy=True)  # inner transform (a mask) applied
        m.weight_transform = None
    for name, child in list(m.named_children()):
        setattr(m, name, _unwrap(child))
    return m


def float_model(model: QATModel) -> Module:
    """The float model ``model`` stands for: fake quantizers removed, batch norm folded (step 2).

    Returns:
        A new :class:`refquant.nn.Module` in evaluation mode; ``model`` is not modified.
    """
    if not isinstance(model, QATModel):
        raise QuantizationTypeError(f"model must be a QATModel from refquant.qat.prepare_qat, got {V.describe(model)}")
    return _unwrap(copy.deepcopy(model.model)).eval()


def _narrow_weights(qm: QuantizedModel, steps, bits: int, per_channel: bool, recipe) -> QuantizedModel:
    """Replace each integer layer's 8-bit weights by ``bits``-bit codes and re-quantize its bias."""
    layers = {s.name: s.layer for s in steps if s.op in ("linear", "conv2d")}
    for node in qm.nodes:
        layer = layers.get(node.name)
        if layer is None or node.params.get("weight") is None or node.params["weight"].dtype != np.int8:
            continue
        q, scale = symmetric_codes(layer.weight.value, bits, per_channel)
        node.params.update(weight=q, weight_scale=scale, weight_zero_point=np.zeros(scale.shape, np.int8))
        if layer.bias is not None and "bias" in node.params:
            x_scale = qm.tensors[node.inputs[0]].scale
            dtype = node.params["bias"].dtype.name  # what the lowering chose for this layer's kernel
            node.params["bias"] = quantize_bias(recipe, layer.bias.value, x_scale, scale, dtype=dtype)
    return QuantizedModel(qm.nodes, qm.tensors, qm.inputs, qm.outputs, profile=qm.profile, isa=qm.isa,
                          metadata=qm.metadata)


def convert(model: QATModel) -> QuantizedModel:
    """The integer model of a trained (or calibrated) QAT model, for its profile (see the module docstring).

    Args:
        model: A :class:`~refquant.qat.prepare.QATModel` (not modified).

    Returns:
        A :class:`~refquant.qmodel.QuantizedModel` whose ``profile`` is the one ``model`` was
        prepared for.

    Raises:
        QuantizationTypeError: ``model`` is not a QATModel.
        CalibrationError: A fake quantizer has seen no data (before any training step or
            :func:`refquant.qat.prepare.calibrate`), naming its tensor.
    """
    if not isinstance(model, QATModel):
        raise QuantizationTypeError(f"model must be a QATModel from refquant.qat.prepare_qat, got {V.describe(model)}")
    cfg = model.config
    ranges = {name: fq.range() for name, fq in model.fake_quantizers().items()}
    plain = float_model(model)
    steps = trace(plain, fuse=cfg.recipe.fuse)
    meta = {"flow": "qat", "per_channel": cfg.per_channel, "recipe": cfg.recipe.name, "weight_bits": cfg.weight_bits,
            "learn_scales": cfg.learn_scales, "freeze_bn_after": cfg.freeze_bn_after, "epochs": model.epoch}
    qm = lower(steps, ranges, profile=cfg.profile, recipe=cfg.recipe, per_channel=cfg.per_channel, metadata=meta)
    if cfg.weight_bits != 8:
        qm = _narrow_weights(qm, steps, cfg.weight_bits, cfg.per_channel, cfg.recipe)
    return qm
