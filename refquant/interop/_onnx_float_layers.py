"""One ONNX node → one ``refquant.nn`` module, for the float ONNX importer (``_onnx_float``).

| ONNX op | refquant.nn module | conditions |
|---|---|---|
| Gemm | ``Linear`` | ``alpha = beta = 1``, ``transA = 0``; constant B (either ``transB``) and C (a vector) |
| MatMul (+ Add) | ``Linear`` | constant 2-D B; a following Add of a constant vector is the bias |
| Conv | ``Conv2d`` | 2-D, constant weights; pads, strides, dilations, groups; any ``auto_pad`` whose pads are known |
| BatchNormalization | ``BatchNorm2d`` / ``BatchNorm1d`` | inference mode; the file's statistics and epsilon |
| Relu, Sigmoid, Tanh | ``ReLU``, ``Sigmoid``, ``Tanh`` | |
| Clip | ``ReLU6`` / ``ReLU`` / ``Hardtanh`` | constant bounds (0, 6) / (0, none) / (a, b) |
| MaxPool, AveragePool | ``MaxPool2d``, ``AvgPool2d`` | 2-D, equal pads on both sides (≤ half the kernel), no partial ``ceil_mode`` window |
| GlobalAveragePool (+ Flatten) | ``GlobalAvgPool2d`` | ``keepdims=True`` unless a flatten follows (then merged) |
| Flatten, Reshape | ``Flatten`` | a flatten to (N, -1) or (-1, C·H·W) |
| Softmax | ``Softmax`` | one axis (before opset 13: the last) |
| Identity, Dropout | ``Identity``, ``Dropout`` | inference Dropout, mask unused |
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..errors import RefquantError, UnsupportedError

__all__ = ["ACTIVATIONS", "BATCH", "CONSTANT_OPS", "LAYERS", "SUPPORTED_OPS", "GraphView", "Sym", "convert"]

_REQUIRED = object()
_FLT_MAX = float(np.finfo(np.float32).max)


class Sym:
    """A dimension unknown at import time (the batch ``N``) inside an evaluated shape."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


BATCH = Sym("N")


class GraphView:
    """What a converter reads: nodes, attributes, constants, inferred shapes, readers of each tensor."""

    def __init__(self, graph, opset: int):
        self.graph, self.opset = graph, int(opset)
        self.nodes = list(graph.node)
        self.shapes: dict[str, tuple | None] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.consumers: dict[str, list[int]] = {}
        self.live: set[str] = set()
        self.used: set[int] = set()
        self.output = ""
        self._producers = {o: i for i, n in enumerate(self.nodes) for o in n.output if o}

    def where(self, i: int | None) -> str:
        if i is None:
            return "the graph input"
        node = self.nodes[i]
        return f"node #{i} {node.name!r} ({node.op_type})" if node.name else f"node #{i} ({node.op_type}, unnamed)"

    def producer(self, t: str) -> int | None:
        return self._producers.get(t)

    def attr(self, i: int, name: str, default=_REQUIRED):
        from onnx import helper

        for a in self.nodes[i].attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        if default is _REQUIRED:
            raise UnsupportedError(f"{self.where(i)} lacks the required attribute {name!r}")
        return default

    def rank(self, t: str) -> int | None:
        dims = self.shapes.get(t)
        return None if dims is None else len(dims)

    def reader(self, t: str) -> int | None:
        """The one node reading ``t`` (None if ``t`` is the output or read by none or several)."""
        readers = self.consumers.get(t, [])
        return readers[0] if len(readers) == 1 and t != self.output else None

    def const(self, i: int, k: int, what: str, *, optional: bool = False):
        """Input ``k`` of node ``i`` as a constant array (None if absent and ``optional``)."""
        node = self.nodes[i]
        name = node.input[k] if len(node.input) > k else ""
        if not name:
            if optional:
                return None
            raise UnsupportedError(f"{self.where(i)} lacks its input {what}")
        if name not in self.consts:
            j = self.producer(name)
            source = ("the graph input" if j is None and name in self.live else "a tensor no node writes" if j is None
                      else f"a tensor computed by {self.where(j)}" + ("" if name in self.live else
                                                                      ", an op not evaluated at import"))
            raise UnsupportedError(f"{self.where(i)}: input {what} ({name!r}) must be a constant, got {source}")
        return self.consts[name]

    def weight(self, i: int, k: int, what: str, *, optional: bool = False, ndim: int | None = None):
        """A constant float32 input (weights, bias, statistics), values as in the file."""
        w = self.const(i, k, what, optional=optional)
        if w is None:
            return None
        if w.dtype != np.float32:
            raise UnsupportedError(f"{self.where(i)}: input {what} must be float32, got {w.dtype}")
        if ndim is not None and w.ndim != ndim:
            raise UnsupportedError(f"{self.where(i)}: input {what} must have rank {ndim}, got shape {w.shape}")
        return w

    def is_join(self, i: int) -> bool:
        """Whether node ``i`` reads two or more tensors computed at run time."""
        return sum(1 for n in self.nodes[i].input if n in self.live) >= 2

    def check_same_shape(self, j: int) -> None:
        a, b = (self.shapes.get(n) for n in self.nodes[j].input)
        if a is not None and b is not None and (len(a) != len(b) or any(
                x is not None and y is not None and x != y for x, y in zip(a, b))):
            raise UnsupportedError(f"{self.where(j)} broadcasts shapes {a} and {b}; nn.Residual adds tensors of "
                                   f"one shape")


