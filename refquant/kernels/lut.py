r"""Lookup-table ops: logistic and tanh on 8-bit codes, as TFLite and ONNX Runtime build them.

An 8-bit input has 256 codes, so an elementwise function $f$ becomes a 256-entry table built
once in float (offline) and applied with integer indexing (runtime, :func:`apply_lut`).
The table is indexed by the code's **byte** (``x.view(np.uint8)``), TFLite's ordering.

**TFLite** (``LUTPopulateInt8`` in ``kernels/internal/common.h``; LOGISTIC and TANH, both the
reference and the default optimized kernels) for each code $v$, in float32:

$$ d = \mathrm{fl}(S_x (v - Z_x)), \quad t = f(d), \quad
   T[v] = \operatorname{clamp}\big(\mathrm{RHAZ}(\mathrm{fl}(t \cdot \mathrm{fl}(1/S_y))) + Z_y\big) \tag{1} $$

with $f(d) = \mathrm{fl}(1 / \mathrm{fl}(1 + \mathrm{expf}(-d)))$ (logistic) or $\mathrm{tanhf}(d)$.

**ONNX Runtime QLinearSigmoid** (``qlinear_lookup_table.cc``): $d$ as above, $t$ = MLAS's rational
logistic (:func:`rational_logistic`, the FMA3 kernel on AVX2), then ``MlasQuantizeLinear``:
$\operatorname{clamp}(\mathrm{RNE}(\mathrm{fl}(t / S_y))) + Z_y$ (division, RNE).

Softmax (a table of exponentials plus a per-row reduction) is in :mod:`.softmax`.

**expf / tanhf.** TFLite calls the C library (LiteRT 2.3's wheel imports ``expf``/``tanhf`` from
the system ``libm.so.6``). On Debian's glibc 2.36 ``expf`` differs from the correctly rounded
float32 on 170,648 inputs and ``tanhf`` (up to 2 ulp) on 118,674,314, out of all float32 inputs
of their useful ranges (an exhaustive C scan against float64 and long-double results, run while
writing this module). ``math="correctly_rounded"`` (the default, platform independent) computes
the correctly rounded value; ``math="libm"`` calls this machine's C library through ``ctypes``.
The tables rarely notice: 0 differing entries in 100,000 random logistic tables and in 5,000
random tanh tables, and LiteRT matched the default on every conformance case.

Added in 0.1.0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from decimal import Decimal, localcontext

import numba
import numpy as np

from .. import _validate as V
from ..dtypes import get_format
from ..errors import QuantizationTypeError, ShapeError, UnsupportedError
from ..quantization import fma_f32
from ..rounding import round_half_away_from_zero
from ._checks import zero_point_scalar

__all__ = [
    "expf", "tanhf", "lut_inputs", "populate_lut", "logistic_lut", "logistic_lut_double_rne", "tanh_lut",
    "tanh_lut_rne",
    "rational_logistic", "rational_logistic_lut", "apply_lut_reference", "apply_lut",
]

_F32 = np.float32
_LUT_DTYPES = {"int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8)}


# --------------------------------------------------------------------------- float32 transcendental functions


def _decimal(fn: str, x: float) -> Decimal:
    d = Decimal(x)
    if fn == "exp":
        return d.exp()
    e = (2 * d).exp()  # tanh = (e^{2x} - 1) / (e^{2x} + 1); 160 digits absorb the cancellation
    return (e - 1) / (e + 1)


def _f32(x, name: str = "x") -> np.ndarray:
    """A real array as float32 (named errors for anything else; |x| past float32 becomes inf)."""
    with np.errstate(over="ignore"):
        return V.asarray(x, name, kinds="biuf", what="a real array").astype(_F32)


def _correctly_rounded(fn: str, x: np.ndarray) -> np.ndarray:
    """float32 ``fn(x)`` rounded once from the exact value (RNE); float64 with a Decimal fallback."""
    x0 = _f32(x)
    x = np.atleast_1d(x0)
    with np.errstate(over="ignore", under="ignore"):
        v = np.exp(x.astype(np.float64)) if fn == "exp" else np.tanh(x.astype(np.float64))
        r = v.astype(_F32)
        other = np.nextafter(r, np.where(v > r.astype(np.float64), _F32(np.inf), _F32(-np.inf)).astype(_F32))
        mid = (r.astype(np.float64) + other.astype(np.float64)) / 2
        near = np.isfinite(mid) & (np.abs(v - mid) <= np.abs(v) * 2.0 ** -44)
    out = r.copy()
    for idx in zip(*np.nonzero(near)):  # rare: a float64 value within 2^-44 of a float32 midpoint
        with localcontext() as ctx:
            ctx.prec = 160
            exact = _decimal(fn, float(x[idx]))
        m, lo, hi = Decimal(float(mid[idx])), float(r[idx]), float(other[idx])
        if exact == m:
            out[idx] = lo if (np.frombuffer(_F32(lo).tobytes(), np.uint32)[0] & 1) == 0 else hi
        else:
            out[idx] = hi if (exact > m) == (hi > lo) else lo
    return out.reshape(x0.shape)


def _libm(fn: str, x: np.ndarray) -> np.ndarray:
    path = ctypes.util.find_library("m") or ctypes.util.find_library("c")
    if path is None:
        raise UnsupportedError("math='libm' needs the C math library, which ctypes cannot find here")
    f = getattr(ctypes.CDLL(path), fn + "f")
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    x = _f32(x)
    return np.array([f(float(v)) for v in x.ravel()], _F32).reshape(x.shape)


def _math(math: str):
    return V.as_choice(math, "math", ("correctly_rounded", "libm"))


def expf(x, *, math="correctly_rounded") -> np.ndarray:
    """C ``expf`` on float32 values: correctly rounded, or this machine's libm (``math="libm"``)."""
    return _correctly_rounded("exp", x) if _math(math) == "correctly_rounded" else _libm("exp", x)


