"""Evaluating a model, float or quantized: accuracy, latency, throughput, memory, per-layer error.

Every number comes from one function that returns a plain, documented record
(:func:`evaluate` → :class:`Evaluation`, ``as_dict()`` for JSON); each part is also a function of
its own, for your own code:

| function | measures | module |
|---|---|---|
| :func:`top_k_accuracy` | share of samples whose label is among the k largest logits (ties: lower class index first) | :mod:`~refquant.evaluate.accuracy` |
| :func:`latency` → :class:`Latency` | batch-1 milliseconds: the first call alone, then median, p90, p99 | :mod:`~refquant.evaluate.timing` |
| :func:`throughput` | inferences per second at each batch size | :mod:`~refquant.evaluate.timing` |
| :func:`model_bytes`, :func:`memory` → :class:`Memory` | bytes stored and loaded, peak traced and resident memory | :mod:`~refquant.evaluate.footprint` |
| :func:`layer_errors` | SQNR, max error in LSB and saturation of every integer tensor against the float model | :mod:`~refquant.evaluate.layers` |
| :func:`evaluate` → :class:`Evaluation` | all of the above | :mod:`~refquant.evaluate.record` |

A model is a float :class:`refquant.nn.Module` (run in evaluation mode, its layers' modes restored
afterwards), a :class:`~refquant.qmodel.QuantizedModel`, or, for accuracy and timing, any function
``f(x) -> logits``. Docs: "Learn 15: Evaluating a quantized model".
"""

from __future__ import annotations

from .accuracy import top_k_accuracy
from .footprint import Memory, memory, model_bytes
from .layers import layer_errors
from .record import Evaluation, evaluate
from .timing import Latency, latency, throughput

__all__ = ["top_k_accuracy", "latency", "throughput", "memory", "layer_errors", "evaluate", "Latency", "Memory",
           "Evaluation", "model_bytes"]
