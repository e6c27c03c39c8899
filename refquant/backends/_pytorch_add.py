r"""PyTorch ``quantized::add`` / ``quantized::add_relu`` (torch 2.13, x86-64): two kernels.

Re-exported by :mod:`refquant.backends.pytorch` as :func:`add`. Which kernel runs
(``BinaryOps.cpp::qadd``):

* engine ``qnnpack`` with quint8 inputs of one shape: QNNPACK's fixed-point ``q8vadd``
  (:func:`qnnpack_add`);
* everything else (``fbgemm``, ``x86``; qnnpack with qint8, whose ``xnnp_add`` branch needs
  ``USE_XNNPACK``, absent from the 2.13 x86-64 CPU wheel's build flags, ``torch.__config__.show()``;
  measured): ATen's ``qadd_kernel`` in float32 (:func:`aten_add`).

**ATen** (``QuantizedOpKernels.cpp``, AVX2 build). ``cpu_kernel_vec`` runs the vector lambda on
blocks of $2 \times 32$ elements and the scalar lambda on the rest of each thread's range. With
$p = \mathrm{fl}(S \cdot (-Z))$ per input and $r = \mathrm{fl}(1/S_y)$:

$$ \text{vector: } c = \mathrm{fl}(\mathrm{fma}(S_a, a, p_a) + \mathrm{fma}(S_b, b, p_b)),\quad
   y = \mathrm{clamp}(\mathrm{wrap}_{32}(\mathrm{cvt}(\min(\mathrm{fl}(c\,r), 2^{31} - 128)) + Z_y)) $$
$$ \text{scalar: } c = \mathrm{fl}(\mathrm{fl}(S_a (a - Z_a)) + \mathrm{fl}(S_b (b - Z_b))),\quad
   y = \mathrm{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(c\,r) + Z_y))) $$

``cvt`` is ``cvtps2dq`` (RNE; below $-2^{31}$ INT32_MIN); ``relu`` takes $\max(c, 0)$ first. So
the vector lanes add $Z_y$ *after* rounding and the tail *before*: on ties the two differ.
For more than 32768 elements ``at::parallel_for`` splits the range into ``num_threads``
chunks of $\lceil n / T \rceil$ (at most $\lceil n / 32768 \rceil$ of them), each with its own tail:
pass ``torch.get_num_threads()`` as ``num_threads`` (default 1).

**QNNPACK** (``requantization.h::pytorch_qnnp_compute_add_quantization_params``, ``q8vadd/sse2.c``):
$\rho_a = \mathrm{fl}(S_a/S_y)$, $\rho_b$ likewise, each in $[2^{-14}, 2^{8})$ (else the operator
is not created); $e$ = exponent of $\max(\rho_a, \rho_b)$, ``shift`` $= 21 - e$,
$m = \mathrm{RNE}(\rho \cdot 2^{\text{shift}})$; then in int32

$$ y = \mathrm{clamp}\big(\mathrm{RDBPOT}(m_a (a - Z_a) + m_b (b - Z_b),\ \text{shift}) + Z_y,\ q_{lo}, 255\big) $$

(round half away from zero), $q_{lo} = Z_y$ with ``relu`` (an empty range $Z_y = 255$ is refused).

Both measured bit-exact (``tests/test_conformance_pytorch_ops.py``), with and without ReLU,
random, tie-heavy and saturating parameters, 1 to 200 elements, and 32769 and 100001 elements on
1 and 2 threads.

Added in 0.1.0.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import fixedpoint as fp
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..quantize import fma_f32
from ._pytorch_ops import _engine, _scalar_scale, _zero_point

__all__ = ["add", "aten_add", "qnnpack_add"]

_F32 = np.float32
_GRAIN = 32768  # at::internal::GRAIN_SIZE
_BLOCK = 64  # cpu_kernel_vec: two Vectorized<quint8/qint8> of 32 lanes per step
_I32_FLOAT_MAX = _F32(2147483520.0)  # QuantizeAvx2's int32_float_max_val: largest float below 2^31


def _aten_block(a, sa, za, b, sb, zb, sy, zy, relu, info):
    """``cpu_kernel_vec`` on one contiguous range: vector blocks, then the scalar tail."""
    n = a.size
    nv = n // _BLOCK * _BLOCK
    r = _F32(_F32(1) / sy)  # inv_scale = 1.0f / scale
    out = np.empty(n, np.int64)
    # vector lambda: Vectorized<T>::dequantize = fmadd(scale, float(q), scale * -zp)
    qa, qb = a[:nv].astype(_F32), b[:nv].astype(_F32)
    pa, pb = _F32(sa * _F32(-za)), _F32(sb * _F32(-zb))
    da = fma_f32(np.full(nv, sa), qa, np.float64(pa))
    db = fma_f32(np.full(nv, sb), qb, np.float64(pb))
    c = (da + db).astype(_F32)
    if relu:
        c = np.maximum(c, _F32(0))
    with np.errstate(over="ignore"):
        v = np.minimum((c * r).astype(_F32), _I32_FLOAT_MAX).astype(np.float64)  # QuantizeAvx2 (ATen)
    rounded = np.where(v >= -(2.0 ** 31), np.rint(v), -(2.0 ** 31)).astype(np.int64)  # cvtps2dq, RNE
    wrapped = ((rounded + zy + 2 ** 31) % 2 ** 32) - 2 ** 31  # _mm256_add_epi32
    out[:nv] = np.clip(wrapped, info.min, info.max)  # packs_epi32, packus/packs_epi16, min/max
    # scalar lambda: dequantize_val = scale * (q - zp); quantize_val = fbgemm::Quantize (LEGACY)
    da = (sa * (a[nv:].astype(np.int64) - za).astype(_F32)).astype(_F32)
    db = (sb * (b[nv:].astype(np.int64) - zb).astype(_F32)).astype(_F32)
    c = (da + db).astype(_F32)
    if relu:
        c = np.maximum(c, _F32(0))
    with np.errstate(over="ignore", invalid="ignore"):
        t = ((c * r).astype(_F32) + _F32(zy)).astype(_F32).astype(np.float64)  # zp + x * inv, two roundings
    out[nv:] = np.clip(np.rint(t), info.min, info.max)  # nearbyint (RNE), clamp in double
    return out


def aten_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False,
             num_threads=1):
    """ATen ``qadd_kernel`` (module docstring): arguments as :func:`add`; returns ``a.dtype``."""
    a, b, info, (sa, za), (sb, zb), (sy, zy) = _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                                     y_zero_point, relu)
    threads = _threads(num_threads)
    fa, fb = a.ravel(), b.ravel()
    n = fa.size
    tasks = 1 if n <= _GRAIN or threads == 1 else min(threads, math.ceil(n / _GRAIN))
    chunk = max(math.ceil(n / tasks), 1)
    out = np.empty(n, np.int64)
    for start in range(0, n, chunk):  # one at::parallel_for task each
        stop = min(start + chunk, n)
        out[start:stop] = _aten_block(fa[start:stop], sa, za, fb[start:stop], sb, zb, sy, zy, relu, info)
    return out.astype(a.dtype).reshape(a.shape)


def qnnpack_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False):
    """QNNPACK ``q8vadd`` (module docstring): quint8 only; arguments as :func:`add`.

    Raises:
        UnsupportedError: a scale ratio outside $[2^{-14}, 2^8)$, a 0-d input, or ``relu``
            with $Z_y = 255$ (QNNPACK refuses to create the operator; torch raises).
    """
    a, b, info, (sa, za), (sb, zb), (sy, zy) = _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                                     y_zero_point, relu)
    if a.dtype != np.uint8:
        raise QuantizationTypeError(f"qnnpack's add takes quint8 (uint8) inputs, got {a.dtype}")
    if a.ndim == 0:
        raise UnsupportedError("qnnpack_add() needs inputs of rank >= 1 (torch: 'Got empty input tensor')")
    lo = zy if relu else 0  # activationLimits<uint8_t>(RELU) = (zero_point, 255)
    if lo >= 255:
        raise UnsupportedError(f"qnnpack's add needs output_min < output_max, got [{lo}, 255] (relu with "
                               f"y_zero_point = {zy})")
    ratios = (_F32(sa / sy), _F32(sb / sy))  # a_scale / sum_scale in float32 (offline)
    for rho, name in zip(ratios, ("a_scale / y_scale", "b_scale / y_scale")):
        if not 2.0 ** -14 <= float(rho) < 2.0 ** 8:
            raise UnsupportedError(f"{name} = {float(rho)!r} must be in [2^-14, 2^8) for qnnpack's add")
    exponent = int(np.frexp(max(ratios))[1]) - 1  # (bits >> 23) - 127 of a normal float
    shift = 21 - exponent  # in [13, 35]
    if shift > 31:  # QNNPACK asserts shift < 32 (asserts are off in release builds)
        raise UnsupportedError(f"qnnpack's add with both scale ratios below 2^-10 shifts by {shift} >= 32 "
                               f"(undefined in QNNPACK's C; torch returns Z_y or Z_y - 1), not modelled")
    ma, mb = (int(np.rint(np.ldexp(np.float64(rho), shift))) for rho in ratios)  # lrintf(rho * 2^shift), exact
    # |m (q - Z)| sums stay below 2 * 255 * 2^22 < 2^31: the int32 lanes (which wrap on the
    # pre-folded zero-point product) hold the exact value
    acc = ma * (a.astype(np.int64) - za) + mb * (b.astype(np.int64) - zb)  # int64, exact
    q = fp.rounding_divide_by_pot(acc, shift).astype(np.int64)  # (acc & mask) - (acc < 0) > mask >> 1
    y = np.clip(np.clip(q, -32768, 32767) + zy, -32768, 32767)  # packs_epi32, adds_epi16(y_zero_point)
    return np.clip(y, lo, 255).astype(np.uint8).reshape(a.shape)  # packus_epi16, max/min with y_min, y_max


def add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False, engine="fbgemm",
        num_threads=1):
    """``torch.ops.quantized.add`` (``add_relu`` with ``relu=True``): quantized element-wise sum.

    $y \\approx \\mathrm{clamp}(\\mathrm{round}((S_a (a - Z_a) + S_b (b - Z_b)) / S_y) + Z_y)$, computed as
    the kernel the engine selects (module docstring: ATen float32 or QNNPACK fixed point).

    Args:
        a, b: uint8 (quint8) or int8 (qint8) arrays of one dtype and one shape.
        a_scale, b_scale, y_scale: positive floats (float32).
        a_zero_point, b_zero_point, y_zero_point: ints in the dtype's range.
        relu: fuse a ReLU (``quantized::add_relu``).
        engine: ``"fbgemm"``, ``"x86"`` or ``"qnnpack"``.
        num_threads: ATen's intra-op thread count (``torch.get_num_threads()``); it changes
            results only above 32768 elements, where each thread's range has its own tail.

    Returns:
        Array of ``a``'s dtype and shape.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad arguments (named).
        UnsupportedError: qnnpack refuses the scales or the output range (:func:`qnnpack_add`).
    """
    engine = _engine(engine)
    if engine == "qnnpack" and isinstance(a, np.ndarray) and a.dtype == np.uint8:
        _threads(num_threads)
        return qnnpack_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, relu=relu)
    return aten_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, relu=relu,
                    num_threads=num_threads)


def _threads(num_threads) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"num_threads must be an int, got {num_threads!r}")
    if num_threads < 1:
        raise QuantizationValueError(f"num_threads must be >= 1, got {num_threads}")
    return int(num_threads)


def _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, relu):
    for x, name in ((a, "a"), (b, "b")):
        if not isinstance(x, np.ndarray):
            raise QuantizationTypeError(f"{name} must be a NumPy uint8 or int8 array, got {type(x).__name__}")
    if a.dtype not in (np.uint8, np.int8):
        raise QuantizationTypeError(f"a must have dtype uint8 (quint8) or int8 (qint8), got {a.dtype}")
    if b.dtype != a.dtype:
        raise QuantizationTypeError(f"b must have a's dtype {a.dtype} (PyTorch adds one quantized type), got {b.dtype}")
    if a.shape != b.shape:
        raise ShapeError(f"b must have a's shape {a.shape} (refquant models same-shape add only), got {b.shape}")
    if not isinstance(relu, (bool, np.bool_)):
        raise QuantizationTypeError(f"relu must be a bool, got {relu!r}")
    info = np.iinfo(a.dtype)
    params = [(_scalar_scale(s, sn), int(_zero_point(z, a.dtype, zn)))
              for s, sn, z, zn in ((a_scale, "a_scale", a_zero_point, "a_zero_point"),
                                   (b_scale, "b_scale", b_zero_point, "b_zero_point"),
                                   (y_scale, "y_scale", y_zero_point, "y_zero_point"))]
    return (a, b, info, *params)
