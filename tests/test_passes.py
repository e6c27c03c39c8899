"""refquant.passes: BN folding, identity removal, the preparation pipeline and cross-layer equalization.

Oracles: the input model itself (a pass must not change what a model computes, beyond float32
rounding), the input model converted to float64 (the exact composition of a layer and its
BatchNorm), and eq. (2) of each pass written out independently here.

Tolerances, on the digits test split (359 images) with the four bundled models:

* ``remove_identities``: bit-identical (it only drops layers computing $y = x$).
* ``fold_batch_norm`` / ``prepare_for_quantization``: max |logit difference| <= ``FOLD_RTOL`` =
  1e-5 of the largest |logit| (about 80 float32 ulps of it). Measured: mlp 0 (no BatchNorm),
  cnn 4.1e-7, resnet 4.0e-7, mobilenet 6.8e-7. The folded weights are eq. (2) correctly rounded
  to float32, the BatchNorm computed in float32 too, so both sides carry float32 rounding
  through ~10 layers of sums of up to 288 terms.
* ``cross_layer_equalization`` after prepare: the same 1e-5 for ReLU pairs (measured mlp 2.2e-7,
  cnn 5.3e-7, resnet 4.0e-7). MobileNet's pairs are joined by ReLU6, which the default
  ``relu6="replace"`` turns into ReLU: its logits move by 2.3e-2 of the largest |logit|
  (a few pre-activations reach 8.2 > 6), bounded here by ``RELU6_RTOL`` = 5e-2; against the same
  model with only ReLU6 replaced (no scaling) the CLE model is within 1e-5 (measured 6e-7).

Top-1 predictions are identical to the original model's for every model and pass.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import refquant
from refquant import errors, nn, passes
from refquant.data import load_digits
from refquant.models import REFERENCE_MODELS, load_reference_model

FOLD_RTOL = 1e-5
RELU6_RTOL = 5e-2
TOL = 1e-6  # cross_layer_equalization's default tol

BN = (nn.BatchNorm1d, nn.BatchNorm2d)
AFFINE = (nn.Conv2d, nn.Linear)


@pytest.fixture(scope="module")
def digits():
    return load_digits("test")


@pytest.fixture(scope="module")
def models(digits):
    """name -> (model, its float32 logits on the test split)."""
    x, _ = digits
    out = {}
    for name in REFERENCE_MODELS:
        m = load_reference_model(name)
        out[name] = (m, m(x))
    return out


def _prepare_then_cle(model):
    return passes.cross_layer_equalization(passes.prepare_for_quantization(model))


PASSES = {
    "remove_identities": passes.remove_identities,
    "fold_batch_norm": passes.fold_batch_norm,
    "prepare_for_quantization": passes.prepare_for_quantization,
    "cross_layer_equalization": _prepare_then_cle,
}


def _sequentials(model):
    return [m for m in model.modules() if isinstance(m, nn.Sequential)]


def _replace_relu6(model):
    """The model with every ReLU6 replaced by ReLU (and nothing else), in place."""
    for seq in _sequentials(model):
        for name, m in list(seq.named_children()):
            if isinstance(m, nn.ReLU6):
                setattr(seq, name, nn.ReLU())  # same child name, same position
    return model


def _max_rel(a, b, scale):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / scale


def _state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------
# The four bundled models: outputs kept, input untouched
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pass_name", list(PASSES))
@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_pass_keeps_outputs_of_bundled_models(name, pass_name, models, digits):
    x, _ = digits
    model, ref = models[name]
    before = model.state_dict()
    out_model = PASSES[pass_name](model)
    assert out_model is not model and not out_model.training
    assert all(not m.training for m in out_model.modules())
    assert _state_equal(model.state_dict(), before), f"{pass_name} changed the input model's weights"

    out = out_model(x)
    assert out.shape == ref.shape and out.dtype == ref.dtype == np.float32
    scale = float(np.max(np.abs(ref)))
    rel = _max_rel(out, ref, scale)
    if pass_name == "remove_identities":
        np.testing.assert_array_equal(out, ref)
    elif pass_name == "cross_layer_equalization" and name == "mobilenet":
        # ReLU6 -> ReLU changes the function; CLE itself must be exact against that model
        assert rel <= RELU6_RTOL, f"mobilenet: ReLU6->ReLU moved logits by {rel:.3g} of the logit scale"
        relu_only = _replace_relu6(passes.prepare_for_quantization(model))
        rel_cle = _max_rel(out, relu_only(x), scale)
        assert rel_cle <= FOLD_RTOL, f"mobilenet: CLE itself changed logits by {rel_cle:.3g} of the logit scale"
    else:
        assert rel <= FOLD_RTOL, f"{name} {pass_name}: max |logit diff| = {rel:.3g} x max |logit| > {FOLD_RTOL}"
    changed = int(np.sum(out.argmax(1) != ref.argmax(1)))
    assert changed == 0, f"{name} {pass_name}: {changed} of {len(x)} top-1 predictions changed"


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_structure_after_prepare(name, models):
    model, _ = models[name]
    n_bn = sum(isinstance(m, BN) for m in model.modules())
    prepared = passes.prepare_for_quantization(model)
    for seq in _sequentials(prepared):
        layers = list(seq)
        assert [n for n, _ in seq.named_children()] == [str(i) for i in range(len(layers))]
        for prev, layer in itertools.pairwise(layers):
            assert not (isinstance(prev, AFFINE) and isinstance(layer, BN)), f"{name}: a BatchNorm left after {prev}"
    assert not any(isinstance(m, BN) for m in prepared.modules())  # every BN of the bundled models follows a conv
    n_affine = sum(isinstance(m, AFFINE) for m in model.modules())
    assert sum(isinstance(m, AFFINE) for m in prepared.modules()) == n_affine
    assert all(m.bias is not None for m in prepared.modules() if isinstance(m, AFFINE))
    assert sum(isinstance(m, BN) for m in model.modules()) == n_bn  # the input keeps its BatchNorms


def test_input_model_untouched_in_every_respect():
    """Weights, structure, mode, hooks and caches of the input survive every pass."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False, rng=0), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Dropout(0.5), nn.Conv2d(3, 2, 1, rng=1), nn.Identity())
    model[1].running_mean[:] = [0.5, -1.0, 2.0]
    model.train()
    calls = []
    handle = model[0].register_forward_hook(lambda m, i, o: calls.append(o.shape))
    x = np.linspace(-1, 1, 2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    model(x)
    before, n_calls = model.state_dict(), len(calls)
    for fn in PASSES.values():
        out = fn(model)
        out(x)
        assert len(calls) == n_calls, "the copy must not carry the input's hooks"
        assert out[0]._cache is not None  # the copy computes as usual
    assert _state_equal(model.state_dict(), before)
    assert len(model) == 6 and model.training and isinstance(model[1], nn.BatchNorm2d)
    assert model[0].bias is None and model[0]._cache is not None
    model(x)
    assert len(calls) == n_calls + 1
    handle.remove()


# ------------------------------------------------------------------------------------------
# fold_batch_norm on hand-built models against float64
# ------------------------------------------------------------------------------------------

def _set_stats(bn, rng):
    c = bn.num_features
    bn.running_mean[:] = rng.normal(0, 1, c)
    bn.running_var[:] = rng.uniform(0.05, 3.0, c)
    if bn.weight is not None:
        bn.weight.value[:] = rng.normal(0, 2, c)
        bn.bias.value[:] = rng.normal(0, 1, c)
    return bn


def _fold_reference(layer, bn):
    """Eq. (2) written as division by the standard deviation, float64, cast like the pass."""
    std = np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    gamma = np.ones(bn.num_features) if bn.weight is None else bn.weight.value.astype(np.float64)
    beta = np.zeros(bn.num_features) if bn.bias is None else bn.bias.value.astype(np.float64)
    bias = np.zeros(bn.num_features) if layer.bias is None else layer.bias.value.astype(np.float64)
    shape = (-1,) + (1,) * (layer.weight.value.ndim - 1)
    w = layer.weight.value.astype(np.float64) * gamma.reshape(shape) / std.reshape(shape)
    b = (bias - bn.running_mean.astype(np.float64)) * gamma / std + beta
    return w.astype(np.float32), b.astype(np.float32)


HAND_BUILT = {
    "linear_bn1d": (lambda: nn.Sequential(nn.Linear(6, 5, rng=0), nn.BatchNorm1d(5)), (7, 6)),
    "conv_bias_bn2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4)), (2, 3, 5, 5)),
    "conv_nobias_bn2d": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, bias=False, rng=0), nn.BatchNorm2d(4)),
                         (2, 3, 7, 7)),
    "depthwise_bn2d": (lambda: nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False, rng=0),
                                             nn.BatchNorm2d(4)), (2, 4, 5, 5)),
    "depthwise_mult2_bn2d": (lambda: nn.Sequential(nn.Conv2d(3, 6, 3, groups=3, rng=0), nn.BatchNorm2d(6)),
                             (2, 3, 5, 5)),
    "bn_not_affine": (lambda: nn.Sequential(nn.Linear(4, 3, rng=0), nn.BatchNorm1d(3, affine=False)), (5, 4)),
}


