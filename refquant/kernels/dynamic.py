r"""Dynamic-range ("hybrid") quantization: float activations quantized at run time, float output.

A dynamic linear layer takes a float32 input $x$ $(M, K)$, int8 weights $w$ $(N, K)$ with float32
scales $S_w$ (one, or one per output channel $n$; zero point 0 for the per-row rules) and a float32
bias $b$, and returns float32 $(M, N)$:

$$ (S_x, Z_x) = \mathrm{choose}(\min x, \max x) \quad \text{per call or per row } m \tag{1} $$
$$ q_{mk} = \mathrm{clamp}(\mathrm{round}(x_{mk} / S_x) + Z_x) \tag{2} $$
$$ \mathrm{acc}_{mn} = \textstyle\sum_k (q_{mk} - Z_x)\, w_{nk} \quad \text{(int32)} \tag{3} $$
$$ y_{mn} = \mathrm{fl}(\mathrm{acc}_{mn}) \cdot S_x S_w[n] + b_n \quad \text{(float32, rounded as the backend rounds)} \tag{4} $$

Everything here is run-time arithmetic: a backend computes it on every call. Which rule a backend
runs is data in its profile (``LayerSpec.dynamic_input``, ``dynamic_output``;
:mod:`refquant.ops.dynamic` reads them). The per-tensor rules quantize eq. (2) with the profile's
own QUANTIZE (:func:`refquant.quantization.quantize`); the per-row rules do it here, because the
backends round differently inside one row.

| function | step | mirrors |
|---|---|---|
| :func:`choose_u8_nudged` | (1), per call | ATen ``ChooseQuantizationParams`` (PyTorch ``quantized::linear_dynamic``) |
| :func:`choose_u8_dql` | (1), per call | ONNX Runtime ``GetQuantizationParameter<uint8_t>`` (``DynamicQuantizeLinear``) |
| :func:`quantize_rows_symmetric_s8` | (1), (2) per row | TFLite ``NeonSymmetricQuantizeFloats`` (NEON_2_SSE on x86) |
| :func:`quantize_rows_asymmetric_s8` | (1), (2) per row | TFLite ``NeonAsymmetricQuantizeFloats`` (NEON_2_SSE on x86) |
| :func:`quantize_rows_qd8` | (1), (2) per row | XNNPACK ``xnn_f32_qd8_asymmetric_quantization_params`` + ``f32-qs8-vcvt`` |
| :func:`dot_s8_sign_transfer`, :func:`row_sums_int16_lanes` | (3) | TFLite ``SseMatrixBatchVectorMultiplyAccumulateImpl``, ``SseReductionSumVector`` |
| :func:`dynamic_output` | (4) | fbgemm, qnnpack, TFLite, MLAS and XNNPACK output stages |

Measured against LiteRT 2.3.0, ONNX Runtime 1.32 and torch 2.13 (``tests/test_conformance_dynamic.py``,
``tests/test_conformance_pytorch_ops.py``); the Concepts page "What we measured beyond the design
notes" lists each finding (D1-D9).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, INT32_MIN, wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..modes import DYNAMIC_OUTPUTS, check_name
from ..quantization import fma_f32
from ..rounding import round_half_away_from_zero
from .gemm import gemm

__all__ = ["choose_u8_nudged", "choose_u8_dql", "quantize_rows_symmetric_s8", "quantize_rows_asymmetric_s8",
           "quantize_rows_qd8", "dot_s8_sign_transfer", "row_sums_int16_lanes", "dynamic_output"]

_F32 = np.float32
_SMALL_SCALE = _F32(6.1e-5)  # ATen QuantUtils.h SMALL_SCALE_THRESHOLD: float16's smallest normal, as float
_NEON_BLOCK = 8  # TFLite's Neon*QuantizeFloats: a vector body of 2 x 4 floats, then a scalar tail
_SSE_BLOCK = 16  # TFLite's SSE dot and row-sum kernels: 16 int8 per step


# ---------------------------------------------------------------- eq. (1): per-tensor parameters

def choose_u8_nudged(x_min, x_max, *, reduce_range: bool = False) -> tuple[np.ndarray, int]:
    """ATen ``ChooseQuantizationParams`` for $[0, 255]$ ($[0, 127]$ with ``reduce_range``): float64
    scale, smaller-error zero point, RNE.

    $m = \\min(x_{min}, 0)$, $M = \\max(x_{max}, 0)$ (float32); $S = (M - m) / (q_{max} - q_{min})$ in
    float64 (0.1 if $\\mathrm{fl}(S)$ is 0 or its float32 reciprocal is infinite); below
    6.1e-5 the scale is raised to it and $m, M$ rescaled in float32. $Z$ is
    $q_{min} - m/S$ or $q_{max} - M/S$, whichever has the smaller error $|q| - |r/S|$, clamped,
    then rounded half to even (``nearbyint``). Equals
    ``refquant.backends.pytorch.choose_qparams_dynamic(x_min, x_max, qmin=0, qmax=255, reduce_range=...)``
    on finite input (that face function also takes NaN, other ranges and ``preserve_sparsity``).

    Args:
        x_min, x_max: Finite floats, ``x_min <= x_max`` (rounded to float32).
        reduce_range: Use $[0, 127]$.

    Returns:
        ``(scale, zero_point)``: a 0-d float32 array (the C++ ``float scale``) and an int.
    """
    m, M = _finite_range(x_min, x_max)
    qmin, qmax = (0, 127) if V.as_flag(reduce_range, "reduce_range", ints=False) else (0, 255)
    m, M = min(m, _F32(0)), max(M, _F32(0))
    scale = (float(M) - float(m)) / (qmax - qmin)  # float64
    with np.errstate(divide="ignore", over="ignore"):
        if _F32(scale) == 0 or np.isinf(_F32(1) / _F32(scale)):
            scale = 0.1
    if scale < float(_SMALL_SCALE):
        org = _F32(scale)
        scale = float(_SMALL_SCALE)
        if m == 0:
            M = _F32(_SMALL_SCALE * _F32(qmax - qmin))
        elif M == 0:
            m = _F32(-_SMALL_SCALE * _F32(qmax - qmin))
        else:
            amplifier = _F32(_SMALL_SCALE / org)
            m, M = _F32(m * amplifier), _F32(M * amplifier)
    from_min, from_max = qmin - float(m) / scale, qmax - float(M) / scale
    err_min, err_max = abs(qmin) - abs(float(m) / scale), abs(qmax) - abs(float(M) / scale)
    z = from_min if err_min < err_max else from_max
    zp = qmin if z < qmin else qmax if z > qmax else int(np.rint(z))
    return np.asarray(scale, _F32), zp


def choose_u8_dql(x_min, x_max) -> tuple[np.ndarray, int]:
    """ONNX ``DynamicQuantizeLinear`` parameters as ONNX Runtime computes them, all float32.

    $m = \\min(x_{min}, 0)$, $M = \\max(x_{max}, 0)$; $S = 1$ if $M = m$ else $\\mathrm{fl}((M - m) / 255)$;
    $Z = \\mathrm{RNE}(\\mathrm{clamp}(\\mathrm{fl}(0 - \\mathrm{fl}(m / S)), 0, 255))$. A degenerate scale (0 by
    underflow) is returned as ORT computes it ($Z$ is then 255). Equals
    ``refquant.backends.onnxruntime.dynamic_qparams(x, variant="onnxruntime")`` for finite ``x``.

    Returns:
        ``(scale, zero_point)``: a 0-d float32 array and an int in $[0, 255]$.
    """
    m, M = _finite_range(x_min, x_max)
    m, M = min(m, _F32(0)), max(M, _F32(0))
    with np.errstate(all="ignore"):
        scale = _F32(1) if M == m else _F32((M - m) / _F32(255))
        z = _F32(_F32(0) - _F32(m / scale))
    z = z if z < _F32(255) else _F32(255)  # std::min(255.f, z): NaN (0 / 0) -> 255
    z = z if _F32(0) < z else _F32(0)
    return np.asarray(scale, _F32), int(np.rint(z))


def _finite_range(x_min, x_max):
    m, M = (V.as_finite_f32(v, name) for v, name in ((x_min, "x_min"), (x_max, "x_max")))
    if not m <= M:
        raise QuantizationValueError(f"x_min must be <= x_max, got {float(m)!r} and {float(M)!r}")
    return m, M


# ---------------------------------------------------------------- eq. (1), (2): per-row codes

def _rows(x) -> np.ndarray:
    a = V.asarray(x, "x", kinds=None, what="a float32 array")
    if a.dtype != np.float32:
        raise QuantizationTypeError(f"x must be a float32 array, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] == 0:
        raise ShapeError(f"x must have shape (M, K) with K >= 1, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise QuantizationValueError("x must be finite: its range chooses the quantization parameters")
    return a


def _c_cast_int32(v: np.ndarray) -> np.ndarray:
    """``static_cast<int32_t>(v)`` on x86 (``cvttss2si``): toward zero; NaN, $\\pm\\infty$ and
    $|v| \\ge 2^{31}$ give INT32_MIN. int64."""
    v = np.asarray(v, np.float64)
    ok = np.isfinite(v) & (np.abs(v) < 2.0 ** 31)
    return np.where(ok, np.trunc(np.where(ok, v, 0.0)), INT32_MIN).astype(np.int64)


def _round_neon2sse(v: np.ndarray) -> np.ndarray:
    """TFLite's ``RoundToNearest`` for ``__ARM_ARCH < 8``, as NEON_2_SSE runs it on x86:
    $\\mathrm{trunc}(\\mathrm{fl}(v \\pm 0.5))$ (sign of $v$), so 0.49999997 rounds to 1 (the float32 trap);
    ``vcvtq_s32_f32`` saturates: $v \\ge 2^{31}$ gives INT32_MAX, NaN and $v \\le -2^{31}$ INT32_MIN. int64."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = (v + np.where(v < 0, _F32(-0.5), _F32(0.5))).astype(_F32).astype(np.float64)
    return np.where(s >= 2.0 ** 31, INT32_MAX, _c_cast_int32(s))


