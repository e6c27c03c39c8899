r"""PyTorch quantized CPU ops at op level: ``linear``, ``conv2d``, ``dynamic_linear`` (torch 2.13, x86-64).

Re-exported by :mod:`refquant.backends.pytorch`; element-wise ``add`` lives in :mod:`._pytorch_add`.
Each function binds refquant's kernels in the order the engine runs them; none does integer
arithmetic of its own. Activations are quint8 (``uint8``), weights qint8 (``int8``) of shape
``(N, K)`` (linear) or ``(O, C/groups, kH, kW)`` (conv, NCHW), per tensor or per output channel
(axis 0, zero points allowed), bias float32 as PyTorch keeps it.

| stage | engines ``fbgemm``, ``x86`` | engine ``qnnpack`` |
|---|---|---|
| accumulator | u8×s8 GEMM of **raw** codes, zero points by row/column sums; AVX2 ``vpmaddubsw`` pairs saturate to int16 (``isa="avx2"``); conv im2col order $(k_H, k_W, C_g)$ | exact int32 (weights $+128$ to uint8; SSE2 subtracts zero points in int16, then ``pmaddwd``) |
| bias | float: $\mathrm{acc}_f = \mathrm{fma}(b_c, \mathrm{fl}(1/a), \mathrm{fl}(\mathrm{acc}))$ per tensor, $\mathrm{fl}(\mathrm{acc}) + \mathrm{fl}(b_c / a_c)$ per channel, $a_c = \mathrm{fl}(S_x S_w[c])$ | quantized at run time: $\mathrm{RNE}(b_c \cdot \mathrm{fl}(1/\mathrm{fl}(S_w[c] S_x)))$, added in int32 |
| multiplier | $M_c = \mathrm{fl}(a_c / S_y)$ | $M_c = \mathrm{fl}(\mathrm{fl}(S_w[c] S_x) \cdot \mathrm{fl}(1/S_y))$ |
| output | $\mathrm{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{acc}_f M_c)) + Z_y, 0, 255)$ | same with the int32 accumulator |

In both engines ``cvtps2dq`` turns a product $|\mathrm{acc}_f M_c| \ge 2^{31}$ into INT32_MIN,
which the packing saturates to **0** (not 255): the profiles' ``overflow_to_zero`` models it.

``engine`` selects a profile (``ENGINE_PROFILES``: ``fbgemm``, ``x86``, ``qnnpack``) and ``isa`` resolves its accumulation model
(:meth:`refquant.profiles.Profile.with_isa`); the arithmetic above is that profile's data, run by
:mod:`refquant.ops.layers`.

``dynamic_linear`` (float in, float out): $S_x, Z_x$ from :func:`choose_qparams_dynamic` of
$\min(x), \max(x)$ (fbgemm honours ``reduce_range``, i.e. $[0, 127]$; qnnpack ignores it and
warns), $x_q$ = :func:`refquant.backends.pytorch.quantize_per_tensor`, the accumulator as above
and $y = \mathrm{fma}(\mathrm{fl}(\mathrm{acc}), \mathrm{fl}(S_x S_w[c]), b_c)$ (fbgemm
``requantizeForFloatAvx2``, contracted) or $\mathrm{fl}(\mathrm{fl}(\mathrm{acc} \cdot
\mathrm{fl}(S_w[c] S_x)) + b_c)$ (qnnpack ``q8gemm_dq``, SSE2).

**Measured** (torch 2.13 CPU wheel, 2-core AMD EPYC with AVX2 and FMA, no VNNI;
``tests/test_conformance_pytorch_ops.py``): every formula above, bit for bit, on every fbgemm
conv path (depthwise 3×3/5×5 fast path, groupwise $C_g \in \{2, 4, 8, 16\}$, pointwise 1×1,
im2col), ``x86`` = ``fbgemm`` on this CPU, and qnnpack's float outputs as well.

**Engine** ``x86`` **on an AVX-512 VNNI CPU** (measured, torch 2.13 with oneDNN 3.12, 2-core AMD
EPYC; ``tests/test_conformance_pytorch_onednn.py``): a convolution with symmetric weights and at
most 100 groups is packed for oneDNN (``should_use_onednn_quant``). Its output stage applies the
scales one at a time in float32, the float bias between them and $Z_y$ *before* rounding
(:mod:`refquant.kernels.requant_chain`, profile ``pytorch_x86``); with the source scale
$\mathrm{fl}(1/\mathrm{fl}(1/S_x))$ (one ulp from $S_x$ for about a sixth of float32 values). On
three geometry classes oneDNN 3.12's results change from run to run or the process crashes
(one input channel per group with several outputs, e.g. a grayscale first layer; a single
all-padding output column; strided and dilated all-padding columns): refused with
:class:`UnsupportedError`. Depthwise 16k-channel convs with kH = 1 and row padding only return the
bias alone when $Z_x \ne 0$: modelled. Linear layers stay on fbgemm on every CPU.

**Read in source** (``isa="vnni"`` for fbgemm): fbgemm's GEMM, im2col, pointwise and groupwise
kernels use ``vpdpbusd`` (exact), but its depthwise fast path (``GenerateI8Depthwise.cc``, AVX2
only) still pairs taps with ``vpmaddubsw``. fbgemm ignores AVX-VNNI without AVX512
(``fbgemmHasAvx512VnniSupport``), so ``isa="auto"`` resolves such CPUs to pair saturation.

Added in 0.1.0.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as V
from ..cpu import ISA_CHOICES
from ..dtypes import INT32_MAX, get_format
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..ops import dynamic, layers
from ..profiles import Profile, get_profile

__all__ = ["ENGINES", "ENGINE_PROFILES", "linear", "conv2d", "dynamic_linear", "fbgemm_conv_path"]

# engine= selects a profile; x86 runs fbgemm's kernels except where its profile's conv_dispatch sends a
# convolution to oneDNN (AVX-512 VNNI CPUs)
ENGINE_PROFILES = {"fbgemm": "pytorch_fbgemm", "x86": "pytorch_x86", "qnnpack": "pytorch_qnnpack"}
ENGINES = tuple(ENGINE_PROFILES)
_F32 = np.float32
_U8, _I8 = np.dtype(np.uint8), np.dtype(np.int8)


# --------------------------------------------------------------------------- argument checks


def _engine(engine) -> str:
    return V.as_choice(engine, "engine", ENGINES)


def _profile(engine, isa) -> Profile:
    """The engine's profile with its accumulation resolved for ``isa`` (``"auto"``: this CPU)."""
    isa = V.as_choice(isa, "isa", ISA_CHOICES)
    return get_profile(ENGINE_PROFILES[_engine(engine)]).with_isa(isa)


