"""``refquant compare`` end to end: the table, the JSON document against its schema, the report, the
exit codes and the one-line errors. Small, fast runs: the mlp, a few techniques, few repeats."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from refquant.cli import main
from refquant.cli.inputs import PROFILE_ALIASES, resolve_profile
from refquant.cli.results import JSON_SCHEMA, SCHEMA_VERSION
from refquant.cli.techniques import TECHNIQUES, parse_techniques
from refquant.data import load_digits
from refquant.profiles import PROFILES

FAST = ["--model", "mlp", "--repeats", "2", "--batch-sizes", "1,4"]
COLUMNS = ["technique", "top-1", "Δ vs float (pts)", "latency ms", "inf/s (batch 4)", "model bytes", "compression",
           "peak RAM", "LiteRT ms", "LiteRT bit-exact"]  # the default profile's runtime: LiteRT (installed here)
FIGURES = ("accuracy_vs_bytes.png", "latency_vs_accuracy.png", "layer_sqnr.png", "calibration_ranges.png")


def _refquant(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "refquant", *argv], capture_output=True, text=True,
                          env=None if env is None else dict(os.environ, **env))


def _check(doc, schema, path="$"):
    """The subset of JSON Schema that JSON_SCHEMA uses: type, const, enum, required, properties, items, minimum
    (``required`` and ``properties`` apply to objects only, as in JSON Schema)."""
    kinds = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
             "null": type(None), "boolean": bool}
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
        ok = any(isinstance(doc, kinds[t]) and not (t in ("integer", "number") and isinstance(doc, bool))
                 for t in types)
        assert ok, f"{path}: expected {types}, got {doc!r}"
    if "const" in schema:
        assert doc == schema["const"], f"{path}: expected {schema['const']!r}, got {doc!r}"
    if "enum" in schema:
        assert doc in schema["enum"], f"{path}: expected one of {schema['enum']}, got {doc!r}"
    if "minimum" in schema and doc is not None:
        assert doc >= schema["minimum"], f"{path}: {doc} < {schema['minimum']}"
    for key in schema.get("required", ()) if isinstance(doc, dict) else ():
        assert key in doc, f"{path}: missing {key!r}"
    for key, sub in schema.get("properties", {}).items():
        if isinstance(doc, dict) and key in doc:
            _check(doc[key], sub, f"{path}.{key}")
    if "items" in schema and isinstance(doc, list):
        for i, item in enumerate(doc):
            _check(item, schema["items"], f"{path}[{i}]")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One run with the table, a JSON file and a report."""
    d = tmp_path_factory.mktemp("compare")
    res = _refquant("compare", *FAST, "--techniques", "float,dynamic,static-minmax,static-mse,qat,int4-weights",
                    "--json", str(d / "out.json"), "--report", str(d / "report"))
    return res, d


def test_exit_0_and_the_table_has_every_column_and_row(full_run):
    res, _ = full_run
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    head = next(ln for ln in lines if ln.startswith("technique"))
    for col in COLUMNS:
        assert col in head, f"column {col!r} missing from {head!r}"
    for label in ("float32", "dynamic int8", "static int8, per-channel, min-max", "static int8, per-channel, MSE",
                  "QAT int8, 1 epoch", "int4 weights (weight-only)"):
        row = next((ln for ln in lines if ln.startswith(label + " ")), None)
        assert row is not None and re.search(r"\d+\.\d\d%", row), f"no row for {label!r} in\n{res.stdout}"
        integer = label.startswith(("static", "QAT"))  # LiteRT runs these: its latency and ✓; the others "—"
        assert re.search(r" \d+\.\d{4} +✓$" if integer else r" — +—$", row), row
    assert "Traceback" not in res.stderr


