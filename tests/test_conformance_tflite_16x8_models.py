"""Model-level conformance of the TFLite face with the TFLite converter's 16x8 models, operator by operator.

The fixtures (``tests/fixtures/tflite/<name>_16x8.tflite``, made by ``tests/fixtures/make_tflite_fixtures.py
--mode 16x8`` with TensorFlow 2.21: the Keras twins of refquant's four bundled models, the representative dataset
of the first 512 ``load_digits("train")`` images, ``Optimize.DEFAULT``,
``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``, float32 input and output; and
``cnn_16x8_int16io.tflite``, the cnn with int16 input and output) are TFLite's 16x8 mode as its converter writes
it: int16 activations with zero point 0, per-channel int8 weights, int64 bias. ``converter_16x8.json`` holds
their SHA-256 and operator tables. No TensorFlow here.

Each fixture runs on LiteRT under each resolver (``ref``, ``builtin``, ``xnnpack``) on :data:`N_IMAGES` digits
test images, keeping every tensor; then every operator, in order, is fed LiteRT's own input tensors through the
matching :mod:`refquant.backends.tflite` function with the tensors' own parameters and the resolver's kernel
(:data:`KERNEL`), and the result must equal LiteRT's output tensor bit for bit (shape, dtype, then values; float32
by bits). The int32 shape arithmetic of Keras' Flatten (SHAPE, STRIDED_SLICE, PACK), RESHAPE and PAD are the
obvious NumPy operations. An operator the faces cannot run (no face, a refused dtype) fails the test with its
index, name and tensor types; nothing is skipped.

The same walk runs on the int8 fixtures of ``test_conformance_tflite_converter.py``, which proves the walk itself:
there every operator runs (int8 ADD on the optimized kernel included) but for the documented refusals of
:data:`INT8_REFUSALS`.

XNNPACK takes no operator of the 16x8 fixtures (measured: no DELEGATE node, with or without
``experimental_preserve_all_tensors``), so under ``xnnpack`` every operator runs on the builtin optimized kernel,
as ``kernel="xnnpack"`` says; it takes the int8 fixtures.

Rerun: ``pytest tests/test_conformance_tflite_16x8_models.py -p no:cacheprovider -q``
Regenerate the fixtures: ``python tests/fixtures/make_tflite_fixtures.py --mode 16x8`` in a venv with
tensorflow-cpu (the int8 ones: without ``--mode``).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from support.tflite_graph import TfliteGraph, TflOp, read_graph, run_graph  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.errors import UnsupportedError  # noqa: E402

pytestmark = [pytest.mark.conformance,
              pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")]

FIXTURES = Path(__file__).parent / "fixtures" / "tflite"
MAGIC_16X8, MAGIC_INT8, FORMAT_VERSION = "refquant.tflite_converter_fixtures_16x8", \
    "refquant.tflite_converter_fixtures", 1
REGENERATE = "regenerate with `python tests/fixtures/make_tflite_fixtures.py --mode 16x8` in a venv with tensorflow-cpu"
FIXTURES_16X8 = ("mlp_16x8", "cnn_16x8", "resnet_16x8", "mobilenet_16x8", "cnn_16x8_int16io")
MODELS_INT8 = ("mlp", "cnn", "resnet", "mobilenet")
#: LiteRT resolver → the face's ``kernel``.
KERNEL = {"ref": "reference", "builtin": "optimized", "xnnpack": "xnnpack"}
N_IMAGES = 359
X_TEST = np.ascontiguousarray(load_digits("test")[0][:N_IMAGES].transpose(0, 2, 3, 1))  # (32, 8, 8, 1) NHWC

#: What the converter wrote (measured, TF 2.21): ``{fixture: {(operator, tensor types): count}}``.
EXPECTED_OPERATORS = {
    "mlp_16x8": {("QUANTIZE", "FLOAT32 -> INT16"): 1, ("SHAPE", "INT16 -> INT32"): 1,
                 ("STRIDED_SLICE", "INT32, INT32, INT32, INT32 -> INT32"): 1, ("PACK", "INT32, INT32 -> INT32"): 1,
                 ("RESHAPE", "INT16, INT32 -> INT16"): 1, ("FULLY_CONNECTED", "INT16, INT8, INT64 -> INT16"): 3,
                 ("DEQUANTIZE", "INT16 -> FLOAT32"): 1},
    "cnn_16x8": {("QUANTIZE", "FLOAT32 -> INT16"): 1, ("CONV_2D", "INT16, INT8, INT64 -> INT16"): 3,
                 ("MAX_POOL_2D", "INT16 -> INT16"): 1, ("MEAN", "INT16, INT32 -> INT16"): 1,
                 ("FULLY_CONNECTED", "INT16, INT8, INT64 -> INT16"): 1, ("DEQUANTIZE", "INT16 -> FLOAT32"): 1},
    "resnet_16x8": {("QUANTIZE", "FLOAT32 -> INT16"): 1, ("CONV_2D", "INT16, INT8, INT64 -> INT16"): 8,
                    ("ADD", "INT16, INT16 -> INT16"): 3, ("PAD", "INT16, INT32 -> INT16"): 1,
                    ("MEAN", "INT16, INT32 -> INT16"): 1, ("FULLY_CONNECTED", "INT16, INT8, INT64 -> INT16"): 1,
                    ("DEQUANTIZE", "INT16 -> FLOAT32"): 1},
    "mobilenet_16x8": {("QUANTIZE", "FLOAT32 -> INT16"): 1, ("CONV_2D", "INT16, INT8, INT64 -> INT16"): 11,
                       ("DEPTHWISE_CONV_2D", "INT16, INT8, INT64 -> INT16"): 5, ("PAD", "INT16, INT32 -> INT16"): 1,
                       ("ADD", "INT16, INT16 -> INT16"): 2, ("MEAN", "INT16, INT32 -> INT16"): 1,
                       ("FULLY_CONNECTED", "INT16, INT8, INT64 -> INT16"): 1, ("DEQUANTIZE", "INT16 -> FLOAT32"): 1},
    "cnn_16x8_int16io": {("CONV_2D", "INT16, INT8, INT64 -> INT16"): 3, ("MAX_POOL_2D", "INT16 -> INT16"): 1,
                         ("MEAN", "INT16, INT32 -> INT16"): 1, ("FULLY_CONNECTED", "INT16, INT8, INT64 -> INT16"): 1},
}


# ----------------------------------------------------------------------------------------- the fixtures


@functools.cache
def _index(file: str, magic: str) -> dict:
    index = json.loads((FIXTURES / file).read_text())
    assert index.get("magic") == magic and index.get("format_version") == FORMAT_VERSION, \
        f"{FIXTURES / file} is not format {FORMAT_VERSION} of {magic}; {REGENERATE}"
    return index


@functools.cache
def _graph(name: str) -> TfliteGraph:
    """A fixture, its SHA-256 checked against its index: ``<model>_16x8...`` in converter_16x8.json, an int8
    model in converter.json."""
    if name in FIXTURES_16X8:
        entry = _index("converter_16x8.json", MAGIC_16X8)["fixtures"][name]
    else:
        entry = _index("converter.json", MAGIC_INT8)["models"][name]
    content = (FIXTURES / entry["file"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"], f"{entry['file']} changed; {REGENERATE}"
    return read_graph(content)


def _model_input(g: TfliteGraph) -> np.ndarray:
    """The test images as the graph takes them: float32, or (int16 input) quantized with the input's
    parameters by the reference QUANTIZE."""
    t = g.tensors[g.inputs[0]]
    if t.dtype == np.float32:
        return X_TEST
    return tflite.quantize(X_TEST, t.scale[0], int(t.zero_point[0]), dtype=np.dtype(t.dtype).name)


@functools.cache
def _litert(name: str, resolver: str) -> dict:
    """``{tensor index: array}``: every non-constant tensor of LiteRT's run (NHWC, as LiteRT holds them)."""
    g = _graph(name)
    values, delegated = run_graph(g.content, [_model_input(g)], resolver, return_delegated=True)
    alone = run_graph(g.content, [_model_input(g)], resolver, every_tensor=False)
    assert _bits(alone[g.outputs[0]]).tobytes() == _bits(values[g.outputs[0]]).tobytes(), \
        f"{name}/{resolver}: keeping every tensor changed LiteRT's output"
    assert delegated == (resolver == "xnnpack" and name in MODELS_INT8), \
        f"{name}/{resolver}: XNNPACK {'took' if delegated else 'did not take'} nodes of the model"
    return values


