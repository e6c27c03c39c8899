"""Face arguments to call records: how the explainer reads each face op's arguments.

One function per face op family, used by the registry of ``_variants_faces``:
``<face>_profile(args)`` gives the profile the face runs for its (bound) arguments, and each other
function ``(args, y) -> call record`` translates the arguments to a record of
``_variants_calls`` (``y`` is the face's own output: its dtype and shape settle
what the arguments leave open). The faces' own parameter helpers are reused (the ONNX faces'
``_qparams`` and convolution geometry, TFLite's ``_qparams``), so the record and the face cannot
read an argument differently.

Added in 0.2.0.
"""

from __future__ import annotations

import numpy as np

from ..backends import _onnx_op_args as onnx_args
from ..backends import onnx, onnxruntime, pytorch, tflite
from ..backends._pytorch_ops import ENGINE_PROFILES
from ..cpu import resolve_isa
from ..dtypes import get_format
from ..errors import UnsupportedError
from ..profiles import get_profile
from ..qparams import make_qparams
from ._variants_calls import AddCall, DequantizeCall, FakeQuantizeCall, QuantizeCall
from ._variants_layer import LayerCall

__all__: list = []  # translation functions of the registry (_variants_faces.FACE_OPS), not an API of their own

_F32 = np.float32


# --------------------------------------------------------------------------- shared translations


def _f32(v) -> np.float32:
    return _F32(np.asarray(v, _F32).reshape(()))


def _int(v) -> int:
    return 0 if v is None else int(np.asarray(v).reshape(()))


def _per_channel(v, dtype):
    """A scale or zero point that is per-tensor (one element: ``()``) or per output channel (``(O,)``)."""
    a = np.asarray(0 if v is None else v, dtype)
    return a.reshape(()) if a.size == 1 else a.reshape(-1)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _refuse_16x8(x) -> None:
    if x.dtype == np.int16:
        raise UnsupportedError("inputs['x'] is int16: the explainer covers int8/uint8 layers, not TFLite's 16x8 mode")


# --------------------------------------------------------------------------- TFLite


def tfl_profile(a):
    return get_profile(tflite.PROFILE_OF_KERNEL[a["kernel"]])


def tfl_quantize(a, y):
    x = np.asarray(a["x"]).astype(_F32)
    return QuantizeCall(x, tflite._qparams(a["scale"], a["zero_point"], get_format(a["dtype"]), a["axis"], x.shape))


def tfl_dequantize(a, y):
    q = np.asarray(a["q"])
    return DequantizeCall(q, tflite._qparams(a["scale"], a["zero_point"], get_format(q.dtype), a["axis"], q.shape))


def _tfl_layer(a, x, w, conv=None):
    _refuse_16x8(x)
    b = np.zeros(w.shape[0] if conv is None or conv["w_layout"] != "1HWO" else w.shape[3], np.int32) \
        if a["b"] is None else np.asarray(a["b"], np.int32)
    return LayerCall(x, _f32(a["x_scale"]), _int(a["x_zero_point"]), w, _per_channel(a["w_scale"], _F32), 0, b,
                     _f32(a["y_scale"]), _int(a["y_zero_point"]), a["activation"], x.dtype, conv)


def tfl_fully_connected(a, y):
    x, w = np.asarray(a["x"]), np.asarray(a["w"])
    return _tfl_layer(a, x.reshape(-1, w.shape[1]), w)


def tfl_conv(a, y, depthwise=False):
    x, w = np.asarray(a["x"]), np.asarray(a["w"])
    groups = None if depthwise else x.shape[3] // w.shape[3]
    conv = dict(strides=_pair(a["stride"]), dilations=_pair(a["dilation"]),
                pads="SAME_UPPER" if a["padding"] == "SAME" else "VALID", groups=groups, layout="NHWC",
                w_layout="1HWO" if depthwise else "OHWI",
                family="depthwise" if depthwise else "conv" if groups == 1 else "grouped_conv")
    return _tfl_layer(a, x, w, conv)


def add_call(a, names, activation):
    """An add's call record; ``names``: the face's names of the two inputs and the output (``"a"``, ``"b"``, ``"y"``)."""
    p, q, out = names
    return AddCall(np.asarray(a[p]), _f32(a[p + "_scale"]), _int(a[p + "_zero_point"]), np.asarray(a[q]),
                   _f32(a[q + "_scale"]), _int(a[q + "_zero_point"]), _f32(a[out + "_scale"]),
                   _int(a[out + "_zero_point"]), activation)


# --------------------------------------------------------------------------- ONNX and ONNX Runtime


def ort_layer_profile(a):
    return get_profile("onnxruntime").with_isa(resolve_isa(a["isa"]))


def onnx_quantize(a, y, ort: bool):
    fmt = onnx._output_format(a["y_zero_point"], a["output_dtype"])
    x = onnxruntime._ort_input(a["x"]) if ort else np.asarray(a["x"])
    scale = onnxruntime._ort_scale(a["y_scale"], x.dtype, "y_scale") if ort else onnx._as_scale(a["y_scale"], "y_scale")
    if x.dtype.kind != "f":  # ONNX opset 25: int32 x, divided in the scale's type
        x = x.astype(scale.dtype)
    qp = onnx._qparams(x.shape, scale, a["y_zero_point"], fmt, a["axis"], a["block_size"], "y_scale", "y_zero_point")
    return QuantizeCall(x, qp)


