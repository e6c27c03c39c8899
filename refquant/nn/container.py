"""Containers: `Sequential` (a chain) and `Residual` (a block with a skip connection).

A container's ``forward`` calls its children (so their hooks run) and its ``backward``
calls their ``backward`` in reverse order, the chain rule written out:
for $y = f_K(\\cdots f_1(x))$, $\\partial L/\\partial x = J_{f_1}^\\top \\cdots J_{f_K}^\\top\\, G$.

A ResNet basic block and a MobileNetV2 inverted residual are both ``Residual``::

    Residual(Sequential(Conv2d(c, c, 3, padding=1), BatchNorm2d(c), ReLU(),
                        Conv2d(c, c, 3, padding=1), BatchNorm2d(c)),
             activation=ReLU())                                  # ResNet
    Residual(Sequential(Conv2d(c, 6*c, 1), BatchNorm2d(6*c), ReLU6(),
                        Conv2d(6*c, 6*c, 3, padding=1, groups=6*c), BatchNorm2d(6*c), ReLU6(),
                        Conv2d(6*c, c, 1), BatchNorm2d(c)))      # MobileNetV2
"""

from __future__ import annotations

from collections import OrderedDict

from ..errors import QuantizationTypeError
from .layers import Add
from .module import Module

__all__ = ["Sequential", "Residual"]


class Sequential(Module):
    """$y = f_K(\\cdots f_2(f_1(x)))$; children are named ``"0"``, ``"1"``, ...

    Args:
        *layers: the modules, applied in order.
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> "Sequential":
        if not isinstance(layer, Module):
            raise QuantizationTypeError(f"layers must be Module instances (Sequential takes Module instances), "
                                        f"got {type(layer).__name__}")
        setattr(self, str(len(self._modules)), layer)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i):
        layers = list(self._modules.values())
        return Sequential(*layers[i]) if isinstance(i, slice) else layers[i]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, grad_out):
        g = grad_out
        for layer in reversed(self._modules.values()):
            g = layer.backward(g)
        return g

    @classmethod
    def from_config(cls, config: dict, children: "OrderedDict[str, Module]") -> "Sequential":
        return cls(*children.values())


class Residual(Module):
    """$y = \\phi\\big(\\mathrm{body}(x) + \\mathrm{shortcut}(x)\\big)$, the sum done by an
    :class:`~refquant.nn.layers.Add` child named ``add`` (so hooks and quantization see it).

    Backward: with $G' = J_\\phi^\\top G$,
    $\\partial L/\\partial x = J_{\\mathrm{body}}^\\top G' + J_{\\mathrm{shortcut}}^\\top G'$.

    Args:
        body: the main branch.
        shortcut: the skip branch (e.g. a strided 1×1 Conv2d + BatchNorm2d); None is identity.
        activation: applied after the sum (e.g. ReLU in ResNet); None for none (MobileNetV2).
    """

    def __init__(self, body: Module, shortcut: Module | None = None, activation: Module | None = None):
        super().__init__()
        if not isinstance(body, Module):
            raise QuantizationTypeError(f"Residual body must be a Module, got {type(body).__name__}")
        for name, m in (("shortcut", shortcut), ("activation", activation)):
            if m is not None and not isinstance(m, Module):
                raise QuantizationTypeError(f"Residual {name} must be a Module or None, got {type(m).__name__}")
        self.body = body
        self.shortcut = shortcut
        self.add = Add()
        self.activation = activation

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        y = self.add(self.body(x), skip)
        return y if self.activation is None else self.activation(y)

    def backward(self, grad_out):
        g = grad_out if self.activation is None else self.activation.backward(grad_out)
        g_body, g_skip = self.add.backward(g)
        gx = self.body.backward(g_body)
        return gx + (g_skip if self.shortcut is None else self.shortcut.backward(g_skip))

    @classmethod
    def from_config(cls, config: dict, children: "OrderedDict[str, Module]") -> "Residual":
        return cls(children["body"], children.get("shortcut"), children.get("activation"))
