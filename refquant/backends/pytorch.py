"""PyTorch quantized CPU ops, bit for bit (torch 2.13, x86-64 with AVX2 and FMA).

A thin binding of :mod:`refquant.quantization` to PyTorch's conventions: NumPy arrays in
and out, ``dtype`` ``"quint8"`` (uint8), ``"qint8"`` (int8) or ``"qint32"`` (int32),
scales used as float32 (``1.0f / scale``, then multiply), zero points integer.

**Where the zero point is added.** PyTorch has changed this twice, and its ops do not
agree with each other. ``zero_point_order="before"`` (the default) is torch 2.13;
``"after"`` is torch 1.6 – 2.12.

| op | torch 2.13 (measured here) | torch 1.6 – 2.12 (read in source, not run) |
|---|---|---|
| ``quantize_per_tensor`` quint8/qint8 | $\\mathrm{RNE}(\\mathrm{fma}(x, 1/S, Z))$, one rounding (fbgemm ``QuantizeAvx2<T, LEGACY=true>``, every element incl. the masked tail) | $\\mathrm{RNE}(x \\cdot 1/S) + Z$ |
| ``quantize_per_tensor`` qint32 | $\\mathrm{RNE}(\\mathrm{f32}(\\mathrm{f32}(x \\cdot 1/S) + \\mathrm{f32}(Z)))$ (scalar fbgemm ``Quantize``, two roundings) | $\\mathrm{f32}(Z) + \\mathrm{RNE}(x \\cdot 1/S)$ |
| ``quantize_per_channel`` (all dtypes) | as the qint32 row (``quantize_val``) | as the qint32 row |
| fake-quantize (forward, mask) | $Z + \\mathrm{RNE}(x \\cdot 1/S)$: after, since 1.6 | same |
| learnable fake-quantize gradient | $\\mathrm{RNE}(\\mathrm{fma}(x, 1/S, Z))$: before | not checked |

Evidence: in torch 2.13, scale 1, zero point 1, qint8, ``x = [0.5, 1.5, 2.5, -0.5]``
quantizes to ``[2, 2, 4, 0]`` (after would give ``[1, 3, 3, 1]``), for every length
1..40 and per channel too; 0 mismatches in the conformance suite with the models above,
which also separate FMA from two roundings. The torch 2.13 wheel's
``include/fbgemm/QuantUtils.h`` declares ``template <typename T, bool LEGACY = true>``.
History (read, not run): pytorch/pytorch#19714 (2019) computed ``round(x/s + zp)``;
pytorch/FBGEMM#362 and pytorch/pytorch#37188 (April 2020, torch 1.6) moved the zero point
after rounding and passed ``false /*LEGACY*/`` explicitly; pytorch/FBGEMM#5624 (12 April
2026) removed the legacy path and made ``false`` the default; pytorch/pytorch#181067
(22 April 2026, after the 2.12 branch cut) dropped the explicit ``false`` as a no-op,
but the FBGEMM bundled with torch 2.13 still defaults to ``LEGACY = true``. A torch whose
FBGEMM includes #5624 adds the zero point after rounding again (``"after"``).

**Specials** (2.13, measured): NaN quantizes to qmax per tensor (quint8/qint8; the AVX2
``min_ps(NaN, 2147483520.f)`` returns its second operand), to INT32_MIN for qint32, and to
0 per channel (8-bit: the C cast gives INT32_MIN, whose low byte is 0). ±Inf saturate.
Per-tensor fake-quantize sends NaN to ``quant_min`` and saturates ±Inf (float clamp);
per-channel fake-quantize sends NaN, ±Inf and $|v| \\ge 2^{63}$ to ``quant_min``
(``static_cast<int64_t>``). The ``"after"`` column's specials are not modelled beyond
saturation (the AVX2 path of 1.6 – 2.12 adds Z to INT32_MIN with int32 wrap-around).

**CPU dependence.** Non-AVX2 x86 CPUs run fbgemm's scalar path for 8-bit per-tensor
quantize too (two roundings, NaN -> 0); ARM builds use other kernels. Neither is modelled.

**Op level** (``linear``, ``conv2d``, ``add``, ``dynamic_linear``; engines ``fbgemm``, ``x86``,
``qnnpack``; ``isa=`` for fbgemm's u8×s8 accumulation): see :mod:`refquant.backends._pytorch_ops`
and :mod:`refquant.backends._pytorch_add` for the arithmetic of each engine.

Dequantize: per tensor $\\mathrm{f32}(S) \\cdot \\mathrm{f32}(\\mathrm{wrap}_{32}(q - Z))$
(fbgemm ``Dequantize``: the int32 difference wraps for qint32); per channel
$\\mathrm{f32}(\\mathrm{f64}(\\mathrm{f32}(q) - \\mathrm{f32}(Z)) \\cdot S_{64})$ with the float64
scale tensor (no wrap). See the Conventions page for $r = S(q - Z)$.
"""

