"""What a tool's calibrator records, beyond the ranges of the tensors themselves.

The TFLite converter calibrates by running the float model in LiteRT and logging every op's
inputs and outputs. LiteRT's memory planner runs a float ADD *in place* on its first operand that
is read by the ADD alone, has the output's size, is not the graph's input, and whose ADD output is
not the graph's output (``ArenaPlanner::IdentifyInPlaceTensors``); the calibrator logs the ADD's
inputs again after the kernel ran (``LoggingEval``), so that operand's recorded range is the union
of its own range and the ADD output's. In a residual block it is the last convolution of the body:
its int8 parameters come from the wider range. Measured against the converter of TensorFlow 2.21
(resnet and mobilenet: every residual body's last convolution).

The converter calibrates with min-max, so :func:`refquant.ptq.flows.calibrate_model` applies
this rule to min-max ranges only. The rule assumes an ADD whose operands have the output's shape
(refquant's residual adds); a broadcasting ADD would not run in place.
"""

from __future__ import annotations

import numpy as np

from .recipes import Recipe
from .trace import INPUT

__all__ = ["tool_ranges"]


def tool_ranges(recipe: Recipe, steps, ranges: dict) -> dict:
    """The ranges the recipe's tool records, from the tensors' own ``ranges`` (a new dict).

    Args:
        recipe: The tool's :class:`~refquant.ptq.recipes.Recipe`.
        steps: The traced steps (:func:`refquant.ptq.trace.trace`).
        ranges: ``{tensor name: (lo, hi)}`` as observed.
    """
    out = dict(ranges)
    if not recipe.add_in_place_ranges or not steps:
        return out
    readers: dict[str, int] = {}
    for s in steps:
        for t in s.inputs:
            readers[t] = readers.get(t, 0) + 1
    graph_output = steps[-1].output
    for s in steps:
        if s.op != "add" or s.output == graph_output:
            continue
        for t in s.inputs:
            if t != INPUT and readers.get(t) == 1 and t in out and s.output in out:
                (lo, hi), (alo, ahi) = out[t], out[s.output]
                out[t] = (np.minimum(lo, alo), np.maximum(hi, ahi))
                break  # the first operand that qualifies takes the output
    return out
