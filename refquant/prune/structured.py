"""Structured pruning with real removal ("thinning"): fewer filters, a genuinely smaller model.

:func:`prune_channels` removes the output filters of a Conv2d (or output units of a Linear) with the
smallest norms (Li et al., "Pruning Filters for Efficient ConvNets", 2017, $\\ell_1$; ``torch.nn.utils.prune.
ln_structured``), and shrinks everything that carries those channels to the next layer: the
BatchNorm between (its $\\gamma, \\beta$ and running statistics), a depthwise convolution between (its
filters), and the next Conv2d's or Linear's input channels. The model returned has fewer parameters and
runs faster; no mask remains.

**What removal computes.** Removing channel $c$ of producer $P$ removes the consumer's terms
$\\sum_{c} W^{\\mathrm{next}}_{o,c,\\ldots}\\, a_c$ that read it, whatever $a_c$ was. So, exactly (up to
float32 summation order), the thinned model equals the unthinned one with **the consumer's input
weights for channel $c$ set to 0** — with BatchNorms present or not. It equals the model with the
*producer's filter* $c$ set to 0 only when that makes $a_c = 0$: the producer has no bias, nothing on the
way adds a constant (a BatchNorm's shift $\\beta - \\gamma\\mu/\\sqrt{\\sigma^2+\\epsilon}$ does), and the
activations map 0 to 0 (ReLU, ReLU6 do; Sigmoid does not). For a Conv–BN–ReLU network that is the
model after :func:`refquant.passes.fold_batch_norm` with filter $c$ **and its bias** zeroed; the tests
check both statements.

**Which channels.** For producer weight $W$ ``(O, ...)``, the norm of each output channel's slice,
$\\lVert W_{o} \\rVert_1$ or $\\lVert W_{o} \\rVert_2$, computed on the input model's weights (so the choice
for one layer does not depend on the order layers are thinned in). ``amount`` $a$ removes
$O - k$ channels with TFMOT's count $k = \\max(\\operatorname{round}(O(1-a)), 1)$; ties keep the lower
index. Kept channels keep their order.

**What cannot be thinned** (see :mod:`refquant.prune._channel_graph`): a layer whose channels reach a
residual ``Add`` (the last convolution of a ResNet body, a projection shortcut, the layer feeding an
identity shortcut), the model's output layer, depthwise and grouped convolutions as producers (their
outputs are tied to their inputs: they shrink when the layer before them is thinned), and a Flatten of
unknown spatial size. With ``layers=None`` such layers are skipped (:func:`thinnable_layers` lists the
others); naming one in ``layers`` raises :class:`~refquant.errors.UnsupportedError` with the reason.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..nn import BatchNorm1d, BatchNorm2d, Conv2d, Linear, Module, Parameter
from ..passes._graph import working_copy
from ._channel_graph import build_graph, is_producer, trace_channels
from ._checks import as_sparsity, check_model, finite_magnitudes, kept_count, select_layers

__all__ = ["thinnable_layers", "select_channels", "remove_channels", "prune_channels"]

NORMS = ("l1", "l2")


def _producer(g, name: str) -> int:
    if name not in g.names:
        raise UnsupportedError(f"layer {name!r} is inside a module that is not a Sequential or Residual; "
                               f"prune_channels cannot see where its channels go")
    i = g.names.index(name)
    m = g.modules[i]
    if not is_producer(m):
        raise UnsupportedError(f"cannot remove output channels of Conv2d {name!r} (groups={m.groups}): a depthwise "
                               f"or grouped convolution's outputs are tied to its inputs; thin the layer before it")
    return i


def thinnable_layers(model: Module) -> list[str]:
    """Names of the Conv2d (``groups=1``) and Linear layers whose output channels :func:`prune_channels` can remove."""
    check_model(model)
    g = build_graph(model)
    out = []
    for i, m in enumerate(g.modules):
        if is_producer(m):
            try:
                trace_channels(g, i, np.arange(m.weight.shape[0]))
            except UnsupportedError:
                continue
            out.append(g.names[i])
    return out


def select_channels(model: Module, amount, *, norm: str = "l1", layers=None) -> dict[str, np.ndarray]:
    """The output channels each layer keeps: the largest $\\ell_1$/$\\ell_2$ filter norms.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        amount: fraction of each layer's output channels to remove, in [0, 1).
        norm: ``"l1"`` or ``"l2"``.
        layers: names of the layers to thin (None: every layer :func:`thinnable_layers` lists).

    Returns:
        ``{layer name: sorted int64 array of kept output channels}``.

    Raises:
        QuantizationValueError: ``amount`` outside [0, 1), an unknown ``norm`` or layer name.
        UnsupportedError: a named layer that cannot be thinned (the message says why), or none at all.
    """
    check_model(model)
    amount = as_sparsity(amount, "amount")
    norm = V.as_choice(norm, "norm", NORMS)
    if layers is None:
        names = thinnable_layers(model)
        if not names:
            raise UnsupportedError(f"model has no layer whose output channels can be removed "
                                   f"({type(model).__name__}); see refquant.prune.structured")
    else:
        names = list(select_layers(model, layers))
        g = build_graph(model)
        for name in names:
            i = _producer(g, name)
            trace_channels(g, i, np.arange(g.modules[i].weight.shape[0]))  # raises with the reason
    found = dict(model.named_modules())
    out = {}
    for name in names:
        mag = finite_magnitudes(found[name], name)
        rows = mag.reshape(mag.shape[0], -1)  # (O, C·kH·kW) or (O, in) float64
        score = rows.sum(axis=1) if norm == "l1" else np.sqrt((rows * rows).sum(axis=1))
        k = kept_count(score.size, amount)
        out[name] = np.sort(np.argsort(-score, kind="stable")[:k]).astype(np.int64)
    return out


def _as_keep(v, name: str, channels: int) -> np.ndarray:
    a = V.asarray(v, f"keep[{name!r}]", kinds="iu", what="a 1-D integer array of channel indices")
    if a.ndim != 1 or a.size == 0:
        raise ShapeError(f"keep[{name!r}] must be a non-empty 1-D array of channel indices, got shape {a.shape}")
    bad = V.first_outside(a, 0, channels - 1)
    if bad is not None:
        raise QuantizationValueError(f"keep[{name!r}] must hold channels in [0, {channels - 1}], got {bad}")
    a = np.sort(a.astype(np.int64))
    if np.any(a[1:] == a[:-1]):
        raise QuantizationValueError(f"keep[{name!r}] must not repeat a channel, got {a.tolist()}")
    return a


def _edit(layer: Module, name: str, rows=None, cols=None) -> None:
    """Keep output channels ``rows`` (axis 0) and input channels ``cols`` of a layer (in place)."""
    if getattr(layer, "weight_transform", None) is not None:
        raise UnsupportedError(f"layer {name!r} has a weight_transform (a pruning mask or fake quantizer); "
                               f"remove it before thinning")
    w, b = layer.weight, getattr(layer, "bias", None)
    value = w.value if rows is None else w.value[rows]
    if cols is not None:
        value = value[:, cols]
    layer.weight = Parameter(value, requires_grad=w.requires_grad)
    if rows is not None and b is not None:
        layer.bias = Parameter(b.value[rows], requires_grad=b.requires_grad)
    layer._cache = None


def _shrink_batchnorm(bn: Module, kept: np.ndarray) -> None:
    for pname in ("weight", "bias"):
        p = getattr(bn, pname)
        if p is not None:
            setattr(bn, pname, Parameter(p.value[kept], requires_grad=p.requires_grad))
    bn.running_mean = bn.running_mean[kept].copy()
    bn.running_var = bn.running_var[kept].copy()
    bn.num_features = int(kept.size)
    bn._cache = None


def remove_channels(model: Module, keep) -> Module:
    """A copy of ``model`` keeping only the given output channels of the given layers (and what carries them).

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        keep: ``{layer name: output channel indices to keep}``, as :func:`select_channels` returns.

    Returns:
        A new, smaller model in evaluation mode.

    Raises:
        QuantizationTypeError: ``keep`` is not a dict of integer arrays.
        QuantizationValueError / ShapeError: an unknown layer, indices out of range, repeated or empty.
        UnsupportedError: a layer that cannot be thinned, or one with a ``weight_transform``.
    """
    check_model(model)
    if not isinstance(keep, dict) or not keep or not all(isinstance(k, str) for k in keep):
        raise QuantizationTypeError(f"keep must be a non-empty dict {{layer name: channel indices}}, "
                                    f"got {V.describe(keep)}")
    out = working_copy(model)
    layers = select_layers(out, list(keep), name="keep")
    g = build_graph(out)
    rows, cols, shrink = {}, {}, []
    for name, layer in layers.items():
        kept = _as_keep(keep[name], name, layer.weight.shape[0])
        trace = trace_channels(g, _producer(g, name), kept)
        rows[name] = kept
        cols.update({g.names[j]: k for j, k in trace.consumers})
        shrink += [(g.names[j], g.modules[j], k) for j, k in trace.shrink]
    found = dict(out.named_modules())
    for name in dict.fromkeys(list(rows) + list(cols)):
        _edit(found[name], name, rows.get(name), cols.get(name))
    for name, m, kept in shrink:
        if isinstance(m, (BatchNorm1d, BatchNorm2d)):
            _shrink_batchnorm(m, kept)
        else:  # depthwise Conv2d: input channel c owns filters c·M ... c·M + M - 1
            mult = m.out_channels // m.in_channels
            filters = (kept[:, None] * mult + np.arange(mult)).reshape(-1)
            _edit(m, name, rows=filters)
            m.in_channels, m.out_channels, m.groups = int(kept.size), int(filters.size), int(kept.size)
    for name, m in found.items():
        if isinstance(m, Conv2d):
            m.out_channels, m.in_channels = m.weight.shape[0], m.weight.shape[1] * m.groups
        elif isinstance(m, Linear):
            m.out_features, m.in_features = m.weight.shape
    return out


def prune_channels(model: Module, amount, *, norm: str = "l1", layers=None) -> Module:
    """Remove the ``amount`` fraction of output channels with the smallest norms from each thinnable layer.

    ``remove_channels(model, select_channels(model, amount, norm=norm, layers=layers))``.

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        amount: fraction of each layer's output channels to remove, in [0, 1).
        norm: ``"l1"`` or ``"l2"`` filter norm.
        layers: layers to thin (None: all of :func:`thinnable_layers`).

    Returns:
        A new model in evaluation mode, with fewer parameters.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError: as
            :func:`select_channels` and :func:`remove_channels`.

    Example:
        >>> from refquant import prune
        >>> from refquant.models import load_reference_model
        >>> cnn = load_reference_model("cnn")
        >>> small = prune.prune_channels(cnn, 0.3)
        >>> cnn.num_parameters(), small.num_parameters()
        (14458, 6973)
    """
    return remove_channels(model, select_channels(model, amount, norm=norm, layers=layers))
