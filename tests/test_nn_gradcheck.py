"""Every refquant.nn layer's backward against central finite differences, in float64.

For a layer $f$, a random input $x$ and a random upstream gradient $G$, the scalar
$S = \\sum f(x) \\odot G$ has $\\partial S/\\partial x$ = ``layer.backward(G)`` and
$\\partial S/\\partial\\theta$ = ``param.grad``. Each is compared with
$(S(a + \\epsilon) - S(a - \\epsilon)) / 2\\epsilon$, $\\epsilon = 10^{-6}$, element by
element. Tolerance: |analytic - numeric| <= 1e-6 + 1e-5·|numeric| (the central
difference's truncation error is O(eps^2) and its rounding error ~1e-10/eps).
Shapes are drawn from a seeded generator.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn

EPS = 1e-6
ATOL, RTOL = 1e-6, 1e-5


def numeric_grad(fn, a: np.ndarray) -> np.ndarray:
    """Central differences of the scalar ``fn()`` with respect to ``a`` (perturbed in place)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        fp = fn()
        a[i] = old - EPS
        fm = fn()
        a[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def assert_close(analytic, numeric, what):
    err = np.abs(analytic - numeric)
    tol = ATOL + RTOL * np.abs(numeric)
    if not (err <= tol).all():
        i = tuple(int(k) for k in np.unravel_index(np.argmax(err - tol), err.shape))
        raise AssertionError(f"{what}: backward disagrees with finite differences at {i}: "
                             f"analytic {float(analytic[i])!r}, numeric {float(numeric[i])!r} "
                             f"(max err {err.max():.3g})")


def check_layer(layer: nn.Module, *inputs: np.ndarray, seed: int = 0, before=None):
    """Check d(sum(layer(*inputs) * G)) w.r.t. every input and every parameter."""
    layer.to(np.float64)
    rng = np.random.default_rng(seed)
    inputs = [np.array(x, dtype=np.float64) for x in inputs]

    def run():
        if before is not None:
            before(layer)
        return layer(*inputs)

    y = run()
    g_out = rng.standard_normal(y.shape)

    def scalar():
        return float((run() * g_out).sum())

    layer.zero_grad()
    run()
    g_in = layer.backward(g_out)
    g_in = g_in if isinstance(g_in, tuple) else (g_in,)
    analytic_params = {name: p.grad.copy() for name, p in layer.named_parameters()}
    for k, x in enumerate(inputs):
        assert g_in[k].shape == x.shape
        assert_close(g_in[k], numeric_grad(scalar, x), f"{type(layer).__name__} input {k}")
    for name, p in layer.named_parameters():
        assert_close(analytic_params[name], numeric_grad(scalar, p.value), f"{type(layer).__name__} {name}")


def rand(rng, *shape):
    return rng.standard_normal(shape)


CONV_CASES = [
    # (in, out, kernel, stride, padding, dilation, groups, bias)
    (3, 4, 3, 1, 0, 1, 1, True),
    (3, 4, 3, 1, 1, 1, 1, True),
    (2, 3, 3, 2, 1, 1, 1, True),       # stride 2
    (2, 3, 3, 1, 2, 2, 1, True),       # dilation 2
    (4, 6, 3, 1, 1, 1, 2, True),       # groups
    (4, 4, 3, 1, 1, 1, 4, True),       # depthwise
    (3, 6, 3, 2, 1, 1, 3, False),      # depthwise, multiplier 2, stride 2, no bias
    (4, 4, 3, 2, 2, 2, 4, True),       # depthwise, stride 2, dilation 2
    (2, 4, 3, 1, 2, 2, 2, True),       # depthwise, multiplier 2, stride 1, dilation 2 (flat-grid path)
    (3, 3, (3, 2), 1, (1, 0, 0, 1), (1, 2), 3, True),  # depthwise, rectangular, asymmetric padding
    (2, 3, (2, 3), (2, 1), (1, 0), (1, 2), 1, True),  # rectangular everything
    (2, 2, 3, 2, (0, 1, 1, 0), 1, 1, True),           # asymmetric (TFLite-SAME-like) padding
    (4, 2, 1, 1, 0, 1, 2, True),       # grouped 1x1
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c) for c in CONV_CASES])
def test_conv2d(case):
    cin, cout, k, s, p, d, g, bias = case
    rng = np.random.default_rng(hash(case) % 2**32)
    n, h, w = rng.integers(1, 3), rng.integers(5, 8), rng.integers(5, 8)
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias, rng=1)
    check_layer(layer, rand(rng, n, cin, h, w))


def test_linear():
    rng = np.random.default_rng(1)
    check_layer(nn.Linear(5, 3, rng=0), rand(rng, 4, 5))
    check_layer(nn.Linear(4, 2, bias=False, rng=0), rand(rng, 3, 4))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 3)])
