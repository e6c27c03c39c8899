"""Where a layer's output channels go (internal to :mod:`refquant.prune.structured`).

The model's containers are unrolled into a small dataflow graph of leaf layers: a
:class:`~refquant.nn.Sequential` chains its children; a :class:`~refquant.nn.Residual` sends its input
to ``body`` and to ``shortcut`` (or straight to the add), joins them at its ``add`` child and applies
``activation``. Any other module with children is one opaque node.

:func:`trace_channels` follows the output channels of one Conv2d (``groups=1``) or Linear — the
*producer* — forward, through

* layers that act on each channel alone and keep them: activations, Identity, Dropout, max/average
  pooling, GlobalAvgPool2d; Flatten only when the spatial size is known to be 1 × 1;
* layers that carry the channels and must shrink with them: BatchNorm, and a depthwise Conv2d
  (``groups = in_channels``: input channel $c$ owns filters $cM \\ldots cM+M-1$);

until every path ends in a *consumer* whose input channels shrink: a Conv2d with ``groups=1`` or a
Linear. A path that reaches a residual ``Add``, the model's output, a grouped convolution, a Flatten
of an unknown spatial size or an unknown layer cannot be thinned: :class:`UnsupportedError` says why.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UnsupportedError
from ..nn import (
    Add,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Hardtanh,
    Identity,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
)

__all__ = ["Graph", "build_graph", "trace_channels", "Trace"]

#: Layers that act on each channel alone and keep the channel count and layout.
PER_CHANNEL = (ReLU, Hardtanh, Sigmoid, Tanh, Identity, Dropout, MaxPool2d, AvgPool2d)
BATCHNORM = (BatchNorm1d, BatchNorm2d)


@dataclasses.dataclass
class Graph:
    """Leaf layers in execution order; ``inputs[i]`` are node indices (-1: the model's input)."""

    names: list = dataclasses.field(default_factory=list)
    modules: list = dataclasses.field(default_factory=list)
    inputs: list = dataclasses.field(default_factory=list)
    output: int = -1

    def add(self, name: str, module: Module, inputs: list[int]) -> int:
        self.names.append(name)
        self.modules.append(module)
        self.inputs.append(inputs)
        return len(self.names) - 1

    def consumers(self, i: int) -> list[int]:
        return [j for j, ins in enumerate(self.inputs) if i in ins]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(g: Graph, m: Module, name: str, x: int) -> int:
    if isinstance(m, Sequential):
        for child_name, child in m.named_children():
            x = _build(g, child, _join(name, child_name), x)
        return x
    if isinstance(m, Residual):
        b = _build(g, m.body, _join(name, "body"), x)
        s = x if m.shortcut is None else _build(g, m.shortcut, _join(name, "shortcut"), x)
        a = g.add(_join(name, "add"), m.add, [b, s])
        return a if m.activation is None else _build(g, m.activation, _join(name, "activation"), a)
    return g.add(name, m, [x])  # a leaf, or an opaque module with children


def build_graph(model: Module) -> Graph:
    g = Graph()
    g.output = _build(g, model, "", -1)
    return g


@dataclasses.dataclass
class Trace:
    """What shrinks when the producer keeps the output channels ``keep``.

    ``shrink``: ``(node, kept input channels)`` for BatchNorms and depthwise convolutions;
    ``consumers``: ``(node, kept input channels)`` for the Conv2d/Linear layers that read them.
    """

    shrink: list = dataclasses.field(default_factory=list)
    consumers: list = dataclasses.field(default_factory=list)


def is_producer(m: Module) -> bool:
    return isinstance(m, Linear) or (isinstance(m, Conv2d) and m.groups == 1)


def trace_channels(g: Graph, producer: int, keep: np.ndarray) -> Trace:
    """Follow ``keep`` (sorted output channels of node ``producer``) to its consumers; see the module docstring."""
    pname = g.names[producer]
    out = Trace()

    def refuse(why: str):
        raise UnsupportedError(f"cannot remove output channels of {type(g.modules[producer]).__name__} {pname!r}: "
                               f"{why}")

    # (node whose output carries the channels, kept indices, rank 4 or 2, spatial size known to be 1x1)
    stack = [(producer, keep, 4 if isinstance(g.modules[producer], Conv2d) else 2, False)]
    while stack:
        i, kept, rank, unit = stack.pop()
        users = g.consumers(i)
        if i == g.output or not users:
            refuse(f"its channels reach the model's output (through {g.names[i]!r})" if i != producer
                   else "its output is the model's output")
        for j in users:
            m, name = g.modules[j], g.names[j]
            nxt = (j, kept, rank, unit)
            if isinstance(m, Add):
                refuse(f"its channels feed the residual add {name!r} (every tensor joined by an add would have "
                       f"to lose the same channels)")
            elif isinstance(m, BATCHNORM):
                out.shrink.append((j, kept))
            elif isinstance(m, Conv2d) and m.groups == 1:
                out.consumers.append((j, kept))
                continue
            elif isinstance(m, Conv2d) and m.groups == m.in_channels:
                mult = m.out_channels // m.in_channels
                out.shrink.append((j, kept))
                nxt = (j, (kept[:, None] * mult + np.arange(mult)).reshape(-1), rank, unit)
            elif isinstance(m, Conv2d):
                refuse(f"its channels reach the grouped Conv2d {name!r} (groups={m.groups}), whose groups would "
                       f"have to shrink together")
            elif isinstance(m, Linear):
                if rank != 2:
                    refuse(f"Linear {name!r} reads its channels with their spatial positions (no global pool between)")
                out.consumers.append((j, kept))
                continue
            elif isinstance(m, GlobalAvgPool2d):
                nxt = (j, kept, 4 if m.keepdims else 2, True)
            elif isinstance(m, Flatten):
                if rank == 4 and not unit:
                    refuse(f"Flatten {name!r} mixes channels with spatial positions of unknown size")
                nxt = (j, kept, 2, unit)
            elif isinstance(m, PER_CHANNEL):
                pass
            else:
                refuse(f"its channels reach {type(m).__name__} {name!r}, which prune_channels cannot see through")
            stack.append(nxt)
    return out
