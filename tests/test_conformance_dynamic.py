"""Conformance: dynamic-range ("hybrid") linear layers == LiteRT, ONNX Runtime and PyTorch, float32 bit for bit.

:func:`refquant.ops.dynamic.dynamic_linear` under a profile against the real runtime:

* LiteRT 2.3.0 hybrid FULLY_CONNECTED (float32 input, int8 weights, float32 bias;
  ``support.tflite_hybrid``): resolver ``ref`` = ``tflite_reference``, ``builtin`` =
  ``tflite_optimized`` (``asymmetric_quantize_inputs`` true, the converter's default; false with
  ``dynamic_input="per_row_symmetric_s8"``), ``xnnpack`` = ``tflite_xnnpack`` (the delegate takes
  the node, checked, and ignores the option);
* ONNX Runtime 1.32: the tool's ``quantize_dynamic`` on MatMul + Add and on Gemm, run unfused
  (``ORT_DISABLE_ALL``) and fused (``ORT_ENABLE_ALL``: ``DynamicQuantizeMatMul``), plus a
  hand-built ``DynamicQuantizeMatMul`` with per-column scales and a weight zero point; and a
  whole MLP through ``quantize_dynamic`` on both sides;
* torch 2.13 ``quantized::linear_dynamic`` through the integer model's node.

Inputs (seeded): random shapes (batch 1 to 64, odd K, K = 1, K across the 8- and 16-column block
edges); ties (codes exactly .5 apart, so RNE and RHAZ differ); the float32 trap 0.49999997 in a
vector block and in the scalar tail; rows of zeros, an all-zero input with a $-0$ bias; one large
value in a row; rows of subnormal and of huge values; weights of $-128$ and $K > 2048$ (TFLite's
sign-transfer dot and int16-lane row sums).

Rerun: ``pytest tests/test_conformance_dynamic.py -s`` (prints the compared outputs per backend).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")
pytest.importorskip("onnxruntime")

from support.tflite_hybrid import run_hybrid_fully_connected  # noqa: E402

from refquant import models  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.kernels import dynamic as kd  # noqa: E402
from refquant.modes import DYNAMIC_OUTPUTS  # noqa: E402
from refquant.ops.dynamic import dynamic_linear  # noqa: E402
from refquant.profiles import get_profile  # noqa: E402
from refquant.ptq import quantize_dynamic  # noqa: E402
from refquant.ptq.dynamic_weights import dynamic_weight  # noqa: E402
from refquant.ptq.recipes import recipe_for  # noqa: E402

pytestmark = pytest.mark.conformance

F32 = np.float32
COUNTS: Counter = Counter()
TFLITE = {"ref": "tflite_reference", "builtin": "tflite_optimized", "xnnpack": "tflite_xnnpack"}
TRAP = np.nextafter(F32(0.5), F32(0))  # 0.49999997: fl(v + 0.5) = 1.0


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared float32 outputs:", dict(sorted(COUNTS.items())))


def check(got, want, what):
    """Shape, dtype, then bits; on failure show the first differing outputs side by side."""
    assert got.shape == want.shape and got.dtype == want.dtype == F32, (what, got.shape, want.shape, got.dtype)
    bad = np.argwhere(got.view(np.int32) != want.view(np.int32))
    if len(bad):
        rows = "\n".join(f"  y{tuple(i)}: refquant {got[tuple(i)]!r} backend {want[tuple(i)]!r}" for i in bad[:5])
        pytest.fail(f"{what}: {len(bad)} of {got.size} outputs differ\n{rows}")
    return got.size


def count_alternatives(x, w, ws, wz, b, profile, counts: Counter) -> None:
    """Outputs that each other ``dynamic_output`` rounding would get wrong (so the test pins the one used)."""
    for mode in DYNAMIC_OUTPUTS:
        if mode != profile.linear.dynamic_output:
            alt = profile.replace(linear=dataclasses.replace(profile.linear, dynamic_output=mode))
            ours, other = dynamic_linear(x, w, ws, wz, b, profile=profile), dynamic_linear(x, w, ws, wz, b, profile=alt)
            counts[mode] += int((ours.view(np.int32) != other.view(np.int32)).sum())


def symmetric(profile_name):
    """The profile for models written with ``asymmetric_quantize_inputs`` false."""
    p = get_profile(profile_name)
    return p.replace(linear=dataclasses.replace(p.linear, dynamic_input="per_row_symmetric_s8"))


# --------------------------------------------------------------------------- cases


def _weights(rng, n, k, minus128=False):
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    if minus128:
        w[rng.random((n, k)) < 0.3] = -128
    return w


def tflite_cases():
    """(label, x, w, w_scale, bias): float32, int8, float32 () or (N,), float32 (N,) or None."""
    rng = np.random.default_rng(2603)
    for t in range(36):  # random shapes and ranges
        m = int(rng.choice([1, 2, 5, 64])) if t % 4 else 1
        k = int(rng.choice([1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100]))
        n = int(rng.integers(1, 24))
        x = (rng.standard_normal((m, k)) * rng.choice([1e-3, 1.0, 300.0])).astype(F32)
        if t % 6 == 1:
            x = np.abs(x)  # one-signed rows: the zero point at an end of the range
        ws = rng.uniform(1e-3, 2e-2, n).astype(F32) if t % 2 else F32(rng.uniform(1e-3, 2e-2))
        yield "random", x, _weights(rng, n, k, minus128=t % 5 == 0), ws, (rng.standard_normal(n).astype(F32)
                                                                         if t % 3 else None)
    for k in (9, 16, 17, 40):  # ties: max|x| = 127 (inv 1.0) or range 255 (S = 1), codes n + 1/2
        half = (rng.integers(-127, 127, (6, k)) + 0.5).astype(F32)
        half[:3, 0], half[3:, 0], half[3:, 1] = 127, -128, 127
        yield "ties", half, _weights(rng, 5, k), rng.uniform(1e-3, 2e-2, 5).astype(F32), None
    for k in (9, 17, 24):  # the float32 trap in the vector body (column 1) and the tail (last column)
        x = np.zeros((2, k), F32)
        x[:, 0] = 127
        x[0, 1] = x[1, -1] = TRAP
        yield "trap", x, np.eye(k, dtype=np.int8)[: min(k, 24)], F32(1), None
    x = (rng.standard_normal((4, 20))).astype(F32)
    x[1] = 0
    yield "zero_row", x, _weights(rng, 6, 20), F32(0.01), np.array([-0.0, 1, -1, 0.0, 2, -2], F32)
    yield "zero_input", np.zeros((3, 20), F32), _weights(rng, 6, 20), F32(0.01), np.array([-0.0, 1, -1, 0, 2, -2], F32)
    x = (rng.standard_normal((3, 33)) * 1e-3).astype(F32)
    x[:, 5] = [1e4, -1e4, 3e2]  # one large value: the rest of the row rounds to 0
    yield "one_large", x, _weights(rng, 7, 33), rng.uniform(1e-3, 2e-2, 7).astype(F32), rng.standard_normal(7).astype(F32)
    for scale in (1e-42, 1e-39, 5e-37, 3e-36, 1e37):  # subnormal and huge rows (reciprocal overflow)
        x = (rng.standard_normal((2, 17)) * scale).astype(F32)
        yield f"extreme_{scale:g}", x, _weights(rng, 4, 17), F32(0.01), rng.standard_normal(4).astype(F32)
    k = 2048 + 16 * 12 + 8 + 3  # int16 row-sum lanes wrap; 16-blocks, an 8-block and a tail
    w = np.full((3, k), 127, np.int8)
    w[1], w[2, ::2] = -128, -127
    yield "wide", (rng.random((2, k)) - 0.4).astype(F32), w, F32(1e-3), None


# --------------------------------------------------------------------------- LiteRT


@pytest.mark.parametrize("resolver", list(TFLITE))
def test_tflite_hybrid_fully_connected(resolver):
    prof = TFLITE[resolver]
    variants = [(True, get_profile(prof))]
    if resolver != "xnnpack":
        variants.append((False, symmetric(prof)))
    else:  # XNNPACK ignores asymmetric_quantize_inputs: the same qd8 rows either way
        variants.append((False, get_profile(prof)))
    wrong = Counter()
    for label, x, w, ws, b in tflite_cases():
        for asymmetric, profile in variants:
            got, delegated = run_hybrid_fully_connected(x, w, ws, b, asymmetric=asymmetric, resolver=resolver,
                                                        return_delegated=True)
            assert delegated == (resolver == "xnnpack"), (label, resolver)
            ours = dynamic_linear(x, w, ws, 0, b, profile=profile)
            COUNTS[f"litert {resolver} asym={asymmetric}"] += check(ours, got, f"{resolver} {label} asym={asymmetric}")
            if b is not None:
                count_alternatives(x, w, ws, 0, b, profile, wrong)
    assert len(wrong) == 2 and min(wrong.values()) > 50, wrong


def test_tflite_signature_cases_are_discriminating():
    """Each measured quirk changes some output in the cases above (else the test proves nothing)."""
    trap = [c for c in tflite_cases() if c[0] == "trap"][0]
    q, _ = kd.quantize_rows_symmetric_s8(trap[1])
    assert q[0, 1] == 1 and q[1, -1] == 0  # vector body: trunc(fl(v + 0.5)); tail: std::round
    wide = [c for c in tflite_cases() if c[0] == "wide"][0][2]
    assert not np.array_equal(kd.row_sums_int16_lanes(wide), wide.astype(np.int64).sum(axis=1))
    x, w = -np.ones((1, 16), F32), np.full((1, 16), -128, np.int8)
    q, _ = kd.quantize_rows_symmetric_s8(x)
    assert kd.dot_s8_sign_transfer(q, w)[0, 0] == -int((q.astype(np.int64) * w).sum())


# --------------------------------------------------------------------------- ONNX Runtime


def _ort():
    from support import onnx_dynamic
    return onnx_dynamic


def _ort_inputs(rng, k):
    yield (rng.standard_normal((5, k)) * 3).astype(F32)
    yield np.abs(rng.standard_normal((1, k))).astype(F32)  # one-signed: zero point 0
    yield -np.abs(rng.standard_normal((64, k))).astype(F32)  # zero point 255
    yield np.round(rng.standard_normal((4, k)) * 8).astype(F32) / 4  # tie-heavy
    yield np.zeros((2, k), F32)  # scale 1, zero point 0
    big = (rng.standard_normal((3, k)) * 1e-3).astype(F32)
    big[1, 0] = 1e3
    yield big


@pytest.mark.parametrize("gemm", [False, True])
def test_onnxruntime_quantize_dynamic_linear(gemm):
    od = _ort()
    prof = get_profile("onnxruntime", isa="auto")
    recipe = recipe_for(prof)
    rng = np.random.default_rng(32 + gemm)
    wrong = Counter()
    for t in range(8):
        k, n = int(rng.choice([1, 5, 16, 33, 130])), int(rng.integers(1, 20))
        w = (rng.standard_normal((n, k)) * rng.choice([0.05, 1.0])).astype(F32)
        b = rng.standard_normal(n).astype(F32)
        reduce_range = prof.isa in recipe.weight_reduce_range_isas
        proto = od.ort_quantize_dynamic(od.linear_model(w, b, gemm=gemm), reduce_range=reduce_range)
        wq, ws, wz = od.quantized_weight(proto)
        q, s, z = dynamic_weight(recipe, w, profile=prof)  # the tool's weights, bit for bit
        np.testing.assert_array_equal(q, wq)
        assert s.tobytes() == ws.tobytes() and not np.any(z) and not np.any(wz)
        sessions = {lvl: od.session(proto, lvl) for lvl in od.LEVELS}
        for x in _ort_inputs(rng, k):
            ours = dynamic_linear(x, q, s, z, b, profile=prof)
            for lvl, sess in sessions.items():
                got = sess.run(None, {"x": x})[0]
                COUNTS[f"ort quantize_dynamic {lvl}"] += check(ours, got, f"ORT {lvl} gemm={gemm} case {t}")
            count_alternatives(x, q, s, z, b, prof, wrong)
    assert len(wrong) == 2 and min(wrong.values()) > 50, wrong


def test_onnxruntime_dynamic_quantize_matmul_node():
    """Hand-built com.microsoft.DynamicQuantizeMatMul: per-column scales, a nonzero weight zero point."""
    od = _ort()
    prof = get_profile("onnxruntime", isa="auto")
    rng = np.random.default_rng(77)
    for t in range(8):
        k, n = int(rng.choice([3, 16, 64, 257])), int(rng.integers(1, 17))
        wq = rng.integers(-128, 128, (n, k)).astype(np.int8)
        ws = rng.uniform(1e-3, 2e-2, n).astype(F32) if t % 2 else F32(rng.uniform(1e-3, 2e-2))
        wz = np.int8(rng.integers(-20, 21)) if t % 3 == 0 else np.zeros(np.shape(ws), np.int8)
        b = rng.standard_normal(n).astype(F32) if t % 4 != 3 else None
        sess = od.session(od.dynamic_quantize_matmul_model(wq, ws, wz, b), "disable_all")
        for x in _ort_inputs(rng, k):
            got = sess.run(None, {"x": x})[0]
            ours = dynamic_linear(x, wq, ws, wz, b, profile=prof)
            COUNTS["ort DynamicQuantizeMatMul"] += check(ours, got, f"DynamicQuantizeMatMul case {t}")


def test_onnxruntime_whole_mlp():
    """The bundled MLP through both tools' quantize_dynamic: every output bit equal (Flatten and Relu are exact)."""
    od = _ort()
    from support.onnx_models import sequential_to_onnx

    prof = get_profile("onnxruntime", isa="auto")
    model = models.load_reference_model("mlp")
    qm = quantize_dynamic(model, profile="onnxruntime")
    proto, _ = sequential_to_onnx(model)
    ortq = od.ort_quantize_dynamic(proto, reduce_range=prof.isa in recipe_for(prof).weight_reduce_range_isas)
    assert od.optimized_ops(ortq).count("DynamicQuantizeMatMul") == 3  # fused at load above ORT_DISABLE_ALL
    x, _ = load_digits("test")
    want = qm.run(x)
    for lvl in od.LEVELS:
        got = od.session(ortq, lvl).run(None, {"input": x})[0]
        COUNTS[f"ort whole mlp {lvl}"] += check(want, got, f"MLP {lvl}")


