"""One-op dynamic-range ("hybrid") FULLY_CONNECTED models, run on the real LiteRT kernels.

A hybrid FULLY_CONNECTED has a float32 input and output, int8 weights with quantization
parameters (per tensor, or per output channel on axis 0) and a float32 bias: what the TFLite
converter writes with ``Optimize.DEFAULT`` and no representative dataset. The kernel
quantizes each input row on the fly (``EvalHybridDense``); ``asymmetric=True`` sets the
``asymmetricQuantizeInputs`` option. Built with :mod:`tests.support.tflite_builder`
(same gotchas, same interpreter cache).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as sch

from .tflite_builder import Graph, _activation, build_model, run_model

__all__ = ["run_hybrid_fully_connected"]

# FULLY_CONNECTED v9 introduced asymmetric_quantize_inputs; every resolver registers it.
_VERSION = 9


def run_hybrid_fully_connected(x_f32, w_q, w_scale, bias_f32=None, *, asymmetric=False, activation=None,
                               resolver="ref", w_zp=0, return_delegated=False):
    """Hybrid FULLY_CONNECTED: ``x`` (M, K) float32, ``w_q`` (N, K) int8 constant, ``w_scale``
    scalar or (N,), ``bias_f32`` (N,) or None. Returns (M, N) float32 (and the delegate flag)."""
    x = np.asarray(x_f32, np.float32)
    w = np.asarray(w_q, np.int8)
    n, k = w.shape
    ws = np.atleast_1d(np.asarray(w_scale, np.float32))
    g = Graph()
    xi = g.tensor("x", x.shape, np.float32)
    wi = g.tensor("w", w.shape, np.int8, ws, w_zp, data=w, quantized_dimension=0)
    bi = -1 if bias_f32 is None else g.tensor("bias", (n,), np.float32, data=np.asarray(bias_f32, np.float32))
    yi = g.tensor("y", (x.size // k, n), np.float32)
    opts = sch.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    opts.asymmetricQuantizeInputs = bool(asymmetric)
    model = build_model(g, sch.BuiltinOperator.FULLY_CONNECTED, sch.BuiltinOptions.FullyConnectedOptions, opts,
                        [xi, wi, bi], [yi], version=_VERSION)
    return run_model(model, [x], resolver, return_delegated=return_delegated)
