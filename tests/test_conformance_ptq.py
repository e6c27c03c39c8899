"""Post-training quantization, model by model, against the real backends' own tools and kernels.

Every comparison is ``==`` on integer codes, or on float32 bit patterns for float outputs.

1. **PyTorch static** (engines fbgemm, qnnpack, x86): the bundled models' BatchNorm-folded float
   weights go into a torch twin (``support.torch_models``), which torch's eager-mode flow
   quantizes (fuse → prepare with MinMax observers → calibrate → convert). Every tensor's scale
   and zero point, every weight code, weight scale and bias, every layer's output codes and the
   model's float output equal refquant's ``quantize_static``. Both sides choose parameters from
   the same float ranges: refquant's float forward pass (NumPy) and torch's sum in different
   orders, so their observed ranges differ by a few ulps (checked below, with a stated bound) and,
   left alone, give scales a few ulps apart (measured: mlp layer '5' 3 ulps, cnn layer '7' 8); torch's
   observers get refquant's ranges before ``convert``, and torch's own code then picks every
   parameter. Known difference (measured, it xfails only on its own node): mobilenet under
   qnnpack, a torch bug (``QNNPACK_RELU6``). Engine x86 on an
   AVX-512 VNNI CPU: refquant refuses the conv models (oneDNN's grayscale first layer), skipped.
2. **PyTorch dynamic**: ``quantize_dynamic`` against ``torch.ao.quantization.quantize_dynamic``.
3. **ONNX Runtime static** (``onnxruntime.quantization.quantize_static``, QDQ, its own MinMax
   calibration, which gave refquant's parameters on the mlp): every initializer of the QDQ model
   equals refquant's parameters, and the session's output equals ``qm.run``.
4. **TFLite converter**: ``tests/test_conformance_tflite_converter.py``, on converter-made fixtures.
5. **Internal consistency** (no backend): every integer ``linear`` / ``conv2d`` node of the
   integer model equals the backend face's op (``refquant.backends.*``) on the node's own inputs.

Measured on torch 2.13.0+cpu, onnxruntime 1.32.0, AMD EPYC with AVX-512 VNNI (2 cores).

Rerun: ``pytest tests/test_conformance_ptq.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from refquant import models, ptq
from refquant.cpu import detect_isa_class
from refquant.data import load_digits
from refquant.errors import UnsupportedError
from refquant.ptq.flows import calibrate_model
from refquant.ptq.recipes import recipe_for
from refquant.qmodel import QuantizedModel, TensorInfo

pytestmark = [pytest.mark.conformance, pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")]

MODELS = ("mlp", "cnn", "resnet", "mobilenet")
_X_TRAIN, _ = load_digits("train")
CAL = np.ascontiguousarray(_X_TRAIN[:512])  # calibration: 512 samples
BATCHES = [CAL[:256], CAL[256:]]  # the batches refquant's flows cut (256) and torch / ORT are fed
X_EVAL, _ = load_digits("test")  # 359 samples


# --------------------------------------------------------------------------------------- helpers


@functools.cache
def _calibrated(name: str, profile: str):
    """Folded (names kept), traced and calibrated once per model and profile."""
    return calibrate_model(models.load_reference_model(name), CAL, profile=profile)


@functools.cache
def _static(name: str, profile: str, per_channel: bool = True) -> QuantizedModel:
    """``quantize_static(model, CAL, profile=profile, per_channel=per_channel)``, which is
    ``calibrate_model(...).lower(...)`` (test_quantize_static_is_calibrate_then_lower): calibrated once."""
    return _calibrated(name, profile).lower(per_channel=per_channel)


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == np.float32 else a


def assert_same(ours, theirs, what: str, backend: str) -> None:
    """Shape, dtype, then values (float32 by bit pattern); the first differences side by side."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {backend} {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != {backend} {theirs.dtype}"
    bad = np.argwhere(_bits(ours) != _bits(theirs))
    if bad.size:
        rows = [f"  {tuple(int(i) for i in idx)}: refquant={ours[tuple(idx)]!r} {backend}={theirs[tuple(idx)]!r}"
                for idx in bad[:8]]
        raise AssertionError(f"{what}: {len(bad)} of {ours.size} differ (NOT OK)\n" + "\n".join(rows))


