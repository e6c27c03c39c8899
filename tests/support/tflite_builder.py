"""Build one-op TFLite models in memory and run them on the real LiteRT kernels.

No TensorFlow: the flatbuffer is written with the object API of
``ai_edge_litert/schema_py_generated.py`` plus ``flatbuffers``, and run by
``ai_edge_litert.interpreter.Interpreter(model_content=...)``. Every ``run_*``
function takes and returns NumPy arrays and a ``resolver``:

| resolver | ``OpResolverType`` | kernels |
|---|---|---|
| ``"ref"`` | ``BUILTIN_REF`` | TFLite reference kernels (CPU independent; compare faces with these) |
| ``"builtin"`` | ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` | optimized built-in kernels, no delegate |
| ``"xnnpack"`` | ``BUILTIN`` | built-in kernels + the default XNNPACK delegate |

With ``return_delegated=True`` a ``run_*`` function returns ``(y, delegated)``, where
``delegated`` says whether XNNPACK took the op (a ``DELEGATE`` node in the private
``Interpreter._get_ops_details()``); it is always False for "ref" and "builtin". The
XNNPACK delegate does not take every op (never AVERAGE_POOL_2D or SOFTMAX in LiteRT
2.3.0), so an "xnnpack" result of a non-delegated op is the "builtin" result.

Model-building rules learned the hard way (backends.md §8, "Gotchas"):

* buffer 0 is the empty sentinel; tensors without constant data use buffer 0;
* ``deprecatedBuiltinCode`` is an int8 field: ``min(code, 127)``, beside ``builtinCode``;
* ``ModelT.Pack`` omits the file identifier: ``Finish(root, file_identifier=b"TFL3")``;
* constant buffers are 16-byte aligned;
* every integer tensor carries quantization (a missing *output* quantization is not an
  error but gives garbage);
* per-channel weights: ``quantizedDimension`` 0 for FC/conv (O first), 3 for depthwise (1HWO);
* int8 pooling keeps the input's quantization on the output; SOFTMAX/LOGISTIC outputs
  are fixed at scale 1/256, zero point -128 (int8), 0 (uint8), or 1/32768, 0 (int16).

Interpreters are cached by (model bytes, resolver), so repeated calls with the same
parameters and shapes only pay for ``set_tensor``/``invoke``.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as sch
from ai_edge_litert.interpreter import Interpreter, OpResolverType

__all__ = [
    "RESOLVERS",
    "Graph",
    "run_model",
    "build_model",
    "is_delegated",
    "run_quantize",
    "run_dequantize",
    "run_fully_connected",
    "run_conv2d",
    "run_depthwise_conv2d",
    "run_add",
    "run_average_pool2d",
    "run_max_pool2d",
    "run_softmax",
    "run_logistic",
    "conv_output_size",
]

RESOLVERS = {
    "ref": OpResolverType.BUILTIN_REF,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "xnnpack": OpResolverType.BUILTIN,
}

_TENSOR_TYPES = {
    np.dtype(np.float32): sch.TensorType.FLOAT32,
    np.dtype(np.int8): sch.TensorType.INT8,
    np.dtype(np.uint8): sch.TensorType.UINT8,
    np.dtype(np.int16): sch.TensorType.INT16,
    np.dtype(np.int32): sch.TensorType.INT32,
    np.dtype(np.int64): sch.TensorType.INT64,
}

_ACTIVATIONS = {
    None: sch.ActivationFunctionType.NONE,
    "NONE": sch.ActivationFunctionType.NONE,
    "RELU": sch.ActivationFunctionType.RELU,
    "RELU_N1_TO_1": sch.ActivationFunctionType.RELU_N1_TO_1,
    "RELU6": sch.ActivationFunctionType.RELU6,
}

_PADDINGS = {"SAME": sch.Padding.SAME, "VALID": sch.Padding.VALID}

# Op versions that the three resolvers accept (only the registered range is checked).
_VERSIONS = {
    sch.BuiltinOperator.FULLY_CONNECTED: 4,
    sch.BuiltinOperator.CONV_2D: 3,
    sch.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
}

# (scale, zero_point) that SOFTMAX / LOGISTIC require on their output.
_UNIT_OUTPUT_QPARAMS = {
    np.dtype(np.int8): (1.0 / 256.0, -128),
    np.dtype(np.uint8): (1.0 / 256.0, 0),
    np.dtype(np.int16): (1.0 / 32768.0, 0),
}


# --------------------------------------------------------------------------- model


class _AlignedBufferT(sch.BufferT):
    """A BufferT whose data vector is 16-byte aligned (``CreateNumpyVector`` aligns to 1)."""

    def Pack(self, builder):  # noqa: N802 - flatbuffers naming
        data = None
        if self.data is not None:
            payload = bytes(self.data)
            builder.StartVector(1, len(payload), 16)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        sch.BufferStart(builder)
        if data is not None:
            sch.BufferAddData(builder, data)
        return sch.BufferEnd(builder)


class Graph:
    """Tensors and buffers of a one-subgraph model."""

    def __init__(self):
        self.tensors: list[sch.TensorT] = []
        self.buffers: list[sch.BufferT] = [_AlignedBufferT()]  # buffer 0: empty sentinel

    def tensor(self, name, shape, dtype, scale=None, zero_point=None, *, data=None, quantized_dimension=0):
        """Add a tensor; ``data`` makes it a constant. Returns its index."""
        dtype = np.dtype(dtype)
        t = sch.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = _TENSOR_TYPES[dtype]
        t.buffer = 0
        if data is not None:
            buf = _AlignedBufferT()
            buf.data = np.ascontiguousarray(data, dtype=dtype.newbyteorder("<")).tobytes()
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = sch.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(np.asarray(scale, dtype=np.float32))]
            zps = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if zps.size == 1 and len(q.scale) > 1:
                zps = np.repeat(zps, len(q.scale))
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = int(quantized_dimension)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1


def build_model(graph, builtin_code, options_type, options, inputs, outputs, *, version=None, graph_inputs=None):
    """Serialize a one-operator model to ``bytes``.

    Args:
        graph: a :class:`Graph` holding the tensors and buffers.
        builtin_code: ``schema_py_generated.BuiltinOperator`` value.
        options_type, options: ``BuiltinOptions`` value and the matching ``*OptionsT`` (or NONE, None).
        inputs, outputs: tensor indices of the operator (-1 for an absent optional input).
        version: op version; default from ``_VERSIONS`` or 2.
        graph_inputs: the subgraph's inputs; default the operator's non-constant inputs.
    """
    code = sch.OperatorCodeT()
    code.builtinCode = builtin_code
    code.deprecatedBuiltinCode = min(builtin_code, 127)
    code.version = version or _VERSIONS.get(builtin_code, 2)

    op = sch.OperatorT()
    op.opcodeIndex = 0
    op.inputs = list(inputs)
    op.outputs = list(outputs)
    op.builtinOptionsType = options_type
    op.builtinOptions = options

    sub = sch.SubGraphT()
    sub.tensors = graph.tensors
    if graph_inputs is None:
        graph_inputs = [i for i in inputs if i >= 0 and graph.tensors[i].buffer == 0]
    sub.inputs = list(graph_inputs)
    sub.outputs = list(outputs)
    sub.operators = [op]
    sub.name = "main"

    model = sch.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sub]
    model.buffers = graph.buffers
    model.description = "refquant test harness one-op model"

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# --------------------------------------------------------------------------- running

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 64


@contextlib.contextmanager
def _quiet_stderr():
    """Silence fd 2 (the XNNPACK "INFO: Created TensorFlow Lite XNNPACK delegate" line).

    Python-level exceptions are unaffected: TFLite reports Prepare errors through the
    raised ``RuntimeError``/``ValueError`` message, not through stderr alone.
    """
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _interpreter(model_content, resolver):
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver must be one of {sorted(RESOLVERS)}, got {resolver!r}")
    key = (model_content, resolver)
    interp = _CACHE.get(key)
    if interp is not None:
        _CACHE.move_to_end(key)
        return interp
    quiet = _quiet_stderr() if resolver == "xnnpack" else contextlib.nullcontext()
    with quiet:
        interp = Interpreter(
            model_content=model_content,
            experimental_op_resolver_type=RESOLVERS[resolver],
            num_threads=1,
        )
        interp.allocate_tensors()
    _CACHE[key] = interp
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return interp


def is_delegated(interpreter):
    """True if the interpreter's graph contains a ``DELEGATE`` node (XNNPACK took the op)."""
    return any(d.get("op_name") == "DELEGATE" for d in interpreter._get_ops_details())