@pytest.mark.parametrize("case", list(HAND_BUILT))
def test_fold_hand_built_against_float64(case):
    build, x_shape = HAND_BUILT[case]
    rng = np.random.default_rng(7)
    model = build()
    _set_stats(model[1], rng)
    x = rng.normal(0, 1, x_shape).astype(np.float32)
    want_w, want_b = _fold_reference(model[0], model[1])
    exact = model.eval().copy().to(np.float64)(x.astype(np.float64))  # conv then BN, in float64

    folded = passes.fold_batch_norm(model)
    assert len(folded) == 1 and type(folded[0]) is type(model[0])
    layer = folded[0]
    assert layer.weight.value.shape == want_w.shape and layer.weight.dtype == np.float32
    assert layer.bias.value.shape == want_b.shape and layer.bias.dtype == np.float32
    # two float64 formulas in another order, each cast once: at most 1 float32 ulp apart
    np.testing.assert_allclose(layer.weight.value, want_w, rtol=2.0 ** -23, atol=0)
    np.testing.assert_allclose(layer.bias.value, want_b, rtol=2.0 ** -23, atol=1e-12)
    got = folded(x)
    assert got.shape == exact.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(exact))),
                               err_msg=f"{case}: folded float32 model vs conv+BN in float64")


def test_fold_parameters_is_eq2():
    w = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    w2, b2 = passes.fold_parameters(w, None, gamma=[2.0, -1.0], beta=[0.5, 0.0], mean=[1.0, -1.0],
                                    var=[3.0, 0.0], eps=1.0)
    # a = gamma / sqrt(var + eps) = [1, -1]; W' = a W; b' = a (0 - mean) + beta
    assert w2.dtype == b2.dtype == np.float64
    np.testing.assert_array_equal(w2, [[1.0, -2.0], [-3.0, -0.5]])
    np.testing.assert_array_equal(b2, [-0.5, -1.0])