def _single_node_model(qm: QuantizedModel, node) -> QuantizedModel:
    """A one-node model of ``qm``'s node (its input and output tensors as in ``qm``)."""
    tensors = {t: qm.tensors[t] for t in (*node.inputs, node.output)}
    return QuantizedModel([node], tensors, list(node.inputs), [node.output], profile=qm.profile, isa=qm.isa)


def _same_model(a: QuantizedModel, b: QuantizedModel) -> None:
    assert [(n.name, n.op, n.inputs, n.output, n.attrs) for n in a.nodes] == \
        [(n.name, n.op, n.inputs, n.output, n.attrs) for n in b.nodes]
    assert a.tensors == b.tensors
    for na, nb in zip(a.nodes, b.nodes):
        assert sorted(na.params) == sorted(nb.params), na.name
        for k in na.params:
            assert_same(na.params[k], nb.params[k], f"node {na.name!r} param {k!r}", "calibrate_model + lower")


@pytest.mark.parametrize("profile", ("pytorch_fbgemm", "onnxruntime"))
def test_quantize_static_is_calibrate_then_lower(profile):
    """The tests below build models with ``calibrate_model(...).lower(...)`` (one calibration serves both
    weight granularities and the torch twin's ranges); the public ``quantize_static`` builds the same."""
    for name in ("mlp", "cnn"):
        for per_channel in (True, False):
            public = ptq.quantize_static(models.load_reference_model(name), CAL, profile=profile,
                                         per_channel=per_channel)
            _same_model(public, _static(name, profile, per_channel))


# ------------------------------------------------------------------------------ 1. PyTorch static

ENGINE_PROFILE = {"fbgemm": "pytorch_fbgemm", "qnnpack": "pytorch_qnnpack", "x86": "pytorch_x86"}

# torch 2.13, engine qnnpack: quantized::relu6 (also hardtanh, clamp) on a channels-last quint8 tensor (a
# qnnpack conv's output) clamps the NHWC buffer and returns it labelled NCHW-contiguous, so the elements are
# permuted (measured: mobilenet node '2', the first ReLU6, 259322 of 367616 codes differ while conv '0'
# before it is equal; the output equals np.clip of the NHWC buffer reshaped as NCHW). Minimal
# reproduction: q = torch.quantize_per_tensor(torch.randn(2, 4, 3, 5), 0.05, 100, torch.quint8)
# .contiguous(memory_format=torch.channels_last); torch.ops.quantized.relu6(q, False).int_repr() !=
# q.int_repr().clamp(100, 220) under engine "qnnpack", == under "fbgemm". A torch bug, not refquant's.
QNNPACK_RELU6 = ("torch 2.13 qnnpack quantized::relu6 on a channels-last input (a qnnpack conv's output) "
                 "permutes the elements: node '2' (first ReLU6) differs, conv '0' before it is equal")

# Under engine qnnpack, adaptive_avg_pool2d(q, 1) subtracts the zero point first: RNE(fl(sum q - N Z) * fl(1/N))
# + Z; under fbgemm it rounds the mean of the raw codes (measured: 0 mismatches over 168 shape/zero-point cases,
# N in {4, 15, 16, 64}, both memory formats). The two differ on ties when Z is odd, as in mobilenet's pool
# (Z = 99): the profiles name the kernels "mean_offset_codes_rne" and "mean_codes_rne".


def _torch_cases():
    """(model, engine, per_channel, contiguous_relu6, known first difference or None)."""
    for name in MODELS:
        for engine in ENGINE_PROFILE:
            for per_channel in ((True, False) if name in ("mlp", "cnn") else (True,)):
                known = ("2", QNNPACK_RELU6) if (name, engine) == ("mobilenet", "qnnpack") else None
                yield pytest.param(name, engine, per_channel, False, known,
                                   id=f"{name}-{engine}-{'per_channel' if per_channel else 'per_tensor'}")
    # the same model with the ReLU6 inputs made contiguous (a memory-layout change only): every node agrees
    yield pytest.param("mobilenet", "qnnpack", True, True, None, id="mobilenet-qnnpack-per_channel-contiguous_relu6")