def run_model(model_content, inputs, resolver="ref", *, return_delegated=False):
    """Run a model on ``inputs`` (list, in subgraph-input order); return its first output.

    Returns:
        The output array (a copy), or ``(output, delegated)`` if ``return_delegated``.
    """
    interp = _interpreter(model_content, resolver)
    for detail, value in zip(interp.get_input_details(), inputs):
        # np.asarray(order="C"), not np.ascontiguousarray: that one turns a 0-d array into shape (1,)
        interp.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"], order="C"))
    interp.invoke()
    y = np.array(interp.get_tensor(interp.get_output_details()[0]["index"]), copy=True)
    if return_delegated:
        return y, is_delegated(interp)
    return y


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    if np.ndim(v) == 0:
        return int(v), int(v)
    h, w = (int(a) for a in v)
    return h, w


def _activation(activation):
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(_ACTIVATIONS)}, got {activation!r}")
    return _ACTIVATIONS[activation]


def conv_output_size(size, kernel, stride, dilation, padding):
    """TFLite output size: SAME $\\lceil n/s \\rceil$, VALID $\\lceil (n - (k-1)d)/s \\rceil$."""
    if padding == "SAME":
        return (size + stride - 1) // stride
    if padding == "VALID":
        return (size - (kernel - 1) * dilation - 1) // stride + 1
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")


