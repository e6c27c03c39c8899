"""A :class:`~refquant.qmodel.QuantizedModel` of a TFLite profile written as ``.tflite`` (internal to
:mod:`refquant.interop.tflite`).

The flows build NCHW models; LiteRT's convolutions and pools take NHWC. Each tensor is written in
the model's own layout, and a 4-D tensor that a convolution, pool or MEAN reads gets one
TRANSPOSE to NHWC (a transpose moves codes, so it is exact); a ``flatten`` or a graph output reads
the model's layout back. Explicit convolution padding becomes ``SAME`` when it equals TFLite's
``SAME`` for stride 1, ``VALID`` when it is 0, else a PAD with the input's zero point (the code of
the real value 0, what the convolution's padding means) before a ``VALID`` convolution; the file
so runs at any input size. Node by node:

| node | operators |
|---|---|
| ``quantize`` / ``dequantize`` / ``requantize`` | QUANTIZE / DEQUANTIZE / QUANTIZE |
| ``conv2d`` (groups 1) / (groups = channels, one input channel per group) | [PAD] CONV_2D / [PAD] DEPTHWISE_CONV_2D |
| ``linear`` | FULLY_CONNECTED |
| ``add`` (one shape) | ADD |
| ``max_pool2d`` / ``average_pool2d`` (no padding) | MAX_POOL_2D / AVERAGE_POOL_2D (``VALID``) |
| ``global_average_pool`` | MEAN over axes (1, 2) |
| ``flatten`` | RESHAPE to ``(-1, K)`` |

Tensor shapes are written for a batch of 1 with a free batch (shape signature -1); the per-sample
input shape comes from the caller. The file is written to a temporary name beside ``path`` and
renamed.
"""

from __future__ import annotations


import numpy as np

from ..qmodel import storage
from ..errors import RefquantError, UnsupportedError
from ._tflite_write import TfliteWriter

__all__ = ["export_model"]

_NHWC, _NCHW_TO_NHWC, _NHWC_TO_NCHW = "nhwc", (0, 2, 3, 1), (0, 3, 1, 2)