from __future__ import annotations


import numpy as np

from .. import _validate as V
from ..dtypes import IntFormat, get_format
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..qparams import make_qparams
from ..quantization import (dequantize as _dequantize, fake_quantize_backward, fake_quantize_with_mask, fma_f32,
                        quantize as _quantize)
from ._pytorch_add import add
from ._pytorch_observers import choose_qparams, choose_qparams_dynamic, observer_qmin_qmax
from ._pytorch_ops import ENGINES, conv2d, dynamic_linear, fbgemm_conv_path, linear

__all__ = [
    "quantize_per_tensor",
    "quantize_per_channel",
    "dequantize",
    "fake_quantize_per_tensor_affine",
    "fake_quantize_per_tensor_affine_cachemask",
    "fake_quantize_per_channel_affine",
    "fake_quantize_per_channel_affine_cachemask",
    "fake_quantize_per_tensor_affine_cachemask_backward",
    "fake_quantize_per_channel_affine_cachemask_backward",
    "fake_quantize_learnable_per_tensor_affine",
    "fake_quantize_learnable_per_tensor_affine_backward",
    "choose_qparams",
    "choose_qparams_dynamic",
    "observer_qmin_qmax",
    "ZERO_POINT_ORDERS",
    "PROFILE_OF_ZERO_POINT_ORDER",
    # op level (refquant.backends._pytorch_ops, _pytorch_add)
    "linear",
    "conv2d",
    "add",
    "dynamic_linear",
    "fbgemm_conv_path",
    "ENGINES",
]

ZERO_POINT_ORDERS = ("before", "after")
_DTYPES = {"quint8": "uint8", "qint8": "int8", "qint32": "int32"}
_BY_NUMPY = {np.dtype(np.uint8): "quint8", np.dtype(np.int8): "qint8", np.dtype(np.int32): "qint32"}
# Container for fake-quantize ranges, which have no dtype: any int64 [quant_min, quant_max].
_FQ_FORMAT = IntFormat("int64", 64, True, -(2 ** 63), 2 ** 63 - 1, np.dtype(np.int64))
_FQ_LIMIT = 2 ** 32

# zero_point_order= selects a profile (torch 2.13 adds the zero point before rounding, 1.6 - 2.12 after);
# the profile's quantize cases pick the vector (per-tensor quint8/qint8) or scalar kernel.
PROFILE_OF_ZERO_POINT_ORDER = {"before": "pytorch_fbgemm", "after": "pytorch_fbgemm_zp_after"}
_PROFILE = "pytorch_fbgemm"  # quantize, dequantize and fake-quantize are the same on every engine


def _qdtype(dtype) -> IntFormat:
    name = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
    if name not in _DTYPES:
        raise QuantizationValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
    return get_format(_DTYPES[name])


def _order(zero_point_order) -> str:
    return V.as_choice(zero_point_order, "zero_point_order", ZERO_POINT_ORDERS)


