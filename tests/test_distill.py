"""refquant.distill: the KD loss against independent oracles (a float64 formula, PyTorch, finite
differences), the T^2 convention, the distill / hint_distill loops, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models, nn
from refquant.data import load_digits
from refquant.distill import DistillationLoss, distill, distillation_loss, hint_distill, teacher_logits
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError


def _logits(n=16, k=10, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, scale, (n, k)), rng.normal(0, scale, (n, k)), rng.integers(0, k, n)


def _oracle(zs, zt, y, t, a):
    """Eq. (2) written out in float64, term by term."""
    def log_softmax(z):
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    n = zs.shape[0]
    logp, logq = log_softmax(zt / t), log_softmax(zs / t)
    kl = (np.exp(logp) * (logp - logq)).sum() / n
    ce = -log_softmax(zs)[np.arange(n), y].sum() / n
    return a * t * t * kl + (1 - a) * ce


# --------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("t,a", [(1.0, 0.5), (4.0, 0.9), (8.0, 1.0), (2.0, 0.0)])
def test_loss_value_matches_the_float64_formula(t, a):
    zs, zt, y = _logits()
    value, grad = distillation_loss(zs, zt, y, temperature=t, alpha=a)
    assert grad.shape == zs.shape and grad.dtype == np.float64
    np.testing.assert_allclose(value, _oracle(zs, zt, y, t, a), rtol=1e-12)


def test_loss_and_gradient_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    zs, zt, y = _logits(seed=1)
    t, a = 4.0, 0.7
    value, grad = distillation_loss(zs, zt, y, temperature=t, alpha=a)
    s = torch.tensor(zs, requires_grad=True)
    ref = a * F.kl_div(F.log_softmax(s / t, 1), F.softmax(torch.tensor(zt) / t, 1), reduction="batchmean") * t * t \
        + (1 - a) * F.cross_entropy(s, torch.tensor(y))
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, s.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_gradient_matches_finite_differences():
    zs, zt, y = _logits(n=5, k=4, seed=2)
    t, a, h = 3.0, 0.6, 1e-6
    _, grad = distillation_loss(zs, zt, y, temperature=t, alpha=a)
    num = np.zeros_like(zs)
    for idx in np.ndindex(zs.shape):
        up, down = zs.copy(), zs.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (distillation_loss(up, zt, y, temperature=t, alpha=a)[0]
                    - distillation_loss(down, zt, y, temperature=t, alpha=a)[0]) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9,
                               err_msg="analytic eq. (3) disagrees with central differences of eq. (2)")


def test_t_squared_keeps_the_soft_gradient_magnitude_independent_of_t():
    """With T^2 the soft-target gradient's norm barely moves from T=1 to 8; without it, it falls as 1/T^2."""
    zs, zt, y = _logits(n=64, seed=0)
    norms = {t: np.linalg.norm(distillation_loss(zs, zt, y, temperature=t, alpha=1.0)[1]) for t in (1, 2, 4, 8)}
    spread = max(norms.values()) / min(norms.values())
    assert spread < 1.25, f"gradient norms {norms}: the T^2 factor should keep them within 25%"
    without = {t: v / t**2 for t, v in norms.items()}  # the same loss without the T^2 factor
    assert without[1] / without[8] > 40, without
    # the large-T limit (z_s - z_t)/(N K) with zero-mean logits (module docstring)
    limit = ((zs - zs.mean(1, keepdims=True)) - (zt - zt.mean(1, keepdims=True))) / (zs.shape[0] * zs.shape[1])
    _, g_large = distillation_loss(zs, zt, y, temperature=1000.0, alpha=1.0)  # error O(|z| / T)
    np.testing.assert_allclose(g_large, limit, atol=0.01 * np.abs(limit).max())


def test_alpha_ends_are_the_two_losses():
    zs, zt, y = _logits(seed=3)
    ce, kd = nn.CrossEntropyLoss(), nn.DistillationKLLoss(4.0)
    assert distillation_loss(zs, zt, y, temperature=4.0, alpha=0.0)[0] == pytest.approx(ce(zs, y), rel=1e-14)
    assert distillation_loss(zs, zt, y, temperature=4.0, alpha=1.0)[0] == pytest.approx(kd(zs, zt), rel=1e-14)


def test_float32_logits_keep_float32_gradients():
    zs, zt, y = _logits(seed=4)
    _, grad = distillation_loss(zs.astype(np.float32), zt.astype(np.float32), y)
    assert grad.dtype == np.float32


# --------------------------------------------------------------------------- the loops

X, Y = load_digits("train")
XV, YV = load_digits("val")


