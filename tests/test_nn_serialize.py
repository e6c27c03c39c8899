"""save/load of architecture + weights, save_weights/load_weights, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refquant import nn
from refquant.errors import FormatVersionError, ShapeError, UnsupportedError


def every_layer_model():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=(0, 1, 0, 1), stride=2, rng=0), nn.BatchNorm2d(6, momentum=0.3), nn.ReLU(),
        nn.Residual(nn.Sequential(nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, rng=1), nn.BatchNorm2d(6),
                                  nn.ReLU6(), nn.Conv2d(6, 6, 1, bias=False, rng=2)),
                    shortcut=nn.Identity(), activation=nn.Hardtanh(-2.0, 3.0)),
        nn.MaxPool2d(3, stride=1, padding=1), nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.Sigmoid(), nn.GlobalAvgPool2d(), nn.Dropout(0.25), nn.Linear(6, 8, rng=3), nn.BatchNorm1d(8),
        nn.Tanh(), nn.Linear(8, 3, rng=4))


def trained_a_little(model):
    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = np.arange(16) % 3
    nn.fit(model, x, y, epochs=1, batch_size=8, progress=False)  # moves weights and BN statistics
    return x


def test_round_trip_is_bit_exact(tmp_path):
    model = every_layer_model()
    x = trained_a_little(model)
    path = tmp_path / "m.npz"
    nn.save(model, path)
    loaded = nn.load(path)
    assert type(loaded) is nn.Sequential and not loaded.training
    assert nn.architecture(loaded) == nn.architecture(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32), err_msg=k)
    model.eval()
    np.testing.assert_array_equal(model(x), loaded(x))


def test_float64_model_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64))
    nn.save(model, tmp_path / "m.npz")
    assert nn.load(tmp_path / "m.npz")[0].weight.dtype == np.float64


def test_weights_round_trip(tmp_path):
    model = every_layer_model()
    trained_a_little(model)
    nn.save_weights(model, tmp_path / "w.npz")
    fresh = every_layer_model()
    nn.load_weights(fresh, tmp_path / "w.npz")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)


def _rewrite(src, dst, change):
    with np.load(src) as f:
        data = {k: f[k] for k in f.files}
    change(data)
    np.savez(dst, **data)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.npz"
    nn.save(every_layer_model(), path)
    return path


def test_other_format_version(saved, tmp_path):
    _rewrite(saved, tmp_path / "v2.npz", lambda d: d.update(__format_version__=np.array(2)))
    with pytest.raises(FormatVersionError, match="format version 2; this refquant reads version 1"):
        nn.load(tmp_path / "v2.npz")


def test_missing_weight_key(saved, tmp_path):
    _rewrite(saved, tmp_path / "miss.npz", lambda d: d.pop("state/0.weight"))
    with pytest.raises(FormatVersionError, match=r"missing key\(s\) \['0.weight'\]"):
        nn.load(tmp_path / "miss.npz")


def test_missing_architecture_and_magic(saved, tmp_path):
    _rewrite(saved, tmp_path / "noarch.npz", lambda d: d.pop("__architecture__"))
    with pytest.raises(FormatVersionError, match="__architecture__"):
        nn.load(tmp_path / "noarch.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(FormatVersionError, match="not a refquant.nn file"):
        nn.load(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(FormatVersionError, match="not a refquant.nn .npz file"):
        nn.load(tmp_path / "junk.npz")


def test_unknown_layer_type(saved, tmp_path):
    def rename(d):
        arch = json.loads(str(d["__architecture__"]))
        arch["children"]["2"]["type"] = "Swish"
        d["__architecture__"] = np.array(json.dumps(arch))

    _rewrite(saved, tmp_path / "unk.npz", rename)
    with pytest.raises(UnsupportedError, match=r"unknown layer type 'Swish' at 'model.2'"):
        nn.load(tmp_path / "unk.npz")


def test_shape_mismatch_and_kind_mismatch(saved, tmp_path):
    _rewrite(saved, tmp_path / "shape.npz", lambda d: d.update({"state/0.bias": np.zeros(7, np.float32)}))
    with pytest.raises(ShapeError, match=r"0.bias.*\(6,\), got \(7,\)"):
        nn.load(tmp_path / "shape.npz")
    nn.save_weights(every_layer_model(), tmp_path / "w.npz")
    with pytest.raises(FormatVersionError, match="use load_weights"):
        nn.load(tmp_path / "w.npz")
    with pytest.raises(FormatVersionError, match="use load"):
        nn.load_weights(every_layer_model(), saved)
    with pytest.raises(FormatVersionError, match="unexpected key"):
        nn.load_weights(nn.Sequential(nn.Linear(1, 1)), tmp_path / "w.npz")


class Scale(nn.Module):
    """A custom layer: y = a·x with a learned scalar, saved through get_config/from_config."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.init = init
        self.a = nn.Parameter(np.array([init], np.float32))

    def forward(self, x):
        self._x = x
        return x * self.a.value

    def backward(self, g):
        self.a.accumulate(np.array([(g * self._x).sum()], np.float32))
        return g * self.a.value

    def get_config(self):
        return {"init": self.init}


def test_custom_layers_are_registered(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2, rng=0), Scale(0.5))
    model[1].a.value[0] = 3.0
    nn.save(model, tmp_path / "c.npz")
    loaded = nn.load(tmp_path / "c.npz")
    assert isinstance(loaded[1], Scale) and loaded[1].a.value[0] == 3.0
    assert "Scale" in nn.module_registry()