def test_bn_first_and_after_activation_stay_and_nested_pairs_fold():
    rng = np.random.default_rng(3)
    block = nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, bias=False, rng=1), nn.BatchNorm2d(3), nn.ReLU(),
                                      nn.Conv2d(3, 3, 1, rng=2), nn.BatchNorm2d(3)),
                        nn.Sequential(nn.Conv2d(3, 3, 1, bias=False, rng=3), nn.BatchNorm2d(3)), nn.ReLU())
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 3, 3, padding=1, rng=0), nn.ReLU(), nn.BatchNorm2d(3), block,
                          nn.GlobalAvgPool2d(), nn.Linear(3, 4, rng=4), nn.BatchNorm1d(4), nn.BatchNorm1d(4))
    for m in model.modules():
        if isinstance(m, BN):
            _set_stats(m, rng)
    x = rng.normal(0, 1, (2, 3, 6, 6)).astype(np.float32)
    exact = model.eval().copy().to(np.float64)(x.astype(np.float64))

    folded = passes.fold_batch_norm(model)
    kinds = [type(m).__name__ for m in folded]
    # BN first and BN after ReLU stay; Linear + BN1d + BN1d folds both
    assert kinds == ["BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "Residual", "GlobalAvgPool2d", "Linear"]
    assert [type(m).__name__ for m in folded[4].body] == ["Conv2d", "ReLU", "Conv2d"]
    assert [type(m).__name__ for m in folded[4].shortcut] == ["Conv2d"]
    got = folded(x)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(exact))))