def _codes(x, name: str, dtype, min_ndim: int, exact_ndim=None) -> np.ndarray:
    """Quantized codes: a NumPy array of the tensor's dtype (uint8 quint8, int8 qint8), rank as PyTorch needs."""
    label = {_U8: "uint8 (quint8)", _I8: "int8 (qint8)"}[np.dtype(dtype)]
    return V.as_typed_array(x, name, (dtype,), ndim=exact_ndim, min_ndim=min_ndim, array_only=True, labels=label)


def _zero_point(z, dtype, name: str, length=None) -> np.ndarray:
    """A Python int, or NumPy integers of the tensor's dtype or int64 (PyTorch's zero-point dtype),
    inside the tensor's range. Returns int64 of shape () or (length,)."""
    dtype = np.dtype(dtype)
    if not (isinstance(z, numbers.Integral) and not isinstance(z, (bool, np.generic))):  # not a Python int
        a = V.asarray(z, name, kinds=None, what="an integer")
        if a.dtype not in (dtype, np.dtype(np.int64)):
            raise QuantizationTypeError(
                f"{name} must be a Python int or have dtype {dtype.name} (or int64), got {V.describe(z)}")
        z = a
    a = V.as_zero_point(z, get_format(dtype), name)
    if a.ndim > 1 or (a.ndim == 1 and length is None):
        raise ShapeError(f"{name} must be a scalar{'' if length is None else ' or 1-D'}, got shape {a.shape}")
    if a.ndim == 1 and a.shape[0] != length:
        raise ShapeError(f"{name} must have {length} elements (one per output channel), got {a.shape[0]}")
    return a


