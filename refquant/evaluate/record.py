"""One call, every number: :func:`evaluate` measures accuracy, latency, throughput, memory and
(for an integer model with its float model) per-layer error, and returns an :class:`Evaluation`.

Each number is measured by the function of its own module, with the same arguments a user would
pass them (:func:`~refquant.evaluate.top_k_accuracy`, :func:`~refquant.evaluate.latency`,
:func:`~refquant.evaluate.throughput`, :func:`~refquant.evaluate.memory`,
:func:`~refquant.evaluate.layer_errors`). ``Evaluation.as_dict()`` gives plain Python types, ready
for ``json.dumps``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate as V
from .. import nn
from ..errors import QuantizationTypeError
from ..qmodel import QuantizedModel
from ._inputs import MAX_CALLS, check_labels, check_model, check_x
from ._record import MEASURED, Record, rate_table, share
from .accuracy import model_label_ranks
from .footprint import Memory, memory
from .layers import layer_errors
from .timing import (
    Latency,
    check_batch_sizes,
    check_seconds,
    latency,
    throughput,
    tiled,
)

__all__ = ["Evaluation", "evaluate"]

_ROW_KEYS = ("tensor", "op", "sqnr_db", "max_error_lsb", "saturated")


@dataclasses.dataclass(frozen=True)
class Evaluation(Record):
    """Everything :func:`evaluate` measured for one model.

    Attributes:
        name: What the model is (``"float"``, ``"static (tflite_reference)"``, or the caller's name).
        top1: Top-1 accuracy in [0, 1].
        top5: Top-5 accuracy, or ``None`` when 5 was not asked for or the model has fewer than 5 classes.
        latency: Batch-1 :class:`~refquant.evaluate.Latency`.
        throughput: ``{batch size: inferences per second}``.
        memory: :class:`~refquant.evaluate.Memory` (its peak measured at the largest batch size).
        layers: :func:`~refquant.evaluate.layer_errors` rows, or ``None`` (not an integer model, or no
            float model given).
        top_k: Accuracy at every k asked for, ``{k: share}`` (``top1`` and ``top5`` repeat two of them).
    """

    name: str
    top1: float
    top5: float | None
    latency: Latency
    throughput: dict = dataclasses.field(metadata=MEASURED)
    memory: Memory
    layers: list | None = None
    top_k: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise QuantizationTypeError(f"name must be a str, got {V.describe(self.name)}")
        self._set("top1", share(self.top1, "top1"))
        self._set("top5", share(self.top5, "top5", optional=True))
        for f, kind in (("latency", Latency), ("memory", Memory)):
            if not isinstance(getattr(self, f), kind):
                raise QuantizationTypeError(f"{f} must be a {kind.__name__} record, got "
                                            f"{V.describe(getattr(self, f))}")
        self._set("throughput", rate_table(self.throughput, "throughput"))
        if self.layers is not None and not (isinstance(self.layers, list) and all(
                isinstance(r, dict) and set(r) == set(_ROW_KEYS) for r in self.layers)):
            raise QuantizationTypeError(f"layers must be None or a list of layer_errors rows (dicts with keys "
                                        f"{list(_ROW_KEYS)}), got {V.describe(self.layers)}")
        if not isinstance(self.top_k, dict):
            raise QuantizationTypeError(f"top_k must be a dict k -> accuracy, got {V.describe(self.top_k)}")
        self._set("top_k", {V.as_positive_int(k, "top_k k"): share(v, f"top_k[{k!r}]") for k, v in self.top_k.items()})


def _default_name(model) -> str:
    if isinstance(model, QuantizedModel):
        return f"{model.metadata.get('flow', 'quantized')} ({model.profile})"
    return "float"


def evaluate(model, x, y, *, name=None, float_model=None, batch_sizes=(1, 32, 256), repeats: int = 50,
             warmup: int = 3, top_k=(1, 5), min_seconds: float = 0.2) -> Evaluation:
    """Accuracy, latency, throughput, memory and per-layer error of ``model`` on ``(x, y)``.

    Runs, in order: :func:`~refquant.evaluate.latency` (``repeats``, ``warmup``; first, so that
    ``latency.first_call_ms`` is the model's cold first call in this process),
    :func:`~refquant.evaluate.top_k_accuracy` for each k of ``top_k`` (top-1 always; batches of
    256), :func:`~refquant.evaluate.throughput` (``batch_sizes``, ``min_seconds``),
    :func:`~refquant.evaluate.memory` on a batch of the largest batch size (``x`` cut, or repeated),
    and, when ``model`` is a QuantizedModel and ``float_model`` is given,
    :func:`~refquant.evaluate.layer_errors` on the first 256 samples of ``x``. Every argument is
    checked before anything runs.

    Args:
        model: A float :class:`refquant.nn.Module` or a :class:`~refquant.qmodel.QuantizedModel`.
        x: ``(N, ...)`` evaluation samples. y: ``(N,)`` integer labels.
        name: The record's name (default: ``"float"``, or the integer model's flow and profile).
        float_model: The float model ``model`` was made from (ignored for a float ``model``).
        batch_sizes: Throughput batch sizes (an int or distinct ints >= 1).
        repeats, warmup: As :func:`~refquant.evaluate.latency`.
        top_k: The k values of top-k accuracy (ints >= 1); a k larger than the number of classes
            is skipped (recorded as ``None`` in ``top5``).
        min_seconds: As :func:`~refquant.evaluate.throughput`, per batch size.

    Returns:
        An :class:`Evaluation`.

    Raises:
        QuantizationTypeError: ``model`` or ``float_model`` of the wrong type, ``y`` not integer, ``name``
            not a str.
        QuantizationValueError, ShapeError: as the functions above (``x``/``y`` mismatch, empty ``x``,
            labels out of range, batch sizes < 1, ``repeats`` out of range).
    """
    model = check_model(model, callables=False)
    x = check_x(x)
    labels = check_labels(y, x.shape[0])
    if name is not None and not isinstance(name, str):
        raise QuantizationTypeError(f"name must be a str or None, got {V.describe(name)}")
    if float_model is not None and not isinstance(float_model, nn.Module):
        raise QuantizationTypeError(f"float_model must be a refquant.nn Module or None, got {V.describe(float_model)}")
    sizes = check_batch_sizes(batch_sizes, x)
    min_seconds = check_seconds(min_seconds)
    repeats = V.as_positive_int(repeats, "repeats", maximum=MAX_CALLS)
    warmup = V.as_positive_int(warmup, "warmup", minimum=0, maximum=MAX_CALLS)
    ks = (top_k,) if isinstance(top_k, int) and not isinstance(top_k, bool) else V.as_int_sequence(top_k, "top_k",
                                                                                                  minimum=1)
    ks = tuple(sorted(set(ks) | {1}))

    lat = latency(model, x, repeats=repeats, warmup=warmup)
    ranks, classes = model_label_ranks(model, x, labels)
    accuracy = {k: int(np.sum(ranks < k)) / x.shape[0] for k in ks if k <= classes}
    rates = throughput(model, x, batch_sizes=sizes, min_seconds=min_seconds)
    mem = memory(model, tiled(x, max(sizes)))
    layers = None
    if isinstance(model, QuantizedModel) and float_model is not None:
        layers = layer_errors(model, float_model, x[:256])
    return Evaluation(_default_name(model) if name is None else name, accuracy[1], accuracy.get(5), lat, rates,
                      mem, layers, accuracy)