def tanhf(x, *, math="correctly_rounded") -> np.ndarray:
    """C ``tanhf`` on float32 values: correctly rounded, or this machine's libm (``math="libm"``)."""
    return _correctly_rounded("tanh", x) if _math(math) == "correctly_rounded" else _libm("tanh", x)


# --------------------------------------------------------------------------- table construction (offline)


def _lut_dtype(dtype) -> np.dtype:
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in _LUT_DTYPES:
        raise QuantizationTypeError(f"dtype must be 'int8' or 'uint8', got {V.describe(dtype)}")
    return _LUT_DTYPES[fmt.name]


def lut_inputs(x_scale, x_zero_point, dtype="int8") -> np.ndarray:
    """$d[i] = \\mathrm{fl}(S_x (v_i - Z_x))$ for the code $v_i$ whose byte is $i$ (float32, ``(256,)``)."""
    dt = _lut_dtype(dtype)
    zx = zero_point_scalar(x_zero_point, dt, "x_zero_point")
    sx = V.as_scalar_scale(x_scale, "x_scale")
    codes = np.arange(256, dtype=np.uint8).view(dt).astype(np.int64)
    return (sx * (codes - zx).astype(_F32)).astype(_F32)


def populate_lut(transformed, y_scale, y_zero_point, dtype="int8") -> np.ndarray:
    """Quantize 256 float32 values the way ``LUTPopulateInt8`` does, eq. (1). Offline.

    ``rescaled = std::round(t * (1 / S_y))`` (float32, RHAZ); ``(int32)(rescaled + Z_y)``
    (a float sum; past int32 the x86 cast gives INT32_MIN); clamp to the dtype.
    """
    dt = _lut_dtype(dtype)
    zy = zero_point_scalar(y_zero_point, dt, "y_zero_point")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    t = _f32(transformed, "transformed")
    if t.shape != (256,):
        raise ShapeError(f"transformed must have shape (256,), got {t.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (t * (_F32(1.0) / sy)).astype(_F32)
        rescaled = round_half_away_from_zero(scaled)  # std::round on a float32: float32 RHAZ
        total = (rescaled + _F32(zy)).astype(np.float64)
    big = ~(np.abs(total) < 2.0 ** 31)
    q = np.where(big, -(2 ** 31), np.where(big, 0, total).astype(np.int64))
    info = np.iinfo(dt)
    return np.clip(q, info.min, info.max).astype(dt)


def logistic_lut(x_scale, x_zero_point, y_scale=1.0 / 256, y_zero_point=None, *, dtype="int8",
                 math="correctly_rounded") -> np.ndarray:
    """TFLite LOGISTIC table, eq. (1) with $f(d) = 1/(1 + \\mathrm{expf}(-d))$ in float32.

    TFLite requires $S_y = 1/256$ and $Z_y = -128$ (int8) / 0 (uint8), the defaults here.
    Returns a ``(256,)`` table of ``dtype`` indexed by the input byte.
    """
    dt = _lut_dtype(dtype)
    zy = (-128 if dt == np.int8 else 0) if y_zero_point is None else y_zero_point
    d = lut_inputs(x_scale, x_zero_point, dt)
    with np.errstate(over="ignore"):
        t = (_F32(1.0) / (_F32(1.0) + expf(-d, math=math)).astype(_F32)).astype(_F32)
    return populate_lut(t, y_scale, zy, dt)


def tanh_lut(x_scale, x_zero_point, y_scale=1.0 / 128, y_zero_point=0, *, dtype="int8",
             math="correctly_rounded") -> np.ndarray:
    """TFLite TANH table, eq. (1) with $f = \\mathrm{tanhf}$ (int8 spec: $S_y = 1/128$, $Z_y = 0$)."""
    dt = _lut_dtype(dtype)
    return populate_lut(tanhf(lut_inputs(x_scale, x_zero_point, dt), math=math), y_scale, y_zero_point, dt)


def tanh_lut_rne(x_scale, x_zero_point, y_scale=1.0 / 128, y_zero_point=0, *, dtype="int8",
                 math="correctly_rounded") -> np.ndarray:
    """XNNPACK's TANH table: $T[v] = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}(t \\cdot \\mathrm{fl}(1/S_y)) + Z_y)))$
    with $t = \\mathrm{tanhf}(d)$ and $d$ as in eq. (1). Offline.

    Mirrors XNNPACK's reference ``TanHOp`` (float ``std::tanh``) run over the 256 codes and
    quantized by ``xnnpack::quantize`` (multiply by the float32 reciprocal, add the zero point in
    float, ``nearbyint``: ties to even; NaN would give 0). It differs from :func:`tanh_lut` only
    where $t / S_y$ lands on (or, through the float sum, next to) a half: about one table in a
    few thousand with random scales. Returns a ``(256,)`` table of ``dtype`` indexed by the input byte.
    """
    dt = _lut_dtype(dtype)
    zy = zero_point_scalar(y_zero_point, dt, "y_zero_point")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    t = tanhf(lut_inputs(x_scale, x_zero_point, dt), math=math)
    v = ((t * (_F32(1.0) / sy).astype(_F32)).astype(_F32) + _F32(zy)).astype(_F32)
    info = np.iinfo(dt)
    return np.clip(np.rint(np.nan_to_num(v, nan=0.0)), info.min, info.max).astype(np.int64).astype(dt)


_ALPHA = tuple(_F32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05,
                                 8.51377133304701e-03, 2.48287947061529e-01))
