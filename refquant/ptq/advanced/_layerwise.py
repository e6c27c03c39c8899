"""Layer by layer over an integer model and the float model it was made from (internal).

Every method here takes a :class:`~refquant.qmodel.QuantizedModel` made by a flow (its RTN codes),
the float model it was made from, and calibration data, and returns a new model whose ``linear``
and ``conv2d`` nodes keep their scales, zero points and attributes but hold other codes (or another
bias). :class:`Session` pairs each such node with the layer of the same name in the float model,
prepared as the flows prepare it (BatchNorm folded, names kept), and collects the layer's
:class:`~refquant.ptq.advanced.moments.LayerMoments`: the quantized model's input to the node
(from the model as it is *now*, earlier layers already rewritten: the "asymmetric" setting of
AdaRound and GPTQ's sequential mode) and the float model's input to the same layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _validate as V
from ... import nn, passes
from ...errors import QuantizationTypeError, QuantizationValueError, RefquantError, ShapeError, UnsupportedError
from ...qmodel import Node, QuantizedModel
from ..lower import bias_dtype
from ..recipes import quantize_bias, recipe_for
from ..trace import Step, float_outputs, trace
from ._segments import SegmentRunner
from .grid import WeightGrid, check_qmodel, grid_of_node
from .moments import LayerMoments, layer_columns

__all__ = ["Layer", "Session", "replace_params", "lowered_bias"]

_F32, _F64 = np.float32, np.float64
_BATCH = 256


@dataclass
class Layer:
    """One ``linear`` / ``conv2d`` node with integer weights and its float layer.

    Attributes:
        name: The node's (and the layer's) name.
        step: The float model's traced step (``step.layer`` is the folded layer).
        weight: ``(O, K)`` float64, the float (folded) weight flattened.
        bias: ``(O,)`` float64 float bias (zeros for a layer without one).
        groups: The convolution's groups (1 for a Linear).
        grid: The node's :class:`~refquant.ptq.advanced.grid.WeightGrid`.
    """

    name: str
    step: Step
    weight: np.ndarray
    bias: np.ndarray
    groups: int
    grid: WeightGrid

    def rows(self, g: int) -> slice:
        """The output channels (rows of ``weight``) of group ``g``."""
        og = self.weight.shape[0] // self.groups
        return slice(g * og, (g + 1) * og)


def _fuse(qmodel: QuantizedModel) -> tuple:
    """The fusion the flow that made ``qmodel`` traced with (so its tensor names match the trace)."""
    if qmodel.metadata.get("flow") == "weight_only":
        return ("RELU", "RELU6")
    return recipe_for(qmodel.profile).fuse


def _calibration_array(data) -> np.ndarray:
    x = V.as_float_array(data, "calibration_data")
    if x.ndim < 2 or x.shape[0] == 0:
        raise QuantizationValueError(f"calibration_data must be an (N, ...) array with at least one sample, "
                                     f"got shape {x.shape}")
    x = x.astype(_F32)
    if not np.all(np.isfinite(x)):
        raise QuantizationValueError("calibration_data must be finite (in float32), got NaN or Inf")
    return x


def _layer(qmodel: QuantizedModel, node: Node, step: Step | None) -> Layer:
    q = node.params["weight"]
    if step is None or step.op != node.op or tuple(step.layer.weight.shape) != q.shape:
        raise QuantizationValueError(f"model must be the float model qmodel was made from: qmodel's node "
                                     f"{node.name!r} ({node.op}, weight {q.shape}) has no layer of that name, op "
                                     f"and weight shape in it")
    if node.attrs.get("layout", "NCHW") != "NCHW" or node.attrs.get("w_layout", "OIHW") != "OIHW":
        raise UnsupportedError(f"node {node.name!r}: only NCHW layers with (O, C/g, kH, kW) weights are rewritten "
                               f"(the flows' layout), got layout {node.attrs.get('layout')!r}, w_layout "
                               f"{node.attrs.get('w_layout')!r}")
    w = np.asarray(step.layer.weight.value, _F64)
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError(f"model layer {node.name!r}: its weight must be finite, got NaN or Inf")
    b = np.zeros(w.shape[0]) if step.layer.bias is None else np.asarray(step.layer.bias.value, _F64)
    groups = int(node.attrs.get("groups", 1)) if node.op == "conv2d" else 1
    return Layer(node.name, step, w.reshape(w.shape[0], -1), b, groups, grid_of_node(qmodel, node))


class Session:
    """The float model prepared and traced, the calibration data, and the rewritable layers.

    Args:
        qmodel: The integer model (any flow's; its ``linear`` / ``conv2d`` nodes with integer weights
            are the layers; layers kept in float32 and ``dynamic_linear`` nodes are not rewritten).
        model: The float model ``qmodel`` was made from (unfolded, as given to the flow).
        calibration_data: ``(N, ...)`` float array, or ``None`` (no data: analytical methods, which
            pass ``needs_data=False``).
    """

    def __init__(self, qmodel, model, calibration_data, *, needs_data: bool = True):
        self.qmodel = check_qmodel(qmodel)
        if not isinstance(model, nn.Module):
            raise QuantizationTypeError(f"model must be a refquant.nn Module (the float model), "
                                        f"got {V.describe(model)}")
        self.model = model
        self.prepared = passes.prepare_for_quantization(model, keep_names=True)
        self.steps = trace(self.prepared, fuse=_fuse(qmodel))
        by_name = {s.name: s for s in self.steps}
        self.layers = [_layer(qmodel, n, by_name.get(n.name)) for n in qmodel.nodes
                       if n.op in ("linear", "conv2d") and n.params["weight"].dtype.kind in "iu"]
        self.batches, self.float_inputs = [], []
        if needs_data and calibration_data is None:
            raise QuantizationValueError("calibration_data must be an (N, ...) float array, got None")
        if calibration_data is not None:
            x = _calibration_array(calibration_data)
            wanted = {qmodel.node(la.name).inputs[0].split(":")[0] for la in self.layers}
            self.batches = [x[i:i + _BATCH] for i in range(0, x.shape[0], _BATCH)]
            self.float_inputs = [self._float_inputs(b, wanted) for b in self.batches]
            if len(qmodel.inputs) != 1:
                raise UnsupportedError(f"qmodel must have one input to be rewritten layer by layer, got "
                                       f"{list(qmodel.inputs)}")
            self.runner = SegmentRunner(qmodel, self.batches)

    def _float_inputs(self, batch, wanted) -> dict:
        try:
            out = float_outputs(self.prepared, self.steps, batch)
        except (RefquantError, ValueError, IndexError) as err:
            raise ShapeError(f"calibration_data must have the shape the model takes, got {batch.shape[1:]} per "
                             f"sample: {err}") from None
        return {k: np.asarray(v) for k, v in out.items() if k in wanted}

    def node_inputs(self, qmodel: QuantizedModel, name: str):
        """``(x_quant, x_float)`` float64 batches of node ``name``'s input in ``qmodel`` (dequantized
        when integer) and of the same tensor in the float model. Layers must be asked for in graph
        order (:class:`~refquant.ptq.advanced._segments.SegmentRunner`)."""
        t = qmodel.tensors[qmodel.node(name).inputs[0]]
        for xq, floats in zip(self.runner.tensor(qmodel, name, t.name), self.float_inputs, strict=True):
            if t.is_integer:
                xq = (xq.astype(_F64) - t.zero_point) * float(_F32(t.scale))
            yield np.asarray(xq, _F64), np.asarray(floats[t.name.split(":")[0]], _F64)

    def moments(self, qmodel: QuantizedModel, layer: Layer, *, second_order: bool = True) -> list[LayerMoments]:
        """One :class:`LayerMoments` per group of ``layer`` over the calibration data, with
        ``qmodel`` as it is now providing $\\hat x$."""
        node = qmodel.node(layer.name)
        k = layer.weight.shape[1]
        acc = [LayerMoments.zeros(k, second_order=second_order) for _ in range(layer.groups)]
        for xq, xf in self.node_inputs(qmodel, layer.name):
            cq, cf = layer_columns(node, xq), layer_columns(node, xf)  # (G, K, M)
            for g, m in enumerate(acc):
                m.add(cq[g], cf[g])
        return [m.finish() for m in acc]


def lowered_bias(qmodel: QuantizedModel, node: Node, b) -> np.ndarray:
    """The float bias ``b`` ``(O,)`` as ``node`` takes it: float32 (weight-only nodes, PyTorch's
    layers), or int32/int64 quantized with the profile's tool rule
    (:func:`refquant.ptq.recipes.quantize_bias`, scale $S_x S_w$)."""
    x = qmodel.tensors[node.inputs[0]]
    old = node.params.get("bias")
    if old is not None:
        dtype = old.dtype.name if old.dtype.name in ("int32", "int64") else "float32"
    elif x.is_integer:
        dtype = bias_dtype(qmodel.resolved_profile, "linear" if node.op == "linear" else "conv", x.dtype)
    else:
        dtype = "float32"
    b = np.asarray(b, _F64)
    if dtype == "float32":
        return b.astype(_F32)
    return quantize_bias(recipe_for(qmodel.profile), b.astype(_F32), x.scale, node.params["weight_scale"],
                         dtype=dtype)


def replace_params(qmodel: QuantizedModel, params: dict, metadata: dict | None = None) -> QuantizedModel:
    """A new model: ``qmodel`` with ``params[name]`` (a dict of arrays) updating node ``name``'s params."""
    nodes = [n if n.name not in params else Node(n.name, n.op, n.inputs, n.output, dict(n.attrs),
                                                  {**n.params, **params[n.name]}) for n in qmodel.nodes]
    return QuantizedModel(nodes, qmodel.tensors, list(qmodel.inputs), list(qmodel.outputs), profile=qmodel.profile,
                          isa=qmodel.isa, metadata={**qmodel.metadata, **(metadata or {})})
