"""Exceptions and warnings raised by refquant.

Every public function validates its arguments at its boundary and raises one of the
classes below, with a message that names the argument, the expected value and the
received one, e.g. ``zero_point must be in [-128, 127] for int8, got 300``.

The classes subclass the built-in ``ValueError`` / ``TypeError`` so that callers who
already catch those keep working.
"""

from __future__ import annotations

__all__ = [
    "RefquantError",
    "QuantizationValueError",
    "QuantizationTypeError",
    "ShapeError",
    "UnsupportedError",
    "FormatVersionError",
    "TrainingDivergedError",
    "CalibrationError",
    "RefquantWarning",
    "AccumulatorOverflowWarning",
    "AccumulatorOverflowError",
]


class RefquantError(Exception):
    """Base class of every exception refquant raises on purpose."""


class QuantizationValueError(RefquantError, ValueError):
    """An argument has the right type but a value outside what is allowed
    (a scale <= 0, a zero point outside the format's range, an unknown name)."""


class QuantizationTypeError(RefquantError, TypeError):
    """An argument has the wrong type or dtype (a float array where int8 is
    required, a string where a number is expected)."""


class ShapeError(QuantizationValueError):
    """Array shapes do not fit together (a per-axis scale whose length is not the
    size of the axis, a block size that does not divide the axis as required)."""


class UnsupportedError(RefquantError, NotImplementedError):
    """A valid request that the named backend (or refquant) does not implement."""


class FormatVersionError(QuantizationValueError):
    """A saved file has another format version or a missing key."""


class TrainingDivergedError(RefquantError, FloatingPointError):
    """Training produced a NaN or infinite loss (the message names the epoch and batch)."""


class CalibrationError(RefquantError, RuntimeError):
    """A calibration observer cannot report a range: it has seen no data yet (``range()``
    before ``update()``), or its histogram became one the mirrored calibrator cannot use
    (the message names the observer and the reason)."""


class RefquantWarning(UserWarning):
    """Base class of refquant's warnings."""


class AccumulatorOverflowWarning(RefquantWarning):
    """An int32 accumulator left the int32 range under a model that does not wrap."""


class AccumulatorOverflowError(QuantizationValueError):
    """An int32 accumulator left the int32 range and the caller asked for an error
    (``on_overflow="raise"``) instead of :class:`AccumulatorOverflowWarning`."""
