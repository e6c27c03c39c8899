"""An ONNX graph as plain Python data, and the graph rewrites of ONNX Runtime that change arithmetic
(internal to :mod:`refquant.interop.onnx`).

:func:`read_graph` turns a loaded ``onnx.ModelProto`` into an :class:`OGraph`: nodes with decoded
attributes, constants (initializers and ``Constant`` nodes) as NumPy arrays, and each tensor's
element type. :func:`ort_rewrite` then applies, in ONNX Runtime's order, the transformers of its
default optimization level that decide which integer kernels run (ONNX Runtime 1.32,
``onnxruntime/core/optimizer/qdq_transformer``):

0. Constant folding of a QuantizeLinear of a constant, and ``CommonSubexpressionElimination`` (two
   nodes with the same op, inputs and attributes are one: the identical Q nodes of a "dedicated QDQ
   pair" model merge).
1. ``EnsureUniqueDQForNodeUnit``: a DequantizeLinear read by several nodes (or twice by one) is
   duplicated, one per reading edge.
2. ``QDQS8ToU8Transformer``: a QuantizeLinear → DequantizeLinear pair of int8 (the Q read by that one
   DQ only, both zero points constant int8 scalars, equal) becomes uint8 with zero point $Z + 128$,
   which gives the same real values; a lone DequantizeLinear of a constant int8 tensor not read by
   Conv, MatMul or Gemm becomes uint8 ($q + 128$) when a value lies outside $[-64, 64]$.
3. ``QDQSelectorActionTransformer`` (x86-64: int8 activations are not allowed into QLinearConv and
   QLinearMatMul): DQ → op → Q groups become ``QLinearConv``, ``QLinearMatMul``, ``QGemm``,
   ``QLinearAdd``, ``QLinearMul``, ``QLinearConcat``, ``QLinearAveragePool``,
   ``QLinearGlobalAveragePool``, ``QLinearLeakyRelu``, ``QLinearSigmoid``, ``QLinearSoftmax``; a
   Relu or Clip between the op and its Q is dropped when the Q's range lies inside it; Reshape,
   Transpose, Squeeze, Unsqueeze, Gather and MaxPool between a DQ and a Q of equal parameters run on
   the codes.

A group that fails a condition stays DQ → float op → Q, as in ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedError

__all__ = ["ONode", "OGraph", "read_graph", "ort_rewrite"]

_F32 = np.dtype(np.float32)
_U8, _S8 = np.dtype(np.uint8), np.dtype(np.int8)
_QUANTIZED_TYPES = (_U8, _S8)
#: ONNX ops that keep their input's element type.
_SAME_TYPE = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "MaxPool", "Gather",
              "Resize", "Concat", "Slice")


@dataclass
class ONode:
    """One ONNX node: ``op`` is ``domain::op_type`` for a non-default domain (``com.microsoft::QGemm``)."""

    name: str
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


@dataclass
class OGraph:
    """The graph: nodes in file order, constants, inputs (name → (dtype, shape)), outputs, opset."""

    nodes: list
    consts: dict
    inputs: dict
    outputs: list
    opset: int
    _types: dict = field(default_factory=dict)

    def producer(self, name: str):
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def consumers(self, name: str) -> list:
        return [n for n in self.nodes if name in n.inputs]

    def const(self, name: str):
        """The constant array named ``name``, or ``None`` (an empty name is an omitted input)."""
        return self.consts.get(name) if name else None

    def dtype(self, name: str) -> np.dtype:
        """The element type of tensor ``name`` (constants, inputs, Q and QLinear outputs, data movement)."""
        if name in self.consts:
            return self.consts[name].dtype
        if name in self.inputs:
            return self.inputs[name][0]
        if name in self._types:
            return self._types[name]
        n = self.producer(name)
        t = _F32
        if n is None:
            raise UnsupportedError(f"tensor {name!r} is read but neither a graph input, an initializer nor a node's "
                                   f"output (a missing initializer?)")
        op = n.op.split("::")[-1]
        if op == "QuantizeLinear":
            zp = self.const(n.inputs[2]) if len(n.inputs) > 2 else None
            t = zp.dtype if zp is not None else _U8
        elif op.startswith("QLinear") or op == "QGemm":
            y = {"QLinearConcat": 1, "QGemm": 8}.get(op, len(n.inputs) - 1 if op != "QLinearConv" else 7)
            zp = self.const(n.inputs[y]) if y < len(n.inputs) and n.inputs[y] else None
            t = zp.dtype if zp is not None else (self.dtype(n.inputs[2]) if op == "QLinearConcat" else _U8)
            if op == "QGemm" and (len(n.inputs) < 8 or not n.inputs[7]):
                t = _F32
        elif op in _SAME_TYPE and n.inputs:
            t = self.dtype(n.inputs[0])
        self._types[name] = t
        return t

    def replace_input(self, node: ONode, old: str, new: str) -> None:
        node.inputs = [new if i == old else i for i in node.inputs]


# --------------------------------------------------------------------------------------- reading


def _attr(a):
    from onnx import helper, numpy_helper

    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if hasattr(v, "dims"):  # a TensorProto
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def read_graph(proto) -> OGraph:
    """The :class:`OGraph` of a loaded ``ModelProto`` (one graph, no subgraphs)."""
    from onnx import numpy_helper

    g = proto.graph
    opset = max([o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] or [1])
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {a.name: _attr(a) for a in n.attribute}
        op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
        if op in ("com.microsoft::QuantizeLinear", "com.microsoft::DequantizeLinear"):
            op = n.op_type  # the contrib versions (UseQDQContribOps) compute the same
        if op == "Constant":
            if "value" not in attrs:
                raise UnsupportedError(f"node {n.name or i!r} (Constant): only a 'value' tensor is read, got "
                                       f"attributes {sorted(attrs)}")
            consts[n.output[0]] = np.asarray(attrs["value"])
            continue
        if any(a.g.node or a.graphs for a in n.attribute):
            raise UnsupportedError(f"node {n.name or i!r} ({n.op_type}) has a subgraph: control flow is not modelled")
        nodes.append(ONode(n.name or f"node{i}_{n.op_type}", op, list(n.input), list(n.output), attrs))
    inputs = {}
    for v in g.input:
        if v.name in consts:
            continue
        tt = v.type.tensor_type
        from onnx import helper

        dt = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        inputs[v.name] = (dt, shape)
    seen = set()
    for n in nodes:  # unique node names (the integer model needs them)
        base, k = n.name, 1
        while n.name in seen:
            n.name, k = f"{base}_{k}", k + 1
        seen.add(n.name)
    return OGraph(nodes, consts, inputs, [v.name for v in g.output], opset)


# --------------------------------------------------------------------------------------- ORT's rewrites


def _op(n: ONode) -> str:
    return n.op


def _unique_dq(g: OGraph) -> None:
    for n in list(g.nodes):
        if n.op != "DequantizeLinear":
            continue
        out = n.outputs[0]
        edges = [(r, k) for r in g.consumers(out) for k, i in enumerate(r.inputs) if i == out]
        keep = 0 if out in g.outputs else 1
        for j, (r, k) in enumerate(edges[keep:], start=1):
            dup = ONode(f"{n.name}/duplicated{j}", n.op, list(n.inputs), [f"{out}/duplicated{j}"], dict(n.attrs))
            g.nodes.insert(g.nodes.index(n) + j, dup)
            r.inputs[k] = dup.outputs[0]


def _attrs_key(attrs: dict):
    return tuple(sorted((k, repr(np.asarray(v).tolist()) if isinstance(v, (np.ndarray, list)) else repr(v))
                        for k, v in attrs.items()))


def _cse(g: OGraph) -> None:
    """``CommonSubexpressionElimination``: nodes with the same op, inputs and attributes are one node."""
    seen, rename = {}, {}
    for n in list(g.nodes):
        n.inputs = [rename.get(i, i) for i in n.inputs]
        if len(n.outputs) != 1 or n.outputs[0] in g.outputs:
            continue
        key = (n.op, tuple(n.inputs), _attrs_key(n.attrs))
        if key in seen:
            rename[n.outputs[0]] = seen[key].outputs[0]
            g.nodes.remove(n)
        else:
            seen[key] = n


def _fold_constant_q(g: OGraph) -> None:
    """Constant folding: a QuantizeLinear of a constant (``AddQDQPairToWeight``) becomes its codes."""
    from ..backends import onnxruntime as ort

    for n in list(g.nodes):
        if n.op != "QuantizeLinear" or any(i and g.const(i) is None for i in n.inputs):
            continue
        x, s = g.const(n.inputs[0]), g.const(n.inputs[1])
        z = g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
        g.consts[n.outputs[0]] = np.asarray(ort.quantize_linear(x, s, z, axis=int(n.attrs.get("axis", 1))))
        g.nodes.remove(n)


def _scalar_int8(g: OGraph, name: str):
    z = g.const(name)
    return z if z is not None and z.size == 1 and z.dtype == _S8 else None


def _s8_to_u8(g: OGraph) -> None:
    for q in list(g.nodes):
        if q.op == "QuantizeLinear":
            out = q.outputs[0]
            readers = g.consumers(out)
            if len(readers) != 1 or out in g.outputs or readers[0].op != "DequantizeLinear":
                continue
            dq = readers[0]
            if len(q.inputs) != 3 or len(dq.inputs) != 3:
                continue
            zq, zd = _scalar_int8(g, q.inputs[2]), _scalar_int8(g, dq.inputs[2])
            if zq is None or zd is None or int(zq.reshape(())) != int(zd.reshape(())):
                continue
            zname = f"{q.inputs[2]}/s8_to_u8"
            g.consts[zname] = np.asarray(int(zq.reshape(())) + 128, np.uint8).reshape(zq.shape)
            q.inputs[2] = dq.inputs[2] = zname
            g._types.pop(out, None)
        elif q.op == "DequantizeLinear":
            w = g.const(q.inputs[0])
            if w is None or w.dtype != _S8:
                continue
            if any(r.op in ("MatMul", "Conv", "Gemm") for r in g.consumers(q.outputs[0])):
                continue
            z = g.const(q.inputs[2]) if len(q.inputs) > 2 and q.inputs[2] else None
            if (len(q.inputs) > 2 and q.inputs[2] and z is None) or (z is not None and z.dtype != _S8):
                continue
            if not ((w < -64) | (w > 64)).any():
                continue
            wname, zname = f"{q.inputs[0]}/s8_to_u8", f"{q.inputs[0]}/zero_point_s8_to_u8"
            g.consts[wname] = (w.astype(np.int16) + 128).astype(np.uint8)
            zz = np.zeros((), np.int8) if z is None else z
            g.consts[zname] = (zz.astype(np.int16) + 128).astype(np.uint8)
            q.inputs = [wname, q.inputs[1], zname]


_UNARY = {"AveragePool": "QLinearAveragePool", "LeakyRelu": "QLinearLeakyRelu",
          "GlobalAveragePool": "QLinearGlobalAveragePool", "Sigmoid": "QLinearSigmoid", "Softmax": "QLinearSoftmax"}
_BINARY = {"Add": "QLinearAdd", "Mul": "QLinearMul"}
_DROP = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Gather", "MaxPool")
_TYPE_RANGE = {_U8: (0, 255), _S8: (-128, 127)}


def _q_params(g: OGraph, q: ONode):
    """(scale float32 scalar, zero point int, dtype) of a Q/DQ node with constant scalar parameters, else None."""
    s = g.const(q.inputs[1]) if len(q.inputs) > 1 else None
    zname = q.inputs[2] if len(q.inputs) > 2 else ""
    z = g.const(zname) if zname else None
    if s is None or s.size != 1 or (zname and z is None) or (z is not None and z.size != 1):
        return None
    dt = z.dtype if z is not None else np.dtype(_U8)
    return np.float32(s.reshape(())), (0 if z is None else int(z.reshape(()))), dt


def _clip_redundant(g: OGraph, clip: ONode, q: ONode) -> bool:
    p = _q_params(g, q)
    if p is None or p[2] not in _TYPE_RANGE:
        return False
    scale, zp, dt = p
    lo_t, hi_t = _TYPE_RANGE[dt]
    if clip.op == "Relu":
        return zp == lo_t
    lo, hi = _clip_bounds(g, clip)
    if lo is None or hi is None:
        return False
    qlo = int(np.rint(np.float32(lo) / scale)) + zp
    qhi = int(np.rint(np.float32(hi) / scale)) + zp
    return qlo <= lo_t and qhi >= hi_t


def _clip_bounds(g: OGraph, clip: ONode):
    """Clip's constant (min, max) as floats (``-inf``/``inf`` when omitted); ``(None, None)`` if not constant."""
    if "min" in clip.attrs or "max" in clip.attrs or len(clip.inputs) == 1:
        return float(clip.attrs.get("min", -np.inf)), float(clip.attrs.get("max", np.inf))
    out = []
    for i in (1, 2):
        name = clip.inputs[i] if len(clip.inputs) > i else ""
        if not name:
            out.append(-np.inf if i == 1 else np.inf)
            continue
        v = g.const(name)
        if v is None:
            return None, None
        out.append(float(v.reshape(())))
    return tuple(out)


