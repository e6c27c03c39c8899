"""Elementwise activations: `ReLU`, `ReLU6`, `Hardtanh`, `Sigmoid`, `Tanh`.

Each keeps its input's dtype. At the kinks of ReLU, ReLU6 and Hardtanh the derivative
is taken as 0, as PyTorch does (``threshold_backward``, ``hardtanh_backward``).
"""

from __future__ import annotations


import numpy as np

from .._validate import as_real_scalar
from ..errors import QuantizationValueError
from ._checks import as_input
from .module import Module

__all__ = ["ReLU", "ReLU6", "Hardtanh", "Sigmoid", "Tanh"]

_ANY_RANK = tuple(range(1, 33))


class Hardtanh(Module):
    """$y = \\min(\\max(x, a), b)$; $\\partial y/\\partial x = [a < x < b]$ (``torch.nn.Hardtanh``).

    Args:
        min_val: $a$ (default -1).
        max_val: $b$ (default 1), > ``min_val``.
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        min_val, max_val = as_real_scalar(min_val, "min_val"), as_real_scalar(max_val, "max_val")
        if not min_val < max_val:
            raise QuantizationValueError(f"max_val must be > min_val = {min_val}, got {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)
        self._cache = None

    def forward(self, x):
        x = as_input(x, type(self).__name__, ndim=_ANY_RANK)
        self._cache = (x > self.min_val) & (x < self.max_val)
        return np.clip(x, x.dtype.type(self.min_val), x.dtype.type(self.max_val))

    def backward(self, grad_out):
        return grad_out * self._cached()

    def get_config(self) -> dict:
        return {"min_val": self.min_val, "max_val": self.max_val}


class ReLU6(Hardtanh):
    """$y = \\min(\\max(x, 0), 6)$ (``torch.nn.ReLU6``; MobileNet; TFLite fused ``RELU6``)."""

    def __init__(self):
        super().__init__(0.0, 6.0)

    def get_config(self) -> dict:
        return {}


class ReLU(Module):
    """$y = \\max(x, 0)$; $\\partial y/\\partial x = [x > 0]$ (``torch.nn.ReLU``)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        x = as_input(x, "ReLU", ndim=_ANY_RANK)
        self._cache = x > 0
        return np.maximum(x, x.dtype.type(0))

    def backward(self, grad_out):
        return grad_out * self._cached()


class Sigmoid(Module):
    """$y = 1/(1 + e^{-x})$; $\\partial y/\\partial x = y(1-y)$.

    Evaluated as $e^{\\min(x,0)}/(1 + e^{-|x|})$ so that no exponential overflows.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        x = as_input(x, "Sigmoid", ndim=_ANY_RANK)
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0, e) / (1.0 + e)
        y = y.astype(x.dtype, copy=False)
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._cached()
        return grad_out * y * (1 - y)


class Tanh(Module):
    """$y = \\tanh x$; $\\partial y/\\partial x = 1 - y^2$."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        x = as_input(x, "Tanh", ndim=_ANY_RANK)
        y = np.tanh(x)
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._cached()
        return grad_out * (1 - y * y)