def _x_float32(x) -> np.ndarray:
    """torch.quantize_* take float32 tensors; other float dtypes are rounded to float32 first."""
    return V.as_float_array(x, "x").astype(np.float32, copy=False)


def _channel_axis(axis, ndim: int) -> int:
    axis = V.as_int(axis, "axis")
    if not 0 <= axis < ndim:  # torch rejects negative axes too
        raise QuantizationValueError(f"axis must be in [0, {ndim}) for a rank-{ndim} input (as in PyTorch), got {axis}")
    return axis


def _per_channel_params(x, scales, zero_points, axis, fmt: IntFormat, name_s="scales", name_z="zero_points", *,
                        scale_dtype=np.float32):
    """Validated per-channel ``(axis, scales in scale_dtype, int64 zero points)`` under this face's names."""
    axis = _channel_axis(axis, x.ndim)
    c = x.shape[axis]
    s, z = V.as_scale(scales, name_s, dtype=scale_dtype), V.as_zero_point(zero_points, fmt, name_z)
    for nm, a in ((name_s, s), (name_z, z)):
        if a.shape != (c,):
            raise ShapeError(f"{nm} must have shape ({c},) to match x.shape[{axis}] = {c}, got {a.shape}")
    return axis, s, z


def quantize_per_tensor(x, scale, zero_point, dtype, *, zero_point_order="before") -> np.ndarray:
    """``torch.quantize_per_tensor(x, scale, zero_point, dtype).int_repr()``.

    $q = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{fma}(x, 1/S, Z)), q_{min}, q_{max})$ for
    quint8/qint8 in torch 2.13 (one rounding; see the module table for qint32 and for
    ``zero_point_order="after"``). $1/S$ is the float32 ``1.0f / float(scale)``.

    Args:
        x: float array, any shape (empty allowed); rounded to float32 first, as torch
            accepts only float32. NaN/Inf map as the module docstring says.
        scale: positive finite float (used as float32).
        zero_point: integer inside the dtype's range.
        dtype: ``"quint8"``, ``"qint8"`` or ``"qint32"`` (or the ``torch.dtype``).
        zero_point_order: ``"before"`` (torch 2.13) or ``"after"`` (torch 1.6 – 2.12).

    Returns:
        uint8 / int8 / int32 array of ``x``'s shape.

    Raises:
        QuantizationValueError, QuantizationTypeError, ShapeError: bad arguments (torch
            itself accepts scale <= 0, NaN or Inf; refquant does not).
    """
    fmt = _qdtype(dtype)
    x = _x_float32(x)
    qp = make_qparams(scale, V.as_scalar_zero_point(zero_point, fmt), fmt)
    return _quantize(x, qp, PROFILE_OF_ZERO_POINT_ORDER[_order(zero_point_order)])


def quantize_per_channel(x, scales, zero_points, axis, dtype, *, zero_point_order="before") -> np.ndarray:
    """``torch.quantize_per_channel(x, scales, zero_points, axis, dtype).int_repr()``.

    Element $i$ with channel $c$ along ``axis``:
    $q_i = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{f32}(\\mathrm{f32}(x_i \\cdot 1/S_c) + \\mathrm{f32}(Z_c))), q_{min}, q_{max})$
    in torch 2.13 (ATen ``quantize_val``, two float roundings; ``"after"``:
    $\\mathrm{f32}(Z_c) + \\mathrm{RNE}(x_i \\cdot 1/S_c)$). NaN gives 0 (quint8/qint8) or INT32_MIN.

    Args:
        x: float array of rank >= 1 (rounded to float32).
        scales: 1-D positive floats of length ``x.shape[axis]`` (torch keeps float64,
            quantize uses ``float(scale)``).
        zero_points: 1-D integers of the same length, inside the dtype's range.
        axis: channel axis in ``[0, x.ndim)`` (negative axes are rejected, as in torch).
        dtype, zero_point_order: as :func:`quantize_per_tensor`.

    Returns:
        uint8 / int8 / int32 array of ``x``'s shape.
    """
    fmt = _qdtype(dtype)
    x = _x_float32(x)
    if x.ndim == 0:
        raise ShapeError("x must have rank >= 1 for per-channel quantization, got a scalar")
    axis, s, z = _per_channel_params(x, scales, zero_points, axis, fmt)
    qp = make_qparams(s, z, fmt, axis=axis)
    return _quantize(x, qp, PROFILE_OF_ZERO_POINT_ORDER[_order(zero_point_order)])