def _check_ranges_close(ours: dict, torch_seen: dict) -> None:
    """refquant's and torch's float forward passes sum in different orders: their observed ranges agree
    to float32 rounding. Bound: a relative 1e-4 of the tensor's range width (dot products of at most 288
    float32 terms in another order: error <= 288 * 2^-24 * sum|terms|, about 2e-5 of the range here;
    measured: at most 8 ulps, e.g. 7.933544 vs 7.9335403)."""
    for name, (tlo, thi) in torch_seen.items():
        lo, hi = ours[name]
        width = max(float(hi) - float(lo), float(thi) - float(tlo))
        assert abs(float(lo) - float(tlo)) <= 1e-4 * width and abs(float(hi) - float(thi)) <= 1e-4 * width, \
            f"tensor {name!r}: refquant observed [{lo!r}, {hi!r}], torch [{tlo!r}, {thi!r}]"


def _check_torch_layer(node, mod, per_channel: bool) -> None:
    """Weight codes, weight scales and zero points, float32 bias of one quantized torch module."""
    p = node.params
    w = mod.weight()
    assert_same(p["weight"], w.int_repr().numpy(), f"node {node.name!r} weight codes", "torch")
    if per_channel:
        assert w.q_per_channel_axis() == 0
        # torch holds per-channel scales as float64 copies of its float32 observer scales
        assert_same(p["weight_scale"].astype(np.float64), w.q_per_channel_scales().numpy(),
                    f"node {node.name!r} weight scales", "torch")
        assert_same(p["weight_zero_point"].astype(np.int64), w.q_per_channel_zero_points().numpy(),
                    f"node {node.name!r} weight zero points", "torch")
    else:
        assert p["weight_scale"].shape == ()
        assert float(p["weight_scale"]) == w.q_scale(), f"node {node.name!r} weight scale"
        assert int(p["weight_zero_point"]) == w.q_zero_point(), f"node {node.name!r} weight zero point"
    bias = mod.bias()
    assert (bias is None) == ("bias" not in p), f"node {node.name!r}: bias presence"
    if bias is not None:
        assert_same(p["bias"], bias.detach().numpy(), f"node {node.name!r} bias (float32)", "torch")


def _compare_with_torch(qm, trace, outs: dict, modules: dict, per_channel: bool) -> int:
    """Every integer tensor of ``qm``, in execution order (the first failure names the first node that
    differs): its parameters, its layer's weights and bias, its codes. Returns how many were compared."""
    compared = 0
    for node in qm.nodes:
        t = qm.tensors[node.output]
        if not t.is_integer:
            continue
        key = "input" if node.op == "quantize" else node.name
        assert key in outs, f"node {node.name!r} ({node.op}): torch's twin has no quantized tensor {key!r}"
        theirs = outs[key]
        assert (t.scale, t.zero_point) == (theirs.scale, theirs.zero_point), \
            f"node {node.name!r} ({node.op}) output parameters: refquant S={t.scale!r} Z={t.zero_point}, " \
            f"torch S={theirs.scale!r} Z={theirs.zero_point}"
        if node.op in ("linear", "conv2d"):
            mod = modules[f"net.{node.name}"]
            _check_torch_layer(node, mod, per_channel)
            assert (t.scale, t.zero_point) == (mod.scale, mod.zero_point), f"node {node.name!r} module parameters"
        if node.op == "add":  # QFunctional: add / add_relu
            mod = modules[f"net.{node.name}"]
            assert (t.scale, t.zero_point) == (mod.scale, int(mod.zero_point)), f"node {node.name!r} parameters"
        assert_same(trace[node.output], theirs.codes, f"node {node.name!r} ({node.op}) output codes", "torch")
        compared += 1
    return compared