_BETA = tuple(_F32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06,
                                1.70198817374094e-03, 1.16817656904453e-01, 9.93151921023180e-01))


def rational_logistic(x, *, fused=True) -> np.ndarray:
    """MLAS ``MlasComputeLogistic``: Eigen's rational approximation of $1/(1+e^{-x})$ in float32.

    $x$ clamped to $[-18, 18]$, $p = x\\,P(x^2)$ (degree-4 Horner in $x^2$ from $\\alpha_9$),
    $q = Q(x^2)$ (degree 5 from $\\beta_{10}$), result $\\max(p/q + 0.5, 0)$. ``fused=True``: the
    Horner steps are FMAs (``LogisticKernelFma3``, AVX2 machines; measured); ``False``: separate
    multiply and add with a final clamp to 1 (``MlasLogisticKernel``, SSE2; read, not run).
    """
    fused = V.as_flag(fused, "fused")
    x = np.minimum(np.maximum(_f32(x), _F32(-18.0)), _F32(18.0)).astype(_F32)
    x2 = (x * x).astype(_F32)
    if fused:
        step = lambda acc, c: fma_f32(x2, acc, np.broadcast_to(c, x2.shape))  # noqa: E731
        p = fma_f32(x2, np.broadcast_to(_ALPHA[0], x2.shape), np.broadcast_to(_ALPHA[1], x2.shape))
        q = fma_f32(x2, np.broadcast_to(_BETA[0], x2.shape), np.broadcast_to(_BETA[1], x2.shape))
    else:
        step = lambda acc, c: ((acc * x2).astype(_F32) + c).astype(_F32)  # noqa: E731
        p = ((x2 * _ALPHA[0]).astype(_F32) + _ALPHA[1]).astype(_F32)
        q = ((x2 * _BETA[0]).astype(_F32) + _BETA[1]).astype(_F32)
    for c in _ALPHA[2:]:
        p = step(p, c)
    for c in _BETA[2:]:
        q = step(q, c)
    r = (((x * p).astype(_F32) / q).astype(_F32) + _F32(0.5)).astype(_F32)
    return np.maximum(r, _F32(0.0)) if fused else np.clip(r, _F32(0.0), _F32(1.0))


