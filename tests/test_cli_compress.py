"""``refquant compare``'s compression rows (:mod:`refquant.cli.techniques_compress`): each runs on the
mlp, its JSON row is complete and valid, its bytes agree with the storage formulas worked by hand, and
what cannot run says why. One in-process run of every compression technique, a few small ones."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from test_cli_compare import _check  # the JSON Schema subset JSON_SCHEMA uses

from refquant import nn
from refquant.cli import main
from refquant.cli.results import JSON_SCHEMA, SCHEMA_VERSION
from refquant.cli.techniques import GROUPS, TECHNIQUES, NotApplicable, Setup, build, label, parse_techniques
from refquant.cli.techniques_compress import storage
from refquant.data import load_digits
from refquant.models import load_reference_model

FAST = ["--model", "mlp", "--repeats", "2", "--batch-sizes", "1", "--no-progress"]
COMPRESSION = ["int4-bias-corr", "int4-adaround", "int4-gptq", "prune-50", "prune-2of4", "thin-30", "prune-50-int8",
               "distill", "finetune-int8"]
MLP_LAYERS = {"1": (128, 64), "3": (64, 128), "5": (10, 64)}  # (O, K) of the mlp's Linear weights


def _compare(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["compare", *FAST, *argv])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every compression technique beside float, static-minmax and int4-weights, on the mlp: (table, JSON)."""
    path = tmp_path_factory.mktemp("compress") / "r.json"
    code, text = _compare("--techniques", "float,static-minmax,int4-weights,compression", "--json", str(path))
    assert code == 0, text
    doc = json.loads(path.read_text(encoding="utf-8"))
    return text, doc, {r["technique"]: r for r in doc["results"]}


def test_every_compression_row_runs_on_the_mlp_and_its_json_is_complete_and_valid(run):
    text, doc, by = run
    _check(doc, JSON_SCHEMA)
    assert doc["schema_version"] == SCHEMA_VERSION == 3
    assert [r["technique"] for r in doc["results"]] == ["float", "static-minmax", "int4-weights", *COMPRESSION]
    for name in COMPRESSION:
        r = by[name]
        assert r["status"] == "ok" and r["reason"] is None, r
        for key in ("top1", "latency_ms", "throughput", "model_bytes", "compression", "peak_ram_bytes",
                    "build_seconds"):
            assert r[key] is not None and r[key] > 0, (name, key, r[key])
        assert 0.9 <= r["top1"] <= 1 and isinstance(r["details"], dict), r
        assert r["compression"] == pytest.approx(doc["model"]["float_bytes"] / r["model_bytes"])
        row = next(ln for ln in text.splitlines() if ln.startswith(r["label"] + " "))
        integer = name in ("prune-50-int8", "finetune-int8")  # fully integer: LiteRT runs them, bit for bit
        assert re.search(r" \d+\.\d{4} +✓$" if integer else r" — +—$", row), row
        assert (r["runtime_bit_exact"] is True) if integer else ("integer" in r["runtime_reason"]), r
    assert by["float"]["details"] is None and by["static-minmax"]["details"] is None
    assert by["prune-50"]["label"] == "pruned 50 %, FT 1 epoch, bitmask-stored"


