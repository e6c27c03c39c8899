"""ATen's CPU float32 kernels that PyTorch-side calibrators call, transcribed.

PyTorch's ``HistogramObserver`` and NVIDIA pytorch-quantization's ``HistogramCalibrator`` are
Python code over torch tensors; their results are decided by the float32 arithmetic of a few
ATen CPU kernels. Each function below is one of them, with the rounding steps written out:

* :func:`linspace_f32` — ``torch.linspace`` (``linspace_kernel``): the first half is
  ``start + step*i``, the second ``end - step*(steps-1-i)``, each a fused multiply-add in
  the AVX2/AVX-512 builds of the kernel (one rounding), two roundings in the ``default`` build.
* :func:`arange_f32` — ``torch.arange`` (``arange_kernel``): float64 ``start + step*i``
  rounded to float32, except inside vector chunks, where the chunk's first element is rounded
  first and the others are ``base + k*step`` from that rounded base.
* :func:`histc_f32` — ``torch.histc`` (``histogramdd_cpu_contiguous`` with
  ``LINEAR_INTERPOLATION``): bin ``trunc((x - lo) * bins / (hi - lo))`` in float32.
* :func:`cascade_sum_f32` — ``torch.sum`` of a contiguous float32 vector (``cascade_sum``):
  float32 accumulators, vector lanes, four interleaved rows and a four-level cascade.
* :func:`cumsum_f32` — ``torch.cumsum`` of float32: accumulated in float64, each prefix
  rounded to float32.

``capability`` names ATen's CPU dispatch as ``torch.backends.cpu.get_cpu_capability()`` does.
It decides one thing here: whether ``linspace`` fuses its multiply-add (the AVX2 build does; the
``default`` build, without FMA, does not). ``sum`` and ``arange`` use 8 float32 lanes in every
x86-64 build: ATen registers them without an AVX-512 variant, so an AVX-512 machine runs their
AVX2 build (measured with torch 2.13 under ``ATEN_CPU_CAPABILITY`` = ``avx512``, ``avx2``,
``default``). Kernels that ATen splits across threads (32768 elements or more, with more than one
thread) are computed here as one chunk; PyTorch's bits then depend on its thread count.

Offline arithmetic: these choose calibration ranges and never run in an integer model.

Added in 0.1.0.
"""

from __future__ import annotations

import os
import platform

import numpy as np

from .. import _validate as V
from ..cpu import cpu_features

__all__ = ["CAPABILITIES", "resolve_capability", "fma_f32", "linspace_f32", "arange_f32", "histc_f32",
           "cascade_sum_f32", "cumsum_f32"]

CAPABILITIES = ("auto", "avx512", "avx2", "default")
# float32 lanes of the Vectorized<float> that sum and arange run with (AVX2 build on AVX-512 machines)
_LANES = {"avx512": 8, "avx2": 8, "default": 8}


def resolve_capability(capability: str) -> str:
    """``"avx512"``, ``"avx2"`` or ``"default"``; ``"auto"`` follows ATen's own choice
    (``ATEN_CPU_CAPABILITY`` if set, else AVX-512 F/BW/DQ/VL, else AVX2 with FMA, else default)."""
    capability = V.as_choice(capability, "capability", CAPABILITIES)
    if capability != "auto":
        return capability
    env = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if env in _LANES:
        return env
    f = cpu_features()
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "default"  # not measured off x86-64: pass the capability explicitly there
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"} <= f:
        return "avx512"
    if {"avx2", "fma"} <= f:
        return "avx2"
    return "default"


def fma_f32(a, b, c) -> np.ndarray:
    """Float32 ``a*b + c`` rounded once (C ``fmaf``), for float32 ``a, b, c``.

    The product of two float32 values is exact in float64; the float64 sum is made
    round-to-odd (its error, from Knuth's two-sum, nudges an inexact even result one ulp
    towards the exact value), so that rounding it to float32 rounds the exact value.
    """
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b                                               # exact (48 significant bits)
    s = p + c                                               # float64, rounded to nearest
    bp = s - c
    err = (p - bp) + (c - (s - bp))                         # two-sum: s + err == p + c exactly
    bits = np.asarray(s).view(np.int64)
    nudge = (err != 0) & ((bits & 1) == 0)
    s = np.where(nudge, np.nextafter(s, s + err), s)        # round to odd
    return s.astype(np.float32)


