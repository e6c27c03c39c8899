"""Weight transforms: replace a layer's weight by a function of it for the forward pass.

``Linear`` and ``Conv2d`` have an attribute ``weight_transform`` (default ``None``).
When set to a callable ``fn``, the forward pass uses

$$ W_{\\mathrm{eff}},\\ \\mathrm{bwd} = \\mathrm{fn}(W) $$

instead of $W$, and the backward pass turns the gradient with respect to
$W_{\\mathrm{eff}}$ into the gradient with respect to the float weight $W$:

$$ \\frac{\\partial L}{\\partial W} =
   \\mathrm{bwd}\\!\\left(\\frac{\\partial L}{\\partial W_{\\mathrm{eff}}}\\right). $$

``fn`` may return just ``W_eff`` (then ``bwd`` is the identity: the straight-through
estimator) or the pair ``(W_eff, bwd)``. ``W_eff`` must have the weight's shape.
Typical uses:

* fake quantization with the straight-through estimator (QAT):
  ``layer.weight_transform = straight_through(lambda w: fq(w))``, or with the clamp
  mask: ``lambda w: (fq(w), lambda g: g * in_range(w))``;
* a pruning mask: ``layer.weight_transform = mask_transform(mask)``, so pruned weights
  stay zero in the forward pass and get zero gradient.

The optimizer still updates the float weight ``layer.weight.value``; the transform is
applied afresh on every forward pass. ``layer.effective_weight()`` returns
$W_{\\mathrm{eff}}$ for inspection.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .._validate import asarray, describe
from ..errors import QuantizationTypeError, ShapeError

__all__ = ["straight_through", "mask_transform", "compose", "apply_weight_transform"]

Backward = Callable[[np.ndarray], np.ndarray]


def apply_weight_transform(w: np.ndarray, fn, layer: str) -> tuple[np.ndarray, Backward | None]:
    """Return ``(W_eff, bwd)`` for weight ``w`` and transform ``fn`` (``bwd`` None = identity)."""
    if fn is None:
        return w, None
    out = fn(w)
    if isinstance(out, tuple):
        if len(out) != 2:
            raise QuantizationTypeError(f"{layer}.weight_transform must return W_eff or (W_eff, backward_fn), "
                                        f"got a tuple of length {len(out)}")
        w_eff, bwd = out
    else:
        w_eff, bwd = out, None
    w_eff = np.asarray(w_eff)
    if w_eff.shape != w.shape:
        raise ShapeError(f"{layer}.weight_transform must keep the weight shape {w.shape}, got {w_eff.shape}")
    if bwd is not None and not callable(bwd):
        raise QuantizationTypeError(f"{layer}.weight_transform's backward_fn must be callable, got {bwd!r}")
    return w_eff.astype(w.dtype, copy=False), bwd


def weight_grad(grad_w_eff: np.ndarray, bwd: Backward | None) -> np.ndarray:
    """$\\partial L/\\partial W$ from $\\partial L/\\partial W_{\\mathrm{eff}}$ (identity when ``bwd`` is None)."""
    return grad_w_eff if bwd is None else bwd(grad_w_eff)


def straight_through(fn: Callable[[np.ndarray], np.ndarray]):
    """Transform $W \\mapsto \\mathrm{fn}(W)$ whose backward is the identity (STE)."""
    if not callable(fn):
        raise QuantizationTypeError(f"fn must be callable (W -> W_eff), got {describe(fn)}")

    def transform(w):
        return fn(w), None

    return transform


def mask_transform(mask):
    """Transform $W \\mapsto W \\odot M$ with backward $g \\mapsto g \\odot M$ (pruning).

    Args:
        mask: 0/1 (or boolean) array of the weight's shape.
    """
    m = asarray(mask, "mask", kinds="biuf", what="a 0/1 or boolean array")

    def transform(w):
        if m.shape != w.shape:
            raise ShapeError(f"mask must have the weight's shape {w.shape}, got {m.shape}")
        mw = m.astype(w.dtype)
        return w * mw, (lambda g: g * mw)

    return transform


def compose(*transforms):
    """Apply ``transforms`` left to right (e.g. a pruning mask, then fake quantization)."""
    for t in transforms:
        if not callable(t):
            raise QuantizationTypeError(f"transforms must be callables (W -> W_eff or (W_eff, backward)), "
                                        f"got {describe(t)}")

    def transform(w):
        backs = []
        for t in transforms:
            w, b = apply_weight_transform(w, t, "compose")
            backs.append(b)

        def backward(g):
            for b in reversed(backs):
                g = weight_grad(g, b)
            return g

        return w, backward

    return transform