def test_fold_uses_running_statistics_whatever_the_mode():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2))
    _set_stats(model[1], np.random.default_rng(1))
    x = np.eye(3, dtype=np.float32)
    want = model.eval()(x)
    model.train()
    folded = passes.fold_batch_norm(model)
    assert not folded.training and model.training
    np.testing.assert_allclose(folded(x), want, rtol=1e-6, atol=1e-6)


def test_folded_model_saves_and_loads(tmp_path):
    model = passes.fold_batch_norm(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False, rng=0), nn.BatchNorm2d(2)))
    nn.save(model, tmp_path / "m.npz")
    back = nn.load(tmp_path / "m.npz")
    assert back[0].bias is not None
    x = np.ones((1, 1, 4, 4), np.float32)
    np.testing.assert_array_equal(back(x), model(x))


# ------------------------------------------------------------------------------------------
# remove_identities and prepare_for_quantization
# ------------------------------------------------------------------------------------------

def test_remove_identities_drops_dropout_and_identity_everywhere():
    body = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, rng=0), nn.Dropout(0.3), nn.ReLU(), nn.Identity())
    model = nn.Sequential(nn.Identity(), nn.Residual(body, nn.Identity(), nn.Identity()), nn.Dropout(0.1),
                          nn.Flatten(), nn.Linear(32, 3, rng=1))
    x = np.random.default_rng(0).normal(size=(2, 2, 4, 4)).astype(np.float32)
    want = model.eval()(x)
    out = passes.remove_identities(model.train())
    assert [type(m).__name__ for m in out] == ["Residual", "Flatten", "Linear"]
    assert [type(m).__name__ for m in out[0].body] == ["Conv2d", "ReLU"]
    assert out[0].shortcut is None and out[0].activation is None
    assert not any(isinstance(m, passes.IDENTITY_LAYERS) for m in out.modules())
    np.testing.assert_array_equal(out(x), want)
    assert model.training and len(model) == 5  # input untouched


