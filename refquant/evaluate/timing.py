r"""Latency and throughput: how long one inference takes, and how many run per second.

**Latency** (:func:`latency`): batch-1 calls on ``x[i % N]``, each timed alone with
``time.perf_counter_ns`` (the highest-resolution monotonic clock Python has: tens of nanoseconds on
Linux). The **first** call is timed apart and reported as ``first_call_ms``: it pays one-off costs,
Numba's compilation of every kernel the model calls (unless the on-disk cache or an earlier call in
this process already did it), constants derived once and cached by the model, cold caches. Then
``warmup`` untimed calls, then ``repeats`` timed calls, summarised by their median and their 90th and
99th percentiles (linear interpolation between order statistics, ``np.percentile``'s default). The
garbage collector is paused while the repeats run (as ``timeit`` does), so a collection triggered by
earlier work is not charged to one call.

**Throughput** (:func:`throughput`): for each batch size $B$, a batch of $B$ samples
(``x[i % N]`` for ``i < B``: ``x`` repeated when $B > N$), one untimed warm-up call, then calls
until at least ``min_seconds`` have passed (and at least two calls):

$$ \text{throughput}(B) = \frac{\text{calls} \cdot B}{\text{elapsed seconds}}\ \text{inferences/s}. \tag{2} $$

Both measure wall-clock time in this process, on whatever else the machine is doing: report the
median and the percentiles, not one run, and compare models measured in the same session. See docs
"Learn 15: Evaluating a quantized model", §2–3.
"""

from __future__ import annotations

import dataclasses
import gc
import time

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError
from ._inputs import MAX_CALLS, call, check_model, check_x, inference
from ._record import MEASURED, Record, count, non_negative

__all__ = ["Latency", "latency", "throughput"]

#: Longest ``min_seconds`` accepted per batch size.
MAX_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Latency(Record):
    """Batch-1 latency of a model, in milliseconds (see the module docstring for how it is measured).

    Attributes:
        first_call_ms: The first call alone (compilation, caches): never part of the statistics.
        median_ms: Median of the ``repeats`` timed calls.
        p90_ms: Their 90th percentile. p99_ms: Their 99th percentile.
        repeats: How many calls the statistics summarise.
    """

    first_call_ms: float = dataclasses.field(metadata=MEASURED)
    median_ms: float = dataclasses.field(metadata=MEASURED)
    p90_ms: float = dataclasses.field(metadata=MEASURED)
    p99_ms: float = dataclasses.field(metadata=MEASURED)
    repeats: int

    def __post_init__(self):
        for f in ("first_call_ms", "median_ms", "p90_ms", "p99_ms"):
            self._set(f, non_negative(getattr(self, f), f))
        self._set("repeats", count(self.repeats, "repeats", minimum=1))
        if not self.median_ms <= self.p90_ms <= self.p99_ms:
            raise QuantizationValueError(f"median_ms <= p90_ms <= p99_ms must hold, got {self.median_ms!r}, "
                                         f"{self.p90_ms!r}, {self.p99_ms!r}")


def _calls(v, name: str, minimum: int) -> int:
    return V.as_positive_int(v, name, minimum=minimum, maximum=MAX_CALLS)


def latency(model, x, *, repeats: int = 50, warmup: int = 3) -> Latency:
    """Batch-1 latency: the first call alone, then the median and p90/p99 of ``repeats`` timed calls.

    Args:
        model: A float :class:`refquant.nn.Module` (run in evaluation mode), a
            :class:`~refquant.qmodel.QuantizedModel` or a function ``f(x)``.
        x: ``(N, ...)`` samples; call ``i`` runs on ``x[i % N : i % N + 1]``.
        repeats: Timed calls, 1 to 10^6.
        warmup: Untimed calls after the first, 0 to 10^6.

    Returns:
        A :class:`Latency` (milliseconds).

    Raises:
        QuantizationTypeError: ``model`` is none of the three.
        QuantizationValueError, ShapeError: ``x`` empty or non-finite, ``repeats`` or ``warmup`` out of range.
    """
    model = check_model(model)
    x = check_x(x)
    repeats = _calls(repeats, "repeats", 1)
    warmup = _calls(warmup, "warmup", 0)
    n = x.shape[0]
    samples = [x[i:i + 1] for i in range(n)]  # (1, ...) views, made before any timing
    times = np.empty(repeats, np.int64)  # ns
    with inference(model) as f:
        t0 = time.perf_counter_ns()
        call(f, samples[0])
        first = time.perf_counter_ns() - t0
        for i in range(1, warmup + 1):
            f(samples[i % n])
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for i in range(repeats):
                s = samples[(warmup + 1 + i) % n]
                t0 = time.perf_counter_ns()
                f(s)
                times[i] = time.perf_counter_ns() - t0
        finally:
            if was_enabled:
                gc.enable()
    ms = times / 1e6
    median, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Latency(first / 1e6, float(median), float(p90), float(p99), repeats)


