"""One-op SOFTMAX, LOGISTIC and TANH models with explicit output quantization (int8, uint8, int16).

:mod:`support.tflite_builder` fixes the output parameters of SOFTMAX and LOGISTIC to what
LiteRT requires; here they are arguments, so tests can also check LiteRT's Prepare refusals
and TANH's free int8 output parameters. The builders and the interpreter cache are
``tflite_builder``'s; see its docstring for the resolvers and ``return_delegated``.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as sch

from .tflite_builder import Graph, build_model, run_model

__all__ = ["UNIT_OUTPUT", "activation_model", "run_softmax", "run_logistic", "run_tanh"]

# The output parameters the converter writes (and LiteRT's Prepare requires, except int8/uint8 TANH).
UNIT_OUTPUT = {
    ("SOFTMAX", np.dtype(np.int8)): (1.0 / 256, -128), ("SOFTMAX", np.dtype(np.uint8)): (1.0 / 256, 0),
    ("SOFTMAX", np.dtype(np.int16)): (1.0 / 32768, 0),
    ("LOGISTIC", np.dtype(np.int8)): (1.0 / 256, -128), ("LOGISTIC", np.dtype(np.uint8)): (1.0 / 256, 0),
    ("LOGISTIC", np.dtype(np.int16)): (1.0 / 32768, 0),
    ("TANH", np.dtype(np.int8)): (1.0 / 128, 0), ("TANH", np.dtype(np.uint8)): (1.0 / 128, 128),
    ("TANH", np.dtype(np.int16)): (1.0 / 32768, 0),
}

_CODES = {"SOFTMAX": sch.BuiltinOperator.SOFTMAX, "LOGISTIC": sch.BuiltinOperator.LOGISTIC,
          "TANH": sch.BuiltinOperator.TANH}


def activation_model(op, shape, dtype, x_scale, x_zp, y_scale=None, y_zp=None, *, beta=1.0):
    """Serialize a one-op SOFTMAX / LOGISTIC / TANH model (``bytes``); default output parameters
    from :data:`UNIT_OUTPUT`. Version 3 for int16 (the 16x8 kernels), 2 otherwise."""
    dtype = np.dtype(dtype)
    dy_scale, dy_zp = UNIT_OUTPUT[(op, dtype)]
    y_scale = dy_scale if y_scale is None else y_scale
    y_zp = dy_zp if y_zp is None else y_zp
    g = Graph()
    xi = g.tensor("x", shape, dtype, x_scale, x_zp)
    yi = g.tensor("y", shape, dtype, y_scale, y_zp)
    if op == "SOFTMAX":
        opts = sch.SoftmaxOptionsT()
        opts.beta = float(beta)
        options_type = sch.BuiltinOptions.SoftmaxOptions
    else:
        opts, options_type = None, sch.BuiltinOptions.NONE
    return build_model(g, _CODES[op], options_type, opts, [xi], [yi], version=3 if dtype == np.int16 else 2)


def _run(op, x_q, x_scale, x_zp, y_scale, y_zp, resolver, return_delegated, beta=1.0):
    x = np.asarray(x_q)
    model = activation_model(op, x.shape, x.dtype, x_scale, x_zp, y_scale, y_zp, beta=beta)
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_softmax(x_q, x_scale, x_zp, beta=1.0, resolver="ref", *, y_scale=None, y_zp=None, return_delegated=False):
    """TFLite SOFTMAX over the last axis."""
    return _run("SOFTMAX", x_q, x_scale, x_zp, y_scale, y_zp, resolver, return_delegated, beta)


def run_logistic(x_q, x_scale, x_zp, resolver="ref", *, y_scale=None, y_zp=None, return_delegated=False):
    """TFLite LOGISTIC."""
    return _run("LOGISTIC", x_q, x_scale, x_zp, y_scale, y_zp, resolver, return_delegated)


def run_tanh(x_q, x_scale, x_zp, resolver="ref", *, y_scale=None, y_zp=None, return_delegated=False):
    """TFLite TANH."""
    return _run("TANH", x_q, x_scale, x_zp, y_scale, y_zp, resolver, return_delegated)