# ----------------------------------------------------------------------------------------- one operator


class NotModelled(Exception):
    """The walk has no face for the operator (or the face lacks a function it needs)."""


def _face(name: str):
    f = getattr(tflite, name, None)
    if f is None:
        raise NotModelled(f"refquant.backends.tflite has no {name!r} face")
    return f


def _s(t):
    """A per-tensor scale as the flatbuffer holds it (float32), or the per-channel array."""
    return t.scale[0] if t.scale.size == 1 else t.scale


def _z(t) -> int:
    if t.zero_point.size != 1 and np.any(t.zero_point != t.zero_point[0]):
        raise NotModelled(f"tensor {t.name!r} has per-channel zero points {t.zero_point}")
    return int(t.zero_point[0])


def _strided_slice(x: np.ndarray, begin, end, strides, o: dict) -> np.ndarray:
    """TFLite STRIDED_SLICE with begin/end/shrink-axis masks (no ellipsis or new-axis masks)."""
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
        raise NotModelled(f"STRIDED_SLICE with ellipsis/new-axis masks or offset: {o}")
    index = []
    for d, (b, e, s) in enumerate(zip(begin, end, strides)):
        b, e, s = int(b), int(e), int(s)
        if o.get("shrink_axis_mask", 0) >> d & 1:
            index.append(b)
            continue
        index.append(slice(None if o.get("begin_mask", 0) >> d & 1 else b,
                           None if o.get("end_mask", 0) >> d & 1 else e, s))
    return np.asarray(x[tuple(index)])


