"""quantize, dequantize and fake_quantize for every granularity and backend choice.

The textbook map (Conventions, eq. (2)) is

$$ q = \\operatorname{clamp}\\big(\\operatorname{round}(x / S) + Z,\\; q_{min},\\; q_{max}\\big) $$

but backends differ in each step, so every step is a field of a
:class:`QuantizeSpec` (a backend *profile* holds one, see :mod:`refquant.profiles`):

1. **division**: $x / S$ (ONNX, ONNX Runtime, TFLite reference) or $x \\cdot (1/S)$
   with a float32 reciprocal (PyTorch, XNNPACK, TFLite optimized). Not the same:
   for ``S = 0.00214854861, x = 0.273939937`` the product is 127.5 and the
   quotient 127.49999.
2. **precision** of that operation: float32, float64, or the input's dtype.
3. **zero point order**: added to the integer after rounding (ONNX, TFLite), or to
   the float before rounding (PyTorch 2.13 ``quantize_per_tensor`` on x86, with one
   rounding of ``x*inv + zp`` by FMA); they differ on ties with an odd zero point.
4. **rounding**: any :class:`refquant.rounding.RoundingMode`.
5. **clamp order**: clamp the float to $[q_{min} - Z, q_{max} - Z]$ before rounding
   (ONNX Runtime MLAS, XNNPACK) or the integer after (others). Same on finite values.
6. **specials**: where NaN goes (``"qmin"``, ``"qmax"``, ``"zero_point"``), and whether
   values past int32 saturate or go through a C ``(int32)`` cast, which gives
   INT32_MIN on x86 (``cvttss2si``), to which the zero point is then added with int32
   wrap-around before the clamp (TFLite reference QUANTIZE: +inf -> -128 when
   ``Z >= 0``, -> +127 when ``Z < 0``).

Dequantization (:class:`DequantizeSpec`) is $r = S\\,(q - Z)$ with the subtraction done
in exact integers, in wrapping int32 (PyTorch per-tensor qint32), in float, or as
$qS - ZS$ (TFLite optimized blocks).
"""

from __future__ import annotations


import numpy as np

from . import _validate as V
from .dtypes import INT32_MIN, wrap_int32
from .errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from .profiles import as_profile
from .qparams import QParams
from .rounding import round_by_mode
from .specs import Cases, DequantizeSpec, QuantizeSpec, SimdSplit, select_spec

__all__ = [
    "QuantizeSpec",
    "DequantizeSpec",
    "quantize",
    "dequantize",
    "fake_quantize",
    "fake_quantize_with_mask",
    "fake_quantize_backward",
    "fma_f32",
]

def _entry(profile, attr: str, default):
    """What the profile holds for one step: accept a Profile, a profile name, a spec or None."""
    if profile is None:
        return default
    if isinstance(profile, (QuantizeSpec, DequantizeSpec, Cases, SimdSplit)):
        return profile
    return getattr(as_profile(profile), attr)


def _check_qparams(qparams) -> QParams:
    if not isinstance(qparams, QParams):
        raise QuantizationTypeError(f"qparams must be a refquant.QParams (see refquant.make_qparams), got "
                                    f"{type(qparams).__name__}")
    return qparams


def _refuse_subnormal_scale(spec, qp: QParams) -> None:
    if spec.subnormal_scale == "refuse":
        s = np.asarray(qp.scale, np.float32)
        if s.size and float(np.min(s)) < np.finfo(np.float32).tiny:
            raise UnsupportedError(f"scale must be a normal float32 (>= {np.finfo(np.float32).tiny:.9g}) for this "
                                   f"profile's kernel (the backend rejects a subnormal scale), got "
                                   f"{float(np.min(s))!r}")


