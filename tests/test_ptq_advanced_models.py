"""Advanced PTQ on whole models: GPTQ, AdaRound and bias correction return drop-in integer models
(the RTN model's grid, other codes or biases) that lower the error RTN leaves.

Oracles: the RTN model's own nodes (same scales, zero points, attributes), each layer's output
error computed here from the model's traced tensors (not from the methods' moments code path),
the float model's outputs, and, for analytical bias correction, Monte Carlo means of Gaussian
inputs through a BatchNorm whose statistics are the population's.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models, nn, ptq
from refquant.data import load_digits
from refquant.passes import prepare_for_quantization
from refquant.ptq import advanced as A
from refquant.ptq.trace import float_outputs, trace
from refquant.qmodel import QuantizedModel
from refquant.qmodel.nodes import dequantize_weight

threadpoolctl = pytest.importorskip("threadpoolctl")

X_CAL = load_digits("train")[0][:256]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def _weight_layers(qm):
    return [n for n in qm.nodes if n.op in ("linear", "conv2d")]


def _float_tensors(model, qm, x):
    prepared = prepare_for_quantization(model, keep_names=True)
    fuse = ("RELU", "RELU6") if qm.metadata.get("flow") == "weight_only" else ptq.recipe_for(qm.profile).fuse
    return prepared, float_outputs(prepared, trace(prepared, fuse=fuse), x)


def _pre_activation(node, x, weight, bias):
    """$W x + b$ of a node on its float input ``x``: ``(O, M)`` float64, M over samples and positions."""
    cols = A.layer_columns(node, x)  # (G, K, M)
    w = weight.reshape(cols.shape[0], -1, cols.shape[1]).astype(np.float64)
    y = np.concatenate([w[g] @ cols[g] for g in range(cols.shape[0])])
    return y + (0 if bias is None else np.asarray(bias, np.float64)[:, None])


def _input(qm, node, env):
    t = qm.tensors[node.inputs[0]]
    x = env[t.name]
    return (x.astype(np.float64) - t.zero_point) * float(np.float32(t.scale)) if t.is_integer else x


def _grouped_model():
    """Grouped, strided, depthwise and dilated convolutions (each group is a problem of its own)."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=rng), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2, rng=rng), nn.ReLU6(),
                          nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16, rng=rng), nn.ReLU(),
                          nn.GlobalAvgPool2d(), nn.Linear(16, 10, rng=rng))
    for layer in (model[0], model[2], model[4]):  # a trained layer's scale: outputs of order 1
        layer.weight.value *= 2.0
    return model


@pytest.mark.parametrize("method", ["gptq", "adaround"])
@pytest.mark.parametrize("name, group_size", [("cnn", None), ("resnet", 8), ("mlp", 16), ("grouped", 4)])
def test_method_keeps_the_grid_and_lowers_every_layers_error(method, name, group_size):
    model = _grouped_model() if name == "grouped" else models.load_reference_model(name)
    rtn = ptq.quantize_weights(model, bits=4, group_size=group_size)
    options = {"iters": 300} if method == "adaround" else {}
    qm = getattr(A, method)(rtn, model, X_CAL, **options)
    assert isinstance(qm, QuantizedModel) and qm.metadata["weight_rounding"] == method
    prepared, ref = _float_tensors(model, qm, X_CAL)
    layers = dict(prepared.named_modules())
    env = qm.trace(X_CAL)
    changed = 0
    for old, new in zip(_weight_layers(rtn), _weight_layers(qm), strict=True):
        assert (old.name, old.attrs) == (new.name, new.attrs)
        for key in ("weight_scale", "bias"):
            np.testing.assert_array_equal(old.params[key], new.params[key], err_msg=f"{new.name}: {key} changed")
        q = new.params["weight"]
        assert q.dtype == old.params["weight"].dtype and q.shape == old.params["weight"].shape
        assert q.min() >= -7 and q.max() <= 7, f"{new.name}: codes off the 4-bit grid"
        changed += int(np.any(q != old.params["weight"]))
        # the layer's output error on the inputs this model gives it: the method's objective
        layer = layers[new.name]
        x_hat = _input(qm, new, env)
        x_ref = ref[new.inputs[0]] if method == "adaround" else x_hat  # AdaRound targets W x, GPTQ W x_hat
        target = _pre_activation(new, x_ref, layer.weight.value, None)
        err_new = np.mean((_pre_activation(new, x_hat, dequantize_weight(new), None) - target) ** 2)
        err_rtn = np.mean((_pre_activation(new, x_hat, dequantize_weight(old), None) - target) ** 2)
        assert err_new < err_rtn, f"{new.name}: {method} error {err_new:.4g} is not below RTN's {err_rtn:.4g}"
    assert changed == len(_weight_layers(qm))


