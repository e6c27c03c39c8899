r"""Quantized linear and convolution layers under a profile.

A layer is four steps, each read from the profile's :class:`~refquant.specs.LayerSpec`:

1. **accumulate** $\mathrm{acc}_c = \sum_k (x_k - Z_x)(w_{ck} - Z_w[c])$ in int32
   (:func:`refquant.kernels.gemm.gemm`, :func:`refquant.kernels.conv.conv2d`), with the
   accumulation model the spec gives for the profile's ISA (x86 ``vpmaddubsw`` pair
   saturation where the backend has it);
2. **bias**: an int32 bias added to the accumulator, or a float32 bias divided by
   $S_x S_w[c]$ and added in float, or a float bias quantized at run time;
3. **requantize** with $M_c = S_x S_w[c] / S_y$ formed as the spec says, in the spec's
   requantization mode (fixed point or float), plus $Z_y$;
4. **clamp** to the fused activation's range, its bounds rounded as the spec says.

**16x8 layers** (int16 activations with zero point 0, int8 weights with zero point 0: TFLite's 16x8
mode) take the profile's :meth:`~refquant.profiles.Profile.layer_16x8` spec, chosen by the layer family
and the bias tensor (int64, int32 or none): step 1 sums the int16 × int8 products exactly in int64
(:mod:`refquant.kernels.gemm_int64`) and keeps the spec's accumulator width (``"int64"``, or
``"wrap_int32"``: the low 32 bits), step 2 adds the bias in that width, wrapping
(:func:`refquant.kernels.bias.add_bias_wrapping`); steps 3-4 as above, on the int64 or int32 sum. A
profile without 16x8 layers raises :class:`~refquant.errors.UnsupportedError`.

Internal convention (the faces translate to it; the integer model calls it directly):
scales are float32 (``w_scale`` shape ``()`` or ``(O,)``), zero points are Python ints or int64
arrays (``w_zero_point`` ``()`` or ``(O,)``), the output format comes from ``out_dtype``, and the
bias has the dtype its mode needs (int32 for ``int32``, float32 otherwise). These functions trust their
callers for those values (the faces validate them); they check only the names that choose the
arithmetic: the profile, the layer family and the fused activation.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from . import conv_geometry, pointwise
from ..dtypes import wrap_int32
from ..kernels.bias import add_bias, add_bias_wrapping, float_bias_accumulator, quantize_bias_runtime
from ..kernels.conv import conv2d as conv_accumulate
from ..kernels.gemm import gemm
from ..kernels.gemm_int64 import conv2d_int64, gemm_int64
from ..kernels.multiplier import ACTIVATION_FLOAT_RANGES, activation_bounds, real_multiplier, requant_params
from ..kernels.requant import fixed_shift_range, requantize
from ..kernels.requant_chain import requantize_scale_chain, scale_chain_constants
from ..profiles import Profile, as_profile
from ..specs import LayerSpec

__all__ = ["output_stage", "linear", "conv2d", "conv_family", "requantize_tensor"]

_F32 = np.float32


_SCALE_NAMES = ("x_scale", "w_scale", "y_scale")


def _ratio(names) -> str:
    """``"x_scale * w_scale / y_scale"`` in the caller's argument names (errors name them)."""
    return f"{names[0]} * {names[1]} / {names[2]}"


def _check_limits(spec: LayerSpec, xs, ws, ys, names=_SCALE_NAMES) -> None:
    """The backend's refusals of a requantization scale (see the spec's fields)."""
    if spec.max_requant_scale is not None:
        m = real_multiplier(xs, ws, ys, derivation="f32_ab_div_c")
        if np.any(m >= spec.max_requant_scale):
            raise UnsupportedError(f"{_ratio(names)} = {float(np.max(m))!r} must be below "
                                   f"{spec.max_requant_scale!r} for this profile's kernels (the backend refuses it)")
    if spec.require_normal_multiplier:
        m = real_multiplier(xs, ws, ys, derivation=spec.derivation(np.ndim(ws) > 0))
        ok = np.isfinite(m) & (m >= np.finfo(_F32).tiny)
        if not np.all(ok):
            raise UnsupportedError(f"this profile's kernels need a positive normal requantization scale "
                                   f"({_ratio(names)} in float32), got {float(np.asarray(m)[~ok].ravel()[0])!r}")


