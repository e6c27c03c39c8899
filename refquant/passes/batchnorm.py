"""Batch-norm folding: a Conv2d or Linear followed by a BatchNorm becomes one layer with a bias.

In evaluation mode a BatchNorm is an affine map per channel $c$ with the running statistics:

$$ \\mathrm{BN}(y)_c = \\gamma_c \\frac{y_c - \\mu_c}{\\sqrt{\\sigma^2_c + \\epsilon}} + \\beta_c
   = a_c\\, y_c + (\\beta_c - a_c \\mu_c), \\qquad a_c = \\frac{\\gamma_c}{\\sqrt{\\sigma^2_c + \\epsilon}}. \\tag{1} $$

When $y_c = \\sum W_{c,\\ldots}\\, x_{\\ldots} + b_c$ is the output channel $c$ of the layer before,
the composition is the same layer with

$$ W'_{c,\\ldots} = a_c\\, W_{c,\\ldots}, \\qquad b'_c = a_c\\,(b_c - \\mu_c) + \\beta_c \\tag{2} $$

($b_c = 0$ for a layer without bias). Output channels are axis 0 of the weight for ``Linear``
``(out, in)`` and for every ``Conv2d`` ``(O, C/G, kH, kW)``, grouped and depthwise included (a
depthwise output channel is one filter, whatever the depth multiplier), so eq. (2) is the same
line for all of them. See [Learn: BN folding, fusion and equalization](../learn/bn-folding-and-fusion.md).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, ShapeError
from ..nn import BatchNorm1d, BatchNorm2d, Conv2d, Identity, Module, Parameter
from . import _graph as G
from .identities import IDENTITY_LAYERS

__all__ = ["fold_batch_norm", "fold_parameters"]

_PASS = "fold_batch_norm"


def fold_parameters(weight, bias, gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (2) in float64: the weight and bias of a layer with the BatchNorm after it folded in.

    Args:
        weight: ``(O, ...)`` float array, output channels on axis 0.
        bias: ``(O,)`` float array, or None for a layer without bias (taken as 0).
        gamma, beta: ``(O,)`` the BatchNorm's ``weight`` and ``bias``; None for ``affine=False``
            (taken as 1 and 0).
        mean, var: ``(O,)`` the running mean and variance.
        eps: $\\epsilon > 0$.

    Returns:
        ``(W', b')`` as float64 arrays of shapes ``weight.shape`` and ``(O,)``: every product
        and sum of eq. (2) done once in float64; the caller casts to the layer's dtype.

    Raises:
        QuantizationTypeError: A non-numeric argument. ShapeError: ``weight`` without an output
            axis, or a per-channel argument that is not ``(O,)``. QuantizationValueError: NaN or
            ±Inf anywhere, a negative ``var``, or ``eps`` not > 0.
    """
    w = V.asarray(weight, "weight", kinds="iuf", what="a real array")
    if w.ndim == 0:
        raise ShapeError(f"weight must have shape (O, ...) with output channels on axis 0, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError("weight must be finite, got NaN or Inf")
    w = w.astype(np.float64)
    o = w.shape[0]

    def per_channel(v, name, default=None, **kw):  # (O,) float64; None -> default, where one is documented
        if v is None and default is not None:
            return np.full(o, default, np.float64)
        return G.channel_values(v, name, o, of=f"(weight's {o} output channels)", **kw)

    b, g, bt = per_channel(bias, "bias", 0.0), per_channel(gamma, "gamma", 1.0), per_channel(beta, "beta", 0.0)
    mean, var = per_channel(mean, "mean"), per_channel(var, "var", nonnegative=True)
    eps = V.as_real_scalar(eps, "eps")
    if not eps > 0:
        raise QuantizationValueError(f"eps must be > 0, got {eps!r}")
    a = g / np.sqrt(var + eps)  # (O,) eq. (1)
    w_folded = w * a.reshape((o,) + (1,) * (w.ndim - 1))  # (O, ...) float64
    b_folded = a * (b - mean) + bt  # (O,) float64
    return w_folded, b_folded


def _fold_into(layer: Module, bn: Module) -> None:
    """Write eq. (2) into ``layer`` (in place), cast once to the layer's dtype."""
    gamma = None if bn.weight is None else bn.weight.value
    beta = None if bn.bias is None else bn.bias.value
    bias = None if layer.bias is None else layer.bias.value
    w, b = fold_parameters(layer.weight.value, bias, gamma, beta, bn.running_mean, bn.running_var, bn.eps)
    dtype = layer.weight.dtype
    layer.weight.value = w.astype(dtype)
    layer.weight.grad = np.zeros_like(layer.weight.value)
    if layer.bias is None:
        layer.bias = Parameter(b.astype(dtype))  # a new Parameter, registered after the weight
    else:
        layer.bias.value = b.astype(dtype)
        layer.bias.grad = np.zeros_like(layer.bias.value)


def _check_pair(layer: Module, layer_name: str, bn: Module, bn_name: str) -> None:
    kind = type(bn).__name__
    want = BatchNorm2d if isinstance(layer, Conv2d) else BatchNorm1d  # what can take (N, C, H, W) / (N, F)
    if not isinstance(bn, want):
        raise ShapeError(f"{_PASS}: {kind} {bn_name!r} follows {type(layer).__name__} {layer_name!r}, whose output "
                         f"only a {want.__name__} can normalize (the model cannot run)")
    channels = G.out_channels(layer)
    if bn.num_features != channels:
        raise ShapeError(f"{_PASS}: {kind} {bn_name!r} has num_features={bn.num_features} but the "
                         f"{type(layer).__name__} {layer_name!r} before it has {channels} output channels")
    G.check_no_weight_transform(layer, layer_name, _PASS)


def fold_batch_norm(model: Module, *, keep_names: bool = False) -> Module:
    """A copy of ``model`` with every BatchNorm that follows a Conv2d or Linear folded into it, eq. (2).

    A pair is two adjacent children of one :class:`refquant.nn.Sequential`, at any depth
    (inside :class:`refquant.nn.Residual` bodies and shortcuts too); nested Sequentials are
    not flattened. The folded BatchNorm is removed and the Sequential's children are renamed
    ``"0"``, ``"1"``, ... A layer without bias gets one. Two BatchNorms in a row after one layer
    both fold (each is affine). A BatchNorm after anything else (first in the model, after a
    ReLU or a pool) stays as it is.

    Uses the running statistics whatever mode ``model`` is in (folding is an evaluation-mode
    rewrite). Arithmetic in float64, then one cast to the layer's dtype (float32 for the
    bundled models), so the folded weights are the float64 eq. (2) correctly rounded; the
    model's outputs change by float32 rounding only (the BatchNorm itself computed in float32).

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        keep_names: Replace each folded BatchNorm by an ``Identity`` instead of removing it, so
            every other layer keeps its name (a quantization flow names the integer model's
            nodes after the input model's layers); Identity and Dropout layers between the
            layer and its BatchNorm are then looked through.

    Returns:
        A new model in evaluation mode (a deep copy; :mod:`refquant.passes` says what it keeps).

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module.
        ShapeError: a BatchNorm whose ``num_features`` is not the layer's output channels, or
            a BatchNorm2d after a Linear / a BatchNorm1d after a Conv2d.
        UnsupportedError: the layer to fold into has a ``weight_transform``.

    Example:
        >>> from refquant import passes
        >>> from refquant.models import load_reference_model
        >>> cnn = load_reference_model("cnn")            # 3 x (Conv2d, BatchNorm2d, ReLU), ...
        >>> folded = passes.fold_batch_norm(cnn)
        >>> len(cnn), len(folded)
        (12, 9)
    """
    G.check_model(model)
    keep_names = V.as_flag(keep_names, "keep_names")
    out = G.working_copy(model)
    for prefix, seq in G.sequentials(out):
        kept: list[tuple[str, Module]] = []  # (name in the input model, layer)
        placeholders = []  # keep_names: (index, Identity) replacing a folded BatchNorm
        for i, layer in enumerate(seq):
            name = G.child_name(prefix, i)
            prev_name, prev = kept[-1] if kept else ("", None)
            if isinstance(layer, (BatchNorm1d, BatchNorm2d)) and isinstance(prev, G.AFFINE):
                _check_pair(prev, prev_name, layer, name)
                _fold_into(prev, layer)
                placeholders.append(i)
                continue
            if keep_names and isinstance(layer, IDENTITY_LAYERS):
                continue  # looked through
            kept.append((name, layer))
        if keep_names and placeholders:
            layers = list(seq)
            for i in placeholders:
                layers[i] = Identity()
            G.set_layers(seq, layers)
        elif not keep_names and len(kept) != len(seq):
            G.set_layers(seq, [layer for _, layer in kept])
    return out