def _bitmask_bytes(o, k, zeros, value_bytes):  # eq. (2): the stored values, one bit per weight
    return round((1 - zeros) * o * k) * value_bytes + o * -(-k // 8)


def test_pruned_rows_count_their_weights_as_stored_sparse(run):
    _, doc, by = run
    for name, value_bytes, dense in (("prune-50", 4, doc["model"]["float_bytes"]),
                                     ("prune-50-int8", 1, by["static-minmax"]["model_bytes"])):
        d = by[name]["details"]
        assert d["storage"] == "bitmask" and d["dense_bytes"] == dense and by[name]["model_bytes"] == d["stored_bytes"]
        assert d["zero_fraction"] == pytest.approx(0.5)
        for layer in d["layers"]:
            o, k = MLP_LAYERS[layer["layer"]]
            assert layer["shape"] == [o, k] and layer["format"] == "bitmask"
            assert layer["dense_bytes"] == o * k * value_bytes
            assert layer["stored_bytes"] == _bitmask_bytes(o, k, layer["zeros"], value_bytes), layer
        assert d["stored_bytes"] == dense - sum(x["dense_bytes"] - x["stored_bytes"] for x in d["layers"])
    d = by["prune-2of4"]["details"]  # eq. (3): half the values, 2 bits for each kept one's position
    assert d["storage"] == "2:4" and all(x["format"] == "2:4" for x in d["layers"])
    want = [o * k // 2 * 4 + o * k // 2 * 2 // 8 for o, k in MLP_LAYERS.values()]
    assert [x["stored_bytes"] for x in d["layers"]] == want


def test_thinned_student_finetuned_and_int4_rows_report_what_they_did(run):
    _, _, by = run
    mlp_params = load_reference_model("mlp").num_parameters()
    thin = by["thin-30"]["details"]
    assert thin["thinned_layers"] == ["1", "3"] and "output" in thin["not_thinned"]["5"]
    assert thin["parameters_before"] == mlp_params > thin["parameters_after"]
    assert by["thin-30"]["model_bytes"] == 4 * thin["parameters_after"]  # float32, no buffers: really smaller
    kd = by["distill"]["details"]
    assert kd["teacher_parameters"] == mlp_params and kd["student_parameters"] < thin["parameters_after"]
    assert by["distill"]["model_bytes"] == 4 * kd["student_parameters"]
    ft = by["finetune-int8"]
    assert ft["model_bytes"] == by["static-minmax"]["model_bytes"] == ft["details"]["model_bytes"]
    assert ft["details"]["trainable_values"] == 128 + 64 + 10  # the biases
    assert 0 < ft["details"]["changed_bytes"] <= 4 * ft["details"]["trainable_values"]
    for name in ("int4-bias-corr", "int4-adaround", "int4-gptq"):  # the same grid as int4-weights: same bytes
        assert by[name]["model_bytes"] == by["int4-weights"]["model_bytes"]
    assert by["int4-bias-corr"]["details"]["bias_corrected_layers"] == ["1", "3", "5"]


def test_techniques_names_and_groups():
    assert parse_techniques("compression") == GROUPS["compression"] == COMPRESSION
    assert parse_techniques("all") == GROUPS["all"] and not set(GROUPS["all"]) & set(COMPRESSION)
    assert parse_techniques("all+compression") == list(TECHNIQUES) == GROUPS["all"] + COMPRESSION
    assert parse_techniques("distill, float ,int4-gptq") == ["float", "int4-gptq", "distill"]
    assert parse_techniques("compression,float") == ["float", *COMPRESSION]
    for name in COMPRESSION:
        assert parse_techniques(name) == [name]


def test_a_bad_name_lists_the_techniques_and_groups(capsys):
    assert main(["compare", *FAST, "--techniques", "float,prune-60"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refquant compare: error: --techniques") and "'prune-60'" in err and err.count("\n") == 1
    for word in (*COMPRESSION, "all+compression", "compression"):
        assert word in err, word


def test_without_training_rows_the_training_techniques_are_na_and_the_others_run(tmp_path):
    x, y = load_digits("test")
    np.savez(tmp_path / "plain.npz", x=x[:120], y=y[:120])
    code, text = _compare("--data", str(tmp_path / "plain.npz"), "--techniques",
                          "prune-50,prune-50-int8,distill,finetune-int8,int4-bias-corr")
    assert code == 0, text
    for name in ("prune-50", "prune-50-int8", "distill", "finetune-int8"):
        lab = label(name, Setup(None, "onnx", x, None, None))
        assert re.search(rf"^{re.escape(lab)} +n/a: needs labelled training rows .*x_val/y_val", text, re.M), text
    assert re.search(r"^int4 weights \+ bias correction +\d+\.\d\d%", text, re.M), text


def _tiny_setup(model, epochs=1, seed=0):
    x, y = load_digits("train")
    return Setup(model, "tflite_reference", x[:64], x[:96], y[:96], seed=seed, qat_epochs=epochs)


def test_a_model_with_nothing_to_thin_has_no_student_and_no_thinning():
    single = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0))  # its only layer is the output
    for name in ("distill", "thin-30"):
        with pytest.raises(NotApplicable, match="output channels can be removed"):
            build(name, _tiny_setup(single))
    assert label("distill", _tiny_setup(single, epochs=2)) == "distilled student (½ channels), 2 epochs"


def test_pruning_keeps_its_zeros_through_fine_tuning_and_the_seed_fixes_the_result():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0))
    w0 = model[1].weight.value.copy()
    pruned, _, extras = build("prune-50", _tiny_setup(model))
    w = pruned[1].weight.value
    assert np.count_nonzero(w) == 320 and extras.details["zero_fraction"] == 0.5
    assert np.all((w == 0) == (np.abs(w0) <= np.median(np.abs(w0))))  # the smaller half, still 0 after training
    again, _, _ = build("prune-50", _tiny_setup(model))
    other, _, _ = build("prune-50", _tiny_setup(model, seed=1))
    np.testing.assert_array_equal(again[1].weight.value, w)
    assert not np.array_equal(other[1].weight.value, w)  # another --seed, another batch order
    np.testing.assert_array_equal(model[1].weight.value, w0)  # the compared model is left as it was


def test_storage_by_hand():
    """A (2, 16) float32 weight, 12 of 32 values stored: bitmask 12·4 + 2·2 = 52 bytes < 128 dense; not 2:4."""
    model = nn.Sequential(nn.Linear(16, 2, rng=0))
    w = np.zeros((2, 16), np.float32)
    w[0, :8], w[1, :4] = 1.0, -2.0
    model[0].weight.value[...] = w
    info = storage(model, "bitmask")
    assert info["layers"] == [{"layer": "0", "shape": [2, 16], "zeros": 20 / 32, "format": "bitmask",
                               "dense_bytes": 128, "stored_bytes": 52}]
    assert info["dense_bytes"] == 128 + 8 and info["stored_bytes"] == 52 + 8  # the bias stays dense
    assert storage(model, "2:4")["layers"][0]["format"] == "dense"  # 4 non-zeros in a group of 4: not 2:4
