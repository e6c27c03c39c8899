"""refquant.prune.structured: removing filters for real, and the exact property that removal has.

Removing output channel c of a layer equals, up to float32 summation order, setting to 0 the weights of
the *next* layer that read channel c (whatever the channel's activations were). It equals zeroing the
*producer's* filter only when that makes the channel's activations 0: after BN folding, with the filter's
bias zeroed too, and activations with f(0) = 0. Both are checked here, and that zeroing the filter alone
is not enough with a BatchNorm in between.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn, passes, prune
from refquant.data import load_digits
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.models import load_reference_model

X_TEST = load_digits("test")[0][:64]

# producer -> the layers reading its channels, written out by hand from refquant/models.py
CONSUMERS = {
    "mlp": {"1": ["3"], "3": ["5"]},
    "cnn": {"0": ["3"], "3": ["7"], "7": ["11"]},
    "resnet": {"3.body.0": ["3.body.3"], "4.body.0": ["4.body.3"], "5.body.0": ["5.body.3"]},
    "mobilenet": {"0": ["6"], "6": ["8.0"], "8.0": ["8.6"], "9.body.0": ["9.body.6"], "10.0": ["10.6"],
                  "11.body.0": ["11.body.6"], "12": ["16"]},
}


def zero_consumer_inputs(model, keep, consumers):
    """The unthinned model with every removed channel's *readers* zeroed: W_next[:, c] = 0."""
    out = model.copy()
    layers = dict(out.named_modules())
    for name, kept in keep.items():
        removed = np.setdiff1d(np.arange(layers[name].weight.shape[0]), kept)
        for c in consumers[name]:
            layers[c].weight.value[:, removed] = 0
    return out


def max_diff(a, b):
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "mobilenet"])
def test_thinning_equals_zeroing_the_consumers_inputs(name):
    model = load_reference_model(name)
    before = model.state_dict()
    assert prune.thinnable_layers(model) == list(CONSUMERS[name])
    keep = prune.select_channels(model, 0.3)
    small = prune.remove_channels(model, keep)
    layers, small_layers = dict(model.named_modules()), dict(small.named_modules())
    inputs_kept = {c: keep[p] for p, cs in CONSUMERS[name].items() for c in cs}
    for p, kept in keep.items():
        assert kept.size == prune.kept_count(layers[p].weight.shape[0], 0.3)
        cols = inputs_kept.get(p, slice(None))
        np.testing.assert_array_equal(small_layers[p].weight.value, layers[p].weight.value[kept][:, cols])
    assert small.num_parameters() < model.num_parameters()
    want = nn.predict(zero_consumer_inputs(model, keep, CONSUMERS[name]), X_TEST)
    got = nn.predict(small, X_TEST)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{name}: thinned vs consumer-zeroed, "
                                                                       f"max diff {max_diff(got, want):.2e}")
    after = model.state_dict()  # the input model is untouched
    assert list(after) == list(before) and all(np.array_equal(after[k], before[k]) for k in before)


def test_cnn_shapes_after_30_percent():
    small = prune.prune_channels(load_reference_model("cnn"), 0.3)
    # conv 1->16 keeps 11, conv 16->32 keeps 22, conv 32->32 keeps 22; the classifier stays 10 wide
    assert [small[i].weight.shape for i in (0, 3, 7, 11)] == [(11, 1, 3, 3), (22, 11, 3, 3), (22, 22, 3, 3), (10, 22)]
    assert [small[i].num_features for i in (1, 4, 8)] == [11, 22, 22]
    assert (small[3].in_channels, small[3].out_channels, small[11].in_features) == (11, 22, 22)
    assert small.num_parameters() == 6973


def test_after_bn_folding_thinning_equals_zeroing_filter_and_bias():
    folded = passes.fold_batch_norm(load_reference_model("cnn"))  # conv, ReLU, conv, ReLU, pool, conv, ReLU, gap, fc
    keep = prune.select_channels(folded, 0.3)
    masked = folded.copy()
    for name, kept in keep.items():
        layer = dict(masked.named_modules())[name]
        removed = np.setdiff1d(np.arange(layer.weight.shape[0]), kept)
        layer.weight.value[removed] = 0
        layer.bias.value[removed] = 0  # conv(x)_c = 0, ReLU(0) = 0: channel c contributes nothing
    got, want = nn.predict(prune.remove_channels(folded, keep), X_TEST), nn.predict(masked, X_TEST)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"max diff {max_diff(got, want):.2e}")