def test_rewritten_model_saves_and_runs_as_rtn_does(tmp_path):
    model = models.load_reference_model("cnn")
    qm = A.gptq(ptq.quantize_weights(model, bits=4, group_size=8), model, X_CAL)
    qm.save(tmp_path / "m.npz")
    back = QuantizedModel.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.run(X_CAL[:16]), qm.run(X_CAL[:16]))
    assert back.nbytes == qm.nbytes == ptq.quantize_weights(model, bits=4, group_size=8).nbytes


@pytest.mark.parametrize("name", ["mlp", "resnet"])
def test_empirical_bias_correction_zeroes_each_layers_mean_error(name):
    model = models.load_reference_model(name)
    rtn = ptq.quantize_weights(model, bits=3)
    qm = A.bias_correction(rtn, model, X_CAL)
    assert qm.metadata["bias_correction"] == "empirical"
    assert qm.metadata["bias_corrected_layers"] == [n.name for n in _weight_layers(qm)]
    prepared, ref = _float_tensors(model, qm, X_CAL)
    layers = dict(prepared.named_modules())
    env, env_rtn = qm.trace(X_CAL), rtn.trace(X_CAL)
    for node, old in zip(_weight_layers(qm), _weight_layers(rtn), strict=True):
        layer = layers[node.name]
        target = _pre_activation(node, ref[node.inputs[0]], layer.weight.value, layer.bias.value).mean(axis=1)
        got = _pre_activation(node, env[node.inputs[0]], dequantize_weight(node), node.params["bias"]).mean(axis=1)
        before = _pre_activation(old, env_rtn[old.inputs[0]], dequantize_weight(old), old.params["bias"]).mean(axis=1)
        np.testing.assert_allclose(got, target, atol=2e-6 * max(1.0, np.abs(target).max()),
                                   err_msg=f"{node.name}: mean output error is not 0 after correction")
        assert np.abs(before - target).max() > 100 * np.abs(got - target).max()
    if name == "mlp":  # the last layer has no activation: the model's logits are right on average
        mean_err = (qm.run(X_CAL) - model(X_CAL)).mean(axis=0)
        np.testing.assert_allclose(mean_err, 0, atol=1e-5)


def test_bias_correction_of_a_static_int8_model_lowers_its_int32_bias():
    model = models.load_reference_model("mlp")
    rtn = ptq.quantize_static(model, X_CAL, profile="tflite_reference")
    qm = A.bias_correction(rtn, model, X_CAL)
    for node, old in zip(_weight_layers(qm), _weight_layers(rtn), strict=True):
        assert node.params["bias"].dtype == np.int32
        np.testing.assert_array_equal(node.params["weight"], old.params["weight"])
    x_scale = qm.tensors[qm.node("5").inputs[0]].scale
    # the logits' mean error: RTN's vs corrected, on the calibration data
    err_rtn = np.abs((rtn.run(X_CAL) - model(X_CAL)).mean(axis=0)).max()
    err = np.abs((qm.run(X_CAL) - model(X_CAL)).mean(axis=0)).max()
    assert err < err_rtn / 2, (err, err_rtn, x_scale)


@pytest.mark.parametrize("profile, isa, qmin, qmax", [("onnxruntime", "avx2", -64, 64),
                                                      ("pytorch_fbgemm", "auto", -128, 127)])