def test_batchnorm(training, shape):
    rng = np.random.default_rng(2)
    layer = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1])
    layer.weight.value[...] = rng.uniform(0.5, 1.5, shape[1])
    layer.bias.value[...] = rng.standard_normal(shape[1])
    layer.running_mean = rng.standard_normal(shape[1])
    layer.running_var = rng.uniform(0.5, 2.0, shape[1])
    layer.train(training)
    check_layer(layer, rand(rng, *shape) * 2 + 1)


def test_batchnorm_no_affine():
    check_layer(nn.BatchNorm2d(2, affine=False), np.random.default_rng(3).standard_normal((3, 2, 3, 3)))


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.ReLU6(), nn.Hardtanh(-0.5, 0.7), nn.Sigmoid(), nn.Tanh()],
                         ids=lambda m: type(m).__name__)
def test_activations(layer):
    x = np.random.default_rng(4).uniform(-8, 8, (3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from kinks
    check_layer(layer, x)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(2, 3), stride=(1, 2)),
                                    dict(kernel_size=2, stride=1, dilation=2)], ids=str)
def test_maxpool(kwargs):
    x = np.random.default_rng(5).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.01  # distinct values: no ties
    check_layer(nn.MaxPool2d(**kwargs), x)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
                                    dict(kernel_size=(3, 2), stride=(2, 1))], ids=str)
def test_avgpool(kwargs):
    check_layer(nn.AvgPool2d(**kwargs), np.random.default_rng(6).standard_normal((2, 3, 7, 6)))


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avgpool(keepdims):
    check_layer(nn.GlobalAvgPool2d(keepdims=keepdims), np.random.default_rng(7).standard_normal((2, 3, 4, 5)))


def test_flatten_add_identity():
    rng = np.random.default_rng(8)
    check_layer(nn.Flatten(), rand(rng, 2, 3, 2, 2))
    check_layer(nn.Add(), rand(rng, 2, 3, 4), rand(rng, 2, 3, 4))
    check_layer(nn.Identity(), rand(rng, 3, 2))


def test_dropout_with_fixed_mask():
    layer = nn.Dropout(0.4)
    check_layer(layer, np.random.default_rng(9).standard_normal((4, 6)),
                before=lambda m: m.reseed(np.random.default_rng(123)))


def test_sequential_and_residual_blocks():
    rng = np.random.default_rng(10)
    resnet_block = nn.Residual(
        nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=0), nn.BatchNorm2d(4), nn.Tanh(),
                      nn.Conv2d(4, 4, 3, padding=1, rng=1), nn.BatchNorm2d(4)),
        shortcut=nn.Sequential(nn.Conv2d(3, 4, 1, stride=2, rng=2), nn.BatchNorm2d(4)),
        activation=nn.Sigmoid())
    check_layer(resnet_block, rand(rng, 2, 3, 5, 5))
    inverted = nn.Residual(nn.Sequential(
        nn.Conv2d(2, 6, 1, rng=3), nn.BatchNorm2d(6), nn.Tanh(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, rng=4), nn.BatchNorm2d(6), nn.Sigmoid(),
        nn.Conv2d(6, 2, 1, rng=5), nn.BatchNorm2d(2)))
    check_layer(inverted, rand(rng, 2, 2, 4, 4))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, rng=6), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3, rng=7))
    check_layer(mlp, rand(rng, 4, 3, 2, 2))


def test_weight_transforms_route_gradients_to_the_float_weight():
    rng = np.random.default_rng(11)
    x = rand(rng, 3, 4)
    mask = (rng.random((2, 4)) > 0.5).astype(np.float64)
    layer = nn.Linear(4, 2, rng=0)
    layer.weight_transform = nn.mask_transform(mask)
    check_layer(layer, x)  # W_eff = W * M is differentiable: exact gradient through the mask
    assert np.all(layer.weight.grad[mask == 0] == 0)
    conv = nn.Conv2d(2, 3, 3, padding=1, rng=1)
    conv.weight_transform = lambda w: (w ** 2, lambda g: 2 * w * g)  # a smooth transform, exact backward
    check_layer(conv, rand(rng, 1, 2, 4, 4))


def _loss_check(loss, z, target):
    def scalar():
        return loss(z, target)

    loss(z, target)
    assert_close(loss.backward(), numeric_grad(scalar, z), type(loss).__name__)


def test_losses():
    rng = np.random.default_rng(12)
    z = rand(rng, 5, 4) * 3
    _loss_check(nn.CrossEntropyLoss(), z, rng.integers(0, 4, 5))
    _loss_check(nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1), z, rng.integers(0, 4, 5))
    _loss_check(nn.MSELoss(), z, rand(rng, 5, 4))
    _loss_check(nn.MSELoss(reduction="sum"), z, rand(rng, 5, 4))
    _loss_check(nn.DistillationKLLoss(temperature=3.0), z, rand(rng, 5, 4) * 2)
    _loss_check(nn.DistillationKLLoss(temperature=0.5, scale_by_t2=False), z, rand(rng, 5, 4) * 2)