def _weight_qparams(w_scale, w_zero_point, n: int):
    """Per tensor (0-d ``w_scale``) or per channel (1-D, length ``n``). Returns (scale, zp, per_channel)."""
    s = V.as_scale(w_scale, "w_scale")
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != n):
        raise ShapeError(f"w_scale must be a scalar or have {n} elements (one per output channel), got shape {s.shape}")
    z = _zero_point(w_zero_point, _I8, "w_zero_point", n)
    return s, z, s.ndim == 1 or z.ndim == 1


def _layer_qparams(x_scale, x_zero_point, w_scale, w_zero_point, bias, y_scale, y_zero_point, n: int):
    """The parameters of a quantized linear/conv layer, validated:
    ``(xs, xz, ws, wz, per_channel, b, ys, yz)`` (zero points as int64, bias float32 or None)."""
    xs, ys = V.as_scalar_scale(x_scale, "x_scale", max_ndim=1), V.as_scalar_scale(y_scale, "y_scale", max_ndim=1)
    xz = _zero_point(x_zero_point, _U8, "x_zero_point")
    yz = _zero_point(y_zero_point, _U8, "y_zero_point")
    ws, wz, per_channel = _weight_qparams(w_scale, w_zero_point, n)
    return xs, xz, ws, wz, per_channel, _bias_arg(bias, n), ys, yz


def _bias_arg(bias, n: int):
    if bias is None:
        return None
    b = V.as_float_array(bias, "bias")
    if b.shape != (n,):
        raise ShapeError(f"bias must have shape ({n},), one per output channel of w, got {b.shape}")
    b = b.astype(_F32)  # PyTorch keeps the bias in float32
    if not np.all(np.isfinite(b)):
        raise QuantizationValueError(f"bias must be finite, got {b[~np.isfinite(b)][0]!r}")
    return b


# --------------------------------------------------------------------------- linear


def linear(x, x_scale, x_zero_point, w, w_scale, w_zero_point, bias, y_scale, y_zero_point, *,
           engine="fbgemm", isa="auto"):
    """``torch.ao.nn.quantized.Linear`` / ``quantized::linear``: quint8 in, quint8 out.

    $y = \\mathrm{clamp}(\\mathrm{RNE}(\\mathrm{acc}_f M_c) + Z_y, 0, 255)$ with
    $\\mathrm{acc}_{mc} = \\sum_k (x_{mk} - Z_x)(w_{ck} - Z_w[c])$ formed as the engine forms it
    (module docstring table).

    Args:
        x: uint8 (quint8 codes), shape ``(..., K)``, rank >= 2 (as in PyTorch).
        x_scale: positive float (float32). x_zero_point: int in [0, 255].
        w: int8 (qint8 codes), shape ``(N, K)``.
        w_scale: positive float, or ``(N,)`` per output channel. w_zero_point: int in
            [-128, 127], or ``(N,)``.
        bias: ``None`` or float ``(N,)`` (used as float32), finite.
        y_scale, y_zero_point: output parameters (float32; int in [0, 255]).
        engine: ``"fbgemm"``, ``"x86"`` (fbgemm's kernels for linear) or ``"qnnpack"``.
        isa: fbgemm's u8×s8 accumulation: ``"auto"`` (this CPU), ``"avx2"`` (int16 pair
            saturation), ``"vnni"``, ``"exact"``. qnnpack is exact on every ISA.

    Returns:
        uint8 array of shape ``(..., N)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad arguments (named).
        UnsupportedError: a requantization scale that the engine rejects or that leaves float32.
    """
    prof = _profile(engine, isa)
    x = _codes(x, "x", _U8, 2)
    w = _codes(w, "w", _I8, 2, exact_ndim=2)
    n, k = w.shape
    if x.shape[-1] != k:
        raise ShapeError(f"x must have K = w.shape[1] = {k} features in its last dimension, got x.shape = {x.shape}")
    xs, xz, ws, wz, per_channel, b, ys, yz = _layer_qparams(x_scale, x_zero_point, w_scale, w_zero_point, bias,
                                                           y_scale, y_zero_point, n)
    y = layers.linear(x.reshape(-1, k), xs, int(xz), w, ws, wz, b, ys, int(yz), profile=prof,
                      out_dtype=np.uint8)  # (M, N)
    return y.reshape(x.shape[:-1] + (n,))