def _per_channel(w_scale, n_channels):
    """Scales as a 1-D float32 array of length 1 (per-tensor) or ``n_channels``."""
    s = np.atleast_1d(np.asarray(w_scale, dtype=np.float32))
    if s.size not in (1, n_channels):
        raise ValueError(f"w_scale must be a scalar or have {n_channels} entries, got {s.size}")
    return s


def _bias(g, b_q, x_scale, w_scales, n_channels, optional=True):
    """Constant bias tensor (int32 or int64, scale x_s*w_s[c], zp 0), or -1 for no bias.

    Only FULLY_CONNECTED accepts an absent bias; int8 CONV_2D / DEPTHWISE_CONV_2D fail to
    prepare ("Tensor at index 2 was optional but was expected"), so for them ``None``
    becomes an all-zero int32 bias (the same arithmetic).
    """
    if b_q is None and optional:
        return -1
    if b_q is None:
        b_q = np.zeros(n_channels, np.int32)
    b = np.asarray(b_q)
    if b.dtype not in (np.int32, np.int64) or b.shape != (n_channels,):
        raise ValueError(f"b_q must be int32/int64 of shape ({n_channels},), got {b.dtype} {b.shape}")
    b_scale = np.float32(x_scale) * w_scales  # float32 product, as the TFLite converter stores it
    return g.tensor("bias", b.shape, b.dtype, b_scale, 0, data=b, quantized_dimension=0)


# --------------------------------------------------------------------------- ops