def _make(g: GraphView, i: int, cls, *args, **kw):
    """``cls(*args, **kw)``, a refused argument reported as the node's."""
    try:
        return cls(*args, **kw)
    except RefquantError as e:
        raise UnsupportedError(f"{g.where(i)} cannot be expressed as nn.{cls.__name__}: {e}") from e


def _set(layer, name: str, value: np.ndarray) -> None:
    setattr(layer, name, nn.Parameter(np.ascontiguousarray(value)))


def _vector(g: GraphView, i: int, c: np.ndarray, n: int, what: str) -> np.ndarray:
    """A constant that broadcasts along the output features: one value, (n,) or (1, n)."""
    if c.size == 1:
        return np.full(n, c.reshape(()), np.float32)
    if c.shape not in ((n,), (1, n)):
        raise UnsupportedError(f"{g.where(i)}: {what} must be a vector of the {n} output features, got shape "
                               f"{c.shape}")
    return c.reshape(n)


def _linear(g: GraphView, i: int, w: np.ndarray, bias) -> tuple:
    """``Linear`` with weight ``w`` (out, in); without a bias, a following constant Add becomes it."""
    x, y = g.nodes[i].input[0], g.nodes[i].output[0]
    if g.rank(x) not in (2, None):
        raise UnsupportedError(f"{g.where(i)} reads a rank-{g.rank(x)} tensor; nn.Linear takes (N, in_features)")
    j = g.reader(y)
    if bias is None and j is not None and g.nodes[j].op_type == "Add" and not g.is_join(j):
        k = next(k for k, n in enumerate(g.nodes[j].input) if n != y)
        c = g.weight(j, k, "B (the bias)")
        if c.size == 1 or c.shape in ((w.shape[0],), (1, w.shape[0])):
            bias, y = _vector(g, j, c, w.shape[0], "the bias"), g.nodes[j].output[0]
            g.used.add(j)
    layer = _make(g, i, nn.Linear, w.shape[1], w.shape[0], bias=bias is not None, rng=0)
    _set(layer, "weight", w)
    if bias is not None:
        _set(layer, "bias", bias)
    return layer, y


def _gemm(g: GraphView, i: int):
    for name, ok, why in (("transA", 0, "nn.Linear reads its input as (N, in_features)"),
                          ("alpha", 1.0, ("nn.Linear computes x·Wᵀ + b; scaling the weights would change their float "
                                          "values"))):
        if g.attr(i, name, ok) != ok:
            raise UnsupportedError(f"{g.where(i)}: only {name}={ok} is supported ({why}), got {g.attr(i, name)}")
    b = g.weight(i, 1, "B", ndim=2)
    w = b if g.attr(i, "transB", 0) else b.T  # (out, in)
    c = g.weight(i, 2, "C", optional=True)
    if c is not None and g.attr(i, "beta", 1.0) != 1.0:
        raise UnsupportedError(f"{g.where(i)}: only beta=1 is supported with a bias C, got {g.attr(i, 'beta')}")
    return _linear(g, i, w, None if c is None else _vector(g, i, c, w.shape[0], "C"))


def _matmul(g: GraphView, i: int):
    return _linear(g, i, g.weight(i, 1, "B", ndim=2).T, None)


