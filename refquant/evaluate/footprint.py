r"""Memory: a model's bytes as stored and as loaded, and the peak memory of one inference.

Four numbers, each answering another question (docs "Learn 15: Evaluating a quantized model", §4):

| field | what is counted | how |
|---|---|---|
| ``model_bytes`` | the model as stored (the file, less its header) | :func:`model_bytes` |
| ``loaded_bytes`` | the arrays the model object holds in RAM after a call | sum of ``ndarray.nbytes`` |
| ``peak_python_bytes`` | the most memory allocated at once during one call | ``tracemalloc`` |
| ``peak_rss_bytes`` | the process's resident-set high-water mark | ``resource.getrusage`` |

* **Stored**, :class:`~refquant.qmodel.QuantizedModel`: its ``nbytes`` — int8 codes one byte each,
  int4 codes two per byte, float32 four, biases int32 or float32, every scale and zero point. A float
  :class:`refquant.nn.Module`: every parameter and buffer (BatchNorm's running mean and variance) at
  its dtype's size (4 bytes a value for float32).
* **Loaded**: a QuantizedModel holds its int4 codes unpacked (one int8 per code) and caches
  constants derived on its first call (a weight-only node keeps its dequantized float32 weights);
  a float Module holds one gradient array beside each parameter (refquant.nn is a training
  library), counted here; its layers also keep their last inputs for a backward pass, not counted.
  So loaded can exceed stored several times.
* **Peak, Python**: ``tracemalloc`` traces allocations made through Python's and NumPy's
  allocators (NumPy reports its array buffers to it): the arrays of every layer's output, the
  temporaries, the result. It does not see memory Numba's runtime allocates inside compiled code,
  nor the model's own arrays, which exist before the call. The value is the traced peak during the
  call above what was traced when it started.
* **Peak RSS**: the process's resident memory at its highest since it started (``ru_maxrss``): the
  interpreter, NumPy, Numba, every model and dataset loaded so far. It never goes down, so it says
  how much RAM the process needed, not what one model costs: compare models in separate processes.
"""

from __future__ import annotations

import dataclasses
import sys
import tracemalloc

import numpy as np

from ..qmodel import QuantizedModel
from ._inputs import call, check_model, check_x, inference
from ._record import MEASURED, Record, count

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["Memory", "model_bytes", "memory"]


@dataclasses.dataclass(frozen=True)
class Memory(Record):
    """Memory of a model (see the module docstring for what each field counts).

    Attributes:
        model_bytes: Bytes as stored (:func:`model_bytes`).
        loaded_bytes: Bytes of the arrays the model holds in RAM after a call (int4 unpacked, caches,
            gradients of a float model).
        peak_python_bytes: ``tracemalloc`` peak during one call on ``x``, above its level at the start.
        peak_rss_bytes: The process's peak resident set (``resource.getrusage``), or ``None`` where
            the platform has no ``resource`` module.
    """

    model_bytes: int
    loaded_bytes: int
    peak_python_bytes: int = dataclasses.field(metadata=MEASURED)
    peak_rss_bytes: int | None = dataclasses.field(metadata=MEASURED)

    def __post_init__(self):
        for f in ("model_bytes", "loaded_bytes", "peak_python_bytes"):
            self._set(f, count(getattr(self, f), f))
        self._set("peak_rss_bytes", count(self.peak_rss_bytes, "peak_rss_bytes", optional=True))


def model_bytes(model) -> int:
    """Bytes of ``model`` as stored.

    Args:
        model: A :class:`~refquant.qmodel.QuantizedModel` (its ``nbytes``: int4 codes packed two per
            byte, every scale, zero point and bias counted exactly) or a float
            :class:`refquant.nn.Module` (its parameters and buffers, ``ndarray.nbytes`` each).

    Raises:
        QuantizationTypeError: ``model`` is neither.
    """
    model = check_model(model, callables=False)
    if isinstance(model, QuantizedModel):
        return int(model.nbytes)
    return sum(p.value.nbytes for p in model.parameters()) + sum(
        b.nbytes for _, b in model.named_buffers() if isinstance(b, np.ndarray))


def _arrays_nbytes(values) -> int:
    return sum(v.nbytes for v in values if isinstance(v, np.ndarray))


def loaded_bytes(model) -> int:
    """Bytes of the arrays ``model`` holds now (see the module docstring)."""
    if isinstance(model, QuantizedModel):
        held = sum(_arrays_nbytes(n.params.values()) for n in model.nodes)
        # The per-node caches are the model's own (QuantizedModel has no public view of them yet).
        held += sum(_arrays_nbytes(c.values()) for c in model._caches.values())
        return held + sum(4 + np.dtype(t.dtype).itemsize for t in model.tensors.values() if t.is_integer)
    params = model.parameters()
    return (sum(p.value.nbytes + p.grad.nbytes for p in params)
            + sum(b.nbytes for _, b in model.named_buffers() if isinstance(b, np.ndarray)))


def peak_rss_bytes() -> int | None:
    """The process's peak resident set in bytes (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def memory(model, x) -> Memory:
    """Stored and loaded bytes of ``model``, and the peak memory of one call on the batch ``x``.

    The model runs once untimed and untraced (to fill its caches and compile its kernels), then once
    under ``tracemalloc``. If ``tracemalloc`` is already tracing, it keeps tracing (its peak is reset).

    Args:
        model: A float :class:`refquant.nn.Module` (run in evaluation mode) or a
            :class:`~refquant.qmodel.QuantizedModel`.
        x: The batch to run, ``(N, ...)`` with N >= 1: the peak grows with N.

    Returns:
        A :class:`Memory`.

    Raises:
        QuantizationTypeError: ``model`` is neither.
        QuantizationValueError, ShapeError: ``x`` empty or non-finite, or not what the model takes.
    """
    model = check_model(model, callables=False)
    x = check_x(x)
    with inference(model) as f:
        call(f, x)  # warm: caches filled, kernels compiled
        started = tracemalloc.is_tracing()
        if not started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            out = f(x)
            peak = tracemalloc.get_traced_memory()[1] - base
            del out
        finally:
            if not started:
                tracemalloc.stop()
    return Memory(model_bytes(model), loaded_bytes(model), max(int(peak), 0), peak_rss_bytes())