def _tiny_cnn(c=4, out=10, seed=0, dtype=np.float32):
    g = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1, rng=g, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(c, c, 3, padding=1, rng=g, dtype=dtype), nn.ReLU(), nn.GlobalAvgPool2d(),
                         nn.Linear(c, out, rng=g, dtype=dtype))


def test_teacher_runs_once_in_eval_mode_and_is_not_changed():
    teacher = models.load_reference_model("cnn")
    teacher.train()
    before = teacher.state_dict()
    calls = []
    teacher.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    hist = distill(_tiny_cnn(), teacher, X[:300], Y[:300], epochs=2, batch_size=50)
    assert len(hist.train_loss) == 2
    assert calls == [256, 44], "the teacher's logits are computed once, before training, in batches of 256"
    assert teacher.training, "the teacher's mode is restored"
    for k, v in before.items():
        np.testing.assert_array_equal(teacher.state_dict()[k], v, err_msg=f"teacher {k} changed")


def test_soft_targets_alone_teach_a_student():
    """alpha=1: no label is seen, yet the student learns the teacher's classes."""
    student = models.build_mlp(rng=0)
    distill(student, models.load_reference_model("cnn"), X, Y, alpha=1.0, temperature=4.0, epochs=8, batch_size=32,
            seed=0, optimizer=nn.Adam(student, lr=3e-3))
    assert nn.evaluate(student, XV, YV) > 0.93  # measured 0.955


def test_distill_is_deterministic_and_accepts_a_quantized_teacher():
    from refquant import ptq
    qt = ptq.quantize_static(models.load_reference_model("cnn"), X[:128], profile="tflite_reference")
    np.testing.assert_array_equal(teacher_logits(qt, X[:10]), qt.run(X[:10]))
    runs = []
    for _ in range(2):
        s = _tiny_cnn()
        distill(s, qt, X[:200], Y[:200], epochs=1, batch_size=40, seed=3)
        runs.append(s.state_dict())
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])


def test_hint_gradient_matches_finite_differences():
    """One full-batch SGD step of hint_distill moves a weight *below* the guided layer by -lr times the
    numerical gradient of eq. (1) — so the hint's gradient really enters the student's backward pass."""
    x, y = X[:12].astype(np.float64), Y[:12]
    teacher = _tiny_cnn(c=6, seed=1, dtype=np.float64)
    t_logits = nn.predict(teacher, x)
    feats = []
    with teacher._modules["4"].register_forward_hook(lambda m, i, o: feats.append(o)):
        nn.predict(teacher, x)
    t_feat = feats[0]
    t, a, beta, lr = 2.0, 0.5, 3.0, 1e-3

    def loss(student, adapter):
        f = []
        with student._modules["4"].register_forward_hook(lambda m, i, o: f.append(o)):
            z = nn.predict(student, x)
        kd, _ = distillation_loss(z, t_logits, y, temperature=t, alpha=a)
        return kd + beta * float(((nn.predict(adapter, f[0]) - t_feat) ** 2).mean())

    student = _tiny_cnn(c=4, seed=2, dtype=np.float64)
    adapter = nn.Conv2d(4, 6, 1, rng=5, dtype=np.float64)
    w = student._modules["0"].weight.value
    h, num = 1e-6, np.zeros(5)
    for j, idx in enumerate(list(np.ndindex(w.shape))[:5]):
        w0 = w[idx]
        w[idx] = w0 + h
        up = loss(student, adapter)
        w[idx] = w0 - h
        down = loss(student, adapter)
        w[idx] = w0
        num[j] = (up - down) / (2 * h)
    before = w.copy()
    hint_distill(student, teacher, x, y, student_layer="4", teacher_layer="4", hint_weight=beta, temperature=t,
                 alpha=a, adapter=adapter, epochs=1, batch_size=12, optimizer=nn.SGD(student, lr=lr), seed=0)
    step = (before - student._modules["0"].weight.value).reshape(-1)[:5] / lr
    np.testing.assert_allclose(step, num, rtol=1e-5, atol=1e-9)
    assert "backward" not in student._modules["4"].__dict__, "the guided layer's backward is restored"