def test_static_models_keep_their_tools_code_range(profile, isa, qmin, qmax):
    model = models.load_reference_model("mlp")
    rtn = ptq.quantize_static(model, X_CAL, profile=profile, isa=isa)
    for method, options in (("gptq", {}), ("adaround", {"iters": 100})):
        qm = getattr(A, method)(rtn, model, X_CAL, **options)
        for node, old in zip(_weight_layers(qm), _weight_layers(rtn), strict=True):
            q = node.params["weight"]
            assert q.dtype == np.int8 and qmin <= q.min() and q.max() <= qmax
            np.testing.assert_array_equal(node.params["bias"], old.params["bias"])
        assert qm.run(X_CAL[:4]).shape == (4, 10)


def test_quantize_weights_advanced_is_the_flow_then_the_method():
    model = models.load_reference_model("mlp")
    rtn = ptq.quantize_weights(model, bits=4, group_size=16)
    same = A.quantize_weights_advanced(model, bits=4, group_size=16, method="rtn")
    for a, b in zip(_weight_layers(rtn), _weight_layers(same), strict=True):
        np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    g = A.quantize_weights_advanced(model, X_CAL, bits=4, group_size=16, method="gptq", correct_bias="empirical",
                                    act_order=True)
    expected = A.bias_correction(A.gptq(rtn, model, X_CAL, act_order=True), model, X_CAL)
    for a, b in zip(_weight_layers(expected), _weight_layers(g), strict=True):
        np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
        np.testing.assert_array_equal(a.params["bias"], b.params["bias"])


# ------------------------------------------------------------------------------------------ analytical
def _bn_model(rng):
    """Linear(6, 8) → BatchNorm1d → ReLU → Linear(8, 3); the BatchNorm's running statistics are the
    population's for inputs $x \\sim \\mathcal{N}(0, I)$, so its output is exactly $\\mathcal{N}(\\beta, \\gamma^2)$."""
    model = nn.Sequential(nn.Linear(6, 8, rng=rng), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3, rng=rng))
    w, b = model[0].weight.value.astype(np.float64), model[0].bias.value.astype(np.float64)
    model[1].running_mean[...] = b
    model[1].running_var[...] = np.sum(w * w, axis=1) - model[1].eps
    model[1].weight.value[...] = rng.uniform(0.5, 2.0, 8)
    model[1].bias.value[...] = rng.uniform(-1.0, 1.0, 8)
    return model.eval()


def test_analytical_bias_correction_is_eps_times_the_expected_input():
    rng = np.random.default_rng(0)
    model = _bn_model(rng)
    rtn = ptq.quantize_weights(model, bits=2)
    qm = A.bias_correction(rtn, model, mode="analytical")
    assert qm.metadata["bias_corrected_layers"] == ["3"]  # the first layer's input is no BatchNorm's
    np.testing.assert_array_equal(qm.node("0").params["bias"], rtn.node("0").params["bias"])
    shift = rtn.node("3").params["bias"].astype(np.float64) - qm.node("3").params["bias"]
    eps = dequantize_weight(rtn.node("3")).astype(np.float64) - model[3].weight.value
    expected = A.clipped_normal_mean(model[1].bias.value, model[1].weight.value, 0.0)
    np.testing.assert_allclose(shift, eps @ expected, rtol=1e-5, atol=1e-6)
    # ... and E[x] is what the data gives: Monte Carlo through the float model
    x = rng.normal(size=(200_000, 6)).astype(np.float32)
    hidden = np.maximum(model[1](model[0](x)), 0).astype(np.float64)
    np.testing.assert_allclose(shift, eps @ hidden.mean(axis=0), atol=0.01 * np.abs(eps).sum(axis=1).max())


@pytest.mark.parametrize("name, corrected", [("cnn", ["3", "11"]),
                                             ("resnet", ["3.body.0", "3.body.3", "4.body.3", "5.body.3"]),
                                             ("mlp", [])])
def test_analytical_bias_correction_corrects_layers_fed_by_a_batchnorm(name, corrected):
    model = models.load_reference_model(name)
    rtn = ptq.quantize_weights(model, bits=4)
    qm = A.bias_correction(rtn, model, mode="analytical")
    assert qm.metadata["bias_corrected_layers"] == corrected
    for node, old in zip(_weight_layers(qm), _weight_layers(rtn), strict=True):
        same = np.array_equal(node.params["bias"], old.params["bias"])
        assert same == (node.name not in corrected), node.name