def _evaluate(g: TfliteGraph, op: TflOp, lite: dict, kernel: str) -> np.ndarray:
    """The face's (or NumPy's) result for ``op`` on LiteRT's own input tensors, with the tensors' parameters."""
    T = g.tensors
    ins = [None if i < 0 else T[i] for i in op.inputs]

    def val(k):
        t = ins[k]
        return None if t is None else (t.data if t.data is not None else lite[t.index])

    yt, o = T[op.outputs[0]], op.options
    x = val(0)
    name = op.op
    if name == "QUANTIZE":
        if ins[0].dtype == np.float32:
            return _face("quantize")(x, _s(yt), _z(yt), dtype=np.dtype(yt.dtype).name, axis=yt.quantized_dimension,
                                     kernel=kernel)
        return _face("requantize")(x, _s(ins[0]), _z(ins[0]), _s(yt), _z(yt), dtype=np.dtype(yt.dtype).name,
                                   kernel=kernel)
    if name == "DEQUANTIZE":
        return _face("dequantize")(x, _s(ins[0]), _z(ins[0]), axis=ins[0].quantized_dimension, kernel=kernel)
    if name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        xt, wt = ins[0], ins[1]
        b = val(2) if len(ins) > 2 else None
        args = (x, _s(xt), _z(xt), wt.data, wt.scale, b, _s(yt), _z(yt))
        if _z(wt) != 0:
            raise NotModelled(f"weights with zero point {_z(wt)}")
        if name == "FULLY_CONNECTED":
            if o.get("weights_format", 0) != 0 or o.get("asymmetric_quantize_inputs"):
                raise NotModelled(f"FULLY_CONNECTED options {o}")
            y = _face("fully_connected")(*args, activation=o["activation"], kernel=kernel)
            return y.reshape(*x.shape[:-1], -1) if o.get("keep_num_dims") else y
        geometry = {"stride": o["stride"], "padding": o["padding"], "dilation": o["dilation"],
                    "activation": o["activation"]}
        if name == "CONV_2D":
            return _face("conv2d")(*args, **geometry, kernel=kernel)
        return _face("depthwise_conv2d")(*args, **geometry, depth_multiplier=o["depth_multiplier"], kernel=kernel)
    if name in ("ADD", "MUL"):
        at, bt = ins
        return _face(name.lower())(x, _s(at), _z(at), val(1), _s(bt), _z(bt), _s(yt), _z(yt),
                                   activation=o.get("activation"), kernel=kernel)
    if name == "MEAN":
        return _face("mean")(x, _s(ins[0]), _z(ins[0]), _s(yt), _z(yt), axis=o["axis"], keep_dims=o["keep_dims"],
                             kernel=kernel)
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        xt = ins[0]
        if (_s(xt), _z(xt)) != (_s(yt), _z(yt)):
            raise NotModelled(f"pooling with output parameters {(_s(yt), _z(yt))} != input's {(_s(xt), _z(xt))}")
        face = _face("average_pool2d" if name == "AVERAGE_POOL_2D" else "max_pool2d")
        return face(x, _s(xt), _z(xt), filter_size=o["filter_size"], stride=o["stride"], padding=o["padding"],
                    activation=o["activation"], kernel=kernel)
    if name == "SOFTMAX":
        return _face("softmax")(x, _s(ins[0]), _z(ins[0]), beta=o["beta"], kernel=kernel)
    if name in ("LOGISTIC", "TANH"):
        return _face(name.lower())(x, _s(ins[0]), _z(ins[0]), kernel=kernel)
    # shape operators: NumPy
    if name == "RESHAPE":
        shape = val(1) if len(ins) > 1 and ins[1] is not None else o["new_shape"]
        return np.reshape(x, tuple(int(d) for d in np.ravel(shape)))
    if name == "SHAPE":
        return np.asarray(x.shape, yt.dtype)
    if name == "STRIDED_SLICE":
        return _strided_slice(x, val(1), val(2), val(3), o)
    if name == "PACK":
        return np.stack([val(k) for k in range(len(ins))], axis=o["axis"])
    if name == "PAD":
        pad_value = 0 if yt.zero_point is None else _z(yt)  # a quantized PAD pads with the zero point
        return np.pad(x, np.asarray(val(1)).astype(np.int64), constant_values=x.dtype.type(pad_value))
    raise NotModelled("no face or NumPy operation for this operator in the walk")


