"""The face ops the explainer knows: each one's function, the profile it runs, and its arguments
translated to a call record of ``_variants_calls``.

An op is named ``"<face>.<function>"`` after its module in :mod:`refquant.backends`
(``"tflite.fully_connected"``, ``"onnxruntime.qlinear_matmul"``, ``"pytorch.quantize_per_tensor"``).
Each entry reuses its face's own argument translation where the face has one (the ONNX faces'
parameter and convolution-geometry helpers, TFLite's per-channel parameters), so the call record
and the face cannot read the arguments differently; a test runs every record under the face's own
profile and asserts the face's output bit for bit.

| face | ops |
|---|---|
| ``tflite`` | ``quantize``, ``dequantize``, ``fully_connected``, ``conv2d``, ``depthwise_conv2d``, ``add`` |
| ``onnx`` | ``quantize_linear``, ``dequantize_linear``, ``qlinear_matmul``, ``qlinear_conv`` (the ONNX specification has no quantized add) |
| ``onnxruntime`` | the four ONNX ops and ``qlinear_add`` |
| ``pytorch`` | ``quantize_per_tensor``, ``quantize_per_channel``, ``dequantize``, ``fake_quantize_per_tensor_affine``, ``fake_quantize_per_channel_affine``, ``linear``, ``conv2d``, ``add`` |

Not covered (refused with :class:`~refquant.errors.UnsupportedError`): TFLite's 16x8 layers (int16
activations), QLinearMatMul operands of rank other than 2 and per-row ``a`` parameters.

Added in 0.2.0.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from .. import _validate as V
from ..backends import onnx, onnxruntime, pytorch, tflite
from ..backends._pytorch_ops import ENGINE_PROFILES
from ..errors import QuantizationTypeError, QuantizationValueError
from ..profiles import get_profile
from . import _variants_adapters as A

__all__ = ["FACE_OPS", "FaceOp", "bind", "face_op"]


@dataclass(frozen=True)
class FaceOp:
    """One face op: ``function`` (the face), ``profile(args)`` (the profile it runs for these
    arguments) and ``call(args, y)`` (the call record, given the face's own output ``y``)."""

    name: str
    function: object
    profile: object
    call: object


def bind(op: FaceOp, inputs) -> dict:
    """``inputs`` (the face call's keyword arguments) with the face's defaults filled in.

    Raises:
        QuantizationTypeError: ``inputs`` is not a dict of keyword arguments the face takes.
    """
    if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
        raise QuantizationTypeError(f"inputs must be a dict of {op.name}'s keyword arguments, got {V.describe(inputs)}")
    sig = inspect.signature(op.function)
    try:
        bound = sig.bind(**inputs)
    except TypeError as err:
        raise QuantizationTypeError(f"inputs must hold the keyword arguments of {op.name}{sig}: {err}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


# --------------------------------------------------------------------------- the registry

# the profiles of ops without a kernel=, isa= or engine= choice
_ORT = lambda a: get_profile("onnxruntime")  # noqa: E731
_ONNX = lambda a: get_profile("onnx")  # noqa: E731
_TORCH = lambda a: get_profile("pytorch_fbgemm")  # noqa: E731

FACE_OPS: dict[str, FaceOp] = {op.name: op for op in (
    FaceOp("tflite.quantize", tflite.quantize, A.tfl_profile, A.tfl_quantize),
    FaceOp("tflite.dequantize", tflite.dequantize, A.tfl_profile, A.tfl_dequantize),
    FaceOp("tflite.fully_connected", tflite.fully_connected, A.tfl_profile, A.tfl_fully_connected),
    FaceOp("tflite.conv2d", tflite.conv2d, A.tfl_profile, A.tfl_conv),
    FaceOp("tflite.depthwise_conv2d", tflite.depthwise_conv2d, A.tfl_profile,
           lambda a, y: A.tfl_conv(a, y, depthwise=True)),
    FaceOp("tflite.add", tflite.add, A.tfl_profile, lambda a, y: A.add_call(a, ("a", "b", "y"), a["activation"])),
    FaceOp("onnx.quantize_linear", onnx.quantize_linear, _ONNX, lambda a, y: A.onnx_quantize(a, y, ort=False)),
    FaceOp("onnx.dequantize_linear", onnx.dequantize_linear, _ONNX, A.onnx_dequantize),
    FaceOp("onnx.qlinear_matmul", onnx.qlinear_matmul, _ONNX, A.qlinear_matmul),
    FaceOp("onnx.qlinear_conv", onnx.qlinear_conv, _ONNX, lambda a, y: A.qlinear_conv(a, y, "spec")),
    FaceOp("onnxruntime.quantize_linear", onnxruntime.quantize_linear, _ORT,
           lambda a, y: A.onnx_quantize(a, y, ort=True)),
    FaceOp("onnxruntime.dequantize_linear", onnxruntime.dequantize_linear, _ORT, A.onnx_dequantize),
    FaceOp("onnxruntime.qlinear_matmul", onnxruntime.qlinear_matmul, A.ort_layer_profile, A.qlinear_matmul),
    FaceOp("onnxruntime.qlinear_conv", onnxruntime.qlinear_conv, A.ort_layer_profile,
           lambda a, y: A.qlinear_conv(a, y, "onnxruntime")),
    FaceOp("onnxruntime.qlinear_add", onnxruntime.qlinear_add, _ORT, lambda a, y: A.add_call(a, ("a", "b", "c"), None)),
    FaceOp("pytorch.quantize_per_tensor", pytorch.quantize_per_tensor,
           lambda a: get_profile(pytorch.PROFILE_OF_ZERO_POINT_ORDER[a["zero_point_order"]]),
           lambda a, y: A.torch_quantize(a, y, per_channel=False)),
    FaceOp("pytorch.quantize_per_channel", pytorch.quantize_per_channel,
           lambda a: get_profile(pytorch.PROFILE_OF_ZERO_POINT_ORDER[a["zero_point_order"]]),
           lambda a, y: A.torch_quantize(a, y, per_channel=True)),
    FaceOp("pytorch.dequantize", pytorch.dequantize, _TORCH, A.torch_dequantize),
    FaceOp("pytorch.fake_quantize_per_tensor_affine", pytorch.fake_quantize_per_tensor_affine, _TORCH,
           lambda a, y: A.torch_fake_quantize(a, y, per_channel=False)),
    FaceOp("pytorch.fake_quantize_per_channel_affine", pytorch.fake_quantize_per_channel_affine, _TORCH,
           lambda a, y: A.torch_fake_quantize(a, y, per_channel=True)),
    FaceOp("pytorch.linear", pytorch.linear, A.torch_layer_profile, A.torch_layer),
    FaceOp("pytorch.conv2d", pytorch.conv2d, A.torch_layer_profile, lambda a, y: A.torch_layer(a, y, conv=True)),
    FaceOp("pytorch.add", pytorch.add, lambda a: get_profile(ENGINE_PROFILES[a["engine"]]),
           lambda a, y: A.add_call(a, ("a", "b", "y"), "RELU" if a["relu"] else None)),
)}


def face_op(op) -> FaceOp:
    """The registry entry of ``op`` (a name of :data:`FACE_OPS`).

    Raises:
        QuantizationValueError: An unknown name.
    """
    if not isinstance(op, str) or op not in FACE_OPS:
        raise QuantizationValueError(f"op must be one of {sorted(FACE_OPS)}, got {V.describe(op)}")
    return FACE_OPS[op]