# --------------------------------------------------------------------------- PyTorch, through the node


def _torch_dynamic_linear(x, w, w_scale, bias):
    """``quantized::linear_dynamic`` with ``reduce_range=True`` on per-tensor qint8 weights."""
    import torch
    import torch.ao.nn.quantized.dynamic as nnqd

    lin = nnqd.Linear(w.shape[1], w.shape[0])
    qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(w_scale), 0)
    lin.set_weight_bias(qw, None if bias is None else torch.from_numpy(bias))
    return torch.ops.quantized.linear_dynamic(torch.from_numpy(x), lin._packed_params._packed_params,
                                              reduce_range=True).numpy()


def test_pytorch_node_matches_torch():
    pytest.importorskip("torch")
    from support.torch_runner import quantized_engine, supported_engines

    rng = np.random.default_rng(5)
    model = models.load_reference_model("mlp")
    x, _ = load_digits("test")
    for engine, prof in (("fbgemm", "pytorch_fbgemm"), ("qnnpack", "pytorch_qnnpack")):
        if engine not in supported_engines():
            continue
        qm = quantize_dynamic(model, profile=prof)
        node = [nd for nd in qm if nd.op == "dynamic_linear"][0]
        p = node.params
        xin = qm.trace(x[:40])[node.inputs[0]]
        with quantized_engine(engine):
            got = _torch_dynamic_linear(xin, p["weight"], p["weight_scale"], p["bias"])
            COUNTS[f"torch {engine} node"] += check(qm.trace(x[:40])[node.output], got, f"{engine} node")
            xr = (rng.standard_normal((7, xin.shape[1])) * 5).astype(F32)
            got = _torch_dynamic_linear(xr, p["weight"], p["weight_scale"], p["bias"])
            ours = dynamic_linear(xr, p["weight"], p["weight_scale"], 0, p["bias"], profile=prof, reduce_range=True)
            COUNTS[f"torch {engine} op"] += check(ours, got, f"{engine} op")