def test_with_batchnorm_zeroing_the_filter_alone_is_not_removal():
    cnn = load_reference_model("cnn")
    keep = prune.select_channels(cnn, 0.3)
    masked = cnn.copy()
    for name, kept in keep.items():
        w = dict(masked.named_modules())[name].weight.value
        w[np.setdiff1d(np.arange(w.shape[0]), kept)] = 0  # BN then outputs beta - gamma mu / sigma, not 0
    diff = max_diff(nn.predict(prune.remove_channels(cnn, keep), X_TEST), nn.predict(masked, X_TEST))
    assert diff > 0.1, f"expected the BatchNorm shift to survive filter zeroing, max diff {diff}"


def test_depthwise_with_multiplier_and_batchnorm1d_chains():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2, 5, 5)).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU6(),
                          nn.Conv2d(4, 8, 3, padding=1, groups=4, rng=rng), nn.BatchNorm2d(8), nn.Sigmoid(),
                          nn.Conv2d(8, 3, 1, rng=rng), nn.GlobalAvgPool2d(keepdims=True), nn.Flatten(),
                          nn.Linear(3, 6, rng=rng), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2, rng=rng))
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean[...] = rng.standard_normal(m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2, m.num_features)
    assert prune.thinnable_layers(model) == ["0", "6", "9"]
    keep = {"0": np.array([1, 3]), "6": np.array([0, 2]), "9": np.array([0, 4, 5])}
    small = prune.remove_channels(model, keep)
    dw = small[3]
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.weight.shape) == (2, 4, 2, (4, 1, 3, 3))
    assert small[4].num_features == 4 and small[6].weight.shape == (2, 4, 1, 1) and small[10].num_features == 3
    masked = model.copy()
    masked[6].weight.value[:, [0, 1, 4, 5]] = 0  # dw outputs 2c, 2c+1 of removed input channels c = 0, 2
    masked[9].weight.value[:, 1] = 0
    masked[12].weight.value[:, [1, 2, 3]] = 0
    np.testing.assert_allclose(nn.predict(small, x), nn.predict(masked, x), rtol=1e-5, atol=1e-6)


def test_thinned_model_trains_and_saves(tmp_path):
    x, y = load_digits("train")
    small = prune.prune_channels(load_reference_model("cnn"), 0.5, norm="l2")
    nn.fit(small, x[:128], y[:128], epochs=1, batch_size=32, progress=False)
    path = tmp_path / "small.npz"
    nn.save(small, path)
    np.testing.assert_array_equal(nn.predict(nn.load(path), X_TEST), nn.predict(small, X_TEST))


def test_channels_chosen_by_norm_ties_to_the_lower_index():
    lin1, lin2 = nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=0)
    lin1.weight.value[...] = np.array([[1, 1, 1], [3, 0, 0], [0, 2, 2], [-1, -1, -1]], np.float32)
    model = nn.Sequential(lin1, nn.ReLU(), lin2)
    # l1 norms 3, 3, 4, 3 -> keep 2: channel 2, then channel 0 (lowest index among the ties)
    np.testing.assert_array_equal(prune.select_channels(model, 0.5, norm="l1")["0"], [0, 2])
    # l2 norms sqrt(3), 3, sqrt(8), sqrt(3) -> channels 1 and 2
    np.testing.assert_array_equal(prune.select_channels(model, 0.5, norm="l2")["0"], [1, 2])
    np.testing.assert_array_equal(prune.select_channels(model, 0.0)["0"], [0, 1, 2, 3])


# ---------------------------------------------------------------------------------- what cannot be thinned


