"""How each backend's own tool chooses quantization parameters: the recipes.

A :class:`~refquant.profiles.Profile` says how a runtime *computes*; a :class:`Recipe` says how
that backend's quantization *tool* picks the numbers the runtime computes with, from a float
model and calibration ranges. They are separate records because they are separate programs,
versioned separately (ONNX Runtime's ``quantize_static`` is Python in the wheel; its kernels are
C++), and one runtime runs models made by several tools.

| recipe | activations | weights | bias | fused into the layer's clamp |
|---|---|---|---|---|
| ``tflite`` (TFLite converter, representative dataset) | int8 affine, ``GetAsymmetricQuantizationParams`` | int8 symmetric $[-127, 127]$, $S = \\max|w|/127$, $q = \\mathrm{RHAZ}(w \\cdot 127/\\max|w|)$ | int32, $\\mathrm{RHAZ}(b / (S_x S_w))$ | ReLU, ReLU6 |
| ``onnxruntime`` (``quantize_static``, U8S8) | uint8 affine, ``compute_scale_zp`` | int8 symmetric $[-127, 127]$ (7-bit $[-64, 64]$ on an AVX2 CPU), $q = \\mathrm{RNE}(w / S)$ | int32, $\\mathrm{RNE}(b / \\mathrm{fl}(S_x S_w))$ | ReLU, ReLU6 (the Q range covers them) |
| ``pytorch`` (default qconfig of the engine) | quint8 affine, ``reduce_range`` on fbgemm/x86 | qint8 symmetric $[-128, 127]$, $S = \\max|w|/127.5$, ``quantize_per_channel`` | float32 | ReLU (``ConvReLU2d``, ``add_relu``); ReLU6 is a clamp with the input's parameters |

Per-tensor weights (``per_channel=False``) use each tool's per-tensor symmetric rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..backends import pytorch as torch_face
from ..backends import tflite as tflite_face
from ..backends._onnx_params import tool_qparams
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..profiles import Profile, as_profile
from ..rounding import round_half_to_even

__all__ = ["Recipe", "RECIPES", "recipe_for", "activation_params", "quantize_weight", "quantize_bias"]

_F32 = np.float32


@dataclass(frozen=True)
class Recipe:
    """One tool's parameter choices (see the module table).

    Attributes:
        name: ``"tflite"``, ``"onnxruntime"`` or ``"pytorch"``.
        activation_dtype: ``"int8"`` or ``"uint8"``.
        activation_reduce_range: Activations in $[0, 127]$ (PyTorch fbgemm and x86 qconfigs).
        weight_reduce_range_isas: ISA classes on which weights use the tool's 7-bit range.
        fuse: Activations fused into the preceding Linear, Conv2d or add.
        clamp_in_kernel: The runtime's layer clamps to the fused activation's bounds (TFLite's
            fused activation, PyTorch's ``ConvReLU2d``). ``False``: the activation is removed
            because the output's range already lies inside it (ONNX Runtime drops a ReLU whose
            output zero point is the format's minimum and a Clip whose range covers the
            output's), so the layer has no clamp beyond saturation.
        dynamic: ``quantize_dynamic`` is modelled for this tool's runtime.
        add_in_place_ranges: The tool's calibrator records an ADD's first in-place operand with
            the ADD's output range too (:func:`refquant.ptq.tool_ranges.tool_ranges`; the TFLite
            converter, measured).
    """

    name: str
    activation_dtype: str
    activation_reduce_range: bool = False
    weight_reduce_range_isas: tuple = ()
    fuse: tuple = ("RELU", "RELU6")
    clamp_in_kernel: bool = True
    dynamic: bool = False
    add_in_place_ranges: bool = False

    def __post_init__(self):
        V.as_choice(self.name, "name", ("tflite", "onnxruntime", "pytorch"))
        V.as_choice(self.activation_dtype, "activation_dtype", ("int8", "uint8"))
        for flag in ("activation_reduce_range", "clamp_in_kernel", "dynamic", "add_in_place_ranges"):
            V.as_flag(getattr(self, flag), flag, ints=False)
        V.as_tuple(self.weight_reduce_range_isas, "weight_reduce_range_isas", "ISA class names")
        for act in V.as_tuple(self.fuse, "fuse", "activation names"):
            V.as_choice(act, "fuse", ("RELU", "RELU6"))


_TFLITE = Recipe("tflite", "int8", dynamic=True, add_in_place_ranges=True)
_ORT = Recipe("onnxruntime", "uint8", weight_reduce_range_isas=("avx2",), clamp_in_kernel=False, dynamic=True)
_TORCH = Recipe("pytorch", "uint8", activation_reduce_range=True, fuse=("RELU",), dynamic=True)

#: Profile name → the recipe of the tool that makes models for it.
RECIPES = {
    "tflite_reference": _TFLITE, "tflite_xnnpack": _TFLITE, "tflite_optimized": _TFLITE, "gemmlowp": _TFLITE,
    "onnxruntime": _ORT, "onnx": _ORT, "onnx_reference": _ORT,
    "pytorch_fbgemm": _TORCH, "pytorch_x86": _TORCH, "pytorch_fbgemm_zp_after": _TORCH,
    "pytorch_qnnpack": Recipe("pytorch", "uint8", activation_reduce_range=False, fuse=("RELU",), dynamic=True),
}


def recipe_for(profile) -> Recipe:
    """The recipe for ``profile`` (a :class:`~refquant.profiles.Profile` or its name).

    Raises:
        QuantizationValueError: Unknown profile name. UnsupportedError: A profile of no tool here.
    """
    name = as_profile(profile).name
    if name not in RECIPES:
        raise UnsupportedError(f"profile {name!r} has no recipe: refquant reproduces the tools of {sorted(RECIPES)}")
    return RECIPES[name]


def _recipe(recipe) -> Recipe:
    if not isinstance(recipe, Recipe):
        raise QuantizationTypeError(f"recipe must be a Recipe (refquant.ptq.recipe_for(profile)), "
                                    f"got {V.describe(recipe)}")
    return recipe


def activation_params(recipe: Recipe, lo, hi, *, dtype: str | None = None) -> tuple[float, int]:
    """``(scale, zero_point)`` of an activation tensor observed in ``[lo, hi]``, as the tool chooses them.

    Args:
        recipe: The tool's :class:`Recipe`.
        lo, hi: The calibrated range (finite, ``lo <= hi``).
        dtype: The tensor's dtype: ``None`` (the recipe's ``activation_dtype``) or ``"int16"``
            (the TFLite converter's 16x8 activations: symmetric, $S = \\max(|lo|, |hi|) / 32767$, $Z = 0$).

    Raises:
        QuantizationTypeError: ``recipe`` is not a Recipe, or ``lo``/``hi`` not real scalars.
        QuantizationValueError: ``lo``/``hi`` not finite in float32, or ``lo > hi``.
        UnsupportedError: ``dtype="int16"`` for a tool without int16 activations.
    """
    recipe = _recipe(recipe)
    if not V.as_finite_f32(lo, "lo") <= V.as_finite_f32(hi, "hi"):  # checked only: each tool rounds lo, hi its own way
        raise QuantizationValueError(f"lo must be <= hi, got lo={float(lo)!r} > hi={float(hi)!r}")
    dtype = recipe.activation_dtype if dtype is None else V.as_choice(dtype, "dtype", (recipe.activation_dtype,
                                                                                        "int16"))
    if dtype == "int16" and recipe.name != "tflite":
        raise UnsupportedError(f"the {recipe.name} recipe has no int16 activations: only the TFLite converter's "
                               f"16x8 mode is modelled")
    if recipe.name == "tflite":
        qp = tflite_face.activation_qparams(lo, hi, dtype)
        return float(qp.scale), int(qp.zero_point)
    if recipe.name == "onnxruntime":
        qp = tool_qparams(lo, hi, recipe.activation_dtype)
        return float(qp.scale), int(qp.zero_point)
    s, z = torch_face.choose_qparams(_F32(lo), _F32(hi), dtype="quint8" if recipe.activation_dtype == "uint8"
                                     else "qint8", reduce_range=recipe.activation_reduce_range)
    return float(np.ravel(s)[0]), int(np.ravel(z)[0])


def _weight_range(w: np.ndarray, per_channel: bool):
    if not per_channel:
        return _F32(min(float(w.min()), 0.0)), _F32(max(float(w.max()), 0.0))
    flat = w.reshape(w.shape[0], -1)
    return flat.min(axis=1).astype(_F32), flat.max(axis=1).astype(_F32)


def quantize_weight(recipe: Recipe, w, *, per_channel: bool, profile: Profile):
    """int8 weights of a Linear ``(O, K)`` or Conv2d ``(O, C/g, kH, kW)`` layer.

    Returns:
        ``(q, scale, zero_point)``: int8 codes of ``w``'s shape, float32 scales ``(O,)`` (or ``()``),
        int8 zero points of the scales' shape.

    Raises:
        QuantizationTypeError: ``recipe``, ``w``, ``per_channel`` or ``profile`` of the wrong type.
        ShapeError: ``w`` of rank < 2 or empty. QuantizationValueError: ``w`` not finite in float32.
    """
    recipe, profile = _recipe(recipe), as_profile(profile)
    per_channel = V.as_flag(per_channel, "per_channel")
    w = V.asarray(w, "w", kinds="iuf", what="a real array")
    if w.ndim < 2 or w.size == 0:
        raise ShapeError(f"w must be a non-empty (O, K) or (O, C/g, kH, kW) weight, got shape {w.shape}")
    with np.errstate(over="ignore"):
        w = w.astype(_F32)
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError("w must be finite (in float32) to be quantized, got NaN or Inf")
    bshape = (-1,) + (1,) * (w.ndim - 1)
    if recipe.name == "tflite":
        # TFLiteConverter (MLIR, TF 2.21) widens a channel to |w| >= 5e-7: an all-zero (pruned) channel
        # gets scale 5e-7 / 127, never 0
        q, s = tflite_face.symmetric_weight_quantize(w, axis=0 if per_channel else None, min_half=5e-7)
        return q, s.astype(_F32), np.zeros(s.shape, np.int8)
    lo, hi = _weight_range(w, per_channel)
    if recipe.name == "onnxruntime":
        rr = profile.isa in recipe.weight_reduce_range_isas
        qp = tool_qparams(lo, hi, "int8", symmetric=True, reduce_range=rr)
        s = np.asarray(qp.scale, _F32)
        sb = s.reshape(bshape) if s.ndim else s
        qmin, qmax = (-64, 64) if rr else (-127, 127)
        q = np.clip(round_half_to_even((w / sb).astype(_F32)), qmin, qmax).astype(np.int8)  # quantize_nparray
        return q, s, np.zeros(s.shape, np.int8)
    scheme = "per_channel_symmetric" if per_channel else "per_tensor_symmetric"
    s, z = torch_face.choose_qparams(lo, hi, dtype="qint8", qscheme=scheme)
    s = np.asarray(s, _F32).reshape(-1) if per_channel else _F32(np.ravel(s)[0])
    z = np.zeros(np.shape(s), np.int64)
    if per_channel:
        q = torch_face.quantize_per_channel(w, s, z, 0, "qint8")
    else:
        q = torch_face.quantize_per_tensor(w, float(s), 0, "qint8")
    return q, np.asarray(s, _F32), z.astype(np.int8)


def quantize_bias(recipe: Recipe, b, x_scale: float, w_scale, *, dtype: str = "int32"):
    """The bias as the profile's layer takes it: integer in the tool's rule, or float32.

    Args:
        recipe: The tool's :class:`Recipe`.
        b: float ``(O,)`` bias, finite, or ``None`` (returned as is).
        x_scale: The layer input's scale, > 0.
        w_scale: The weight scales, ``()`` or ``(O,)``, >= 0 (0 for an all-zero weight channel).
        dtype: ``"int32"`` (int8 layers), ``"int64"`` (TFLite's 16x8 layers) or ``"float32"``
            (a kernel that adds the bias in float): what the profile's layer takes
            (:func:`refquant.ptq.lower.bias_dtype`).

    Raises:
        UnsupportedError: ``dtype="int64"`` for a tool that does not write int64 biases.
    """
    recipe = _recipe(recipe)
    dtype = V.as_choice(dtype, "dtype", ("int32", "int64", "float32"))
    if b is None:
        return None
    b = V.asarray(b, "b", kinds="iuf", what="a real array")
    if b.ndim != 1:
        raise ShapeError(f"b must have shape (O,), got {b.shape}")
    with np.errstate(over="ignore"):
        b = b.astype(_F32)
    if not np.all(np.isfinite(b)):
        raise QuantizationValueError("b must be finite (in float32), got NaN or Inf")
    x_scale = V.as_scalar_scale(x_scale, "x_scale")
    w_scale = V.as_scale(w_scale, "w_scale", allow_zero=True)
    if w_scale.shape not in ((), b.shape):
        raise ShapeError(f"w_scale must have shape () or {b.shape} (one per channel of b), got {w_scale.shape}")
    if dtype == "float32":
        return b
    if dtype == "int64":
        if recipe.name != "tflite":
            raise UnsupportedError(f"the {recipe.name} recipe has no int64 bias: only the TFLite converter's 16x8 "
                                   f"mode is modelled")
        return tflite_face.bias_quantize(b, _F32(x_scale), np.asarray(w_scale, _F32), dtype="int64")
    if recipe.name == "tflite":
        return tflite_face.bias_quantize(b, _F32(x_scale), np.asarray(w_scale, _F32))
    # ORT's quantize_bias_static_impl (1.32): S_b = fl32(S_x S_w), then b / S_b in float64, round half to even
    bias_scale = (_F32(x_scale) * np.asarray(w_scale, _F32)).astype(_F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = round_half_to_even(b.astype(np.float64) / bias_scale.astype(np.float64))
    q = np.where(bias_scale == 0, 0, q)
    return np.clip(q, -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
