"""Basic layers: `Linear`, `Identity`, `Flatten`, `Dropout`, `Add`.

Each layer's ``forward`` caches what ``backward`` needs; ``backward(grad_out)`` returns
the gradient with respect to the input(s) and adds parameter gradients into
``Parameter.grad`` (see :mod:`refquant.nn.module`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ._checks import as_flag, as_float_dtype, as_input, as_int, as_probability, check_size
from .init import as_rng, uniform_fan_in
from .module import Module, Parameter
from .transforms import apply_weight_transform, weight_grad

__all__ = ["Linear", "Identity", "Flatten", "Dropout", "Add"]


class Linear(Module):
    """Fully connected layer $y = x W^\\top + b$ (``torch.nn.Linear``, ONNX ``Gemm`` with ``transB=1``).

    Shapes: ``x`` (N, in_features) → ``y`` (N, out_features); ``weight`` (out_features,
    in_features), ``bias`` (out_features,). Computes in the weight's dtype.

    Backward, with $G = \\partial L/\\partial y$ and $W_{\\mathrm{eff}}$ the (optionally
    transformed) weight:

    $$ \\frac{\\partial L}{\\partial x} = G W_{\\mathrm{eff}}, \\quad
       \\frac{\\partial L}{\\partial W_{\\mathrm{eff}}} = G^\\top x, \\quad
       \\frac{\\partial L}{\\partial b} = \\textstyle\\sum_n G_{n,:}. $$

    Args:
        in_features: input size.
        out_features: output size.
        bias: add a learned bias.
        rng: seed or Generator for the initial weights (default: the process-wide one).
        dtype: float32 (default) or float64.

    Attributes:
        weight_transform: None or a callable $W \\mapsto W_{\\mathrm{eff}}$ or
            $(W_{\\mathrm{eff}}, \\mathrm{bwd})$ (see :mod:`refquant.nn.transforms`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None, dtype=np.float32):
        super().__init__()
        self.in_features = as_int(in_features, "in_features")
        self.out_features = as_int(out_features, "out_features")
        bias = as_flag(bias, "bias")
        d = as_float_dtype(dtype)
        check_size(self.in_features * self.out_features, d.itemsize, "the weight in_features * out_features")
        g = as_rng(rng)
        self.weight = Parameter(uniform_fan_in((self.out_features, self.in_features), self.in_features, g, d))
        self.bias = Parameter(uniform_fan_in((self.out_features,), self.in_features, g, d)) if bias else None
        self.weight_transform = None
        self._cache = None

    def effective_weight(self) -> np.ndarray:
        """The weight the forward pass uses (after ``weight_transform``)."""
        return apply_weight_transform(self.weight.value, self.weight_transform, "Linear")[0]

    def forward(self, x):
        x = as_input(x, f"Linear({self.in_features}, {self.out_features})", ndim=2,
                     channels=self.in_features, layout="(N, in_features)")
        w, bwd = apply_weight_transform(self.weight.value, self.weight_transform, "Linear")
        x = x.astype(w.dtype, copy=False)
        y = x @ w.T  # (N, out)
        if self.bias is not None:
            y += self.bias.value
        self._cache = (x, w, bwd)
        return y

    def backward(self, grad_out):
        x, w, bwd = self._cached()
        g = self._check_grad(grad_out, (x.shape[0], self.out_features), "Linear")
        if self.weight.requires_grad:
            self.weight.accumulate(weight_grad(g.T @ x, bwd))
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=0))
        return g @ w  # (N, in)

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "dtype": str(self.weight.dtype)}


class Identity(Module):
    """$y = x$."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


class Flatten(Module):
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1·d2·...)`` (``torch.nn.Flatten()``, ONNX ``Flatten`` axis=1)."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, x):
        x = as_input(x, "Flatten", ndim=tuple(range(1, 33)))
        self._cache = x.shape
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:]))) if x.ndim > 1 else x.reshape(-1, 1)

    def backward(self, grad_out):
        shape = self._cached()
        return np.asarray(grad_out).reshape(shape)


class Dropout(Module):
    """Inverted dropout: in training $y = x \\odot m / (1-p)$ with $m_i \\sim \\mathrm{Bernoulli}(1-p)$;
    in evaluation $y = x$. Backward: $\\partial L/\\partial x = G \\odot m / (1-p)$.

    The mask comes from the layer's own Generator (``rng``); :func:`refquant.nn.fit`
    reseeds it from its ``seed`` so training is deterministic.
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        self.p = as_probability(p, "p")
        self.rng = np.random.default_rng(as_rng(rng).integers(2**63))
        self._cache = None

    def reseed(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def forward(self, x):
        x = as_input(x, "Dropout", ndim=tuple(range(1, 33)))
        if not self.training or self.p == 0.0:
            self._cache = None
            return x
        keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1.0 - self.p)
        self._cache = keep
        return x * keep

    def backward(self, grad_out):
        keep = self.__dict__.get("_cache")
        return grad_out if keep is None else grad_out * keep

    def get_config(self) -> dict:
        return {"p": self.p}


class Add(Module):
    """Elementwise sum of two tensors of the same shape, $y = a + b$ (residual connections;
    quantized backends give it its own output scale: TFLite ``ADD``, ``QLinearAdd``).

    ``forward(a, b)``; ``backward(G)`` returns ``(G, G)``. No broadcasting.
    """

    def __init__(self):
        super().__init__()
        self._cache = None

    def forward(self, a, b):
        a = as_input(a, "Add", ndim=tuple(range(1, 33)), name="a")
        b = as_input(b, "Add", ndim=tuple(range(1, 33)), name="b")
        if a.shape != b.shape:
            raise ShapeError(f"Add: inputs a and b must have the same shape, got {a.shape} and {b.shape}")
        self._cache = a.shape
        return a + b

    def backward(self, grad_out):
        shape = self._cached()
        g = self._check_grad(grad_out, shape, "Add")
        return g, g
