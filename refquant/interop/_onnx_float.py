"""A float ONNX model as a ``refquant.nn`` model: the graph read as a chain of layers with residual blocks.

The graph is read in three steps:

1. **Constants.** Initializers, ``Constant`` nodes, and the small integer programs exporters write
   to compute a shape (``Shape → Gather → Unsqueeze → Concat``, what ``torch`` emits for
   ``x.view(x.size(0), -1)``) are evaluated once, here; ``Shape`` of a tensor gives its shape from
   ONNX shape inference with the batch dimension as the symbol ``N``.
2. **Structure.** From the graph input, each tensor read by one node continues the chain; a tensor
   read by two nodes opens a fork whose two branches must meet again in one ``Add``: that block is
   an :class:`~refquant.nn.Residual` (an empty branch is its identity shortcut; a ``Relu`` / ``Clip``
   / ``Sigmoid`` / ``Tanh`` right after the ``Add`` is its activation). Anything else (several inputs
   or outputs, branches that do not rejoin, a tensor read by three nodes) is refused.
3. **Layers.** Each node becomes one module (the table in ``_onnx_float_layers``); a
   ``MatMul`` with the constant ``Add`` after it becomes one ``Linear``, and a
   ``GlobalAveragePool`` with the ``Flatten`` / ``Reshape`` after it one ``GlobalAvgPool2d``.

Weights keep the file's float32 values exactly; the model is returned in evaluation mode.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .._validate import describe
from ..errors import QuantizationTypeError, UnsupportedError
from ._onnx_float_layers import (
    ACTIVATIONS,
    BATCH,
    CONSTANT_OPS,
    SUPPORTED_OPS,
    GraphView,
    Sym,
    convert,
)

__all__ = ["SUPPORTED_OPS", "build_float_model"]


_JOIN_REASONS = {
    "Concat": "refquant.nn has no module that concatenates branches (nn.Residual joins two branches by "
              "addition only)",
    "Mul": "refquant.nn has no module that multiplies two tensors (a gate such as x·sigmoid(x)); "
           "nn.Residual joins two branches by addition only",
}


def build_float_model(proto) -> nn.Sequential:
    """The ``refquant.nn`` model that computes what the float ONNX model ``proto`` computes.

    Args:
        proto: an ``onnx.ModelProto`` with one float32 input (NCHW for images, or ``(N, K)``) and one
            output, made of the ops in :data:`SUPPORTED_OPS`.

    Returns:
        A :class:`~refquant.nn.Sequential` in evaluation mode whose children follow the graph's
        nodes in order (residual blocks as :class:`~refquant.nn.Residual`); float32 weights equal
        to the file's initializers.

    Raises:
        UnsupportedError: an op, an attribute value or a graph shape refquant.nn cannot express,
            naming the node (its name and index) and the op.
        QuantizationTypeError: ``proto`` is not an ``onnx.ModelProto``.
    """
    import onnx

    if not isinstance(proto, onnx.ModelProto):
        raise QuantizationTypeError(f"proto must be an onnx.ModelProto, got {describe(proto)}")
    g = _Graph(proto)
    layers, _, join = g.chain(g.input)
    if join is not None:
        raise UnsupportedError(f"{g.where(join)} joins tensors that do not fork from one tensor; "
                               f"only residual blocks (two branches of one tensor, rejoined by Add) are supported")
    g.check_all_used()
    model = nn.Sequential(*layers)
    model.eval()
    return model


class _Graph(GraphView):
    """The graph's constants, inferred shapes and dynamic edges, and the walk that builds the modules."""

    def __init__(self, proto):
        import onnx
        from onnx import numpy_helper

        opsets = {o.domain: o.version for o in proto.opset_import}
        if not ({"", "ai.onnx"} & set(opsets)):
            raise UnsupportedError("the model imports no opset of the default ONNX domain")
        super().__init__(proto.graph, opsets.get("", opsets.get("ai.onnx")))
        try:
            inferred = onnx.shape_inference.infer_shapes(proto).graph
        except Exception:  # noqa: BLE001 - a graph shape inference cannot read: go on with the declared shapes
            inferred = proto.graph
        for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
            self.shapes[vi.name] = _dims(vi)
        self.consts = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        outputs = list(self.graph.output)
        if len(inputs) != 1 or len(outputs) != 1:
            raise UnsupportedError(f"the graph must have one input and one output (a chain of layers), got "
                                   f"inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}")
        for what, vi in (("input", inputs[0]), ("output", outputs[0])):
            elem = vi.type.tensor_type.elem_type
            if elem != onnx.TensorProto.FLOAT:
                raise UnsupportedError(f"the graph {what} {vi.name!r} must be float32, got "
                                       f"{onnx.TensorProto.DataType.Name(elem)}")
        self.input, self.output = inputs[0].name, outputs[0].name
        self.static: set[int] = set()
        for i, node in enumerate(self.nodes):
            if node.domain not in ("", "ai.onnx"):
                raise UnsupportedError(f"{self.where(i)} is in domain {node.domain!r}; only the default ONNX "
                                       f"domain is supported; supported ops: {', '.join(SUPPORTED_OPS)}")
            if self._fold(i):
                self.static.add(i)
        if self.output in self.consts:
            raise UnsupportedError(f"the graph output {self.output!r} is a constant: it does not depend on the input")
        self.live.add(self.input)  # the tensors computed from the input, and the nodes reading them
        for i, node in enumerate(self.nodes):
            if i not in self.static and any(n in self.live for n in node.input):
                self.live.update(n for n in node.output if n)
                for name in node.input:
                    if name in self.live:
                        self.consumers.setdefault(name, []).append(i)

    # ---- step 1: constants ---------------------------------------------------------------
    def _fold(self, i: int) -> bool:
        """Evaluate node ``i`` if it computes a constant this module knows; True if it did."""
        node = self.nodes[i]
        op, ins = node.op_type, [n for n in node.input if n]
        if op not in CONSTANT_OPS or (op != "Shape" and not all(n in self.consts for n in ins)):
            return False
        if op == "Constant":
            value = self._constant_value(i)
        elif op == "Shape":
            value = self._shape_value(i)
        else:
            try:
                value = self._evaluate(i, [self.consts[n] for n in ins])
            except (IndexError, ValueError, TypeError) as e:  # a malformed model: say which node
                raise UnsupportedError(f"{self.where(i)} cannot be evaluated on its constant inputs: {e}") from e
            if not isinstance(value, np.ndarray):  # one element taken out of a shape
                value = np.array(value, dtype=object if isinstance(value, Sym) else None)
        self.consts[node.output[0]] = value
        return True

    def _constant_value(self, i: int) -> np.ndarray:
        from onnx import helper, numpy_helper

        attrs = self.nodes[i].attribute
        if len(attrs) != 1 or attrs[0].name not in ("value", "value_float", "value_floats", "value_int",
                                                    "value_ints"):
            raise UnsupportedError(f"{self.where(i)}: only numeric tensor constants are supported, got attribute(s) "
                                   f"{[a.name for a in attrs]}")
        if attrs[0].name == "value":
            return numpy_helper.to_array(attrs[0].t)
        v = helper.get_attribute_value(attrs[0])
        return np.asarray(v, np.float32 if "float" in attrs[0].name else np.int64)

    def _shape_value(self, i: int) -> np.ndarray:
        node = self.nodes[i]
        name = node.input[0]
        dims = self.shapes.get(name) if name not in self.consts else self.consts[name].shape
        if dims is None:
            raise UnsupportedError(f"{self.where(i)}: the rank of its input {name!r} is unknown (shape inference "
                                   f"found none), so the shape it computes cannot be resolved at import")
        dims = [BATCH if k == 0 and name not in self.consts else (d if isinstance(d, int) else Sym(f"{name}[{k}]"))
                for k, d in enumerate(dims)]
        start, end = self.attr(i, "start", 0), self.attr(i, "end", None)
        return np.array(dims[start:end], dtype=object)

    def _evaluate(self, i: int, xs: list[np.ndarray]) -> np.ndarray:
        """``Cast``, ``Concat``, ``Gather``, ``Identity``, ``Slice``, ``Squeeze``, ``Unsqueeze`` on constants."""
        from onnx import helper

        op, x = self.nodes[i].op_type, xs[0]
        if op == "Identity":
            return x
        if op == "Cast":
            to = helper.tensor_dtype_to_np_dtype(self.attr(i, "to"))
            if x.dtype == object and to.kind != "i":
                raise UnsupportedError(f"{self.where(i)} casts the shape {list(x)} to {to}; only integer casts of a "
                                       f"shape with the batch N in it are evaluated")
            return x if x.dtype == object else x.astype(to)
        if op == "Concat":
            return np.concatenate([np.atleast_1d(a) for a in xs], axis=self.attr(i, "axis"))
        if op == "Gather":
            return np.take(x, np.asarray(xs[1], np.int64), axis=self.attr(i, "axis", 0))
        axes = self._axes(i, xs)
        if op == "Unsqueeze":
            out = x
            for a in sorted(int(a) % (x.ndim + len(axes)) for a in axes):
                out = np.expand_dims(out, a)
            return out
        if op == "Squeeze":
            return np.squeeze(x, axis=None if axes is None else tuple(int(a) for a in axes))
        starts, ends = (xs[1], xs[2]) if self.opset >= 10 else (self.attr(i, "starts"), self.attr(i, "ends"))
        steps = xs[4] if len(xs) > 4 else np.ones(len(starts), np.int64)
        axes = range(len(starts)) if axes is None else axes
        index = [slice(None)] * x.ndim
        for a, s, e, st in zip(axes, starts, ends, steps):
            if st < 1:
                raise UnsupportedError(f"{self.where(i)}: only positive Slice steps are supported, got {int(st)}")
            index[int(a)] = slice(int(s), int(e), int(st))
        return x[tuple(index)]

    def _axes(self, i: int, xs: list[np.ndarray]):
        op = self.nodes[i].op_type
        attr_until = 10 if op == "Slice" else 13  # axes became an input in opset 10 (Slice) / 13 (the others)
        if self.opset < attr_until:
            return self.attr(i, "axes", None)
        k = 3 if op == "Slice" else 1
        return None if len(xs) <= k else [int(a) for a in np.atleast_1d(xs[k])]

    # ---- step 2: structure ---------------------------------------------------------------
    def chain(self, t: str, start: int | None = None) -> tuple[list, str, int | None]:
        """The modules from tensor ``t`` (through node ``start`` first, if given) to the graph output
        (join ``None``) or to a node reading two dynamic tensors (its index returned as the join)."""
        layers = []
        while True:
            readers = [start] if start is not None else self.consumers.get(t, [])
            start = None
            if t == self.output:
                if readers:
                    raise UnsupportedError(f"the graph output {t!r} is also read by {self.where(readers[0])}; "
                                           f"only a chain ending in the output is supported")
                return layers, t, None
            if not readers:
                raise UnsupportedError(f"tensor {t!r} written by {self.where(self.producer(t))} is neither read nor "
                                       f"the graph output: the graph has a second, dead-end branch")
            if len(readers) == 1:
                if self.is_join(readers[0]):
                    return layers, t, readers[0]
                layer, t = convert(self, readers[0])
                layers.append(layer)
            elif len(readers) == 2:
                layer, t = self._residual(t, readers)
                layers.append(layer)
            else:
                raise UnsupportedError(f"tensor {t!r} is read by {len(readers)} nodes "
                                       f"({', '.join(self.where(r) for r in readers)}); only residual blocks "
                                       f"(two branches rejoined by Add) are supported")

    def _residual(self, t: str, readers: list[int]):
        if readers[0] == readers[1]:
            raise UnsupportedError(f"{self.where(readers[0])} reads tensor {t!r} twice; only residual blocks "
                                   f"(two different branches rejoined by Add) are supported")
        branches = [([], t, r) if self.is_join(r) else self.chain(t, r) for r in readers]
        joins = [j for _, _, j in branches]
        if None in joins or joins[0] != joins[1]:
            raise UnsupportedError(f"the two branches that fork from tensor {t!r} (at {self.where(readers[0])} and "
                                   f"{self.where(readers[1])}) do not rejoin in one Add node; only residual blocks "
                                   f"are supported")
        j = joins[0]
        node = self.nodes[j]
        if node.op_type != "Add":
            reason = _JOIN_REASONS.get(node.op_type, "only Add joins branches (nn.Residual)")
            raise UnsupportedError(f"{self.where(j)} joins two branches: {reason}")
        if len(node.input) != 2 or branches[0][1] == branches[1][1]:
            raise UnsupportedError(f"{self.where(j)} must add the ends of two different branches, got inputs "
                                   f"{list(node.input)}")
        self.check_same_shape(j)
        self.used.add(j)
        (la, ea, _), (lb, eb, _) = branches
        if len(lb) > len(la) or (len(lb) == len(la) and list(node.input).index(eb) == 0):
            (la, ea), (lb, eb) = (lb, eb), (la, ea)  # the longer branch is the body
        shortcut = nn.Sequential(*lb) if lb else None
        y = node.output[0]
        activation = None
        readers = self.consumers.get(y, [])
        if y != self.output and len(readers) == 1 and self.nodes[readers[0]].op_type in ACTIVATIONS:
            activation, y = convert(self, readers[0])
        return nn.Residual(nn.Sequential(*la), shortcut, activation), y

    def check_all_used(self) -> None:
        """Every node computed from the input became a module (a node reading constants only, with an op not
        evaluated here, is dead code: a reader of its output would have been refused)."""
        for i, node in enumerate(self.nodes):
            if i not in self.used and i not in self.static and any(n in self.live for n in node.input):
                raise UnsupportedError(f"{self.where(i)} is not on the chain from the graph input to its output")


def _dims(vi) -> tuple | None:
    """A value_info's shape: ints for known dimensions, None for the others; None if no rank is known."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
