"""Golden files (``refquant.testing.golden``, ``refquant golden``): round trips, the layout a C reader
sees, what the cases exercise, and every way a bad file is refused."""

from __future__ import annotations

import ast
import io
import json
import zipfile

import numpy as np
import pytest

import refquant
from refquant.cli import main
from refquant.errors import FormatVersionError, QuantizationTypeError, QuantizationValueError
from refquant.testing import FORMAT_VERSION, GOLDEN_OPS, MAGIC, load_golden, write_golden

ALL = [(name, profile) for name, op in GOLDEN_OPS.items() for profile in op.profiles]
REQUIRED = ("tflite.fully_connected", "tflite.conv2d", "tflite.depthwise_conv2d", "tflite.add", "tflite.quantize",
            "onnxruntime.qlinear_matmul", "onnxruntime.qlinear_conv", "onnxruntime.qlinear_add",
            "onnxruntime.quantize_linear", "pytorch.quantize_per_tensor", "pytorch.linear")


def test_the_registry_holds_the_face_ops_named_by_the_faces():
    assert set(REQUIRED) <= set(GOLDEN_OPS)
    for name, op in GOLDEN_OPS.items():
        face, fn = name.split(".")
        module = getattr(__import__(f"refquant.backends.{face}").backends, face)
        assert fn in module.__all__, name
        params = list(__import__("inspect").signature(getattr(module, fn)).parameters)
        assert params[:len(op.arguments)] == list(op.arguments), name  # the positional order the header records


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name, profile", ALL, ids=[f"{n}-{p}" for n, p in ALL])
def test_round_trip_and_verify(tmp_path, name, profile):
    path = tmp_path / "g.npz"
    written = write_golden(path, op=name, profile=profile, cases=3, seed=7)
    g = load_golden(path)
    h = g.header
    assert (h["magic"], h["format_version"], h["refquant_version"]) == (MAGIC, FORMAT_VERSION, refquant.__version__)
    assert (g.op, g.profile, g.seed, len(g)) == (name, profile, 7, 3)
    assert [c.kind for c in g] == ["random", "ties", "saturating"]
    assert h["call"]["arguments"] == list(GOLDEN_OPS[name].arguments)
    assert (h["isa"] is not None) == ("isa" in h["call"]["keywords"]) == GOLDEN_OPS[name].takes_isa()
    assert h["regenerate"] == (f"refquant golden --op {name} --profile {profile}"
                               + (f" --isa {h['isa']}" if h["isa"] else "") + " --cases 3 --seed 7 --out g.npz")
    for a, b in zip(written, g, strict=True):
        for role in ("inputs", "params", "expected"):
            da, db = getattr(a, role), getattr(b, role)
            assert da.keys() == db.keys()
            for k in da:
                assert da[k].dtype == db[k].dtype and da[k].shape == db[k].shape
                np.testing.assert_array_equal(da[k], db[k])
    assert g.verify() == sum(c.expected["y"].size for c in g)  # this refquant recomputes the same outputs


def test_same_seed_same_arrays_other_seed_other_arrays(tmp_path):
    a = write_golden(tmp_path / "a.npz", op="tflite.fully_connected", cases=4, seed=1)
    b = write_golden(tmp_path / "b.npz", op="tflite.fully_connected", cases=4, seed=1)
    c = write_golden(tmp_path / "c.npz", op="tflite.fully_connected", cases=4, seed=2)
    assert all(np.array_equal(x.expected["y"], y.expected["y"]) for x, y in zip(a, b, strict=True))
    assert not all(x.expected["y"].shape == y.expected["y"].shape and np.array_equal(x.expected["y"], y.expected["y"])
                   for x, y in zip(a, c, strict=True))


def test_the_kinds_do_what_they_say(tmp_path):
    """ties cases separate round-half-away (reference) from half-to-even (XNNPACK); saturating cases clamp."""
    ref = write_golden(tmp_path / "r.npz", op="tflite.quantize", profile="tflite_reference", cases=30, seed=0)
    xnn = write_golden(tmp_path / "x.npz", op="tflite.quantize", profile="tflite_xnnpack", cases=30, seed=0)
    differ = sum(int(np.sum(a.expected["y"] != b.expected["y"])) for a, b in zip(ref, xnn, strict=True)
                 if a.kind == "ties")
    assert differ >= 10, differ
    fc = write_golden(tmp_path / "f.npz", op="tflite.fully_connected", cases=30, seed=0)
    sat = np.concatenate([c.expected["y"].ravel() for c in fc if c.kind == "saturating"])
    assert np.mean((sat == -128) | (sat == 127)) > 0.5