def onnx_dequantize(a, y):
    q, fmt = onnx._int_input(a["x"])
    scale = onnx._as_scale(a["x_scale"], "x_scale")
    zp = onnx._dequantize_zero_point(a["x_zero_point"], q.dtype, fmt)
    return DequantizeCall(q, onnx._qparams(q.shape, scale, zp, fmt, a["axis"], a["block_size"], "x_scale",
                                           "x_zero_point"), y.dtype)


def qlinear_matmul(a, y):
    x, b = np.asarray(a["a"]), np.asarray(a["b"])
    if x.ndim != 2 or b.ndim != 2:
        raise UnsupportedError(f"the explainer takes 2-D a (M, K) and b (K, N) for QLinearMatMul, got shapes "
                               f"{x.shape} and {b.shape}")
    if np.size(a["a_scale"]) != 1 or np.size(a["a_zero_point"]) != 1:
        raise UnsupportedError("the explainer takes a per-tensor a_scale and a_zero_point for QLinearMatMul")
    return LayerCall(x, _f32(a["a_scale"]), _int(a["a_zero_point"]), np.ascontiguousarray(b.T),
                     _per_channel(a["b_scale"], _F32), _per_channel(a["b_zero_point"], np.int64), None,
                     _f32(a["y_scale"]), _int(a["y_zero_point"]), None, y.dtype)


def qlinear_conv(a, y, same: str):
    x, w = np.asarray(a["x"]), np.asarray(a["w"])
    g = onnx_args.conv_geometry(x, w, a["auto_pad"], a["dilations"], a["group"], a["kernel_shape"], a["pads"],
                                a["strides"], same=same)
    conv = dict(strides=g.strides, dilations=g.dilations, pads=g.pads, groups=g.group, layout="NCHW", w_layout="OIHW",
                family=None)
    bias = None if a["B"] is None else np.asarray(a["B"], np.int32)
    return LayerCall(np.ascontiguousarray(g.x), _f32(a["x_scale"]), _int(a["x_zero_point"]), np.ascontiguousarray(g.w),
                     _per_channel(a["w_scale"], _F32), _per_channel(a["w_zero_point"], np.int64), bias,
                     _f32(a["y_scale"]), _int(a["y_zero_point"]), None, y.dtype, conv, g.restore)


# --------------------------------------------------------------------------- PyTorch


def torch_layer_profile(a):
    return get_profile(ENGINE_PROFILES[a["engine"]]).with_isa(a["isa"])


def torch_quantize(a, y, per_channel: bool):
    x = np.asarray(a["x"]).astype(_F32)
    fmt = get_format(y.dtype)
    if per_channel:
        qp = make_qparams(np.asarray(a["scales"], _F32), np.asarray(a["zero_points"], np.int64), fmt, axis=a["axis"])
    else:
        qp = make_qparams(a["scale"], _int(a["zero_point"]), fmt)
    return QuantizeCall(x, qp)


def torch_dequantize(a, y):
    q = np.asarray(a["q"])
    fmt = get_format(q.dtype)
    if a["axis"] is None:
        return DequantizeCall(q, make_qparams(a["scale"], _int(a["zero_point"]), fmt))
    return DequantizeCall(q, make_qparams(np.asarray(a["scale"], np.float64), np.asarray(a["zero_point"], np.int64),
                                          fmt, axis=a["axis"], scale_dtype=np.float64))


def torch_fake_quantize(a, y, per_channel: bool):
    """The fake-quantize range as an 8-bit format when it is one (so that a backend's quantize step
    picks its 8-bit kernel, as a converted model's would), else PyTorch's int64 code range."""
    lo, hi = int(a["quant_min"]), int(a["quant_max"])
    fmt = {(0, 255): "uint8", (-128, 127): "int8"}.get((lo, hi), pytorch._FQ_FORMAT)
    x = np.asarray(a["x"])
    if per_channel:
        qp = make_qparams(np.asarray(a["scale"], _F32), np.asarray(a["zero_point"], np.int64), fmt, axis=a["axis"],
                          qmin=lo, qmax=hi)
    else:
        qp = make_qparams(a["scale"], _int(a["zero_point"]), fmt, qmin=lo, qmax=hi)
    return FakeQuantizeCall(x, qp)


def torch_layer(a, y, conv=None):
    x, w = np.asarray(a["x"]), np.asarray(a["w"])
    bias = None if a["bias"] is None else np.asarray(a["bias"], _F32)
    if conv is None:
        restore = (lambda out, shape=x.shape[:-1] + (w.shape[0],): out.reshape(shape))
        x = x.reshape(-1, w.shape[1])
    else:
        restore = None
        conv = dict(strides=_pair(a["stride"]), dilations=_pair(a["dilation"]), pads=_pair(a["padding"]),
                    groups=int(a["groups"]), layout="NCHW", w_layout="OIHW", family=None)
    return LayerCall(x, _f32(a["x_scale"]), _int(a["x_zero_point"]), w, _per_channel(a["w_scale"], _F32),
                     _per_channel(a["w_zero_point"], np.int64), bias, _f32(a["y_scale"]), _int(a["y_zero_point"]),
                     None, np.uint8, conv, restore)
