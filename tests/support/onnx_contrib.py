"""Run one ONNX node on ONNX Runtime at its *default* optimization level, one thread.

:mod:`support.onnx_runner` disables every graph optimization; the ops checked with this module
(com.microsoft QGemm, QLinearMul, QLinearConcat, QLinearAveragePool, QLinearSoftmax,
QLinearLeakyRelu and the integer MaxPool) are what ORT's optimizer leaves or produces in a real
model, so they run here as a user's session runs them: ``SessionOptions()`` untouched except
one intra-op and one inter-op thread.

Inputs listed in ``consts`` become initializers (as in a real model, where ORT builds lookup
tables and prepacks weights once); the others are fed. Sessions are cached on the model bytes.
Imports onnx and onnxruntime at import time: import after ``pytest.importorskip``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnxruntime as ort
from onnx import helper, numpy_helper

__all__ = ["MS_DOMAIN", "run_node"]

MS_DOMAIN = "com.microsoft"
_CACHE: OrderedDict = OrderedDict()


def _session(model_bytes: bytes):
    sess = _CACHE.get(model_bytes)
    if sess is None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 4
        sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        _CACHE[model_bytes] = sess
        if len(_CACHE) > 128:
            _CACHE.popitem(last=False)
    return sess


def run_node(op_type, inputs, attrs=None, out_dtype=np.uint8, *, domain=MS_DOMAIN, consts=(), opset=21,
             static_shapes=False):
    """Run one node; return its single output.

    Args:
        op_type: ``"QGemm"``, ``"QLinearConcat"``, ...
        inputs: arrays in the operator's order (``None`` for an omitted optional input);
            Python floats become float32 0-d arrays.
        attrs: node attributes.
        out_dtype: the output's NumPy dtype.
        consts: input positions written as initializers; ``"all_but_first"`` makes every input
            after the first a constant.
        static_shapes: declare the fed inputs' concrete shapes (else symbolic dimensions).
    """
    arrays = [None if x is None else (np.asarray(x, np.float32) if isinstance(x, float) else np.asarray(x))
              for x in inputs]
    if consts == "all_but_first":
        consts = tuple(range(1, len(arrays)))
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, a in enumerate(arrays):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in consts:
            inits.append(numpy_helper.from_array(a, name))
        else:
            dims = list(a.shape) if static_shapes else [f"d{i}_{j}" for j in range(a.ndim)]
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), dims))
            feeds[name] = np.ascontiguousarray(a)
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op_type, names, ["out"], domain=domain, **(attrs or {}))
    out = helper.make_tensor_value_info("out", helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)
    graph = helper.make_graph([node], op_type, graph_inputs, [out], initializer=inits)
    ids = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=ids)
    model.ir_version = 10
    (y,) = _session(model.SerializeToString()).run(["out"], feeds)
    return y
