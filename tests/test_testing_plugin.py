"""The pytest plugin (``refquant.testing.plugin``, entry point ``pytest11``): a downstream project's
test files, run in a subprocess with and without the plugin.

It must give the ``refquant_oracle`` fixture and ``--refquant-golden-dir`` to a project that asks,
and change nothing for one that does not: the same outcomes, no autouse fixture, no Numba or other
heavy module imported when it loads.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys

import pytest

from refquant.testing import write_golden

pytest_plugins = ["pytester"]

OFF = ("-p", "no:refquant")

DOWNSTREAM = """
import json, sys
import pytest

def test_pass():
    assert 1 + 1 == 2

def test_fail():
    assert 1 + 1 == 3

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

def test_no_autouse_fixture(request):
    assert "refquant_oracle" not in request.fixturenames

def test_modules(request):
    with open("modules.json", "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def _modules(pytester, *args) -> set:
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    return set(json.loads((pytester.path / "modules.json").read_text()))


def test_the_entry_point_is_installed():
    eps = {e.name: e.value for e in md.entry_points(group="pytest11")}
    assert eps.get("refquant") == "refquant.testing.plugin", (
        "refquant's pytest11 entry point is missing: run `pip install -e . --no-deps` after editing pyproject.toml")


def test_a_project_that_does_not_use_it_sees_no_difference(pytester):
    """Same outcomes with and without the plugin; loading it adds refquant's NumPy core, nothing heavy."""
    with_plugin = _modules(pytester)
    without = _modules(pytester, *OFF)
    assert "refquant.testing.plugin" in with_plugin and "refquant.testing.plugin" not in without
    added = with_plugin - without
    heavy = sorted(m for m in added if m.split(".")[0] in ("numba", "llvmlite", "hypothesis", "torch", "onnxruntime",
                                                            "onnx", "scipy")
                   or m.startswith(("refquant.backends", "refquant.kernels", "refquant.ops", "refquant.qmodel",
                                    "refquant.interop", "refquant.testing.explain", "refquant.testing.strategies")))
    assert not heavy, f"loading the plugin imported {heavy}"


def test_the_option_exists_only_with_the_plugin(pytester):
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    pytester.runpytest_subprocess("--refquant-golden-dir", ".").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--refquant-golden-dir", ".", *OFF)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --refquant-golden-dir*"])


ORACLE = """
import numpy as np
import pytest


def my_fully_connected(x, x_zp, w, b, multiplier, y_zp):
    acc = (x.astype(np.int64) - x_zp) @ w.astype(np.int64).T + b
    return np.clip(np.rint(acc * multiplier) + y_zp, -128, 127).astype(np.int8)  # rounds half to even


def test_op_runs_the_face(refquant_oracle):
    x = np.int8([[1, -2, 3]])
    y = refquant_oracle.op("tflite", "fully_connected", x, 0.5, 0, np.int8([[2, 2, 2]]), np.float32([0.25]),
                           np.int32([0]), 1.0, 0, kernel="reference")
    refquant_oracle.assert_bit_exact(y, np.int8([[1]]))  # 0.5 * 0.25 * 2 * (1 - 2 + 3) = 0.5 -> away from zero


def test_a_mismatch_is_reported(refquant_oracle):
    x, w, b = np.int8([[1, 1]]), np.int8([[1, 0], [0, 1]]), np.int32([0, 1])
    want = refquant_oracle.op("tflite", "fully_connected", x, 1.0, 0, w, np.float32([0.5, 0.5]), b, 1.0, 0)
    got = my_fully_connected(x, 0, w, b, np.float64([0.5, 0.5]), 0)
    refquant_oracle.assert_bit_exact(got, want, inputs={"acc": np.int32([[1, 2]])})


def test_golden_file(refquant_oracle):
    g = refquant_oracle.golden("fc")
    assert g.op == "tflite.fully_connected" and len(g) == 3
    n = g.check(lambda c: refquant_oracle.op("tflite", "fully_connected", *c.arguments.values(), **c.attrs))
    assert n > 0


def test_missing_golden_file(refquant_oracle):
    with pytest.raises(FileNotFoundError, match="refquant golden --op OP"):
        refquant_oracle.golden("nope.npz")
"""


def test_the_oracle_in_a_downstream_test_suite(pytester, tmp_path):
    write_golden(tmp_path / "fc.npz", op="tflite.fully_connected", cases=3, seed=0)
    pytester.makepyfile(test_kernel=ORACLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--refquant-golden-dir", str(tmp_path))
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_a_mismatch_is_reported*", "*arrays are not bit-exact: 1 of 2 elements*",
                                 "*all differences are ±1 LSB*", "*index*actual*expected*diff*acc*"])


def test_the_golden_directory_from_the_ini_file(pytester, tmp_path):
    (pytester.path / "golden").mkdir()
    write_golden(pytester.path / "golden" / "fc.npz", op="tflite.fully_connected", cases=3, seed=0)
    pytester.makeini("[pytest]\nrefquant_golden_dir = golden\n")
    pytester.makepyfile(test_kernel=ORACLE)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "golden").assert_outcomes(passed=2)


def test_golden_without_a_directory_says_how_to_set_one(pytester):
    pytester.makepyfile(test_kernel="""
import pytest
from refquant.errors import QuantizationValueError

def test_no_dir(refquant_oracle):
    assert refquant_oracle.golden_dir is None
    with pytest.raises(QuantizationValueError, match="--refquant-golden-dir DIR"):
        refquant_oracle.golden("fc")
    with pytest.raises(QuantizationValueError, match="unknown"):
        refquant_oracle.op("tflite", "unknown")
""")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_oracle_outside_pytest(tmp_path):
    from refquant.errors import QuantizationValueError
    from refquant.testing.plugin import Oracle

    write_golden(tmp_path / "g.npz", op="tflite.add", cases=2, seed=0)
    oracle = Oracle(tmp_path)
    assert oracle.golden("g").op == oracle.golden("g.npz").op == "tflite.add"
    for bad in ("", None, str(tmp_path / "g.npz")):
        with pytest.raises(QuantizationValueError, match="name must be a golden file name"):
            oracle.golden(bad)
    with pytest.raises(QuantizationValueError, match="face must be one of"):
        oracle.op("tensorflow", "add")


def test_import_refquant_testing_stays_light():
    """``import refquant`` does not import refquant.testing; ``import refquant.testing`` imports neither
    pytest, hypothesis nor Numba; ``explain_mismatch`` resolves on first use."""
    code = ("import sys, refquant; a = 'refquant.testing' in sys.modules; import refquant.testing as t; "
            "heavy = sorted(m for m in ('numba', 'hypothesis', 'pytest', 'refquant.backends', 'refquant.qmodel') "
            "if m in sys.modules); f = t.explain_mismatch; "
            "print(a, heavy, f.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "[]", "refquant.testing.explain"]


def test_oracle_refuses_a_bad_directory():
    from refquant.errors import QuantizationTypeError
    from refquant.testing.plugin import Oracle

    with pytest.raises(QuantizationTypeError, match="golden_dir must be"):
        Oracle(3)