# ----------------------------------------------------------------------------------------- the walk


def _bits(a) -> np.ndarray:
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == np.float32 else a


def _diff(ours, theirs) -> str | None:
    """None when equal (shape, dtype, then float32 bits or integers), else a message with the first differences."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        return f"shape {ours.shape} != LiteRT {theirs.shape}"
    if ours.dtype != theirs.dtype:
        return f"dtype {ours.dtype} != LiteRT {theirs.dtype}"
    bad = np.argwhere(_bits(ours) != _bits(theirs))
    if not bad.size:
        return None
    rows = ", ".join(f"{tuple(int(i) for i in idx)}: {ours[tuple(idx)]!r} vs {theirs[tuple(idx)]!r}"
                     for idx in bad[:4])
    return f"{len(bad)} of {ours.size} differ (refquant vs LiteRT: {rows})"


def walk(name: str, resolver: str) -> tuple[list, list, collections.Counter]:
    """Every operator of fixture ``name`` against LiteRT under ``resolver``: ``(bad, refused, counts)``, where
    ``bad`` lists the mismatches and operators not modelled (index, name, tensor types, reason), ``refused`` the
    operators whose face raised :class:`UnsupportedError` (``(op, types, message)``), and ``counts`` the compared
    output elements per ``(operator, output type)``."""
    g, lite, kernel = _graph(name), _litert(name, resolver), KERNEL[resolver]
    bad, refused, counts = [], [], collections.Counter()
    for op in g.ops:
        where = f"op {op.index} {op.op} ({g.types(op)})"
        try:
            got = _evaluate(g, op, lite, kernel)
        except NotModelled as err:
            bad.append(f"{where}: NOT MODELLED: {err}")
            continue
        except UnsupportedError as err:
            refused.append((op.op, g.types(op), str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - a face that rejects the converter's tensors is a failure to report
            bad.append(f"{where}: the face raised {type(err).__name__}: {err}")
            continue
        want = lite[op.outputs[0]]
        msg = _diff(got, want)
        if msg:
            bad.append(f"{where}: NOT OK: {msg}")
        else:
            counts[op.op, g.tensors[op.outputs[0]].type_name] += want.size
    return bad, refused, counts


# ----------------------------------------------------------------------------------------- tests

CASES_16X8 = [(n, r) for n in FIXTURES_16X8 for r in KERNEL]
CASES_INT8 = [(n, r) for n in MODELS_INT8 for r in KERNEL]


@pytest.mark.parametrize("name", FIXTURES_16X8)
def test_16x8_fixture_contents(name):
    """The converter's 16x8 graph, as read by ``support.tflite_graph``: the recorded operators and tensor types (no
    operator left in float), int16 activations with zero point 0, per-channel symmetric int8 weights and int64 bias
    whose recorded scale is $S_x S_w[c]$ (float32 of the double product)."""
    g = _graph(name)
    entry = _index("converter_16x8.json", MAGIC_16X8)["fixtures"][name]
    assert [[op.op, op.version] for op in g.ops] == [row[:2] for row in entry["operators"]]
    assert entry["float_operators"] == [] and entry["deterministic"]
    assert collections.Counter((op.op, g.types(op)) for op in g.ops) == EXPECTED_OPERATORS[name]
    for op in g.ops:
        for k, i in enumerate(op.inputs + op.outputs):
            t = g.tensors[i]
            if t.dtype == np.int16:
                assert t.scale.size == 1 and t.zero_point.tolist() == [0], (op.op, t.name)
            if op.op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") and k in (1, 2):
                c = t.shape[3 if op.op == "DEPTHWISE_CONV_2D" and k == 1 else 0]
                assert t.data is not None and t.scale.size == c and not t.zero_point.any(), (op.op, t.name)
                if k == 1:
                    assert t.dtype == np.int8 and int(t.data.min()) >= -127, t.name  # symmetric: codes in [-127, 127]
                    w_scale = t.scale
                else:
                    x_scale = np.float64(g.tensors[op.inputs[0]].scale[0])
                    assert t.dtype == np.int64, t.name
                    np.testing.assert_array_equal(t.scale, (x_scale * w_scale.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("name,resolver", CASES_16X8, ids=[f"{n}-{r}" for n, r in CASES_16X8])
def test_16x8_operator_by_operator(name, resolver):
    """Every operator of the converter's 16x8 model, fed LiteRT's own inputs, through the face with
    ``kernel=KERNEL[resolver]`` equals LiteRT's output tensor; no operator is refused or left unmodelled."""
    bad, refused, counts = walk(name, resolver)
    bad += [f"{op} ({types}): refused: {msg}" for op, types, msg in refused]
    assert not bad, f"{name}/{resolver} ({len(bad)} of {len(_graph(name).ops)} operators): " + "; ".join(bad)
    assert sum(counts.values()) == sum(_litert(name, resolver)[op.outputs[0]].size for op in _graph(name).ops)


