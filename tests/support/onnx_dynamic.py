"""ONNX Runtime dynamic quantization: one-layer float models, the tool's ``quantize_dynamic``, and a
hand-built ``com.microsoft.DynamicQuantizeMatMul``.

:func:`linear_model` writes $y = x W^\\top + b$ as ``MatMul`` + ``Add`` (``W^T`` stored) or as
``Gemm`` (``transB=1``); :func:`ort_quantize_dynamic` runs ``onnxruntime.quantization.quantize_dynamic``
on it (both become DynamicQuantizeLinear, MatMulInteger, Cast, Mul, Mul, Add on int8 weights, which
the CPU EP fuses into ``DynamicQuantizeMatMul`` above ``ORT_DISABLE_ALL``). :func:`session` runs a
model on one intra-op thread at a chosen optimization level.

Imports onnx and onnxruntime at import time: import after ``pytest.importorskip``.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization as oq

__all__ = ["linear_model", "ort_quantize_dynamic", "dynamic_quantize_matmul_model", "session", "LEVELS",
           "quantized_weight", "optimized_ops"]

LEVELS = {"disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "enable_all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def _model(nodes, inits, k, n, opsets=(("", 17),)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["M", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", n])], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    proto.ir_version = 8
    return proto


def linear_model(w, b, *, gemm: bool = False) -> onnx.ModelProto:
    """Float ``(N, K)`` weights and ``(N,)`` bias as MatMul + Add, or as Gemm (``transB=1``)."""
    n, k = w.shape
    b_init = numpy_helper.from_array(np.asarray(b, np.float32), "B")
    if gemm:
        inits = [numpy_helper.from_array(np.asarray(w, np.float32), "W"), b_init]
        nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)]
    else:
        inits = [numpy_helper.from_array(np.ascontiguousarray(np.asarray(w, np.float32).T), "W"), b_init]
        nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"]), helper.make_node("Add", ["mm", "B"], ["y"])]
    return _model(nodes, inits, k, n)


def ort_quantize_dynamic(proto: onnx.ModelProto, *, reduce_range: bool) -> onnx.ModelProto:
    """``onnxruntime.quantization.quantize_dynamic`` with its defaults (QInt8, per tensor) and ``reduce_range``."""
    d = tempfile.mkdtemp(prefix="refquant_ortdyn_")
    fp, qp = os.path.join(d, "float.onnx"), os.path.join(d, "dynamic.onnx")
    onnx.save(proto, fp)
    logging.getLogger().disabled, was = True, logging.getLogger().disabled  # "Please consider pre-processing"
    try:
        oq.quantize_dynamic(fp, qp, reduce_range=reduce_range)
    finally:
        logging.getLogger().disabled = was
    return onnx.load(qp)


def quantized_weight(proto: onnx.ModelProto):
    """``(codes (N, K), scale, zero point)`` of the one quantized weight the tool wrote (it stores ``W^T``)."""
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    (name,) = [k for k in inits if k.endswith("_quantized")]
    base = name[: -len("_quantized")]
    return np.ascontiguousarray(inits[name].T), inits[base + "_scale"], inits[base + "_zero_point"]


def dynamic_quantize_matmul_model(w_q, w_scale, w_zero_point, bias) -> onnx.ModelProto:
    """``com.microsoft.DynamicQuantizeMatMul(x, W^T, b_scale, b_zero_point, bias)``; scales ``()`` or ``(N,)``."""
    n, k = w_q.shape
    inits = [numpy_helper.from_array(np.ascontiguousarray(w_q.T), "Wq"),
             numpy_helper.from_array(np.asarray(w_scale, np.float32), "Ws"),
             numpy_helper.from_array(np.asarray(w_zero_point, w_q.dtype), "Wz")]
    ins = ["x", "Wq", "Ws", "Wz"]
    if bias is not None:
        inits.append(numpy_helper.from_array(np.asarray(bias, np.float32), "B"))
        ins.append("B")
    nodes = [helper.make_node("DynamicQuantizeMatMul", ins, ["y"], domain="com.microsoft")]
    return _model(nodes, inits, k, n, opsets=(("", 17), ("com.microsoft", 1)))


def session(proto: onnx.ModelProto, level: str = "disable_all") -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def optimized_ops(proto: onnx.ModelProto, level: str = "enable_all") -> list[str]:
    """The op types of the graph ORT runs after its optimizations at ``level``."""
    path = os.path.join(tempfile.mkdtemp(prefix="refquant_ortopt_"), "optimized.onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.optimized_model_filepath = path
    so.log_severity_level = 3
    ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(path).graph.node]
