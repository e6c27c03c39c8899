"""refquant.prune: magnitude and random masks, the sparsity report, and masks kept through training."""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn, prune
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.models import load_reference_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 1, 6, 6)).astype(np.float32)
Y = np.arange(64) % 3


def small_model(seed=0):
    """Conv2d -> BN -> ReLU -> pool -> Linear: both prunable kinds, a BatchNorm that must not be pruned."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.GlobalAvgPool2d(), nn.Linear(4, 3, rng=rng))


def test_kept_count_is_tfmots_rounding():
    # k = max(round_half_even(n (1 - s)), 1); hand-checked values (the TFMOT fixture test checks a grid)
    assert prune.kept_count(10, 0.5) == 5
    assert prune.kept_count(9, 0.5) == 4  # 4.5 -> 4 (half to even)
    assert prune.kept_count(10, 0.25) == 8  # 7.5 -> 8
    assert prune.kept_count(6, 0.25) == 4  # 4.5 -> 4
    assert prune.kept_count(10, 0.99) == 1  # at least one weight kept
    assert prune.kept_count(7, 0.0) == 7


def test_magnitude_masks_layer_scope_keep_the_largest_of_each_layer():
    model = load_reference_model("mlp")
    masks = prune.magnitude_masks(model, 0.5)
    assert list(masks) == ["1", "3", "5"]  # the three Linear layers, model order
    for name, mask in masks.items():
        w = np.abs(dict(model.named_modules())[name].weight.value)
        assert mask.shape == w.shape and mask.dtype == np.bool_
        assert mask.sum() == prune.kept_count(w.size, 0.5)
        assert w[mask].min() >= w[~mask].max(), f"layer {name}: a pruned weight is larger than a kept one"


def test_magnitude_masks_global_scope_use_one_threshold():
    model = load_reference_model("cnn")
    masks = prune.magnitude_masks(model, 0.5, scope="global")
    layers = dict(model.named_modules())
    kept = np.concatenate([np.abs(layers[k].weight.value[m]) for k, m in masks.items()])
    pruned = np.concatenate([np.abs(layers[k].weight.value[~m]) for k, m in masks.items()])
    assert kept.size == prune.kept_count(kept.size + pruned.size, 0.5)
    assert kept.min() >= pruned.max()
    fractions = {k: 1 - m.mean() for k, m in masks.items()}
    assert max(fractions.values()) - min(fractions.values()) > 0.1, fractions  # layers differ


def test_ties_keep_the_first_weight_in_model_order_then_c_order():
    a, b = nn.Linear(4, 2, bias=False, rng=0), nn.Linear(2, 2, bias=False, rng=0)
    a.weight.value[...] = np.array([[1, -1, 1, -1], [-1, 1, -1, 1]], np.float32)  # 8 equal magnitudes
    b.weight.value[...] = 1.0
    model = nn.Sequential(a, b)
    layer = prune.magnitude_masks(model, 0.5)
    np.testing.assert_array_equal(layer["0"], [[True] * 4, [False] * 4])  # first 4 in C order
    np.testing.assert_array_equal(layer["1"], [[True, True], [False, False]])
    glob = prune.magnitude_masks(model, 0.5)  # same call twice: same masks
    np.testing.assert_array_equal(glob["0"], layer["0"])
    g = prune.magnitude_masks(model, 0.5, scope="global")  # 12 weights, keep 6: all 6 from the first layer
    np.testing.assert_array_equal(g["0"], [[True] * 4, [True, True, False, False]])
    assert not g["1"].any()


def test_random_masks_same_counts_reproducible_and_not_magnitude():
    model = load_reference_model("mlp")
    r1, r2 = prune.random_masks(model, 0.5, seed=3), prune.random_masks(model, 0.5, seed=3)
    mag = prune.magnitude_masks(model, 0.5)
    for name in mag:
        np.testing.assert_array_equal(r1[name], r2[name])
        assert r1[name].sum() == mag[name].sum()
        assert not np.array_equal(r1[name], mag[name])
    assert not np.array_equal(prune.random_masks(model, 0.5, seed=4)["1"], r1["1"])
    g = prune.random_masks(model, 0.3, seed=0, scope="global")
    total = sum(m.size for m in g.values())
    assert sum(int(m.sum()) for m in g.values()) == prune.kept_count(total, 0.3)


def test_layers_argument_selects_and_never_biases_or_batchnorm():
    model = small_model()
    masks = prune.magnitude_masks(model, 0.5, layers=["4"])
    assert list(masks) == ["4"]
    handle = prune.apply_masks(model, prune.magnitude_masks(model, 0.9))
    handle.remove()
    assert np.all(model[0].bias.value != 0) and np.all(model[1].weight.value == 1)  # untouched


def test_sparsity_report_counts_zero_weights():
    model = small_model()
    model[0].weight.value[0] = 0  # 9 of 36
    model[4].weight.value[:, :2] = -0.0  # 6 of 12; -0.0 counts
    rep = prune.sparsity(model)
    assert rep.layers == {"0": 0.25, "4": 0.5}
    assert (rep.zeros, rep.total) == (15, 48)
    assert rep.overall == 15 / 48


@pytest.mark.parametrize("make_opt", [
    lambda m: None,  # fit's default: a fresh Adam
    lambda m: nn.Adam(m, lr=1e-2, weight_decay=1e-2),  # L2 decay added to the (masked) gradient
    lambda m: nn.AdamW(m, lr=1e-2),  # decoupled decay: 0 * (1 - lr wd) = 0
    lambda m: nn.SGD(m, lr=0.05, momentum=0.9, nesterov=True),
])
def test_pruned_weights_stay_exactly_zero_through_fit(make_opt):
    model = small_model()
    masks = prune.magnitude_masks(model, 0.6)
    before = {k: dict(model.named_modules())[k].weight.value.copy() for k in masks}
    with prune.apply_masks(model, masks):
        nn.fit(model, X, Y, epochs=2, batch_size=16, optimizer=make_opt(model), progress=False)
    layers = dict(model.named_modules())
    for name, mask in masks.items():
        w = layers[name].weight.value
        assert np.count_nonzero(w[~mask]) == 0, f"layer {name}: pruned weights moved: {w[~mask][w[~mask] != 0][:5]}"
        assert not np.array_equal(w[mask], before[name][mask]), "the kept weights must train"
    assert prune.sparsity(model).zeros == sum(int((~m).sum()) for m in masks.values())


def test_an_optimizer_with_adam_moments_needs_attaching():
    """Adam moments from earlier training move pruned weights unless the optimizer is attached."""
    masks = prune.magnitude_masks(small_model(), 0.6)
    results = {}
    for attach in (False, True):
        model = small_model()
        opt = nn.Adam(model, lr=1e-2)
        nn.fit(model, X, Y, epochs=1, batch_size=16, optimizer=opt, progress=False)  # m, v != 0 everywhere
        handle = prune.apply_masks(model, masks, optimizer=opt if attach else None)
        nn.fit(model, X, Y, epochs=1, batch_size=16, optimizer=opt, progress=False)
        handle.remove()
        results[attach] = sum(np.count_nonzero(dict(model.named_modules())[k].weight.value[~m])
                              for k, m in masks.items())
        if attach:
            st = opt.state[0]  # the conv weight's Adam state: zero at the pruned positions
            assert np.count_nonzero(st["m"][~masks["0"]]) == 0 and np.count_nonzero(st["v"][~masks["0"]]) == 0
    assert results[True] == 0
    assert results[False] > 0, "without attaching, Adam's moments resurrect pruned weights (why attach exists)"


def test_remove_detaches_transform_and_optimizer_step():
    model = small_model()
    prev = nn.straight_through(lambda w: w)
    model[4].weight_transform = prev
    opt = nn.SGD(model, lr=0.1)
    handle = prune.apply_masks(model, prune.magnitude_masks(model, 0.5), optimizer=opt)
    assert "step" in opt.__dict__ and model[0].weight_transform is not None
    assert model[4].weight_transform is not prev  # the mask composed in front of it
    handle.remove()
    handle.remove()  # idempotent
    assert "step" not in opt.__dict__
    assert model[0].weight_transform is None and model[4].weight_transform is prev
    assert "removed" in repr(handle)


def test_update_replaces_masks_and_refuses_other_layers():
    model = small_model()
    handle = prune.apply_masks(model, prune.magnitude_masks(model, 0.25, layers=["0"]))
    handle.update(prune.magnitude_masks(model, 0.75, layers=["0"]))
    assert prune.sparsity(model).layers["0"] == 27 / 36
    with pytest.raises(QuantizationValueError, match=r"\['4'\] are not masked by this Pruning"):
        handle.update(prune.magnitude_masks(model, 0.5, layers=["4"]))


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, err, msg", [
    (1.0, QuantizationValueError, r"sparsity must be in \[0, 1\), got 1.0"),
    (1.2, QuantizationValueError, r"sparsity must be in \[0, 1\), got 1.2"),
    (-0.1, QuantizationValueError, r"got -0.1"),
    (float("nan"), QuantizationValueError, r"got nan"),
    ("0.5", QuantizationTypeError, r"sparsity must be a float"),
])
def test_bad_sparsity(bad, err, msg):
    with pytest.raises(err, match=msg):
        prune.magnitude_masks(small_model(), bad)
    with pytest.raises(err, match=msg):
        prune.random_masks(small_model(), bad)


def test_bad_layers_scope_model_and_weights():
    model = small_model()
    with pytest.raises(QuantizationValueError, match=r"no layer named 'nope'; its Linear and Conv2d layers are "
                                                     r"\['0', '4'\]"):
        prune.magnitude_masks(model, 0.5, layers=["nope"])
    with pytest.raises(QuantizationValueError, match=r"layer '2' is a ReLU, not a Linear or Conv2d"):
        prune.magnitude_masks(model, 0.5, layers=["2"])
    with pytest.raises(QuantizationTypeError, match="layers must be a list of layer names"):
        prune.magnitude_masks(model, 0.5, layers="0")
    with pytest.raises(QuantizationValueError, match="layers must name at least one layer"):
        prune.magnitude_masks(model, 0.5, layers=[])
    with pytest.raises(QuantizationValueError, match="scope must be one of"):
        prune.magnitude_masks(model, 0.5, scope="local")
    with pytest.raises(QuantizationTypeError, match="model must be a refquant.nn Module"):
        prune.magnitude_masks({"0": np.ones(3)}, 0.5)
    with pytest.raises(QuantizationTypeError, match="model must be a refquant.nn Module"):
        prune.sparsity(np.ones((3, 3)))
    with pytest.raises(UnsupportedError, match="no Linear or Conv2d layer"):
        prune.magnitude_masks(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(QuantizationValueError, match="seed must be an integer >= 0"):
        prune.random_masks(model, 0.5, seed=-1)
    model[0].weight.value[0, 0, 0, 0] = np.nan
    with pytest.raises(QuantizationValueError, match="layer '0' has a NaN or infinite weight"):
        prune.magnitude_masks(model, 0.5)


def test_bad_masks():
    model = small_model()
    good = prune.magnitude_masks(model, 0.5)
    with pytest.raises(ShapeError, match=r"masks\['4'\] must have the weight's shape \(3, 4\), got \(4, 3\)"):
        prune.apply_masks(model, {"4": good["4"].T})
    with pytest.raises(QuantizationValueError, match=r"masks: model has no layer named 'x'"):
        prune.apply_masks(model, {"x": good["4"]})
    with pytest.raises(QuantizationValueError, match=r"masks\['4'\] must be boolean .* or hold only 0 and 1"):
        prune.apply_masks(model, {"4": good["4"] * 0.5})
    with pytest.raises(QuantizationTypeError, match="masks must be a dict"):
        prune.apply_masks(model, [good["4"]])
    with pytest.raises(QuantizationValueError, match="masks must hold at least one"):
        prune.apply_masks(model, {})
    with pytest.raises(QuantizationTypeError, match="optimizer must be a refquant.nn Optimizer"):
        prune.apply_masks(model, good, optimizer="adam")
    handle = prune.apply_masks(model, {"4": good["4"].astype(np.int8)})  # 0/1 integers are accepted
    assert handle.masks["4"].dtype == np.bool_
    assert np.all(model[4].weight.value[~good["4"]] == 0)


def test_docstring_examples_run():
    import doctest

    from refquant.prune import masks, nm, schedules, structured, train_masks
    for mod in (masks, nm, schedules, structured, train_masks):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, f"{mod.__name__}: {result}"