def dequantize(q, scale, zero_point, *, axis=None) -> np.ndarray:
    """``qtensor.dequantize()`` for a quantized tensor with codes ``q``.

    Per tensor (``axis=None``): $r = \\mathrm{f32}(S) \\cdot \\mathrm{float}(\\mathrm{wrap}_{32}(q - Z))$
    (fbgemm ``Dequantize``; for qint32 the difference wraps: ``INT32_MIN - 5`` becomes
    positive). Per channel: $r = \\mathrm{f32}(\\mathrm{f64}(\\mathrm{f32}(q) - \\mathrm{f32}(Z_c)) \\cdot S_c)$
    with the float64 scale (ATen ``dequantize_per_channel_affine_kernel``; no wrap, but
    qint32 codes round to float32 first).

    Args:
        q: uint8 (quint8), int8 (qint8) or int32 (qint32) array.
        scale: positive finite float, or 1-D array along ``axis`` (kept in float64
            per channel, as torch stores it).
        zero_point: integer (array per channel) inside the dtype's range.
        axis: ``None`` per tensor, else the channel axis in ``[0, q.ndim)``.

    Returns:
        float32 array of ``q``'s shape.
    """
    q = V.as_int_array(q, "q")
    if q.dtype not in _BY_NUMPY:
        raise QuantizationTypeError(f"q must be a uint8, int8 or int32 array (quint8, qint8, qint32), got {q.dtype}")
    fmt = _qdtype(_BY_NUMPY[q.dtype])
    if axis is None:
        qp = make_qparams(scale, V.as_scalar_zero_point(zero_point, fmt), fmt)
        return _dequantize(q, qp, _PROFILE)
    if q.ndim == 0:
        raise ShapeError("q must have rank >= 1 for per-channel dequantization, got a scalar")
    axis, s, z = _per_channel_params(q, scale, zero_point, axis, fmt, "scale", "zero_point", scale_dtype=np.float64)
    qp = make_qparams(s, z, fmt, axis=axis, scale_dtype=np.float64)
    return _dequantize(q, qp, _PROFILE)


def _fq_range(quant_min, quant_max) -> tuple[int, int]:
    lo, hi = V.as_int(quant_min, "quant_min"), V.as_int(quant_max, "quant_max")
    if lo > hi:
        raise QuantizationValueError(f"quant_min must be <= quant_max, got [{lo}, {hi}]")
    if lo < -_FQ_LIMIT or hi > _FQ_LIMIT:
        raise UnsupportedError(f"quant_min and quant_max must lie in [-2^32, 2^32] in refquant, got [{lo}, {hi}]")
    return lo, hi


def _fq_x(x) -> np.ndarray:
    x = V.as_float_array(x, "x")
    if x.dtype not in (np.float16, np.float32, np.float64):
        raise QuantizationTypeError(f"x must be float16, float32 or float64, got {x.dtype}")
    return x


def _fq_zero_points(z, lo, hi, name="zero_point"):
    z = V.as_zero_point(z, _FQ_FORMAT, name)
    if z.size and (z.min() < lo or z.max() > hi):
        v = z[(z < lo) | (z > hi)].flat[0]
        raise QuantizationValueError(f"{name} must be in [quant_min, quant_max] = [{lo}, {hi}], got {int(v)}")
    return z