def check_batch_sizes(batch_sizes, x: np.ndarray, name: str = "batch_sizes") -> tuple[int, ...]:
    """An int or a sequence of distinct ints >= 1 whose batches of ``x``'s samples fit in memory."""
    if isinstance(batch_sizes, (int, np.integer)) and not isinstance(batch_sizes, (bool, np.bool_)):
        batch_sizes = (batch_sizes,)
    sizes = V.as_int_sequence(batch_sizes, name, minimum=1)
    if not sizes:
        raise QuantizationValueError(f"{name} must name at least one batch size, got {list(sizes)}")
    if len(set(sizes)) != len(sizes):
        raise QuantizationValueError(f"{name} must not repeat a batch size, got {list(sizes)}")
    sample = int(np.prod(x.shape[1:], dtype=np.int64))
    V.check_allocation(max(sizes) * sample, x.dtype.itemsize, f"max({name}) * the size of one sample")
    return sizes


def check_seconds(min_seconds, name: str = "min_seconds") -> float:
    """A time budget in (0, 60] seconds."""
    seconds = V.as_real_scalar(min_seconds, name)
    if not 0 < seconds <= MAX_SECONDS:
        raise QuantizationValueError(f"{name} must be in (0, {MAX_SECONDS:g}] seconds, got {seconds!r}")
    return seconds


def tiled(x: np.ndarray, size: int) -> np.ndarray:
    """A batch of ``size`` samples ``x[i % N]`` (``x`` repeated when ``size > N``)."""
    return x[:size] if size <= x.shape[0] else x[np.arange(size) % x.shape[0]]


def throughput(model, x, *, batch_sizes=(1, 32, 256), min_seconds: float = 0.2) -> dict:
    """Inferences per second at each batch size (eq. (2)), after one untimed call per batch size.

    Args:
        model: A float :class:`refquant.nn.Module` (run in evaluation mode), a
            :class:`~refquant.qmodel.QuantizedModel` or a function ``f(x)``.
        x: ``(N, ...)`` samples; a batch of B takes ``x[i % N]`` for ``i < B``.
        batch_sizes: An int or a sequence of distinct ints >= 1.
        min_seconds: Time each batch size for at least this long (and at least two calls),
            in (0, 60].

    Returns:
        ``{batch size: inferences per second}`` (Python int -> float), in the order given.

    Raises:
        QuantizationTypeError: ``model`` is none of the three.
        QuantizationValueError, ShapeError: ``x`` empty or non-finite, a batch size < 1 or repeated, or
            too large for this machine's memory, ``min_seconds`` out of range.
    """
    model = check_model(model)
    x = check_x(x)
    sizes = check_batch_sizes(batch_sizes, x)
    min_seconds = check_seconds(min_seconds)
    budget = int(min_seconds * 1e9)
    rates = {}
    with inference(model) as f:
        for size in sizes:
            batch = tiled(x, size)
            call(f, batch)  # warm-up: compilation for this shape, caches
            calls, t0 = 0, time.perf_counter_ns()
            while True:
                f(batch)
                calls += 1
                elapsed = time.perf_counter_ns() - t0
                if elapsed >= budget and calls >= 2:
                    break
            rates[size] = calls * size / (elapsed / 1e9)
    return rates
