"""The public namespaces: explicit ``__all__`` everywhere, every listed name importable, a light core.

A name removed or renamed by accident, or a heavy import slipped into ``import refquant``, fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys

import pytest

import refquant

PACKAGES = ["refquant", "refquant.kernels", "refquant.nn", "refquant.data", "refquant.backends", "refquant.ops",
            "refquant.calibration", "refquant.passes", "refquant.ptq", "refquant.qat", "refquant.qmodel",
            "refquant.evaluate", "refquant.interop", "refquant.ptq.advanced", "refquant.prune", "refquant.testing",
            "refquant.distill", "refquant.finetune"]
SCRIPTS = {"refquant.__main__", "refquant.data.build_digits"}  # run as programs, export nothing


def _public_modules():
    names = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(mod.__path__, pkg + "."):
            last = info.name.rsplit(".", 1)[-1]
            if not last.startswith("_") and not info.ispkg and info.name not in SCRIPTS:
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", PACKAGES + _public_modules())
def test_every_public_module_has_an_explicit_all(name):
    mod = importlib.import_module(name)
    assert isinstance(getattr(mod, "__all__", None), (list, tuple)), f"{name} has no __all__"
    missing = [n for n in mod.__all__  # a submodule listed in a package's __all__ counts (star-import loads it)
               if not hasattr(mod, n) and importlib.util.find_spec(f"{name}.{n}") is None]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{name}.__all__ has duplicates"


def test_top_level_has_the_textbook_flow():
    """choose parameters -> quantize -> dequantize, under a named profile, from ``refquant`` alone."""
    from refquant.qparams import choose_qparams

    for name in ("choose_qparams", "make_qparams", "quantize", "dequantize", "fake_quantize", "get_profile"):
        assert name in refquant.__all__, name
    assert refquant.choose_qparams is choose_qparams  # the function (defined in refquant.qparams)


def test_import_refquant_does_not_load_numba_or_backends():
    code = ("import sys, refquant; "
            "print(sorted(m for m in ('numba', 'torch', 'onnxruntime', 'refquant.kernels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import refquant loaded {out.strip()}"
