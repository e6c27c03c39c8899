"""``refquant.nn.Softmax``: forward against a float64 formula (and torch when installed), backward
against central finite differences, saving, and bad arguments.

Tolerances: forward float32 vs the float64 formula, ``rtol=2e-6``: the float32 difference
$x - \\max x$ rounds by up to ½ ulp of its magnitude (≈ 1e-6 for |x - max| ≈ 30, the inputs' range
here), which ``exp`` turns into a relative error of that size; exp, the sum and the division add a
few float32 ulps (6e-8 each). Backward as in ``test_nn_gradcheck.py`` (float64,
|analytic - numeric| ≤ 1e-6 + 1e-5·|numeric|).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_nn_gradcheck import check_layer

from refquant import nn
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError


def _reference(x: np.ndarray, axis: int) -> np.ndarray:
    z = x.astype(np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape, axis", [((4, 10), -1), ((4, 10), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1),
                                         ((7,), 0)])
def test_forward_matches_float64(shape, axis):
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(np.float32)
    y = nn.Softmax(axis)(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, _reference(x, axis), rtol=2e-6, atol=0)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-6)


def test_large_logits_do_not_overflow():
    x = np.array([[1000.0, 999.0, -1000.0], [88.0, 89.0, 90.0]], np.float32)  # e^89 overflows float32
    y = nn.Softmax()(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, _reference(x, -1), rtol=2e-6)
    assert y[0, 2] == 0.0


def test_float64_kept():
    assert nn.Softmax()(np.zeros((2, 3))).dtype == np.float64


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(1).standard_normal((3, 4, 5)) * 4).astype(np.float32)
    want = torch.softmax(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_allclose(nn.Softmax(1)(x), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((2, 3, 4), 1), ((2, 3, 2, 2), 0)])
def test_backward_matches_finite_differences(shape, axis):
    x = np.random.default_rng(2).standard_normal(shape)
    check_layer(nn.Softmax(axis), x)


def test_saved_and_rebuilt():
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.Softmax(axis=1))
    rebuilt = nn.build(nn.architecture(model))
    assert isinstance(rebuilt[1], nn.Softmax) and rebuilt[1].axis == 1


def test_bad_arguments():
    with pytest.raises(QuantizationTypeError, match="axis must be an integer"):
        nn.Softmax(1.5)
    with pytest.raises(QuantizationValueError, match=r"axis must be in \[-2, 1\] for a rank-2 input, got 2"):
        nn.Softmax(2)(np.zeros((2, 3), np.float32))
    with pytest.raises(QuantizationTypeError, match="Softmax"):
        nn.Softmax()(np.zeros((2, 3), np.int32))
    with pytest.raises(QuantizationValueError, match="before forward"):
        nn.Softmax().backward(np.zeros((2, 3), np.float32))
    layer = nn.Softmax()
    layer(np.zeros((2, 3), np.float32))
    with pytest.raises(ShapeError, match="grad_out"):
        layer.backward(np.zeros((3, 2), np.float32))