def fake_quantize_per_tensor_affine_cachemask(x, scale, zero_point, quant_min, quant_max):
    """``torch.fake_quantize_per_tensor_affine_cachemask`` (what autograd saves): ``(y, mask)``.

    $q_f = \\mathrm{f}(Z) + \\mathrm{RNE}(x \\cdot 1/S)$ in float (zero point *after* rounding),
    $y = \\mathrm{float}(\\mathrm{clamp}(q_f, q_{min}, q_{max}) - Z) \\cdot S$,
    ``mask`` $= [q_{min} \\le q_f \\le q_{max}]$ compared in float (so $2^{31}$ passes for
    ``quant_max`` $= 2^{31}-1$). NaN gives ``quant_min`` and mask False; ±Inf saturate.

    Args:
        x: float16/32/64 array (float64: ``x * inv`` in double); any shape.
        scale: positive finite float (float32). zero_point: integer in [quant_min, quant_max].
        quant_min, quant_max: integers, ``quant_min <= quant_max``.

    Returns:
        ``(y, mask)``: ``x``'s dtype and shape, and a bool array.
    """
    x = _fq_x(x)
    lo, hi = _fq_range(quant_min, quant_max)
    z = _fq_zero_points(V.as_scalar_zero_point(zero_point, _FQ_FORMAT), lo, hi)
    qp = make_qparams(scale, z, _FQ_FORMAT, qmin=lo, qmax=hi)
    y, mask = fake_quantize_with_mask(x, qp, _PROFILE)
    with np.errstate(over="ignore"):  # float16: past 65504 is inf, as torch returns it
        return y.astype(x.dtype), mask


def fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max) -> np.ndarray:
    """``torch.fake_quantize_per_tensor_affine``:
    $y = (\\mathrm{clamp}(\\mathrm{f}(Z) + \\mathrm{RNE}(x \\cdot 1/S), q_{min}, q_{max}) - Z) \\cdot S$,
    the ``y`` of :func:`fake_quantize_per_tensor_affine_cachemask` (same arguments and errors)."""
    return fake_quantize_per_tensor_affine_cachemask(x, scale, zero_point, quant_min, quant_max)[0]


def fake_quantize_per_channel_affine_cachemask(x, scale, zero_point, axis, quant_min, quant_max):
    """``torch.fake_quantize_per_channel_affine_cachemask``: ``(y, mask)``.

    $q_i = \\mathrm{int64}(\\mathrm{f}(Z_c) + \\mathrm{RNE}(x_i \\cdot 1/S_c))$ (NaN, ±Inf and
    $|v| \\ge 2^{63}$ give INT64_MIN, i.e. ``quant_min``), ``mask`` $= [q_{min} \\le q_i \\le q_{max}]$
    on integers, $y = (\\mathrm{clamp}(q_i) - Z_c) \\cdot S_c$ computed in double, rounded to
    ``x``'s dtype.

    Args:
        x: float16/32/64 array of rank >= 1.
        scale: 1-D positive floats (float32) of length ``x.shape[axis]``.
        zero_point: 1-D integers (torch: an int32 tensor) in [quant_min, quant_max].
        axis: in ``[0, x.ndim)``. quant_min, quant_max: as per tensor.

    Returns:
        ``(y, mask)``.
    """
    x = _fq_x(x)
    lo, hi = _fq_range(quant_min, quant_max)
    if x.ndim == 0:
        raise ShapeError("x must have rank >= 1 for per-channel fake-quantize, got a scalar")
    axis, s, z = _per_channel_params(x, scale, zero_point, axis, _FQ_FORMAT, "scale", "zero_point")
    z = _fq_zero_points(z, lo, hi)
    qp = make_qparams(s, z, _FQ_FORMAT, axis=axis, qmin=lo, qmax=hi)
    y, mask = fake_quantize_with_mask(x, qp, _PROFILE)
    with np.errstate(over="ignore"):  # float16: past 65504 is inf, as torch returns it
        return y.astype(x.dtype), mask


