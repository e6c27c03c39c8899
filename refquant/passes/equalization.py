"""Cross-layer equalization (CLE): rescale the channels between two layers so that each channel
has the same weight range in both (Nagel et al., 2019, *Data-Free Quantization Through Weight
Equalization and Bias Correction*, §4.1).

For two layers in a row with an activation $f$ between them that is positively homogeneous,
$f(x/s) = f(x)/s$ for $s > 0$ (ReLU, or none), and $S = \\mathrm{diag}(s)$ with $s_i > 0$:

$$ W_2\\, f(W_1 x + b_1) + b_2 = (W_2 S)\\, f\\big(S^{-1} W_1 x + S^{-1} b_1\\big) + b_2. \\tag{1} $$

So dividing output channel $i$ of layer 1 (its filter and bias) by $s_i$ and multiplying input
channel $i$ of layer 2 by $s_i$ changes nothing in exact arithmetic. With the per-channel ranges

$$ r^{(1)}_i = \\max |W_1[i, \\ldots]|, \\qquad r^{(2)}_i = \\max |W_2[:, i, \\ldots]| \\tag{2} $$

(for a grouped layer 2, the filters that read input channel $i$), the choice

$$ s_i = \\frac{\\sqrt{r^{(1)}_i r^{(2)}_i}}{r^{(2)}_i} \\tag{3} $$

makes both ranges $\\sqrt{r^{(1)}_i r^{(2)}_i}$, which maximizes $\\sum_i p^{(1)}_i p^{(2)}_i$ with
$p_i = r_i / \\max_j r_j$ the share of its tensor's range a channel uses (the paper's §4.1). It
helps most where one tensor's channels differ wildly, as in the depthwise convolutions of
MobileNetV2 after BatchNorm folding, under *per-tensor* weight quantization; per-channel
quantization already gives each channel its own scale. A channel whose range is 0 in either
layer keeps $s_i = 1$.

**Chains.** In conv → depthwise → conv (a MobileNetV2 block) the middle layer is layer 2 of one
pair and layer 1 of the next; a depthwise output channel is its input channel, so it is scaled
per channel in both directions. Equalizing one pair moves the other's ranges, so the pairs are
swept in order until every $s_i$ of a sweep is within ``tol`` of 1; at that point every pair is
equalized.

**ReLU6 is not homogeneous:** $\\min(\\max(x/s, 0), 6) \\neq \\min(\\max(x, 0), 6)/s$ once
$x > 6\\min(1, s)$. With ``relu6="replace"`` (the default) a ReLU6 between two equalized layers
becomes a ReLU, as the paper does for MobileNetV2 and AIMET's CLE does before scaling: outputs
change only where a pre-activation exceeded 6, and the clip comes back as the activation's
quantization range chosen by calibration. ``relu6="skip"`` leaves such pairs alone (exact, but
it leaves a MobileNet almost untouched, every pair of it being joined by a ReLU6).

See [Learn: BN folding, fusion and equalization](../learn/bn-folding-and-fusion.md).
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validate import as_choice, as_positive_int, as_real_scalar, describe
from ..errors import QuantizationTypeError, QuantizationValueError, RefquantWarning
from ..nn import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Identity, Module, ReLU, ReLU6
from . import _graph as G

__all__ = ["cross_layer_equalization", "equalization_scales", "output_channel_ranges", "input_channel_ranges"]

_PASS = "cross_layer_equalization"
_HOMOGENEOUS = (ReLU, Identity, Dropout)  # f(x/s) = f(x)/s for s > 0 (Dropout: in evaluation mode)


def _groups(layer: Module) -> int:
    return layer.groups if isinstance(layer, Conv2d) else 1


def _out_ranges(w: np.ndarray) -> np.ndarray:
    """Eq. (2), layer 1: ``(O,)`` max |w| over each output channel's filter."""
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def _in_ranges(w: np.ndarray, groups: int) -> np.ndarray:
    """Eq. (2), layer 2: ``(C,)`` max |w| over the filters reading each input channel.

    The weight ``(O, C/G, ...)`` viewed as ``(G, O/G, C/G, k)``: input channel
    $c = g\\,C_G + j$ is read by the ``O/G`` filters of group $g$ at position $j$.
    """
    o, cg = w.shape[0], w.shape[1]
    return np.abs(w).reshape(groups, o // groups, cg, -1).max(axis=(1, 3)).reshape(-1)


def _scale_inputs(w: np.ndarray, s: np.ndarray, groups: int) -> np.ndarray:
    """``W_2 S``: input channel $c$ of every filter multiplied by $s_c$."""
    o, cg = w.shape[0], w.shape[1]
    return (w.reshape(groups, o // groups, cg, -1) * s.reshape(groups, 1, cg, 1)).reshape(w.shape)


def _check_affine(layer, name: str) -> Module:
    if not isinstance(layer, G.AFFINE):
        raise QuantizationTypeError(f"{name} must be a refquant.nn Conv2d or Linear, got {describe(layer)}")
    return layer


def output_channel_ranges(layer: Module) -> np.ndarray:
    """$r^{(1)}$ of eq. (2): ``(out_channels,)`` float64, the largest $|w|$ of each output channel."""
    return _out_ranges(_check_affine(layer, "layer").weight.value.astype(np.float64))


def input_channel_ranges(layer: Module) -> np.ndarray:
    """$r^{(2)}$ of eq. (2): ``(in_channels,)`` float64, the largest $|w|$ over the filters reading
    each input channel (one filter's worth for a depthwise layer, all of them for ``groups=1``)."""
    layer = _check_affine(layer, "layer")
    return _in_ranges(layer.weight.value.astype(np.float64), _groups(layer))


def equalization_scales(range1, range2) -> np.ndarray:
    """Eq. (3): $s_i = \\sqrt{r^{(1)}_i r^{(2)}_i} / r^{(2)}_i$, and 1 where either range is 0.

    Args:
        range1: ``(C,)`` output-channel ranges of layer 1, >= 0.
        range2: ``(C,)`` input-channel ranges of layer 2, >= 0.

    Returns:
        ``(C,)`` float64 scales > 0; layer 1's channel $i$ is divided by $s_i$, layer 2's
        multiplied by it.

    Raises:
        QuantizationTypeError: A non-numeric range. ShapeError: A range that is not 1-D, or
            two of different lengths. QuantizationValueError: NaN, ±Inf or a negative value.
    """
    r1 = G.channel_values(range1, "range1", nonnegative=True)
    r2 = G.channel_values(range2, "range2", len(r1), of="(range1's channels)", nonnegative=True)
    both = (r1 > 0) & (r2 > 0)
    s = np.ones_like(r1)
    s[both] = np.sqrt(r1[both] * r2[both]) / r2[both]
    return s


def _find_pairs(layers: list[Module], prefix: str, relu6: str) -> list[tuple[int, int, list[int]]]:
    """``(i, j, relu6_positions)``: layers i and j are Conv2d/Linear joined only by homogeneous
    activations (and ReLU6s, with ``relu6="replace"``)."""
    pairs = []
    for i, first in enumerate(layers):
        if not isinstance(first, G.AFFINE):
            continue
        between: list[int] = []
        for j in range(i + 1, len(layers)):
            m = layers[j]
            if isinstance(m, G.AFFINE):
                norms = [k for k in between if isinstance(layers[k], (BatchNorm1d, BatchNorm2d))]
                if norms:
                    k = norms[0]
                    raise QuantizationValueError(
                        f"{_PASS}: {type(layers[k]).__name__} {G.child_name(prefix, k)!r} sits between "
                        f"{type(first).__name__} {G.child_name(prefix, i)!r} and {type(m).__name__} "
                        f"{G.child_name(prefix, j)!r}; fold it first (refquant.passes.fold_batch_norm, "
                        f"or prepare_for_quantization)")
                r6 = [k for k in between if isinstance(layers[k], ReLU6)]
                if not (r6 and relu6 == "skip"):
                    pairs.append((i, j, r6))
                break
            if not isinstance(m, (*_HOMOGENEOUS, ReLU6, BatchNorm1d, BatchNorm2d)):
                break  # a pool, a reshape, a saturating activation: the pair ends here
            between.append(j)
    return pairs


def _equalize(layers: list[Module], pairs, iterations: int, tol: float) -> tuple[int, float]:
    """Sweep eq. (3) over ``pairs`` in float64 until every scale is within ``tol`` of 1; write the
    weights back (one cast to each layer's dtype). Returns (sweeps, last largest |s - 1|)."""
    work = {}  # layer index -> [weight, bias or None], float64
    for i, j, _ in pairs:
        for k in (i, j):
            b = layers[k].bias
            work[k] = [layers[k].weight.value.astype(np.float64), None if b is None else b.value.astype(np.float64)]
    change = 0.0
    for sweep in range(1, iterations + 1):
        change = 0.0
        for i, j, _ in pairs:
            (w1, b1), w2, groups = work[i], work[j][0], _groups(layers[j])
            s = equalization_scales(_out_ranges(w1), _in_ranges(w2, groups))  # (C,) eq. (3)
            work[i] = [w1 / s.reshape((-1,) + (1,) * (w1.ndim - 1)), None if b1 is None else b1 / s]
            work[j][0] = _scale_inputs(w2, s, groups)
            change = max(change, float(np.max(np.abs(s - 1.0), initial=0.0)))
        if change <= tol:
            break
    for k, (w, b) in work.items():
        p = layers[k]
        p.weight.value = w.astype(p.weight.dtype)
        p.weight.grad = np.zeros_like(p.weight.value)
        if b is not None:
            p.bias.value = b.astype(p.bias.dtype)
            p.bias.grad = np.zeros_like(p.bias.value)
    return sweep, change


def cross_layer_equalization(model: Module, *, iterations: int = 100, tol: float = 1e-6,
                             relu6: str = "replace") -> Module:
    """A copy of ``model`` with every pair of consecutive Conv2d/Linear layers equalized, eq. (1)-(3).

    A pair is two Conv2d/Linear children of one :class:`refquant.nn.Sequential` (at any depth)
    with only ReLU, ReLU6, Identity or Dropout between them; anything else between (a pool, a
    Flatten, Sigmoid) ends the pattern. Apply it after BatchNorm folding
    (:func:`refquant.passes.prepare_for_quantization`).

    Arithmetic in float64 over all sweeps, one cast to each layer's dtype at the end: the
    float32 outputs change by rounding only (ReLU pairs), and after the cast the two ranges
    of each channel agree to float32 rounding (with ``tol``, for chains).

    Args:
        model: a :class:`refquant.nn.Module`; not modified.
        iterations: the most sweeps over the pairs of one Sequential (>= 1); 1 is one pass in
            order, which equalizes isolated pairs exactly.
        tol: stop when every scale of a sweep satisfies $|s_i - 1| \\le$ ``tol`` (> 0).
        relu6: ``"replace"`` (a ReLU6 inside a pair becomes ReLU, as the paper and AIMET do;
            outputs change where a pre-activation exceeds 6) or ``"skip"`` (pairs joined by a
            ReLU6 are left alone; exact).

    Returns:
        A new model in evaluation mode (a deep copy; :mod:`refquant.passes` says what it keeps).

    Raises:
        QuantizationTypeError: ``model`` is not a refquant.nn Module.
        QuantizationValueError: a BatchNorm sits between the two layers of a pair (fold it
            first), or a bad ``iterations``, ``tol`` or ``relu6``.
        ShapeError: the layers of a pair disagree on the channel count.
        UnsupportedError: a layer of a pair has a ``weight_transform``.

    Warns:
        RefquantWarning: a chain did not converge within ``iterations`` sweeps (the model is
            still exact up to rounding, only less equalized).
    """
    G.check_model(model)
    iterations = as_positive_int(iterations, "iterations")
    tol = as_real_scalar(tol, "tol")
    if not tol > 0:
        raise QuantizationValueError(f"tol must be > 0, got {tol}")
    relu6 = as_choice(relu6, "relu6", ("replace", "skip"))
    out = G.working_copy(model)
    for prefix, seq in G.sequentials(out):
        layers = list(seq)
        pairs = _find_pairs(layers, prefix, relu6)
        if not pairs:
            continue
        for i, j, _ in pairs:
            for k in (i, j):
                G.check_no_weight_transform(layers[k], G.child_name(prefix, k), _PASS)
            G.check_channels(layers[i], G.child_name(prefix, i), layers[j], G.child_name(prefix, j), _PASS)
        sweeps, change = _equalize(layers, pairs, iterations, tol)
        if change > tol:
            warnings.warn(f"{_PASS}: the pairs of Sequential {prefix or '(the model)'!r} did not converge in "
                          f"{sweeps} sweeps: largest |s - 1| = {change:.3g} > tol = {tol:.3g}",
                          RefquantWarning, stacklevel=2)
        replaced = {k for _, _, r6 in pairs for k in r6}
        if replaced:
            G.set_layers(seq, [ReLU() if k in replaced else m for k, m in enumerate(layers)])
    return out.eval()  # the new ReLUs too
