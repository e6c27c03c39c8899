"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ort_runner():
    """``support.onnx_runner`` on a CPU where ONNX Runtime's u8×s8 pair saturation applies (x86 AVX2
    without VNNI); skipped when onnxruntime is not installed or the CPU is another kind (the model
    then describes a machine that is not this one: tested where it runs, documented elsewhere)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("ml_dtypes")
    from refquant.cpu import detect_isa
    from support import onnx_runner

    if detect_isa() != "avx2":
        pytest.skip(f"the pair-saturation model is the x86 AVX2-without-VNNI behaviour; this CPU: {detect_isa()}")
    return onnx_runner
