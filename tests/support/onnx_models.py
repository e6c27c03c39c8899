"""Float ``refquant.nn`` models written as ONNX graphs by hand, and ONNX Runtime's own
``quantize_static`` run on them.

:func:`sequential_to_onnx` writes a (BatchNorm-folded) ``Sequential`` of ``Flatten``, ``Linear``,
``ReLU`` and ``Identity`` layers as ``Flatten`` → ``Gemm`` (``transB=1``) → ``Relu`` nodes, opset 17,
input ``"input"`` ``(N, 1, 8, 8)``. Each ONNX tensor is named after the layer that writes it, and
the returned map says which ONNX tensor holds each tensor of refquant's integer model (a ReLU fused
into the layer before it: the ``Relu`` node's output, whose range the quantizer observes and which
it keeps when it removes the ``Relu``).

Imports onnx and onnxruntime at import time: import after ``pytest.importorskip``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization as oq

from refquant import nn

__all__ = ["initializers", "ort_quantize_static", "sequential_to_onnx"]


def sequential_to_onnx(model) -> tuple[onnx.ModelProto, dict]:
    """``(ModelProto, {refquant tensor name: ONNX tensor name})`` of a Flatten/Linear/ReLU ``Sequential``."""
    nodes, inits, where = [], [], {}
    prev, last_layer = "input", "input"
    where["input"] = "input"
    for name, m in model.named_children():
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        if isinstance(m, nn.Flatten):
            nodes.append(helper.make_node("Flatten", [prev], [name], axis=1, name=name))
        elif isinstance(m, nn.Linear):
            ins = [prev, f"{name}.weight"]
            inits.append(numpy_helper.from_array(np.asarray(m.weight.value, np.float32), f"{name}.weight"))
            if m.bias is not None:
                inits.append(numpy_helper.from_array(np.asarray(m.bias.value, np.float32), f"{name}.bias"))
                ins.append(f"{name}.bias")
            nodes.append(helper.make_node("Gemm", ins, [name], transB=1, name=name))
        elif isinstance(m, nn.ReLU):
            nodes.append(helper.make_node("Relu", [prev], [name], name=name))
            where[last_layer] = name  # fused: refquant's tensor is the ReLU's output
            prev = name
            continue
        else:
            raise NotImplementedError(f"no ONNX export for {type(m).__name__}")
        prev, last_layer = name, name
        where[name] = name
    graph = helper.make_graph(nodes, "model", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", None])],
                              initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto, where


class _Reader(oq.CalibrationDataReader):
    def __init__(self, batches):
        self._it = iter(list(batches))

    def get_next(self):
        b = next(self._it, None)
        return None if b is None else {"input": np.ascontiguousarray(b, np.float32)}


def ort_quantize_static(proto: onnx.ModelProto, batches, *, per_channel: bool, reduce_range: bool,
                        workdir=None) -> onnx.ModelProto:
    """ONNX Runtime's ``quantize_static``: QDQ, uint8 activations, int8 weights, MinMax calibration."""
    d = workdir or tempfile.mkdtemp(prefix="refquant_ort_")
    fp, qp = os.path.join(d, "float.onnx"), os.path.join(d, "qdq.onnx")
    onnx.save(proto, fp)
    oq.quantize_static(fp, qp, _Reader(batches), quant_format=oq.QuantFormat.QDQ,
                       activation_type=oq.QuantType.QUInt8, weight_type=oq.QuantType.QInt8, per_channel=per_channel,
                       reduce_range=reduce_range, calibrate_method=oq.CalibrationMethod.MinMax)
    return onnx.load(qp)


def initializers(proto: onnx.ModelProto) -> dict:
    """``{name: array}`` of every initializer."""
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