@pytest.mark.parametrize("name, engine, per_channel, contiguous_relu6, known", list(_torch_cases()))
def test_pytorch_static_same_integer_model(name, engine, per_channel, contiguous_relu6, known):
    """``known``: ``(node, reason)`` of a measured difference. The case xfails only if that node is the first
    to differ, and fails (asking to drop ``known``) if the model then agrees."""
    pytest.importorskip("torch")
    from support import torch_models as TM
    from support.torch_runner import quantized_engine, require_engine

    require_engine(engine)
    profile = ENGINE_PROFILE[engine]
    try:
        qm = _static(name, profile, per_channel)
    except UnsupportedError as err:  # engine x86 on an AVX-512 VNNI CPU: oneDNN convs refquant refuses
        pytest.skip(f"refquant refuses {name} under {profile} on this CPU ({detect_isa_class()}): {err}")
    cal = _calibrated(name, profile)
    with quantized_engine(engine):
        qtwin, seen = TM.quantize_eager(cal.model, BATCHES, engine=engine, per_channel=per_channel,
                                        ranges=cal.ranges, contiguous_relu6=contiguous_relu6)
        y_torch, outs = TM.quantized_outputs(qtwin, X_EVAL)
    _check_ranges_close(cal.ranges, seen)
    trace = qm.trace(X_EVAL)
    try:
        compared = _compare_with_torch(qm, trace, outs, dict(qtwin.named_modules()), per_channel)
    except AssertionError as err:
        first = str(err).splitlines()[0]
        if known is not None and first.startswith(f"node {known[0]!r} "):
            pytest.xfail(f"{known[1]} [measured: {first}]")
        raise
    if known is not None:
        pytest.fail(f"node {known[0]!r} was expected to differ ({known[1]}) but every node agrees: drop `known`")
    # trace is run's execution with every tensor kept; its output tensor is what run returns
    assert_same(trace[qm.outputs[0]], y_torch, f"{name} model output (float32 bits)", "torch")
    print(f"\n[conformance ptq] {name} {engine}: {compared} integer tensors and the output equal")


def test_pytorch_global_pool_and_pools_keep_input_parameters():
    """What makes the torch graph line up: under a PyTorch profile the global average pool is a
    ``mean_*codes_rne`` kernel and keeps its input's parameters (``adaptive_avg_pool2d`` on a quantized
    tensor), as do max pool, flatten and the ReLU6 clamp (torch's quantized ``relu6``)."""
    for name in MODELS:
        qm = _static(name, "pytorch_fbgemm")
        assert qm.resolved_profile.pointwise.global_average_pool == "mean_codes_rne"
        for node in qm.nodes:
            if node.op in ("global_average_pool", "max_pool2d", "flatten", "clamp"):
                x, y = qm.tensors[node.inputs[0]], qm.tensors[node.output]
                assert (x.scale, x.zero_point) == (y.scale, y.zero_point), f"{name} node {node.name!r}"


def _gap_cases():
    for engine in ENGINE_PROFILE:
        for z in (0, 99, 200):
            yield pytest.param(engine, z, id=f"{engine}-Z{z}")


@pytest.mark.parametrize("engine, zero_point", list(_gap_cases()))
def test_pytorch_global_average_pool(engine, zero_point):
    """The integer model's global average pool node against torch's ``adaptive_avg_pool2d(q, 1)``:
    random codes, (4, 4) and (3, 5) planes, both memory formats."""
    torch = pytest.importorskip("torch")
    from support.torch_runner import quantized_engine, require_engine

    from refquant.qmodel import Node

    require_engine(engine)
    info = {n: TensorInfo(n, "uint8", 0.05, zero_point) for n in ("x", "y")}
    qm = QuantizedModel([Node("gap", "global_average_pool", ("x",), "y")], info, ["x"], ["y"],
                        profile=ENGINE_PROFILE[engine])
    rng = np.random.default_rng(zero_point)
    for hw in ((4, 4), (3, 5)):
        codes = rng.integers(0, 256, size=(64, 24) + hw).astype(np.uint8)  # (N, C, H, W)
        q = torch._make_per_tensor_quantized_tensor(torch.from_numpy(codes), 0.05, zero_point)
        for fmt in (torch.contiguous_format, torch.channels_last):
            with quantized_engine(engine):
                y = torch.nn.functional.adaptive_avg_pool2d(q.contiguous(memory_format=fmt), 1)
            assert (y.q_scale(), y.q_zero_point()) == (0.05, zero_point)
            assert_same(qm.run(codes), y.int_repr().numpy()[:, :, 0, 0], f"global average pool {hw} {fmt}", "torch")


# ----------------------------------------------------------------------------- 2. PyTorch dynamic

DYNAMIC_ENGINES = ("fbgemm", "qnnpack", "x86")


def _torch_dynamic(cal_model, engine):
    import torch
    from support import torch_models as TM
    from support.torch_runner import quantized_engine

    with quantized_engine(engine):
        twin = TM.torch_twin(cal_model).net  # no stubs: dynamic quantization takes float in and out
        qd = torch.ao.quantization.quantize_dynamic(twin, {torch.nn.Linear}, dtype=torch.qint8)
        seen, handles = {}, []
        for n, mod in qd.named_modules():
            if isinstance(mod, torch.ao.nn.quantized.dynamic.Linear):
                handles.append(mod.register_forward_hook(
                    lambda m, i, o, n=n: seen.__setitem__(n, (i[0].numpy().copy(), o.numpy().copy()))))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # qnnpack: "incorrectly ignores reduce_range"
            y = qd(torch.from_numpy(X_EVAL)).numpy()
        for h in handles:
            h.remove()
    return qd, y, seen


