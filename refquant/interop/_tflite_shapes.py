"""The int32 shape arithmetic of converter-made ``.tflite`` models, resolved at import time
(internal to :mod:`refquant.interop.tflite`).

Keras' ``Flatten`` becomes ``SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE``: the batch size is read
at run time, every other dimension is fixed. :class:`ShapeValues` evaluates these operators on
*symbolic* vectors, whose entries are ints or the symbol :data:`BATCH` (a dimension whose shape
signature is -1, allowed on axis 0 only), and :func:`reshape_target` turns the vector a RESHAPE
reads into a static target shape with ``-1`` in place of the batch. That is exact: every other
dimension is a fixed int, so the one ``-1`` can only be the batch. Anything else (a dynamic
non-batch dimension, a shape tensor read by an arithmetic operator, a mask this does not read)
raises :class:`~refquant.errors.UnsupportedError` naming the operator.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError

__all__ = ["BATCH", "SHAPE_OPS", "ShapeValues", "reshape_target"]

BATCH = "N"
#: Operators evaluated on shape vectors at import time.
SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")


class ShapeValues:
    """Symbolic values of the int32 tensors the shape operators compute: ``{tensor index: list | int}``."""

    def __init__(self, model):
        self.model = model
        self.values: dict = {}

    def _where(self, op) -> str:
        return f"operator {op.index} ({op.op})"

    def value(self, op, i: int):
        """The symbolic value of input tensor ``i``: a constant's contents or an earlier shape result."""
        t = self.model.tensors[i]
        if t.data is not None:
            return t.data.tolist()
        if i not in self.values:
            raise UnsupportedError(f"{self._where(op)} reads tensor {t.name!r}, computed at run time: a dynamic shape "
                                   f"that cannot be resolved at import")
        return self.values[i]

    def evaluate(self, op) -> None:
        """Evaluate one of :data:`SHAPE_OPS` and record its output."""
        if op.op == "SHAPE":
            t = self.model.tensors[op.inputs[0]]
            dims = []
            for d, (size, sig) in enumerate(zip(t.shape, t.signature)):
                if sig >= 0:
                    dims.append(int(size))
                elif d == 0:
                    dims.append(BATCH)
                else:
                    raise UnsupportedError(f"{self._where(op)}: tensor {t.name!r} has a dynamic dimension {d} (shape "
                                           f"signature {list(t.signature)}): only a dynamic batch (axis 0) is "
                                           f"resolved")
            out = dims
        elif op.op == "STRIDED_SLICE":
            out = self._strided_slice(op)
        else:  # PACK of scalars along axis 0
            parts = [self.value(op, i) for i in op.inputs]
            if op.options.get("axis", 0) != 0 or any(isinstance(p, list) for p in parts):
                raise UnsupportedError(f"{self._where(op)}: only a PACK of scalars along axis 0 is resolved, got "
                                       f"{parts} with options {op.options}")
            out = parts
        self.values[op.outputs[0]] = out

    def _strided_slice(self, op):
        o = op.options
        if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
            raise UnsupportedError(f"{self._where(op)}: ellipsis / new-axis masks and offset are not resolved ({o})")
        x, begin, end, strides = (self.value(op, i) for i in op.inputs[:4])
        if not isinstance(x, list) or len(begin) != 1:
            raise UnsupportedError(f"{self._where(op)}: only 1-D slices of a shape vector are resolved")
        b, e, s = int(begin[0]), int(end[0]), int(strides[0])
        if o.get("shrink_axis_mask", 0) & 1:
            return x[b]
        return x[slice(None if o.get("begin_mask", 0) & 1 else b, None if o.get("end_mask", 0) & 1 else e, s)]


def reshape_target(values, where: str) -> tuple:
    """The static shape a RESHAPE with target ``values`` produces: ints, ``-1`` for :data:`BATCH`."""
    flat = values if isinstance(values, list) else [values]
    flat = [v for v in np.ravel(np.asarray(flat, dtype=object)).tolist()]
    if sum(v == BATCH for v in flat) + sum(v == -1 for v in flat) > 1:
        raise UnsupportedError(f"{where}: its target shape {flat} has more than one unknown dimension")
    return tuple(-1 if v == BATCH else int(v) for v in flat)
