"""Integer-model nodes for ONNX operators that have no profile-neutral node: ONNX Runtime's
``com.microsoft`` QLinear contrib ops, ONNX's MaxPool and shape operators, and the order-free
float operators ONNX Runtime runs between DequantizeLinear and QuantizeLinear when it does not
fuse them (what :func:`refquant.interop.onnx.import_quantized` builds).

| op | computes | attrs |
|---|---|---|
| ``qlinear_softmax`` | ``QLinearSoftmax`` (:func:`refquant.backends.onnxruntime.qlinear_softmax`) | ``axis``, ``opset`` |
| ``qlinear_leaky_relu`` | ``QLinearLeakyRelu`` | ``alpha`` |
| ``qlinear_average_pool`` | ``QLinearAveragePool`` | ``kernel_shape``, ``strides``, ``pads``, ``ceil_mode``, ``count_include_pad``, ``auto_pad`` |
| ``qlinear_concat`` | ``QLinearConcat``: inputs of any parameters, requantized to the output's | ``axis`` |
| ``qgemm`` | ``com.microsoft.QGemm`` with ``alpha``, ``transA``, a float32 output or a 2-D ``C`` (else a ``linear`` node); params ``B``, ``b_scale``, ``b_zero_point``, ``C`` | ``alpha``, ``transA``, ``transB`` |
| ``onnx_max_pool`` | ``MaxPool`` on codes | ``kernel_shape``, ``strides``, ``pads``, ``dilations``, ``ceil_mode``, ``auto_pad`` |
| ``onnx_shape`` | ``Reshape`` (``0`` copies a dimension, ``-1`` is inferred), ``Flatten``, ``Squeeze``, ``Unsqueeze`` on codes or float32 | ``kind``, ``shape`` / ``axis`` / ``axes`` |
| ``float_elementwise`` | ``Add``, ``Sub``, ``Mul``, ``Max``, ``Min``, ``Relu``, ``Clip`` in float32 (each element one IEEE operation, so the result does not depend on the library) | ``fn``, ``min``, ``max`` |

The QLinear ops exist only in ONNX Runtime, so these nodes compute its arithmetic through its face
(the model's profile must be ``onnxruntime``); the shape and float nodes are exact everywhere.
"""

from __future__ import annotations

import numpy as np

from ..backends import onnxruntime as ort
from ..errors import QuantizationValueError, ShapeError, UnsupportedError
from .graph import Node

__all__ = ["ONNX_OPS", "run_onnx_node"]

#: Node ops of this module (see the module table).
ONNX_OPS = ("qlinear_softmax", "qlinear_leaky_relu", "qlinear_average_pool", "qlinear_concat", "qgemm",
            "onnx_max_pool", "onnx_shape", "float_elementwise")

_F32 = np.float32


def _ort_only(node: Node, profile) -> None:
    if profile.name != "onnxruntime":
        raise UnsupportedError(f"node {node.name!r} ({node.op}) is an ONNX Runtime contrib op: it runs under the "
                               f"'onnxruntime' profile only, got {profile.name!r}")


def _params(tensors, name: str):
    t = tensors[name]
    if not t.is_integer:
        raise QuantizationValueError(f"tensor {name!r} must be an integer tensor (codes), got float32")
    return _F32(t.scale), np.dtype(t.dtype).type(t.zero_point)


def _unary(node, args, tensors, profile, fn, **kw):
    _ort_only(node, profile)
    (sx, zx), (sy, zy) = _params(tensors, node.inputs[0]), _params(tensors, node.output)
    return fn(args[0], sx, zx, sy, zy, **kw)


def _softmax(node, args, tensors, profile):
    a = node.attrs
    return _unary(node, args, tensors, profile, ort.qlinear_softmax, axis=int(a.get("axis", -1)),
                  opset=int(a.get("opset", 13)))


def _leaky_relu(node, args, tensors, profile):
    return _unary(node, args, tensors, profile, ort.qlinear_leaky_relu, alpha=float(node.attrs.get("alpha", 0.01)))


def _pool_kw(a, keys):
    return {k: a[k] for k in keys if a.get(k) is not None}


def _average_pool(node, args, tensors, profile):
    kw = _pool_kw(node.attrs, ("kernel_shape", "strides", "pads", "ceil_mode", "count_include_pad", "auto_pad"))
    return _unary(node, args, tensors, profile, ort.qlinear_average_pool, **kw)