def _float_multiplier_ok(m, what: str) -> None:
    if not np.all(np.isfinite(m) & (np.asarray(m) > 0)):
        raise UnsupportedError(f"{what} over- or underflows float32: the backend's result would be inf or NaN, "
                               f"which refquant does not model")


def _fixed_shift_ok(p, names) -> None:
    """A fixed-point multiplier whose shift its kernel cannot apply: the scales' ratio is out of range."""
    lo, hi = fixed_shift_range(p.mode)
    bad = (p.shift < lo) | (p.shift > hi)
    if np.any(bad):
        real = float(np.asarray(p.real, dtype=np.float64)[bad].ravel()[0])
        raise QuantizationValueError(
            f"{_ratio(names)} = {real!r} is outside the range of the fixed-point multiplier of mode {p.mode!r} "
            f"(its shift {int(p.shift[bad].ravel()[0])} is outside [{lo}, {hi}])")


def output_stage(acc, spec: LayerSpec, x_scale, w_scale, y_scale, y_zero_point: int, *, bias=None,
                 activation=None, axis: int = -1, out_dtype=np.int8, scale_names=_SCALE_NAMES) -> np.ndarray:
    """Steps 2-4 of the module docstring: int32 accumulators to output codes.

    Args:
        acc: int32 accumulators (zero points already applied), output channels along ``axis``.
        spec: The layer's :class:`~refquant.specs.LayerSpec`.
        x_scale, y_scale: float32 scalars. w_scale: float32 ``()`` or ``(O,)``.
        y_zero_point: Output zero point (int).
        bias: ``None``, or ``(O,)``: int32 for ``bias="int32"``, else float32.
        activation: A fused activation name (``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"``,
            ``"RELU_N1_TO_1"``); its float range is clamped as ``spec.activation_bounds`` says.
        axis: The output-channel axis of ``acc``.
        out_dtype: ``np.int8``, ``np.uint8`` or ``np.int16``.
        scale_names: The caller's names of ``(x_scale, w_scale, y_scale)``, for error messages
            (a matmul face calls them ``a_scale``, ``b_scale``, ``y_scale``).

    Returns:
        Codes of ``acc``'s shape and ``out_dtype``.

    Raises:
        UnsupportedError: A requantization scale the backend refuses, or whose float32 multiplier
            over- or underflows.
        QuantizationValueError: A scale ratio outside a fixed-point multiplier's range.
    """
    out_dtype = np.dtype(out_dtype)
    info = np.iinfo(out_dtype)
    per_channel = np.ndim(w_scale) > 0
    _check_limits(spec, x_scale, w_scale, y_scale, scale_names)
    if spec.requant == "float32_scale_chain":  # the scales applied one by one, the bias between them
        if V.as_choice(activation, "activation", tuple(ACTIVATION_FLOAT_RANGES)) not in (None, "NONE", "RELU"):
            raise UnsupportedError(f"this profile's kernel fuses only a ReLU, got activation {activation!r}")
        s_x, s_w, d = scale_chain_constants(x_scale, w_scale, y_scale)
        return requantize_scale_chain(acc, s_x, s_w, bias, d, int(y_zero_point), int(info.min), int(info.max),
                                      axis=axis, relu=activation == "RELU", dtype=out_dtype)
    lo, hi = activation_bounds(activation, y_scale, y_zero_point, int(info.min), int(info.max),
                               rounding=spec.activation_bounds)
    if bias is not None:
        if spec.bias == "int32":
            acc = add_bias(acc, bias, axis=axis)
        elif spec.bias == "runtime_quantized":
            acc = add_bias(acc, quantize_bias_runtime(bias, x_scale, w_scale), axis=axis)
        else:  # float_over_act_times_w_scale
            atws = (_F32(x_scale) * np.asarray(w_scale, _F32)).astype(_F32)  # fl(S_x S_w[c])
            _float_multiplier_ok(atws, f"{scale_names[0]} * {scale_names[1]}")
            acc = float_bias_accumulator(acc, bias, atws, axis=axis,
                                         reciprocal=spec.bias_reciprocal_per_tensor and not per_channel)
    p = requant_params(x_scale, w_scale, y_scale, mode=spec.requant, derivation=spec.derivation(per_channel),
                       single_rounding=spec.single_rounding)
    if p.mode == "float32_rne":
        _float_multiplier_ok(p.multiplier, _ratio(scale_names))
    if p.shift is not None:
        _fixed_shift_ok(p, scale_names)
    y = requantize(acc, p.multiplier, y_zero_point, lo, hi, mode=p.mode, shift=p.shift, axis=axis, dtype=out_dtype)
    if spec.tail_block:
        y = _tail_channels(y, acc, spec, x_scale, w_scale, y_scale, y_zero_point, lo, hi, axis, out_dtype,
                           scale_names)
    if spec.overflow_to_zero and p.mode == "float32_rne":
        y = _overflow_to_zero(y, acc, p.multiplier, axis)
    return y


