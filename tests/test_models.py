"""The reference models (refquant.models): builders, the bundled trained weights, and the
training script's determinism.

The accuracy check is exact: each bundled model, evaluated on the digits test split, must
classify exactly the number of images recorded in ``refquant/data/models/reference_models.json``
by ``benchmarks/train_reference_models.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from refquant import nn
from refquant.data import load_digits
from refquant.errors import QuantizationValueError
from refquant.models import (
    REFERENCE_MODELS,
    build_reference_model,
    list_reference_models,
    load_reference_model,
    reference_model_info,
)

ROOT = Path(__file__).resolve().parent.parent


def _load_script(name: str):
    """Import ``benchmarks/<name>.py`` (not a package), undoing its thread-count environment settings."""
    path = ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    saved = dict(os.environ)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the reference models must load without network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_every_reference_model_is_bundled():
    assert list_reference_models() == list(REFERENCE_MODELS)


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_bundled_model_loads_offline_with_the_recorded_architecture(name, no_network):
    info = reference_model_info(name)
    model = load_reference_model(name)
    assert not model.training, "load_reference_model must return the model in evaluation mode"
    assert nn.architecture(model) == nn.architecture(build_reference_model(name)), (
        f"{name}.npz does not hold the architecture build_{name}() makes; retrain with "
        f"python benchmarks/train_reference_models.py")
    assert model.num_parameters() == info["num_parameters"]
    data = resources.files("refquant.data").joinpath("models", info["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == info["sha256"], f"{info['file']} is not the file that was recorded"


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_bundled_model_reaches_the_recorded_test_accuracy_exactly(name):
    info = reference_model_info(name)
    x, y = load_digits("test")
    pred = nn.predict(load_reference_model(name), x).argmax(axis=1)
    assert pred.shape == y.shape
    assert int((pred == y).sum()) == info["test_correct"], (
        f"{name}: {int((pred == y).sum())}/{y.size} correct, recorded {info['test_correct']}/{info['test_total']}")
    assert info["test_total"] == y.size
    assert info["test_accuracy"] == info["test_correct"] / info["test_total"]
    floor = 0.97 if name != "mlp" else 0.95
    assert info["test_accuracy"] >= floor, f"{name}: test accuracy {info['test_accuracy']:.4f} < {floor}"


def test_readme_table_shows_the_recorded_accuracies():
    readme = (ROOT / "refquant" / "data" / "README.md").read_text(encoding="utf-8")
    for name in REFERENCE_MODELS:
        info = reference_model_info(name)
        cell = f"{100 * info['test_accuracy']:.2f} % ({info['test_correct']}/{info['test_total']})"
        assert f"| `{name}` |" in readme and cell in readme, f"refquant/data/README.md lacks `{name}` {cell}"


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_builders_construct_and_run_forward_and_backward(name):
    model = build_reference_model(name, rng=1)
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    out = model(x)  # training mode: batch statistics
    assert out.shape == (3, 10) and out.dtype == np.float32
    gx = model.backward(np.ones_like(out))
    assert gx.shape == x.shape
    assert all(np.isfinite(p.grad).all() for p in model.parameters())
    assert model.eval()(x).shape == (3, 10)


def test_builders_are_seeded():
    a, b = build_reference_model("cnn", rng=5), build_reference_model("cnn", rng=5)
    c = build_reference_model("cnn", rng=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_residual_models_contain_add_and_mobilenet_is_depthwise(name):
    model = build_reference_model(name)
    kinds = [type(m).__name__ for m in model.modules()]
    assert "Residual" in kinds and "Add" in kinds
    if name == "mobilenet":
        depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
        assert depthwise and "ReLU6" in kinds


def test_unknown_names_raise():
    with pytest.raises(QuantizationValueError, match=r"name must be one of .*'mlp'.*got 'vgg'"):
        load_reference_model("vgg")
    with pytest.raises(QuantizationValueError, match="got 'vgg'"):
        build_reference_model("vgg")
    with pytest.raises(QuantizationValueError, match="got 'vgg'"):
        reference_model_info("vgg")


def test_training_script_is_deterministic(tmp_path):
    """Two one-epoch runs write the same bytes (the full run is checked by `--check`)."""
    script = _load_script("train_reference_models")
    runs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        script.run(["mlp", "cnn"], out, epochs=1, verbose=False)
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert list(runs[0]) == ["cnn.npz", "mlp.npz", "reference_models.json"]
    for name in runs[0]:
        assert runs[0][name] == runs[1][name], f"{name} differs between two identical runs"
    index = json.loads(runs[0]["reference_models.json"])
    assert list(index["models"]) == ["cnn", "mlp"] and index["models"]["cnn"]["recipe"]["epochs"] == 1
    model = nn.load(tmp_path / "run0" / "cnn.npz")
    assert nn.architecture(model) == nn.architecture(build_reference_model("cnn"))


@pytest.mark.conformance
@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_bundled_models_match_torch_on_the_same_weights(name):
    """The benchmark's PyTorch twin of each model gives the same logits (float32, |diff| <= 1e-4)."""
    torch = pytest.importorskip("torch")
    to_torch = _load_script("train").to_torch
    model = load_reference_model(name)
    x, _ = load_digits("test")
    with torch.inference_mode():
        theirs = to_torch(model)(torch.from_numpy(x[:64])).numpy()
    np.testing.assert_allclose(model(x[:64]), theirs, rtol=0, atol=1e-4)