@pytest.mark.parametrize("engine", DYNAMIC_ENGINES)
@pytest.mark.parametrize("name", ("mlp", "cnn"))
def test_pytorch_dynamic(name, engine):
    torch = pytest.importorskip("torch")
    from support.torch_runner import require_engine

    from refquant import passes

    require_engine(engine)
    model = models.load_reference_model(name)
    qm = ptq.quantize_dynamic(model, profile=ENGINE_PROFILE[engine])
    qd, y_torch, seen = _torch_dynamic(passes.prepare_for_quantization(model, keep_names=True), engine)
    layers = {n: m for n, m in qd.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}
    nodes = [n for n in qm.nodes if n.op == "dynamic_linear"]
    assert sorted(layers) == sorted(n.name for n in nodes)
    for node in nodes:
        mod = layers[node.name]
        w = mod.weight()
        assert_same(node.params["weight"], w.int_repr().numpy(), f"node {node.name!r} weight codes", "torch")
        assert float(node.params["weight_scale"]) == w.q_scale() and int(node.params["weight_zero_point"]) == 0 \
            == w.q_zero_point(), f"node {node.name!r} weight parameters"
        assert_same(node.params["bias"], mod.bias().detach().numpy(), f"node {node.name!r} bias", "torch")
        # the layer alone, fed torch's own float input to it: identical float in, identical float out
        x_in, y_out = seen[node.name]
        assert_same(_single_node_model(qm, node).run(x_in), y_out, f"node {node.name!r} alone (float32 bits)",
                    "torch")
    if name == "mlp":  # every float op before the Linears is exact (flatten, ReLU): the whole model agrees
        assert_same(qm.run(X_EVAL), y_torch, f"{name} dynamic model output", "torch")
    # cnn: its convolutions stay float32 on both sides, and refquant's NumPy float convolution sums in
    # another order than torch's (no backend promises one); measured: 3426 (fbgemm) / 3310 (qnnpack) of
    # 3590 outputs differ, by at most 9.5e-7 (1 ulp at 8-16). The dynamic Linear itself is compared above.


# ----------------------------------------------------------------------------- 3. ONNX Runtime


def _ort_reduce_range(profile) -> bool:
    """ORT's ``quantize_static(reduce_range=...)``: 7-bit weights only where its recipe says (an AVX2 CPU
    without VNNI), i.e. what refquant's recipe does for this CPU."""
    return profile.isa in recipe_for(profile).weight_reduce_range_isas


@functools.cache
def _ort_quantized(per_channel: bool):
    from support import onnx_models as OM

    qm = _static("mlp", "onnxruntime", per_channel)
    proto, where = OM.sequential_to_onnx(_calibrated("mlp", "onnxruntime").model)
    qdq = OM.ort_quantize_static(proto, BATCHES, per_channel=per_channel,
                                 reduce_range=_ort_reduce_range(qm.resolved_profile))
    return qm, qdq, where