def _tail_channels(y, acc, spec, xs, ws, ys, yz, lo, hi, axis, out_dtype, scale_names):
    """The last ``O % tail_block`` channels requantized in ``spec.tail_requant``."""
    o = acc.shape[axis]
    cut = o - o % spec.tail_block
    if cut == o:
        return y
    tail = [slice(None)] * acc.ndim
    tail[axis] = slice(cut, o)
    tail = tuple(tail)
    ws_tail = ws[cut:] if np.ndim(ws) else ws
    p = requant_params(xs, ws_tail, ys, mode=spec.tail_requant, derivation=spec.derivation(np.ndim(ws) > 0),
                       single_rounding=spec.single_rounding)
    if p.shift is not None:
        _fixed_shift_ok(p, scale_names)
    y[tail] = requantize(acc[tail], p.multiplier, yz, lo, hi, mode=p.mode, shift=p.shift, axis=axis,
                         dtype=out_dtype)
    return y


def _overflow_to_zero(y, acc_f, multiplier, axis: int):
    """``cvtps2dq`` of $|\\mathrm{fl}(\\mathrm{acc}\\cdot M_c)| \\ge 2^{31}$ gives INT32_MIN ("integer
    indefinite"); ``packs``/``adds``/``packus`` then saturate it to 0. Overwrites those outputs."""
    m = np.asarray(multiplier, _F32)
    if m.ndim == 1 and np.ndim(acc_f):
        shape = [1] * np.ndim(acc_f)
        shape[axis] = m.size
        m = m.reshape(shape)
    with np.errstate(over="ignore", invalid="ignore"):
        v = (np.asarray(acc_f).astype(_F32) * m).astype(np.float64)  # the float32 product requantize rounds
    y[~(np.abs(v) < 2.0 ** 31)] = 0
    return y


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _nchw_geometry(x, w, strides, dilations, pads, groups, layout, w_layout):
    """(x_shape, w_shape, stride, padding, dilation, groups) in NCHW / OIHW terms, for the geometry predicates."""
    x_shape = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    wl = w_layout or ("OIHW" if layout == "NCHW" else "OHWI")
    w_shape = {"OIHW": lambda s: s, "OHWI": lambda s: (s[0], s[3], s[1], s[2]),
               "1HWO": lambda s: (s[3], 1, s[1], s[2])}[wl](w.shape)
    p = [0, 0] if isinstance(pads, str) else [int(v) for v in np.ravel(pads)]  # a mode: SAME pads, not symmetric
    padding = (p[0], p[0]) if len(p) == 1 else (p[0], p[1])  # (h, w), or (top, left) of (top, left, bottom, right)
    return x_shape, w_shape, _pair(strides), padding, _pair(dilations), groups


def _profile(profile) -> Profile:
    return as_profile(profile)


