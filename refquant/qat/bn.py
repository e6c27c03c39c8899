"""Batch norm in quantization-aware training: a Conv2d (or Linear) and its BatchNorm as one module.

The integer model multiplies by the folded weight $W' = a\\,W$, $a = \\gamma / \\sigma$ per output
channel (:mod:`refquant.passes.batchnorm`, eq. (2)), so that is the weight to fake-quantize.
:class:`LayerBatchNorm` keeps the float layer and BatchNorm unfolded and computes, with
$\\sigma = \\sqrt{\\sigma^2_{run} + \\epsilon}$ from the *running* variance,
$a = \\gamma / \\sigma$, $W' = a\\,W$ (float64, rounded once to float32, exactly as
:func:`refquant.passes.fold_parameters` folds it at conversion) and $y = x \\ast \\mathrm{FQ}(W')$
(no bias):

* **training, statistics live** (PyTorch's ``ConvBn2d`` / Krishnamoorthi 2018): undo the scale,
  add the layer's bias $b$ and run the BatchNorm on batch statistics, which also updates the
  running ones:

  $$ z = y / a + b, \\qquad \\mathrm{out} = \\gamma\\,\\frac{z - \\mu_B}{\\sigma_B} + \\beta
     = \\frac{\\sigma}{\\sigma_B}\\,y + \\ldots \\tag{1} $$

  so the weights the quantizer sees are the folded ones while the output is normalized with the
  batch's $\\sigma_B$ as in float training.
* **evaluation, or statistics frozen** (``freeze_bn_after``): the folded layer itself,

  $$ \\mathrm{out} = y + b', \\qquad b' = a\\,(b - \\mu_{run}) + \\beta, \\tag{2} $$

  bit for bit the float layer that :func:`refquant.qat.conversion.convert` lowers (the same $W'$, $b'$).

Backward (with $G = \\partial L / \\partial\\,\\mathrm{out}$, $G_{W'}$ the fake-quantizer's
straight-through gradient for $W'$, sums over batch and positions per channel):

* eq. (1): $G_z$ from the BatchNorm's backward (which adds its own $\\partial L/\\partial\\gamma$,
  $\\partial L/\\partial\\beta$); $\\partial L/\\partial b = \\sum G_z$;
  $\\partial L/\\partial y = G_z / a$; $\\partial L/\\partial a = \\sum W \\odot G_{W'} - \\sum G_z\\,y / a^2$;
* eq. (2): $\\partial L/\\partial\\beta = \\sum G$; $\\partial L/\\partial b = a \\sum G$;
  $\\partial L/\\partial a = \\sum W \\odot G_{W'} + (b - \\mu_{run}) \\sum G$;

and in both $\\partial L/\\partial W = a\\,G_{W'}$ and
$\\partial L/\\partial\\gamma \\mathrel{+}= (\\partial L/\\partial a) / \\sigma$. The running statistics are buffers: no
gradient. See
[Learn: quantization-aware training](../learn/qat.md).
"""

from __future__ import annotations

import numpy as np

from ..nn import Module
from ..nn.transforms import weight_grad
from ..passes import fold_parameters
from .weights import WeightFakeQuantize

__all__ = ["LayerBatchNorm"]