#: The face's documented int8 refusals (``UnsupportedError``) the walk tolerates: ``{(operator, kernel)}``. int8
#: MEAN under XNNPACK (its float32 MEAN's ties).
INT8_REFUSALS = {("MEAN", "xnnpack")}


@pytest.mark.parametrize("name,resolver", CASES_INT8, ids=[f"{n}-{r}" for n, r in CASES_INT8])
def test_int8_operator_by_operator(name, resolver):
    """The same walk on the converter's int8 models (the harness's own proof): every operator equals LiteRT's, but
    for the face's documented int8 refusals (:data:`INT8_REFUSALS`)."""
    bad, refused, counts = walk(name, resolver)
    assert not bad, f"{name}/{resolver}: " + "; ".join(bad)
    undocumented = [r for r in refused if (r[0], KERNEL[resolver]) not in INT8_REFUSALS or "INT8" not in r[1]]
    assert not undocumented, f"{name}/{resolver}: refusals not in INT8_REFUSALS: {undocumented}"
    assert sum(counts.values()) > 0 and len(refused) < len(_graph(name).ops) // 2, (counts, refused)


@pytest.mark.parametrize("resolver", list(KERNEL))
def test_16x8_int16_io_is_the_float_io_graph_without_its_ends(resolver):
    """``cnn_16x8_int16io`` is ``cnn_16x8`` without its QUANTIZE and DEQUANTIZE: the same operators, parameters and
    constants; its int16 input (the reference QUANTIZE of the images) equals the float model's QUANTIZE output, and
    then every tensor equals the float model's, down to the int16 output DEQUANTIZE reads."""
    f, i = _graph("cnn_16x8"), _graph("cnn_16x8_int16io")
    lf, li = _litert("cnn_16x8", resolver), _litert("cnn_16x8_int16io", resolver)
    inner = [op for op in f.ops if op.op not in ("QUANTIZE", "DEQUANTIZE")]
    assert [(op.op, op.options) for op in inner] == [(op.op, op.options) for op in i.ops]
    assert f.ops[0].op == "QUANTIZE" and f.ops[-1].op == "DEQUANTIZE"
    pairs = [(f.ops[0].outputs[0], i.inputs[0])] + [(a.outputs[0], b.outputs[0]) for a, b in zip(inner, i.ops)]
    for ta, tb in pairs:
        a, b = f.tensors[ta], i.tensors[tb]
        assert (a.dtype, a.shape, a.scale.tolist(), a.zero_point.tolist()) == \
            (b.dtype, b.shape, b.scale.tolist(), b.zero_point.tolist()), (a.name, b.name)
        assert _diff(li[tb], lf[ta]) is None, f"{b.name}: {_diff(li[tb], lf[ta])}"
    for a, b in zip(inner, i.ops):
        for ta, tb in zip(a.inputs[1:], b.inputs[1:]):
            np.testing.assert_array_equal(i.tensors[tb].data, f.tensors[ta].data)
    assert f.ops[-1].inputs[0] == inner[-1].outputs[0] and i.outputs == [i.ops[-1].outputs[0]]
