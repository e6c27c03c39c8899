"""The comparison every conformance test makes: the backend's output against refquant's, with
``refquant.testing.assert_bit_exact`` (shape, dtype, then every element by its bits), and the
count of compared elements the tests report (``pytest -s``)."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.testing import assert_bit_exact

__all__ = ["compared", "report"]


def compared(got, want, what: str, *, backend: str = "backend") -> int:
    """``got`` (the backend's) must equal ``want`` (refquant's) bit for bit; returns ``got.size``."""
    try:
        assert_bit_exact(np.asarray(got), np.asarray(want))
    except AssertionError as err:
        pytest.fail(f"{what}: {backend} (actual) vs refquant (expected): {err}")
    return np.asarray(got).size


def report(what: str, **counts) -> None:
    """One line per test with what was compared (shown with ``pytest -s``)."""
    print(f"{what}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
