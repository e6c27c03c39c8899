"""refquant.finetune: straight-through gradients through the integer graph against PyTorch autograd,
the fine-tuned model stays a valid integer model with the same graph, exact changed bytes, the
accuracy regained on shifted digits, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models, nn, ptq
from refquant.data import load_digits
from refquant.errors import (QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError,
                             UnsupportedError)
from refquant.finetune import finetune
from refquant.finetune.ste import GraphBackward, real_value
from refquant.finetune.trainable import Trainable, param_changes
from refquant.qmodel import QuantizedModel
from refquant.qmodel.nodes import dequantize_weight

X, Y = load_digits("train")
XV, YV = load_digits("val")


def shift(x):
    """The device's camera: a lower-contrast, brighter image (x' = 0.6 x + 0.3)."""
    return (0.6 * x + 0.3).astype(np.float32)


_CACHE: dict = {}


def _qm(name="cnn", profile="tflite_reference") -> QuantizedModel:
    if (name, profile) not in _CACHE:
        _CACHE[name, profile] = ptq.quantize_static(models.load_reference_model(name), X[:128], profile=profile)
    return _CACHE[name, profile]


# --------------------------------------------------------------------------- eq. (1) vs PyTorch


def _torch_grads(qm, x, y):
    """PyTorch autograd of the same STE: every node's float op + activation + fake-quantize (whose
    backward is PyTorch's STE mask), each node fed the integer trace's *values* while the gradient
    flows through the torch graph (``value + (t - t.detach())``)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    env = qm.trace(x)
    real = {k: torch.tensor(real_value(qm.tensors[k], v)) for k, v in env.items()}
    chain, leaves = {}, {}

    def forced(name):
        return real[name] + (chain[name] - chain[name].detach()) if name in chain else real[name]

    for n in qm.nodes:
        t = qm.tensors[n.output]
        if n.op == "quantize":
            continue  # the graph input: no gradient needed below the first layer
        xs = [forced(i) for i in n.inputs]
        act = n.attrs.get("activation")
        if n.op == "dequantize":
            chain[n.output] = xs[0]
            continue
        if n.op in ("linear", "conv2d"):
            w = torch.tensor(dequantize_weight(n), requires_grad=True)
            b = torch.tensor((n.params["bias"].astype(np.float64) * (qm.tensors[n.inputs[0]].scale * n.params[
                "weight_scale"].astype(np.float64)) if n.params["bias"].dtype.kind == "i" else n.params["bias"])
                .astype(np.float32), requires_grad=True)
            leaves[n.name] = (w, b)
            if n.op == "linear":
                a = F.linear(xs[0].reshape(-1, w.shape[1]), w, b)
            else:
                top, left, bottom, right = n.attrs["padding"]
                a = F.conv2d(F.pad(xs[0], (left, right, top, bottom)), w, b, stride=tuple(n.attrs["stride"]),
                             dilation=tuple(n.attrs["dilation"]), groups=n.attrs["groups"])
            # the integer accumulator (with an int32 bias) is a multiple of S_x S_w: round away float32
            # noise (it decides ReLU's mask where the sum is exactly 0); value only, gradient unchanged
            unit = qm.tensors[n.inputs[0]].scale * n.params["weight_scale"].astype(np.float64)
            unit = unit.reshape((-1,) + (1,) * (a.ndim - 2))
            bb = b.detach().numpy().astype(np.float64).reshape(unit.shape) if n.params["bias"].dtype.kind == "f" else 0
            exact = np.rint((a.detach().numpy() - bb) / unit) * unit + bb
            a = a + (torch.tensor(exact.astype(np.float32)) - a).detach()
        elif n.op == "add":
            a = xs[0] + xs[1]
        elif n.op == "max_pool2d":
            a = F.max_pool2d(xs[0], tuple(n.attrs["kernel"]), tuple(n.attrs["stride"]))
        elif n.op == "global_average_pool":
            a = xs[0].mean(dim=(2, 3))
        elif n.op == "flatten":
            a = xs[0].reshape(xs[0].shape[0], -1)
        else:
            raise AssertionError(f"oracle has no {n.op}")
        a = {None: a, "RELU": F.relu(a), "RELU6": F.hardtanh(a, 0.0, 6.0)}[act] if n.op != "clamp" else a
        if t.is_integer:
            info = np.iinfo(np.dtype(t.dtype))
            a = torch.fake_quantize_per_tensor_affine(a, t.scale, t.zero_point, int(info.min), int(info.max))
        chain[n.output] = a
    out = qm.outputs[0]
    F.cross_entropy(forced(out), torch.tensor(y)).backward()
    return {k: {"weight": w.grad.numpy(), "bias": b.grad.numpy()} for k, (w, b) in leaves.items()}