def linspace_f32(start, end, steps: int, capability: str = "auto") -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32 on the CPU.

    With $s = \\mathrm{f32}(\\mathrm{f32}(e - b) / (n - 1))$: element $i < n/2$ is
    $b + s\\,i$, element $i \\ge n/2$ is $e - s\\,(n - 1 - i)$ — fused (one rounding) under
    ``avx512``/``avx2``, two roundings under ``default``.

    Returns:
        ``(steps,)`` float32.
    """
    fused = resolve_capability(capability) != "default"
    b, e = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([b], np.float32)
    step = np.float32(np.float32(e - b) / np.float32(steps - 1))
    half = steps // 2
    i = np.arange(half).astype(np.float32)                  # (half,) float32, exact below 2**24
    k = (steps - 1 - np.arange(half, steps)).astype(np.float32)
    if fused:
        first, second = fma_f32(step, i, b), fma_f32(-step, k, e)
    else:
        first, second = b + step * i, e - step * k
    return np.concatenate([first, second]).astype(np.float32)


def arange_f32(start, end, step, capability: str = "auto") -> np.ndarray:
    """``torch.arange(start, end, step)`` with a float32 result on the CPU.

    ``start``, ``end``, ``step`` are float64 (ATen's accumulate type for float); the length is
    $\\lceil (e - b) / s \\rceil$. Element $i$ is $\\mathrm{f32}(b + s\\,i)$, except in the
    vectorized chunks of ``2 * lanes`` elements: there each vector of ``lanes`` elements starts
    at $B = \\mathrm{f32}(b + s\\,i_0)$ and holds $\\mathrm{f32}(B + s\\,k)$ (float64 sum).

    Returns:
        ``(n,)`` float32.
    """
    lanes = _LANES[resolve_capability(capability)]
    b, e, s = float(start), float(end), float(step)
    n = int(np.ceil((e - b) / s))
    out = (b + s * np.arange(n, dtype=np.float64)).astype(np.float32)   # the scalar path (tail)
    n_vec = (n // (2 * lanes)) * (2 * lanes)                            # vectorized_loop: 2 vectors a step
    if n_vec:
        i0 = np.arange(0, n_vec, lanes, dtype=np.float64)               # each vector's first index
        base = (b + s * i0).astype(np.float32).astype(np.float64)       # (n_vec/lanes,) rounded base
        k = np.arange(lanes, dtype=np.float64)
        out[:n_vec] = (base[:, None] + s * k[None, :]).astype(np.float32).reshape(-1)
    return out


def histc_f32(x: np.ndarray, bins: int, lo: float, hi: float, capability: str = "auto") -> np.ndarray:
    """``torch.histc(x, bins, min=lo, max=hi)`` for float32 ``x``: float32 counts.

    An empty range ``lo == hi`` is replaced by ``x``'s own min and max, and then, if still
    empty, by ``[lo - 1, hi + 1]`` (float64). The edges are :func:`linspace_f32`; values outside
    ``[edge_0, edge_bins]`` are dropped; the bin of $x$ is
    $\\lfloor \\mathrm{f32}(\\mathrm{f32}(x - l)\\cdot \\mathrm{bins}) / \\mathrm{f32}(h - l) \\rfloor$,
    and $x = h$ goes into the last bin.

    A quotient that is not a finite float below $2^{63}$ (a range beyond float32's maximum,
    where $x - l$ or $h - l$ overflows) converts to ``INT64_MIN`` on x86-64, and that index,
    scaled to bytes, wraps to offset 0: such values land in bin 0, as in torch.

    Counting is exact here; torch counts in float32, which stops at $2^{24}$ in one bin.

    Returns:
        ``(bins,)`` float32.
    """
    lo, hi = float(lo), float(hi)
    if lo == hi and x.size:
        lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    edges = linspace_f32(lo, hi, bins + 1, capability)
    left, right = edges[0], edges[-1]                          # float32
    v = x[(x >= left) & (x <= right)].astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        q = ((v - left) * np.float32(bins)) / np.float32(right - left)           # float32
        ok = np.abs(q) < np.float32(2.0 ** 63)                                   # False for inf and NaN
        pos = np.where(ok, np.where(ok, q, 0).astype(np.int64), 0)               # truncation; else bin 0
    pos[pos == bins] = bins - 1
    return np.bincount(pos, minlength=bins).astype(np.float32)


def _ceil_log2(x: int) -> int:
    return 1 if x <= 2 else int(x - 1).bit_length()


def _multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """ATen ``multi_row_sum``: ``rows`` is ``(size, nrows, ...)`` float32; sums over axis 0 with
    four accumulator levels that are folded every ``level_step`` elements."""
    size = rows.shape[0]
    level_power = max(4, _ceil_log2(size) // 4)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = np.zeros((4,) + rows.shape[1:], np.float32)
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            acc[0] += rows[i]
            i += 1
        for j in range(1, 4):
            acc[j] += acc[j - 1]
            acc[j - 1] = 0
            if i & (level_mask << (j * level_power)):
                break
    for tail in range(i, size):
        acc[0] += rows[tail]
    for j in range(1, 4):
        acc[0] += acc[j]
    return acc[0]


def _row_sum(items: np.ndarray) -> np.ndarray:
    """ATen ``row_sum``: items ``(size, ...)`` as a ``(-1, 4)`` array of partial sums, the tail
    added to row 0, then rows 1..3 added to row 0."""
    size = items.shape[0]
    size_ilp = size // 4
    partial = _multi_row_sum(items[:size_ilp * 4].reshape((size_ilp, 4) + items.shape[1:]))
    for i in range(size_ilp * 4, size):
        partial[0] += items[i]
    for k in range(1, 4):
        partial[0] += partial[k]
    return partial[0]


def cascade_sum_f32(a: np.ndarray, capability: str = "auto") -> np.float32:
    """``torch.sum`` of a contiguous 1-D float32 array on the CPU (``cascade_sum``).

    With ``lanes`` float32 lanes: the first ``lanes * (n // lanes)`` elements are summed as
    vectors by :func:`_row_sum`; the scalar tail is summed in order into ``acc = 0``, and then
    the lanes of the vector sum are added to ``acc`` one by one. Shorter arrays use the scalar
    :func:`_row_sum`.

    Returns:
        A float32 scalar.
    """
    lanes = _LANES[resolve_capability(capability)]
    a = np.ascontiguousarray(a, np.float32).reshape(-1)
    n = a.size
    if n < lanes:
        return np.float32(_row_sum(a))
    n_vec = n // lanes
    vec = _row_sum(a[:n_vec * lanes].reshape(n_vec, lanes))   # (lanes,) float32
    acc = np.float32(0)
    for v in a[n_vec * lanes:]:
        acc = np.float32(acc + v)
    for v in vec:
        acc = np.float32(acc + v)
    return acc


def cumsum_f32(a: np.ndarray) -> np.ndarray:
    """``torch.cumsum`` of float32 on the CPU: a float64 running sum, each prefix rounded to float32."""
    return np.cumsum(np.asarray(a, np.float32).astype(np.float64)).astype(np.float32)