def fake_quantize_per_channel_affine(x, scale, zero_point, axis, quant_min, quant_max) -> np.ndarray:
    """``torch.fake_quantize_per_channel_affine``:
    $y_i = (\\mathrm{clamp}(\\mathrm{f}(Z_c) + \\mathrm{RNE}(x_i \\cdot 1/S_c), q_{min}, q_{max}) - Z_c) \\cdot S_c$,
    the ``y`` of :func:`fake_quantize_per_channel_affine_cachemask` (same arguments and errors)."""
    return fake_quantize_per_channel_affine_cachemask(x, scale, zero_point, axis, quant_min, quant_max)[0]


def fake_quantize_per_tensor_affine_cachemask_backward(grad_y, mask) -> np.ndarray:
    """The gradient autograd returns for both fake-quantize ops: ``dY * mask``.

    $\\partial L / \\partial x = \\partial L / \\partial y \\cdot \\mathrm{mask}$ as a float product, so a
    masked negative gradient is ``-0.0`` and a masked NaN/Inf gradient is NaN, exactly as
    ``torch.fake_quantize_per_tensor_affine_cachemask_backward``.
    """
    g, m = V.grad_and_mask(grad_y, mask, "grad_y")  # named as this face names it
    return fake_quantize_backward(g, m, multiply=True)


fake_quantize_per_channel_affine_cachemask_backward = fake_quantize_per_tensor_affine_cachemask_backward


def _learnable_params(scale, zero_point, quant_min, quant_max, forward: bool):
    lo, hi = _fq_range(quant_min, quant_max)
    s = V.as_scale(scale, "scale").reshape(-1)
    zf = V.asarray(zero_point, "zero_point", kinds="fiu", what="a float")
    if zf.size != 1 or s.size != 1:
        raise ShapeError(f"scale and zero_point must hold one number each, got {s.shape} and {zf.shape}")
    zf = zf.astype(np.float32).reshape(())
    if not np.isfinite(zf):
        raise QuantizationValueError(f"zero_point must be finite, got {float(zf)!r}")
    # _get_zero_point_from_tensor: forward nearbyint, backward + 0.5f; clamp in float; cast truncates
    zf = np.rint(zf) if forward else np.float32(zf + np.float32(0.5))  # RNE in the forward
    zc = min(max(zf, np.float32(lo)), np.float32(hi))
    return np.float32(s[0]), int(np.trunc(zc)), lo, hi


def fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, quant_min, quant_max, grad_factor=1.0):
    """``torch._fake_quantize_learnable_per_tensor_affine`` forward (LSQ/TQT-style QAT).

    The forward is :func:`fake_quantize_per_tensor_affine` with ``scale`` as float32 and
    the float ``zero_point`` rounded half to even and clamped,
    $Z = \\mathrm{trunc}(\\mathrm{clamp}(\\mathrm{RNE}(z), q_{min}, q_{max}))$.
    ``grad_factor`` only scales the gradients.

    Args:
        x: float16/32/64 array, any shape.
        scale, zero_point: one float each (torch's learnable one-element tensors); the scale
            positive and finite, the zero point finite.
        quant_min, quant_max: integers, ``quant_min <= quant_max``.
        grad_factor: unused in the forward.

    Returns:
        Array of ``x``'s dtype and shape.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad arguments (named).
    """
    s, z, lo, hi = _learnable_params(scale, zero_point, quant_min, quant_max, forward=True)
    V.as_real_scalar(grad_factor, "grad_factor")  # checked, though only the gradients use it
    return fake_quantize_per_tensor_affine(x, s, z, lo, hi)