def test_prepare_removes_dropout_between_conv_and_bn_then_folds():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.Dropout(0.2), nn.BatchNorm2d(2), nn.ReLU())
    _set_stats(model[2], np.random.default_rng(2))
    assert isinstance(passes.fold_batch_norm(model)[2], nn.BatchNorm2d)  # the Dropout hides the pair
    prepared = passes.prepare_for_quantization(model)
    assert [type(m).__name__ for m in prepared] == ["Conv2d", "ReLU"]
    x = np.random.default_rng(0).normal(size=(2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(prepared(x), model.eval()(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------
# cross_layer_equalization
# ------------------------------------------------------------------------------------------

def _pairs(model):
    """(layer 1, layer 2) of every pair: Conv2d/Linear joined only by ReLU/ReLU6/Identity/Dropout."""
    out = []
    for seq in _sequentials(model):
        layers = list(seq)
        for i, a in enumerate(layers):
            if isinstance(a, AFFINE):
                for b in layers[i + 1:]:
                    if isinstance(b, AFFINE):
                        out.append((a, b))
                    if not isinstance(b, (nn.ReLU, nn.ReLU6, nn.Identity, nn.Dropout)):
                        break
    return out


def _input_ranges_by_loop(layer):
    """Eq. (2) for layer 2 element by element: max |w[o, c - g*C_g]| over the filters o of c's group."""
    w = layer.weight.value.astype(np.float64)
    groups = getattr(layer, "groups", 1)
    o_g, c_g = w.shape[0] // groups, w.shape[1]
    r = np.zeros(c_g * groups)
    for c in range(c_g * groups):
        g = c // c_g
        for o in range(g * o_g, (g + 1) * o_g):
            r[c] = max(r[c], np.abs(w[o, c - g * c_g]).max())
    return r


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_cle_equalizes_every_pair(name, models):
    model, _ = models[name]
    cle = _prepare_then_cle(model)
    pairs = _pairs(cle)
    assert pairs, f"{name}: no pair found"
    assert not any(isinstance(m, nn.ReLU6) for a, b in pairs for m in (a, b))
    for a, b in pairs:
        r1, r2 = passes.output_channel_ranges(a), passes.input_channel_ranges(b)
        np.testing.assert_array_equal(r2, _input_ranges_by_loop(b))
        # converged to tol (|s - 1| <= 1e-6, ranges off by s^2) plus one float32 rounding each
        np.testing.assert_allclose(r1, r2, rtol=5 * TOL, err_msg=f"{name}: {a} -> {b} not equalized")


def test_cle_improves_per_tensor_int8_sqnr_of_mobilenet_depthwise(models):
    """The reason for CLE: after folding, a depthwise layer's channels have very different ranges,
    and one per-tensor int8 scale serves the widest. Equalized, every depthwise layer's weight
    SQNR rises (measured +2.2 to +4.4 dB over the five layers, +15.1 dB in total)."""
    def sqnr_db(w):
        r = float(np.max(np.abs(w)))
        qp = refquant.choose_qparams(-r, r, "int8", symmetric=True)
        err = w.astype(np.float64) - refquant.fake_quantize(w, qp)
        return 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum(err ** 2))

    model, _ = models["mobilenet"]
    prepared = passes.prepare_for_quantization(model)
    cle = passes.cross_layer_equalization(prepared)
    before = {n: sqnr_db(m.weight.value) for n, m in prepared.named_modules()
              if isinstance(m, nn.Conv2d) and m.groups > 1}
    after = {n: sqnr_db(m.weight.value) for n, m in cle.named_modules() if n in before}
    assert len(before) == 5 and after.keys() == before.keys()
    gains = {n: after[n] - before[n] for n in before}
    assert min(gains.values()) >= 1.0, f"per-layer SQNR gains (dB): {gains}"
    assert sum(gains.values()) >= 10.0, f"total SQNR gain {sum(gains.values()):.2f} dB: {gains}"


def _chain(groups_mid=8):
    """Linear-free conv -> ReLU -> conv (grouped or depthwise) -> ReLU -> conv, with skewed channels."""
    rng = np.random.default_rng(5)
    m = nn.Sequential(nn.Conv2d(2, 8, 1, rng=0), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=groups_mid, rng=1),
                      nn.ReLU(), nn.Conv2d(8, 3, 1, rng=2))
    for layer in (m[0], m[2]):
        layer.weight.value *= rng.uniform(0.02, 20, (8,) + (1,) * 3).astype(np.float32)
    return m.eval()


@pytest.mark.parametrize("groups_mid", [8, 2, 1], ids=["depthwise", "grouped", "dense"])
def test_cle_chain_converges_and_is_exact(groups_mid):
    model = _chain(groups_mid)
    x = np.random.default_rng(1).normal(size=(3, 2, 5, 5)).astype(np.float32)
    exact = model.eval().copy().to(np.float64)(x.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cle = passes.cross_layer_equalization(model)
    for a, b in ((cle[0], cle[2]), (cle[2], cle[4])):
        np.testing.assert_allclose(passes.output_channel_ranges(a), passes.input_channel_ranges(b), rtol=5 * TOL)
    np.testing.assert_array_equal(passes.input_channel_ranges(cle[2]), _input_ranges_by_loop(cle[2]))
    got = cle(x)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(exact))))
    r_before, r_after = passes.output_channel_ranges(model[0]), passes.output_channel_ranges(cle[0])
    assert r_after.max() / r_after.min() < r_before.max() / r_before.min()


