"""The observer protocol: stream batches in, read one float range out.

An observer sees a tensor one batch at a time (:meth:`Observer.update`), keeps a summary whose
size does not grow with the number of batches (a running min and max, a histogram), and reports
the float range a calibrator chose (:meth:`Observer.range`). It reports the *raw* range: it
neither widens it to contain zero nor turns it into a scale and zero point — the caller does
that with its backend's rule (for example :func:`refquant.backends.pytorch.choose_qparams`).

Every observer computes on float32: a float16 or float64 batch is converted first, as the
mirrored calibrators see float32 tensors (PyTorch observers' ``min_val``/``max_val`` buffers,
ONNX Runtime's float32 model outputs).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import (
    CalibrationError,
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)

__all__ = ["Observer"]


class Observer:
    """Base class of the calibration observers.

    Subclasses set :attr:`name` and implement ``_observe(x)`` (``x`` a checked float32 batch),
    ``_range()`` and ``_reset()``.

    Args:
        axis: ``None`` for one range per tensor, or the channel axis (an int, negative counts
            from the end) for one range per channel, where the observer supports it.

    Attributes:
        name: The calibrator's name, as :func:`refquant.calibration.make_observer` takes it.
        axis: The channel axis as given, or ``None``.
    """

    name: str = ""
    per_channel_supported: bool = False

    def __init__(self, axis=None):
        if axis is not None:
            axis = V.as_int_scalar(axis, "axis")
            if not self.per_channel_supported:
                raise UnsupportedError(
                    f"axis must be None for {self.name!r} (it keeps one histogram per tensor), got {axis}")
        self.axis = axis
        self._channels = None  # channel count, fixed by the first per-channel batch
        self._seen = False

    def update(self, x) -> None:
        """Observe one batch.

        Args:
            x: A float array of any shape (float16/32/64, converted to float32), finite and not
                empty; with a channel axis, it must have that axis and the same number of
                channels along it as the first batch.

        Raises:
            QuantizationTypeError: ``x`` is not a float array (integers, bools, objects).
            QuantizationValueError: ``x`` holds NaN or ±Inf, or a value beyond the float32 range.
            ShapeError: ``x`` is empty, or lacks the channel axis, or has another channel count.
            CalibrationError: The mirrored calibrator fails on this batch too (e.g. ONNX Runtime's
                histogram of a range too narrow for its bins); the observer's state is unchanged.
        """
        self._observe(self._check_batch(x))
        self._seen = True

    def range(self):
        """The range this calibrator chose, from every batch seen since the last reset.

        Returns:
            ``(lo, hi)``: float32 scalars per tensor, or float32 ``(C,)`` arrays per channel.

        Raises:
            CalibrationError: :meth:`update` was never called (or not since :meth:`reset`).
        """
        if not self._seen:
            raise CalibrationError(
                f"{self.name} observer has no data: call update(x) with at least one batch before range()")
        return self._range()

    def reset(self) -> None:
        """Forget every batch seen (the options stay)."""
        self._seen = False
        self._channels = None
        self._reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, axis={self.axis!r}, seen={self._seen})"

    # --------------------------------------------------------------------------- checks

    def _check_batch(self, x) -> np.ndarray:
        """``x`` as a finite, non-empty float32 array (checked as :meth:`update` documents)."""
        a = V.as_float_array(x, "x")
        if a.size == 0:
            raise ShapeError(f"x must not be empty, got shape {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise QuantizationValueError(f"x must be finite, got {a[where].item()!r} at index {where}")
        with np.errstate(over="ignore"):
            a32 = a.astype(np.float32)
        bad = ~np.isfinite(a32)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise QuantizationValueError(
                f"x must be finite in float32, got {a[where].item()!r} at index {where} (beyond float32's range)")
        if self.axis is not None:
            a32 = self._channels_first(a32)
        return a32

    def _channels_first(self, a: np.ndarray) -> np.ndarray:
        """``a`` as a ``(C, rest)`` float32 array with the channel axis first."""
        if not -a.ndim <= self.axis < a.ndim:
            raise ShapeError(
                f"axis={self.axis} is out of range for x of shape {a.shape} "
                f"(x must have at least {self.axis + 1 if self.axis >= 0 else -self.axis} dimensions)")
        c = a.shape[self.axis]
        if self._channels is not None and c != self._channels:
            raise ShapeError(
                f"x must have {self._channels} channels along axis {self.axis} (as the first batch), "
                f"got shape {a.shape}")
        self._channels = c
        return np.moveaxis(a, self.axis, 0).reshape(c, -1)

    # --------------------------------------------------------------------------- subclass hooks

    def _observe(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _range(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
