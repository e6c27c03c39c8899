"""One-op 16x8 models (int16 activations, int8 weights, int64 or int32 bias) run on LiteRT.

Builders for FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D in TFLite's 16x8 mode, on top of
:mod:`tests.support.tflite_builder` (same ``resolver`` names, same interpreter cache).

``quantized_bias_type`` (a field of the FC and CONV_2D options) decides which bias width the
kernels read: the TFLite converter leaves it unset (``FLOAT32`` in the flatbuffer) and writes an
int64 bias; an int32-bias 16x8 model must set it to ``INT32``, or the kernels read the int32
buffer as int64 (LiteRT 2.3.0 ``conv.cc`` / ``fully_connected.cc``). ``bias_type="auto"`` sets
``INT32`` for an int32 bias and leaves it unset otherwise. DEPTHWISE_CONV_2D has no such field
and takes int64 biases only.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as sch

from .tflite_builder import (Graph, _activation, _pair, _per_channel, _PADDINGS, build_model, conv_output_size,
                             run_model)

__all__ = ["run_fully_connected_16x8", "run_conv2d_16x8", "run_depthwise_conv2d_16x8", "build_fully_connected_16x8",
           "build_conv2d_16x8", "build_depthwise_conv2d_16x8"]

_BIAS_TYPES = {"auto": None, "unset": sch.TensorType.FLOAT32, "int32": sch.TensorType.INT32,
               "int64": sch.TensorType.INT64}


def _bias_type(bias_type, b):
    if bias_type not in _BIAS_TYPES:
        raise ValueError(f"bias_type must be one of {list(_BIAS_TYPES)}, got {bias_type!r}")
    if bias_type == "auto":
        return sch.TensorType.INT32 if b is not None and np.asarray(b).dtype == np.int32 else sch.TensorType.FLOAT32
    return _BIAS_TYPES[bias_type]


def _bias(g, b, x_scale, ws, n, optional):
    """Constant bias tensor (int32/int64, scale x_s*w_s[c], zp 0); None: absent (-1) or int64 zeros."""
    if b is None and optional:
        return -1
    b = np.zeros(n, np.int64) if b is None else np.asarray(b)
    if b.dtype not in (np.int32, np.int64) or b.shape != (n,):
        raise ValueError(f"b must be int32/int64 of shape ({n},), got {b.dtype} {b.shape}")
    return g.tensor("bias", b.shape, b.dtype, np.float32(x_scale) * ws, 0, data=b, quantized_dimension=0)


def build_fully_connected_16x8(x_shape, x_scale, w, w_scale, b, y_scale, activation=None, *, bias_type="auto",
                               x_dtype=np.int16, x_zp=0, y_zp=0):
    """FULLY_CONNECTED model bytes: ``x`` (..., K) int16 input, ``w`` (N, K) constant, output (M, N) int16."""
    w = np.asarray(w)
    n, k = w.shape
    ws = _per_channel(w_scale, n)
    g = Graph()
    xi = g.tensor("x", x_shape, x_dtype, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, 0, data=w, quantized_dimension=0)
    bi = _bias(g, b, x_scale, ws, n, optional=True)
    yi = g.tensor("y", (int(np.prod(x_shape)) // k, n), x_dtype, y_scale, y_zp)
    opts = sch.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    opts.quantizedBiasType = _bias_type(bias_type, b)
    return build_model(g, sch.BuiltinOperator.FULLY_CONNECTED, sch.BuiltinOptions.FullyConnectedOptions, opts,
                       [xi, wi, bi], [yi], version=7)


def _conv_out(x_shape, kh, kw, stride, dilation, padding, o):
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    n, h, wd, _ = x_shape
    return (n, conv_output_size(h, kh, sh, dh, padding), conv_output_size(wd, kw, sw, dw, padding), o)


def build_conv2d_16x8(x_shape, x_scale, w, w_scale, b, y_scale, stride=1, padding="VALID", dilation=1,
                      activation=None, *, bias_type="auto", x_zp=0, y_zp=0):
    """CONV_2D model bytes: ``x`` NHWC int16, ``w`` OHWI int8 constant, ``b`` (O,) or None (int64 zeros)."""
    w = np.asarray(w)
    o, kh, kw, _ = w.shape
    ws = _per_channel(w_scale, o)
    g = Graph()
    xi = g.tensor("x", x_shape, np.int16, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, 0, data=w, quantized_dimension=0)
    bi = _bias(g, b, x_scale, ws, o, optional=False)
    yi = g.tensor("y", _conv_out(x_shape, kh, kw, stride, dilation, padding, o), np.int16, y_scale, y_zp)
    opts = sch.Conv2DOptionsT()
    opts.padding = _PADDINGS[padding]
    opts.strideH, opts.strideW = _pair(stride)
    opts.dilationHFactor, opts.dilationWFactor = _pair(dilation)
    opts.fusedActivationFunction = _activation(activation)
    opts.quantizedBiasType = _bias_type(bias_type, b)
    return build_model(g, sch.BuiltinOperator.CONV_2D, sch.BuiltinOptions.Conv2DOptions, opts, [xi, wi, bi], [yi],
                       version=4)


def build_depthwise_conv2d_16x8(x_shape, x_scale, w, w_scale, b, y_scale, stride=1, padding="VALID", dilation=1,
                                depth_multiplier=1, activation=None, *, x_zp=0, y_zp=0):
    """DEPTHWISE_CONV_2D model bytes: ``x`` NHWC int16, ``w`` 1HWO int8, ``b`` (O,) or None (int64 zeros)."""
    w = np.asarray(w)
    _, kh, kw, o = w.shape
    ws = _per_channel(w_scale, o)
    g = Graph()
    xi = g.tensor("x", x_shape, np.int16, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, 0, data=w, quantized_dimension=3)
    bi = _bias(g, b, x_scale, ws, o, optional=False)
    yi = g.tensor("y", _conv_out(x_shape, kh, kw, stride, dilation, padding, o), np.int16, y_scale, y_zp)
    opts = sch.DepthwiseConv2DOptionsT()
    opts.padding = _PADDINGS[padding]
    opts.strideH, opts.strideW = _pair(stride)
    opts.dilationHFactor, opts.dilationWFactor = _pair(dilation)
    opts.depthMultiplier = int(depth_multiplier)
    opts.fusedActivationFunction = _activation(activation)
    return build_model(g, sch.BuiltinOperator.DEPTHWISE_CONV_2D, sch.BuiltinOptions.DepthwiseConv2DOptions, opts,
                       [xi, wi, bi], [yi], version=5)


def run_fully_connected_16x8(x, x_scale, w, w_scale, b, y_scale, activation=None, resolver="ref", *,
                             bias_type="auto", return_delegated=False, **kw):
    """Build and run :func:`build_fully_connected_16x8` on ``x``."""
    x = np.asarray(x)
    model = build_fully_connected_16x8(x.shape, x_scale, w, w_scale, b, y_scale, activation, bias_type=bias_type,
                                       x_dtype=x.dtype, **kw)
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_conv2d_16x8(x, x_scale, w, w_scale, b, y_scale, stride=1, padding="VALID", dilation=1, activation=None,
                    resolver="ref", *, bias_type="auto", return_delegated=False, **kw):
    """Build and run :func:`build_conv2d_16x8` on ``x``."""
    x = np.asarray(x)
    model = build_conv2d_16x8(x.shape, x_scale, w, w_scale, b, y_scale, stride, padding, dilation, activation,
                              bias_type=bias_type, **kw)
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_depthwise_conv2d_16x8(x, x_scale, w, w_scale, b, y_scale, stride=1, padding="VALID", dilation=1,
                              depth_multiplier=1, activation=None, resolver="ref", *, return_delegated=False, **kw):
    """Build and run :func:`build_depthwise_conv2d_16x8` on ``x``."""
    x = np.asarray(x)
    model = build_depthwise_conv2d_16x8(x.shape, x_scale, w, w_scale, b, y_scale, stride, padding, dilation,
                                        depth_multiplier, activation, **kw)
    return run_model(model, [x], resolver, return_delegated=return_delegated)
