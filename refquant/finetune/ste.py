"""The backward pass of an integer model: straight-through gradients at the values it computed.

The forward pass is the integer model itself (:meth:`refquant.qmodel.QuantizedModel.trace`: every
tensor's codes). The backward pass walks the nodes in reverse and, for each one, applies the
Jacobian of its *float twin* — the same op on dequantized values, $r = S(q - Z)$ — evaluated at the
integer forward's own inputs:

$$ \\frac{\\partial L}{\\partial r_x} = J_f(r_x)^\\top \\Big( \\frac{\\partial L}{\\partial r_y} \\odot
   m(a) \\Big), \\tag{1} $$

$a$ the twin's pre-clamp output (the accumulator $\\sum w x + b$ in real units, or the sum of an
``add``); the mask passes $a$ where the fused activation is not flat (ReLU: $a > 0$, ReLU6:
$0 < a < 6$) and where the unclamped output code $\\mathrm{round}(a/S_y) + Z_y$ lies in
$[q_{\\min}, q_{\\max}]$ (PyTorch's fake-quantize mask, the one :mod:`refquant.qat` trains with).
This is the straight-through estimator (Bengio et al., 2013, as used by QAT: Jacob et al., 2018):
rounding counts as the identity, $\\partial\\,\\mathrm{quantize}/\\partial x = 1$ inside the range
and $0$ where the codes saturate.

**Why a float twin.** The integer ops have no derivative (they are step functions of their
inputs), and differentiating the fixed-point arithmetic op by op would only re-derive eq. (1) with
extra rounding noise. So the Jacobians come from :mod:`refquant.nn` layers (``Linear``, ``Conv2d``,
the pools) loaded with the node's dequantized weights, while every *value* the gradients are
evaluated at comes from the integer trace: the gradients are those of the model that actually
ran, as on a device that computes its backward pass in float (or in wider integers) beside an int8
forward. The twins are rebuilt from the nodes on every call, so they always match the current
integer parameters.

Supported ops: those :func:`refquant.ptq.quantize_static` and :func:`refquant.qat.convert` write for
the ``refquant.nn`` models (NCHW layouts); others raise :class:`~refquant.errors.UnsupportedError`.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from ..nn import AvgPool2d, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d
from ..qmodel import QuantizedModel
from ..qmodel.graph import Node, TensorInfo

__all__ = ["SUPPORTED_OPS", "GraphBackward", "check_supported"]

_F32 = np.float32
SUPPORTED_OPS = ("quantize", "dequantize", "requantize", "linear", "conv2d", "add", "max_pool2d", "average_pool2d",
                 "global_average_pool", "flatten", "clamp", "reshape")
_ACT = {None: (-np.inf, np.inf), "NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
        "RELU_N1_TO_1": (-1.0, 1.0)}


def check_supported(qm: QuantizedModel) -> None:
    """Refuse a node eq. (1) has no twin for, naming it (before any training step runs).

    Raises:
        QuantizationTypeError: ``qm`` is not a QuantizedModel.
        UnsupportedError: naming the first node that has no straight-through backward here.
    """
    if not isinstance(qm, QuantizedModel):
        raise QuantizationTypeError(f"qm must be a refquant.qmodel.QuantizedModel, got {type(qm).__name__}")
    for n in qm.nodes:
        a = n.attrs
        why = None
        if n.op not in SUPPORTED_OPS:
            why = f"op {n.op!r} has no straight-through backward here (supported: {list(SUPPORTED_OPS)})"
        elif a.get("layout", "NCHW") != "NCHW" or a.get("w_layout") not in (None, "OIHW"):
            why = "only NCHW activations and OIHW weights are supported (an imported .tflite is NHWC)"
        elif n.op == "conv2d" and isinstance(a.get("padding"), str):
            why = f"padding {a['padding']!r} (a string) is not supported; explicit pads are"
        elif n.op in ("max_pool2d", "average_pool2d") and (a.get("padding", "VALID") != "VALID"
                                                            or a.get("activation") not in (None, "NONE")):
            why = "a pool with padding or a fused activation is not supported"
        elif a.get("activation") not in _ACT:
            why = f"fused activation {a['activation']!r} is not supported"
        if why is not None:
            raise UnsupportedError(f"fine-tuning: node {n.name!r} ({n.op}): {why}")


def real_value(info: TensorInfo, a: np.ndarray, dtype=np.float32) -> np.ndarray:
    """$S(q - Z)$ for an integer tensor (in ``dtype``; float64 is exact: 8-bit codes times a float32
    scale), a float32 tensor as is (cast to ``dtype``)."""
    if not info.is_integer:
        return a.astype(dtype, copy=False)
    return ((a.astype(dtype) - dtype(info.zero_point)) * dtype(info.scale)).astype(dtype, copy=False)


def real_weight(node: Node) -> np.ndarray:
    """$S_w (q - Z_w)$ of a ``linear`` / ``conv2d`` node in float64 (exact), per tensor, channel or group."""
    w = node.params["weight"]
    if w.dtype.kind == "f":
        return w.astype(np.float64)
    s = node.params["weight_scale"].astype(np.float64)
    z = node.params.get("weight_zero_point", np.zeros(s.shape, np.int64)).astype(np.float64)
    if s.ndim <= 1:
        shape = (w.shape[0],) + (1,) * (w.ndim - 1) if s.ndim else ()
        return (w.astype(np.float64) - z.reshape(shape)) * s.reshape(shape)
    gs = int(node.attrs["group_size"])
    wg = w.reshape((w.shape[0], w.shape[1] // gs, gs) + w.shape[2:]).astype(np.float64)
    shape = s.shape + (1,) * (wg.ndim - 2)
    return ((wg - z.reshape(shape)) * s.reshape(shape)).reshape(w.shape)


def bias_scale(node: Node, tensors: dict) -> np.ndarray:
    """$S_x S_w$ (float32, ``()`` or ``(O,)``), the scale of an integer bias; 1 for a float bias."""
    x = tensors[node.inputs[0]]
    if node.params["bias"].dtype.kind == "f" or not x.is_integer:
        return np.ones((), _F32)
    return (_F32(x.scale) * node.params["weight_scale"].astype(_F32)).astype(_F32)


def _pass(a: np.ndarray, g: np.ndarray, info: TensorInfo, activation) -> np.ndarray:
    """Eq. (1)'s mask applied to ``g``: the fused activation's derivative (ReLU: $a > 0$; ReLU6:
    $0 < a < 6$) and, for an integer output, PyTorch's fake-quantize mask
    $q_{\\min} \\le \\mathrm{round}(a / S_y) + Z_y \\le q_{\\max}$ (as :mod:`refquant.qat` trains)."""
    lo, hi = _ACT[activation]
    keep = np.ones(a.shape, bool) if lo == -np.inf else (a > lo)
    if hi != np.inf:
        keep &= a < hi
    if info.is_integer:
        q = np.iinfo(np.dtype(info.dtype))
        code = np.rint(a.astype(np.float64) / info.scale) + info.zero_point  # unclamped code; ties: measure zero
        keep &= (code >= q.min) & (code <= q.max)
    return np.where(keep, g, _F32(0)).astype(_F32)


def _snap(node: Node, tensors: dict, twin, a: np.ndarray) -> np.ndarray:
    """The twin's accumulator rounded to the integer one it stands for.

    With integer inputs and weights, $a = S_x S_w (\\mathrm{acc} + b_q)$ for integers
    $\\mathrm{acc}$ and $b_q$ (the int32 bias; a float bias $b$ is added outside:
    $a = S_x S_w \\mathrm{acc} + b$), and the float64 twin's rounding is far below one unit
    $S_x S_w$, so rounding to whole units recovers the integer sum. This matters where that sum is
    exactly 0 (a zero input patch, padding): the twin's $\\pm 10^{-9}$ would otherwise decide
    ReLU's mask by noise.
    """
    x = tensors[node.inputs[0]]
    if not x.is_integer or node.params["weight"].dtype.kind == "f":
        return a
    s = node.params["weight_scale"].astype(np.float64)
    if s.ndim > 1:  # grouped scales: no single unit per output channel
        return a
    unit = (np.float64(x.scale) * s).reshape((-1,) + (1,) * (a.ndim - 2)) if s.ndim else np.float64(x.scale) * s
    b = 0.0
    if twin.bias is not None and node.params["bias"].dtype.kind == "f":
        b = twin.bias.value.reshape(np.shape(unit) or ())
    return np.rint((a - b) / unit) * unit + b


def _unbroadcast(g: np.ndarray, shape) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (the gradient of NumPy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


class GraphBackward:
    """Eq. (1) over a whole model: ``run(qm, env, grad)`` → parameter gradients of ``trainable`` nodes.

    Args:
        qm: the model (only its graph is read here; parameters are read on every ``run``).
        trainable: names of the ``linear`` / ``conv2d`` nodes whose weight and bias gradients are wanted.
            Only the nodes downstream of them are walked (no work before the earliest).
    """

    def __init__(self, qm: QuantizedModel, trainable):
        check_supported(qm)
        layers = [n.name for n in qm.nodes if n.op in ("linear", "conv2d")]
        if isinstance(trainable, str) or not isinstance(trainable, (list, tuple, set, frozenset, dict)):
            raise QuantizationTypeError(f"trainable must be a collection of node names, got {V.describe(trainable)}")
        wrong = [t for t in trainable if t not in layers]
        if wrong:
            raise QuantizationValueError(f"trainable must name linear / conv2d nodes of qm (one of {layers}), "
                                         f"got {wrong[0]!r}")
        self.trainable = set(trainable)
        self.live, live_tensors = [], set()
        for n in qm.nodes:
            if n.name in self.trainable or any(i in live_tensors for i in n.inputs):
                self.live.append(n)
                live_tensors.add(n.output)
        self.live_tensors = live_tensors
        self._twins: dict = {}

    def run(self, qm: QuantizedModel, env: dict, grad_outputs: dict) -> dict:
        """Walk the live nodes backward.

        Args:
            qm: the model whose trace ``env`` is (same graph as at construction).
            env: :meth:`~refquant.qmodel.QuantizedModel.trace` of one batch.
            grad_outputs: $\\partial L/\\partial r$ for output tensors, float32, by tensor name.

        Returns:
            ``{node name: {"weight": dL/dW, "bias": dL/db}}`` in real units, float32, for every
            trainable node (``"bias"`` only if the node has one).
        """
        tensors = qm.tensors
        grads = {k: v.astype(_F32) for k, v in grad_outputs.items()}
        out: dict = {}
        current = {n.name: n for n in qm.nodes}  # this run's parameters, the constructor's graph
        for node in reversed([current[n.name] for n in self.live]):
            g = grads.pop(node.output, None)
            if g is None:
                continue
            xs = [real_value(tensors[i], env[i], np.float64) for i in node.inputs]
            g_inputs = self._node(node, xs, g, tensors, out)
            for name, gi in zip(node.inputs, g_inputs):
                if gi is not None and name in self.live_tensors:
                    grads[name] = gi if name not in grads else grads[name] + gi
        return out

    def _node(self, node: Node, xs, g, tensors, out) -> list:
        """The gradients of ``node``'s inputs (one per input) for output gradient ``g``."""
        op, y = node.op, tensors[node.output]
        act = node.attrs.get("activation")
        if op in ("dequantize", "flatten", "reshape"):
            return [g.reshape(xs[0].shape)]
        if op in ("quantize", "requantize", "clamp"):
            return [_pass(xs[0], g, y, act)]
        if op == "add":
            gm = _pass(xs[0] + xs[1], g, y, act)
            return [_unbroadcast(gm, xs[0].shape), _unbroadcast(gm, xs[1].shape)]
        if op in ("linear", "conv2d"):
            return [self._layer(node, xs[0], g, tensors, out)]
        twin = self._pool_twin(node)
        a = twin.forward(xs[0])
        if op == "global_average_pool":
            g = _pass(a, g.reshape(a.shape), y, None)
        return [twin.backward(g).astype(_F32)]

    def _layer(self, node: Node, x: np.ndarray, g: np.ndarray, tensors, out) -> np.ndarray:
        twin = self._layer_twin(node, tensors)
        w = twin.weight.value
        x2 = x.reshape(-1, w.shape[1]) if node.op == "linear" else x  # TFLite's FULLY_CONNECTED flattens
        a = _snap(node, tensors, twin, twin.forward(x2))  # the real accumulator: eq. (1)'s a
        gm = _pass(a, g.reshape(a.shape), tensors[node.output], node.attrs.get("activation"))
        gx = twin.backward(gm)
        if node.name in self.trainable:
            out[node.name] = {"weight": twin.weight.grad.astype(_F32)}
            if twin.bias is not None:
                out[node.name]["bias"] = twin.bias.grad.astype(_F32)
        return gx.reshape(x.shape).astype(_F32)

    def _layer_twin(self, node: Node, tensors):
        """The node's float twin, with its current dequantized weight and real bias."""
        w = real_weight(node)  # float64: products with exact real inputs, so _snap is exact too
        has_bias = "bias" in node.params
        twin = self._twins.get(node.name)
        if twin is None:
            if node.op == "linear":
                twin = Linear(w.shape[1], w.shape[0], bias=has_bias, rng=0, dtype=np.float64)
            else:
                a = node.attrs
                top, left, bottom, right = a.get("padding", (0, 0, 0, 0))
                groups = int(a.get("groups", 1))
                twin = Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), groups=groups, bias=has_bias,
                              stride=tuple(a.get("stride", (1, 1))), padding=(top, bottom, left, right),
                              dilation=tuple(a.get("dilation", (1, 1))), rng=0, dtype=np.float64)
            self._twins[node.name] = twin
        twin.weight.value = w
        twin.weight.requires_grad = node.name in self.trainable
        if has_bias:
            b = node.params["bias"]
            twin.bias.value = b.astype(np.float64) * bias_scale(node, tensors)
            twin.bias.requires_grad = node.name in self.trainable
        twin.zero_grad()
        return twin

    def _pool_twin(self, node: Node):
        twin = self._twins.get(node.name)
        if twin is None:
            a = node.attrs
            if node.op == "global_average_pool":
                twin = GlobalAvgPool2d()
            else:
                cls = MaxPool2d if node.op == "max_pool2d" else AvgPool2d
                twin = cls(tuple(a["kernel"]), tuple(a.get("stride", a["kernel"])))
            self._twins[node.name] = twin
        return twin
