"""Nodes and whole models of a :class:`~refquant.qmodel.QuantizedModel` as call records of
``_variants_calls``, so the explainer can run them under other arithmetics.

* :func:`node_call` — one node with given input arrays: a ``quantize``, ``dequantize``, integer
  ``linear`` / ``conv2d`` or ``add`` node becomes the same record a face op does (so every candidate
  of ``_variants`` applies); any other node a :class:`NodeCall`, which runs
  the node as the model does (:func:`refquant.qmodel.nodes.run_node`) under each profile.
* :class:`ModelCall` — the whole model under one profile, node by node, each layer's bias
  converted to the profile's convention (``bias_for``).

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..qmodel.nodes import run_node
from . import _variants_words as W
from ._variants_calls import AddCall, DequantizeCall, QuantizeCall
from ._variants_layer import LayerCall

__all__ = ["ModelCall", "NodeCall", "node_call"]

_F32 = np.float32


@dataclass
class NodeCall:
    """A node refquant has no finer candidates for: it runs under each profile as the model runs it."""

    node: object
    args: list
    tensors: dict
    kind = "node"

    def run(self, variant) -> np.ndarray:
        return run_node(self.node, self.args, self.tensors, variant.profile, {})

    def facts(self, variant) -> dict:
        return {"backend": W.backend_words(variant.profile)}

    def lsb(self, shape):
        return _lsb([self.node], self.tensors, self.node.output)


def _conv_kwargs(node) -> dict:
    a = node.attrs
    pads = a.get("padding", (0, 0, 0, 0))
    depthwise = a.get("w_layout") == "1HWO"
    return dict(strides=tuple(a.get("stride", (1, 1))), dilations=tuple(a.get("dilation", (1, 1))),
                pads=pads if isinstance(pads, str) else tuple(pads), groups=None if depthwise else int(a.get("groups", 1)),
                layout=a.get("layout", "NCHW"), w_layout=a.get("w_layout") or ("OIHW" if a.get("layout", "NCHW") == "NCHW"
                                                                             else "OHWI"),
                family=a.get("family"))


def _layer_call(node, args, tensors):
    x, y = tensors[node.inputs[0]], tensors[node.output]
    p = node.params
    ws = p["weight_scale"]
    if ws.ndim > 1:  # per group of input channels: weight-only layers, not an integer layer
        return None
    w, xin = p["weight"], args[0]
    restore = None
    if node.op == "linear" and xin.ndim != 2:
        shape = xin.shape[:-1] + (w.shape[0],)
        xin = xin.reshape(-1, w.shape[1])
        restore = (lambda out: out.reshape(shape)) if node.attrs.get("keep_num_dims") else None
    wz = p.get("weight_zero_point", np.int64(0))
    return LayerCall(xin, _F32(x.scale), x.zero_point, w, ws.astype(_F32), wz, p.get("bias"), _F32(y.scale),
                     y.zero_point, node.attrs.get("activation"), np.dtype(y.dtype),
                     _conv_kwargs(node) if node.op == "conv2d" else None, restore)


def node_call(node, args: list, tensors: dict):
    """The call record of ``node`` (a :class:`~refquant.qmodel.Node`) on the input arrays ``args``."""
    first = tensors[node.inputs[0]] if node.inputs else None
    integer_in = first is not None and first.is_integer
    call = None
    if node.op == "quantize":
        call = QuantizeCall(np.asarray(args[0], _F32), tensors[node.output].qparams)
    elif node.op == "dequantize":
        call = DequantizeCall(args[0], first.qparams, np.float32)
    elif node.op in ("linear", "conv2d") and integer_in:
        call = _layer_call(node, args, tensors)
    elif node.op == "add" and integer_in:
        b, y = tensors[node.inputs[1]], tensors[node.output]
        call = AddCall(args[0], _F32(first.scale), first.zero_point, args[1], _F32(b.scale), b.zero_point,
                       _F32(y.scale), y.zero_point, node.attrs.get("activation"))
    return call if call is not None else NodeCall(node, args, tensors)


@dataclass
class ModelCall:
    """A whole model on its input tensors ``feeds`` (name -> array, as the model's ``trace`` holds
    them): every node, in order, under one candidate profile; the model's first output."""

    model: object
    feeds: dict
    kind = "model"

    def run(self, variant) -> np.ndarray:
        m = self.model
        env = dict(self.feeds)
        for node in m.nodes:
            args = [env[i] for i in node.inputs]
            call = node_call(node, args, m.tensors)
            env[node.output] = run_node(node, args, m.tensors, variant.profile, {}) if isinstance(call, NodeCall) \
                else call.run(variant)
        return env[m.outputs[0]]

    def facts(self, variant) -> dict:
        return {"backend": W.backend_words(variant.profile)}

    def lsb(self, shape):
        return _lsb(self.model.nodes, self.model.tensors, self.model.outputs[0])


def _lsb(nodes, tensors, name: str):
    """One LSB of tensor ``name``: 1 for codes, the input scale of the ``dequantize`` node that
    writes a float tensor; 1.0 (absolute units) for a float tensor without one."""
    if tensors[name].is_integer:
        return 1
    producer = next((n for n in nodes if n.output == name), None)
    if producer is not None and producer.op == "dequantize":
        return np.float32(tensors[producer.inputs[0]].scale)
    return np.float32(1)
