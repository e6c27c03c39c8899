"""How each node of the integer model runs: through :mod:`refquant.ops` under the model's profile.

One function per op. Each takes the node, its input arrays, the graph's :class:`TensorInfo`
table, the profile and a per-node cache (constants derived once from the node's params and
reused on every call: float32 weights of a weight-only layer, for instance), and returns the
output array.

Integer tensors are NCHW like the float model, unless a node says ``layout="NHWC"`` (an imported
``.tflite``); the pooling ops of :mod:`refquant.ops.pointwise` take NHWC, so NCHW pool nodes
transpose around them (a transpose is exact). The data-movement ops (``reshape``, ``transpose``,
``pad``, ``concatenation``, ``constant``) are in :mod:`refquant.qmodel.nodes_data`.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationValueError, ShapeError
from ..ops import dynamic, layers, pointwise
from ..quantization import dequantize, quantize
from . import float_ops, nodes_data, nodes_onnx
from .graph import Node, TensorInfo

__all__ = ["run_node", "dequantize_weight"]

_F32 = np.float32


def _info(node: Node, tensors, i: int = 0) -> TensorInfo:
    return tensors[node.inputs[i]]


def _out(node: Node, tensors) -> TensorInfo:
    return tensors[node.output]


def dequantize_weight(node: Node) -> np.ndarray:
    """Float32 weights of a ``linear`` / ``conv2d`` node: $S (q - Z)$ per channel or per group.

    ``weight_scale`` is ``()`` (per tensor), ``(O,)`` (per output channel) or ``(O, G)`` with
    ``attrs["group_size"]`` (per group of that many input channels); zero points alike.
    """
    w = node.params["weight"]
    if w.dtype == np.float32:
        return w
    s = node.params["weight_scale"].astype(_F32)
    z = node.params.get("weight_zero_point", np.zeros(s.shape, np.int64)).astype(_F32)
    o = w.shape[0]
    if s.ndim <= 1:
        shape = (o,) + (1,) * (w.ndim - 1) if s.ndim else ()
        return ((w.astype(_F32) - z.reshape(shape)) * s.reshape(shape)).astype(_F32)
    gs = int(node.attrs["group_size"])
    wg = w.reshape((o, w.shape[1] // gs, gs) + w.shape[2:]).astype(_F32)
    shape = (o, s.shape[1]) + (1,) * (wg.ndim - 2)
    return ((wg - z.reshape(shape)) * s.reshape(shape)).astype(_F32).reshape(w.shape)


def _weight_args(node: Node):
    p = node.params
    return p["weight"], p["weight_scale"], p.get("weight_zero_point", np.int64(0)), p.get("bias")


def _float_weight(node: Node, cache: dict) -> np.ndarray:
    if "float_weight" not in cache:
        cache["float_weight"] = dequantize_weight(node)
    return cache["float_weight"]


def _run_quantize(node, args, tensors, profile, cache):
    return quantize(args[0].astype(_F32, copy=False), _out(node, tensors).qparams, profile)


def _run_dequantize(node, args, tensors, profile, cache):
    return dequantize(args[0], _info(node, tensors).qparams, profile).astype(_F32, copy=False)


def _run_requantize(node, args, tensors, profile, cache):
    x, y = _info(node, tensors), _out(node, tensors)
    return layers.requantize_tensor(args[0], _F32(x.scale), x.zero_point, _F32(y.scale), y.zero_point,
                                    profile=profile, out_dtype=np.dtype(y.dtype))


def _run_linear(node, args, tensors, profile, cache):
    x, y = _info(node, tensors), _out(node, tensors)
    act = node.attrs.get("activation")
    if not x.is_integer:
        b = node.params.get("bias")
        return float_ops.linear(args[0], _float_weight(node, cache), b, act)
    w, ws, wz, b = _weight_args(node)
    xin = args[0]
    if xin.ndim != 2:  # TFLite's FULLY_CONNECTED: the leading dimensions are the batch
        if w.shape[1] == 0 or xin.size % w.shape[1]:
            raise ShapeError(f"the input of a linear node must hold rows of the weight's {w.shape[1]} input "
                             f"features, got shape {xin.shape}")
        xin = xin.reshape(-1, w.shape[1])
    y_codes = layers.linear(xin, _F32(x.scale), x.zero_point, w, ws, wz, b, _F32(y.scale), y.zero_point,
                            profile=profile, activation=act, out_dtype=np.dtype(y.dtype))
    if node.attrs.get("keep_num_dims"):
        return y_codes.reshape(args[0].shape[:-1] + (w.shape[0],))
    return y_codes


def _conv_geometry(node):
    a = node.attrs
    pads = a.get("padding", (0, 0, 0, 0))
    return dict(strides=tuple(a.get("stride", (1, 1))), dilations=tuple(a.get("dilation", (1, 1))),
                pads=pads if isinstance(pads, str) else tuple(pads), groups=int(a.get("groups", 1)))


def _run_conv2d(node, args, tensors, profile, cache):
    x, y = _info(node, tensors), _out(node, tensors)
    act = node.attrs.get("activation")
    g = _conv_geometry(node)
    if not x.is_integer:
        return float_ops.conv2d(args[0], _float_weight(node, cache), node.params.get("bias"), stride=g["strides"],
                                padding=g["pads"], dilation=g["dilations"], groups=g["groups"], act=act)
    w, ws, wz, b = _weight_args(node)
    a = node.attrs
    layout = a.get("layout", "NCHW")
    if a.get("w_layout") == "1HWO":
        g["groups"] = None  # depthwise: one group per input channel
    return layers.conv2d(args[0], _F32(x.scale), x.zero_point, w, ws, wz, b, _F32(y.scale), y.zero_point,
                         profile=profile, activation=act, out_dtype=np.dtype(y.dtype), layout=layout,
                         w_layout=a.get("w_layout"), family=a.get("family"), **g)


def _run_add(node, args, tensors, profile, cache):
    a, b, y = _info(node, tensors, 0), _info(node, tensors, 1), _out(node, tensors)
    act = node.attrs.get("activation")
    if not a.is_integer:
        return float_ops.activation((args[0].astype(_F32) + args[1].astype(_F32)).astype(_F32), act)
    return pointwise.add(args[0], _F32(a.scale), a.zero_point, args[1], _F32(b.scale), b.zero_point, _F32(y.scale),
                         y.zero_point, profile=profile, activation=act)


def _run_mul(node, args, tensors, profile, cache):
    a, b, y = _integer(node, tensors, 0), _integer(node, tensors, 1), _out(node, tensors)
    return pointwise.mul(args[0], _F32(a.scale), a.zero_point, args[1], _F32(b.scale), b.zero_point, _F32(y.scale),
                         y.zero_point, profile=profile, activation=node.attrs.get("activation"))


def _run_mean(node, args, tensors, profile, cache):
    x, y = _integer(node, tensors), _out(node, tensors)
    axis = node.attrs["axis"]
    axes = (int(axis),) if np.ndim(axis) == 0 else tuple(int(v) for v in axis)
    return pointwise.mean(args[0], _F32(x.scale), x.zero_point, _F32(y.scale), y.zero_point, axes, profile=profile,
                          keep_dims=bool(node.attrs.get("keep_dims", False)))


def _run_softmax(node, args, tensors, profile, cache):
    x = _integer(node, tensors)
    return pointwise.softmax(args[0], _F32(x.scale), _F32(node.attrs.get("beta", 1.0)), profile=profile)


def _run_logistic(node, args, tensors, profile, cache):
    x, y = _integer(node, tensors), _out(node, tensors)
    return pointwise.logistic(args[0], _F32(x.scale), x.zero_point, _F32(y.scale), y.zero_point, profile=profile)


def _run_tanh(node, args, tensors, profile, cache):
    x, y = _integer(node, tensors), _out(node, tensors)
    return pointwise.tanh(args[0], _F32(x.scale), x.zero_point, _F32(y.scale), y.zero_point, profile=profile)


def _integer(node, tensors, i: int = 0) -> TensorInfo:
    """The node's ``i``-th input, which must be an integer tensor (these ops have no float32 version)."""
    t = _info(node, tensors, i)
    if not t.is_integer:
        raise QuantizationValueError(f"node {node.name!r} ({node.op}) runs on integer tensors only: its input "
                                     f"{t.name!r} is float32")
    return t


