"""fit / evaluate / predict: learning on separable synthetic data, determinism, early
stopping, schedules, divergence and progress output."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from refquant import nn
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError


def blobs(n=600, seed=0):
    """Three well-separated 2-D Gaussian blobs (float32), labels 0..2."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, n)
    x = (centers[y] + rng.standard_normal((n, 2)) * 0.6).astype(np.float32)
    return x, y


def quadrant_images(n=512, seed=0):
    """1x8x8 noisy images whose class (0..3) is the quadrant holding a bright 2x2 square."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) * 0.3
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        oy, ox = 4 * r + rng.integers(0, 3), 4 * q + rng.integers(0, 3)
        x[i, 0, oy:oy + 2, ox:ox + 2] += 2.0
    return x, y


def mlp(seed=0, dropout=0.0):
    return nn.Sequential(nn.Linear(2, 16, rng=seed), nn.ReLU(), nn.Dropout(dropout, rng=seed),
                         nn.Linear(16, 3, rng=seed + 1))


def small_cnn(seed=0):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=seed), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8, rng=seed + 1), nn.BatchNorm2d(8), nn.ReLU6(),
                         nn.Flatten(), nn.Dropout(0.1, rng=seed), nn.Linear(8 * 4 * 4, 4, rng=seed + 2))


def test_mlp_learns_separable_blobs():
    x, y = blobs()
    xv, yv = blobs(200, seed=1)
    model = mlp()
    hist = nn.fit(model, x, y, epochs=5, batch_size=32, optimizer=nn.Adam(model, lr=0.02),
                  validation_data=(xv, yv), progress=False)
    assert hist.val_accuracy[-1] >= 0.97, hist.val_accuracy
    assert nn.evaluate(model, xv, yv) == hist.val_accuracy[-1]
    assert not model.training  # fit leaves the model in evaluation mode
    assert hist.train_loss[-1] < hist.train_loss[0]


def test_cnn_learns_quadrants():
    x, y = quadrant_images()
    xv, yv = quadrant_images(256, seed=1)
    model = small_cnn()
    hist = nn.fit(model, x, y, epochs=6, batch_size=32, optimizer=nn.Adam(model, lr=0.01),
                  validation_data=(xv, yv), progress=False)
    assert max(hist.val_accuracy) >= 0.95, hist.val_accuracy


def _train(model_seed, fit_seed):
    x, y = quadrant_images(128)
    model = small_cnn(model_seed)
    hist = nn.fit(model, x, y, epochs=2, batch_size=16, optimizer=nn.SGD(model, lr=0.05, momentum=0.9),
                  seed=fit_seed, progress=False)
    return model.state_dict(), hist


def test_training_is_deterministic_for_a_fixed_seed():
    s1, h1 = _train(3, fit_seed=7)
    s2, h2 = _train(3, fit_seed=7)
    for k in s1:
        np.testing.assert_array_equal(s1[k].view(np.uint32), s2[k].view(np.uint32), err_msg=f"{k} differs")
    assert h1.train_loss == h2.train_loss
    s3, _ = _train(3, fit_seed=8)  # another seed shuffles (and drops) differently
    assert any(not np.array_equal(s1[k], s3[k]) for k in s1)


def test_manual_seed_makes_default_initialisation_repeatable():
    nn.manual_seed(42)
    a = nn.Conv2d(2, 3, 3).weight.value
    nn.manual_seed(42)
    b = nn.Conv2d(2, 3, 3).weight.value
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Conv2d(2, 3, 3).weight.value)


def test_early_stopping_restores_the_best_epoch():
    x, y = blobs(300)
    model = mlp()
    hist = nn.fit(model, x, y, epochs=30, batch_size=30, optimizer=nn.Adam(model, lr=0.05),
                  validation_data=(x[:60], y[:60]), early_stopping=2, progress=False)
    assert hist.stopped_early
    assert len(hist.val_accuracy) == hist.best_epoch + 2
    assert nn.evaluate(model, x[:60], y[:60]) == max(hist.val_accuracy)


def test_schedule_is_applied_per_epoch():
    x, y = blobs(64)
    model = mlp()
    opt = nn.SGD(model, lr=0.1)
    hist = nn.fit(model, x, y, epochs=5, optimizer=opt, scheduler=nn.StepLR(opt, 2, gamma=0.5), progress=False)
    np.testing.assert_allclose(hist.lr, [0.1, 0.1, 0.05, 0.05, 0.025])


def test_nan_loss_names_epoch_and_batch():
    x, y = blobs(96)
    model = mlp()
    calls = [0]

    def poison(module, inputs, output):
        calls[0] += 1
        return output * np.nan if calls[0] == 5 else None  # the 5th batch: epoch 2, batch 2 of 3

    model[3].register_forward_hook(poison)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2/3, batch 2/3"):
        nn.fit(model, x, y, epochs=3, batch_size=32, progress=False)


def test_bad_training_data():
    x, y = blobs(40)
    model = mlp()
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(QuantizationValueError, match=r"training x must be finite.*\(3, 1\)"):
        nn.fit(model, bad, y, epochs=1, progress=False)
    with pytest.raises(ShapeError, match="40 rows"):
        nn.fit(model, x, y[:-1], epochs=1, progress=False)
    with pytest.raises(QuantizationTypeError, match="float"):
        nn.fit(model, x.astype(np.int64), y, epochs=1, progress=False)
    with pytest.raises(QuantizationTypeError, match="integer"):
        nn.fit(model, x, y.astype(np.float32), epochs=1, progress=False)
    with pytest.raises(QuantizationValueError, match="validation_data"):
        nn.fit(model, x, y, epochs=1, early_stopping=2, progress=False)
    with pytest.raises(ShapeError, match="labels must have shape"):
        nn.CrossEntropyLoss()(np.zeros((4, 3), np.float32), np.zeros((4, 1), np.int64))
    with pytest.raises(QuantizationValueError, match=r"labels must be in \[0, 2\]"):
        nn.CrossEntropyLoss()(np.zeros((2, 3), np.float32), np.array([0, 3]))


class _DistillLoss(nn.Loss):
    """alpha·KD + (1 - alpha)·CE on (labels, teacher_logits) targets."""

    def __init__(self, alpha=0.5):
        super().__init__()
        self.alpha, self.kd, self.ce = alpha, nn.DistillationKLLoss(2.0), nn.CrossEntropyLoss()

    def forward(self, logits, target):
        labels, teacher = target
        v = self.alpha * self.kd(logits, teacher) + (1 - self.alpha) * self.ce(logits, labels)
        return v, self.alpha * self.kd.backward() + (1 - self.alpha) * self.ce.backward()


def test_tuple_targets_for_a_custom_distillation_loss():
    x, y = blobs(300)
    teacher = mlp(5)
    nn.fit(teacher, x, y, epochs=3, optimizer=nn.Adam(teacher, lr=0.02), progress=False)
    student = mlp(9)
    hist = nn.fit(student, x, (y, nn.predict(teacher, x)), loss=_DistillLoss(), epochs=3,
                  optimizer=nn.Adam(student, lr=0.02), validation_data=(x, y), progress=False)
    assert hist.train_accuracy[-1] is not None and hist.val_accuracy[-1] >= 0.95


def test_progress_plain_fallback_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails -> plain lines
    x, y = blobs(64)
    nn.fit(mlp(), x, y, epochs=2, validation_data=(x, y), progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2: loss" in err and "epoch 2/2: loss" in err and "val_acc" in err


def test_progress_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    x, y = blobs(64)
    nn.fit(mlp(), x, y, epochs=1, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_predict_restores_mode_and_batches():
    x, _ = blobs(70)
    model = mlp(dropout=0.5).train()
    out = nn.predict(model, x, batch_size=16)
    assert model.training and out.shape == (70, 3)
    model.eval()
    np.testing.assert_allclose(out, model(x), rtol=1e-6, atol=1e-6)
