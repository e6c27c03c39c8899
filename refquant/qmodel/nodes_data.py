"""The integer model's data-movement nodes: ``reshape``, ``transpose``, ``pad``, ``concatenation``, ``constant``.

They move codes without arithmetic, so they are exact on every backend: the output tensor keeps
the input's parameters (``pad`` fills with the zero point, the code of the real value 0, as
TFLite's quantized PAD does). TFLite's CONCATENATION of int8 / int16 tensors requires every input
to share the output's parameters (its Prepare refuses otherwise); the node checks the same.
Float32 tensors pass through alike (``pad`` fills with 0.0).
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationValueError, ShapeError
from .graph import Node, TensorInfo

__all__ = ["run_reshape", "run_transpose", "run_pad", "run_concatenation", "run_constant"]


def _same_params(node: Node, tensors, i: int = 0) -> TensorInfo:
    x, y = tensors[node.inputs[i]], tensors[node.output]
    if (x.dtype, x.scale, x.zero_point) != (y.dtype, y.scale, y.zero_point):
        raise QuantizationValueError(f"node {node.name!r} ({node.op}) keeps its inputs' parameters: tensor "
                                     f"{x.name!r} has dtype {x.dtype}, scale {x.scale!r}, zero point {x.zero_point}; "
                                     f"the output {y.name!r} has {y.dtype}, {y.scale!r}, {y.zero_point}")
    return x


def run_reshape(node, args, tensors, profile, cache):
    """``x.reshape(attrs["shape"])`` in C order (one entry may be -1: the batch of a Flatten)."""
    _same_params(node, tensors)
    shape = tuple(int(d) for d in node.attrs["shape"])
    try:
        return args[0].reshape(shape)
    except ValueError:
        raise ShapeError(f"cannot reshape an input of shape {args[0].shape} to {list(shape)}") from None


def run_transpose(node, args, tensors, profile, cache):
    """``x.transpose(attrs["perm"])`` (C-contiguous)."""
    _same_params(node, tensors)
    perm = tuple(int(d) for d in node.attrs["perm"])
    if sorted(perm) != list(range(args[0].ndim)):
        raise ShapeError(f"perm must be a permutation of the input's {args[0].ndim} axes, got {list(perm)}")
    return np.ascontiguousarray(args[0].transpose(perm))


def run_pad(node, args, tensors, profile, cache):
    """Constant padding, ``attrs["pads"]`` a ``[before, after]`` pair per axis (>= 0)."""
    x = _same_params(node, tensors)
    pads = np.asarray(node.attrs["pads"], np.int64).reshape(-1, 2)
    if pads.shape[0] != args[0].ndim or (pads < 0).any():
        raise ShapeError(f"pads must hold one non-negative [before, after] pair per axis of the input "
                         f"(rank {args[0].ndim}), got {pads.tolist()}")
    fill = x.zero_point if x.is_integer else 0.0
    return np.pad(args[0], pads, constant_values=args[0].dtype.type(fill))


def run_concatenation(node, args, tensors, profile, cache):
    """``np.concatenate`` along ``attrs["axis"]``; every input shares the output's parameters. A fused
    activation other than none is refused (the codes would need clamping to the activation's range)."""
    for i in range(len(node.inputs)):
        _same_params(node, tensors, i)
    if node.attrs.get("activation") not in (None, "NONE"):
        raise QuantizationValueError(f"node {node.name!r} (concatenation): a fused activation is not modelled, got "
                                     f"{node.attrs['activation']!r}")
    axis = int(node.attrs["axis"])
    try:
        return np.concatenate(args, axis=axis)
    except (ValueError, np.exceptions.AxisError) as err:
        raise ShapeError(f"cannot concatenate shapes {[a.shape for a in args]} along axis {axis} ({err})") from None


def run_constant(node, args, tensors, profile, cache):
    """``params["value"]``, which must have the output tensor's dtype (a constant operand of ADD, MUL, ...)."""
    value, y = node.params["value"], tensors[node.output]
    if value.dtype != np.dtype(y.dtype):
        raise QuantizationValueError(f"node {node.name!r} (constant): params['value'] must have the output tensor's "
                                     f"dtype {y.dtype}, got {value.dtype}")
    return value
