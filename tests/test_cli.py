"""The ``refquant`` command line: ``refquant info`` and bad arguments (``refquant compare``: test_cli_compare.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import refquant
from refquant.cli import info, main
from refquant.cpu import detect_isa, detect_isa_class
from refquant.profiles import PROFILES


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"refquant {refquant.__version__}  (Python ")
    assert f"isa      {detect_isa()} ({detect_isa_class()}):" in out
    width = max(map(len, PROFILES))
    for name in PROFILES:  # every profile is listed with its description, names aligned
        assert f"  {name:<{width}}  {PROFILES[name].description}" in out


def test_info_json_is_the_info_dict(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(json.dumps(info()))  # JSON-serialisable and the same facts
    assert data["refquant"] == refquant.__version__
    assert data["u8s8_accumulation"] in ("avx2", "vnni", "exact")
    assert set(data["profiles"]) == set(PROFILES)
    assert set(data["optional_packages"]) >= {"onnx", "onnxruntime", "torch", "ai-edge-litert"}


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: refquant" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bogus"], ["info", "--yaml"]])
def test_bad_arguments_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: refquant" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    res = subprocess.run([sys.executable, "-m", "refquant", "info", "--json"], capture_output=True, text=True,
                         check=True)
    assert json.loads(res.stdout)["refquant"] == refquant.__version__
