"""The base of the evaluation records: frozen dataclasses whose fields are checked when built and
which turn into JSON-ready plain types (internal)."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError

#: Field metadata of a measured number (a time, a peak): it differs from run to run.
MEASURED = {"measured": True}


def plain(v):
    """``v`` with NumPy scalars, tuples and records turned into Python floats, ints, lists and dicts."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {(int(k) if isinstance(k, (int, np.integer)) else k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


class Record:
    """``as_dict()`` for the frozen dataclasses of :mod:`refquant.evaluate`."""

    def as_dict(self) -> dict:
        """The fields as plain Python types (nested records as dicts), ready for ``json.dumps``."""
        return plain(self)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # frozen: only __post_init__ normalises a field


def non_negative(v, name: str, *, optional: bool = False) -> float | None:
    """A finite real >= 0 as a Python float (``None`` kept when ``optional``)."""
    if optional and v is None:
        return None
    f = V.as_real_scalar(v, name)
    if f < 0:
        raise QuantizationValueError(f"{name} must be >= 0, got {f!r}")
    return f


def share(v, name: str, *, optional: bool = False) -> float | None:
    """A share in [0, 1] as a Python float (``None`` kept when ``optional``)."""
    f = non_negative(v, name, optional=optional)
    if f is not None and f > 1:
        raise QuantizationValueError(f"{name} must be in [0, 1], got {f!r}")
    return f


def count(v, name: str, *, optional: bool = False, minimum: int = 0) -> int | None:
    """An int >= ``minimum`` (``None`` kept when ``optional``)."""
    if optional and v is None:
        return None
    return V.as_int_scalar(v, name, lo=minimum)


def rate_table(v, name: str) -> dict:
    """``{batch size (int >= 1): rate (finite float >= 0)}``, non-empty."""
    if not isinstance(v, dict) or not v:
        raise QuantizationTypeError(f"{name} must be a non-empty dict batch size -> inferences per second, "
                                    f"got {V.describe(v)}")
    out = {}
    for b, r in v.items():
        out[V.as_positive_int(b, f"{name} batch size")] = non_negative(r, f"{name}[{b!r}]")
    return out

