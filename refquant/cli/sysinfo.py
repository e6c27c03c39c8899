"""``refquant info``: what a bug report needs.

The version, NumPy and Numba status, the CPU features that change backend arithmetic (AVX2,
VNNI, ...), the optional backends installed, and the available profiles.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform

__all__ = ["info", "add_parser"]

_FEATURES = ("sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
             "asimd", "asimddp", "i8mm")
_OPTIONAL = ("onnx", "onnxruntime", "torch", "ai-edge-litert", "flatbuffers", "hypothesis", "pytest",
             "mkdocs-material", "matplotlib", "tqdm")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def info() -> dict:
    """Return the facts ``refquant info`` prints, as a dict (JSON-serialisable)."""
    from .. import __version__
    from ..cpu import cpu_features, detect_isa, detect_isa_class
    from ..profiles import PROFILES

    import numpy as np

    numba_status = "not installed"
    try:
        import numba  # a runtime dependency; imported here so that `refquant --help` stays fast
        jit = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
        numba_status = f"{numba.__version__} ({'JIT disabled by NUMBA_DISABLE_JIT' if jit else 'JIT enabled'}, " \
                       f"{numba.config.NUMBA_NUM_THREADS} threads)"
    except Exception as exc:  # pragma: no cover - environment dependent
        numba_status = f"unavailable: {exc}"
    flags = cpu_features()
    return {
        "refquant": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "numba": numba_status,
        "cpu_features": [f for f in _FEATURES if f in flags],
        "u8s8_accumulation": detect_isa(),
        "isa_class": detect_isa_class(),
        "optional_packages": {d: _version(d) for d in _OPTIONAL},
        "profiles": {name: p.description for name, p in sorted(PROFILES.items())},
    }


def _print_info(data: dict) -> None:
    isa_note = {
        "avx2": "x86 AVX2 without VNNI: ONNX Runtime / fbgemm u8*s8 pair sums saturate to int16",
        "vnni": "VNNI present: u8*s8 products accumulate exactly",
        "exact": "no x86 pair saturation on this CPU",
    }[data["u8s8_accumulation"]]
    print(f"refquant {data['refquant']}  (Python {data['python']}, {data['platform']})")
    print(f"numpy    {data['numpy']}")
    print(f"numba    {data['numba']}")
    print(f"CPU      {' '.join(data['cpu_features']) or '(no features detected)'}")
    print(f"isa      {data['u8s8_accumulation']} ({data['isa_class']}): {isa_note}")
    print("optional backends and tools:")
    for name, ver in data["optional_packages"].items():
        print(f"  {name:<16} {ver or '-'}")
    print("profiles:")
    width = max(map(len, data["profiles"]), default=0)
    for name, desc in data["profiles"].items():
        print(f"  {name:<{width}}  {desc}")


def run(args: argparse.Namespace) -> int:
    """``refquant info [--json]``."""
    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_info(data)
    return 0


def add_parser(sub, parents) -> argparse.ArgumentParser:
    """Register ``info`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("info", parents=parents, help="version, Numba status, CPU features, backends and profiles",
                       description="Print what a bug report needs: versions, Numba status, the CPU features that "
                                   "change backend arithmetic, the optional backends installed and the profiles.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=run, parser=p)
    return p
