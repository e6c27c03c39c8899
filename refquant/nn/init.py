"""Seeded parameter initialisation.

refquant.nn draws every random number (initial weights, dropout masks, shuffling) from
a NumPy ``Generator``, never from global NumPy state. Layers built without an explicit
``rng`` take one from a process-wide generator seeded with 0 at import, so a script that
builds the same model twice in a fresh process gets the same weights; call
:func:`manual_seed` to restart that stream (like ``torch.manual_seed``).

The default initialisation is PyTorch's (``torch.nn.Linear.reset_parameters``,
``torch.nn.Conv2d.reset_parameters``): weights and biases from
$\\mathcal{U}(-1/\\sqrt{\\mathrm{fan\\_in}},\\, 1/\\sqrt{\\mathrm{fan\\_in}})$, which is
Kaiming-uniform with $a = \\sqrt{5}$. The generators differ, so the values differ
from PyTorch's for the same seed.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validate import describe
from ..errors import QuantizationTypeError, QuantizationValueError

__all__ = ["manual_seed", "get_rng", "as_rng", "uniform_fan_in", "kaiming_normal"]

_DEFAULT = [np.random.default_rng(0)]


def manual_seed(seed: int) -> None:
    """Restart the process-wide generator used by layers built with ``rng=None``."""
    _DEFAULT[0] = np.random.default_rng(as_seed(seed, "seed"))


def as_seed(seed, name: str = "seed") -> int:
    """An integer seed >= 0 (what ``numpy.random.default_rng`` accepts as one number)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{name} must be an integer >= 0, got {describe(seed)}")
    if int(seed) < 0:
        raise QuantizationValueError(f"{name} must be an integer >= 0, got {int(seed)}")
    return int(seed)


def get_rng() -> np.random.Generator:
    """Return the process-wide generator (seeded with 0 at import)."""
    return _DEFAULT[0]


def as_rng(rng) -> np.random.Generator:
    """Return a Generator from ``None`` (the process-wide one), an int seed, or a Generator."""
    if rng is None:
        return _DEFAULT[0]
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(as_seed(rng, "rng"))
    raise QuantizationTypeError(f"rng must be None, an int seed >= 0 or a numpy.random.Generator, got {describe(rng)}")


def uniform_fan_in(shape, fan_in: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """PyTorch's default: $\\mathcal{U}(-b, b)$ with $b = 1/\\sqrt{\\mathrm{fan\\_in}}$."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(shape, fan_in: int, rng: np.random.Generator, dtype, gain: float = np.sqrt(2.0)) -> np.ndarray:
    """He initialisation $\\mathcal{N}(0, (\\mathrm{gain}/\\sqrt{\\mathrm{fan\\_in}})^2)$ (for ReLU nets)."""
    return (rng.standard_normal(size=shape) * (gain / np.sqrt(fan_in))).astype(dtype)