def _pads(g: GraphView, i: int, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from ``pads`` ([h_begin, w_begin, h_end, w_end]) or ``auto_pad``."""
    auto = g.attr(i, "auto_pad", "NOTSET")
    if auto == "NOTSET":
        p = [int(v) for v in g.attr(i, "pads", [0, 0, 0, 0])]
        if len(p) != 4:
            raise UnsupportedError(f"{g.where(i)}: pads must have 4 values (2-D), got {p}")
        return p[0], p[2], p[1], p[3]
    if auto == "VALID":
        return 0, 0, 0, 0
    dims = g.shapes.get(g.nodes[i].input[0])
    if auto not in ("SAME_UPPER", "SAME_LOWER") or dims is None or len(dims) != 4 or None in dims[2:]:
        raise UnsupportedError(f"{g.where(i)}: auto_pad={auto!r} needs the input's height and width, which "
                               f"shape inference did not find ({dims}); nn layers take fixed pads")
    out = []
    for size, k, s, d in zip(dims[2:], kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        out += [small, big] if auto == "SAME_UPPER" else [big, small]
    return tuple(out)


def _conv(g: GraphView, i: int):
    w = g.weight(i, 1, "W")
    if w.ndim != 4:
        raise UnsupportedError(f"{g.where(i)}: only 2-D convolution (a rank-4 weight) is supported (nn.Conv2d), "
                               f"got a weight of shape {w.shape}")
    b = g.weight(i, 2, "B", optional=True, ndim=1)
    if b is not None and b.shape != w.shape[:1]:
        raise UnsupportedError(f"{g.where(i)}: bias B must have one value per output channel {w.shape[:1]}, got "
                               f"shape {b.shape}")
    kernel = tuple(w.shape[2:])
    if tuple(g.attr(i, "kernel_shape", kernel)) != kernel:
        raise UnsupportedError(f"{g.where(i)}: kernel_shape {g.attr(i, 'kernel_shape')} differs from the weight's "
                               f"{kernel}")
    group = g.attr(i, "group", 1)
    strides, dilations = tuple(g.attr(i, "strides", (1, 1))), tuple(g.attr(i, "dilations", (1, 1)))
    pads = _pads(g, i, kernel, strides, dilations)
    layer = _make(g, i, nn.Conv2d, w.shape[1] * group, w.shape[0], kernel, stride=strides, padding=pads,
                  dilation=dilations, groups=group, bias=b is not None, rng=0)
    _set(layer, "weight", w)
    if b is not None:
        _set(layer, "bias", b)
    return layer, g.nodes[i].output[0]


def _batch_norm(g: GraphView, i: int):
    node = g.nodes[i]
    if g.attr(i, "training_mode", 0) or len([o for o in node.output if o]) > 1 or not g.attr(i, "spatial", 1):
        raise UnsupportedError(f"{g.where(i)}: only inference-mode batch normalization (training_mode=0, one "
                               f"output, spatial=1) is supported")
    scale, bias, mean, var = (g.weight(i, k, what, ndim=1) for k, what in
                              enumerate(("scale", "B", "input_mean", "input_var"), start=1))
    if not scale.shape == bias.shape == mean.shape == var.shape:
        raise UnsupportedError(f"{g.where(i)}: scale, B, input_mean and input_var must have one shape (C,), got "
                               f"{scale.shape}, {bias.shape}, {mean.shape}, {var.shape}")
    rank = g.rank(node.input[0])
    if rank not in (2, 3, 4):
        raise UnsupportedError(f"{g.where(i)}: the input must have rank 2, 3 (nn.BatchNorm1d) or 4 "
                               f"(nn.BatchNorm2d), got {'an unknown rank' if rank is None else f'rank {rank}'}")
    cls = nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d
    layer = _make(g, i, cls, scale.shape[0], eps=float(g.attr(i, "epsilon", 1e-5)))
    _set(layer, "weight", scale)
    _set(layer, "bias", bias)
    layer.running_mean, layer.running_var = mean.copy(), var.copy()
    return layer, node.output[0]


def _pool(g: GraphView, i: int):
    node = g.nodes[i]
    if len([o for o in node.output if o]) > 1:
        raise UnsupportedError(f"{g.where(i)}: the Indices output is not supported")
    kernel = tuple(g.attr(i, "kernel_shape"))
    if len(kernel) != 2:
        raise UnsupportedError(f"{g.where(i)}: only 2-D pooling is supported, got kernel_shape {kernel}")
    strides, dilations = tuple(g.attr(i, "strides", (1, 1))), tuple(g.attr(i, "dilations", (1, 1)))
    top, bottom, left, right = _pads(g, i, kernel, strides, dilations)
    if (top, left) != (bottom, right):
        raise UnsupportedError(f"{g.where(i)}: nn pooling pads both sides equally, got (top, bottom, left, right) "
                               f"= {(top, bottom, left, right)}")
    if g.attr(i, "ceil_mode", 0):
        dims = g.shapes.get(node.input[0])
        if dims is None or None in dims[2:] or any((n + 2 * p - d * (k - 1) - 1) % s for n, p, k, s, d in zip(
                dims[2:], (top, left), kernel, strides, dilations)):
            raise UnsupportedError(f"{g.where(i)}: ceil_mode=1 adds a partial window here (or the input size is "
                                   f"unknown: {dims}); nn pooling rounds the output size down")
    if node.op_type == "MaxPool":
        return _make(g, i, nn.MaxPool2d, kernel, strides, (top, left), dilations), node.output[0]
    if dilations != (1, 1):
        raise UnsupportedError(f"{g.where(i)}: nn.AvgPool2d has no dilation, got dilations {dilations}")
    include = bool(g.attr(i, "count_include_pad", 0))
    return _make(g, i, nn.AvgPool2d, kernel, strides, (top, left), count_include_pad=include), node.output[0]


def _global_average_pool(g: GraphView, i: int):
    x, y = g.nodes[i].input[0], g.nodes[i].output[0]
    if g.rank(x) not in (4, None):
        raise UnsupportedError(f"{g.where(i)}: only (N, C, H, W) inputs are supported, got rank {g.rank(x)}")
    j = g.reader(y)
    if j is not None and _flatten_refusal(g, j) is None:  # pool + flatten: GlobalAvgPool2d's own (N, C) output
        g.used.add(j)
        return nn.GlobalAvgPool2d(), g.nodes[j].output[0]
    return nn.GlobalAvgPool2d(keepdims=True), y


def _flatten_refusal(g: GraphView, i: int) -> str | None:
    """None if node ``i`` (Flatten or Reshape) flattens (N, d1, ...) to (N, d1·...), else why not."""
    node = g.nodes[i]
    dims = g.shapes.get(node.input[0])
    if node.op_type == "Flatten":
        axis = g.attr(i, "axis", 1)
        if axis < 0 and dims is not None:
            axis += len(dims)
        return None if axis == 1 else f"only axis=1 is supported (nn.Flatten keeps the batch), got axis {axis}"
    if node.op_type != "Reshape":
        return f"{node.op_type} is not a flatten"
    if g.opset < 5:
        target = list(g.attr(i, "shape"))
    elif node.input[1] not in g.consts:
        j = g.producer(node.input[1])
        return (f"its target shape {node.input[1]!r} is computed by {g.where(j)}, which is not evaluated at import "
                f"(only {', '.join(CONSTANT_OPS)} on constants are)")
    else:
        target = [int(v) if isinstance(v, (int, np.integer)) else v for v in np.asarray(g.consts[node.input[1]]).ravel()]
    if len(target) != 2:
        return f"only a flatten to (N, -1) or (-1, C·H·W) is supported, got target {target}"
    if not g.attr(i, "allowzero", 0):  # 0 copies the input's dimension
        target = [(BATCH if k == 0 else dims[k] if dims and len(dims) > k and dims[k] is not None else Sym("?"))
                  if isinstance(v, (int, np.integer)) and v == 0 else v for k, v in enumerate(target)]
    rest = math.prod(dims[1:]) if dims is not None and None not in dims[1:] else None
    t0, t1 = target
    same = t0 is BATCH or (dims is not None and isinstance(dims[0], int) and isinstance(t0, (int, np.integer))
                           and t0 == dims[0])
    size_ok = isinstance(t1, (int, np.integer)) and (t1 == -1 or (rest is not None and t1 == rest))
    if same and size_ok:
        return None
    if isinstance(t0, (int, np.integer)) and t0 == -1 and rest is not None and isinstance(t1, (int, np.integer)) \
            and t1 == rest:
        return None
    return (f"only a flatten to (N, -1) or (-1, C·H·W) is supported, got target {target} for an input of shape "
            f"{dims}")


def _flatten(g: GraphView, i: int):
    reason = _flatten_refusal(g, i)
    if reason is not None:
        raise UnsupportedError(f"{g.where(i)}: {reason}")
    return nn.Flatten(), g.nodes[i].output[0]


def _bound(g: GraphView, i: int, k: int, name: str):
    """A Clip bound as a float, or None if absent or infinite (±FLT_MAX: the opset < 11 defaults)."""
    if g.opset < 11:
        v = g.attr(i, name, None)
    else:
        c = g.weight(i, k, name, optional=True)
        if c is not None and c.size != 1:
            raise UnsupportedError(f"{g.where(i)}: {name} must be one value, got shape {c.shape}")
        v = None if c is None else float(c.reshape(()))
    return None if v is None or abs(v) >= _FLT_MAX else float(v)


def _clip(g: GraphView, i: int):
    lo, hi, y = _bound(g, i, 1, "min"), _bound(g, i, 2, "max"), g.nodes[i].output[0]
    if (lo, hi) == (0.0, 6.0):
        return nn.ReLU6(), y
    if lo == 0.0 and hi is None:
        return nn.ReLU(), y
    if lo is None or hi is None:
        raise UnsupportedError(f"{g.where(i)}: a Clip bounded on one side only (min={lo}, max={hi}) has no "
                               f"refquant.nn module (ReLU is min=0; ReLU6 is (0, 6); Hardtanh needs both bounds)")
    return _make(g, i, nn.Hardtanh, lo, hi), y


def _softmax(g: GraphView, i: int):
    x = g.nodes[i].input[0]
    axis, rank = g.attr(i, "axis", 1 if g.opset < 13 else -1), g.rank(x)
    if g.opset < 13 and not (axis == -1 or (rank is not None and axis == rank - 1)):
        raise UnsupportedError(f"{g.where(i)}: before opset 13 Softmax normalizes over the axes from {axis} on "
                               f"together; only the last axis is supported (input rank {rank})")
    return _make(g, i, nn.Softmax, axis), g.nodes[i].output[0]


def _dropout(g: GraphView, i: int):
    node = g.nodes[i]
    if len(node.output) > 1 and node.output[1] and (node.output[1] in g.consumers or node.output[1] == g.output):
        raise UnsupportedError(f"{g.where(i)}: its mask output is read; only inference Dropout is supported")
    if g.opset < 12:
        ratio = g.attr(i, "ratio", 0.5)
    else:
        r = g.const(i, 1, "ratio", optional=True)
        ratio = 0.5 if r is None else float(np.asarray(r).reshape(()))
        mode = g.const(i, 2, "training_mode", optional=True)
        if mode is not None and bool(np.asarray(mode).reshape(())):
            raise UnsupportedError(f"{g.where(i)}: training_mode=True is not supported (inference only)")
    return _make(g, i, nn.Dropout, float(ratio), rng=0), node.output[0]


def _simple(cls):
    return lambda g, i: (cls(), g.nodes[i].output[0])


def _refuse(reason: str):
    def convert_(g: GraphView, i: int):
        raise UnsupportedError(f"{g.where(i)}: {reason}")
    return convert_


#: ONNX op → converter ``(graph, node index) -> (module, output tensor)``.
LAYERS = {
    "AveragePool": _pool, "BatchNormalization": _batch_norm, "Clip": _clip, "Conv": _conv,
    "Dropout": _dropout, "Flatten": _flatten, "Gemm": _gemm, "GlobalAveragePool": _global_average_pool,
    "Identity": _simple(nn.Identity), "MatMul": _matmul, "MaxPool": _pool, "Relu": _simple(nn.ReLU),
    "Reshape": _flatten, "Sigmoid": _simple(nn.Sigmoid), "Softmax": _softmax, "Tanh": _simple(nn.Tanh),
}
#: Ops taken as a residual block's activation when they follow its Add.
ACTIVATIONS = ("Clip", "Relu", "Sigmoid", "Tanh")
#: Ops evaluated at import time when every input is a constant (shape arithmetic).
CONSTANT_OPS = ("Cast", "Concat", "Constant", "Gather", "Identity", "Shape", "Slice", "Squeeze", "Unsqueeze")
#: Every op the importer reads (Add: residual joins and the bias after MatMul / Gemm).
SUPPORTED_OPS = tuple(sorted(set(LAYERS) | {"Add", "Constant"})) + tuple(
    f"{op} (on constants)" for op in CONSTANT_OPS if op not in LAYERS and op != "Constant")

_REFUSED = {
    "Add": _refuse("adds a constant; refquant.nn has no module for that (only a constant vector added right "
                   "after a MatMul / Gemm is supported, as the Linear's bias)"),
    "Mul": _refuse("multiplies by a constant; refquant.nn has no elementwise-product module, "
                   "and folding a constant into the neighbouring layer's weights would change the file's float "
                   "values"),
    "Concat": _refuse("concatenates tensors; refquant.nn has no concatenation module"),
}


def convert(g: GraphView, i: int) -> tuple:
    """The module for node ``i`` and the tensor it (or the node merged into it) writes."""
    op = g.nodes[i].op_type
    fn = LAYERS.get(op) or _REFUSED.get(op)
    if fn is None:
        raise UnsupportedError(f"{g.where(i)}: op {op} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
    layer, y = fn(g, i)
    g.used.add(i)
    return layer, y
