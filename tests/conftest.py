"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ort_runner():
    """``support.onnx_runner`` (skipped when onnxruntime is not installed). Tests compare ONNX Runtime on
    this CPU with the accumulation model the ``onnxruntime`` profile resolves for this CPU
    (:data:`ORT_HOST`): u8×s8 pairs saturate on x86 AVX2 without VNNI, and are exact with VNNI."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("ml_dtypes")
    from support import onnx_runner

    return onnx_runner
