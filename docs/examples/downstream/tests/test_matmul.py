"""tinyq's matmul against ONNX Runtime's QLinearMatMul, bit for bit, with refquant as the oracle.

TINYQ_KERNEL picks the module under test: ``matmul`` (default) or ``matmul_v1`` (the first attempt).
"""
import importlib
import os

import numpy as np
import pytest

from refquant.testing.explain import explain_mismatch

qmatmul = importlib.import_module("tinyq." + os.environ.get("TINYQ_KERNEL", "matmul")).qmatmul


def make_case(seed):
    """Small codes and power-of-two scales (M = 2^-5): many accumulators land on exact .5 ties."""
    rng = np.random.default_rng(seed)
    return dict(a=rng.integers(-30, 31, (8, 16)).astype(np.int8), a_scale=np.float32(2.0 ** -3),
                a_zero_point=np.int8(rng.integers(-5, 6)), b=rng.integers(-30, 31, (16, 8)).astype(np.int8),
                b_scale=np.float32(2.0 ** -4), b_zero_point=np.int8(0), y_scale=np.float32(2.0 ** -2),
                y_zero_point=np.int8(rng.integers(-10, 11)))


@pytest.mark.parametrize("seed", range(8))
def test_qmatmul_matches_onnxruntime(refquant_oracle, seed):
    case = make_case(seed)
    expected = refquant_oracle.op("onnxruntime", "qlinear_matmul", **case)
    got = qmatmul(**case)
    assert np.array_equal(got, expected), str(explain_mismatch("onnxruntime.qlinear_matmul", case, got))