def fake_quantize_learnable_per_tensor_affine_backward(grad_y, x, scale, zero_point, quant_min, quant_max,
                                                       grad_factor=1.0, *, reduce=True, fma=True):
    """Gradients of :func:`fake_quantize_learnable_per_tensor_affine` (``..._backward`` in ATen).

    With $Z_b = \\mathrm{trunc}(\\mathrm{clamp}(Z + 0.5))$ (the backward's own zero point),
    $q = \\mathrm{RNE}(\\mathrm{fma}(x, 1/S, Z_b))$ (zero point *before* rounding, unlike the
    forward) and $g$ = ``grad_factor`` (float32):

    * inside $[q_{min}, q_{max}]$: $dx = dy$, $dS = dy \\cdot \\mathrm{fma}(q - Z_b, S, -x) \\cdot (1/S) \\cdot g$, $dZ = 0$;
    * outside: $dx = 0$, $dS = dy \\cdot (q_{min|max} - Z_b) \\cdot g$, $dZ = -dy \\cdot S \\cdot g$.

    The FMAs are GCC's contraction in the AVX2/AVX-512 builds of ``QuantizedOpKernels.cpp``
    (measured: 300/300 near-tie cases); ``fma=False`` models a build without it.

    Args:
        grad_y, x: float32 arrays of one shape. scale, zero_point: one float each (the
            learnable parameters). quant_min, quant_max: integers with
            ``quant_min <= 0 <= quant_max``. grad_factor: float (used as float32).
        reduce: ``True``: ``dscale``/``dzero_point`` are the (1,) sums torch returns,
            accumulated in float64 (torch sums float32 in its own order, so totals can
            differ in the last bits); ``False``: the per-element terms (bit-exact).

    Returns:
        ``(dx, dscale, dzero_point)`` as float32.
    """
    g, x = V.as_float_array(grad_y, "grad_y").astype(np.float32), V.as_float_array(x, "x").astype(np.float32)
    if g.shape != x.shape:
        raise ShapeError(f"grad_y must have x's shape {x.shape}, got {g.shape}")
    s, zb, lo, hi = _learnable_params(scale, zero_point, quant_min, quant_max, forward=False)
    if not lo <= 0 <= hi:
        raise QuantizationValueError(f"[quant_min, quant_max] must include 0, got [{lo}, {hi}]")
    if not lo <= zb <= hi:
        raise QuantizationValueError(f"zero_point must be in [{lo}, {hi}], got {zb}")
    fma, reduce = V.as_flag(fma, "fma", ints=False), V.as_flag(reduce, "reduce", ints=False)
    inv, gf = np.float32(np.float32(1) / s), np.float32(V.as_real_scalar(grad_factor, "grad_factor"))
    with np.errstate(invalid="ignore", over="ignore"):
        v = fma_f32(x, np.full(x.shape, inv), np.float64(zb)) if fma else (x * inv + np.float32(zb)).astype(np.float32)
        r = np.rint(v)  # RNE, as nearbyint; then static_cast<int64_t>: NaN/Inf -> INT64_MIN
        xq = np.where(np.abs(r) < 2.0 ** 63, np.clip(np.where(np.isfinite(r), r, 0), -2.0 ** 62, 2.0 ** 62),
                      -(2.0 ** 62)).astype(np.int64)  # -2^62 stands for INT64_MIN (below any quant_min)
        inside = (xq >= lo) & (xq <= hi)
        dx = (g * inside.astype(np.float32)).astype(np.float32)
        cf = (np.clip(xq, lo, hi) - zb).astype(np.float32)
        diff = fma_f32(cf, np.full(x.shape, s), -x.astype(np.float64)) if fma else (cf * s - x).astype(np.float32)
        ds_in = (((g * diff).astype(np.float32) * inv).astype(np.float32) * gf).astype(np.float32)
        ds_out = (np.where(xq < lo, g * np.float32(lo - zb), g * np.float32(hi - zb)).astype(np.float32) * gf)
        dz_out = (((-g) * s).astype(np.float32) * gf).astype(np.float32)
    dscale = np.where(inside, ds_in, ds_out.astype(np.float32)).astype(np.float32)
    dzero = np.where(inside, np.float32(0), dz_out).astype(np.float32)
    if reduce:
        dscale = np.array([dscale.sum(dtype=np.float64)], np.float32)
        dzero = np.array([dzero.sum(dtype=np.float64)], np.float32)
    return dx, dscale, dzero
