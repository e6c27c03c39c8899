"""Module mechanics: traversal, hooks, weight transforms, modes, dtypes, freezing, and
the bad-input errors of every layer."""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn
from refquant.errors import QuantizationTypeError, QuantizationValueError, RefquantError, ShapeError


def model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, rng=1), nn.ReLU6())),
                         nn.GlobalAvgPool2d(), nn.Linear(4, 3, rng=2))


X = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)


def test_named_modules_parameters_and_buffers():
    m = model()
    names = [n for n, _ in m.named_modules()]
    assert names == ["", "0", "1", "2", "3", "3.body", "3.body.0", "3.body.1", "3.add", "4", "5"]
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias", "3.body.0.weight",
                                                   "3.body.0.bias", "5.weight", "5.bias"]
    assert [n for n, _ in m.named_buffers()] == ["1.running_mean", "1.running_var"]
    assert m.num_parameters() == 4 * 9 + 4 + 4 + 4 + 4 * 9 + 4 + 12 + 3


def test_forward_hooks_see_every_layer_input_and_output():
    m = model()
    seen = {}
    handles = [mod.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, (inp, out)))
               for n, mod in m.named_modules()]
    y = m(X)
    assert seen[""][1] is y
    np.testing.assert_array_equal(seen["2"][1], np.maximum(seen["1"][1], 0))
    a, b = seen["3.add"][0]  # Add: both inputs
    np.testing.assert_array_equal(seen["3.add"][1], a + b)
    for h in handles:
        h.remove()
    seen.clear()
    m(X)
    assert seen == {}


def test_hook_replacing_output_passes_gradient_straight_through():
    m = nn.Sequential(nn.Linear(3, 3, rng=0), nn.Identity())
    with m[0].register_forward_hook(lambda mod, inp, out: np.round(out)):  # RNE, a fake "quantizer"
        y = m(np.ones((1, 3), np.float32))
        np.testing.assert_array_equal(y, np.round(y))
        g = m.backward(np.ones_like(y))
    np.testing.assert_allclose(g, np.ones((1, 3)) @ m[0].weight.value, rtol=1e-6)
    assert not m[0]._forward_hooks  # the context manager removed it


def test_pre_hook_replaces_inputs():
    lin = nn.Linear(2, 1, rng=0)
    lin.register_forward_pre_hook(lambda mod, inp: inp[0] * 0)
    np.testing.assert_array_equal(lin(np.ones((1, 2), np.float32)), lin.bias.value[None])


def test_weight_transform_fake_quant_ste():
    lin = nn.Linear(4, 2, rng=0)
    step = np.float32(0.25)
    lin.weight_transform = nn.straight_through(lambda w: np.round(w / step) * step)  # RNE
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    y = lin(x)
    w_eff = lin.effective_weight()
    np.testing.assert_array_equal(w_eff, np.round(lin.weight.value / step) * step)
    np.testing.assert_allclose(y, x @ w_eff.T + lin.bias.value, rtol=1e-6)
    g = np.ones_like(y)
    gx = lin.backward(g)
    np.testing.assert_allclose(gx, g @ w_eff, rtol=1e-6)  # the input gradient uses W_eff
    np.testing.assert_allclose(lin.weight.grad, g.T @ x, rtol=1e-6)  # the float weight gets dL/dW_eff


def test_mask_transform_keeps_pruned_weights_at_zero_during_training():
    x = np.random.default_rng(2).standard_normal((64, 1, 6, 6)).astype(np.float32)
    y = np.arange(64) % 3
    m = model()
    mask = np.random.default_rng(3).random(m[0].weight.shape) > 0.5
    m[0].weight_transform = nn.compose(nn.mask_transform(mask), nn.straight_through(lambda w: w))
    before = m[0].weight.value.copy()
    nn.fit(m, x, y, epochs=2, batch_size=16, optimizer=nn.SGD(m, lr=0.1), progress=False)
    assert np.all(m[0].effective_weight()[~mask] == 0)
    np.testing.assert_array_equal(m[0].weight.value[~mask], before[~mask])  # zero gradient, no decay
    assert not np.array_equal(m[0].weight.value[mask], before[mask])


def test_weight_transform_errors():
    lin = nn.Linear(2, 2, rng=0)
    lin.weight_transform = lambda w: w[:1]
    with pytest.raises(ShapeError, match="weight_transform must keep the weight shape"):
        lin(np.ones((1, 2), np.float32))
    lin.weight_transform = lambda w: (w, w, w)
    with pytest.raises(QuantizationTypeError, match="tuple of length 3"):
        lin(np.ones((1, 2), np.float32))


