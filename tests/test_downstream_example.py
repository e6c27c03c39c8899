"""The downstream example project (docs/examples/downstream/) run as its own users run it.

``tinyq`` is a hand-written int8 QLinearMatMul tested against ONNX Runtime with refquant's pytest
fixture ``refquant_oracle``. Its first version (``tinyq/matmul_v1.py``) rounds half up; its tests
must fail with the explainer's message naming that rounding against ONNX Runtime's half to even.
The corrected version (``tinyq/matmul.py``) must pass. The project's files are not examples of
``docs/examples/*.py`` (``test_docs_examples.py`` globs the top level only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "docs" / "examples" / "downstream"


def _pytest(kernel: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYQ_KERNEL": kernel, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(PROJECT),
                           str(PROJECT)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_the_example_is_not_a_top_level_docs_example():
    top_level = {p.name for p in (ROOT / "docs" / "examples").glob("*.py")}
    assert not top_level & {p.name for p in PROJECT.rglob("*.py")}


def test_buggy_kernel_fails_and_the_message_names_the_rounding():
    r = _pytest("matmul_v1")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out[-3000:]
    assert "failed" in out.splitlines()[-1]
    assert "Verdict: reproduced exactly by round=half_up/float32" in out, out[-3000:]
    assert "rounding: expected round half to even (lrintf / cvtps2dq); actual round half up" in out


def test_fixed_kernel_passes():
    r = _pytest("matmul")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "8 passed" in r.stdout.splitlines()[-1]