class LayerBatchNorm(Module):
    """A Conv2d or Linear followed by its BatchNorm, trained with the folded weight fake-quantized.

    Args:
        layer: The ``Conv2d`` or ``Linear`` (taken over: its bias moves to this module, its
            ``weight_transform`` becomes the folded fake-quantizer).
        bn: The ``BatchNorm2d`` / ``BatchNorm1d`` after it.
        weight_fq: The :class:`~refquant.qat.weights.WeightFakeQuantize` for $W'$ (its ``inner``
            transform, if any, is applied to $W$ before folding).

    Attributes:
        frozen: Use eq. (2) in training too (running statistics, not updated).
    """

    def __init__(self, layer: Module, bn: Module, weight_fq: WeightFakeQuantize):
        super().__init__()
        bias = layer.bias
        layer.bias = None  # eq. (1) adds it after undoing the scale
        self.layer = layer
        self.bn = bn
        self.bias = bias  # None for a layer without bias (b = 0, not trained)
        self.weight_fq = weight_fq
        self.frozen = False
        layer.weight_transform = self._transform
        self._cache = None
        self._grad_folded = None

    # ---- eq. (2) of refquant.passes.batchnorm, as convert computes it -------------------------
    def _fold(self, w: np.ndarray, with_bias: bool = False):
        bn = self.bn
        gamma = None if bn.weight is None else bn.weight.value
        beta = None if bn.bias is None else bn.bias.value
        bias = self.bias.value if (with_bias and self.bias is not None) else None
        return fold_parameters(w, bias, gamma, beta, bn.running_mean, bn.running_var, bn.eps)

    def scale_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, sigma)``: $(O,)$ $a = \\gamma / \\sigma$ and $\\sigma = \\sqrt{\\sigma^2_{run} + \\epsilon}$
        (float64, rounded once to the layer's dtype)."""
        sigma = np.sqrt(self.bn.running_var.astype(np.float64) + float(self.bn.eps))
        gamma = 1.0 if self.bn.weight is None else self.bn.weight.value.astype(np.float64)
        dtype = self.layer.weight.dtype
        return (gamma / sigma).astype(dtype), sigma.astype(dtype)

    def folded_parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W', b')`` in the layer's dtype: the float layer :func:`refquant.qat.conversion.convert` lowers."""
        w0, _ = self.weight_fq.prepare(self.layer.weight.value)
        w, b = self._fold(w0, with_bias=True)
        dtype = self.layer.weight.dtype
        return w.astype(dtype), b.astype(dtype)

    def _transform(self, w):
        w0, inner_bwd = self.weight_fq.prepare(w)
        w_folded = self._fold(w0)[0].astype(w.dtype)  # W' = a W
        w_fq, mask = self.weight_fq.fake_quantize(w_folded)
        a = self.scale_factor()[0].reshape((-1,) + (1,) * (w.ndim - 1))
        self._w0 = w0

        def backward(g):
            g_folded = np.where(mask, g, 0).astype(g.dtype)  # dL/dW'
            self._grad_folded = g_folded
            return weight_grad(g_folded * a, inner_bwd)  # dL/dW = a dL/dW'

        return w_fq, backward

    # ---- forward / backward --------------------------------------------------------------------
    def forward(self, x):
        a, sigma = self.scale_factor()  # from the running statistics before this batch updates them
        y = self.layer(x)  # x * FQ(W'), no bias
        bshape = (1, -1) + (1,) * (y.ndim - 2)
        if self.training and not self.frozen:  # eq. (1)
            z = y / a.reshape(bshape)
            if self.bias is not None:
                z += self.bias.value.reshape(bshape)
            self._cache = ("batch", y, a, sigma, bshape)
            return self.bn(z)
        b_folded = self.folded_parameters()[1]  # eq. (2)
        self._cache = ("folded", y, a, sigma, bshape)
        return y + b_folded.reshape(bshape)

    def backward(self, grad_out):
        mode, y, a, sigma, bshape = self._cached()
        axes = (0,) + tuple(range(2, y.ndim))
        g = self.bn.backward(grad_out) if mode == "batch" else np.asarray(grad_out)  # G_z or G
        gsum = g.sum(axis=axes)  # (O,)
        gx = self.layer.backward(g / a.reshape(bshape) if mode == "batch" else g)
        bn = self.bn
        if mode == "folded" and bn.bias is not None:
            bn.bias.accumulate(gsum)
        if self.bias is not None:
            self.bias.accumulate(gsum if mode == "batch" else a * gsum)
        if bn.weight is not None and bn.weight.requires_grad and self._grad_folded is not None:
            w0 = self._w0
            grad_a = (w0 * self._grad_folded).reshape(w0.shape[0], -1).sum(axis=1)
            if mode == "batch":
                grad_a = grad_a - (g * y).sum(axis=axes) / (a * a)
            else:
                b = 0.0 if self.bias is None else self.bias.value
                grad_a = grad_a + (b - bn.running_mean) * gsum
            bn.weight.accumulate((grad_a / sigma).astype(bn.weight.dtype))
        self._grad_folded = None
        return gx

    def extra_repr(self) -> str:
        return "frozen" if self.frozen else ""