def _concat(node, args, tensors, profile):
    _ort_only(node, profile)
    sy, zy = _params(tensors, node.output)
    triples = []
    for name, a in zip(node.inputs, args):
        triples += [a, *_params(tensors, name)]
    return ort.qlinear_concat(sy, zy, *triples, axis=int(node.attrs["axis"]))


def _qgemm(node, args, tensors, profile):
    _ort_only(node, profile)
    p, a, y = node.params, node.attrs, tensors[node.output]
    sa, za = _params(tensors, node.inputs[0])
    bz = p.get("b_zero_point", np.zeros((), p["B"].dtype))
    ys, yz = (None, None) if not y.is_integer else (_F32(y.scale), np.dtype(y.dtype).type(y.zero_point))
    return ort.qgemm(args[0], sa, za, p["B"], p["b_scale"], bz.astype(p["B"].dtype), p.get("C"), ys, yz,
                     alpha=float(a.get("alpha", 1.0)), transA=int(a.get("transA", 0)), transB=int(a.get("transB", 0)),
                     isa="vnni" if "vnni" in profile.isa else profile.isa)  # MLAS: any VNNI is exact


def _max_pool(node, args, tensors, profile):
    kw = _pool_kw(node.attrs, ("kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad"))
    if args[0].dtype == np.float32:
        raise UnsupportedError(f"node {node.name!r}: MaxPool on float32 tensors is not modelled (only on codes)")
    return ort.max_pool(args[0], **kw)


def _reshape_target(x_shape, shape, allowzero: bool):
    out = [x_shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(shape)]
    if out.count(-1) > 1:
        raise ShapeError(f"a Reshape shape may hold one -1, got {list(shape)}")
    known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
    if -1 in out and int(np.prod(x_shape, dtype=np.int64)) == 0 and known:  # an empty batch: -1 is 0
        out[out.index(-1)] = 0
    return tuple(out)


def _shape(node, args, tensors, profile):
    x, a = args[0], node.attrs
    kind = a["kind"]
    try:
        if kind == "reshape":
            return x.reshape(_reshape_target(x.shape, [int(d) for d in a["shape"]], bool(a.get("allowzero", 0))))
        if kind == "flatten":
            axis = int(a.get("axis", 1)) % (x.ndim + 1) if x.ndim else 0
            return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis:], dtype=np.int64)))
        if kind == "squeeze":
            axes = a.get("axes")
            return np.squeeze(x, axis=None if axes is None else tuple(int(v) for v in axes))
        if kind == "unsqueeze":
            return np.expand_dims(x, tuple(int(v) for v in a["axes"]))
    except (ValueError, np.exceptions.AxisError) as err:
        raise ShapeError(f"node {node.name!r} ({kind}) cannot apply to an input of shape {x.shape}: {err}") from None
    raise QuantizationValueError(f"node {node.name!r}: attrs['kind'] must be reshape, flatten, squeeze or unsqueeze, "
                                 f"got {kind!r}")


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum, "Min": np.minimum}


def _float(node, args, tensors, profile):
    fn = node.attrs["fn"]
    xs = [np.asarray(v, _F32) for v in args]
    with np.errstate(all="ignore"):
        if fn in _BINARY:
            out = xs[0]
            for v in xs[1:]:
                out = _BINARY[fn](out, v)
            return out.astype(_F32, copy=False)
        if fn == "Relu":
            return np.maximum(xs[0], _F32(0))
        if fn == "Clip":
            lo, hi = node.attrs.get("min"), node.attrs.get("max")
            y = xs[0]
            if lo is not None:
                y = np.maximum(y, _F32(lo))
            if hi is not None:
                y = np.minimum(y, _F32(hi))
            return y
    raise QuantizationValueError(f"node {node.name!r}: attrs['fn'] must be one of {sorted(_BINARY) + ['Clip', 'Relu']}, "
                                 f"got {fn!r}")


_RUN = {"qgemm": _qgemm, "qlinear_softmax": _softmax, "qlinear_leaky_relu": _leaky_relu, "qlinear_average_pool": _average_pool,
        "qlinear_concat": _concat, "onnx_max_pool": _max_pool, "onnx_shape": _shape, "float_elementwise": _float}


def run_onnx_node(node, args, tensors, profile, cache):
    """Run one node of this module's ops on its input arrays."""
    return _RUN[node.op](node, args, tensors, profile)