def linear(x, x_scale, x_zero_point: int, w, w_scale, w_zero_point, bias, y_scale, y_zero_point: int, *,
           profile, activation=None, out_dtype=np.int8) -> np.ndarray:
    """A quantized fully connected layer: $y = \\mathrm{clamp}(\\mathrm{requant}(x W^T + b) + Z_y)$.

    Args:
        x: int8/uint8 ``(M, K)``, or int16 (a 16x8 layer: module docstring).
        x_scale, x_zero_point: Input parameters (float32 scalar, int).
        w: int8/uint8 ``(N, K)``, one row per output channel.
        w_scale: float32 ``()`` or ``(N,)``. w_zero_point: int or int64 ``(N,)``.
        bias: ``None`` or ``(N,)`` (dtype per the profile's bias mode; int64 or int32 for a 16x8
            layer, whose spec it selects).
        y_scale, y_zero_point: Output parameters.
        profile: A :class:`~refquant.profiles.Profile` or its name (its ``linear`` spec and ``isa``).
        activation, out_dtype: As :func:`output_stage`.

    Returns:
        ``(M, N)`` codes of ``out_dtype``.
    """
    prof = _profile(profile)
    if _is_int16(x):
        spec = _spec_16x8(prof, "linear", x, w, x_zero_point, w_zero_point, bias)
        _check_limits(spec, x_scale, w_scale, y_scale)
        acc = gemm_int64(x, np.ascontiguousarray(w.T))  # (M, N) int64, exact
        return _output_stage_16x8(acc, spec, bias, x_scale, w_scale, y_scale, y_zero_point, activation, -1, out_dtype)
    spec = prof.layer("linear")
    _check_limits(spec, x_scale, w_scale, y_scale)  # before any kernel runs
    acc = gemm(x, np.ascontiguousarray(w.T), x.dtype.type(x_zero_point), _w_zero_point(w_zero_point, w.dtype),
               acc_model=spec.accumulation_for(prof.isa, x.dtype, w.dtype))  # (M, N) int32
    return output_stage(acc, spec, x_scale, w_scale, y_scale, y_zero_point, bias=bias, activation=activation,
                        axis=-1, out_dtype=out_dtype)


def _is_int16(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype).newbyteorder("=") == np.int16  # either byte order


def _bias_kind(bias) -> str:
    """The key of a 16x8 layer's bias tensor in :meth:`~refquant.profiles.Profile.layer_16x8`."""
    if bias is None:
        return "none"
    dtype = np.asarray(bias).dtype.newbyteorder("=")
    if dtype not in (np.int64, np.int32):
        raise QuantizationTypeError(f"bias of a 16x8 layer (int16 activations) must be int64 or int32, got dtype "
                                    f"{dtype}")
    return dtype.name


def _spec_16x8(prof, family, x, w, x_zero_point, w_zero_point, bias) -> LayerSpec:
    """The profile's 16x8 spec for this layer; refuses what the 16x8 kernels do not take."""
    spec = prof.layer_16x8(family, _bias_kind(bias))
    if w.dtype != np.int8:
        raise UnsupportedError(f"a 16x8 layer (int16 activations) takes int8 weights, got w of dtype {w.dtype}")
    if int(x_zero_point) != 0:
        raise UnsupportedError(f"a 16x8 layer takes int16 activations with zero point 0, got x_zero_point "
                               f"{int(x_zero_point)}")
    if np.any(np.asarray(w_zero_point) != 0):
        raise UnsupportedError("a 16x8 layer takes weights with zero point 0")
    if spec.accumulation not in ("int64", "wrap_int32"):
        raise UnsupportedError(f"a 16x8 layer accumulates in int64 or wrapping int32, the spec says "
                               f"{spec.accumulation!r}")
    return spec