def test_json_file_is_valid_against_its_schema(full_run):
    _, d = full_run
    doc = json.loads((d / "out.json").read_text(encoding="utf-8"))
    _check(doc, JSON_SCHEMA)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert [r["technique"] for r in doc["results"]] == ["float", "dynamic", "static-minmax", "static-mse", "qat",
                                                          "int4-weights"]
    by = {r["technique"]: r for r in doc["results"]}
    assert all(r["status"] == "ok" for r in doc["results"])
    assert by["float"]["compression"] == 1.0 and by["float"]["delta_points"] == 0.0
    assert by["float"]["top1"] == doc["model"]["float_top1"]
    assert by["int4-weights"]["model_bytes"] < by["static-minmax"]["model_bytes"] < by["float"]["model_bytes"]
    for r in doc["results"]:
        assert 0 <= r["top1"] <= 1 and r["latency_ms"] > 0 and r["throughput"] > 0 and r["peak_ram_bytes"] > 0
        assert r["delta_points"] == pytest.approx(100 * (r["top1"] - doc["model"]["float_top1"]))
        assert set(r["evaluation"]["throughput"]) == {"1", "4"}
    assert doc["batch_sizes"] == [1, 4] and doc["repeats"] == 2 and doc["profile"]["name"] == "tflite_xnnpack"
    assert doc["runtime"]["name"] == "LiteRT" and doc["runtime"]["available"] is True
    for name in ("static-minmax", "static-mse", "qat"):  # fully integer: exported and run by LiteRT (XNNPACK)
        r = by[name]
        assert r["runtime_bit_exact"] is True and r["runtime_reason"] is None, r
        assert r["runtime"]["mismatches"] == 0 and r["runtime"]["compared"] == 10 * doc["data"]["x"][0]
        assert r["runtime"]["delegated"] is True and r["runtime_latency_ms"] == r["runtime"]["latency"]["median_ms"] > 0
    for name in ("float", "dynamic", "int4-weights"):  # not fully integer: no runtime numbers, and why
        r = by[name]
        assert r["runtime_latency_ms"] is None and r["runtime_bit_exact"] is None and r["runtime"] is None
        assert "integer" in r["runtime_reason"], r["runtime_reason"]


def test_report_files_are_written_and_the_html_holds_the_plots(full_run):
    pytest.importorskip("matplotlib")
    _, d = full_run
    md = (d / "report" / "report.md").read_text(encoding="utf-8")
    page = (d / "report" / "report.html").read_text(encoding="utf-8")
    for name in FIGURES:
        png = d / "report" / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"(figures/{name})" in md
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(FIGURES)  # self-contained: every plot embedded
    for section in ("Results", "Per-layer SQNR", "Calibration ranges", "Weight sparsity"):
        assert f"<h2>{section}</h2>" in page and f"## {section}" in md
    for calibrator in ("minmax", "percentile", "entropy", "mse"):
        assert f"<td>{calibrator}</td>" in page
    assert "| tensor | static-minmax | static-mse | qat |" in md  # per-layer SQNR of every integer model
    assert "| LiteRT ms | LiteRT bit-exact |" in md and "<th>LiteRT bit-exact</th>" in page
    assert md.count(" | ✓ |") == 3 and " | ✗ |" not in md and "<td>✓</td>" in page  # the three integer rows
    assert "LiteRT ms, LiteRT bit-exact: LiteRT" in md and "bit for bit" in md
    assert "| layer | float32 | dynamic | static-minmax | static-mse | qat | int4-weights |" in md  # sparsity


