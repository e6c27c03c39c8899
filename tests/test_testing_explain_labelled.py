"""The explainer scored on labelled mismatches: does it name the backend that made an output?

``labelled_cases`` (:mod:`refquant.testing._variants_cases`) draws mismatching cases from every pair
of profiles that can disagree: TFLite reference / XNNPACK / optimized, ONNX Runtime AVX2 / VNNI,
the ONNX specification / ONNX Runtime / ``onnx.reference``, PyTorch fbgemm / qnnpack, PyTorch
quantize / fake-quantize and torch 2.13 / 1.6-2.12, round half away (TFLite) / half to even (ONNX).
A case is scored correct when its label is the best candidate or among the candidates that
reproduce the output exactly (several backends compute the same thing on many inputs: a tie).
Run with ``-s`` to see the score, the ties and the misses. A second set takes its outputs from the
real libraries (PyTorch, ``onnx.reference``, ONNX Runtime on this CPU) instead of refquant's faces.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from refquant.cpu import detect_isa
from refquant.testing.explain import explain_mismatch
from refquant.testing._variants_cases import labelled_cases

F32, I8, U8 = np.float32, np.int8, np.uint8


def _score(cases) -> dict:
    rows = []
    for c in cases:
        e = explain_mismatch(c.op, c.inputs, c.actual)
        rows.append(dict(case=c, best=e.best.label, correct=e.best.label == c.label or e.reproduces(c.label),
                         exact=[m.label for m in e.exact], outputs=len({m.key for m in e.ranking})))
    n = len(rows)
    correct = sum(r["correct"] for r in rows)
    best = sum(r["best"] == r["case"].label for r in rows)
    alone = sum(r["exact"] == [r["case"].label] for r in rows)
    print(f"\nexplainer on {n} labelled mismatches: {correct}/{n} correct ({correct / n:.1%}; label best or among "
          f"the exact candidates); best == label {best}/{n}; label the only exact candidate {alone}/{n}")
    for (op, label, got), k in collections.Counter((r["case"].op, r["case"].label, r["best"]) for r in rows
                                                   if r["correct"] and r["best"] != r["case"].label).items():
        print(f"  tie x{k}: {op} made by {label}; best {got} (both exact)")
    misses = [r for r in rows if not r["correct"]]
    for r in misses:
        print(f"  MISS: {r['case'].op} made by {r['case'].label} ({r['case'].source}); best {r['best']}")
    return dict(n=n, correct=correct, misses=misses)


@pytest.fixture(scope="module")
def cases():
    return labelled_cases(seed=0, per_pair=2)


def test_every_disagreeing_pair_is_in_the_set(cases):
    assert len(cases) >= 50
    by_op = collections.defaultdict(set)
    for c in cases:
        by_op[c.op].add(c.label)
        assert explain_mismatch(c.op, c.inputs, c.actual).expected.n_diff > 0  # a mismatch
    want = {
        "tflite.fully_connected": {"tflite_reference", "tflite_xnnpack", "tflite_optimized"},
        "tflite.conv2d": {"tflite_reference", "tflite_xnnpack", "tflite_optimized"},
        "tflite.depthwise_conv2d": {"tflite_reference", "tflite_xnnpack", "tflite_optimized"},
        "tflite.quantize": {"tflite_reference", "tflite_xnnpack", "tflite_optimized", "onnx"},
        "onnxruntime.qlinear_matmul": {"onnxruntime@avx2", "onnxruntime@vnni", "onnx"},
        "onnxruntime.qlinear_conv": {"onnxruntime@avx2", "onnxruntime@vnni", "onnx"},
        "onnx.qlinear_matmul": {"onnxruntime@vnni", "onnx_reference"},
        "onnx.qlinear_conv": {"onnxruntime@vnni", "onnx_reference"},
        "pytorch.linear": {"pytorch_fbgemm@vnni", "pytorch_qnnpack"},
        "pytorch.conv2d": {"pytorch_fbgemm@vnni", "pytorch_qnnpack"},
        "pytorch.add": {"pytorch_fbgemm", "pytorch_qnnpack"},
        "pytorch.quantize_per_tensor": {"pytorch_fbgemm", "pytorch_fbgemm_zp_after", "pytorch_fbgemm:fake_quantize"},
        "pytorch.fake_quantize_per_tensor_affine": {"pytorch_fbgemm:quantize+dequantize"},
        "onnx.quantize_linear": {"tflite_reference"},
        "onnxruntime.quantize_linear": {"tflite_reference"},
        "onnxruntime.qlinear_add": {"tflite_reference"},
    }
    for op, labels in want.items():
        assert labels <= by_op[op], f"{op}: no mismatching case for {sorted(labels - by_op[op])}"
    # TFLite ADD: the reference and optimized int8 kernels agreed on every input tried (the same
    # fixed-point arithmetic unless the int16 narrowing overflows); XNNPACK's rescale differs.
    assert by_op["tflite.add"] >= {"tflite_reference", "tflite_xnnpack"}


def test_explainer_names_the_backend(cases):
    s = _score(cases)
    assert s["correct"] / s["n"] >= 0.9, f"{len(s['misses'])} misses: " + "; ".join(
        f"{r['case'].op} by {r['case'].label} -> {r['best']}" for r in s["misses"])


# --------------------------------------------------------------------------- outputs of the real libraries


def _onnx_qlinear_matmul(inputs, run):
    """One QLinearMatMul node (opset 21), ``a`` fed, the rest initializers, run by ``run(model, feeds)``."""
    from onnx import TensorProto, helper, numpy_helper

    names = ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"]
    inits = [numpy_helper.from_array(np.asarray(inputs[n]), n) for n in names[1:]]
    graph = helper.make_graph([helper.make_node("QLinearMatMul", names, ["y"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, list(inputs["a"].shape))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return np.asarray(run(model, {"a": inputs["a"]}))


def _ort(model, feeds):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _onnx_reference(model, feeds):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, feeds)[0]


def _matmul_case(rng):
    """S_a = fl(1/3), S_b = 3/2, S_y = 8: ONNX Runtime's float32 multiplier is 2^-4 exactly, the spec's a hair
    more; an odd y_zero_point separates onnx.reference (zero point before rounding)."""
    xz = int(rng.integers(100, 156))
    return dict(a=(xz + rng.integers(-6, 7, (4, 16))).astype(U8), a_scale=F32(1 / 3), a_zero_point=U8(xz),
                b=rng.integers(-6, 7, (16, 8)).astype(I8), b_scale=F32(1.5), b_zero_point=I8(0), y_scale=F32(8),
                y_zero_point=U8(int(rng.integers(60, 190)) | 1))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # deprecated in torch, still run
def test_real_backends_are_named():
    """Outputs from PyTorch, onnx.reference and ONNX Runtime themselves, not from refquant's faces."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    here = "onnxruntime@" + ("vnni" if detect_isa() == "vnni" else "avx2")
    found = []
    for _ in range(6):
        case = _matmul_case(rng)
        for run, label in ((_onnx_reference, "onnx_reference"), (_ort, here)):
            y = _onnx_qlinear_matmul(case, run)
            e = explain_mismatch("onnx.qlinear_matmul", case, y)
            if not e.expected.exact:
                found.append((label, e.reproduces(label), e.best.label))
        x = ((rng.integers(-60, 60, 24) + 0.5) * 0.25).astype(F32)
        zp = int(rng.integers(60, 190)) | 1
        q = torch.quantize_per_tensor(torch.from_numpy(x), 0.25, zp, torch.quint8).int_repr().numpy()
        fq = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), 0.25, zp, 0, 255).numpy()
        args = dict(x=x, scale=0.25, zero_point=zp, dtype="quint8")
        for y, kw, label in ((q, {"zero_point_order": "after"}, "pytorch_fbgemm"),
                             ((fq / F32(0.25) + zp).astype(U8), {}, "pytorch_fbgemm:fake_quantize")):
            e = explain_mismatch("pytorch.quantize_per_tensor", {**args, **kw}, y)
            if not e.expected.exact:
                found.append((label, e.reproduces(label), e.best.label))
    print(f"\nreal backends: {sum(ok for _, ok, _ in found)}/{len(found)} named: "
          + ", ".join(f"{label}{'' if ok else ' (MISS: ' + best + ')'}" for label, ok, best in found))
    assert {label for label, _, _ in found} == {"onnx_reference", here, "pytorch_fbgemm",
                                                "pytorch_fbgemm:fake_quantize"}
    assert all(ok for _, ok, _ in found)