def rational_logistic_lut(x_scale, x_zero_point, y_scale, y_zero_point, *, dtype="int8", fused=True):
    """ONNX Runtime QLinearSigmoid table: :func:`rational_logistic` of $d$, then
    ``MlasQuantizeLinear`` ($\\mathrm{RNE}(\\mathrm{fl}(t/S_y))$ clamped in float, $+Z_y$). Offline."""
    dt = _lut_dtype(dtype)
    zy = zero_point_scalar(y_zero_point, dt, "y_zero_point")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    t = rational_logistic(lut_inputs(x_scale, x_zero_point, dt), fused=fused)
    info = np.iinfo(dt)
    v = np.clip((t / sy).astype(_F32), _F32(info.min - zy), _F32(info.max - zy))
    return (np.rint(v).astype(np.int64) + zy).astype(dt)  # RNE (cvtps2dq)


# --------------------------------------------------------------------------- table lookup (runtime)


def _check_lut_input(x, table):
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    t = V.asarray(table, "table", kinds=None, what="a (256,) numeric array")
    if t.shape != (256,) or t.dtype.kind not in "iuf":
        raise ShapeError(f"table must be a (256,) numeric array, got shape {t.shape} dtype {t.dtype}")
    return t


def apply_lut_reference(x, table):
    """$y = T[\\mathrm{byte}(x)]$: NumPy spec (``LUTLookup``, ``QLinearLookupTableTransform``)."""
    t = _check_lut_input(x, table)
    return t[x.view(np.uint8)]


@numba.njit(cache=True)
def _lut_kernel(idx, table):
    out = np.empty(idx.shape[0], table.dtype)
    for i in range(idx.shape[0]):
        out[i] = table[idx[i]]
    return out


def apply_lut(x, table):
    """Table lookup: the Numba kernel (equal to :func:`apply_lut_reference`)."""
    t = _check_lut_input(x, table)
    idx = np.ascontiguousarray(x).view(np.uint8).ravel()
    return _lut_kernel(idx, np.ascontiguousarray(t)).reshape(x.shape)


def logistic_lut_double_rne(x_scale, x_zero_point, *, dtype="int8") -> np.ndarray:
    r"""A sigmoid table evaluated in double, quantized with the zero point added before a
    ties-to-even rounding. Offline code (float allowed).

    For each code $v$: $d = \mathrm{fl}(S_x (v - Z_x))$,
    $t = 1$ if $d > 100$, $0$ if $d < -100$, else $\mathrm{fl}_{32}(e / (1 + e))$ with
    $e = \exp(d)$ in float64; $T[v] = \mathrm{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(256\,t) + Z_y)))$
    with output scale 1/256 and $Z_y = -128$ (int8) or 0 (uint8). Mirrors the XNNPACK delegate's
    LOGISTIC table (its reference ``SigmoidOp`` in double, then ``xnn_qs8_quantize``); TFLite's own
    table (:func:`logistic_lut`) rounds $\mathrm{fl}(1/(1+\mathrm{expf}(-d))) \cdot 256$ half away
    from zero, and the two differ in about one entry in a few hundred tables. ``exp`` is NumPy's
    float64 ``exp``; it may differ from the C library's in the last bit of a double, which moves the
    float32 $t$ only within $2^{-29}$ relative of a float32 rounding boundary (not seen in the
    conformance runs).

    Returns:
        A ``(256,)`` table of ``dtype`` indexed by the input byte (apply it with :func:`apply_lut`).
    """
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in ("int8", "uint8"):
        raise QuantizationTypeError(f"dtype must be 'int8' or 'uint8', got {fmt.name!r}")
    dt = fmt.dtype
    zy = -128 if dt == np.int8 else 0
    d = lut_inputs(x_scale, x_zero_point, dt)  # (256,) float32: fl(S_x (v - Z_x))
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(d.astype(np.float64))
        t = (e / (1.0 + e)).astype(np.float32)  # double quotient, rounded once to float32 (RNE)
    t = np.where(d > 100, np.float32(1.0), np.where(d < -100, np.float32(0.0), t)).astype(np.float32)
    v = ((t * np.float32(256.0)).astype(np.float32) + np.float32(zy)).astype(np.float32)  # 1/S_y = 256 exactly
    info = np.iinfo(dt)
    return np.clip(np.rint(v), info.min, info.max).astype(np.int64).astype(dt)  # RNE (half to even), saturate
