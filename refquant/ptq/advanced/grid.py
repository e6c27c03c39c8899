"""The integer grid of one layer's weights: the scales, zero points and code range every rounding
method here shares.

Round-to-nearest (RTN), AdaRound and GPTQ differ only in *which* integer code each weight gets;
the grid they choose from is the one the flow already wrote into the integer model's node. With
the weight flattened to $W \\in \\mathbb{R}^{O \\times K}$ (a Conv2d's ``(O, C/g, kH, kW)`` as
``(O, C/g·kH·kW)``, columns in $(c, i, j)$ order, the order of the im2col rows), every element has

$$ \\hat w_{ok} = s_{ok}\\,(q_{ok} - z_{ok}), \\qquad q_{ok} \\in [q_{min}, q_{max}] \\cap \\mathbb{Z}, \\tag{1} $$

where $s_{ok}$ is the scale of output channel $o$ (per channel) or of the group of input channels
column $k$ reads (per group), expanded to one value per element. RTN is

$$ q_{ok} = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{fl}_{32}(w_{ok} / s_{ok})) + z_{ok},\\ q_{min},\\ q_{max}),
   \\tag{2} $$

the rule of :func:`refquant.ptq.quantize_weights` (and ONNX Runtime's ``quantize_static``): float32
division, round half to even. The code range is not stored in a node; :func:`code_range` says what
the flow that made the node used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _validate as V
from ...errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ...qmodel import Node, QuantizedModel
from ..flows import _group_quantize
from ..recipes import recipe_for

__all__ = ["WeightGrid", "code_range", "grid_of_node", "symmetric_grid", "check_qmodel", "check_layer_node"]

_F32 = np.float32


@dataclass(frozen=True)
class WeightGrid:
    """Eq. (1) for one ``(O, K)`` weight matrix.

    Attributes:
        scale: ``(O, K)`` float32, > 0: $s_{ok}$, one per element.
        zero_point: ``(O, K)`` int64: $z_{ok}$.
        qmin, qmax: The code range (Python ints, ``qmin < qmax``).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int

    def __post_init__(self):
        scale = V.as_scale(self.scale, "scale")
        if scale.ndim != 2:
            raise ShapeError(f"scale must have shape (O, K), one per weight, got {scale.shape}")
        zp = V.as_int_array(self.zero_point, "zero_point").astype(np.int64)
        if zp.shape != scale.shape:
            raise ShapeError(f"zero_point must have scale's shape {scale.shape}, got {zp.shape}")
        qmin, qmax = V.as_int_scalar(self.qmin, "qmin"), V.as_int_scalar(self.qmax, "qmax")
        if not qmin < qmax:
            raise QuantizationValueError(f"qmin must be < qmax, got qmin={qmin}, qmax={qmax}")
        bad = V.first_outside(zp, qmin, qmax)
        if bad is not None:
            raise QuantizationValueError(f"zero_point must be in [qmin, qmax] = [{qmin}, {qmax}], got {bad}")
        for name, v in (("scale", scale), ("zero_point", zp), ("qmin", qmin), ("qmax", qmax)):
            object.__setattr__(self, name, v)

    @property
    def shape(self) -> tuple:
        return self.scale.shape

    def rows(self, rows: slice) -> WeightGrid:
        """The grid of output channels ``rows`` (one group of a grouped convolution)."""
        return WeightGrid(self.scale[rows], self.zero_point[rows], self.qmin, self.qmax)

    def check_weight(self, w, name: str = "w") -> np.ndarray:
        """``w`` as a finite float64 ``(O, K)`` array of the grid's shape."""
        w = V.as_float_array(w, name)
        if w.shape != self.shape:
            raise ShapeError(f"{name} must have the grid's shape {self.shape}, got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise QuantizationValueError(f"{name} must be finite, got NaN or Inf")
        return w.astype(np.float64)

    def rtn(self, w, cols=slice(None)) -> np.ndarray:
        """Eq. (2): int64 codes of ``w`` (columns ``cols`` of the grid; ``w`` of their shape)."""
        ratio = np.asarray(w).astype(_F32) / self.scale[:, cols]  # float32 division, as the flow
        return np.clip(np.rint(ratio).astype(np.int64) + self.zero_point[:, cols], self.qmin, self.qmax)

    def dequantize(self, q, cols=slice(None)) -> np.ndarray:
        """Eq. (1): float64 $s (q - z)$ of codes ``q`` (columns ``cols``): float32 products, widened."""
        q = np.asarray(q, np.int64)
        return (self.scale[:, cols] * (q - self.zero_point[:, cols]).astype(_F32)).astype(np.float64)

    def check_codes(self, q, name: str = "q") -> np.ndarray:
        """``q`` as int64 of the grid's shape, every code in ``[qmin, qmax]``."""
        q = V.as_int_array(q, name).astype(np.int64)
        if q.shape != self.shape:
            raise ShapeError(f"{name} must have the grid's shape {self.shape}, got {q.shape}")
        bad = V.first_outside(q, self.qmin, self.qmax)
        if bad is not None:
            raise QuantizationValueError(f"{name} must hold codes in [qmin, qmax] = [{self.qmin}, {self.qmax}], "
                                         f"got {bad}")
        return q


def _expand(per, o: int, k: int, group_cols: int | None) -> np.ndarray:
    """A ``()``, ``(O,)`` or ``(O, G)`` per-channel/per-group array as ``(O, K)``, one per weight."""
    per = np.asarray(per)
    if per.ndim == 2:
        return np.repeat(per, group_cols, axis=1)
    return np.broadcast_to(per.reshape((-1, 1)) if per.ndim == 1 else per, (o, k)).copy()


def check_qmodel(qmodel) -> QuantizedModel:
    """``qmodel`` itself if it is a :class:`~refquant.qmodel.QuantizedModel`, else a named type error."""
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a QuantizedModel (from refquant.ptq), got {V.describe(qmodel)}")
    return qmodel


def check_layer_node(node, *, integer: bool = True) -> Node:
    """``node`` itself if it is a ``linear`` / ``conv2d`` :class:`~refquant.qmodel.Node` (with integer
    weights if ``integer``), else a named error."""
    if not isinstance(node, Node):
        raise QuantizationTypeError(f"node must be a refquant.qmodel.Node, got {V.describe(node)}")
    w = node.params.get("weight")
    if node.op not in ("linear", "conv2d") or w is None or w.ndim != (2 if node.op == "linear" else 4):
        raise QuantizationValueError(f"node must be a linear or conv2d node with a (O, K) or (O, C/g, kH, kW) "
                                     f"weight, got {node!r}")
    if integer and w.dtype.kind not in "iu":
        raise QuantizationValueError(f"node must have integer weights (codes on a grid), got {node.name!r} with "
                                     f"{w.dtype} weights")
    return node


def code_range(qmodel: QuantizedModel, node: Node) -> tuple[int, int]:
    """The code range the flow that made ``node`` rounds its weights into.

    * a weight-only node (``attrs["weight_bits"]`` $= b$, :func:`refquant.ptq.quantize_weights`), or a
      node of a QAT model with $b < 8$ bits (``metadata["weight_bits"]``, :func:`refquant.qat.convert`):
      $[-(2^{b-1} - 1),\\ 2^{b-1} - 1]$;
    * a static or 8-bit QAT node, by the profile's tool (:mod:`refquant.ptq.recipes`): the TFLite converter
      $[-127, 127]$; ONNX Runtime $[-127, 127]$, or $[-64, 64]$ on the ISAs where it reduces the
      weights' range; PyTorch $[-128, 127]$.

    Raises:
        QuantizationTypeError, QuantizationValueError: ``qmodel`` or ``node`` not what is described.
        UnsupportedError: A profile no tool here makes models for.
    """
    check_qmodel(qmodel)
    check_layer_node(node)
    qat_bits = qmodel.metadata.get("weight_bits", 8) if qmodel.metadata.get("flow") == "qat" else 8
    bits = node.attrs.get("weight_bits", qat_bits if qat_bits < 8 else None)
    if bits is not None:
        qmax = 2 ** (int(bits) - 1) - 1
        return -qmax, qmax
    recipe = recipe_for(qmodel.profile)
    if recipe.name == "tflite":
        return -127, 127
    if recipe.name == "onnxruntime":
        reduced = qmodel.resolved_profile.isa in recipe.weight_reduce_range_isas
        return (-64, 64) if reduced else (-127, 127)
    return -128, 127


def grid_of_node(qmodel: QuantizedModel, node: Node) -> WeightGrid:
    """The grid of a ``linear`` / ``conv2d`` node with integer weights: its ``weight_scale`` and
    ``weight_zero_point`` (per tensor, per channel, or ``(O, G)`` per group of
    ``attrs["group_size"]`` input channels) expanded to ``(O, K)``, and :func:`code_range`.

    Raises:
        QuantizationValueError: The node's codes lie outside that range (not a model of these flows).
    """
    qmin, qmax = code_range(qmodel, node)
    q = node.params["weight"]
    o, k = q.shape[0], int(np.prod(q.shape[1:]))
    if "weight_scale" not in node.params:
        raise QuantizationValueError(f"node {node.name!r} must have a weight_scale, got params "
                                     f"{sorted(node.params)}")
    s = node.params["weight_scale"]
    group_cols = None
    if np.ndim(s) == 2:
        group_cols = int(node.attrs["group_size"]) * int(np.prod(q.shape[2:]))  # columns per group
    zp = node.params.get("weight_zero_point", np.zeros(np.shape(s), np.int64))
    grid = WeightGrid(_expand(s, o, k, group_cols).astype(_F32), _expand(zp, o, k, group_cols).astype(np.int64),
                      qmin, qmax)
    bad = V.first_outside(q, qmin, qmax)
    if bad is not None:
        raise QuantizationValueError(f"node {node.name!r}: its weight codes must lie in the code range "
                                     f"[{qmin}, {qmax}] of the flow that made it, got {bad}")
    return grid


def symmetric_grid(w, *, bits: int = 4, group_size=None) -> WeightGrid:
    """The grid :func:`refquant.ptq.quantize_weights` chooses for a float weight ``w``: symmetric,
    $s = \\max|w| / (2^{b-1} - 1)$ per output channel or per group of ``group_size`` input channels,
    $z = 0$, codes in $[-(2^{b-1} - 1), 2^{b-1} - 1]$.

    Args:
        w: ``(O, K)`` or ``(O, C/g, kH, kW)`` float weights, finite.
        bits: 2 to 8.
        group_size: ``None`` (per channel) or input channels per scale, dividing ``w.shape[1]``
            (a layer with no more input channels than that gets one scale per channel).

    Returns:
        A :class:`WeightGrid` of shape ``(O, prod(w.shape[1:]))``.

    Raises:
        QuantizationValueError: ``bits`` outside 2-8, ``group_size`` < 1 or not dividing, ``w`` not finite.
        ShapeError: ``w`` of rank < 2 or empty.
    """
    w = V.as_float_array(w, "w")
    if w.ndim < 2 or w.size == 0:
        raise ShapeError(f"w must be a non-empty (O, K) or (O, C/g, kH, kW) weight, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError("w must be finite, got NaN or Inf")
    bits = V.as_int_scalar(bits, "bits")
    if not 2 <= bits <= 8:
        raise QuantizationValueError(f"bits must be in [2, 8], got {bits}")
    if group_size is not None:
        group_size = V.as_int_scalar(group_size, "group_size", lo=1)
        if w.shape[1] > group_size and w.shape[1] % group_size:
            raise QuantizationValueError(f"group_size must divide w's input channels (w.shape[1] = {w.shape[1]}), "
                                         f"got {group_size}")
    if np.abs(w).max() * 2 > np.finfo(_F32).max:
        raise QuantizationValueError("w must be finite in float32, got values beyond float32's range")
    _, scale = _group_quantize(w.astype(_F32), bits, group_size)
    o, k = w.shape[0], int(np.prod(w.shape[1:]))
    group_cols = None if scale.ndim == 1 else group_size * int(np.prod(w.shape[2:]))
    qmax = 2 ** (bits - 1) - 1
    return WeightGrid(_expand(scale, o, k, group_cols), np.zeros((o, k), np.int64), -qmax, qmax)