@pytest.mark.parametrize("model_name, layer, msg", [
    ("resnet", "3.body.3", r"Conv2d '3.body.3': its channels feed the residual add '3.add'"),
    ("resnet", "4.shortcut.0", r"Conv2d '4.shortcut.0': its channels feed the residual add '4.add'"),
    ("resnet", "0", r"Conv2d '0': its channels feed the residual add '3.add'"),  # the identity shortcut
    ("resnet", "7", r"Linear '7': its output is the model's output"),
    ("mlp", "5", r"Linear '5': its output is the model's output"),
    ("mobilenet", "3", r"Conv2d '3' \(groups=16\): a depthwise or grouped convolution"),
    ("mobilenet", "10.6", r"its channels feed the residual add '11.add'"),
])
def test_layers_that_cannot_be_thinned_are_refused_by_name(model_name, layer, msg):
    with pytest.raises(UnsupportedError, match=msg):
        prune.prune_channels(load_reference_model(model_name), 0.3, layers=[layer])


def test_refused_patterns():
    rng = np.random.default_rng(0)
    flat = nn.Sequential(nn.Conv2d(1, 4, 3, rng=rng), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3, rng=rng))
    with pytest.raises(UnsupportedError, match=r"Flatten '2' mixes channels with spatial positions"):
        prune.prune_channels(flat, 0.5, layers=["0"])
    with pytest.raises(UnsupportedError, match="model has no layer whose output channels can be removed"):
        prune.prune_channels(flat, 0.5)
    soft = nn.Sequential(nn.Linear(4, 4, rng=rng), nn.Softmax(), nn.Linear(4, 2, rng=rng))
    with pytest.raises(UnsupportedError, match=r"reach Softmax '1', which prune_channels cannot see through"):
        prune.prune_channels(soft, 0.5, layers=["0"])
    grouped = nn.Sequential(nn.Conv2d(1, 4, 1, rng=rng), nn.Conv2d(4, 4, 1, groups=2, rng=rng), nn.GlobalAvgPool2d(),
                            nn.Linear(4, 2, rng=rng))
    with pytest.raises(UnsupportedError, match=r"grouped Conv2d '1' \(groups=2\)"):
        prune.prune_channels(grouped, 0.5, layers=["0"])
    masked = load_reference_model("mlp")
    masked[1].weight_transform = nn.mask_transform(np.ones((128, 64), bool))
    with pytest.raises(UnsupportedError, match=r"layer '1' has a weight_transform"):
        prune.prune_channels(masked, 0.3)


def test_bad_arguments():
    mlp = load_reference_model("mlp")
    with pytest.raises(QuantizationValueError, match=r"amount must be in \[0, 1\), got 1.0"):
        prune.prune_channels(mlp, 1.0)
    with pytest.raises(QuantizationValueError, match=r"norm must be one of \('l1', 'l2'\)"):
        prune.prune_channels(mlp, 0.3, norm="l3")
    with pytest.raises(QuantizationValueError, match=r"no layer named '9'; its Linear and Conv2d layers are"):
        prune.prune_channels(mlp, 0.3, layers=["9"])
    with pytest.raises(QuantizationTypeError, match="model must be a refquant.nn Module"):
        prune.prune_channels("mlp", 0.3)
    with pytest.raises(QuantizationTypeError, match="keep must be a non-empty dict"):
        prune.remove_channels(mlp, [1, 2])
    with pytest.raises(QuantizationValueError, match=r"keep\['1'\] must hold channels in \[0, 127\], got 128"):
        prune.remove_channels(mlp, {"1": np.array([0, 128])})
    with pytest.raises(QuantizationValueError, match=r"keep\['1'\] must not repeat a channel"):
        prune.remove_channels(mlp, {"1": np.array([3, 3])})
    with pytest.raises(ShapeError, match=r"keep\['1'\] must be a non-empty 1-D array"):
        prune.remove_channels(mlp, {"1": np.zeros(0, np.int64)})
    with pytest.raises(QuantizationTypeError, match=r"keep\['1'\] must be a 1-D integer array"):
        prune.remove_channels(mlp, {"1": np.array([0.0, 1.0])})
    with pytest.raises(QuantizationValueError, match=r"keep: model has no layer named 'x'"):
        prune.remove_channels(mlp, {"x": np.array([0])})
