"""Which integer parameters fine-tuning may change, their float master copies, and the re-quantization
that writes them back into the integer model.

| ``update`` | trained (float master) | written back into the node as |
|---|---|---|
| ``"bias"`` | every ``linear`` / ``conv2d`` bias, real units | int32 $\\mathrm{round}(b / (S_x S_w))$ by the tool's rule (:func:`refquant.ptq.recipes.quantize_bias`); a float32 bias as is |
| ``"last"`` | the last ``linear`` node's weight and bias | codes $\\mathrm{clamp}(\\mathrm{RNE}(w / S_w) + Z_w)$ with the layer's **existing** scales, in the tool's code range; bias as above |
| ``"scales"`` | $u$ per weight scale: $S_w = S_{w,0}\\, e^{u}$, $u \\in [-\\ln 8, \\ln 8]$ | float32 ``weight_scale``; the int32 bias re-quantized with the new $S_x S_w$ so its real value stays |

``update`` may also be a tuple of these (``("scales", "bias")``).

**Why masters.** A step smaller than half a code would vanish if the codes were stepped directly
(the learning rate times a gradient is usually far below one weight LSB). So each trained value
has a float copy that accumulates the steps, and the integer model is re-derived from it before
every forward pass — the same arrangement as QAT's latent weights, kept here only for the few
values being trained (``FinetuneReport.trainable_values`` of them; float64 in this reference, float32
would do on a device).

**Why ``"scales"`` is sound.** With batch norm folded, a per-channel weight scale carries the BN
scale $\\gamma/\\sigma$ of that channel: training it is BN-affine adaptation, a classic remedy for a
shift of the input distribution. The codes do not change, $S_w > 0$ always ($e^u$), the runtime
derives its fixed-point multiplier $S_x S_w / S_y$ from the new scale as for any model, and the
bias follows the scale so that only what the gradient asked for changes. Gradient (codes fixed):
$\\partial L/\\partial u_c = \\sum_{i \\in c} (\\partial L/\\partial w_i)\\, w_i$.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..dtypes import pack_int4
from ..errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from ..nn import Parameter
from ..ptq.recipes import RECIPES, quantize_bias
from ..qmodel import Node, QuantizedModel
from ..rounding import round_half_away_from_zero, round_half_to_even
from .ste import bias_scale, real_weight

__all__ = ["UPDATES", "param_changes"]

_F32 = np.float32
UPDATES = ("bias", "last", "scales")
SCALE_LIMIT = float(np.log(8.0))  # |u| <= ln 8: a scale moves at most 8x either way


def as_update(update) -> tuple:
    """``update`` (one of :data:`UPDATES`, or a tuple/list of them) as a tuple of distinct modes."""
    items = (update,) if isinstance(update, str) else update
    if not isinstance(items, (tuple, list)) or not items:
        raise QuantizationTypeError(f"update must be one of {UPDATES} or a tuple of them, got {V.describe(update)}")
    modes = tuple(V.as_choice(u, "update", UPDATES) for u in items)
    if len(set(modes)) != len(modes):
        raise QuantizationValueError(f"update must name each mode once, got {list(modes)}")
    return modes


def weight_code_range(qm: QuantizedModel, node: Node) -> tuple[int, int]:
    """The codes the tool that made ``qm`` writes for ``node``'s weights: symmetric narrow
    $[-(2^{b-1} - 1), 2^{b-1} - 1]$ (TFLite, ONNX Runtime, weight-only), 7-bit $[-64, 64]$ where ONNX
    Runtime reduces the range for the CPU, $[-128, 127]$ for PyTorch; the dtype's range for
    asymmetric weights (a non-zero zero point)."""
    info = np.iinfo(node.params["weight"].dtype)
    if np.any(node.params.get("weight_zero_point", np.zeros(())) != 0):
        return int(info.min), int(info.max)
    bits = int(node.attrs.get("weight_bits", 8))
    recipe = RECIPES.get(qm.profile)
    if recipe is not None and bits == 8:
        if recipe.name == "pytorch":
            return -128, 127
        if qm.resolved_profile.isa in recipe.weight_reduce_range_isas:
            return -64, 64
    return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1


def _channel_shape(scale: np.ndarray, w: np.ndarray) -> tuple:
    return scale.shape + (1,) * (w.ndim - scale.ndim)


@dataclass
class _Layer:
    node: Node                      # the original node
    x_scale: float | None           # its input's scale (None: float input)
    scale0: np.ndarray              # float32 weight scale, () or (O,)
    zero: np.ndarray                # weight zero points, broadcastable to the weight
    bias0: np.ndarray | None        # the real bias, float64
    code_range: tuple
    weight: Parameter | None = None     # "last": real weight master
    bias: Parameter | None = None       # "bias"/"last": real bias master
    log_scale: Parameter | None = None  # "scales": u

    def scale(self) -> np.ndarray:
        if self.log_scale is None:
            return self.scale0
        return (self.scale0.astype(np.float64) * np.exp(self.log_scale.value)).astype(_F32)


class Trainable:
    """The trained subset of ``qm`` (see the module table) and how it maps back to integer nodes.

    Raises:
        UnsupportedError: ``"last"`` on a model without a ``linear`` node; ``"last"`` / ``"scales"`` on
            grouped (block-wise) weight scales or float weights.
    """

    def __init__(self, qm: QuantizedModel, modes):
        if not isinstance(qm, QuantizedModel):
            raise QuantizationTypeError(f"qm must be a refquant.qmodel.QuantizedModel, got {type(qm).__name__}")
        modes = as_update(modes)
        self.qm, self.modes = qm, modes
        self.recipe = RECIPES.get(qm.profile)
        layers = [n for n in qm.nodes if n.op in ("linear", "conv2d")]
        last = [n for n in layers if n.op == "linear"]
        if "last" in modes and not last:
            raise UnsupportedError("update='last' needs a linear node (the classifier); the model has none")
        self.layers: dict[str, _Layer] = {}
        for n in layers:
            want_w = "last" in modes and n is last[-1]
            want_b = ("bias" in modes or want_w) and "bias" in n.params
            want_s = "scales" in modes
            if (want_w or want_s) and (n.params["weight"].dtype.kind == "f" or n.params["weight_scale"].ndim > 1):
                raise UnsupportedError(f"fine-tuning: node {n.name!r}: update {modes} needs integer weights with a "
                                       f"per-tensor or per-channel scale")
            if want_w or want_b or want_s:
                self.layers[n.name] = self._layer(n, want_w, want_b, want_s)

    def _layer(self, n: Node, want_w: bool, want_b: bool, want_s: bool) -> _Layer:
        x = self.qm.tensors[n.inputs[0]]
        w = n.params["weight"]
        scale0 = n.params["weight_scale"].astype(_F32) if "weight_scale" in n.params else np.ones((), _F32)
        zero = n.params.get("weight_zero_point", np.zeros(scale0.shape, np.int64)).astype(np.float64)
        bias0 = None
        if "bias" in n.params:
            bias0 = n.params["bias"].astype(np.float64) * bias_scale(n, self.qm.tensors).astype(np.float64)
        L = _Layer(n, x.scale if x.is_integer else None, scale0, zero.reshape(_channel_shape(zero, w)), bias0,
                   weight_code_range(self.qm, n) if w.dtype.kind in "iu" else (0, 0))
        if want_w:
            L.weight = Parameter(real_weight(n))
        if want_b:
            L.bias = Parameter(bias0.copy())
        if want_s:
            L.log_scale = Parameter(np.zeros(scale0.shape, np.float64))
        return L

    def parameters(self) -> list:
        return [p for L in self.layers.values() for p in (L.weight, L.bias, L.log_scale) if p is not None]

    # ---------------------------------------------------------------- masters -> integer model (offline)
    def model(self) -> QuantizedModel:
        """A new QuantizedModel: the same graph, the trained nodes' params re-derived from the masters."""
        nodes = [self._node(self.layers[n.name]) if n.name in self.layers else n for n in self.qm.nodes]
        return QuantizedModel(nodes, self.qm.tensors, self.qm.inputs, self.qm.outputs, profile=self.qm.profile,
                              isa=self.qm.isa, metadata=self.qm.metadata)

    def _node(self, L: _Layer) -> Node:
        n, p = L.node, dict(L.node.params)
        s = L.scale()
        if L.log_scale is not None:
            p["weight_scale"] = s
        if L.weight is not None:
            sb = s.reshape(_channel_shape(s, L.weight.value)).astype(np.float64)
            q = round_half_to_even(L.weight.value / sb) + L.zero
            p["weight"] = np.clip(q, *L.code_range).astype(n.params["weight"].dtype)
        if L.bias0 is not None and (L.bias is not None or L.log_scale is not None):
            p["bias"] = self._bias(L, s)
        return Node(n.name, n.op, n.inputs, n.output, dict(n.attrs), p)

    def _bias(self, L: _Layer, s: np.ndarray) -> np.ndarray:
        old = L.node.params["bias"]
        b = L.bias0 if L.bias is None else L.bias.value
        if old.dtype.kind == "f":
            return b.astype(old.dtype)
        if self.recipe is not None:
            new = quantize_bias(self.recipe, b, L.x_scale, s, dtype=old.dtype.name)
        else:  # a profile of no modelled tool: round half away from zero, saturate
            q = round_half_away_from_zero(b / (np.float64(L.x_scale) * s.astype(np.float64)))
            info = np.iinfo(old.dtype)
            new = np.clip(q, info.min, info.max).astype(old.dtype)
        moved = (b != L.bias0) | np.broadcast_to(s != L.scale0, b.shape)
        return np.where(moved, new, old).astype(old.dtype)  # untouched channels keep their exact codes

    # ---------------------------------------------------------------- gradients -> masters
    def set_grads(self, grads: dict, current: QuantizedModel) -> None:
        """Load the masters' ``.grad`` from :class:`~refquant.finetune.ste.GraphBackward` gradients."""
        for name, L in self.layers.items():
            g = grads.get(name)
            if g is None:
                for p in (L.weight, L.bias, L.log_scale):
                    if p is not None:
                        p.zero_grad()
                continue
            if L.bias is not None:
                L.bias.grad[...] = g["bias"]
            if L.weight is not None:  # STE of the re-quantization: zero where the code saturates
                sb = L.scale().reshape(_channel_shape(L.scale(), L.weight.value)).astype(np.float64)
                q = L.weight.value / sb + L.zero
                L.weight.grad[...] = np.where((q >= L.code_range[0]) & (q <= L.code_range[1]), g["weight"], 0.0)
            if L.log_scale is not None:
                w = real_weight(current.node(name))
                gw = g["weight"] * w  # dL/du_c = sum_i dL/dw_i * w_i over channel c
                axes = tuple(range(L.log_scale.value.ndim, gw.ndim))
                L.log_scale.grad[...] = gw.sum(axis=axes)

    def after_step(self) -> None:
        """Keep every $u$ in $[-\\ln 8, \\ln 8]$."""
        for L in self.layers.values():
            if L.log_scale is not None:
                np.clip(L.log_scale.value, -SCALE_LIMIT, SCALE_LIMIT, out=L.log_scale.value)


