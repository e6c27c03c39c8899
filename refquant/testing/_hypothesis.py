"""The optional hypothesis import of the strategies modules, with the error that says how to install it."""

from __future__ import annotations

try:
    from hypothesis import assume, reject
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # exercised in a subprocess by tests/test_testing_strategies.py
    raise ImportError("refquant.testing.strategies needs the hypothesis package: pip install hypothesis") from err

__all__ = ["assume", "reject", "st", "hnp"]
