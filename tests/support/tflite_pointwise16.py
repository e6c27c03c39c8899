"""One-op LiteRT models for the weight-free ops in int8/uint8/int16: MUL, MEAN, QUANTIZE from an
integer tensor (requantization). Built with :mod:`support.tflite_builder` (no TensorFlow).

Each ``run_*`` returns LiteRT's output, or ``(output, delegated)`` with ``return_delegated``;
``resolver`` is ``"ref"``, ``"builtin"`` or ``"xnnpack"`` as in :mod:`support.tflite_builder`.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as sch

from support.tflite_builder import Graph, _activation, build_model, run_model

__all__ = ["run_mul", "run_mean", "run_requantize", "mean_output_shape"]


def run_mul(a_q, a_scale, a_zp, b_q, b_scale, b_zp, y_scale, y_zp, activation=None, resolver="ref", *,
            return_delegated=False):
    """TFLite MUL of two quantized tensors of one dtype (NumPy broadcasting); both are model inputs."""
    a, b = np.asarray(a_q), np.asarray(b_q)
    g = Graph()
    ai = g.tensor("a", a.shape, a.dtype, a_scale, a_zp)
    bi = g.tensor("b", b.shape, b.dtype, b_scale, b_zp)
    yi = g.tensor("y", np.broadcast_shapes(a.shape, b.shape), a.dtype, y_scale, y_zp)
    opts = sch.MulOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    model = build_model(g, sch.BuiltinOperator.MUL, sch.BuiltinOptions.MulOptions, opts, [ai, bi], [yi],
                        version=4 if a.dtype == np.int16 else 2)
    return run_model(model, [a, b], resolver, return_delegated=return_delegated)


def mean_output_shape(shape, axis, keep_dims):
    axes = {a % len(shape) for a in axis}
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def run_mean(x_q, x_scale, x_zp, y_scale, y_zp, axis=(1, 2), keep_dims=False, resolver="ref", *,
             return_delegated=False):
    """TFLite MEAN over ``axis`` (a constant int32 tensor) with the output's own parameters."""
    x = np.asarray(x_q)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    ax = np.asarray(axis, np.int32)
    ai = g.tensor("axis", ax.shape, np.int32, data=ax)
    yi = g.tensor("y", mean_output_shape(x.shape, axis, keep_dims), x.dtype, y_scale, y_zp)
    opts = sch.ReducerOptionsT()
    opts.keepDims = bool(keep_dims)
    model = build_model(g, sch.BuiltinOperator.MEAN, sch.BuiltinOptions.ReducerOptions, opts, [xi, ai], [yi],
                        version=3 if x.dtype == np.int16 else 2)
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_requantize(x_q, x_scale, x_zp, y_scale, y_zp, out_dtype, resolver="ref", *, return_delegated=False):
    """TFLite QUANTIZE from an integer tensor to ``out_dtype`` (requantization)."""
    x = np.asarray(x_q)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    yi = g.tensor("y", x.shape, np.dtype(out_dtype), y_scale, y_zp)
    model = build_model(g, sch.BuiltinOperator.QUANTIZE, sch.BuiltinOptions.QuantizeOptions, sch.QuantizeOptionsT(),
                        [xi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)
