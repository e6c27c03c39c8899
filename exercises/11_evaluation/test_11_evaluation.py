"""Tests for exercise 11. DO NOT EDIT: edit evaluation.py, then run ``python -m exercises 11``.

First values you can check by hand, then your functions against ``refquant.evaluate``: top-k
accuracy on random logits full of ties, the stored bytes of real weight-only models, and the
per-layer rows of ``layer_errors`` for a static int8 MLP.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import ptq
from refquant.data import load_digits
from refquant.evaluate import layer_errors, model_bytes, top_k_accuracy
from refquant.models import load_reference_model

ex = load_exercise(__file__, "evaluation.py")


def test_top_k_hits_by_hand():
    logits = np.array([[1.0, 3.0, 3.0, 0.0],      # rank order: 1, 2, 0, 3
                       [0.0, 5.0, 1.0, 5.0]])     # rank order: 1, 3, 2, 0
    got = ex.top_k_hits(logits, np.array([1, 3]), 1)
    assert np.asarray(got).dtype == np.bool_ and np.asarray(got).shape == (2,), "return a bool array of shape (N,)"
    np.testing.assert_array_equal(got, [True, False], err_msg="tied with class 1, class 3 comes second")
    np.testing.assert_array_equal(ex.top_k_hits(logits, np.array([2, 3]), 2), [True, True])
    np.testing.assert_array_equal(ex.top_k_hits(logits, np.array([0, 2]), 2), [False, False],
                                  err_msg="count the strictly larger logits AND the tied ones with a lower index")
    codes = np.array([[-128, 7, 7]], np.int8)
    np.testing.assert_array_equal(ex.top_k_hits(codes, np.array([2]), 1), [False],
                                  err_msg="integer logits: compare as integers (no overflow in a difference)")


def test_top_k_hits_match_refquant_on_ties():
    rng = np.random.default_rng(11)
    for _ in range(50):
        n, c = rng.integers(1, 30), rng.integers(1, 12)
        logits = rng.integers(0, 3, (n, c)).astype(np.float32)     # three values: ties everywhere
        labels = rng.integers(0, c, n)
        k = int(rng.integers(1, c + 1))
        want = top_k_accuracy(lambda x, z=logits: z, np.zeros((n, 1), np.float32), labels, k=k)
        got = float(np.mean(ex.top_k_hits(logits, labels, k)))
        assert got == want, f"k={k}, logits\n{logits}\nlabels {labels}: got accuracy {got}, refquant {want}"


def test_latency_summary_by_hand():
    first, median, p90, p99 = ex.latency_summary([200.0, 9.0, 2.0, 3.0, 4.0, 5.0], warmup=1)
    assert first == 200.0, "the first call is reported apart"
    assert median == 3.5, "the samples are [2, 3, 4, 5]: the first call and the warm-up are not among them"
    assert (p90, p99) == pytest.approx((4.7, 4.97)), "linear interpolation, as np.percentile"


def _layers(model):
    ws = [n.params["weight"] for n in model if "weight" in n.params]
    bs = [n.params.get("bias") for n in model if "weight" in n.params]
    return ws, bs


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("bits", [4, 8])
def test_weight_only_nbytes_match_the_stored_model(name, bits):
    qm = ptq.quantize_weights(load_reference_model(name), bits=bits)
    ws, bs = _layers(qm)
    got = ex.weight_only_nbytes(ws, bits, bs)
    assert got == model_bytes(qm), (f"{name}, {bits}-bit: got {got}, refquant stores {model_bytes(qm)} bytes; "
                                    f"int4 packs two codes a byte per layer, (n + 1) // 2")


def test_tensor_error_by_hand():
    sqnr, lsb = ex.tensor_error(np.array([0.25, 0.5, -0.75]), np.array([1, 2, -3], np.int8), 0.25, 0)
    assert sqnr == float("inf") and lsb == pytest.approx(0.0, abs=1e-12), "no error: infinite SQNR"
    sqnr, lsb = ex.tensor_error(np.array([1.0, -1.0]), np.array([12, 8], np.int8), 0.5, 10)
    assert lsb == pytest.approx(0.0)
    sqnr, lsb = ex.tensor_error(np.array([1.0, 1.0]), np.array([1, 1], np.int8), 0.5, 0)
    assert lsb == pytest.approx(1.0) and sqnr == pytest.approx(10 * np.log10(4)), "deq = 0.5: error 0.5 = 1 LSB"


def test_tensor_error_matches_layer_errors():
    from refquant.passes import prepare_for_quantization
    from refquant.ptq.trace import float_outputs, trace
    x = load_digits("test")[0][:64]
    mlp = load_reference_model("mlp")
    qm = ptq.quantize_static(mlp, load_digits("train")[0][:256], profile="tflite_reference")
    prepared = prepare_for_quantization(mlp, keep_names=True)
    reference = float_outputs(prepared, trace(prepared), x)
    codes = qm.trace(x)
    for row in layer_errors(qm, mlp, x):
        t = qm.tensors[row["tensor"]]
        sqnr, lsb = ex.tensor_error(reference[row["tensor"].split(":")[0]], codes[row["tensor"]], t.scale,
                                    t.zero_point)
        assert sqnr == pytest.approx(row["sqnr_db"], rel=1e-9) and lsb == pytest.approx(row["max_error_lsb"],
                                                                                         rel=1e-9), (
            f"tensor {row['tensor']!r}: got ({sqnr}, {lsb}), refquant ({row['sqnr_db']}, {row['max_error_lsb']}); "
            f"dequantize in float64 before subtracting")