def _output_stage_16x8(acc, spec: LayerSpec, bias, x_scale, w_scale, y_scale, y_zero_point, activation, axis,
                       out_dtype):
    """Exact int64 sums -> the spec's accumulator (int64, or the low 32 bits), plus the bias in that width
    (``acc += bias[c]`` in C, wrapping), then :func:`output_stage`."""
    if np.dtype(out_dtype) != np.int16:
        raise UnsupportedError(f"a 16x8 layer (int16 activations) has int16 outputs, got out_dtype "
                               f"{np.dtype(out_dtype).name}")
    bits = 64 if spec.accumulation == "int64" else 32
    if bits == 32:
        acc = wrap_int32(acc)  # the int32 accumulator of TFLite's int32-bias 16x8 kernels (measured: it wraps)
    if bias is not None:
        acc = add_bias_wrapping(acc, bias, bits=bits, axis=axis)
    return output_stage(acc, spec, x_scale, w_scale, y_scale, y_zero_point, activation=activation, axis=axis,
                        out_dtype=out_dtype)


def _w_zero_point(w_zero_point, dtype):
    z = np.asarray(w_zero_point, np.int64)
    return (z.reshape(-1) if z.size > 1 else z.reshape(())).astype(dtype)


def conv_family(profile, x_shape, w_shape, stride, padding, dilation, groups: int, x_zero_point: int,
                w_zero_point) -> str:
    """The layer family a convolution takes under ``profile``: the first of its ``conv_families``
    rules whose geometry matches (NCHW / OIHW shapes, ``(h, w)`` pairs), else ``"conv"`` for one
    group and ``"grouped_conv"`` for more."""
    prof = as_profile(profile)
    for geometry, family in prof.conv_families:
        if conv_geometry.matches(geometry, x_shape, w_shape, stride, padding, dilation, groups, x_zero_point,
                                 w_zero_point):
            return family
    return "conv" if groups == 1 else "grouped_conv"


def conv2d(x, x_scale, x_zero_point: int, w, w_scale, w_zero_point, bias, y_scale, y_zero_point: int, *,
           profile, strides=1, dilations=1, pads=0, groups=None, layout="NCHW", w_layout=None, k_order=None,
           family=None, activation=None, out_dtype=np.int8) -> np.ndarray:
    """A quantized 2-D convolution (groups and depthwise included) under a profile.

    The accumulator is eq. (1) of :mod:`refquant.kernels.conv` (out-of-image taps count as
    $Z_x$, i.e. contribute nothing), then :func:`output_stage` along the channel axis.

    Args:
        x: int8/uint8 ``(N, C, H, W)`` (``layout="NCHW"``) or ``(N, H, W, C)`` (``"NHWC"``); int16
            for a 16x8 layer (module docstring).
        w: int8/uint8 weights in ``w_layout`` (``"OIHW"``, ``"OHWI"`` or ``"1HWO"``).
        strides, dilations, pads, groups, layout, w_layout, k_order: As
            :func:`refquant.kernels.conv.conv2d` (``k_order`` orders the pairs of the
            pair-saturation model; ``None``: the layer spec's ``k_order``).
        family: The profile's layer spec to use (``"conv"``, ``"grouped_conv"``,
            ``"depthwise"``, ``"integer_conv"``); ``None``: as the profile's ``conv_families``
            rules say (:func:`conv_family`). A face passes it when its op type decides (TFLite's
            DEPTHWISE_CONV_2D, ONNX's ConvInteger).
        Others: As :func:`linear`.

    Returns:
        Codes ``(N, O, OH, OW)`` or ``(N, OH, OW, O)`` (the input's layout) of ``out_dtype``.
    """
    prof = _profile(profile)
    if _is_int16(x):
        return _conv2d_16x8(prof, x, x_scale, x_zero_point, w, w_scale, w_zero_point, bias, y_scale, y_zero_point,
                            strides, dilations, pads, groups, layout, w_layout, family, activation, out_dtype)
    n_groups = groups or (x.shape[1] if layout == "NCHW" else x.shape[3]) // (
        w.shape[1] if (w_layout or ("OIHW" if layout == "NCHW" else "OHWI")) == "OIHW" else w.shape[3])
    if w_layout == "1HWO":
        n_groups = x.shape[1] if layout == "NCHW" else x.shape[3]
    geometry = _nchw_geometry(x, w, strides, dilations, pads, n_groups, layout, w_layout)
    if family is None:
        family = conv_family(prof, *geometry, int(x_zero_point), w_zero_point)
    spec = prof.layer(family)
    zero_acc = False
    for rule in prof.conv_dispatch:  # a backend that sends some convolutions to another kernel library
        if rule.applies(prof.isa, n_groups, w_zero_point):
            for name in rule.refused:
                if conv_geometry.matches(name, *geometry, int(x_zero_point)):
                    raise UnsupportedError(
                        f"on this CPU the backend runs this convolution in a kernel whose results are not "
                        f"reproducible for its geometry ({name.replace('_', ' ')}: they change from run to run, "
                        f"measured); refquant cannot be bit-exact with it")
            zero_acc = any(conv_geometry.matches(name, *geometry, int(x_zero_point)) for name in rule.zero_accumulator)
            spec = rule.spec
            break
    _check_limits(spec, x_scale, w_scale, y_scale)  # before any kernel runs
    acc = conv_accumulate(x, w, x.dtype.type(x_zero_point), _w_zero_point(w_zero_point, w.dtype), strides=strides,
                          dilations=dilations, pads=pads, groups=groups, layout=layout, w_layout=w_layout,
                          acc_model=spec.accumulation_for(prof.isa, x.dtype, w.dtype),
                          k_order=spec.k_order if k_order is None else k_order)
    if zero_acc:  # measured: the backend's kernel returns the bias alone here
        acc = np.zeros_like(acc)
    axis = 1 if layout == "NCHW" else -1
    return output_stage(acc, spec, x_scale, w_scale, y_scale, y_zero_point, bias=bias, activation=activation,
                        axis=axis, out_dtype=out_dtype)