def _dq_parent(g: OGraph, name: str, target: ONode):
    """The DQ writing ``name`` if it is read by ``target`` only and is not a graph output."""
    p = g.producer(name) if name else None
    if p is None or p.op != "DequantizeLinear" or name in g.outputs:
        return None
    return p if all(r is target for r in g.consumers(name)) else None


def _select(g: OGraph, n: ONode, n_dq):
    """ONNX Runtime's ``GetQDQSelection`` + ``CheckQDQNodes``: (dq nodes, q node or None, clip or None), or None."""
    actual = [i for i in n.inputs if i]
    want = len(actual) if n_dq is None else n_dq
    dqs = [_dq_parent(g, i, n) for i in actual]
    found = [d for d in dqs if d is not None]
    if len(found) != want or (n_dq is None and None in dqs) or (n_dq is not None and dqs[0] is None):
        return None
    readers = g.consumers(n.outputs[0])
    clip = None
    if len(readers) == 1 and readers[0].op in ("Relu", "Clip"):
        c = readers[0]
        if len(g.consumers(c.outputs[0])) == 1 and c.outputs[0] not in g.outputs:
            clip = c
    tail = g.consumers((clip or n).outputs[0])
    qs = [r for r in tail if r.op == "QuantizeLinear"]
    if clip is not None and (len(qs) != 1 or not _clip_redundant(g, clip, qs[0])):
        return None
    if qs and (len(qs) != len(readers if clip is None else tail) or len(qs) != 1 or n.outputs[0] in g.outputs):
        return None
    return found if n_dq is None else found[:n_dq], (qs[0] if qs else None), clip


