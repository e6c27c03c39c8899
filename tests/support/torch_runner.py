"""Thin helpers for running PyTorch quantized CPU ops in conformance tests.

PyTorch needs no model building: tests call ``torch.quantize_per_tensor``,
``torch.ao.nn.quantized.Linear`` etc. directly. What they do need is the quantized
*engine* (``torch.backends.quantized.engine``), a process-wide setting that selects
FBGEMM (``"fbgemm"``, ``"x86"``), QNNPACK (``"qnnpack"``) or oneDNN (``"onednn"``)
kernels, and that must be restored after each test. torch 2.13 CPU wheel on x86-64:
supported engines ``['qnnpack', 'onednn', 'x86', 'fbgemm']``, default ``"x86"``.

Usage::

    torch = pytest.importorskip("torch")
    with quantized_engine("qnnpack"):
        y = torch.ops.quantized.linear(...)
"""

from __future__ import annotations

import contextlib

__all__ = ["supported_engines", "quantized_engine", "require_engine", "to_numpy_int"]


def supported_engines() -> list[str]:
    """The quantized engines this torch build supports (``torch.backends.quantized.supported_engines``),
    without the placeholder ``"none"``."""
    import torch

    return [e for e in torch.backends.quantized.supported_engines if e != "none"]


@contextlib.contextmanager
def quantized_engine(name: str):
    """Set ``torch.backends.quantized.engine`` to ``name`` inside the block; restore it after.

    Raises:
        ValueError: ``name`` is not a supported engine of this build.
    """
    import torch

    engines = supported_engines()
    if name not in engines:
        raise ValueError(f"engine must be one of {engines}, got {name!r}")
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield name
    finally:
        torch.backends.quantized.engine = previous


def require_engine(name: str) -> None:
    """``pytest.skip`` unless this torch build supports the engine ``name``."""
    import pytest

    if name not in supported_engines():
        pytest.skip(f"torch quantized engine {name!r} not supported here ({supported_engines()})")


def to_numpy_int(qtensor):
    """Integer codes of a quantized tensor as NumPy: quint8 -> uint8, qint8 -> int8, qint32 -> int32."""
    return qtensor.int_repr().numpy()