def _same_params(node, tensors) -> TensorInfo:
    x, y = _info(node, tensors), _out(node, tensors)
    if x.is_integer and (x.scale, x.zero_point, x.dtype) != (y.scale, y.zero_point, y.dtype):
        raise QuantizationValueError(f"node {node.name!r} ({node.op}) keeps its input's parameters: tensor "
                                     f"{y.name!r} must have scale {x.scale!r} and zero point {x.zero_point}, got "
                                     f"{y.scale!r} and {y.zero_point}")
    return x


def _pool(node, args, tensors, profile, fn, float_fn):
    x = _same_params(node, tensors)
    a = node.attrs
    kernel, stride = tuple(a["kernel"]), tuple(a.get("stride", a["kernel"]))
    nhwc_layout = a.get("layout", "NCHW") == "NHWC"
    if not x.is_integer:
        if nhwc_layout or a.get("padding", "VALID") != "VALID" or a.get("activation") not in (None, "NONE"):
            raise QuantizationValueError(f"node {node.name!r}: a float32 pool takes NCHW, VALID padding and no "
                                         f"activation only")
        return float_fn(args[0], kernel, stride)
    nhwc = args[0] if nhwc_layout else np.ascontiguousarray(args[0].transpose(0, 2, 3, 1))
    y = fn(nhwc, _F32(x.scale), x.zero_point, kernel, profile=profile, stride=stride,
           padding=a.get("padding", "VALID"), activation=a.get("activation"))
    return y if nhwc_layout else np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def _run_max_pool2d(node, args, tensors, profile, cache):
    return _pool(node, args, tensors, profile, pointwise.max_pool2d, float_ops.max_pool2d)


