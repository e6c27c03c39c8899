"""refquant.evaluate on models with known answers: accuracy, top-k ties, latency, throughput, memory,
per-layer error, the one-call record, and bad input (errors name the argument).

Timing tests use models that sleep a known time (``time.sleep`` sleeps at least that long), so
their bounds hold on a loaded machine; none asserts how fast refquant itself is.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from refquant import models, nn, ptq
from refquant.data import load_digits
from refquant.errors import (
    QuantizationTypeError,
    QuantizationValueError,
    RefquantError,
    ShapeError,
)
from refquant.evaluate import (
    Evaluation,
    Latency,
    Memory,
    evaluate,
    latency,
    layer_errors,
    memory,
    model_bytes,
    throughput,
    top_k_accuracy,
)
from refquant.ptq.debug import accuracy, layer_report
from refquant.ptq.flows import calibrate_model

X, Y = load_digits("test")
X_CAL = load_digits("train")[0][:256]
MLP = models.load_reference_model("mlp")


def constant(logits_row):
    """A model that gives the same logits to every sample."""
    row = np.asarray(logits_row, np.float32)
    return lambda x: np.tile(row, (len(x), 1))


# ---------------------------------------------------------------------------------------- accuracy

def test_a_model_that_always_says_0_scores_the_share_of_class_0():
    always0 = constant([1.0] + [0.0] * 9)
    assert top_k_accuracy(always0, X, Y) == np.mean(Y == 0)
    y = np.array([0, 0, 3, 0, 7, 1, 0, 2])
    assert top_k_accuracy(always0, np.zeros((8, 1, 8, 8), np.float32), y, batch_size=3) == 4 / 8


def test_top_k_by_hand_with_ties():
    """Eq. (1): ties go to the lower class index, as np.argmax and a stable argsort order them."""
    logits = np.array([[1.0, 3.0, 3.0, 0.0],     # classes in rank order: 1, 2, 0, 3
                       [2.0, 2.0, 2.0, 2.0],     # all tied: 0, 1, 2, 3
                       [0.0, 5.0, 1.0, 5.0]])    # 1, 3, 2, 0
    f = lambda x: logits  # noqa: E731
    x = np.zeros((3, 2), np.float32)
    cases = {  # (labels, k): hits by hand
        ((1, 0, 1), 1): 3, ((2, 1, 3), 1): 0, ((2, 1, 3), 2): 3, ((0, 3, 0), 3): 1, ((0, 3, 0), 4): 3,
        ((0, 2, 3), 2): 1, ((0, 2, 2), 2): 0, ((0, 2, 2), 3): 3,
    }
    for (labels, k), hits in cases.items():
        got = top_k_accuracy(f, x, labels, k=k)
        assert got == hits / 3, f"labels {labels}, k={k}: got {got}, want {hits}/3 (ties: lower index first)"
        order = np.argsort(-logits, axis=1, kind="stable")[:, :k]          # the oracle the docstring names
        assert got == np.mean([lab in row for lab, row in zip(labels, order)])


def test_top1_is_argmax_and_top_k_on_integer_logits():
    assert top_k_accuracy(MLP, X, Y) == accuracy(MLP, X, Y)
    codes = np.array([[-128, 5, 5], [127, 127, -3]], np.int8)   # integer logits compared as integers
    assert top_k_accuracy(lambda x: codes, np.zeros((2, 1)), [2, 1], k=1) == 0.0
    assert top_k_accuracy(lambda x: codes, np.zeros((2, 1)), [2, 1], k=2) == 1.0
    assert top_k_accuracy(MLP, X, Y, k=10) == 1.0


def test_accuracy_restores_the_float_model_s_training_mode():
    m = models.load_reference_model("cnn")
    m.train()
    acc = top_k_accuracy(m, X, Y)
    assert all(layer.training for layer in m.modules()), "the model's mode must be given back"
    assert acc == accuracy(m.copy().eval(), X, Y), "evaluation mode: BatchNorm's running statistics"


# ---------------------------------------------------------------------------------------- timing

class SlowFirstCall:
    """Sleeps ``first`` seconds on its first call, ``each`` on every call."""

    def __init__(self, first=0.2, each=0.0):
        self.first, self.each, self.calls = first, each, 0

    def __call__(self, x):
        self.calls += 1
        time.sleep(self.each + (self.first if self.calls == 1 else 0))
        return np.zeros((len(x), 2), np.float32)


def test_latency_times_the_first_call_apart():
    model = SlowFirstCall(first=0.2)
    lat = latency(model, X, repeats=20, warmup=2)
    assert model.calls == 1 + 2 + 20
    assert lat.first_call_ms >= 200, lat
    assert lat.median_ms < 20 and lat.p99_ms < 200, f"the first call leaked into the statistics: {lat}"
    assert lat.repeats == 20 and lat.median_ms <= lat.p90_ms <= lat.p99_ms


def test_latency_of_a_model_with_a_known_time():
    lat = latency(SlowFirstCall(first=0.0, each=0.005), X[:3], repeats=10, warmup=0)
    assert lat.median_ms >= 5 and lat.first_call_ms >= 5


def test_latency_runs_batch_1_on_the_samples_in_turn():
    seen = []
    latency(lambda x: seen.append(x.copy()), X[:4], repeats=6, warmup=1)
    assert all(s.shape == (1, 1, 8, 8) for s in seen)
    np.testing.assert_array_equal(np.concatenate(seen), X[np.arange(8) % 4])


def test_throughput_per_batch_size():
    rates = throughput(MLP, X, batch_sizes=(1, 8, 500), min_seconds=0.05)
    assert list(rates) == [1, 8, 500] and all(isinstance(r, float) and r > 0 for r in rates.values())
    sizes = []
    slow = lambda x: sizes.append(len(x)) or time.sleep(0.01)  # noqa: E731 - 10 ms a call, whatever the batch
    rates = throughput(slow, X[:5], batch_sizes=[4, 12], min_seconds=0.05)
    assert set(sizes) == {4, 12}, "a batch larger than x repeats x"
    for b, r in rates.items():
        assert 0 < r <= b / 0.01, f"batch {b}: {r} inferences/s from calls of >= 10 ms"
    assert rates[12] > rates[4]


# ---------------------------------------------------------------------------------------- memory

def test_model_bytes_of_a_float_model_by_hand():
    m = nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(0)), nn.BatchNorm1d(3), nn.ReLU(),
                      nn.Linear(3, 2, bias=False, rng=np.random.default_rng(1)))
    # Linear 4x3 + bias 3; BatchNorm weight, bias, running mean, running variance 4x3; Linear 3x2; float32
    assert model_bytes(m) == 4 * ((12 + 3) + 4 * 3 + 6)
    mem = memory(m, np.ones((5, 4), np.float32))
    assert mem.model_bytes == model_bytes(m)
    assert mem.loaded_bytes == mem.model_bytes + 4 * ((12 + 3) + 2 * 3 + 6), "plus one gradient per parameter"


def test_model_bytes_of_quantized_models():
    q8 = ptq.quantize_static(MLP, X_CAL, profile="tflite_reference")
    w8, w4 = ptq.quantize_weights(MLP, bits=8), ptq.quantize_weights(MLP, bits=4)
    assert model_bytes(q8) == q8.nbytes and model_bytes(w4) == w4.nbytes
    assert model_bytes(w4) < model_bytes(w8) < model_bytes(MLP)
    weights = sum(p.value.size for name, p in MLP.named_parameters() if name.endswith("weight"))
    assert model_bytes(w8) - model_bytes(w4) == weights - sum((n.params["weight"].size + 1) // 2 for n in w4
                                                              if "weight" in n.params), "int4: two codes a byte"
    mem = memory(w4, X[:4])
    assert mem.model_bytes == w4.nbytes
    assert mem.loaded_bytes >= mem.model_bytes + weights // 2, "loaded int4 codes take a byte each, plus caches"


def test_peak_python_bytes_grows_with_the_batch():
    q8 = ptq.quantize_static(MLP, X_CAL, profile="tflite_reference")
    for model in (MLP, q8):
        small, large = memory(model, X[:1]), memory(model, X)
        assert 0 < small.peak_python_bytes < large.peak_python_bytes
        assert large.peak_python_bytes >= X.nbytes // 4, "at least the int8 input codes of the whole batch"
        assert large.peak_rss_bytes is None or large.peak_rss_bytes > large.loaded_bytes


def test_memory_keeps_a_running_tracemalloc():
    import tracemalloc
    tracemalloc.start()
    try:
        memory(MLP, X[:8])
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------- layers

@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layer_errors_equal_layer_report(name):
    m = models.load_reference_model(name)
    cal = calibrate_model(m, X_CAL, profile="tflite_reference")
    qm = cal.lower()
    rows = layer_errors(qm, m, X[:64])
    assert rows == layer_report(cal, qm, X[:64]) and len(rows) >= 4
    assert rows[0]["tensor"] == "input:q" and rows[0]["max_error_lsb"] <= 0.5


def test_layer_errors_of_a_model_without_integer_tensors_is_empty():
    assert layer_errors(ptq.quantize_weights(MLP, bits=4), MLP, X[:8]) == []


def test_layer_errors_refuse_another_float_model():
    qm = ptq.quantize_static(MLP, X_CAL, profile="tflite_reference")
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 5, rng=np.random.default_rng(0)))
    with pytest.raises(ShapeError, match="float model"):
        layer_errors(qm, other, X[:4])


# ---------------------------------------------------------------------------------------- one record

def test_evaluate_returns_one_plain_record():
    qm = ptq.quantize_static(MLP, X_CAL, profile="tflite_reference")
    ev = evaluate(qm, X, Y, float_model=MLP, batch_sizes=(1, 64), repeats=5, warmup=1, top_k=(1, 3, 5))
    assert isinstance(ev, Evaluation) and ev.name == "static (tflite_reference)"
    assert ev.top1 == top_k_accuracy(qm, X, Y) and ev.top5 == top_k_accuracy(qm, X, Y, k=5)
    assert ev.top_k == {1: ev.top1, 3: top_k_accuracy(qm, X, Y, k=3), 5: ev.top5}
    assert isinstance(ev.latency, Latency) and ev.latency.repeats == 5
    assert list(ev.throughput) == [1, 64] and isinstance(ev.memory, Memory)
    assert ev.memory.model_bytes == qm.nbytes and ev.layers == layer_errors(qm, MLP, X[:256])
    d = json.loads(json.dumps(ev.as_dict()))
    assert d["latency"]["repeats"] == 5 and d["memory"]["model_bytes"] == qm.nbytes and d["layers"][0]["op"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.top1 = 1.0


def test_evaluate_a_float_model():
    ev = evaluate(MLP, X, Y, name="mlp float", float_model=MLP, batch_sizes=4, repeats=3, top_k=(1, 11))
    assert ev.name == "mlp float" and ev.layers is None and ev.top5 is None
    assert ev.top_k == {1: accuracy(MLP, X, Y)}, "k beyond the 10 classes is skipped"


def test_records_check_their_fields():
    with pytest.raises(QuantizationValueError, match="p90_ms"):
        Latency(1.0, 2.0, 1.0, 3.0, 5)
    with pytest.raises(QuantizationValueError, match="model_bytes"):
        Memory(-1, 0, 0, None)
    lat, mem = Latency(1.0, 1.0, 1.0, 1.0, 1), Memory(1, 1, 1, None)
    with pytest.raises(QuantizationValueError, match="top1"):
        Evaluation("m", 1.5, None, lat, {1: 1.0}, mem)
    with pytest.raises(QuantizationTypeError, match="throughput"):
        Evaluation("m", 0.5, None, lat, [], mem)


# ---------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, name", [
    (lambda: top_k_accuracy(MLP, X, Y, k=0), "k"),
    (lambda: top_k_accuracy(MLP, X, Y, k=11), "k"),
    (lambda: top_k_accuracy(MLP, X, Y, batch_size=0), "batch_size"),
    (lambda: top_k_accuracy(MLP, X, Y[:-1]), "y"),
    (lambda: top_k_accuracy(MLP, X, Y.astype(np.float32)), "y"),
    (lambda: top_k_accuracy(MLP, X, Y + 10), "y"),
    (lambda: top_k_accuracy(MLP, X[:0], Y[:0]), "x"),
    (lambda: top_k_accuracy("mlp", X, Y), "model"),
    (lambda: top_k_accuracy(lambda x: None, X, Y), "model"),
    (lambda: top_k_accuracy(lambda x: np.zeros(len(x)), X, Y), "model"),
    (lambda: top_k_accuracy(MLP, X[:, :, :4], Y), "x"),
    (lambda: latency(MLP, X, repeats=0), "repeats"),
    (lambda: latency(MLP, X, warmup=-1), "warmup"),
    (lambda: latency(MLP, X, repeats=2 ** 40), "repeats"),
    (lambda: throughput(MLP, X, batch_sizes=(0, 4)), "batch_sizes"),
    (lambda: throughput(MLP, X, batch_sizes=(4, 4)), "batch_sizes"),
    (lambda: throughput(MLP, X, batch_sizes=()), "batch_sizes"),
    (lambda: throughput(MLP, X, batch_sizes=2 ** 40), "batch_sizes"),
    (lambda: throughput(MLP, X, min_seconds=0), "min_seconds"),
    (lambda: model_bytes(lambda x: x), "model"),
    (lambda: memory(lambda x: x, X), "model"),
    (lambda: memory(MLP, np.full((2, 1, 8, 8), np.nan, np.float32)), "x"),
    (lambda: layer_errors(MLP, MLP, X), "qmodel"),
    (lambda: layer_errors(ptq.quantize_weights(MLP), "mlp", X), "float_model"),
    (lambda: evaluate(MLP, X, Y, top_k=(0,)), "top_k"),
    (lambda: evaluate(MLP, X, Y, name=3), "name"),
    (lambda: evaluate(MLP, X, Y, float_model=3), "float_model"),
    (lambda: evaluate(lambda x: x, X, Y), "model"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(RefquantError) as err:
        call()
    assert name in str(err.value), f"message should name {name!r}: {err.value}"