def _conv2d_16x8(prof, x, x_scale, x_zero_point, w, w_scale, w_zero_point, bias, y_scale, y_zero_point, strides,
                 dilations, pads, groups, layout, w_layout, family, activation, out_dtype):
    """:func:`conv2d` with int16 activations: the family is ``family``, else depthwise for 1HWO
    weights or one group per input channel (what a converter writes as DEPTHWISE_CONV_2D), else
    ``"conv"`` (one group) or ``"grouped_conv"``."""
    if family is None:
        c = x.shape[1] if layout == "NCHW" else x.shape[3]
        cg = w.shape[1] if (w_layout or ("OIHW" if layout == "NCHW" else "OHWI")) == "OIHW" else w.shape[3]
        n_groups = groups or c // cg
        family = ("depthwise" if w_layout == "1HWO" or (n_groups == c and c > 1) else
                  "conv" if n_groups == 1 else "grouped_conv")
    spec = _spec_16x8(prof, family, x, w, x_zero_point, w_zero_point, bias)
    _check_limits(spec, x_scale, w_scale, y_scale)
    acc = conv2d_int64(x, w, strides=strides, dilations=dilations, pads=pads, groups=groups, layout=layout,
                       w_layout=w_layout)  # int64, exact
    return _output_stage_16x8(acc, spec, bias, x_scale, w_scale, y_scale, y_zero_point, activation,
                              1 if layout == "NCHW" else -1, out_dtype)


def requantize_tensor(q, x_scale, x_zero_point: int, y_scale, y_zero_point: int, *, profile, out_dtype=np.int8):
    """Codes of one tensor rescaled to another's parameters: $y = \\mathrm{clamp}(\\mathrm{requant}(q - Z_x,
    S_x / S_y) + Z_y)$ (TFLite's QUANTIZE from an integer tensor, int8/uint8/int16 in and out): the
    integer model's ``requantize`` node. The arithmetic is :func:`refquant.ops.pointwise.requantize`
    under the profile's ``pointwise.requantize`` kernels.

    Args:
        q: int8 / uint8 / int16 codes, any shape.
        x_scale, y_scale: float32 scalars. x_zero_point, y_zero_point: ints.
        profile: A profile or its name. out_dtype: The output dtype.

    Returns:
        Codes of ``q``'s shape and ``out_dtype``.

    Raises:
        UnsupportedError: The profile's backend has no such op, or not for this pair of dtypes.
    """
    return pointwise.requantize(np.asarray(q), x_scale, x_zero_point, y_scale, y_zero_point, profile=profile,
                                out_dtype=out_dtype)