def _run_average_pool2d(node, args, tensors, profile, cache):
    return _pool(node, args, tensors, profile, pointwise.average_pool2d, float_ops.average_pool2d)


def _run_global_average_pool(node, args, tensors, profile, cache):
    x, y = _info(node, tensors), _out(node, tensors)
    if not x.is_integer:
        return float_ops.global_average_pool(args[0])
    out = pointwise.global_average_pool(args[0], _F32(x.scale), x.zero_point, _F32(y.scale), y.zero_point,
                                        profile=profile)
    return out.reshape(out.shape[0], int(np.prod(out.shape[1:], dtype=np.int64)))  # a batch of 0 too


def _run_flatten(node, args, tensors, profile, cache):
    _same_params(node, tensors)
    return args[0].reshape(args[0].shape[0], int(np.prod(args[0].shape[1:], dtype=np.int64)))


def _run_clamp(node, args, tensors, profile, cache):
    """A standalone ReLU / ReLU6 on codes: the activation's float limits quantized as the profile
    quantizes (what PyTorch's quantized ``hardtanh`` and ``relu`` do), then a clamp."""
    x = _same_params(node, tensors)
    limits = float_ops._LIMITS[node.attrs["activation"]]
    if not x.is_integer:
        return float_ops.activation(args[0], node.attrs["activation"])
    qp = x.qparams
    lo = int(quantize(np.float32(limits[0]), qp, profile))
    hi = None if limits[1] is None else int(quantize(np.float32(limits[1]), qp, profile))
    return np.clip(args[0], lo, hi).astype(args[0].dtype)


def _run_dynamic_linear(node, args, tensors, profile, cache):
    """Float in, float out: :func:`refquant.ops.dynamic.dynamic_linear` under the model's profile."""
    w, ws, wz, b = _weight_args(node)
    xf = args[0].astype(_F32, copy=False)
    if not np.all(np.isfinite(xf)):
        raise QuantizationValueError(f"node {node.name!r}: its input must be finite (its min and max choose the "
                                     f"activation's quantization parameters)")
    return dynamic.dynamic_linear(xf, w, np.asarray(ws, _F32), wz, b, profile=profile,
                                  reduce_range=bool(node.attrs.get("reduce_range")))


_RUN = {"quantize": _run_quantize, "dequantize": _run_dequantize, "requantize": _run_requantize,
        "linear": _run_linear, "conv2d": _run_conv2d, "add": _run_add, "max_pool2d": _run_max_pool2d,
        "average_pool2d": _run_average_pool2d, "global_average_pool": _run_global_average_pool,
        "flatten": _run_flatten, "clamp": _run_clamp, "dynamic_linear": _run_dynamic_linear, "mul": _run_mul,
        "mean": _run_mean, "softmax": _run_softmax, "logistic": _run_logistic, "tanh": _run_tanh,
        "reshape": nodes_data.run_reshape, "transpose": nodes_data.run_transpose, "pad": nodes_data.run_pad, "concatenation": nodes_data.run_concatenation,
        "constant": nodes_data.run_constant, **{op: nodes_onnx.run_onnx_node for op in nodes_onnx.ONNX_OPS}}


def run_node(node: Node, args: list, tensors: dict, profile, cache: dict) -> np.ndarray:
    """Run one node on its input arrays (see the module docstring)."""
    return _RUN[node.op](node, args, tensors, profile, cache)
