"""refquant.nn against torch.nn / torch.optim on the same weights and inputs.

Tolerances: float64 runs must agree to |diff| <= 1e-10 + 1e-9·|torch| (only summation
order differs); float32 runs to |diff| <= 1e-5 + 1e-4·|torch| (sums of up to ~100
float32 products in another order). Dropout's masks come from different generators, so
only its evaluation mode is compared here (training mode is covered by the gradient check).
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.conformance

TOL = {np.float64: (1e-10, 1e-9), np.float32: (1e-5, 1e-4)}
TDTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def close(ours, theirs, dtype, what):
    atol, rtol = TOL[dtype]
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    assert ours.dtype == dtype, f"{what}: dtype {ours.dtype}, expected {np.dtype(dtype)}"
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=f"{what} differs from torch")


def compare(ours: nn.Module, theirs, x: np.ndarray, dtype, *, params=()):
    """Forward and backward of ``ours`` and torch module/function ``theirs`` on ``x``.

    ``params``: pairs (our Parameter, torch tensor with requires_grad) compared after backward.
    """
    rng = np.random.default_rng(0)
    x = x.astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    y = ours(x)
    ty = theirs(tx)
    close(y, ty, dtype, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    ours.zero_grad()
    gx = ours.backward(g)
    ty.backward(torch.tensor(g))
    close(gx, tx.grad, dtype, "grad input")
    for p, tp in params:
        close(p.grad, tp.grad, dtype, "grad param")


def tparam(p: nn.Parameter):
    return torch.tensor(p.value, requires_grad=True)


DTYPES = [np.float32, np.float64]
CONV_CASES = [
    (3, 8, 3, 1, 1, 1, 1), (4, 6, 3, 2, 1, 1, 2), (4, 4, 3, 1, 1, 1, 4), (4, 8, 3, 2, 1, 1, 4),
    (3, 5, 3, 1, 2, 2, 1), (6, 6, 3, 2, 2, 2, 6), (4, 8, 3, 1, 2, 2, 4), (5, 5, (1, 3), 1, (0, 1), 1, 5), (3, 4, (3, 1), (1, 2), (1, 0), (2, 1), 1), (8, 16, 1, 1, 0, 1, 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d(case, dtype):
    cin, cout, k, s, p, d, g = case
    layer = nn.Conv2d(cin, cout, k, s, p, d, g, rng=0, dtype=dtype)
    tw, tb = tparam(layer.weight), tparam(layer.bias)
    x = np.random.default_rng(1).standard_normal((3, cin, 11, 9))
    compare(layer, lambda t: F.conv2d(t, tw, tb, s, p, d, g), x, dtype, params=[(layer.weight, tw), (layer.bias, tb)])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_conv2d_asymmetric_padding(dtype):
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=(0, 1, 0, 1), rng=0, dtype=dtype)  # TFLite SAME, stride 2
    tw, tb = tparam(layer.weight), tparam(layer.bias)
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8))
    compare(layer, lambda t: F.conv2d(F.pad(t, (0, 1, 0, 1)), tw, tb, 2), x, dtype,
            params=[(layer.weight, tw), (layer.bias, tb)])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_linear(dtype):
    layer = nn.Linear(7, 5, rng=0, dtype=dtype)
    tw, tb = tparam(layer.weight), tparam(layer.bias)
    compare(layer, lambda t: F.linear(t, tw, tb), np.random.default_rng(1).standard_normal((6, 7)), dtype,
            params=[(layer.weight, tw), (layer.bias, tb)])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(8, 4), (6, 4, 5), (4, 4, 3, 5)], ids=str)
def test_batchnorm_train_then_eval(shape, dtype):
    c = shape[1]
    ours = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(c, momentum=0.2, dtype=dtype)
    theirs = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(c, momentum=0.2).to(TDTYPE[dtype])
    rng = np.random.default_rng(2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, c)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(c)))
    ours.weight.value[...] = theirs.weight.detach().numpy()
    ours.bias.value[...] = theirs.bias.detach().numpy()
    for step in range(2):  # training: batch statistics, running statistics updated
        x = rng.standard_normal(shape) * 3 + 1
        theirs.zero_grad()
        compare(ours, theirs, x, dtype, params=[(ours.weight, theirs.weight), (ours.bias, theirs.bias)])
    close(ours.running_mean, theirs.running_mean, dtype, "running_mean")
    close(ours.running_var, theirs.running_var, dtype, "running_var")
    ours.eval()
    theirs.eval()
    theirs.zero_grad()
    compare(ours, theirs, rng.standard_normal(shape), dtype, params=[(ours.weight, theirs.weight)])


ACTS = [(nn.ReLU(), torch.nn.ReLU()), (nn.ReLU6(), torch.nn.ReLU6()),
        (nn.Hardtanh(-2.0, 0.5), torch.nn.Hardtanh(-2.0, 0.5)),
        (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Tanh(), torch.nn.Tanh()), (nn.Flatten(), torch.nn.Flatten()),
        (nn.Identity(), torch.nn.Identity())]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pair", ACTS, ids=lambda p: type(p[0]).__name__)
def test_elementwise(pair, dtype):
    x = np.random.default_rng(3).uniform(-8, 8, (4, 3, 5, 2))
    x[:, 0, 0, 0] = [0.0, 6.0, -2.0, 0.5]  # exactly on the kinks: derivative 0 in both
    compare(pair[0], pair[1], x, dtype)
    big = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])
    close(nn.Sigmoid()(big.astype(dtype)), torch.sigmoid(torch.tensor(big.astype(dtype))), dtype, "sigmoid tails")


POOLS = [
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
    (nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1)),
    (nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1)), torch.nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1))),
    (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
    (nn.AvgPool2d(3, stride=2, padding=1), torch.nn.AvgPool2d(3, stride=2, padding=1)),
    (nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
     torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)),
    (nn.GlobalAvgPool2d(), lambda t: t.mean(dim=(2, 3))),
    (nn.GlobalAvgPool2d(keepdims=True), torch.nn.AdaptiveAvgPool2d(1)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pair", POOLS, ids=lambda p: repr(p[0]).replace(" ", ""))
def test_pool(pair, dtype):
    x = np.random.default_rng(4).standard_normal((2, 3, 9, 8))
    compare(pair[0], pair[1], x, dtype)


def test_maxpool_ties_go_to_the_first_maximum():
    x = np.zeros((1, 1, 4, 4), np.float32)
    compare(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x, np.float32)
    ties = np.round(np.random.default_rng(0).standard_normal((2, 2, 5, 5))).astype(np.float32)  # RNE; ties wanted
    compare(nn.MaxPool2d(3, stride=1, padding=1), torch.nn.MaxPool2d(3, stride=1, padding=1), ties, np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_add_and_dropout_eval(dtype):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 3, 4)).astype(dtype)
    y = nn.Add()(a, b)
    close(y, torch.tensor(a) + torch.tensor(b), dtype, "add")
    drop = nn.Dropout(0.3).eval()
    close(drop(a), torch.nn.Dropout(0.3).eval()(torch.tensor(a)), dtype, "dropout eval")


def _copy_into_torch(ours: nn.Module, theirs) -> None:
    """Copy our state (parameters and buffers, same dotted names) into a torch module."""
    state = {k: torch.tensor(v) for k, v in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)


class TorchResidual(torch.nn.Module):
    def __init__(self, body, shortcut=None, activation=None):
        super().__init__()
        self.body, self.shortcut, self.activation = body, shortcut, activation

    def forward(self, x):
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.activation is None else self.activation(y)


class TorchGlobalAvgPool(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("training", [True, False])
def test_resnet_and_mobilenet_blocks(training, dtype):
    T = torch.nn
    ours = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, rng=0), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, rng=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1, rng=2), nn.BatchNorm2d(8)),
                    shortcut=nn.Sequential(nn.Conv2d(8, 8, 1, stride=2, rng=3), nn.BatchNorm2d(8)),
                    activation=nn.ReLU()),
        nn.Residual(nn.Sequential(nn.Conv2d(8, 24, 1, rng=4), nn.BatchNorm2d(24), nn.ReLU6(),
                                  nn.Conv2d(24, 24, 3, padding=1, groups=24, rng=5), nn.BatchNorm2d(24), nn.ReLU6(),
                                  nn.Conv2d(24, 8, 1, rng=6), nn.BatchNorm2d(8))),
        nn.MaxPool2d(2), nn.GlobalAvgPool2d(), nn.Linear(8, 10, rng=7)).to(dtype)
    theirs = T.Sequential(
        T.Conv2d(3, 8, 3, padding=1), T.BatchNorm2d(8), T.ReLU(),
        TorchResidual(T.Sequential(T.Conv2d(8, 8, 3, stride=2, padding=1), T.BatchNorm2d(8), T.ReLU(),
                                   T.Conv2d(8, 8, 3, padding=1), T.BatchNorm2d(8)),
                      T.Sequential(T.Conv2d(8, 8, 1, stride=2), T.BatchNorm2d(8)), T.ReLU()),
        TorchResidual(T.Sequential(T.Conv2d(8, 24, 1), T.BatchNorm2d(24), T.ReLU6(),
                                   T.Conv2d(24, 24, 3, padding=1, groups=24), T.BatchNorm2d(24), T.ReLU6(),
                                   T.Conv2d(24, 8, 1), T.BatchNorm2d(8))),
        T.MaxPool2d(2), TorchGlobalAvgPool(), T.Linear(8, 10)).to(TDTYPE[dtype])
    ours.train(training)
    theirs.train(training)
    _copy_into_torch(ours, theirs)
    x = np.random.default_rng(6).standard_normal((4, 3, 12, 12))
    tparams = dict(theirs.named_parameters())
    compare(ours, theirs, x, dtype, params=[(p, tparams[k]) for k, p in ours.named_parameters()])
    if training:
        for k, b in ours.named_buffers():
            close(b, theirs.get_buffer(k), dtype, f"buffer {k}")


def _as_torch_logits(z):
    return torch.tensor(z, requires_grad=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_losses(dtype):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((6, 5)) * 4).astype(dtype)
    y = rng.integers(0, 5, 6)
    t = rng.standard_normal((6, 5)).astype(dtype)
    zt = (rng.standard_normal((6, 5)) * 3).astype(dtype)
    cases = [
        (nn.CrossEntropyLoss(), y, lambda a: F.cross_entropy(a, torch.tensor(y))),
        (nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.2), y,
         lambda a: F.cross_entropy(a, torch.tensor(y), reduction="sum", label_smoothing=0.2)),
        (nn.MSELoss(), t, lambda a: F.mse_loss(a, torch.tensor(t))),
        (nn.DistillationKLLoss(temperature=4.0), zt,
         lambda a: F.kl_div(F.log_softmax(a / 4.0, 1), F.softmax(torch.tensor(zt) / 4.0, 1),
                            reduction="batchmean") * 16),
        (nn.DistillationKLLoss(temperature=2.0, scale_by_t2=False), zt,
         lambda a: F.kl_div(F.log_softmax(a / 2.0, 1), F.softmax(torch.tensor(zt) / 2.0, 1), reduction="batchmean")),
    ]
    for loss, target, tfn in cases:
        value = loss(z, target)
        tz = _as_torch_logits(z)
        tv = tfn(tz)
        tv.backward()
        atol, rtol = TOL[dtype]
        assert abs(value - tv.item()) <= atol + rtol * abs(tv.item()) + (1e-6 if dtype == np.float32 else 0), \
            f"{type(loss).__name__}: {value} vs torch {tv.item()}"
        close(loss.backward(), tz.grad, dtype, f"{type(loss).__name__} gradient")


OPTIMIZERS = [
    (lambda p: nn.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda p: nn.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2)),
    (lambda p: nn.SGD(p, lr=0.05, momentum=0.8, dampening=0.3),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3)),
    (lambda p: nn.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3)),
    (lambda p: nn.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (lambda p: nn.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (lambda p: nn.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    (lambda p: nn.AdamW(p, lr=0.02, weight_decay=0.3), lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.3)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pair", OPTIMIZERS, ids=[f"opt{i}" for i in range(len(OPTIMIZERS))])
def test_optimizer_steps(pair, dtype):
    rng = np.random.default_rng(8)
    ours = [nn.Parameter(rng.standard_normal((3, 4)).astype(dtype)), nn.Parameter(rng.standard_normal(5).astype(dtype))]
    theirs = [torch.tensor(p.value.copy(), requires_grad=True) for p in ours]
    opt, topt = pair[0](ours), pair[1](theirs)
    for _ in range(6):
        for p, tp in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        close(p.value, tp, dtype, "parameter after 6 steps")


def test_lr_schedules():
    for make, tmake in [(lambda o: nn.StepLR(o, 3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
                        (lambda o: nn.CosineLR(o, 7, eta_min=1e-3),
                         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=1e-3))]:
        opt = nn.SGD([nn.Parameter(np.zeros(1))], lr=0.1)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched, tsched = make(opt), tmake(topt)
        for _ in range(7):
            topt.step()
            sched.step()
            tsched.step()
            np.testing.assert_allclose(opt.lr, topt.param_groups[0]["lr"], rtol=1e-12, atol=1e-15)


def test_clip_grad_norm():
    rng = np.random.default_rng(9)
    ours = [nn.Parameter(rng.standard_normal((3, 4))), nn.Parameter(rng.standard_normal(5))]
    theirs = [torch.tensor(p.value.copy(), requires_grad=True) for p in ours]
    for p, tp in zip(ours, theirs):
        p.grad[...] = rng.standard_normal(p.shape) * 3
        tp.grad = torch.tensor(p.grad.copy())
    norm = nn.clip_grad_norm(ours, 1.5)
    tnorm = torch.nn.utils.clip_grad_norm_(theirs, 1.5)
    np.testing.assert_allclose(norm, tnorm.item(), rtol=1e-12)
    for p, tp in zip(ours, theirs):
        close(p.grad, tp.grad, np.float64, "clipped gradient")