def test_train_eval_dtype_copy_and_freeze():
    m = model()
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m64 = m.copy().to(np.float64)
    assert m64(X).dtype == np.float64 and m(X).dtype == np.float32
    assert m64[1].running_var.dtype == np.float64 and m[0].weight.dtype == np.float32
    m[0].weight.requires_grad = False
    before = m[0].weight.value.copy()
    nn.fit(m, np.repeat(X, 8, 0), np.arange(16) % 3, epochs=1, batch_size=4, progress=False)
    np.testing.assert_array_equal(m[0].weight.value, before)
    assert not np.array_equal(m[5].weight.value, m64[5].weight.value.astype(np.float32))


def test_batchnorm_running_statistics_used_in_eval():
    bn = nn.BatchNorm1d(2)
    bn.running_mean = np.array([1.0, -1.0], np.float32)
    bn.running_var = np.array([4.0, 0.25], np.float32)
    bn.eval()
    y = bn(np.array([[3.0, 0.0]], np.float32))
    np.testing.assert_allclose(y, [[2.0 / np.sqrt(4 + 1e-5), 1.0 / np.sqrt(0.25 + 1e-5)]], rtol=1e-6)


BAD_INPUTS = [
    (nn.Conv2d(3, 4, 3), np.zeros((2, 3, 5), np.float32), ShapeError, r"rank 4 \(N, C, H, W\), got rank 3"),
    (nn.Conv2d(3, 4, 3), np.zeros((2, 2, 5, 5), np.float32), ShapeError, "3 channels on axis 1.*got 2"),
    (nn.Conv2d(3, 4, 5), np.zeros((1, 3, 4, 4), np.float32), ShapeError, "smaller than the dilated kernel"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 3, 5, 5), np.int32), QuantizationTypeError, "float32 or float64.*int32"),
    (nn.Linear(4, 2), np.zeros((2, 3), np.float32), ShapeError, "4 channels"),
    (nn.Linear(4, 2), np.zeros(4, np.float32), ShapeError, "rank 2"),
    (nn.BatchNorm2d(3), np.zeros((2, 3, 4), np.float32), ShapeError, "rank 4"),
    (nn.BatchNorm1d(3), np.zeros((2, 4), np.float32), ShapeError, "3 channels"),
    (nn.BatchNorm1d(3), np.zeros((1, 3), np.float32), ShapeError, "more than 1 value per channel"),
    (nn.MaxPool2d(2), np.zeros((2, 3, 4), np.float32), ShapeError, "rank 4"),
    (nn.GlobalAvgPool2d(), np.zeros((2, 3), np.float32), ShapeError, "rank 4"),
    (nn.Linear(2, 2), np.array([[1.0, np.nan]], np.float32), QuantizationValueError, r"1 NaN.*\(0, 1\)"),
    (nn.ReLU(), np.array([np.inf], np.float32), QuantizationValueError, "0 NaN and 1 Inf"),
]


@pytest.mark.parametrize("layer, x, exc, msg", BAD_INPUTS,
                         ids=[f"{type(b[0]).__name__}-{b[3][:20]}" for b in BAD_INPUTS])
def test_bad_inputs(layer, x, exc, msg):
    with pytest.raises(exc, match=msg):
        layer(x)


def test_bad_arguments():
    with pytest.raises(QuantizationValueError, match="divisible by groups = 3"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(QuantizationValueError, match="kernel_size must be an integer >= 1, got 0"):
        nn.Conv2d(4, 6, 0)
    with pytest.raises(QuantizationValueError, match="padding must be at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(QuantizationValueError, match=r"p must be in \[0, 1\)"):
        nn.Dropout(1.0)
    with pytest.raises(QuantizationTypeError, match="float32 or float64"):
        nn.Linear(2, 2, dtype=np.int8)
    with pytest.raises(QuantizationValueError, match="lr must be finite and > 0"):
        nn.SGD(model(), lr=-1)
    with pytest.raises(QuantizationValueError, match="nesterov"):
        nn.SGD(model(), lr=0.1, nesterov=True)
    with pytest.raises(ShapeError, match="same shape"):
        nn.Add()(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(QuantizationTypeError, match="Module"):
        nn.Sequential(nn.ReLU(), "relu")


def test_backward_errors():
    with pytest.raises(RefquantError, match="backward\\(\\) called before forward"):
        nn.Linear(2, 2).backward(np.zeros((1, 2), np.float32))
    lin = nn.Linear(2, 3)
    lin(np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeError, match=r"grad_out must have the output's shape \(4, 3\), got \(4, 2\)"):
        lin.backward(np.zeros((4, 2), np.float32))
    with pytest.raises(RefquantError, match="before the loss"):
        nn.MSELoss().backward()