def _stored(node: Node, key: str, a: np.ndarray) -> np.ndarray:
    """A node constant's bytes as stored (int4 weights packed two per byte)."""
    if key == "weight" and node.attrs.get("bits") == 4:
        return pack_int4(a.reshape(-1))
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def param_changes(before: QuantizedModel, after: QuantizedModel) -> dict:
    """``{"node/param": (values changed, bytes changed as stored)}`` for every constant that differs.

    Args:
        before, after: QuantizedModels with the same nodes (names and ops), e.g. ``qm`` and
            :func:`~refquant.finetune.flow.finetune`'s result.

    Raises:
        QuantizationTypeError: not QuantizedModels. QuantizationValueError: different graphs.
    """
    for name, m in (("before", before), ("after", after)):
        if not isinstance(m, QuantizedModel):
            raise QuantizationTypeError(f"{name} must be a refquant.qmodel.QuantizedModel, got {type(m).__name__}")
    if [(n.name, n.op, sorted(n.params)) for n in before.nodes] != [(n.name, n.op, sorted(n.params))
                                                                     for n in after.nodes]:
        raise QuantizationValueError("after must have before's graph (the same nodes and constants) to be compared")
    out = {}
    for a, b in zip(before.nodes, after.nodes):
        for key, old in a.params.items():
            new = b.params[key]
            if old.shape != new.shape or old.dtype != new.dtype:
                out[f"{a.name}/{key}"] = (int(new.size), int(_stored(b, key, new).size))
                continue
            values = int(np.count_nonzero(old != new))
            if values:
                out[f"{a.name}/{key}"] = (values, int(np.count_nonzero(_stored(a, key, old) != _stored(b, key, new))))
    return out