def _bias_scale_ok(g: OGraph, dqs) -> bool:
    """ONNX Runtime fuses a Conv / Gemm with a DQ bias only if the bias scale is close to $S_x S_w$.

    Measured on ONNX Runtime 1.32 (the group stays float otherwise):
    $|S_b - S_x S_w| \\le 10^{-6} + 10^{-2} |S_x S_w|$ per output channel.
    """
    if len(dqs) < 3:
        return True
    sx, sw, sb = (g.const(d.inputs[1]) for d in dqs[:3])
    if sx is None or sw is None or sb is None:
        return False
    e = np.float64(sx.reshape(-1)[0]) * np.asarray(sw, np.float64).reshape(-1)
    b = np.asarray(sb, np.float64).reshape(-1)
    if b.size not in (1, e.size) and e.size != 1:
        return False
    return bool(np.all(np.abs(b - e) <= 1e-6 + 1e-2 * np.abs(e)))


def _in_type(g: OGraph, dq: ONode) -> np.dtype:
    return g.dtype(dq.inputs[0])


def _qdq_inputs(dq: ONode) -> list:
    return [dq.inputs[0], dq.inputs[1], dq.inputs[2] if len(dq.inputs) > 2 else ""]


def _has_16bit(g: OGraph, n: ONode) -> bool:
    """A DQ input or Q output of 16 bits: the CPU selectors (but the data-movement one) refuse those groups."""
    dqs = [g.producer(i) for i in n.inputs if i]
    qs = [r for r in g.consumers(n.outputs[0]) if r.op == "QuantizeLinear"] if n.outputs else []
    types = [g.dtype(d.inputs[0]) for d in dqs if d is not None and d.op == "DequantizeLinear"]
    types += [g.dtype(q.outputs[0]) for q in qs]
    return any(t.itemsize == 2 and t.kind in "iu" for t in types)