def test_cle_one_sweep_on_a_chain_warns_and_stays_exact():
    model = _chain()
    x = np.random.default_rng(1).normal(size=(2, 2, 4, 4)).astype(np.float32)
    with pytest.warns(errors.RefquantWarning, match="did not converge in 1 sweeps"):
        cle = passes.cross_layer_equalization(model, iterations=1)
    np.testing.assert_allclose(cle(x), model(x), rtol=1e-5, atol=1e-5 * float(np.max(np.abs(model(x)))))


def test_cle_relu6_replace_and_skip():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU6(), nn.Linear(4, 2, rng=1)).eval()
    model[0].weight.value *= np.array([[10.0], [0.1], [1.0], [3.0]], np.float32)
    x = np.random.default_rng(0).normal(0, 0.1, (5, 3)).astype(np.float32)  # pre-activations stay below 6
    skipped = passes.cross_layer_equalization(model, relu6="skip")
    assert isinstance(skipped[1], nn.ReLU6)
    assert _state_equal(skipped.state_dict(), model.state_dict())
    replaced = passes.cross_layer_equalization(model)
    assert isinstance(replaced[1], nn.ReLU) and isinstance(model[1], nn.ReLU6)
    np.testing.assert_allclose(passes.output_channel_ranges(replaced[0]), passes.input_channel_ranges(replaced[2]),
                               rtol=1e-6)
    np.testing.assert_allclose(replaced(x), model(x), rtol=1e-5, atol=1e-6)
    # above 6 the clip is gone: that is the documented price of "replace"
    big = np.full((1, 3), 50.0, np.float32)
    assert not np.allclose(replaced(big), model(big))


def test_cle_zero_channel_and_pool_between():
    model = nn.Sequential(nn.Linear(3, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    model[0].weight.value[1] = 0
    cle = passes.cross_layer_equalization(model)
    np.testing.assert_array_equal(cle[2].weight.value[:, 1], model[2].weight.value[:, 1])  # s = 1 there
    np.testing.assert_array_equal(passes.equalization_scales([4.0, 0.0, 1.0], [1.0, 2.0, 0.0]), [2.0, 1.0, 1.0])
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 1, rng=1))
    assert _state_equal(passes.cross_layer_equalization(pooled).state_dict(), pooled.state_dict())


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

ALL_PASSES = [passes.fold_batch_norm, passes.remove_identities, passes.prepare_for_quantization,
              passes.cross_layer_equalization]


@pytest.mark.parametrize("fn", ALL_PASSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [None, np.zeros(3), {"0.weight": np.zeros(3)}, nn.Linear, "model.npz"],
                         ids=["None", "array", "state_dict", "class", "path"])
def test_not_a_module(fn, bad):
    with pytest.raises(errors.QuantizationTypeError, match=r"^model must be a refquant\.nn Module"):
        fn(bad)


