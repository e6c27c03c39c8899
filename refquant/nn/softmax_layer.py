"""`Softmax`: normalized exponentials along one axis, as a layer (ONNX ``Softmax``, ``torch.nn.Softmax``).

Forward, along axis $a$ with $m = \\max_j x_j$ (subtracted so that no exponential overflows):

$$ y_k = \\frac{e^{x_k - m}}{\\sum_j e^{x_j - m}}. \\tag{1} $$

Backward: the Jacobian is $\\partial y_k/\\partial x_i = y_k(\\delta_{ki} - y_i)$, so with
$G = \\partial L/\\partial y$,

$$ \\frac{\\partial L}{\\partial x} = y \\odot \\Big(G - \\textstyle\\sum_k G_k\\, y_k\\Big). \\tag{2} $$

For training a classifier use :class:`~refquant.nn.CrossEntropyLoss` on the logits instead
(it applies a log-softmax itself, more accurately); this layer is for models whose output is
the probabilities, such as an imported ONNX model ending in ``Softmax``.
"""

from __future__ import annotations

from .._validate import as_int, normalize_axis
from ._checks import as_input
from .losses import softmax
from .module import Module

__all__ = ["Softmax"]

_ANY_RANK = tuple(range(1, 33))


class Softmax(Module):
    """Eq. (1)-(2) above along ``axis``; keeps the input's float dtype (ONNX ``Softmax`` from opset
    13, ``torch.nn.Softmax(dim=axis)``).

    Args:
        axis: the axis normalized over; negative counts from the end (default -1, the last).
    """

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = as_int(axis, "axis")
        self._cache = None

    def forward(self, x):
        x = as_input(x, f"Softmax(axis={self.axis})", ndim=_ANY_RANK)
        axis = normalize_axis(self.axis, x.ndim)
        y = softmax(x, axis)
        self._cache = (y, axis)
        return y

    def backward(self, grad_out):
        y, axis = self._cached()
        g = self._check_grad(grad_out, y.shape, "Softmax")
        return y * (g - (g * y).sum(axis=axis, keepdims=True))  # eq. (2)

    def get_config(self) -> dict:
        return {"axis": self.axis}
