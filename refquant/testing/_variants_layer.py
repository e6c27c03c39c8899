"""A quantized linear or convolution layer as a call record of the explainer.

:class:`LayerCall` runs one layer (:func:`refquant.ops.layers.linear` /
:func:`refquant.ops.layers.conv2d`) under any candidate of ``_variants``: a
profile (its bias moved to the profile's convention by :func:`bias_for`), or the profile's
accumulation and bias followed by a hand-written requantization
$y = \\mathrm{clamp}(\\mathrm{round}(\\mathrm{fl}(\\mathrm{acc} \\cdot M)) + Z_y)$ with a chosen rounding rule.
See ``_variants_calls`` for the other records.

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.bias import add_bias, float_bias_accumulator, quantize_bias_runtime
from ..kernels.conv import conv2d as conv_accumulate
from ..kernels.gemm import gemm
from ..kernels.multiplier import activation_bounds, real_multiplier
from ..ops import layers
from ..rounding import round_by_mode
from . import _variants_words as W

__all__ = ["LayerCall", "bias_for"]

_F32 = np.float32
_INT32 = np.iinfo(np.int32)


def bias_for(mode: str, bias, x_scale, w_scale):
    """The layer's bias in the form a bias mode takes (:data:`refquant.modes.BIAS_MODES`).

    An int32 bias (scale $S_x S_w[c]$: TFLite, ONNX) becomes the float32 $b \\cdot \\mathrm{fl}(S_x S_w[c])$
    for a float mode; a float bias (PyTorch) becomes $\\mathrm{clamp}(\\mathrm{RNE}(b / \\mathrm{fl}(S_x S_w[c])))$
    in int32 for ``"int32"``: each is what a converter writes when it moves a layer between the two
    conventions. ``None`` stays ``None``.
    """
    if bias is None:
        return None
    b = np.asarray(bias)
    atws = (_F32(x_scale) * np.asarray(w_scale, _F32)).astype(_F32)  # fl(S_x S_w[c])
    if mode == "int32":
        if b.dtype.kind in "iu":
            return b.astype(np.int32)
        return np.clip(np.rint(b.astype(np.float64) / atws), _INT32.min, _INT32.max).astype(np.int32)
    if b.dtype.kind in "iu":
        return (b.astype(np.float64) * atws).astype(_F32)
    return b.astype(_F32)


@dataclass
class LayerCall:
    """A quantized linear (``conv is None``) or 2-D convolution layer, as :func:`refquant.ops.layers.linear`
    / :func:`refquant.ops.layers.conv2d` take it: int8/uint8 codes, float32 scales, integer zero
    points, a bias in its face's convention (int32 or float32) and the output dtype.

    ``conv`` holds the keyword arguments of :func:`refquant.ops.layers.conv2d` (``strides``,
    ``dilations``, ``pads``, ``groups``, ``layout``, ``w_layout``, ``family``: ``None`` lets each
    profile choose by geometry); ``restore`` maps the ops layer's output to the face's (a reshape).
    """

    x: np.ndarray
    x_scale: np.float32
    x_zero_point: int
    w: np.ndarray
    w_scale: np.ndarray
    w_zero_point: object
    bias: np.ndarray | None
    y_scale: np.float32
    y_zero_point: int
    activation: str | None = None
    out_dtype: object = np.int8
    conv: dict | None = None
    restore: object = None
    kind = "layer"

    # ------------------------------------------------------------------ which spec a profile applies
    def family(self, profile) -> str:
        """The profile's layer family for this call (``"linear"``, ``"conv"``, ``"depthwise"``, ...)."""
        if self.conv is None:
            return "linear"
        if self.conv.get("family"):
            return self.conv["family"]
        c = self.conv
        x_shape, w_shape = self.x.shape, self.w.shape  # NCHW / OIHW: the faces that leave the family open
        pads = c["pads"]
        padding = (0, 0) if isinstance(pads, str) else tuple(int(p) for p in np.ravel(pads)[:2])
        groups = c.get("groups") or x_shape[1] // w_shape[1]
        return layers.conv_family(profile, x_shape, w_shape, _pair(c["strides"]), padding, _pair(c["dilations"]),
                                  groups, self.x_zero_point, self.w_zero_point)

    def spec(self, profile):
        """The :class:`~refquant.specs.LayerSpec` the profile runs this layer with."""
        spec = profile.layer(self.family(profile))
        if self.conv is not None:
            groups = self.conv.get("groups") or (self.x.shape[1] // self.w.shape[1] if self.conv["layout"] == "NCHW"
                                                 else self.x.shape[3])
            for rule in profile.conv_dispatch:
                if rule.applies(profile.isa, groups, self.w_zero_point):
                    return rule.spec
        return spec

    # ------------------------------------------------------------------ running
    def run(self, variant) -> np.ndarray:
        if variant.rounding is not None:
            y = self._run_rounding(variant)
        else:
            p = variant.profile
            bias = bias_for(self.spec(p).bias, self.bias, self.x_scale, self.w_scale)
            args = (self.x, self.x_scale, self.x_zero_point, self.w, self.w_scale, self.w_zero_point, bias,
                    self.y_scale, self.y_zero_point)
            if self.conv is None:
                y = layers.linear(*args, profile=p, activation=self.activation, out_dtype=self.out_dtype)
            else:
                y = layers.conv2d(*args, profile=p, activation=self.activation, out_dtype=self.out_dtype, **self.conv)
        return y if self.restore is None else self.restore(y)

    def _accumulate(self, spec, isa):
        """int32 accumulators (zero points applied) under the spec's accumulation model; the channel axis."""
        acc_model = spec.accumulation_for(isa, self.x.dtype, self.w.dtype)
        z = np.asarray(self.w_zero_point, np.int64)
        wz = (z.reshape(-1) if z.size > 1 else z.reshape(())).astype(self.w.dtype)
        xz = self.x.dtype.type(self.x_zero_point)
        if self.conv is None:
            return gemm(self.x, np.ascontiguousarray(self.w.T), xz, wz, acc_model=acc_model), -1
        c = {k: v for k, v in self.conv.items() if k != "family"}
        acc = conv_accumulate(self.x, self.w, xz, wz, acc_model=acc_model, k_order=spec.k_order, **c)
        return acc, (1 if c["layout"] == "NCHW" else -1)

    def _run_rounding(self, variant) -> np.ndarray:
        """The hand-written requantization: $y = \\mathrm{clamp}(\\mathrm{round}(\\mathrm{fl}(\\mathrm{acc} \\cdot M)) + Z_y)$,
        the product in ``variant.precision`` and ``variant.rounding``'s rule, after the profile's
        accumulation and bias (the expectation's steps, with only the rounding replaced)."""
        prof = variant.profile
        spec = self.spec(prof)
        acc, axis = self._accumulate(spec, prof.isa)
        dt = np.dtype(variant.precision)
        m = real_multiplier(self.x_scale, self.w_scale, self.y_scale,
                            derivation="f32_ab_div_c" if dt == np.float32 else "f64_ab_div_c").astype(dt)
        if self.bias is not None and spec.bias == "int32":
            acc = add_bias(acc, bias_for("int32", self.bias, self.x_scale, self.w_scale), axis=axis)
        elif self.bias is not None and spec.bias == "runtime_quantized":  # qnnpack
            b = quantize_bias_runtime(bias_for("float", self.bias, self.x_scale, self.w_scale), self.x_scale,
                                      self.w_scale)
            acc = add_bias(acc, b, axis=axis)
        elif self.bias is not None:  # fbgemm's float bias, added in float32
            atws = (_F32(self.x_scale) * np.asarray(self.w_scale, _F32)).astype(_F32)
            acc = float_bias_accumulator(acc, bias_for("float", self.bias, self.x_scale, self.w_scale), atws,
                                         axis=axis, reciprocal=spec.bias_reciprocal_per_tensor and atws.ndim == 0)
        if m.ndim:
            m = m.reshape([-1 if i == axis % acc.ndim else 1 for i in range(acc.ndim)])
        info = np.iinfo(self.out_dtype)
        lo, hi = activation_bounds(self.activation, self.y_scale, self.y_zero_point, int(info.min), int(info.max),
                                   rounding=spec.activation_bounds)
        with np.errstate(over="ignore", invalid="ignore"):
            v = (acc.astype(dt) * m).astype(dt)
            r = round_by_mode(v, variant.rounding).astype(np.float64) + self.y_zero_point
        return np.clip(np.nan_to_num(r, nan=lo), lo, hi).astype(self.out_dtype)

    # ------------------------------------------------------------------ describing
    def facts(self, variant) -> dict:
        p = variant.profile
        spec = self.spec(p)
        facts = W.layer_facts(spec, spec.accumulation_for(p.isa, self.x.dtype, self.w.dtype),
                              np.ndim(self.w_scale) > 0, self.bias is not None, self.activation)
        return facts if variant.rounding is None else W.rounding_facts(facts, variant.rounding, variant.precision)

    def lsb(self, shape):
        return 1


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))
