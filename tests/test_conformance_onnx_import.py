"""``refquant.interop.onnx.import_quantized`` against ONNX Runtime, on models ONNX Runtime's own
``quantize_static`` wrote: ``qm.run(x)`` equals ``InferenceSession.run`` bit for bit (``==``), with
ONNX Runtime 1.32's CPU execution provider, one intra-op thread, default optimization level.

The model zoo is ``support.onnx_quant_zoo``. The matrix (:data:`MATRIX`, 494 cases) is a subset of
the full sweep ``benchmarks/onnx_import_sweep.py`` (every model × every combination, 952 cases),
chosen to stay well under a minute (about 35 s on two shared cores):

* mlp and cnn: every combination ``quantize_static`` offers (24: QDQ / QOperator × u8s8 / u8u8 /
  s8s8 activations·weights × per-tensor / per-channel × reduce_range; s8 activations with u8 weights
  is refused by ORT) and the 10 extras (ActivationSymmetric, QDQKeepRemovableActivations,
  DedicatedQDQPair, UseQDQContribOps, AddQDQPairToWeight, WeightSymmetric=False, Percentile
  calibration, 16-bit activations);
* resnet, mobilenet and the 24 small ``onnx.helper`` graphs (each op ORT fuses): a diagonal of 6
  combinations that takes every value of every factor in both formats (:data:`DIAGONAL`), and the
  10 extras.

Inputs per case: the in-range set (the digits test split, 359 images; 40 synthetic samples for the
small graphs), its first 17 and its first sample (batch 17 and batch 1), the set scaled by 3 and
shifted (past the calibrated range), and 17 adversarial samples (ties ``(k + 1/2)·scale`` on the
input QuantizeLinear's grid and their float32 neighbours; huge finite values that saturate).

Refusals: ``import_quantized`` may raise ``UnsupportedError`` exactly when ONNX Runtime's optimized
graph (``SessionOptions.optimized_model_filepath``) keeps an order-dependent float op
(``support.onnx_quant_zoo.ORDER_DEPENDENT_FLOAT_OPS``: Conv, Gemm, MatMul, AveragePool,
GlobalAveragePool, Softmax, Sigmoid, ...), and the message names one such node and its op.

A known failure of the importer would be a strict xfail with the reason (:func:`_known_failure`); there
is none: the nine failures this file first found (a node reading one DQ twice, com.microsoft Q/DQ,
AddQDQPairToWeight, DedicatedQDQPair, 16-bit refusals naming the wrong node, QGemm with alpha, a batch
of 0, non-finite inputs, a missing weight initializer) are fixed.

Rerun: ``pytest tests/test_conformance_onnx_import.py -p no:cacheprovider -q -s`` (``-s`` prints the
per-case counts).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")  # the bundled models' float export

import onnx  # noqa: E402
from onnx import helper  # noqa: E402
from support import onnx_quant_zoo as Z  # noqa: E402

from refquant.errors import (  # noqa: E402
    FormatVersionError,
    QuantizationTypeError,
    RefquantError,
    UnsupportedError,
)
from refquant.interop.onnx import import_quantized  # noqa: E402

pytestmark = pytest.mark.conformance

#: Every value of every factor, in both formats: (format, activations, weights, per_channel, reduce_range).
DIAGONAL = tuple(Z.Combo(*c) for c in (
    ("QDQ", "QUInt8", "QInt8", False, False), ("QDQ", "QUInt8", "QUInt8", True, True),
    ("QDQ", "QInt8", "QInt8", True, False), ("QOperator", "QUInt8", "QInt8", True, True),
    ("QOperator", "QUInt8", "QUInt8", False, False), ("QOperator", "QInt8", "QInt8", False, True)))
MATRIX = ([(m, c) for m in ("mlp", "cnn") for c in Z.COMBOS + Z.EXTRAS]
          + [(m, c) for m in ("resnet", "mobilenet") + Z.SMALL for c in DIAGONAL + Z.EXTRAS])


def _known_failure(model: str, combo):
    """``(reason, exception)`` of an importer failure this file found that was not fixed when it was
    written, else ``None``. Strict xfails: a fix makes them XPASS, which fails, so the marker goes with
    the fix; another failure than the one named still fails."""
    return None


def _case(model: str, combo):
    known = _known_failure(model, combo)
    marks = [pytest.mark.xfail(strict=True, reason=known[0], raises=known[1])] if known else []
    return pytest.param(model, combo, id=f"{model}-{combo.name}", marks=marks)


COUNTS: Counter = Counter()  # (model, combo) -> compared outputs; -1: refused
REFUSED: dict = {}  # (model, combo) -> message


@pytest.fixture(scope="module", autouse=True)
def _summary():
    """Print the compared outputs per case (``pytest -s``)."""
    yield
    done = {k: v for k, v in COUNTS.items() if v >= 0}
    print(f"\nimport_quantized vs ONNX Runtime: {len(done)} cases, {sum(done.values())} outputs compared ==, "
          f"{len(REFUSED)} refused (ORT runs an order-dependent float op)")
    for (m, c), n in sorted(COUNTS.items()):
        print(f"  {m:<20} {c:<26} " + (f"{n:>8} outputs" if n >= 0 else "refused: " + REFUSED[(m, c)][:90]))


def _assert_same(got, want, x, what, qm, q):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != ORT {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != ORT {want.dtype}"
    bad = got.view(np.uint32) != want.view(np.uint32) if got.dtype == np.float32 else got != want
    if bad.any():
        idx = np.argwhere(bad)
        rows = [f"  at {tuple(i)}: ours {got[tuple(i)]!r} ORT {want[tuple(i)]!r}" for i in idx[:6]]
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} outputs differ\n" + "\n".join(rows)
                    + "\n  " + Z.first_divergence(qm, q, x[idx[0][0]:idx[0][0] + 1]))


def _check_refusal(err: UnsupportedError, q: bytes, case: str) -> None:
    ordered = Z.float_nodes(q, order_dependent=True)
    msg = str(err)
    assert ordered, (f"{case}: refused ({msg}), but ORT's optimized graph runs no order-dependent float op "
                     f"(its float nodes: {Z.float_nodes(q)}; ops: {dict(Z.optimized_ops(q))})")
    assert Z.named_float_node(msg, q), (f"{case}: the refusal must name one of ORT's float nodes {ordered} and its "
                                        f"op, got: {msg}")


@pytest.mark.parametrize("model,combo", [_case(m, c) for m, c in MATRIX])
def test_import_matches_onnxruntime(model, combo):
    """``import_quantized(q).run(x) == ORT(q)(x)`` on every input set, or a refusal where ORT runs float."""
    q = Z.quantized(model, combo)
    case = f"{model} {combo.name}"
    try:
        qm = import_quantized(q)
    except UnsupportedError as err:
        _check_refusal(err, q, case)
        COUNTS[(model, combo.name)], REFUSED[(model, combo.name)] = -1, str(err)
        return
    ordered = Z.float_nodes(q, order_dependent=True)
    assert not ordered, f"{case}: imported, but ORT runs these order-dependent ops in float32: {ordered}"
    n = 0
    for kind, x in Z.case_inputs(model, q).items():
        want = Z.ort_run(q, x)
        got = qm.run(x)
        _assert_same(np.asarray(got), want, x, f"{case}, {kind} (batch {len(x)})", qm, q)
        n += want.size
    COUNTS[(model, combo.name)] = n


def test_path_str_pathlike_and_bytes_agree(tmp_path):
    """A file name (str, os.PathLike) and the bytes give the same model; the profile can be named."""
    q = Z.quantized("cnn", Z.COMBOS[0])
    path = tmp_path / "cnn.quant.onnx"
    path.write_bytes(q)
    x = Z.in_range_inputs("cnn")[:17]
    want = Z.ort_run(q, x)
    for src in (str(path), path, q, bytearray(q)):
        np.testing.assert_array_equal(import_quantized(src, profile="onnxruntime").run(x), want)


def test_empty_batch():
    """A batch of 0 samples: ORT returns an empty (0, 10) output."""
    q = Z.quantized("cnn", Z.COMBOS[0])
    x = Z.in_range_inputs("cnn")[:0]
    want = Z.ort_run(q, x)
    got = np.asarray(import_quantized(q).run(x))
    assert (got.shape, got.dtype) == (want.shape, want.dtype)


@pytest.mark.parametrize("model,combo", [("cnn", Z.COMBOS[0]), ("mlp", Z.COMBOS[-1]), ("resnet", DIAGONAL[1])],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_non_finite_inputs(model, combo):
    """+-Inf and NaN inputs: ORT's QuantizeLinear saturates +Inf to qmax, -Inf and NaN to qmin, and
    the session returns finite outputs; the imported model must return the same."""
    q = Z.quantized(model, combo)
    x = Z.in_range_inputs(model)[:17].copy()
    flat = x.reshape(len(x), -1)
    flat[:6, :5] = np.inf
    flat[6:12, 5:12] = -np.inf
    flat[12:, ::7] = np.nan
    want = Z.ort_run(q, x)
    np.testing.assert_array_equal(np.asarray(import_quantized(q).run(x)), want)


def test_refuses_unfused_gemm_naming_it():
    """QDQ Gemm with alpha != 1: ORT leaves it float (DQ → Gemm → Q); the refusal names node and op."""
    q = Z.quantized("gemm_alpha", Z.COMBOS[0])
    assert ("Gemm_0", "", "Gemm") in Z.float_nodes(q, order_dependent=True)
    with pytest.raises(UnsupportedError, match=r"'Gemm_0'.*Gemm"):
        import_quantized(q)


# ----------------------------------------------------------------------------- bad input
def test_truncated_file(tmp_path):
    q = Z.quantized("cnn", Z.COMBOS[0])
    with pytest.raises(FormatVersionError, match="path_or_bytes"):
        import_quantized(q[: len(q) // 2])
    (tmp_path / "t.onnx").write_bytes(q[:100])
    with pytest.raises(FormatVersionError, match="path_or_bytes"):
        import_quantized(tmp_path / "t.onnx")


def test_non_onnx_file(tmp_path):
    p = tmp_path / "weights.npz"
    np.savez(p, w=np.arange(10))
    with pytest.raises(FormatVersionError, match="path_or_bytes"):
        import_quantized(p)
    with pytest.raises(FormatVersionError, match="path_or_bytes"):
        import_quantized(b"this is a text file, not a protobuf\n" * 10)


def test_float_model_is_refused_clearly():
    """An unquantized model: ORT runs float Conv; the error says the model is float (or names the Conv)."""
    with pytest.raises(UnsupportedError, match=r"(?i)float"):
        import_quantized(Z.float_model("cnn"))


def test_missing_initializer_is_named():
    m = onnx.load_from_string(Z.quantized("cnn", Z.Combo("QOperator")))
    conv = next(n for n in m.graph.node if n.op_type == "QLinearConv")
    weight = conv.input[3]
    kept = [i for i in m.graph.initializer if i.name != weight]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    with pytest.raises(UnsupportedError, match=re.escape(repr(weight))):
        import_quantized(m.SerializeToString())


def test_unsupported_op_is_named():
    m = onnx.load_from_string(Z.quantized("mlp", Z.COMBOS[0]))
    out = m.graph.output[0]
    m.graph.node.append(helper.make_node("Hardmax", [out.name], ["hard"], name="my_hardmax", axis=-1))
    out.name = "hard"
    with pytest.raises(UnsupportedError, match=r"'my_hardmax'.*Hardmax"):
        import_quantized(m.SerializeToString())


def test_bad_arguments():
    q = Z.quantized("mlp", Z.COMBOS[0])
    with pytest.raises(QuantizationTypeError, match="path_or_bytes"):
        import_quantized(3)
    with pytest.raises(FileNotFoundError):
        import_quantized("/nonexistent/model.onnx")
    with pytest.raises(RefquantError, match="profile"):
        import_quantized(q, profile="tflite_reference")