def run_quantize(x_f32, scale, zero_point, out_dtype="int8", resolver="ref", *, return_delegated=False):
    """TFLite QUANTIZE: float32 ``x`` -> ``out_dtype`` (int8, uint8 or int16), same shape."""
    x = np.asarray(x_f32, dtype=np.float32)
    g = Graph()
    xi = g.tensor("x", x.shape, np.float32)
    yi = g.tensor("y", x.shape, out_dtype, scale, zero_point)
    opts = sch.QuantizeOptionsT()
    model = build_model(g, sch.BuiltinOperator.QUANTIZE, sch.BuiltinOptions.QuantizeOptions, opts, [xi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_dequantize(q, scale, zero_point, resolver="ref", *, return_delegated=False):
    """TFLite DEQUANTIZE: int8/uint8/int16 ``q`` -> float32, same shape."""
    q = np.asarray(q)
    g = Graph()
    xi = g.tensor("q", q.shape, q.dtype, scale, zero_point)
    yi = g.tensor("y", q.shape, np.float32)
    opts = sch.DequantizeOptionsT()
    model = build_model(g, sch.BuiltinOperator.DEQUANTIZE, sch.BuiltinOptions.DequantizeOptions, opts, [xi], [yi])
    return run_model(model, [q], resolver, return_delegated=return_delegated)


def run_fully_connected(x_q, x_scale, x_zp, w_q, w_scale, b_q, y_scale, y_zp, activation=None, resolver="ref",
                        *, keep_num_dims=False, w_zp=0, return_delegated=False):
    """TFLite FULLY_CONNECTED: ``x`` (..., K) int8, ``w`` (N, K) int8 constant,
    ``w_scale`` scalar or (N,) per-channel (zero point 0), ``b_q`` (N,) int32 or None.
    Output (prod(...), N), or (..., N) with ``keep_num_dims``; dtype of ``x``.
    ``w_zp`` (keyword, default 0) is the weight zero point: int8 TFLite requires 0; legacy
    uint8 models use e.g. 128. A per-channel nonzero ``w_zp`` is ignored by ref/builtin and
    refused by XNNPACK (backends.md §8)."""
    x, w = np.asarray(x_q), np.asarray(w_q)
    n, k = w.shape
    ws = _per_channel(w_scale, n)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, w_zp, data=w, quantized_dimension=0)
    bi = _bias(g, b_q, x_scale, ws, n)
    out_shape = (*x.shape[:-1], n) if keep_num_dims else (x.size // k, n)
    yi = g.tensor("y", out_shape, x.dtype, y_scale, y_zp)
    opts = sch.FullyConnectedOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    opts.keepNumDims = bool(keep_num_dims)
    model = build_model(g, sch.BuiltinOperator.FULLY_CONNECTED, sch.BuiltinOptions.FullyConnectedOptions, opts,
                        [xi, wi, bi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_conv2d(x_q, x_scale, x_zp, w_q, w_scale, b_q, y_scale, y_zp, stride=1, padding="VALID", dilation=1,
               activation=None, resolver="ref", *, w_zp=0, return_delegated=False):
    """TFLite CONV_2D: ``x`` NHWC, ``w`` OHWI constant (per-channel on O), ``b_q`` (O,) or None (zeros).
    Output NHWC int8 with TFLite's SAME/VALID output size."""
    x, w = np.asarray(x_q), np.asarray(w_q)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    o, kh, kw, _ = w.shape
    ws = _per_channel(w_scale, o)
    n, h, wd, _ = x.shape
    out_shape = (n, conv_output_size(h, kh, sh, dh, padding), conv_output_size(wd, kw, sw, dw, padding), o)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, w_zp, data=w, quantized_dimension=0)
    bi = _bias(g, b_q, x_scale, ws, o, optional=False)
    yi = g.tensor("y", out_shape, x.dtype, y_scale, y_zp)
    opts = sch.Conv2DOptionsT()
    opts.padding = _PADDINGS[padding]
    opts.strideH, opts.strideW = sh, sw
    opts.dilationHFactor, opts.dilationWFactor = dh, dw
    opts.fusedActivationFunction = _activation(activation)
    model = build_model(g, sch.BuiltinOperator.CONV_2D, sch.BuiltinOptions.Conv2DOptions, opts, [xi, wi, bi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_depthwise_conv2d(x_q, x_scale, x_zp, w_q, w_scale, b_q, y_scale, y_zp, stride=1, padding="VALID",
                         dilation=1, depth_multiplier=1, activation=None, resolver="ref", *, w_zp=0,
                         return_delegated=False):
    """TFLite DEPTHWISE_CONV_2D: ``x`` NHWC (C channels), ``w`` 1HWO with O = C*depth_multiplier
    (per-channel on axis 3), ``b_q`` (O,) or None (zeros). Output NHWC with O channels."""
    x, w = np.asarray(x_q), np.asarray(w_q)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    _, kh, kw, o = w.shape
    if o != x.shape[3] * depth_multiplier:
        raise ValueError(f"w has {o} output channels, expected C*depth_multiplier = {x.shape[3] * depth_multiplier}")
    ws = _per_channel(w_scale, o)
    n, h, wd, _ = x.shape
    out_shape = (n, conv_output_size(h, kh, sh, dh, padding), conv_output_size(wd, kw, sw, dw, padding), o)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    wi = g.tensor("w", w.shape, w.dtype, ws, w_zp, data=w, quantized_dimension=3)
    bi = _bias(g, b_q, x_scale, ws, o, optional=False)
    yi = g.tensor("y", out_shape, x.dtype, y_scale, y_zp)
    opts = sch.DepthwiseConv2DOptionsT()
    opts.padding = _PADDINGS[padding]
    opts.strideH, opts.strideW = sh, sw
    opts.dilationHFactor, opts.dilationWFactor = dh, dw
    opts.depthMultiplier = int(depth_multiplier)
    opts.fusedActivationFunction = _activation(activation)
    model = build_model(g, sch.BuiltinOperator.DEPTHWISE_CONV_2D, sch.BuiltinOptions.DepthwiseConv2DOptions, opts,
                        [xi, wi, bi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_add(a_q, a_scale, a_zp, b_q, b_scale, b_zp, y_scale, y_zp, activation=None, resolver="ref",
            *, return_delegated=False):
    """TFLite ADD of two quantized tensors (NumPy broadcasting); both are model inputs."""
    a, b = np.asarray(a_q), np.asarray(b_q)
    g = Graph()
    ai = g.tensor("a", a.shape, a.dtype, a_scale, a_zp)
    bi = g.tensor("b", b.shape, b.dtype, b_scale, b_zp)
    yi = g.tensor("y", np.broadcast_shapes(a.shape, b.shape), a.dtype, y_scale, y_zp)
    opts = sch.AddOptionsT()
    opts.fusedActivationFunction = _activation(activation)
    model = build_model(g, sch.BuiltinOperator.ADD, sch.BuiltinOptions.AddOptions, opts, [ai, bi], [yi])
    return run_model(model, [a, b], resolver, return_delegated=return_delegated)


def _pool(code, x_q, x_scale, x_zp, filter_size, stride, padding, activation, resolver, return_delegated):
    x = np.asarray(x_q)
    fh, fw = _pair(filter_size)
    sh, sw = _pair(filter_size if stride is None else stride)
    n, h, w, c = x.shape
    out_shape = (n, conv_output_size(h, fh, sh, 1, padding), conv_output_size(w, fw, sw, 1, padding), c)
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    yi = g.tensor("y", out_shape, x.dtype, x_scale, x_zp)  # int8 pooling requires output qparams == input's
    opts = sch.Pool2DOptionsT()
    opts.padding = _PADDINGS[padding]
    opts.strideH, opts.strideW = sh, sw
    opts.filterHeight, opts.filterWidth = fh, fw
    opts.fusedActivationFunction = _activation(activation)
    model = build_model(g, code, sch.BuiltinOptions.Pool2DOptions, opts, [xi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_average_pool2d(x_q, x_scale, x_zp, filter_size, stride=None, padding="VALID", activation=None,
                       resolver="ref", *, return_delegated=False):
    """TFLite AVERAGE_POOL_2D on NHWC ``x``; output quantization = input's; ``stride=None`` = filter size."""
    return _pool(sch.BuiltinOperator.AVERAGE_POOL_2D, x_q, x_scale, x_zp, filter_size, stride, padding, activation,
                 resolver, return_delegated)


def run_max_pool2d(x_q, x_scale, x_zp, filter_size, stride=None, padding="VALID", activation=None,
                   resolver="ref", *, return_delegated=False):
    """TFLite MAX_POOL_2D on NHWC ``x``; output quantization = input's; ``stride=None`` = filter size."""
    return _pool(sch.BuiltinOperator.MAX_POOL_2D, x_q, x_scale, x_zp, filter_size, stride, padding, activation,
                 resolver, return_delegated)


def _unit_output_op(code, options_type, opts, x_q, x_scale, x_zp, resolver, return_delegated):
    x = np.asarray(x_q)
    y_scale, y_zp = _UNIT_OUTPUT_QPARAMS[x.dtype]
    g = Graph()
    xi = g.tensor("x", x.shape, x.dtype, x_scale, x_zp)
    yi = g.tensor("y", x.shape, x.dtype, y_scale, y_zp)
    model = build_model(g, code, options_type, opts, [xi], [yi])
    return run_model(model, [x], resolver, return_delegated=return_delegated)


def run_softmax(x_q, x_scale, x_zp, beta=1.0, resolver="ref", *, return_delegated=False):
    """TFLite SOFTMAX over the last axis; output scale 1/256, zp -128 (int8) / 0 (uint8)."""
    opts = sch.SoftmaxOptionsT()
    opts.beta = float(beta)
    return _unit_output_op(sch.BuiltinOperator.SOFTMAX, sch.BuiltinOptions.SoftmaxOptions, opts, x_q, x_scale, x_zp,
                           resolver, return_delegated)


def run_logistic(x_q, x_scale, x_zp, resolver="ref", *, return_delegated=False):
    """TFLite LOGISTIC (sigmoid); output scale 1/256, zp -128 (int8) / 0 (uint8)."""
    return _unit_output_op(sch.BuiltinOperator.LOGISTIC, sch.BuiltinOptions.NONE, None, x_q, x_scale, x_zp,
                           resolver, return_delegated)