class _Exporter:
    def __init__(self, qmodel, shapes: dict):
        self.qm, self.shapes, self.w = qmodel, shapes, TfliteWriter()
        self.index: dict = {}  # (tensor name, layout) -> tflite tensor index; layout "model" or "nhwc"

    def _new(self, name: str, layout: str, shape) -> int:
        t = self.qm.tensors[name]
        tname = name if layout == "model" else f"{name}:nhwc"
        sig = (-1,) + tuple(shape[1:]) if len(shape) else None
        return self.w.tensor(tname, shape, t.dtype, t.scale if t.is_integer else None,
                             t.zero_point if t.is_integer else None, signature=sig)

    def out(self, node, layout: str = "model") -> int:
        shape = self.shapes[node.output]
        if layout == _NHWC:
            shape = tuple(shape[i] for i in _NCHW_TO_NHWC)
        i = self._new(node.output, layout, shape)
        self.index[node.output, layout] = i
        return i

    def get(self, name: str, layout: str = "model") -> int:
        """Tensor ``name`` in ``layout``, a TRANSPOSE added the first time the other layout is asked for."""
        if (name, layout) in self.index:
            return self.index[name, layout]
        other = _NHWC if layout == "model" else "model"
        src = self.index[name, other]
        perm = _NCHW_TO_NHWC if layout == _NHWC else _NHWC_TO_NCHW
        shape = self.shapes[name]
        i = self._new(name, layout, tuple(shape[p] for p in _NCHW_TO_NHWC) if layout == _NHWC else shape)
        self.w.op("TRANSPOSE", [src, self.w.constant(f"{name}:perm", np.asarray(perm, np.int32))], [i])
        self.index[name, layout] = i
        return i

    def layout_of(self, name: str) -> str:
        return _NHWC if (name, _NHWC) in self.index else "model"

    # ------------------------------------------------------------------ nodes
    def weights(self, node, w: np.ndarray, axis: int):
        """(weights, bias) constant tensors; the bias scale is $S_x S_w[c]$ (float32 of the double product)."""
        p = node.params
        if np.any(np.asarray(p.get("weight_zero_point", 0)) != 0) or w.dtype != np.int8:
            raise UnsupportedError(f"node {node.name!r}: TFLite weights are int8 with zero point 0, got {w.dtype} "
                                   f"with zero points {np.unique(np.asarray(p.get('weight_zero_point', 0))).tolist()}")
        ws = np.asarray(p["weight_scale"], np.float32).reshape(-1)
        wi = self.w.tensor(f"{node.name}:weight", w.shape, "int8", ws, np.zeros(ws.size, np.int64), data=w,
                           quantized_dimension=axis if ws.size > 1 else 0)
        b = p.get("bias")
        if b is None:
            return wi, -1
        xs = np.float64(self.qm.tensors[node.inputs[0]].scale)
        bs = (xs * ws.astype(np.float64)).astype(np.float32)
        bi = self.w.tensor(f"{node.name}:bias", b.shape, b.dtype.name, bs, np.zeros(bs.size, np.int64), data=b)
        return wi, bi

    def conv2d(self, node):
        a = node.attrs
        if a.get("layout", "NCHW") != "NCHW" or isinstance(a.get("padding", ()), str):
            raise UnsupportedError(f"node {node.name!r}: only the flows' NCHW conv2d nodes are written")
        w = node.params["weight"]  # (O, C/g, kH, kW)
        o, cg, kh, kw = w.shape
        c = self.shapes[node.inputs[0]][1]
        groups = int(a.get("groups", 1))
        depthwise = groups == c and cg == 1 and groups > 1
        if groups != 1 and not depthwise:
            raise UnsupportedError(f"node {node.name!r}: a grouped convolution ({groups} groups of {cg} channels) "
                                   f"is not written")
        (sh, sw), (dh, dw) = a.get("stride", (1, 1)), a.get("dilation", (1, 1))
        x = self.get(node.inputs[0], _NHWC)
        x, padding = self._padding(node, x, tuple(a.get("padding", (0, 0, 0, 0))), (kh, kw), (sh, sw), (dh, dw))
        if depthwise:
            wi, bi = self.weights(node, np.ascontiguousarray(w.transpose(1, 2, 3, 0)), 3)
            self.w.op("DEPTHWISE_CONV_2D", [x, wi, bi], [self.out(node, _NHWC)], "DepthwiseConv2DOptions",
                      padding=padding, strideW=sw, strideH=sh, depthMultiplier=o // c, dilationWFactor=dw,
                      dilationHFactor=dh, fusedActivationFunction=a.get("activation"))
        else:
            wi, bi = self.weights(node, np.ascontiguousarray(w.transpose(0, 2, 3, 1)), 0)
            self.w.op("CONV_2D", [x, wi, bi], [self.out(node, _NHWC)], "Conv2DOptions", padding=padding,
                      strideW=sw, strideH=sh, dilationWFactor=dw, dilationHFactor=dh,
                      fusedActivationFunction=a.get("activation"))

    def _padding(self, node, x: int, pads, k, s, d) -> tuple[int, str]:
        """``(input tensor, "VALID" | "SAME")`` of a convolution: a PAD's output when the padding is neither."""
        if not any(pads):
            return x, "VALID"
        total = [(k[i] - 1) * d[i] for i in (0, 1)]
        same = (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
        if s == (1, 1) and tuple(pads) == same:
            return x, "SAME"
        t = self.qm.tensors[node.inputs[0]]
        n, h, w, c = self.w.tensors[x].shape
        pt, pl, pb, pr = pads
        shape = (n, h + pt + pb, w + pl + pr, c)
        padded = self.w.tensor(f"{node.name}:pad", shape, t.dtype, t.scale, t.zero_point, signature=(-1,) + shape[1:])
        spec = self.w.constant(f"{node.name}:paddings", np.asarray([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32))
        self.w.op("PAD", [x, spec], [padded])
        return padded, "VALID"

    def linear(self, node):
        x = self.get(node.inputs[0])
        if len(self.shapes[node.inputs[0]]) != 2:
            raise UnsupportedError(f"node {node.name!r}: a linear node writes FULLY_CONNECTED from a 2-D input, got "
                                   f"shape {self.shapes[node.inputs[0]]} from the model's input_shape")
        wi, bi = self.weights(node, node.params["weight"], 0)
        self.w.op("FULLY_CONNECTED", [x, wi, bi], [self.out(node)], "FullyConnectedOptions",
                  fusedActivationFunction=node.attrs.get("activation"))

    def add(self, node):
        a, b = node.inputs
        if self.shapes[a] != self.shapes[b]:
            raise UnsupportedError(f"node {node.name!r}: a broadcasting add is not written")
        layout = _NHWC if len(self.shapes[a]) == 4 else "model"
        self.w.op("ADD", [self.get(a, layout), self.get(b, layout)], [self.out(node, layout)], "AddOptions",
                  fusedActivationFunction=node.attrs.get("activation"))

    def pool(self, node):
        a = node.attrs
        if a.get("padding", "VALID") != "VALID" or a.get("activation") not in (None, "NONE") or \
                a.get("layout", "NCHW") != "NCHW":
            raise UnsupportedError(f"node {node.name!r}: only unpadded NCHW pools without activation are written")
        kh, kw = a["kernel"]
        sh, sw = a.get("stride", a["kernel"])
        name = "MAX_POOL_2D" if node.op == "max_pool2d" else "AVERAGE_POOL_2D"
        self.w.op(name, [self.get(node.inputs[0], _NHWC)], [self.out(node, _NHWC)], "Pool2DOptions", padding="VALID",
                  strideW=sw, strideH=sh, filterWidth=kw, filterHeight=kh, fusedActivationFunction=None)

    def global_average_pool(self, node):
        axes = self.w.constant(f"{node.name}:axes", np.asarray([1, 2], np.int32))
        self.w.op("MEAN", [self.get(node.inputs[0], _NHWC), axes], [self.out(node)], "ReducerOptions", keepDims=False)

    def flatten(self, node):
        k = int(np.prod(self.shapes[node.inputs[0]][1:]))
        shape = self.w.constant(f"{node.name}:shape", np.asarray([-1, k], np.int32))
        self.w.op("RESHAPE", [self.get(node.inputs[0]), shape], [self.out(node)])

    def rescale(self, node):
        op = "DEQUANTIZE" if node.op == "dequantize" else "QUANTIZE"
        layout = "model" if node.op != "requantize" else self.layout_of(node.inputs[0])
        self.w.op(op, [self.get(node.inputs[0], layout)], [self.out(node, layout)])

    def node(self, node, *, check_only: bool = False):
        run = {"conv2d": self.conv2d, "linear": self.linear, "add": self.add, "max_pool2d": self.pool,
               "average_pool2d": self.pool, "global_average_pool": self.global_average_pool,
               "flatten": self.flatten, "quantize": self.rescale, "dequantize": self.rescale,
               "requantize": self.rescale}
        if node.op not in run:
            raise UnsupportedError(f"node {node.name!r}: op {node.op!r} is not written to .tflite; export writes "
                                   f"{', '.join(run)}")
        if node.op in ("conv2d", "linear", "add") and not self.qm.tensors[node.inputs[0]].is_integer:
            raise UnsupportedError(f"node {node.name!r} ({node.op}) runs in float32: export writes fully integer "
                                   f"models")
        if node.attrs.get("layout", "NCHW") != "NCHW":
            raise UnsupportedError(f"node {node.name!r} ({node.op}): only the flows' NCHW nodes are written, got "
                                   f"layout {node.attrs['layout']!r}")
        if not check_only:
            run[node.op](node)


def _shapes(qmodel, input_shape) -> dict:
    """Every tensor's shape for a batch of 1 (one :meth:`trace` of zeros)."""
    feeds = {}
    for name in qmodel.inputs:
        t = qmodel.tensors[name]
        feeds[name] = np.zeros((1,) + tuple(input_shape), np.float32 if not t.is_integer else t.dtype)
    try:
        env = qmodel.trace(feeds if len(feeds) > 1 else feeds[qmodel.inputs[0]])
    except RefquantError as err:  # the model does not run on samples of this shape
        raise type(err)(f"input_shape {tuple(input_shape)} does not fit the model: {err}") from None
    return {k: tuple(v.shape) for k, v in env.items()}


def export_model(qmodel, path, input_shape) -> None:
    """Write ``qmodel`` (a TFLite profile, checked by the caller) to ``path`` atomically."""
    storage.check_path(path)  # before any work
    checker = _Exporter(qmodel, {})
    for node in qmodel.nodes:  # refuse before running anything
        checker.node(node, check_only=True)
    e = _Exporter(qmodel, _shapes(qmodel, input_shape))
    for name in qmodel.inputs:
        e.index[name, "model"] = e._new(name, "model", e.shapes[name])
    for node in qmodel.nodes:
        e.node(node)
    content = e.w.finish([e.index[n, "model"] for n in qmodel.inputs], [e.get(n) for n in qmodel.outputs],
                         f"refquant export ({qmodel.profile})")
    storage.write_atomic(path, lambda f: f.write(content))