def test_a_c_reader_sees_plain_little_endian_npy_members(tmp_path):
    """Read the file as a C program would: ZIP (stored) of .npy v1 members, parsed by hand, no NumPy loader."""
    path = tmp_path / "g.npz"
    g = write_golden(path, op="onnxruntime.qlinear_conv", cases=2, seed=0)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: i for i in z.infolist()}
        raw = {name[:-4]: z.read(name) for name in members}
    assert all(name.endswith(".npy") and i.compress_type == zipfile.ZIP_STORED for name, i in members.items())

    def parse(blob: bytes) -> np.ndarray:
        assert blob[:6] == b"\x93NUMPY" and blob[6] == 1  # format version 1.0
        n = int.from_bytes(blob[8:10], "little")
        meta = ast.literal_eval(blob[10:10 + n].decode("latin1"))
        assert meta["fortran_order"] is False and meta["descr"][0] in "<|"
        return np.frombuffer(blob[10 + n:], dtype=np.dtype(meta["descr"])).reshape(meta["shape"])

    header = json.loads(parse(raw["header"]).tobytes().decode("utf-8"))
    assert header == g.header
    keys = {"header"}
    for i, case in enumerate(header["cases"]):
        for spec in case["arrays"]:
            keys.add(spec["key"])
            assert spec["key"] == f"case{i}/{spec['role']}/{spec['name']}"
            a = parse(raw[spec["key"]])
            assert a.dtype.name == spec["dtype"] and list(a.shape) == spec["shape"]
            by_role = {"input": g[i].inputs, "param": g[i].params, "expected": g[i].expected}[spec["role"]]
            np.testing.assert_array_equal(a, by_role[spec["name"]])
    assert keys == set(raw)


def test_check_passes_the_right_kernel_and_diagnoses_a_wrong_one(tmp_path):
    g = write_golden(tmp_path / "g.npz", op="tflite.add", cases=6, seed=0)
    from refquant.backends import tflite

    assert g.check(lambda c: tflite.add(*c.arguments.values(), **c.attrs)) == sum(c.expected["y"].size for c in g)
    with pytest.raises(AssertionError) as exc:
        g.check(lambda c: (tflite.add(*c.arguments.values(), **c.attrs).astype(np.int16) + 1).clip(-128, 127)
                .astype(np.int8))
    msg = str(exc.value)
    assert msg.startswith("tflite.add (tflite_reference) case 0 (random, attrs {")
    assert "arrays are not bit-exact" in msg and "refquant golden --op tflite.add" in msg
    with pytest.raises(AssertionError, match="fn returned outputs"):
        g.check(lambda c: {"z": c.expected["y"]})


# --------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from refquant import nn, ptq
    from refquant.interop import onnx, tflite

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 5, rng=rng))
    x = rng.standard_normal((16, 1, 4, 4)).astype(np.float32)
    d = tmp_path_factory.mktemp("models")
    tflite.export(ptq.quantize_static(model, x, profile="tflite_reference"), str(d / "m.tflite"), input_shape=(1, 4, 4))
    onnx.export(ptq.quantize_static(model, x, profile="onnxruntime"), str(d / "m.onnx"), input_shape=(1, 4, 4))
    return d


@pytest.mark.parametrize("file, profile", [("m.tflite", "tflite_reference"), ("m.tflite", "tflite_xnnpack"),
                                           ("m.onnx", "onnxruntime")])
def test_model_file_round_trip(model_files, tmp_path, file, profile):
    g = write_golden(tmp_path / "g.npz", model=model_files / file, profile=profile, cases=3, seed=0, batch=2)
    assert (g.op, g.profile, g.header["model"]["file"]) == ("model", profile, file)
    qm_in = g.header["model"]["inputs"][0]
    for case in g:
        x = case.inputs[qm_in]
        assert x.shape == (2, 1, 4, 4) and x.dtype == np.float32 and np.all(np.isfinite(x))
    assert "--batch 2" in g.header["regenerate"] and f"--model {file}" in g.header["regenerate"]
    for i, entry in enumerate(g.header["cases"]):  # tensor names like "5:f" become "#<position>" in the key
        for j_role, spec in enumerate(s for s in entry["arrays"] if s["role"] == "expected"):
            last = spec["key"].rsplit("/", 1)[1]
            assert last == spec["name"] or (last == f"#{j_role}" and ":" in spec["name"]), spec
    assert g.verify(model=model_files / file) == 3 * 2 * 5
    with pytest.raises(QuantizationValueError, match="model must name the file"):
        g.verify()
    other = "m.onnx" if file == "m.tflite" else "m.tflite"
    with pytest.raises(QuantizationValueError):
        g.verify(model=model_files / other)


