"""Batch normalization: `BatchNorm1d` (N, C) or (N, C, L) and `BatchNorm2d` (N, C, H, W).

Per channel $c$, over the $M$ values of the batch (and spatial positions):

$$ \\mu = \\tfrac{1}{M}\\textstyle\\sum x, \\quad \\sigma^2 = \\tfrac{1}{M}\\sum (x-\\mu)^2, \\quad
   \\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\quad y = \\gamma \\hat x + \\beta. \\tag{1} $$

In training, $\\mu, \\sigma^2$ are the batch's statistics and the running statistics move
toward them, PyTorch's convention (``momentum`` weights the *new* value; the running
variance uses the unbiased $\\sigma^2 M/(M-1)$):

$$ \\mu_{run} \\leftarrow (1-m)\\,\\mu_{run} + m\\,\\mu, \\qquad
   \\sigma^2_{run} \\leftarrow (1-m)\\,\\sigma^2_{run} + m\\,\\tfrac{M}{M-1}\\sigma^2. $$

In evaluation (``model.eval()``), $\\mu_{run}, \\sigma^2_{run}$ replace them, which
makes the layer an affine map per channel (what BN folding folds into the previous conv).

Backward in training (batch statistics depend on $x$), with $\\hat g = \\gamma\\, G$:

$$ \\frac{\\partial L}{\\partial x} = \\frac{1}{M\\sqrt{\\sigma^2+\\epsilon}}
   \\left(M \\hat g - \\textstyle\\sum \\hat g - \\hat x \\sum \\hat g \\hat x\\right), \\quad
   \\frac{\\partial L}{\\partial \\gamma} = \\textstyle\\sum G \\hat x, \\quad
   \\frac{\\partial L}{\\partial \\beta} = \\sum G. \\tag{2} $$

In evaluation: $\\partial L/\\partial x = \\gamma G / \\sqrt{\\sigma^2_{run} + \\epsilon}$.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ._checks import as_flag, as_float_dtype, as_input, as_int, as_positive_float, as_probability, check_size
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Shared implementation; subclasses set the allowed ranks."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 *, dtype=np.float32):
        super().__init__()
        self.num_features = as_int(num_features, "num_features")
        self.eps = as_positive_float(eps, "eps")
        self.momentum = as_probability(momentum, "momentum", upper_open=False)
        affine = as_flag(affine, "affine")
        d = as_float_dtype(dtype)
        c = self.num_features
        check_size(4 * c, d.itemsize, "4 * num_features (weight, bias, running mean and variance)")
        self.weight = Parameter(np.ones(c, d)) if affine else None
        self.bias = Parameter(np.zeros(c, d)) if affine else None
        self.register_buffer("running_mean", np.zeros(c, d))
        self.register_buffer("running_var", np.ones(c, d))
        self._cache = None

    @property
    def dtype(self) -> np.dtype:
        return self.running_mean.dtype

    def forward(self, x):
        name = f"{type(self).__name__}({self.num_features})"
        x = as_input(x, name, ndim=self._ranks, channels=self.num_features, layout=self._layout)
        x = x.astype(self.dtype, copy=False)
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector over x
        m = x.size // self.num_features  # values per channel
        if self.training:
            if m < 2:
                raise ShapeError(f"{name}: training needs more than 1 value per channel, got input shape {x.shape}")
            mu = x.mean(axis=axes)
            xc = x - mu.reshape(bshape)
            var = (xc * xc).mean(axis=axes)  # biased, eq. (1)
            mom = self.momentum
            self.running_mean = ((1 - mom) * self.running_mean + mom * mu).astype(self.dtype)
            self.running_var = ((1 - mom) * self.running_var + mom * var * (m / (m - 1))).astype(self.dtype)
            invstd = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype)
            xhat = xc * invstd.reshape(bshape)
            self._cache = (xhat, None, invstd, axes, bshape, m, True)
            if self.weight is None:
                return xhat
            return xhat * self.weight.value.reshape(bshape) + self.bias.value.reshape(bshape)
        # evaluation: one affine map per channel, y = x·a + (β - μ_run·a) with a = γ/sqrt(σ²_run + ε)
        invstd = (1.0 / np.sqrt(self.running_var + self.eps)).astype(self.dtype)
        a = invstd if self.weight is None else self.weight.value * invstd
        shift = -self.running_mean * a if self.weight is None else self.bias.value - self.running_mean * a
        self._cache = (None, x, invstd, axes, bshape, m, False)
        y = x * a.reshape(bshape)
        y += shift.reshape(bshape)  # in place: same bits as x·a + shift, one temporary fewer
        return y

    def backward(self, grad_out):
        xhat, x, invstd, axes, bshape, m, training = self._cached()
        g = self._check_grad(grad_out, (xhat if training else x).shape, type(self).__name__)
        if xhat is None and self.weight is not None and self.weight.requires_grad:
            xhat = (x - self.running_mean.reshape(bshape)) * invstd.reshape(bshape)
        if self.weight is not None:
            if self.weight.requires_grad:
                self.weight.accumulate((g * xhat).sum(axis=axes))
            self.bias.accumulate(g.sum(axis=axes))
            ghat = g * self.weight.value.reshape(bshape)
        else:
            ghat = g
        if not training:
            return ghat * invstd.reshape(bshape)
        s1 = ghat.sum(axis=axes).reshape(bshape)
        s2 = (ghat * xhat).sum(axis=axes).reshape(bshape)
        return (invstd.reshape(bshape) / m) * (m * ghat - s1 - xhat * s2)  # eq. (2)

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.weight is not None, "dtype": str(self.dtype)}


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) (``torch.nn.BatchNorm1d``); eq. (1)-(2).

    Args:
        num_features: $C$.
        eps: $\\epsilon$ added to the variance (1e-5).
        momentum: $m$, weight of the new batch statistics in the running ones (0.1).
        affine: learn $\\gamma$ (``weight``) and $\\beta$ (``bias``).
        dtype: float32 (default) or float64.
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) (``torch.nn.BatchNorm2d``); eq. (1)-(2).

    Args:
        num_features: $C$.
        eps: $\\epsilon$ added to the variance (1e-5).
        momentum: $m$, weight of the new batch statistics in the running ones (0.1).
        affine: learn $\\gamma$ (``weight``) and $\\beta$ (``bias``).
        dtype: float32 (default) or float64.
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"