def _split_apply(a: np.ndarray, spec, fn) -> np.ndarray:
    """``fn(a, spec)``, or for a :class:`SimdSplit`: ``fn`` with the body spec on the elements of
    whole blocks (C order) and with the tail spec on the rest."""
    if not isinstance(spec, SimdSplit):
        return fn(a, spec)
    nb = a.size - a.size % spec.block
    if nb == a.size or nb == 0:
        return fn(a, spec.body if nb else spec.tail)
    body, tail = fn(a, spec.body), fn(a, spec.tail)  # each over the whole tensor: per-axis parameters fit
    in_body = (np.arange(a.size) < nb).reshape(a.shape)
    return np.where(in_body, body, tail).astype(body.dtype)


def fma_f32(a32: np.ndarray, b32: np.ndarray, c) -> np.ndarray:
    """float32 fused multiply-add ``fmaf(a, b, c)``: one rounding (RNE) of the exact $ab + c$.

    $ab$ is exact in float64 (24 + 24 bits). $s = ab + c$ is formed in float64 with
    its exact error $e$ (Knuth's TwoSum). Rounding $s$ to float32 is then correct
    except when $s$ lies exactly halfway between two float32 neighbours and $e \\ne 0$;
    there the sign of $e$ decides. Mirrors C's ``fmaf`` and x86 ``vfmadd`` (FMA3), which
    fbgemm, ATen and MLAS kernels use; overflow gives $\\pm\\infty$, NaN propagates.

    Args:
        a32, b32: float32 arrays (broadcast together).
        c: float addend broadcastable to their shape; float64 values are used exactly
            (pass a float32 value widened to float64 for C's ``fmaf``).

    Returns:
        float32 array of the broadcast shape.

    Added in 0.1.0 (as the private ``_fma_f32``, still an alias).
    """
    p = a32.astype(np.float64) * b32.astype(np.float64)
    c = np.broadcast_to(np.asarray(c, dtype=np.float64), p.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        s = p + c
        bp = s - c
        e = (p - bp) + (c - (s - bp))
        r = s.astype(np.float32)
        r64 = r.astype(np.float64)
        up = np.nextafter(r, np.float32(np.inf))
        down = np.nextafter(r, np.float32(-np.inf))
        lo = np.where(r64 <= s, r, down)
        hi = np.where(r64 <= s, up, r)
        # at the overflow boundary the upper neighbour is inf: take 2^128 (where the exponent
        # range would continue) so the midpoint max + 2^103 is found too
        lo64, hi64 = lo.astype(np.float64), hi.astype(np.float64)
        lo64 = np.where(np.isinf(lo64), np.copysign(2.0 ** 128, lo64), lo64)
        hi64 = np.where(np.isinf(hi64), np.copysign(2.0 ** 128, hi64), hi64)
        mid = (lo64 + hi64) / 2
        tie = (s == mid) & (e != 0) & np.isfinite(s)
    if not tie.any():
        return r
    return np.where(tie, np.where(e > 0, hi, lo), r).astype(np.float32)


_fma_f32 = fma_f32  # the earlier private name


def _scaled(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, spec: QuantizeSpec) -> np.ndarray:
    """Step 1-3: x/S (or x*inv), in the spec's precision, with Z added if before rounding."""
    dt = x.dtype if spec.precision == "input" else scale.dtype if spec.precision == "scale" \
        else np.dtype(spec.precision)
    xs = x.astype(dt, copy=False)
    s = scale.astype(dt)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        flush = _flush_denormals if spec.denormals == "flush" else (lambda a: a)
        xs = flush(xs)
        if spec.division == "divide":
            v = flush(xs / flush(s))
        else:
            if spec.reciprocal == "double_then_float":
                inv = (1.0 / scale.astype(np.float64)).astype(dt)
            elif spec.reciprocal == "float32":
                inv = (np.float32(1) / scale.astype(np.float32)).astype(dt)
            else:
                inv = (np.asarray(1, dt) / s).astype(dt)
            inv = flush(inv)
            if spec.zero_point == "before_round_fma":
                if dt != np.float32:
                    raise QuantizationValueError(f"before_round_fma needs precision float32, got {dt}")
                return flush(fma_f32(xs, inv, zp))
            v = flush(xs * inv)
        if spec.zero_point == "before_round":
            v = flush((v + zp.astype(dt)).astype(dt))
    return v


def _flush_denormals(a: np.ndarray) -> np.ndarray:
    """Subnormal values to zero of the same sign (FTZ/DAZ); NaN, inf and normals unchanged."""
    a = np.asarray(a)
    tiny = np.finfo(a.dtype).tiny
    with np.errstate(invalid="ignore"):
        sub = np.abs(a) < tiny
    if not sub.any():
        return a
    return np.where(sub, np.copysign(np.zeros((), a.dtype), a), a).astype(a.dtype, copy=False)


def _quantize_unclamped(x, qp: QParams, spec: QuantizeSpec):
    """Return ``(q, lo_sat, hi_sat)``: int64 codes before the final clamp, NaN handled."""
    x = V.as_float_array(x, "x")
    scale, zp = qp.expand(x.shape)
    v = _scaled(x, scale, zp, spec)
    zp_before = spec.zero_point != "after_round"
    nan = np.isnan(v)
    off = np.zeros((), np.int64) if zp_before else zp
    if spec.clamp == "before_round":
        with np.errstate(invalid="ignore"):
            v = np.clip(v, (qp.qmin - off).astype(v.dtype), (qp.qmax - off).astype(v.dtype))
    r = round_by_mode(v, spec.rounding)
    if spec.zero_point == "after_round_float":  # C++ `zp + nearbyint(v)`: int converted to float, float sum
        with np.errstate(invalid="ignore", over="ignore"):
            r = (r + zp.astype(r.dtype)).astype(r.dtype)
    r0 = np.where(nan, 0, r).astype(np.float64)  # float64: 2^31 and 2^40 overflow a float16 r
    big = ~np.isfinite(r) | (np.abs(r0) >= 2.0 ** 31)
    if spec.overflow == "int_cast":
        bad = big if spec.nan == "int_cast" else big & ~nan
    else:
        bad = nan & (spec.nan == "int_cast")
    with np.errstate(invalid="ignore"):
        # safe conversion: clip to a range that keeps int64 exact and the clamp's verdict unchanged
        rc = np.clip(r0, -2.0 ** 40, 2.0 ** 40)
    q = rc.astype(np.int64)
    q = np.where(bad, INT32_MIN, q)
    if spec.overflow == "int64_cast":  # static_cast<int64_t>(v): out of range (and inf) -> INT64_MIN
        with np.errstate(invalid="ignore"):
            q = np.where(~nan & ~(np.abs(r) < 2.0 ** 63), np.iinfo(np.int64).min, q)
    if not zp_before:
        q = q + zp
        # the C path: (int32)round(v) + zp in int32, wrapping. Under overflow="int_cast" every
        # element takes it: a finite v just below 2^31 plus zp wraps too (TFLite reference
        # QUANTIZE, uint8, zp=200, x/s=2147483520 -> 0; measured on LiteRT 2.3.0).
        wrap = np.ones(q.shape, bool) if spec.overflow == "int_cast" else bad
        if wrap.any():
            q = np.where(wrap, wrap_int32(q), q)
    if spec.nan in ("qmin", "qmax", "zero_point") and nan.any():
        fill = {"qmin": qp.qmin, "qmax": qp.qmax}.get(spec.nan)
        q = np.where(nan, zp if fill is None else fill, q)
    if spec.nan == "int_cast_truncate" and nan.any():  # INT32_MIN cut to the format's low bits
        b = qp.fmt.bits
        t = INT32_MIN % (1 << b)
        if qp.fmt.signed and t >= 1 << (b - 1):
            t -= 1 << b
        q = np.where(nan, np.int64(t), q)
    return q


def quantize(x, qparams: QParams, profile=None) -> np.ndarray:
    """Quantize a float array: $q = \\operatorname{clamp}(\\operatorname{round}(x/S) + Z, q_{min}, q_{max})$.

    Args:
        x: float16/32/64 array of any shape (empty allowed). NaN and $\\pm\\infty$ are
            data, not errors: they map as the profile says.
        qparams: A :class:`refquant.qparams.QParams` (per-tensor, per-axis or per-block).
        profile: A profile name (``"onnx"``, ``"onnxruntime"``, ``"tflite_reference"``,
            ``"pytorch_fbgemm"``...), a :class:`refquant.profiles.Profile`, or a
            :class:`QuantizeSpec`. Default: the ONNX specification (divide in float32,
            round half to even, zero point after rounding, saturate).

    Returns:
        Integer array of ``x``'s shape and the format's dtype (``int4`` in ``np.int8``).

    Raises:
        QuantizationTypeError: ``x`` is not a float array.
        ShapeError: The parameters do not fit ``x``'s shape.
    """
    qp = _check_qparams(qparams)
    x = V.as_float_array(x, "x")
    spec = select_spec(_entry(profile, "quantize", QuantizeSpec()), qp, x.shape, x.dtype)
    return _split_apply(x, spec, lambda part, sp: _quantize_one(part, qp, sp))


def _quantize_one(x: np.ndarray, qp: QParams, spec: QuantizeSpec) -> np.ndarray:
    _refuse_subnormal_scale(spec, qp)
    q = _quantize_unclamped(x, qp, spec)
    return np.clip(q, qp.qmin, qp.qmax).astype(qp.fmt.dtype)


def dequantize(q, qparams: QParams, profile=None) -> np.ndarray:
    """Dequantize integer codes: $r = S\\,(q - Z)$.

    Args:
        q: Integer array (any integer dtype; values are taken as they are).
        qparams: The tensor's parameters.
        profile: A profile name, :class:`refquant.profiles.Profile` or
            :class:`DequantizeSpec`. Default: exact integer $q - Z$, converted to float32,
            times the float32 scale (one rounding each).

    Returns:
        float32 array (or the spec's precision) of ``q``'s shape.
    """
    qp = _check_qparams(qparams)
    q = V.as_int_array(q, "q")
    spec = select_spec(_entry(profile, "dequantize", DequantizeSpec()), qp, q.shape)
    with np.errstate(over="ignore", invalid="ignore"):  # S(q - Z) may overflow to inf: data, not an error
        return _split_apply(q, spec, lambda part, sp: _dequantize_one(part, qp, sp))


def _dequantize_one(q: np.ndarray, qp: QParams, spec: DequantizeSpec, input_dtype=None) -> np.ndarray:
    _refuse_subnormal_scale(spec, qp)
    scale, zp = qp.expand(q.shape)
    if spec.precision == "input":
        dt = np.dtype(input_dtype) if input_dtype is not None else np.dtype(np.float32)
    elif spec.precision == "scale":
        dt = np.dtype(qp.scale.dtype) if np.dtype(qp.scale.dtype).kind == "f" else np.dtype(np.float32)
    else:
        dt = np.dtype(spec.precision)
    s = scale.astype(dt)
    if spec.subtract == "mul_then_sub":
        return (q.astype(dt) * s - zp.astype(dt) * s).astype(dt)
    if spec.subtract == "float":
        d = (q.astype(dt) - zp.astype(dt)).astype(dt)
    else:
        d = q.astype(np.int64) - zp
        if spec.subtract == "int32_wrap":
            d = wrap_int32(d)
    if spec.scale_precision == "float64":  # one rounding of the float64 product
        return (d.astype(np.float64) * scale.astype(np.float64)).astype(dt)
    return (d.astype(dt) * s).astype(dt)


def fake_quantize_with_mask(x, qparams: QParams, profile=None) -> tuple[np.ndarray, np.ndarray]:
    """Fake-quantize (quantize then dequantize, in float) and return the STE mask.

    $y = S\\,(\\operatorname{clamp}(q_u, q_{min}, q_{max}) - Z)$ with the unclamped code
    $q_u = \\operatorname{round}(x/S) + Z$, and ``mask`` $= [q_{min} \\le q_u \\le q_{max}]$:
    the straight-through estimator passes the gradient where the value was not clipped
    (PyTorch ``fake_quantize_per_tensor_affine_cachemask``).

    Returns:
        ``(y, mask)``: float array of ``x``'s shape (the dequantize precision), bool mask.
    """
    qp = _check_qparams(qparams)
    x = V.as_float_array(x, "x")
    qspec = select_spec(_entry(profile, "fake_quantize", QuantizeSpec()), qp, x.shape, x.dtype)
    if isinstance(profile, (QuantizeSpec, Cases)) or profile is None:
        dentry = DequantizeSpec()
    elif isinstance(profile, (DequantizeSpec, SimdSplit)):
        raise QuantizationTypeError(f"profile must be a Profile, a profile name or a QuantizeSpec for "
                                    f"fake-quantization, got {type(profile).__name__}")
    else:
        prof = as_profile(profile)
        dentry = prof.dequantize if prof.fake_dequantize is None else prof.fake_dequantize
    dspec = select_spec(dentry, qp, x.shape, x.dtype)
    if isinstance(qspec, SimdSplit) or isinstance(dspec, SimdSplit):
        raise UnsupportedError("fake-quantization has no SIMD-position-dependent variant; give the profile a "
                               "position-free fake_quantize / fake_dequantize spec")
    _refuse_subnormal_scale(qspec, qp)
    qu = _quantize_unclamped(x, qp, qspec)
    lo, hi = qp.qmin, qp.qmax
    if qspec.mask_compare == "float":  # C++ `quant_min <= qval_f`: the bound is converted to float
        dt = x.dtype if qspec.precision == "input" else np.dtype(qp.scale.dtype) if qspec.precision == "scale" \
            else np.dtype(qspec.precision)
        lo, hi = int(np.asarray(lo).astype(dt)), int(np.asarray(hi).astype(dt))
    mask = (qu >= lo) & (qu <= hi)
    mask &= ~np.isnan(x)
    qc = np.clip(qu, qp.qmin, qp.qmax)
    with np.errstate(over="ignore", invalid="ignore"):
        return _dequantize_one(qc, qp, dspec, x.dtype), mask


def fake_quantize(x, qparams: QParams, profile=None) -> np.ndarray:
    """Fake-quantize: $y = S\\,(\\operatorname{clamp}(\\operatorname{round}(x/S) + Z, q_{min}, q_{max}) - Z)$.

    :func:`dequantize` of :func:`quantize` computed in float, with the profile's
    ``fake_quantize`` spec (rounding, zero-point order, NaN mapping): the ``y`` of
    :func:`fake_quantize_with_mask`, whose docstring has the arguments and errors.

    Returns:
        float array of ``x``'s shape (the dequantize precision, float32 by default).
    """
    return fake_quantize_with_mask(x, qparams, profile)[0]


def fake_quantize_backward(grad_output, mask, *, multiply: bool = False) -> np.ndarray:
    """Straight-through gradient: $\\partial L/\\partial x = \\partial L/\\partial y \\cdot [q_{min} \\le q_u \\le q_{max}]$.

    Args:
        grad_output: float array $\\partial L/\\partial y$, any shape.
        mask: bool array of the same shape (from :func:`fake_quantize_with_mask`).
        multiply: ``False``: select (``+0.0`` where masked). ``True``: multiply by the
            mask as a float, as PyTorch's ``dY * mask`` does, so a masked negative
            gradient gives ``-0.0`` and a masked NaN/Inf gradient gives NaN.

    Returns:
        Array of ``grad_output``'s shape and float dtype.

    Raises:
        QuantizationTypeError: ``grad_output`` is not a float array, or ``mask`` is not bool.
        ShapeError: ``mask`` does not have ``grad_output``'s shape (no broadcasting).
    """
    g, m = V.grad_and_mask(grad_output, mask, "grad_output")
    if V.as_flag(multiply, "multiply"):
        with np.errstate(invalid="ignore"):
            return (g * m.astype(g.dtype)).astype(g.dtype)
    return np.where(m, g, np.zeros((), g.dtype))