@pytest.mark.parametrize("name,profile", [("cnn", "tflite_reference"), ("resnet", "tflite_reference"),
                                          ("mobilenet", "tflite_reference"), ("mlp", "onnxruntime"),
                                          ("mlp", "pytorch_fbgemm")])
def test_ste_gradients_match_pytorch_autograd(name, profile):
    qm = _qm(name, profile)
    x, y = shift(X[:24]), Y[:24]
    layers = [n.name for n in qm.nodes if n.op in ("linear", "conv2d")]
    env = qm.trace(x)
    out = qm.outputs[0]
    loss = nn.CrossEntropyLoss()
    loss(real_value(qm.tensors[out], env[out]), y)
    ours = GraphBackward(qm, layers).run(qm, env, {out: loss.backward()})
    ref = _torch_grads(qm, x, y)
    assert sorted(ours) == sorted(ref)
    for k in layers:
        for p in ("weight", "bias"):
            a, b = ours[k][p], ref[k][p]
            assert a.shape == b.shape and a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max(),
                                       err_msg=f"{name}/{profile} node {k} {p}: eq. (1) disagrees with autograd")


def test_saturated_outputs_pass_no_gradient():
    """A linear layer driven far past its calibrated range: rows whose codes clamp get zero gradient."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=np.random.default_rng(0)))
    qm = ptq.quantize_static(model, X[:64], profile="tflite_reference")
    x = np.concatenate([X[:8], 4 * X[8:16]]).astype(np.float32)
    x = np.clip(x, 0, 1)  # inside the input's range; the second half saturates the output
    env = qm.trace(x)
    out, lin = qm.outputs[0], qm.node("1")
    loss = nn.CrossEntropyLoss()
    loss(real_value(qm.tensors[out], env[out]), Y[:16])
    g = loss.backward()
    grads = GraphBackward(qm, ["1"]).run(qm, env, {out: g})
    t = qm.tensors[lin.output]
    a = x.reshape(16, -1) @ dequantize_weight(lin).T.astype(np.float64) + lin.params["bias"] * (
        qm.tensors[lin.inputs[0]].scale * lin.params["weight_scale"].astype(np.float64))
    code = np.rint(a / t.scale) + t.zero_point
    keep = (code >= -128) & (code <= 127)
    assert 0 < (~keep).sum(), "the test needs saturated outputs"
    np.testing.assert_allclose(grads["1"]["bias"], (g * keep).sum(axis=0), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- the flow

@pytest.fixture(scope="module")
def tuned():
    """The cnn fine-tuned on shifted digits in each mode (one short epoch each, shared by the tests;
    measured val top-1 0.22 -> 0.76 / 0.86 / 0.91)."""
    qm = _qm()
    snapshot = [{k: v.copy() for k, v in n.params.items()} for n in qm.nodes]
    runs = {}
    for update, lr in (("bias", 3e-3), ("last", 3e-2), ("scales", 2e-2)):
        runs[update] = finetune(qm, shift(X[:400]), Y[:400], update=update, epochs=1, lr=lr,
                                eval_data=(shift(XV), YV))
    return qm, snapshot, runs


def test_finetune_regains_accuracy_on_shifted_digits(tuned):
    _, _, runs = tuned
    for update, (_, r) in runs.items():
        assert r.accuracy_before < 0.3, "the shift must hurt (measured 0.22)"
        assert r.accuracy_after > r.accuracy_before + 0.4, f"{update}: {r.accuracy_before} -> {r.accuracy_after}"
        assert len(r.loss) == len(r.train_accuracy) == 1 and r.seconds > 0


def test_same_graph_new_params_and_the_input_model_untouched(tuned):
    qm, snapshot, runs = tuned
    allowed = {"bias": lambda n, k: k == "bias", "last": lambda n, k: n == "11" and k in ("weight", "bias"),
               "scales": lambda n, k: k in ("weight_scale", "bias")}
    for update, (q2, r) in runs.items():
        assert isinstance(q2, QuantizedModel) and q2 is not qm and q2.profile == qm.profile
        assert q2.tensors == qm.tensors and q2.inputs == qm.inputs and q2.outputs == qm.outputs
        for a, b in zip(qm.nodes, q2.nodes):
            assert (a.name, a.op, a.inputs, a.output, a.attrs) == (b.name, b.op, b.inputs, b.output, b.attrs)
            assert {k: (v.dtype, v.shape) for k, v in a.params.items()} == \
                {k: (v.dtype, v.shape) for k, v in b.params.items()}
        changed = {tuple(k.split("/")) for k in r.changes}
        assert changed and all(allowed[update](n, k) for n, k in changed), (update, sorted(changed))
        assert q2.nbytes == qm.nbytes == r.model_bytes
        assert q2.metadata["finetune"]["update"] == [update]
        for v in q2.trace(shift(X[:4])).items():  # integer-only run: every integer tensor holds codes
            assert qm.tensors[v[0]].is_integer == (v[1].dtype.kind == "i"), v[0]
    for n, before in zip(qm.nodes, snapshot):
        for k, v in before.items():
            np.testing.assert_array_equal(n.params[k], v, err_msg=f"finetune modified the input model's {n.name}/{k}")


def test_changed_bytes_are_exact(tuned):
    qm, _, runs = tuned
    for update, (q2, r) in runs.items():
        values = nbytes = 0
        for a, b in zip(qm.nodes, q2.nodes):
            for k in a.params:
                values += int((a.params[k] != b.params[k]).sum())
                nbytes += int((a.params[k].view(np.uint8) != b.params[k].view(np.uint8)).sum())
        assert (r.changed_values, r.changed_bytes) == (values, nbytes), update
        assert r.changed_bytes <= 4 * r.changed_values


def test_saved_model_runs_the_same(tuned, tmp_path):
    q2, _ = tuned[2]["scales"]
    q2.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(QuantizedModel.load(tmp_path / "m.npz").run(shift(XV[:32])), q2.run(shift(XV[:32])))


def test_requantized_parameters_follow_the_layer_scales(tuned):
    qm, _, runs = tuned
    # bias: the new int32 bias is the trained real bias in units of S_x S_w, as TFLite's converter rounds it
    for n, m in zip(qm.nodes, runs["scales"][0].nodes):
        if "bias" in n.params:
            sx = qm.tensors[n.inputs[0]].scale
            old = n.params["bias"] * (sx * n.params["weight_scale"].astype(np.float64))
            new = m.params["bias"] * (sx * m.params["weight_scale"].astype(np.float64))
            np.testing.assert_allclose(new, old, atol=0.5 * sx * m.params["weight_scale"].max() * 1.001,
                                       err_msg="scales mode must keep the bias' real value")
            assert np.all(m.params["weight_scale"] > 0)
            np.testing.assert_array_equal(m.params["weight"], n.params["weight"])
    last = runs["last"][0].node("11")
    assert last.params["weight"].min() >= -127 and last.params["weight"].max() <= 127  # TFLite's narrow range
    np.testing.assert_array_equal(last.params["weight_scale"], qm.node("11").params["weight_scale"])


def test_a_step_below_half_a_code_changes_nothing():
    _, r = finetune(_qm(), shift(X[:64]), Y[:64], update="last", epochs=1, lr=1e-9, optimizer="sgd")
    assert r.changes == {} and r.changed_bytes == 0 and r.accuracy_after == r.accuracy_before
    assert r.evaluated_on == "training data"


def test_master_copies_accumulate_steps_smaller_than_a_code():
    """Each step below half a code; several together move the codes (why the masters exist)."""
    qm = _qm()
    t = Trainable(qm, ("bias",))
    L = t.layers["11"]
    lsb = qm.tensors["10"].scale * L.scale0.astype(np.float64)
    for step in range(3):
        L.bias.value += 0.2 * lsb
        moved = t.model().node("11").params["bias"].astype(np.int64) - qm.node("11").params["bias"]
        assert np.all(moved == (1 if step == 2 else 0)), (step, moved)  # 0.2, 0.4 LSB round away; 0.6 does not


@pytest.mark.parametrize("profile", ["onnxruntime", "pytorch_fbgemm"])
def test_other_profiles(profile):
    qm = _qm("mlp", profile)
    q2, r = finetune(qm, shift(X[:300]), Y[:300], update=("bias", "scales"), epochs=2, lr=3e-3)
    assert r.accuracy_after > r.accuracy_before and r.changed_bytes > 0
    bias = q2.node("1").params["bias"]
    assert bias.dtype == qm.node("1").params["bias"].dtype  # int32 (ONNX Runtime) or float32 (PyTorch)


# --------------------------------------------------------------------------- bad input


def test_a_model_that_was_not_quantized():
    with pytest.raises(QuantizationTypeError, match="fine-tuning a model that was not quantized.*got Sequential"):
        finetune(models.load_reference_model("cnn"), X[:8], Y[:8])


@pytest.mark.parametrize("update,err,msg", [("all", QuantizationValueError, "update must be one of"),
                                            (("bias", "bias"), QuantizationValueError, "each mode once"),
                                            ((), QuantizationTypeError, "update must be one of"),
                                            (3, QuantizationTypeError, "update must be one of")])
def test_unknown_update(update, err, msg):
    with pytest.raises(err, match=msg):
        finetune(_qm(), X[:8], Y[:8], update=update)


@pytest.mark.parametrize("lr", [0, -1e-3, float("nan"), float("inf")])
def test_lr_must_be_positive(lr):
    with pytest.raises(QuantizationValueError, match="lr must be finite and > 0"):
        finetune(_qm(), X[:8], Y[:8], lr=lr)


def test_bad_data_and_arguments():
    qm = _qm()
    with pytest.raises(QuantizationValueError, match="epochs must be an integer >= 1"):
        finetune(qm, X[:8], Y[:8], epochs=0)
    with pytest.raises(QuantizationValueError, match="batch_size must be an integer >= 1"):
        finetune(qm, X[:8], Y[:8], batch_size=0)
    with pytest.raises(ShapeError, match=r"training y must have shape \(8,\)"):
        finetune(qm, X[:8], Y[:7])
    with pytest.raises(QuantizationTypeError, match="training y must be integer class labels"):
        finetune(qm, X[:8], Y[:8].astype(np.float32))
    with pytest.raises(ShapeError, match="at least one example"):
        finetune(qm, X[:0], Y[:0])
    with pytest.raises(QuantizationValueError, match="training x must be finite"):
        finetune(qm, np.full_like(X[:8], np.nan), Y[:8])
    with pytest.raises(QuantizationTypeError, match="eval_data must be a pair"):
        finetune(qm, X[:8], Y[:8], eval_data=X[:8])
    with pytest.raises(QuantizationValueError, match="optimizer must be one of"):
        finetune(qm, X[:8], Y[:8], optimizer="rmsprop")
    with pytest.raises(QuantizationValueError, match=r"eval_data y must hold class labels in \[0, 9\]"):
        finetune(qm, X[:8], Y[:8], eval_data=(XV[:4], np.array([0, 1, 2, 12])))
    with pytest.raises(QuantizationValueError, match=r"trainable must name linear / conv2d nodes .* got '6'"):
        GraphBackward(qm, ["6"])
    with pytest.raises(QuantizationValueError, match="after must have before's graph"):
        param_changes(qm, _qm("mlp", "onnxruntime"))


def test_divergence_names_lr():
    with pytest.raises(TrainingDivergedError, match=r"try a smaller lr \(lr=1e\+300\)"):
        finetune(_qm(), X[:32], Y[:32], lr=1e300)


def test_unsupported_models_are_refused_by_node():
    qd = ptq.quantize_dynamic(models.load_reference_model("mlp"), profile="tflite_reference")
    with pytest.raises(UnsupportedError, match=r"node '1' \(dynamic_linear\)"):
        finetune(qd, X[:8], Y[:8])
    conv_only = nn.Sequential(nn.Conv2d(1, 10, 8, rng=np.random.default_rng(0)), nn.Flatten())
    qc = ptq.quantize_static(conv_only, X[:32], profile="tflite_reference")
    with pytest.raises(UnsupportedError, match="update='last' needs a linear node"):
        finetune(qc, X[:8], Y[:8], update="last")
