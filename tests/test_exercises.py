"""The exercises are passable and not already passed: every solution passes its exercise's tests,
every untouched stub fails them, and the registry, stubs and solutions agree with each other.

The exercise tests themselves live in ``exercises/NN_*/test_NN_*.py`` and are run here through the
exercise runner (``python -m exercises``) in a subprocess, so that they are not collected by the
root ``pytest`` run.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
sys.path.insert(0, str(ROOT))  # the exercises package is not installed; it lives beside tests/
from exercises import registry  # noqa: E402

BLOCK = re.compile(r"# BEGIN YOUR SOLUTION\n(.*?)\n\s*# END YOUR SOLUTION", re.S)
STUB = re.compile(r'^\s*raise NotImplementedError\("\w+"\)\s*$')


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("REFQUANT_EXERCISES_SOURCE", None)
    return subprocess.run([sys.executable, "-m", "exercises", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _is_untouched(path: Path) -> bool:
    blocks = BLOCK.findall(path.read_text(encoding="utf-8"))
    return bool(blocks) and all(STUB.match(b) for b in blocks)


def test_registry_matches_the_folders():
    folders = sorted(p.name for p in EXERCISES.iterdir() if p.is_dir() and re.match(r"\d\d_", p.name))
    assert [e["folder"] for e in registry.EXERCISES] == folders
    for ex in registry.EXERCISES:
        assert ex["folder"].startswith(ex["id"] + "_")
        assert (EXERCISES / ex["folder"] / ex["file"]).is_file()
        assert (EXERCISES / "_solutions" / ex["folder"] / ex["file"]).is_file()
        assert len(list((EXERCISES / ex["folder"]).glob("test_*.py"))) == 1
        assert ex["hints"] and ex["title"] and (ROOT / ex["read"]).is_file()
    for quiz in registry.QUIZZES:
        assert (EXERCISES / quiz["file"]).is_file() and (EXERCISES / quiz["answers"]).is_file()


@pytest.mark.parametrize("ex", registry.EXERCISES, ids=lambda e: e["id"])
def test_solution_has_the_stub_s_shape(ex):
    """Outside the BEGIN/END blocks, the solution is the stub (same functions, same docstrings)."""
    stub = (EXERCISES / ex["folder"] / ex["file"]).read_text(encoding="utf-8")
    sol = (EXERCISES / "_solutions" / ex["folder"] / ex["file"]).read_text(encoding="utf-8")

    def skeleton(text: str) -> str:
        return BLOCK.sub("# BLOCK", text).split("\n", 1)[1]  # the first line says stub or solution

    assert skeleton(stub) == skeleton(sol)
    assert len(BLOCK.findall(stub)) == len(BLOCK.findall(sol)) >= 2
    assert not any(STUB.match(b) for b in BLOCK.findall(sol)), "a solution still raises NotImplementedError"
    for fn in ast.walk(ast.parse(stub)):
        if isinstance(fn, ast.FunctionDef):
            assert ast.get_docstring(fn), f"{ex['file']}: {fn.name} needs a docstring for the learner"


def test_every_solution_passes():
    result = _run("all", "--solutions")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for ex in registry.EXERCISES:
        assert f"exercise {ex['id']} ({ex['title']}): passed" in result.stdout


def test_every_untouched_stub_fails():
    untouched = [ex for ex in registry.EXERCISES if _is_untouched(EXERCISES / ex["folder"] / ex["file"])]
    if not untouched:
        pytest.skip("every exercise file has been edited (a learner's checkout): nothing to check")
    result = _run(*[ex["id"] for ex in untouched])
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    for ex in untouched:
        assert f"exercise {ex['id']} ({ex['title']}): FAILED" in result.stdout, result.stdout[-3000:]
        assert f"Hints for {ex['id']}" in result.stdout
    assert "NotImplementedError" in result.stdout


def test_quiz_answers_agree_with_refquant():
    import refquant as rq
    from refquant.qparams import choose_qparams
    from refquant.rounding import round_by_mode

    answers = {}
    exec((EXERCISES / "_solutions" / "quiz_01.py").read_text(encoding="utf-8"), answers)  # a plain dict literal
    a = answers["ANSWERS"]
    for mode, want in a[1].items():
        assert int(round_by_mode(np.array([-3.5]), mode)[0]) == want, mode
    x = np.float32(0.49999997)
    assert float(np.floor(x + np.float32(0.5))) == a[2]["floor_x_plus_half_float32"]
    assert float(round_by_mode(x, "half_up")) == a[2]["round_half_up"]
    assert rq.quant_range("int8", narrow=True) == a[3]["narrow"]
    assert rq.quant_range("int8", reduce_range=True) == a[3]["pytorch_reduce_range"]
    from refquant.backends.onnxruntime import reduced_range
    assert reduced_range("int8") == a[3]["onnxruntime_reduce_range"]
    qp = rq.make_qparams(0.5, 10, "uint8")
    xs = np.array([1.25, -3.0, 200.0], np.float32)
    assert rq.quantize(xs, qp, "onnx").tolist() == a[4]
    assert rq.quantize(xs, qp, "tflite_reference").tolist() == a[5]
    assert rq.quantize(xs, qp, "pytorch_fbgemm").tolist() == a[6]
    p7 = choose_qparams(-2.0, 6.0, "uint8")
    assert np.isclose(p7.scale, a[7]["scale"], rtol=1e-6) and int(p7.zero_point) == a[7]["zero_point"]
    p8 = choose_qparams(-2.0, 6.0, "int8", symmetric=True)
    assert np.isclose(p8.scale, a[8]["scale"], rtol=1e-6) and int(p8.zero_point) == a[8]["zero_point"]


def test_quiz_02_answers_agree_with_refquant():
    from refquant import fixedpoint as fp
    from refquant.kernels.gemm import gemm_reference
    from refquant.kernels.multiplier import activation_range
    from refquant.kernels.requant import requantize

    answers = {}
    exec((EXERCISES / "_solutions" / "quiz_02.py").read_text(encoding="utf-8"), answers)  # a plain dict literal
    a = answers["ANSWERS"]
    row, col = np.array([[3, 5, 7]], np.uint8), np.array([[2], [0], [1]], np.int8)
    assert int(gemm_reference(row, col, 4, 1)[0, 0]) == a[1]["acc"]
    P = int((row.astype(np.int64) @ col.astype(np.int64))[0, 0])
    assert (P, int(row.astype(np.int64).sum()), int(col.astype(np.int64).sum())) == (a[1]["P"], a[1]["r"], a[1]["c"])
    k = a[2]
    full = np.full((1, k), -128, np.int8)
    assert int(gemm_reference(full, full.T.copy(), on_overflow="raise")[0, 0]) == k * 2**14  # fits
    assert (k + 1) * 2**14 > 2**31 - 1
    u, s = np.array([[200, 100, 255, 255]], np.uint8), np.array([[100], [100], [-128], [-128]], np.int8)
    assert int(gemm_reference(u, s)[0, 0]) == a[3]["exact"]
    assert int(gemm_reference(u, s, acc_model="pairwise_sat16_u8s8")[0, 0]) == a[3]["avx2"]
    m = a[4]
    assert 2 * 255 * m <= 32767 < 2 * 255 * (m + 1)
    assert fp.quantize_multiplier(0.375) == a[5]
    assert tuple(fp.saturating_rounding_doubling_high_mul(np.array([5, -5]), 2**30).tolist()) == a[6]
    assert tuple(fp.rounding_divide_by_pot(np.array([5, -5]), 1).tolist()) == a[7]
    assert fp.multiply_by_quantized_multiplier(-10, 2**30, -1) == a[8]["double"]
    assert fp.multiply_by_quantized_multiplier(-10, 2**30, -1, variant="single") == a[8]["single"]
    lo, hi = activation_range("RELU6", 0.05, -20, -128, 127)
    assert (lo, hi) == a[9]
    q, sh = fp.quantize_multiplier(0.01)
    got = requantize(np.array([1000, -2500, 20000], np.int32), q, -20, lo, hi, mode="fixed_double", shift=sh)
    assert got.tolist() == a[10]
    x = np.arange(-3000, 3000, 7, dtype=np.int32)
    for q, sh in (fp.quantize_multiplier(1.7), fp.quantize_multiplier(0.75)):  # shift >= 0: one rounding (11)
        assert sh >= 0
        np.testing.assert_array_equal(fp.multiply_by_quantized_multiplier(x, q, sh),
                                      fp.multiply_by_quantized_multiplier(x, q, sh, variant="single"))


def test_quiz_03_answers_agree_with_refquant():
    module = {}
    exec((EXERCISES / "_solutions" / "quiz_03.py").read_text(encoding="utf-8"), module)  # ANSWERS and check()
    module["check"](module["ANSWERS"])