# --------------------------------------------------------------------------- conv2d


def fbgemm_conv_path(in_channels, out_channels, kernel, stride, padding, dilation, groups) -> str:
    """Which fbgemm kernel ``fbgemmConv`` picks (``ConvFastPath``): ``"depthwise"``, ``"groupwise"``,
    ``"pointwise"`` or ``"im2col"``. On AVX2 all four give the same pairwise result (measured);
    the name matters for ``isa="vnni"``, where only the depthwise kernel keeps ``vpmaddubsw``."""
    in_channels, out_channels = V.as_positive_int(in_channels, "in_channels"), V.as_positive_int(out_channels,
                                                                                                 "out_channels")
    groups = V.as_positive_int(groups, "groups")
    if in_channels % groups or out_channels % groups:
        raise QuantizationValueError(f"in_channels and out_channels must be divisible by groups = {groups}, "
                                     f"got {in_channels} and {out_channels}")
    (kh, kw), (sh, sw), (dh, dw) = (V.as_int_pair(v, n) for v, n in ((kernel, "kernel"), (stride, "stride"),
                                                                       (dilation, "dilation")))
    ph, pw = V.as_int_pair(padding, "padding", minimum=0)
    cg, og = in_channels // groups, out_channels // groups
    if (groups == in_channels and out_channels in (groups, 2 * groups) and groups % 8 == 0 and {sh, sw} <= {1, 2}
            and kh == kw and kh in (3, 5) and (dh, dw) == (1, 1) and ph == pw == (kh - 1) // 2):
        return "depthwise"
    if (cg == og and cg in (2, 4, 8, 16) and (kh, kw) == (3, 3) and sh == sw and sh in (1, 2)
            and (ph, pw) == (1, 1) and (dh, dw) == (1, 1)):  # fbgemmOptimizedGConv (2-D)
        return "groupwise"
    if (kh, kw, sh, sw, dh, dw, ph, pw) == (1, 1, 1, 1, 1, 1, 0, 0):
        return "pointwise"
    return "im2col"


def conv2d(x, x_scale, x_zero_point, w, w_scale, w_zero_point, bias, y_scale, y_zero_point, *, stride=1,
           padding=0, dilation=1, groups=1, engine="fbgemm", isa="auto"):
    """``torch.ao.nn.quantized.Conv2d`` / ``quantized::conv2d`` (NCHW, zero padding): quint8 in and out.

    The accumulator is eq. (1) of :mod:`refquant.kernels.conv` (out-of-image taps are $Z_x$);
    requantization as :func:`linear`, per output channel along axis 1.

    Args:
        x: uint8 ``(N, C, H, W)``. w: int8 ``(O, C/groups, kH, kW)``.
        x_scale, x_zero_point, w_scale, w_zero_point, bias, y_scale, y_zero_point: as
            :func:`linear`, with ``O`` output channels.
        stride, dilation: int or ``(h, w)``, each >= 1. padding: int or ``(h, w)``, each >= 0
            (symmetric, as PyTorch's ``padding``).
        groups: int >= 1 dividing ``C`` and ``O`` (``groups = C``: depthwise).
        engine, isa: as :func:`linear`.

    Returns:
        uint8 ``(N, O, OH, OW)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad arguments (named).
        UnsupportedError: ``engine="x86"`` on an AVX-512 VNNI CPU, where oneDNN runs the conv, on
            a geometry whose oneDNN results are not reproducible (module docstring).
    """
    prof = _profile(engine, isa)
    x = _codes(x, "x", _U8, 4, exact_ndim=4)
    w = _codes(w, "w", _I8, 4, exact_ndim=4)
    stride = V.as_int_pair(stride, "stride", maximum=INT32_MAX)
    dilation = V.as_int_pair(dilation, "dilation", maximum=INT32_MAX)
    padding = V.as_int_pair(padding, "padding", minimum=0, maximum=INT32_MAX)
    groups = V.as_positive_int(groups, "groups")
    c, o = x.shape[1], w.shape[0]
    if c % groups or o % groups:
        raise ShapeError(f"channels must be divisible by groups = {groups}, got C = {c} (x) and O = {o} (w)")
    if w.shape[1] * groups != c:
        raise ShapeError(f"w must have C / groups = {c // groups} input channels per group, got w.shape = {w.shape}")
    xs, xz, ws, wz, per_channel, b, ys, yz = _layer_qparams(x_scale, x_zero_point, w_scale, w_zero_point, bias,
                                                           y_scale, y_zero_point, o)
    # the profile's conv_families pick fbgemm's depthwise kernel (vpmaddubsw even on VNNI) by geometry
    return layers.conv2d(x, xs, int(xz), w, ws, wz, b, ys, int(yz), profile=prof, strides=stride, dilations=dilation,
                         pads=padding, groups=groups, out_dtype=np.uint8)  # k_order "hwc" from the profile


# --------------------------------------------------------------------------- dynamic_linear


def dynamic_linear(x, w, w_scale, w_zero_point, bias, *, reduce_range=True, engine="fbgemm", isa="auto"):
    """``torch.ao.nn.quantized.dynamic.Linear`` / ``quantized::linear_dynamic``: float32 in and out.

    $S_x, Z_x$ = :func:`choose_qparams_dynamic` ($[0, 255]$, or $[0, 127]$ with ``reduce_range``
    on fbgemm/x86; qnnpack ignores ``reduce_range``), $x_q$ quantized as
    ``quantize_per_tensor`` (one FMA: $\\mathrm{RNE}(\\mathrm{fma}(x, 1/S_x, Z_x))$), the int32
    accumulator of :func:`linear`, then with $m_c = \\mathrm{fl}(S_x S_w[c])$:

    * fbgemm/x86: $y = \\mathrm{fma}(\\mathrm{fl}(\\mathrm{acc}), m_c, b_c)$ (one rounding);
    * qnnpack: $y = \\mathrm{fl}(\\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc}) \\cdot m_c) + b_c)$.

    Bit-exact against torch 2.13 (float32 bit patterns, ``tests/test_conformance_pytorch_ops.py``).

    Args:
        x: float array ``(..., K)``, rank >= 2, finite (float64 is rounded to float32).
        w, w_scale, w_zero_point, bias: as :func:`linear`.
        reduce_range: halve the activation range (PyTorch's default for x86 qconfigs).
        engine, isa: as :func:`linear`.

    Returns:
        float32 array ``(..., N)``.
    """
    prof = _profile(engine, isa)
    xf = V.as_float_array(x, "x")
    if xf.ndim < 2:
        raise ShapeError(f"x must have rank >= 2 (as in PyTorch), got shape {xf.shape}")
    with np.errstate(over="ignore"):
        xf = xf.astype(_F32)
    if not np.all(np.isfinite(xf)):
        raise QuantizationValueError("x must be finite (its min and max choose the quantization parameters)")
    w = _codes(w, "w", _I8, 2, exact_ndim=2)
    n, k = w.shape
    if xf.shape[-1] != k:
        raise ShapeError(f"x must have K = w.shape[1] = {k} features in its last dimension, got x.shape = {xf.shape}")
    reduce_range = V.as_flag(reduce_range, "reduce_range", ints=False)
    ws, wz, _ = _weight_qparams(w_scale, w_zero_point, n)
    b = _bias_arg(bias, n)
    out_shape = xf.shape[:-1] + (n,)
    if xf.size == 0:
        return np.zeros(out_shape, _F32)
    y = dynamic.dynamic_linear(xf.reshape(-1, k), w, ws, wz, b, profile=prof, reduce_range=reduce_range)
    return y.reshape(out_shape)