def test_model_input_shape_given_by_hand(model_files, tmp_path):
    g = write_golden(tmp_path / "g.npz", model=model_files / "m.tflite", cases=2, seed=0, input_shape=(1, 4, 4))
    assert g[0].inputs["input"].shape == (1, 1, 4, 4) and "--input-shape 1,4,4" in g.header["regenerate"]
    with pytest.raises(QuantizationValueError, match="input_shape must have at least one dimension"):
        write_golden(tmp_path / "g.npz", model=model_files / "m.tflite", input_shape=())
    with pytest.raises(QuantizationValueError, match="input_shape must be >= 1"):
        write_golden(tmp_path / "g.npz", model=model_files / "m.tflite", input_shape=(1, 0, 4))


def test_model_inputs_lie_in_the_input_range(model_files, tmp_path):
    from refquant.interop import tflite

    qm = tflite.import_quantized(str(model_files / "m.tflite"))
    q = next(n for n in qm.nodes if n.op == "quantize")
    qp = qm.qparams(q.output)
    lo, hi = float(qp.scale) * (qp.qmin - int(qp.zero_point)), float(qp.scale) * (qp.qmax - int(qp.zero_point))
    g = write_golden(tmp_path / "g.npz", model=model_files / "m.tflite", cases=3, seed=0, batch=64)
    x = g[0].inputs[qm.inputs[0]]  # a "random" case: uniform inside the range
    assert lo <= x.min() and x.max() <= hi and x.max() - x.min() > 0.8 * (hi - lo)


# --------------------------------------------------------------------------- bad files


