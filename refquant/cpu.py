"""Detect the running CPU's instruction-set features that change backend arithmetic.

Only a few features matter to refquant: whether ONNX Runtime's MLAS and fbgemm run
u8×s8 products through AVX2 ``vpmaddubsw`` (adjacent pairs saturate to int16) or
through VNNI ``vpdpbusd`` (exact); see the ``isa=`` argument of the ONNX Runtime and
PyTorch faces and :meth:`refquant.profiles.Profile.with_isa`.
"""

from __future__ import annotations

import functools
import platform

from .errors import QuantizationValueError

__all__ = ["cpu_features", "detect_isa", "detect_isa_class", "ISA_CHOICES", "ISA_CLASS_CHOICES", "resolve_isa",
           "resolve_isa_class"]

ISA_CHOICES = ("auto", "avx2", "vnni", "exact")
ISA_CLASS_CHOICES = ("auto", "avx2", "vnni", "avx512_vnni", "avx_vnni", "exact")


@functools.lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """Return the CPU flags (lower case) from ``/proc/cpuinfo``; empty when unknown."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return frozenset(flags)


def detect_isa() -> str:
    """Classify the running CPU for u8×s8 accumulation: ``"vnni"``, ``"avx2"`` or ``"exact"``.

    * ``"vnni"``: AVX512-VNNI or AVX-VNNI present (``vpdpbusd``: no intermediate saturation).
    * ``"avx2"``: x86-64 with AVX2 (or SSE4.1) but no VNNI (``vpmaddubsw`` pair saturation).
    * ``"exact"``: anything else (e.g. ARM NEON ``sdot``/``smull`` paths are exact).
    """
    f = cpu_features()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        if "avx512_vnni" in f or "avx_vnni" in f or "avx512vnni" in f:
            return "vnni"
        if "avx2" in f or "sse4_1" in f:
            return "avx2"
    return "exact"


def resolve_isa(isa: str) -> str:
    """Validate ``isa`` and replace ``"auto"`` by :func:`detect_isa`'s answer."""
    if not isinstance(isa, str) or isa not in ISA_CHOICES:
        raise QuantizationValueError(f"isa must be one of {ISA_CHOICES}, got {isa!r}")
    return detect_isa() if isa == "auto" else isa


def detect_isa_class() -> str:
    """Classify the running CPU more finely: ``"avx512_vnni"``, ``"avx_vnni"`` (AVX-VNNI without
    AVX-512 VNNI), ``"avx2"`` (x86-64 without VNNI) or ``"exact"`` (not x86).

    Backends differ here: ONNX Runtime's MLAS uses ``vpdpbusd`` with either VNNI, fbgemm only
    with AVX-512 VNNI (its ``fbgemmHasAvx512VnniSupport``).
    """
    f = cpu_features()
    if detect_isa() == "vnni":
        return "avx512_vnni" if ("avx512_vnni" in f or "avx512vnni" in f) else "avx_vnni"
    return detect_isa()


def resolve_isa_class(isa: str) -> str:
    """Validate ``isa`` (one of :data:`ISA_CLASS_CHOICES`); ``"auto"`` becomes
    :func:`detect_isa_class`'s answer and ``"vnni"`` means ``"avx512_vnni"``."""
    if not isinstance(isa, str) or isa not in ISA_CLASS_CHOICES:
        raise QuantizationValueError(f"isa must be one of {ISA_CLASS_CHOICES}, got {isa!r}")
    if isa == "auto":
        return detect_isa_class()
    return "avx512_vnni" if isa == "vnni" else isa