@pytest.mark.parametrize("per_channel", (True, False), ids=("per_channel", "per_tensor"))
def test_onnxruntime_quantize_static_parameters(per_channel):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from support import onnx_models as OM

    qm, qdq, where = _ort_quantized(per_channel)
    init = OM.initializers(qdq)
    compared = 0
    for node in qm.nodes:
        t = qm.tensors[node.output]
        if not t.is_integer:
            continue
        # ORT quantizes the Flatten's output, refquant the model input before it: one tensor's parameters
        onnx_name = where["0"] if node.op == "quantize" else where[node.name]
        s, z = init[f"{onnx_name}_scale"], init[f"{onnx_name}_zero_point"]
        assert (s.dtype, z.dtype, s.shape, z.shape) == (np.float32, np.dtype(t.dtype), (), ())
        assert (t.scale, t.zero_point) == (float(s), int(z)), \
            f"node {node.name!r} output: refquant S={t.scale!r} Z={t.zero_point}, ORT S={s!r} Z={z!r}"
        if node.op == "linear":
            p = node.params
            assert_same(p["weight"], init[f"{node.name}.weight_quantized"], f"node {node.name!r} weight codes", "ORT")
            assert_same(p["weight_scale"], init[f"{node.name}.weight_scale"], f"node {node.name!r} weight scales",
                        "ORT")
            assert_same(p["weight_zero_point"], init[f"{node.name}.weight_zero_point"],
                        f"node {node.name!r} weight zero points", "ORT")
            assert_same(p["bias"], init[f"{node.name}.bias_quantized"], f"node {node.name!r} int32 bias", "ORT")
            x = qm.tensors[node.inputs[0]]
            bias_scale = (np.float32(x.scale) * p["weight_scale"]).astype(np.float32)  # S_x S_w in float32
            assert_same(np.broadcast_to(bias_scale, init[f"{node.name}.bias_quantized_scale"].shape),
                        init[f"{node.name}.bias_quantized_scale"], f"node {node.name!r} bias scale", "ORT")
        compared += 1
    assert compared == 5


@pytest.mark.parametrize("per_channel", (True, False), ids=("per_channel", "per_tensor"))
def test_onnxruntime_session_output(per_channel, tmp_path):
    """ORT (default optimizations) fuses the QDQ graph to Flatten → QuantizeLinear → com.microsoft.QGemm ×3
    → DequantizeLinear (the Relus were removed by the quantizer: their outputs' zero point is 0);
    refquant's ``linear`` under the ``onnxruntime`` profile is QGemm's arithmetic: the int32 accumulator
    plus the int32 bias, times $\\mathrm{fl}(\\mathrm{fl}(S_x S_w) / S_y)$ in float32, RNE, $+ Z_y$."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")

    qm, qdq, _ = _ort_quantized(per_channel)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    so.log_severity_level = 3  # ORT warns that an NCHWc-optimized file is CPU-specific
    sess = ort.InferenceSession(qdq.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ran = [(n.domain or "ai.onnx", n.op_type) for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert ran == [("ai.onnx", "Flatten"), ("ai.onnx", "QuantizeLinear")] + [("com.microsoft", "QGemm")] * 3 \
        + [("ai.onnx", "DequantizeLinear")], f"ORT ran {ran}"
    y_ort = sess.run(None, {"input": X_EVAL})[0]
    assert_same(qm.run(X_EVAL), y_ort, f"mlp output ({'per channel' if per_channel else 'per tensor'})", "ORT")


# ----------------------------------------------------------------------------- 4. TFLite converter
# In tests/test_conformance_tflite_converter.py: the converter's models are fixtures written once with
# TensorFlow, so that test needs no TensorFlow.


# ------------------------------------------------------------------------- 5. internal consistency

FACE_PROFILES = ("tflite_reference", "tflite_xnnpack", "onnxruntime", "pytorch_fbgemm", "pytorch_qnnpack")
_EVAL_SMALL = X_EVAL[:32]


@pytest.mark.parametrize("profile", FACE_PROFILES)
@pytest.mark.parametrize("name", MODELS)
def test_nodes_equal_backend_faces(name, profile):
    """Each integer layer of the model, in ``trace``, equals the backend face's op fed the node's own input
    codes and parameters (``support.node_faces``: layouts and op choice per backend)."""
    from support.node_faces import FaceRefuses, run_face

    qm = _static(name, profile)  # isa="auto": this CPU, as the faces' default
    trace = qm.trace(_EVAL_SMALL)
    compared, refused = [], []
    for node in qm.nodes:
        if node.op not in ("linear", "conv2d") or not qm.tensors[node.output].is_integer:
            continue
        xi, yi = qm.tensors[node.inputs[0]], qm.tensors[node.output]
        try:
            theirs = run_face(profile, node, trace[node.inputs[0]], xi, yi)
        except FaceRefuses as why:
            refused.append(f"{node.name}: {why}")
            continue
        assert_same(trace[node.output], theirs, f"{name} {profile} node {node.name!r} ({node.op})", "face")
        compared.append(node.name)
    if not compared:
        pytest.skip(f"the face expresses none of {name}'s layers under {profile}: {refused}")
    print(f"\n[conformance ptq] {name} {profile}: {len(compared)} layers equal the face"
          + (f"; not expressible: {refused}" if refused else ""))