def test_hint_distill_lowers_the_hint_loss_and_returns_the_adapter():
    teacher = models.load_reference_model("cnn")
    student = _tiny_cnn(c=4)
    hist, adapter = hint_distill(student, teacher, X[:256], Y[:256], student_layer="4", teacher_layer="9",
                                 epochs=3, batch_size=32)
    assert isinstance(adapter, nn.Conv2d) and (adapter.in_channels, adapter.out_channels) == (4, 32)
    assert hist.train_loss[-1] < hist.train_loss[0]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("t", [0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive(t):
    zs, zt, y = _logits()
    with pytest.raises(QuantizationValueError, match="temperature must be finite and > 0"):
        distillation_loss(zs, zt, y, temperature=t)
    with pytest.raises(QuantizationValueError, match="temperature"):
        distill(_tiny_cnn(), _tiny_cnn(), X[:8], Y[:8], temperature=t)


@pytest.mark.parametrize("a", [-0.1, 1.5, float("nan")])
def test_alpha_must_be_in_0_1(a):
    zs, zt, y = _logits()
    with pytest.raises(QuantizationValueError, match=r"alpha must be in \[0, 1\]"):
        distillation_loss(zs, zt, y, alpha=a)
    with pytest.raises(QuantizationValueError, match="alpha"):
        DistillationLoss(alpha=a)


def test_temperature_must_keep_float32_finite():
    with pytest.raises(QuantizationValueError, match=r"temperature must be in \[.*\] \(T\^2 and 1/T finite"):
        DistillationLoss(temperature=1e-45)
    with pytest.raises(QuantizationValueError, match="temperature must be in"):
        DistillationLoss(temperature=1e20)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow being tested
def test_divergence_names_the_distillation_settings():
    s = _tiny_cnn()
    with pytest.raises(TrainingDivergedError, match=r"try a smaller learning rate .*temperature=4, alpha=0.9\)"):
        distill(s, models.load_reference_model("cnn"), X[:64], Y[:64], epochs=2, batch_size=16,
                optimizer=nn.SGD(s, lr=1e30))


def test_temperature_of_the_wrong_type():
    with pytest.raises(QuantizationTypeError, match="temperature"):
        DistillationLoss(temperature="4")


def test_teacher_and_student_shapes_must_agree():
    zs, zt, y = _logits()
    with pytest.raises(ShapeError, match="teacher_logits must have student_logits' shape"):
        distillation_loss(zs, zt[:, :5], y)
    with pytest.raises(ShapeError, match=r"student's output per example \(5,\) must match the teacher's \(10,\)"):
        distill(_tiny_cnn(out=5), models.load_reference_model("cnn"), X[:8], Y[:8], epochs=1)


def test_layers_must_exist():
    teacher = models.load_reference_model("cnn")
    with pytest.raises(QuantizationValueError, match=r"student_layer must name a layer of the model .* got 'conv9'"):
        hint_distill(_tiny_cnn(), teacher, X[:8], Y[:8], student_layer="conv9", teacher_layer="9")
    with pytest.raises(QuantizationValueError, match=r"teacher_layer must name a layer .* got '99'"):
        hint_distill(_tiny_cnn(), teacher, X[:8], Y[:8], student_layer="4", teacher_layer="99")
    with pytest.raises(QuantizationTypeError, match="student_layer must be a module name"):
        hint_distill(_tiny_cnn(), teacher, X[:8], Y[:8], student_layer=4, teacher_layer="9")


def test_hint_features_must_have_the_same_spatial_size():
    with pytest.raises(ShapeError, match="same H, W"):
        hint_distill(_tiny_cnn(), models.load_reference_model("cnn"), X[:8], Y[:8], student_layer="1",
                     teacher_layer="9")


def test_other_bad_arguments():
    teacher = models.load_reference_model("cnn")
    with pytest.raises(QuantizationTypeError, match="teacher must be a refquant.nn Module or a QuantizedModel"):
        distill(_tiny_cnn(), "cnn", X[:8], Y[:8])
    with pytest.raises(QuantizationTypeError, match="student must be a refquant.nn Module"):
        distill(None, teacher, X[:8], Y[:8])
    with pytest.raises(QuantizationTypeError, match="y must be integer class labels"):
        distill(_tiny_cnn(), teacher, X[:8], Y[:8].astype(np.float32))
    with pytest.raises(ShapeError, match=r"y must have shape \(8,\)"):
        distill(_tiny_cnn(), teacher, X[:8], Y[:7])
    with pytest.raises(QuantizationValueError, match=r"y must hold class labels in \[0, 9\] .* got 10"):
        distill(_tiny_cnn(), teacher, X[:8], np.full(8, 10))
    with pytest.raises(QuantizationValueError, match="seed must be an integer >= 0"):
        hint_distill(_tiny_cnn(), teacher, X[:8], Y[:8], student_layer="4", teacher_layer="9", seed=-1)
    with pytest.raises(QuantizationValueError, match="hint_weight must be >= 0"):
        hint_distill(_tiny_cnn(), teacher, X[:8], Y[:8], student_layer="4", teacher_layer="9", hint_weight=-1)
    with pytest.raises(QuantizationValueError, match="must be finite"):
        distill(_tiny_cnn(), teacher, np.full_like(X[:8], np.nan), Y[:8])
    with pytest.raises(QuantizationTypeError, match="target must be the pair"):
        DistillationLoss()(np.zeros((2, 3)), np.zeros((2, 3)))