def _rewrite(src, dst, *, header=None, drop=(), add=None, replace=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    if header is not None:
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    arrays.update(add or {})
    arrays.update(replace or {})
    np.savez(dst, **arrays)


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "g.npz"
    write_golden(path, op="tflite.fully_connected", cases=2, seed=0)
    return path


def _header(path):
    with np.load(path) as z:
        return json.loads(bytes(z["header"]).decode())


@pytest.mark.parametrize("change, match", [
    (lambda h: h.update(format_version=2), "format_version must be 1"),
    (lambda h: h.update(magic="refquant-model"), "magic must be 'refquant-golden'"),
    (lambda h: h.pop("cases"), "incomplete or malformed"),
    (lambda h: h["cases"][0]["arrays"][0].update(dtype="int16"), "the header says int16"),
    (lambda h: h["cases"][0]["arrays"][0].update(shape=[99]), "the header says int8 \\[99\\]"),
    (lambda h: h["cases"][1]["arrays"][0].update(key="case1/input/nope"), "missing from the file"),
])
def test_a_header_that_disagrees_is_refused(golden_file, tmp_path, change, match):
    h = _header(golden_file)
    change(h)
    _rewrite(golden_file, tmp_path / "bad.npz", header=h)
    with pytest.raises(FormatVersionError, match=match):
        load_golden(tmp_path / "bad.npz")


def test_arrays_that_disagree_are_refused(golden_file, tmp_path):
    bad = tmp_path / "bad.npz"
    _rewrite(golden_file, bad, add={"case9/input/x": np.int8([1])})
    with pytest.raises(FormatVersionError, match="not described by the header"):
        load_golden(bad)
    _rewrite(golden_file, bad, replace={"case0/input/x": np.zeros((1, 1), np.int16)})
    with pytest.raises(FormatVersionError, match="case0/input/x"):
        load_golden(bad)
    _rewrite(golden_file, bad, replace={"case0/input/x": np.array([1, "a"], dtype=object)})
    with pytest.raises(FormatVersionError, match="cannot be read"):  # a pickle: allow_pickle=False
        load_golden(bad)
    _rewrite(golden_file, bad, drop=("header",))
    with pytest.raises(FormatVersionError, match="no 'header' array"):
        load_golden(bad)
    _rewrite(golden_file, bad, replace={"header": np.frombuffer(b"{not json", np.uint8)})
    with pytest.raises(FormatVersionError, match="not readable JSON"):
        load_golden(bad)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_a_truncated_file_is_refused(golden_file, tmp_path, cut):
    blob = golden_file.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(blob[: int(len(blob) * cut)])
    with pytest.raises(FormatVersionError, match="truncated"):
        load_golden(bad)


def test_other_files_are_refused(tmp_path):
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(FormatVersionError, match="not a readable .npz"):
        load_golden(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(FormatVersionError, match="single .npy array"):
        load_golden(tmp_path / "a.npy")
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros(2))
    (tmp_path / "plain.npz").write_bytes(buf.getvalue())
    with pytest.raises(FormatVersionError, match="no 'header' array"):
        load_golden(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        load_golden(tmp_path / "missing.npz")
    with pytest.raises(QuantizationTypeError, match="path"):
        load_golden(3)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("kw, error, match", [
    (dict(op="tflite.bogus"), QuantizationValueError, "op must be one of"),
    (dict(op="tflite.add", profile="onnxruntime"), QuantizationValueError, "profile must be one of"),
    (dict(op="tflite.add", cases=0), QuantizationValueError, "cases"),
    (dict(op="tflite.add", cases=2.5), QuantizationTypeError, "cases"),
    (dict(op="tflite.add", seed=-1), QuantizationValueError, "seed"),
    (dict(op="tflite.add", isa="sse"), QuantizationValueError, "isa"),
    (dict(), QuantizationValueError, "exactly one of op and model"),
    (dict(op="tflite.add", model="m.tflite"), QuantizationValueError, "exactly one of op and model"),
    (dict(model="m.pb"), QuantizationValueError, "model must be a .tflite or .onnx"),
    (dict(model=3), QuantizationTypeError, "model must be"),
    (dict(model="missing.tflite"), FileNotFoundError, "model must name an existing file"),
])
def test_bad_write_arguments_are_refused(tmp_path, kw, error, match):
    with pytest.raises(error, match=match):
        write_golden(tmp_path / "g.npz", **kw)
    assert not (tmp_path / "g.npz").exists()


def test_write_to_a_directory_is_refused(tmp_path):
    with pytest.raises(QuantizationValueError, match="path"):
        write_golden(tmp_path, op="tflite.add")


# --------------------------------------------------------------------------- the command


def test_cli_writes_the_same_file_as_the_function(tmp_path, capsys):
    out = tmp_path / "fc.npz"
    assert main(["golden", "--op", "pytorch.linear", "--profile", "pytorch_qnnpack", "--cases", "4", "--seed", "3",
                 "--isa", "avx2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"wrote {out}: 4 cases of pytorch.linear under pytorch_qnnpack (seed 3, isa avx2)")
    assert "regenerate with: refquant golden --op pytorch.linear --profile pytorch_qnnpack --isa avx2 --cases 4 " \
           "--seed 3 --out fc.npz" in text
    g = load_golden(out)
    ref = write_golden(tmp_path / "ref.npz", op="pytorch.linear", profile="pytorch_qnnpack", cases=4, seed=3,
                       isa="avx2")
    assert all(np.array_equal(a.expected["y"], b.expected["y"]) for a, b in zip(g, ref, strict=True))


def test_cli_model_file(model_files, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["golden", "--model", str(model_files / "m.onnx"), "--cases", "2", "--batch", "3",
                 "--out", str(out)]) == 0
    assert "2 cases of model under onnxruntime" in capsys.readouterr().out
    assert load_golden(out)[0].inputs["input"].shape[0] == 3


def test_cli_list(capsys):
    assert main(["golden", "--list"]) == 0
    text = capsys.readouterr().out
    for name, op in GOLDEN_OPS.items():
        assert f"  {name}" in text and ", ".join(op.profiles) in text


@pytest.mark.parametrize("argv, message", [
    (["--op", "tflite.bogus", "--out", "x.npz"], "--op must be one of"),
    (["--op", "tflite.add", "--profile", "onnx", "--out", "x.npz"], "--profile must be one of"),
    (["--op", "tflite.add"], "--out FILE.npz is required"),
    ([], "give --op FACE.OP or --model FILE"),
    (["--model", "missing.tflite", "--out", "x.npz"], "--model: no such file"),
    (["--op", "tflite.add", "--out", "no/such/dir/x.npz"], "--out: directory"),
])
def test_cli_usage_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["golden", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--cases", "0"], ["--seed", "-1"], ["--input-shape", "1,x"],
                                  ["--op", "tflite.add", "--list"]])
def test_cli_bad_option_values_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["golden", *argv])
    assert exc.value.code == 2
    assert "usage: refquant golden" in capsys.readouterr().err