def test_bn_with_wrong_num_features():
    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.BatchNorm2d(5)))
    with pytest.raises(errors.ShapeError, match=r"BatchNorm2d '1\.1' has num_features=5 but the Conv2d '1\.0' "
                                                r"before it has 4 output channels"):
        passes.fold_batch_norm(model)
    with pytest.raises(errors.ShapeError, match="BatchNorm1d '1' follows Conv2d '0'"):
        passes.fold_batch_norm(nn.Sequential(nn.Conv2d(1, 4, 3, rng=0), nn.BatchNorm1d(4)))
    with pytest.raises(errors.ShapeError, match="BatchNorm2d '1' follows Linear '0'"):
        passes.prepare_for_quantization(nn.Sequential(nn.Linear(2, 4, rng=0), nn.BatchNorm2d(4)))


def test_cle_with_batch_norm_still_present(models):
    model, _ = models["mobilenet"]
    with pytest.raises(errors.QuantizationValueError,
                       match=r"BatchNorm2d '1' sits between Conv2d '0' and Conv2d '3'; fold it first"):
        passes.cross_layer_equalization(model)
    resnet, _ = models["resnet"]
    with pytest.raises(errors.QuantizationValueError, match=r"BatchNorm2d '3\.body\.1' sits between"):
        passes.cross_layer_equalization(resnet)


def test_cle_channel_mismatch_and_bad_options():
    with pytest.raises(errors.ShapeError, match="Linear '0' has 4 output channels but Linear '2' after it expects 3"):
        passes.cross_layer_equalization(nn.Sequential(nn.Linear(2, 4, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1)))
    model = nn.Sequential(nn.Linear(2, 2, rng=0))
    for kwargs, exc, word in [({"iterations": 0}, errors.QuantizationValueError, "iterations"),
                              ({"iterations": 2.0}, errors.QuantizationTypeError, "iterations"),
                              ({"tol": 0.0}, errors.QuantizationValueError, "tol"),
                              ({"tol": float("nan")}, errors.QuantizationValueError, "tol"),
                              ({"tol": "1e-6"}, errors.QuantizationTypeError, "tol"),
                              ({"relu6": "clip"}, errors.QuantizationValueError, "relu6"),
                              ({"relu6": None}, errors.QuantizationTypeError, "relu6")]:
        with pytest.raises(exc, match=rf"^{word} must"):
            passes.cross_layer_equalization(model, **kwargs)
    with pytest.raises(errors.QuantizationTypeError, match="^layer must be a refquant.nn Conv2d or Linear"):
        passes.output_channel_ranges(nn.ReLU())


def test_weight_transform_is_refused_where_the_pass_rewrites_the_weight():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1, rng=1))
    model[0].weight_transform = nn.straight_through(lambda w: np.round(w * 8) / 8)
    with pytest.raises(errors.UnsupportedError, match="fold_batch_norm: Linear '0' has a weight_transform"):
        passes.fold_batch_norm(model)
    model[3].weight_transform = model[0].weight_transform
    model[0].weight_transform = None
    folded = passes.fold_batch_norm(model)  # the Linear after the ReLU is not rewritten by folding
    assert folded[2].weight_transform is not None
    with pytest.raises(errors.UnsupportedError, match="cross_layer_equalization: Linear '2' has a weight_transform"):
        passes.cross_layer_equalization(folded)



def test_keep_names_replaces_folded_batch_norms_by_identities():
    from refquant import nn as _nn
    from refquant.models import load_reference_model
    from refquant.passes import fold_batch_norm, prepare_for_quantization
    cnn = load_reference_model("cnn")
    kept = fold_batch_norm(cnn, keep_names=True)
    assert len(kept) == len(cnn)
    assert [type(m).__name__ for m in kept][:3] == ["Conv2d", "Identity", "ReLU"]
    x = np.random.default_rng(0).uniform(size=(8, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(kept(x), fold_batch_norm(cnn)(x))  # the same folded weights
    prepared = prepare_for_quantization(cnn, keep_names=True)
    assert dict(prepared.named_modules())["11"].__class__ is _nn.Linear