def _fuse_one(g: OGraph, n: ONode):
    """The QOperator node ONNX Runtime makes of ``n``'s QDQ group, with the nodes it replaces, or None."""
    op = n.op
    if op not in _DROP and _has_16bit(g, n):
        return None
    if op in _UNARY:
        sel = _select(g, n, 1)
        if sel is None or sel[1] is None or _in_type(g, sel[0][0]) != g.dtype(sel[1].outputs[0]):
            return None
        (dq,), q, clip = sel
        attrs = dict(n.attrs)
        if op == "Softmax":
            attrs["opset"] = g.opset
        new = ONode(n.name, f"com.microsoft::{_UNARY[op]}", _qdq_inputs(dq) + q.inputs[1:3], [q.outputs[0]], attrs)
        return new, [dq, q] + ([clip] if clip else [])
    if op in _BINARY:
        sel = _select(g, n, None)
        if sel is None or sel[1] is None or len(sel[0]) != 2:
            return None
        dqs, q, clip = sel
        if not (_in_type(g, dqs[0]) == _in_type(g, dqs[1]) == g.dtype(q.outputs[0])):
            return None
        new = ONode(n.name, f"com.microsoft::{_BINARY[op]}", _qdq_inputs(dqs[0]) + _qdq_inputs(dqs[1]) + q.inputs[1:3],
                    [q.outputs[0]], dict(n.attrs))
        return new, dqs + [q] + ([clip] if clip else [])
    if op == "Concat":
        sel = _select(g, n, None)
        if sel is None or sel[1] is None:
            return None
        dqs, q, clip = sel
        if any(_in_type(g, d) != g.dtype(q.outputs[0]) for d in dqs):
            return None
        ins = q.inputs[1:3]
        for d in dqs:
            ins += _qdq_inputs(d)
        return ONode(n.name, "com.microsoft::QLinearConcat", ins, [q.outputs[0]], dict(n.attrs)), dqs + [q] + (
            [clip] if clip else [])
    if op in ("Conv", "MatMul"):
        sel = _select(g, n, None)
        if sel is None or sel[1] is None or len(sel[0]) < 2:
            return None
        dqs, q, clip = sel
        tx, ty = _in_type(g, dqs[0]), g.dtype(q.outputs[0])
        if tx != ty or tx == _S8:  # x86-64: int8 activations are not allowed (QDQIsInt8Allowed is false)
            return None
        if op == "Conv":
            if len(dqs) == 3 and (_in_type(g, dqs[2]) != np.dtype(np.int32) or not _bias_scale_ok(g, dqs)):
                return None
            ins = _qdq_inputs(dqs[0]) + _qdq_inputs(dqs[1]) + q.inputs[1:3] + ([dqs[2].inputs[0]] if len(dqs) == 3 else [])
            return ONode(n.name, "QLinearConv", ins, [q.outputs[0]], dict(n.attrs)), dqs + [q] + ([clip] if clip else [])
        ins = _qdq_inputs(dqs[0]) + _qdq_inputs(dqs[1]) + q.inputs[1:3]
        return ONode(n.name, "QLinearMatMul", ins, [q.outputs[0]], {}), dqs + [q] + ([clip] if clip else [])
    if op == "Gemm":
        sel = _select(g, n, None)
        if sel is None or len(sel[0]) < 2:
            return None
        dqs, q, clip = sel
        ta, tb = _in_type(g, dqs[0]), _in_type(g, dqs[1])
        if (ta == _S8 and tb != _S8) or (q is not None and g.dtype(q.outputs[0]) != ta):
            return None
        if float(n.attrs.get("alpha", 1.0)) != 1.0:  # measured: ORT leaves a QDQ Gemm with alpha != 1 in float
            return None
        if len(dqs) == 3 and (float(n.attrs.get("beta", 1.0)) != 1.0 or _in_type(g, dqs[2]) != np.dtype(np.int32)
                              or not _bias_scale_ok(g, dqs)):
            return None
        ins = _qdq_inputs(dqs[0]) + _qdq_inputs(dqs[1]) + [dqs[2].inputs[0] if len(dqs) == 3 else ""]
        ins += q.inputs[1:3] if q is not None else []
        attrs = {k: n.attrs[k] for k in ("alpha", "transA", "transB") if k in n.attrs}
        out = q.outputs[0] if q is not None else n.outputs[0]
        return ONode(n.name, "com.microsoft::QGemm", ins, [out], attrs), dqs + ([q] if q else []) + ([clip] if clip else [])
    if op in _DROP:
        sel = _select(g, n, 1)
        if sel is None or sel[1] is None or sel[2] is not None:
            return None
        (dq,), q, _ = sel
        pd, pq = _q_params(g, dq), _q_params(g, q)
        if pd is None or pq is None or pd != pq or pd[0] <= 0 or _in_type(g, dq) != g.dtype(q.outputs[0]):
            return None
        return ONode(n.name, op, [dq.inputs[0]] + n.inputs[1:], [q.outputs[0]], dict(n.attrs)), [dq, q]
    return None


def _fuse(g: OGraph) -> None:
    i = 0
    while i < len(g.nodes):
        n = g.nodes[i]
        made = _fuse_one(g, n)
        if made is not None:
            new, gone = made
            g.nodes[i] = new
            for r in dict.fromkeys(id(r) for r in gone):
                g.nodes.remove(next(x for x in g.nodes if id(x) == r))
            g._types.clear()
            i = g.nodes.index(new)
        i += 1


def ort_rewrite(g: OGraph) -> OGraph:
    """Apply ONNX Runtime's arithmetic-changing rewrites (module docstring) to ``g`` in place."""
    _fold_constant_q(g)
    _cse(g)
    _unique_dq(g)
    _s8_to_u8(g)
    _fuse(g)
    return g