def _round_body_and_tail(v: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """$\\mathrm{round}(v) + Z$ as ``Neon*QuantizeFloats`` forms it, before the clamp. Columns in whole
    blocks of 8: ``RoundToNearest`` (:func:`_round_neon2sse`), then $Z$ added in int32 (wraps).
    The tail: ``static_cast<int32>(Z + std::round(v))`` with the sum in float32 (RHAZ, exact). int64."""
    n = v.shape[1] - v.shape[1] % _NEON_BLOCK
    z = offset.reshape(-1, 1)
    out = np.empty(v.shape, np.int64)
    out[:, :n] = wrap_int32(_round_neon2sse(v[:, :n]) + z)
    with np.errstate(invalid="ignore", over="ignore"):
        tail = (z.astype(_F32) + round_half_away_from_zero(v[:, n:])).astype(_F32)
    out[:, n:] = _c_cast_int32(tail)
    return out


def quantize_rows_symmetric_s8(x) -> tuple[np.ndarray, np.ndarray]:
    """TFLite hybrid kernels' per-row symmetric quantization (``asymmetric_quantize_inputs`` false).

    Per row, float32: $r = \\max(|\\min x|, |\\max x|)$; $S = \\mathrm{fl}(r / 127)$,
    $q = \\mathrm{clamp}(\\mathrm{round}(\\mathrm{fl}(x \\cdot \\mathrm{fl}(127 / r))), -127, 127)$ (the reciprocal is
    formed as $127/r$, not $1/S$). A row of zeros gives $q = 0$, $S = 1$. ``round`` is
    position dependent (:func:`_round_body_and_tail`): $\\mathrm{trunc}(\\mathrm{fl}(v \\pm 0.5))$ in whole
    blocks of 8 columns, ``std::round`` (RHAZ) in the tail. Mirrors ``NeonSymmetricQuantizeFloats``,
    which the x86 build runs through NEON_2_SSE (GCC with SSE4.1); measured on LiteRT 2.3.0.

    Args:
        x: float32 ``(M, K)``, $K \\ge 1$, finite.

    Returns:
        ``(q, scale)``: int8 ``(M, K)`` and float32 ``(M,)``.
    """
    x = _rows(x)
    r = np.maximum(np.abs(x.min(axis=1)), np.abs(x.max(axis=1)))  # (M,) float32
    zero = r == 0
    r1 = np.where(zero, _F32(1), r)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.where(zero, _F32(1), r1 / _F32(127)).astype(_F32)
        inv = (_F32(127) / r1).astype(_F32)  # inf for a subnormal-sized row: then every code is +-127
        v = (x * inv[:, None]).astype(_F32)
    q = np.clip(_round_body_and_tail(v, np.zeros(len(x), np.int64)), -127, 127)
    q[zero] = 0
    return q.astype(np.int8), scale


def quantize_rows_asymmetric_s8(x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFLite hybrid kernels' per-row asymmetric quantization (``asymmetric_quantize_inputs`` true,
    what the TFLite converter writes for FULLY_CONNECTED).

    Per row: $m = \\min(\\min x, 0)$, $M = \\max(\\max x, 0)$ (float32, ``NeonMinMax``);
    $S_d = \\mathrm{fl}_{32}(M - m) / 255$ in double (the difference is a float32 one);
    $Z = -128 - m/S_d$ or $127 - M/S_d$, whichever error $|q| + |r/S_d|$ is smaller, in double,
    clamped to $[-128, 127]$, else ``round`` (RHAZ); $S = \\mathrm{fl}_{32}(S_d)$,
    $q = \\mathrm{clamp}(\\mathrm{round}(\\mathrm{fl}(x \\cdot \\mathrm{fl}(1 / S))) + Z, -128, 127)$ with the rounding
    of :func:`quantize_rows_symmetric_s8`. A row with $m = M$ gives $q = 0$, $S = 1$, $Z = 0$.
    Mirrors ``NeonAsymmetricQuantizeFloats`` through NEON_2_SSE (the portable C++ version forms
    $M - m$ in double; measured: LiteRT 2.3.0 does not).

    Returns:
        ``(q, scale, zero_point)``: int8 ``(M, K)``, float32 ``(M,)``, int32 ``(M,)``.
    """
    x = _rows(x)
    m = np.minimum(x.min(axis=1), _F32(0))
    M = np.maximum(x.max(axis=1), _F32(0))
    same = m == M
    s_d = np.where(same, 1.0, (M - m).astype(_F32).astype(np.float64) / 255.0)  # (M,) float64
    md, Md = m.astype(np.float64), M.astype(np.float64)
    z_d = np.where(128.0 + np.abs(md / s_d) < 127.0 + np.abs(Md / s_d), -128.0 - md / s_d, 127.0 - Md / s_d)
    zp = np.where(z_d <= -128, -128, np.where(z_d >= 127, 127, round_half_away_from_zero(z_d))).astype(np.int64)
    zp[same] = 0
    scale = np.where(same, _F32(1), s_d.astype(_F32)).astype(_F32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        inv = np.where(scale == 0, _F32(0), (1.0 / scale.astype(np.float64)).astype(_F32)).astype(_F32)
        v = (x * inv[:, None]).astype(_F32)
    q = np.clip(_round_body_and_tail(v, zp), -128, 127)
    q[same] = 0
    return q.astype(np.int8), scale, zp.astype(np.int32)


def quantize_rows_qd8(x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """XNNPACK's dynamically quantized int8 (``qd8``) rows, float32 throughout.

    Per row: $m = \\min(\\min x, 0)$, $M = \\max(\\max x, 0)$; the multiplier
    $s = 1$ if $m = M$ else $\\mathrm{fl}(255 / \\mathrm{fl}(M - m))$; with $d_m = \\mathrm{fl}(m s)$,
    $d_M = \\mathrm{fl}(M s)$: $Z = \\mathrm{fl}(-128 - d_m)$ if $\\mathrm{fl}(\\mathrm{fl}(-128 + d_m) +
    \\mathrm{fl}(127 + d_M)) > 0$ else $\\mathrm{fl}(127 - d_M)$, clamped to $[-128, 127]$, ``lrintf`` (RNE);
    $q = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{fl}(x s)) + Z, -128, 127)$; the scale the GEMM uses is
    $S = \\mathrm{fl}(1 / s)$. Mirrors ``xnn_f32_qd8_asymmetric_quantization_params`` and the
    ``f32-qs8-vcvt`` kernels (the unsigned ``qdu8`` variant shifts $q$ and $Z$ by 128, which leaves
    eq. (3) unchanged). A row whose range is so small that $s$ overflows gets $S = 0$, so its
    outputs are the bias whatever its codes.

    Returns:
        ``(q, scale, zero_point)``: int8 ``(M, K)``, float32 ``(M,)`` ($S$, not $s$), int32 ``(M,)``.
    """
    x = _rows(x)
    m = np.minimum(x.min(axis=1), _F32(0))
    M = np.maximum(x.max(axis=1), _F32(0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = np.where(m == M, _F32(1), _F32(255) / (M - m).astype(_F32)).astype(_F32)
        dm, dM = (m * s).astype(_F32), (M * s).astype(_F32)
        from_min = ((_F32(-128) + dm).astype(_F32) + (_F32(127) + dM).astype(_F32)).astype(_F32) > 0
        z = np.where(from_min, _F32(-128) - dm, _F32(127) - dM).astype(_F32)
        z = np.clip(np.nan_to_num(z, nan=127.0), -128, 127)  # math_max_f32 / math_min_f32 drop a NaN
        zp = np.rint(z).astype(np.int64)
        v = np.rint((x * s[:, None]).astype(_F32))
        q = np.clip(np.nan_to_num(v, nan=127.0, posinf=127.0, neginf=-128.0) + zp[:, None], -128, 127)
        scale = (_F32(1) / s).astype(_F32)
    return q.astype(np.int8), scale, zp.astype(np.int32)


# ---------------------------------------------------------------- eq. (3): TFLite's SSSE3 accumulation

def _s8_operands(q, w):
    q = V.as_typed_array(q, "q", (np.int8,), ndim=2)
    w = V.as_typed_array(w, "w", (np.int8,), ndim=2)
    if q.shape[1] != w.shape[1]:
        raise ShapeError(f"w must have K = q.shape[1] = {q.shape[1]} columns, got w.shape = {w.shape}")
    return q, w


def dot_s8_sign_transfer(q, w) -> np.ndarray:
    """$\\sum_k q_{mk} w_{nk}$ as TFLite's x86 hybrid kernel sums it: int32, wrapping.

    In the first $K - K \\bmod 16$ columns the kernel multiplies with ``pabsb``/``psignb``/
    ``pmaddubsw``: $|q| \\cdot \\mathrm{sign}_q(w)$, where negating $w = -128$ wraps back to $-128$. So
    a product with $q < 0$ and $w = -128$ counts as $+128 q$ instead of $-128 q$; every other product
    is exact and no pair sum saturates ($|q| \\le 128$). The remaining columns are exact. The
    TFLite converter never writes $w = -128$ (its weights are in $[-127, 127]$). Mirrors
    ``SseMatrixBatchVectorMultiplyAccumulateImpl`` (``DotProdInt8x4x4``); measured on LiteRT 2.3.0.

    Args:
        q: int8 ``(M, K)`` codes.
        w: int8 ``(N, K)`` weights.

    Returns:
        int32 ``(M, N)``.
    """
    q, w = _s8_operands(q, w)
    acc = gemm(q, np.ascontiguousarray(w.T), 0, 0, acc_model="wrap").astype(np.int64)  # exact products, int32 sum
    k16 = q.shape[1] - q.shape[1] % _SSE_BLOCK
    wrong = w[:, :k16] == -128
    if wrong.any():
        negative = np.minimum(q[:, :k16], 0).astype(np.int64)
        acc += 256 * (negative @ wrong.T.astype(np.int64))  # -128 q counted as +128 q
    return wrap_int32(acc).astype(np.int32)


def row_sums_int16_lanes(w) -> np.ndarray:
    """$\\sum_k w_{nk}$ as TFLite's ``SseReductionSumVector`` forms it, for asymmetric inputs.

    The first $K - K \\bmod 16$ columns are added pairwise (``pmaddubsw`` with ones) into 8 int16
    lanes that wrap (lane $j$ takes columns $16i + 2j$ and $16i + 2j + 1$); then, if at least 8
    columns remain, the next 8 columns one per lane (SSE4.1 path); the lanes are widened and
    summed in int32, and the remaining columns added one by one. Exact unless a lane passes
    $\\pm 2^{15}$ (about $K > 2048$ with weights of one sign near $\\pm 127$). int32 ``(N,)``.
    """
    w = V.as_typed_array(w, "w", (np.int8,), ndim=2).astype(np.int64)
    n, k = w.shape
    k16 = k - k % _SSE_BLOCK
    lanes = w[:, :k16].reshape(n, k16 // _SSE_BLOCK, 8, 2).sum(axis=(1, 3))  # (N, 8)
    done = k16
    if k - k16 >= 8:
        lanes += w[:, k16:k16 + 8]
        done += 8
    lanes = (lanes + 2 ** 15) % 2 ** 16 - 2 ** 15  # int16 lanes wrap
    return wrap_int32(lanes.sum(axis=1) + w[:, done:].sum(axis=1)).astype(np.int32)


# ---------------------------------------------------------------- eq. (4): the float output

def dynamic_output(acc, x_scale, w_scale, bias, *, mode: str) -> np.ndarray:
    """The float32 output of a dynamic layer, eq. (4), rounded as ``mode`` says
    (:data:`refquant.modes.DYNAMIC_OUTPUTS`), with $a = \\mathrm{fl}(\\mathrm{acc})$ (``cvtdq2ps``, RNE):

    * ``"fma"``: $\\mathrm{fma}(a, \\mathrm{fl}(S_x S_w[n]), b_n)$, one rounding (fbgemm
      ``requantizeForFloatAvx2``, contracted);
    * ``"mul_then_add"``: $\\mathrm{fl}(\\mathrm{fl}(a \\cdot \\mathrm{fl}(S_x S_w[n])) + b_n)$ (qnnpack ``q8gemm_dq``,
      TFLite ``*result += dotprod * scale``, MLAS ``MLAS_QGEMM_SCALE_BIAS_OUTPUT_PROCESSOR``);
    * ``"scale_then_fma"``: $\\mathrm{fma}(\\mathrm{fl}(a \\cdot S_x), S_w[n], b_n)$ (XNNPACK's AVX2 and
      AVX-512 ``qd8-f32-qc8w`` GEMMs).

    Args:
        acc: int32 ``(M, N)``.
        x_scale: float32 ``()`` (per call) or ``(M,)`` (per row).
        w_scale: float32 ``()`` or ``(N,)``.
        bias: float32 ``(N,)`` or ``None`` (zeros, so an exact zero product gives $+0$).
        mode: A :data:`refquant.modes.DYNAMIC_OUTPUTS` name.

    Returns:
        float32 ``(M, N)``.
    """
    check_name(mode, "mode", DYNAMIC_OUTPUTS)
    acc = V.as_typed_array(acc, "acc", (np.int32,), ndim=2)
    m_rows, n = acc.shape
    sx = _vector(x_scale, "x_scale", m_rows, "one per row of acc", ">= 0").reshape(-1, 1)  # (M, 1) or (1, 1)
    sw = _vector(w_scale, "w_scale", n, "one per column of acc", "> 0")  # (N,) or (1,)
    b = np.zeros(n, _F32) if bias is None else _vector(bias, "bias", n, "one per column of acc", exact=True)
    a = acc.astype(_F32)
    with np.errstate(over="ignore", invalid="ignore"):
        if mode == "scale_then_fma":
            t = (a * sx).astype(_F32)
            return fma_f32(t, np.broadcast_to(sw, t.shape), np.broadcast_to(b, t.shape))
        scale = np.broadcast_to((sx * sw).astype(_F32), a.shape)  # fl(S_x S_w[n])
        if mode == "fma":
            return fma_f32(a, scale, np.broadcast_to(b, a.shape))
        return ((a * scale).astype(_F32) + b).astype(_F32)


def _vector(v, name: str, length: int, whose: str, sign: str = "", *, exact: bool = False) -> np.ndarray:
    """float32 ``(length,)`` (or ``()`` unless ``exact``), finite, and ``> 0`` / ``>= 0`` as ``sign`` says.
    A zero ``x_scale`` is allowed: XNNPACK's qd8 rows and ONNX Runtime's DQL produce one."""
    a = V.asarray(v, name, kinds="f", what="a float32 array")
    if a.dtype != np.float32:
        raise QuantizationTypeError(f"{name} must be float32, got dtype {a.dtype}")
    if a.shape not in (((length,),) if exact else ((), (length,))):
        want = f"({length},)" if exact else f"() or ({length},)"
        raise ShapeError(f"{name} must have shape {want}, got {a.shape} ({whose})")
    bad = ~np.isfinite(a) | {"": False, ">= 0": a < 0, "> 0": a <= 0}[sign]
    if np.any(bad):
        raise QuantizationValueError(f"{name} must be finite{' and ' + sign if sign else ''}, "
                                     f"got {a[bad].ravel()[0].item()!r}")
    return a.reshape(-1)