def test_json_to_stdout_keeps_the_progress_on_stderr():
    res = _refquant("compare", *FAST, "--techniques", "float", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # nothing else on stdout
    assert doc["schema_version"] == SCHEMA_VERSION and doc["techniques"] == ["float"]
    assert "compare" in res.stderr  # the progress (tqdm or plain lines) went to stderr


def test_without_matplotlib_and_tqdm_the_report_says_how_to_get_plots(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['tqdm'] = None\n"
            "from refquant.cli import main\n"
            f"sys.exit(main({['compare', *FAST, '--techniques', 'float,static-minmax', '--report', str(tmp_path)]!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert 'pip install "refquant[plot]"' in md and "![" not in md
    assert "<img" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "figures").exists()
    assert re.search(r"^\[1/\d+\] float baseline$", res.stderr, re.M), res.stderr  # the plain progress lines


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_own_data_with_held_out_rows_runs_qat_and_without_them_skips_it(tmp_path, capsys):
    x, y = load_digits("train")
    xv, yv = load_digits("test")
    out = tmp_path / "r.json"
    held = _npz(tmp_path / "held.npz", x=x[:300], y=y[:300], x_val=xv[:100], y_val=yv[:100], x_calibration=x[:64])
    assert main(["compare", *FAST, "--no-progress", "--techniques", "float,qat", "--data", held,
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["data"]["x"] == [100, 1, 8, 8] and doc["data"]["x_calibration"] == [64, 1, 8, 8]
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"]
    plain = _npz(tmp_path / "plain.npz", x=x[:100], y=y[:100])
    assert main(["compare", *FAST, "--no-progress", "--techniques", "float,qat", "--data", plain,
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["data"]["x_calibration"] == [100, 1, 8, 8]
    qat = doc["results"][1]
    assert qat["status"] == "n/a" and "x_val" in qat["reason"] and qat["top1"] is None
    assert "QAT int8, 1 epoch" in capsys.readouterr().out


def test_a_technique_the_profile_cannot_run_is_na_not_a_failure(capsys):
    assert main(["compare", *FAST, "--no-progress", "--profile", "gemmlowp", "--techniques", "dynamic"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^dynamic int8 +n/a: quantize_dynamic: refquant does not model dynamic-range kernels for "
                     r"profile 'gemmlowp'$", out, re.M), out
    assert "bit-exact" not in out and "runtime columns" not in out  # gemmlowp: no runtime of its own here


@pytest.fixture
def bad_files(tmp_path):
    x, y = load_digits("test")
    return {
        "wrong_shape": _npz(tmp_path / "shape.npz", x=np.zeros((4, 3, 5, 5), np.float32), y=np.zeros(4, np.int64)),
        "labels": _npz(tmp_path / "labels.npz", x=x[:4], y=np.array([0, 1, 2, 10])),
        "no_y": _npz(tmp_path / "noy.npz", x=x[:4]),
        "x_val_only": _npz(tmp_path / "xval.npz", x=x[:4], y=y[:4], x_val=x[:4]),
        "not_npz": str((tmp_path / "text.npz").write_text("hello") and tmp_path / "text.npz"),
        "a_file": str((tmp_path / "file").write_text("") or tmp_path / "file"),
    }


USAGE_ERRORS = {  # argv -> words the one-line message must contain
    "unknown_technique": (["--techniques", "float,bogus"], ["--techniques", "'bogus'", "static-mse"]),
    "unknown_profile": (["--profile", "tensorrt"], ["--profile", "'tensorrt'", "tflite_reference"]),
    "onnx_path": (["--model", "model.onnx"], ["--model", "'model.onnx'", "ONNX", "no such file"]),
    "unknown_model": (["--model", "vgg"], ["--model", "'vgg'", "resnet"]),
    "missing_data": (["--data", "nowhere.npz"], ["--data", "'nowhere.npz'"]),
    "wrong_shape": (["--data", "{wrong_shape}"], ["--data", "x of shape (4, 3, 5, 5)"]),
    "labels": (["--data", "{labels}"], ["--data", "[0, 9]", "up to 10"]),
    "no_y": (["--data", "{no_y}"], ["--data", "'y'", "arrays present"]),
    "x_val_only": (["--data", "{x_val_only}"], ["--data", "y_val"]),
    "not_npz": (["--data", "{not_npz}"], ["--data", ".npz"]),
    "report_under_a_file": (["--report", "{a_file}/sub"], ["--report", "cannot create"]),
    "json_into_a_directory": (["--json", "."], ["--json", "'.'"]),
}


@pytest.mark.parametrize("case", USAGE_ERRORS)
def test_bad_input_is_one_line_and_exit_2(case, bad_files, capsys):
    argv, words = USAGE_ERRORS[case]
    argv = [a.format(**bad_files) for a in argv]
    assert main(["compare", *FAST, "--no-progress", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("refquant compare: error: "), err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"


@pytest.mark.parametrize("argv", [["--batch-sizes", "0"], ["--batch-sizes", "1,-4"], ["--batch-sizes", "x"],
                                  ["--repeats", "0"], ["--bogus"]])
def test_bad_option_values_exit_2_with_the_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: refquant compare" in err and err.strip().splitlines()[-1].startswith("refquant compare: error: ")


# ----------------------------------------------------------------------------------------- runtime columns

RUNTIME_CASES = {"onnxruntime": ("onnxruntime", "ORT", "onnx"), "tflite": ("tflite_xnnpack", "LiteRT", "tflite"),
                 "tflite-reference": ("tflite_reference", "LiteRT", "tflite")}


@pytest.mark.parametrize("requested", RUNTIME_CASES)
def test_runtime_columns_time_the_runtime_and_check_its_outputs_bit_for_bit(requested, tmp_path, capsys):
    """The static int8 rows, exported and run by the profile's runtime, equal refquant's outputs: ✓."""
    profile, short, fmt = RUNTIME_CASES[requested]
    out = tmp_path / "r.json"
    assert main(["compare", *FAST, "--no-progress", "--profile", requested, "--techniques",
                 "float,static-per-tensor,static-minmax", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    head = next(ln for ln in text.splitlines() if ln.startswith("technique"))
    assert head.endswith(f"{short} ms  {short} bit-exact"), head
    for label in ("static int8, per-tensor, min-max", "static int8, per-channel, min-max"):
        assert re.search(rf"^{re.escape(label)} .* \d+\.\d{{4}} +✓$", text, re.M), text
    assert re.search(r"^float32 .* — +—$", text, re.M), text
    assert f"{short} ms, {short} bit-exact: " in text and "pip install" not in text
    doc = json.loads(out.read_text(encoding="utf-8"))
    _check(doc, JSON_SCHEMA)
    assert doc["profile"]["name"] == profile and doc["runtime"]["available"] and doc["runtime"]["short"] == short
    by = {r["technique"]: r for r in doc["results"]}
    for name in ("static-per-tensor", "static-minmax"):
        r = by[name]
        assert r["runtime_bit_exact"] is True and r["runtime"]["mismatches"] == 0, r
        assert r["runtime"]["compared"] == 10 * doc["data"]["x"][0] and r["runtime"]["format"].startswith(fmt)
        assert r["runtime"]["file_bytes"] > 0 and r["runtime"]["latency"]["repeats"] == 2
    assert by["float"]["runtime_bit_exact"] is None and "float model" in by["float"]["runtime_reason"]


@pytest.mark.parametrize("profile,hidden,install", [("onnxruntime", "onnxruntime", "pip install onnxruntime onnx"),
                                                    ("tflite", "ai_edge_litert", "pip install ai-edge-litert")])
def test_without_the_runtime_its_columns_are_absent_and_the_footer_says_how_to_get_them(profile, hidden, install,
                                                                                        tmp_path):
    out = tmp_path / "r.json"
    code = (f"import sys; sys.modules[{hidden!r}] = None\n"
            "from refquant.cli import main\n"
            f"rc = main({['compare', *FAST, '--no-progress', '--profile', profile, '--techniques', 'float,static-minmax', '--json', str(out)]!r})\n"
            f"assert {hidden!r} not in sys.modules or sys.modules[{hidden!r}] is None\n"
            "sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    head = next(ln for ln in res.stdout.splitlines() if ln.startswith("technique"))
    assert head.endswith("peak RAM") and "bit-exact" not in res.stdout and "✓" not in res.stdout, res.stdout
    assert re.search(rf"^runtime columns: .* is not installed .*`{re.escape(install)}.*` adds its columns\.$",
                     res.stdout, re.M), res.stdout
    doc = json.loads(out.read_text(encoding="utf-8"))
    _check(doc, JSON_SCHEMA)
    assert doc["runtime"]["available"] is False and install in doc["runtime"]["note"]
    for r in doc["results"]:
        assert r["status"] == "ok" and r["runtime_latency_ms"] is None and r["runtime_bit_exact"] is None
        assert r["runtime"] is None and r["runtime_reason"] is None


def test_a_model_the_exporter_refuses_or_the_runtime_fails_on_is_a_dash_with_the_reason(monkeypatch, tmp_path,
                                                                                         capsys):
    from refquant.cli import runtime, techniques

    t = techniques.TECHNIQUES["dynamic"]  # claimed fully integer: the ONNX exporter refuses its dynamic_linear
    monkeypatch.setitem(techniques.TECHNIQUES, "dynamic", techniques.Technique(t.name, t.label, t.build, t.help,
                                                                               integer=True))
    out = tmp_path / "r.json"
    assert main(["compare", *FAST, "--no-progress", "--profile", "onnxruntime", "--techniques", "dynamic",
                 "--json", str(out)]) == 0
    assert re.search(r"^dynamic int8 .* — +—$", capsys.readouterr().out, re.M)
    r = json.loads(out.read_text(encoding="utf-8"))["results"][0]
    assert r["runtime_reason"].startswith("not exportable: ") and "dynamic_linear" in r["runtime_reason"], r

    def crash(*a, **k):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : bad node\nmore")
    monkeypatch.setattr(runtime, "measure", crash)
    assert main(["compare", *FAST, "--no-progress", "--profile", "onnxruntime", "--techniques", "static-minmax",
                 "--json", str(out)]) == 0  # reported, not a failed technique
    r = json.loads(out.read_text(encoding="utf-8"))["results"][0]
    assert r["status"] == "ok" and r["runtime_bit_exact"] is None
    assert r["runtime_reason"] == ("ONNX Runtime failed on the exported model: RuntimeError: [ONNXRuntimeError] : 1 : "
                                   "FAIL : bad node")


def test_outputs_that_differ_by_one_bit_are_a_cross(monkeypatch, tmp_path, capsys):
    from refquant.cli import runtime

    real = runtime._ort_runner

    def one_bit_off(path):
        run, details = real(path)

        def run_off(x):
            y = np.array(run(x), copy=True)
            y.view(np.uint32).reshape(-1)[0] ^= 1  # the last mantissa bit of one output
            return y
        return run_off, details
    monkeypatch.setattr(runtime, "_ort_runner", one_bit_off)
    out = tmp_path / "r.json"
    assert main(["compare", *FAST, "--no-progress", "--profile", "ort", "--techniques", "static-minmax",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^static int8, per-channel, min-max .* \d+\.\d{4} +✗$", text, re.M), text
    assert "Outputs differ for static-minmax" in text
    r = json.loads(out.read_text(encoding="utf-8"))["results"][0]
    assert r["runtime_bit_exact"] is False and r["runtime"]["mismatches"] == 1


def test_usage_error_from_the_console_has_no_traceback_unless_debug():
    res = _refquant("compare", "--techniques", "bogus")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    res = _refquant("compare", "--techniques", "bogus", "--debug")
    assert res.returncode == 2 and "Traceback" in res.stderr and "UsageError" in res.stderr


def test_a_failure_is_exit_1_one_line_and_a_failed_technique_keeps_the_others(monkeypatch, capsys):
    from refquant.cli import techniques
    from refquant.errors import CalibrationError

    def broken(setup):
        raise RuntimeError("disk on fire")

    def refused(setup):
        raise CalibrationError("calibration_data saw no finite value")

    monkeypatch.setitem(techniques.TECHNIQUES, "dynamic", techniques.Technique("dynamic", "dynamic int8", broken, ""))
    assert main(["compare", *FAST, "--no-progress", "--techniques", "dynamic"]) == 1
    out, err = capsys.readouterr()
    assert err == "refquant compare: RuntimeError: disk on fire (run again with --debug for the traceback)\n"
    assert main(["compare", *FAST, "--no-progress", "--techniques", "dynamic", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("refquant compare: RuntimeError: disk on fire\n")
    monkeypatch.setitem(techniques.TECHNIQUES, "dynamic", techniques.Technique("dynamic", "dynamic int8", refused, ""))
    assert main(["compare", *FAST, "--no-progress", "--techniques", "float,dynamic"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"^float32 +\d+\.\d\d%", out, re.M)
    assert re.search(r"^dynamic int8 +failed: calibration_data saw no finite value$", out, re.M)
    assert err.strip() == "refquant compare: 1 technique(s) failed: dynamic: calibration_data saw no finite value"


def test_profile_names_and_runtime_aliases():
    for name in PROFILES:
        assert resolve_profile(name) == name and resolve_profile(name.replace("_", "-")) == name
    for alias, name in PROFILE_ALIASES.items():
        assert name in PROFILES and resolve_profile(alias) == name
    assert resolve_profile("tflite") == "tflite_xnnpack" and resolve_profile("pytorch-fbgemm") == "pytorch_fbgemm"
    assert resolve_profile("ONNXRuntime") == "onnxruntime"


def test_techniques_are_listed_in_the_table_order():
    assert parse_techniques("all") == [n for n, t in TECHNIQUES.items() if t.group == "all"]  # the default set
    assert parse_techniques("all+compression") == list(TECHNIQUES)
    assert parse_techniques("int4-weights, float") == ["float", "int4-weights"]
    assert parse_techniques("qat,qat") == ["qat"]


def test_help_names_every_technique_the_data_keys_and_what_is_not_there_yet():
    res = _refquant("compare", "--help")
    assert res.returncode == 0
    for name in TECHNIQUES:
        assert f"\n  {name} " in res.stdout
    for words in ("x_val, y_val", "x_calibration", "import_float", "runtime columns:", "BUILTIN_REF",
                  "pip install ai-edge-litert", "exit codes", "tflite = tflite_xnnpack"):
        assert words in res.stdout, words
    top = _refquant("--help").stdout
    assert "compare" in top and "info" in top


def test_model_takes_a_float_onnx_file(tmp_path):
    """``--model FILE.onnx``: the file is read by import_float; the float row scores what the bundled
    model it was exported from scores, and an unsupported graph is a usage error naming the node."""
    pytest.importorskip("onnx")
    pytest.importorskip("torch")
    from support.onnx_float_export import bundled_float_onnx

    from refquant import models, nn

    path = tmp_path / "cnn.onnx"
    path.write_bytes(bundled_float_onnx("cnn"))
    res = _refquant("compare", "--model", str(path), "--techniques", "float,static-minmax", "--repeats", "2",
                    "--batch-sizes", "1", "--no-progress", "--json", str(tmp_path / "r.json"))
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    x, y = load_digits("test")
    want = float(np.mean(nn.predict(models.load_reference_model("cnn"), x).argmax(1) == y))
    rows = {r["technique"]: r for r in doc["results"]}
    assert rows["float"]["top1"] == pytest.approx(want)
    assert rows["static-minmax"]["status"] == "ok"
    import onnx
    from onnx import TensorProto, helper
    bad = helper.make_model(helper.make_graph(
        [helper.make_node("Erf", ["x"], ["y"], name="my_erf")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(bad, tmp_path / "bad.onnx")
    res = _refquant("compare", "--model", str(tmp_path / "bad.onnx"), "--no-progress")
    assert res.returncode == 2 and "my_erf" in res.stderr and "Erf" in res.stderr, res.stderr
