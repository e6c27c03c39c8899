r"""Quantized add in float32 with SIMD blocks and a scalar tail (position dependent).

A vectorized loop over 64-element blocks (two 32-lane vectors) dequantizes each code with a
fused multiply-add and adds the output zero point *after* rounding; the scalar remainder
dequantizes with separate roundings and adds the zero point *before* rounding. With
$p = \mathrm{fl}(S \cdot (-Z))$ per input and $r = \mathrm{fl}(1/S_y)$:

$$ \text{block: } c = \mathrm{fl}(\mathrm{fma}(S_a, a, p_a) + \mathrm{fma}(S_b, b, p_b)),\quad
   y = \mathrm{clamp}(\mathrm{wrap}_{32}(\mathrm{cvt}(\min(\mathrm{fl}(c\,r), 2^{31} - 128)) + Z_y)) \tag{1} $$
$$ \text{tail: } c = \mathrm{fl}(\mathrm{fl}(S_a (a - Z_a)) + \mathrm{fl}(S_b (b - Z_b))),\quad
   y = \mathrm{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(c\,r) + Z_y))) \tag{2} $$

``cvt`` is x86 ``cvtps2dq`` (RNE; below $-2^{31}$ INT32_MIN); a fused ReLU takes $\max(c, 0)$
first. On ties the two halves differ. Above ``grain`` elements the range is split into
``min(threads, ceil(n / grain))`` chunks of $\lceil n / T \rceil$, each with its own tail.
Mirrors ATen's ``qadd_kernel`` (``QuantizedOpKernels.cpp``, AVX2 build, ``cpu_kernel_vec`` with
``at::parallel_for``). Runtime code: float32 arithmetic only, as the backend does.

Added in 0.1.0 (moved here from the PyTorch face).
"""

from __future__ import annotations

import math

import numpy as np

from ..quantization import fma_f32

__all__ = ["float_add_blocks"]

_F32 = np.float32
_BLOCK = 64  # two Vectorized<quint8/qint8> of 32 lanes per step
_GRAIN = 32768  # at::internal::GRAIN_SIZE
_I32_FLOAT_MAX = _F32(2147483520.0)  # the largest float32 below 2^31


def _block_then_tail(a, sa, za, b, sb, zb, sy, zy, relu, info):
    """Eq. (1) on the whole 64-element blocks of one contiguous range, eq. (2) on the rest."""
    n = a.size
    nv = n // _BLOCK * _BLOCK
    r = _F32(_F32(1) / sy)  # inv_scale = 1.0f / scale
    out = np.empty(n, np.int64)
    qa, qb = a[:nv].astype(_F32), b[:nv].astype(_F32)
    pa, pb = _F32(sa * _F32(-za)), _F32(sb * _F32(-zb))
    da = fma_f32(np.full(nv, sa), qa, np.float64(pa))
    db = fma_f32(np.full(nv, sb), qb, np.float64(pb))
    c = (da + db).astype(_F32)
    if relu:
        c = np.maximum(c, _F32(0))
    with np.errstate(over="ignore"):
        v = np.minimum((c * r).astype(_F32), _I32_FLOAT_MAX).astype(np.float64)
    rounded = np.where(v >= -(2.0 ** 31), np.rint(v), -(2.0 ** 31)).astype(np.int64)  # cvtps2dq: RNE (half to even)
    wrapped = ((rounded + zy + 2 ** 31) % 2 ** 32) - 2 ** 31  # int32 add, wrapping
    out[:nv] = np.clip(wrapped, info.min, info.max)  # saturating packs
    da = (sa * (a[nv:].astype(np.int64) - za).astype(_F32)).astype(_F32)
    db = (sb * (b[nv:].astype(np.int64) - zb).astype(_F32)).astype(_F32)
    c = (da + db).astype(_F32)
    if relu:
        c = np.maximum(c, _F32(0))
    with np.errstate(over="ignore", invalid="ignore"):
        t = ((c * r).astype(_F32) + _F32(zy)).astype(_F32).astype(np.float64)  # zp + x * inv, two roundings
    out[nv:] = np.clip(np.rint(t), info.min, info.max)  # nearbyint: RNE (half to even), clamp in double
    return out


def float_add_blocks(a, a_scale, a_zero_point: int, b, b_scale, b_zero_point: int, y_scale, y_zero_point: int, *,
                     relu: bool = False, num_threads: int = 1) -> np.ndarray:
    """Eqs. (1)-(2): the sum of two same-shape uint8/int8 tensors, in ``a``'s dtype.

    Args:
        a, b: uint8 or int8 arrays of one dtype and shape (validated by the caller).
        a_scale, b_scale, y_scale: float32 scalars. Zero points: ints in the dtype's range.
        relu: Clamp the float sum at 0 before requantizing.
        num_threads: The thread count that splits ranges above 32768 elements (each chunk has
            its own tail, so the result depends on it).

    Returns:
        Array of ``a``'s shape and dtype.
    """
    info = np.iinfo(a.dtype)
    sa, sb, sy = _F32(a_scale), _F32(b_scale), _F32(y_scale)
    fa, fb = a.ravel(), b.ravel()
    n = fa.size
    tasks = 1 if n <= _GRAIN or num_threads == 1 else min(num_threads, math.ceil(n / _GRAIN))
    chunk = max(math.ceil(n / tasks), 1)
    out = np.empty(n, np.int64)
    for start in range(0, n, chunk):  # one parallel task each
        stop = min(start + chunk, n)
        out[start:stop] = _block_then_tail(fa[start:stop], sa, int(a_zero_point), fb[start:stop], sb,
                                           int(b_zero_point), sy, int(y_zero_point), relu, info)
    return out.astype(a.dtype).reshape(a.shape)
