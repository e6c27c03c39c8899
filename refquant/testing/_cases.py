"""Seeded case generators of the golden face ops (internal; see :mod:`refquant.testing.golden_ops`).

Each generator takes ``(rng, kind)`` (``kind`` one of ``random``, ``ties``, ``saturating``) and returns
``(arrays, attrs)``: every positional argument of the face function as a NumPy array (scales float32,
zero points in the dtype the face expects, codes, int32 biases) and its keyword attributes as JSON values.
Sizes are small (a case is a few hundred to a few thousand outputs).
"""

from __future__ import annotations

import numpy as np

from . import _values as Q

__all__ = ["MAKERS"]

_F32, _I8, _U8, _I32, _I64 = np.float32, np.int8, np.uint8, np.int32, np.int64


# ----------------------------------------------------------------------------- shared pieces


def _scales(rng, kind: str, n: int, per_channel: bool):
    """(x_scale, w_scale, y_scale) float32 for a layer with ``n`` output channels."""
    shape = (n,) if per_channel else ()
    if kind == "ties":
        return Q.tie_scale(rng, 2, 6), Q.tie_scale(rng, 4, 9, shape), Q.tie_scale(rng, -1, 3)
    xs, ws = Q.log_scale(rng, 0.005, 0.05), Q.log_scale(rng, 0.001, 0.01, shape)
    ys = Q.log_scale(rng, 0.0005, 0.002) if kind == "saturating" else Q.log_scale(rng, 0.02, 0.2)
    return xs, ws, ys


def _zp(rng, dtype):
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    return np.array(rng.integers(lo, hi, endpoint=True), dtype=dtype)


def _act(rng):
    return [None, None, "RELU", "RELU6"][int(rng.integers(4))]


def _bias(rng, n):
    return rng.integers(-5000, 5000, n, endpoint=True).astype(_I32)


def _tflite_weight_scale(rng, kind, n):
    return _scales(rng, kind, n, bool(rng.random() < 0.8))


# ----------------------------------------------------------------------------- TFLite (NHWC, int8)


def _tfl_fc(rng, kind):
    b, k, n = int(rng.integers(1, 5)), int(rng.integers(1, 41)), int(rng.integers(1, 9))
    xs, ws, ys = _tflite_weight_scale(rng, kind, n)
    xz = _zp(rng, _I8).astype(_I64)
    arrays = dict(x=Q.codes(rng, -128, 127, (b, k), _I8, zero_point=int(xz)), x_scale=xs, x_zero_point=xz,
                  w=Q.codes(rng, -127, 127, (n, k), _I8), w_scale=ws, b=_bias(rng, n), y_scale=ys,
                  y_zero_point=_zp(rng, _I8).astype(_I64))
    return arrays, {"activation": _act(rng)}


def _tfl_conv(rng, kind, depthwise=False):
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 5))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dil = (int(rng.integers(1, 3)), 1)
    h = int(rng.integers((kh - 1) * dil[0] + 1, 9))
    w_ = int(rng.integers((kw - 1) * dil[1] + 1, 9))
    mult = int(rng.integers(1, 3)) if depthwise else 1
    o = c * mult if depthwise else int(rng.integers(1, 6))
    xs, ws, ys = _tflite_weight_scale(rng, kind, o)
    xz = _zp(rng, _I8).astype(_I64)
    wshape = (1, kh, kw, o) if depthwise else (o, kh, kw, c)
    arrays = dict(x=Q.codes(rng, -128, 127, (n, h, w_, c), _I8, zero_point=int(xz)), x_scale=xs, x_zero_point=xz,
                  w=Q.codes(rng, -127, 127, wshape, _I8), w_scale=ws, b=_bias(rng, o), y_scale=ys,
                  y_zero_point=_zp(rng, _I8).astype(_I64))
    attrs = {"stride": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
             "padding": ["SAME", "VALID"][int(rng.integers(2))],
             "dilation": list(dil), "activation": _act(rng)}
    if depthwise:
        attrs["depth_multiplier"] = mult
    return arrays, attrs


def _binary_scales(rng, kind):
    if kind == "ties":
        return Q.tie_scale(rng, 3, 7), Q.tie_scale(rng, 3, 7), Q.tie_scale(rng, 2, 6)
    ys = Q.log_scale(rng, 0.001, 0.004) if kind == "saturating" else Q.log_scale(rng, 0.02, 0.1)
    return Q.log_scale(rng, 0.005, 0.05), Q.log_scale(rng, 0.005, 0.05), ys


def _binary(rng, kind, dtype, zp_dtype, y_name="y"):
    shape = tuple(int(d) for d in rng.integers(1, 6, int(rng.integers(1, 4))))
    sa, sb, sy = _binary_scales(rng, kind)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    za, zb = _zp(rng, dtype), _zp(rng, dtype)
    return dict(a=Q.codes(rng, lo, hi, shape, dtype, zero_point=int(za)), a_scale=sa, a_zero_point=za.astype(zp_dtype),
                b=Q.codes(rng, lo, hi, shape, dtype, zero_point=int(zb)), b_scale=sb, b_zero_point=zb.astype(zp_dtype),
                **{f"{y_name}_scale": sy, f"{y_name}_zero_point": _zp(rng, dtype).astype(zp_dtype)})


def _tfl_add(rng, kind):
    return _binary(rng, kind, _I8, _I64), {"activation": _act(rng)}


def _quantize_values(rng, kind, dtype):
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    scale = Q.tie_scale(rng, 0, 7) if kind != "random" else Q.log_scale(rng, 0.001, 0.1)
    zp = _zp(rng, dtype)
    shape = (int(rng.integers(1, 65)),)
    return Q.float_values(rng, scale, int(zp), lo, hi, shape, specials=kind == "saturating"), scale, zp


def _tfl_quantize(rng, kind):
    dtype = [_I8, _U8][int(rng.integers(2))]
    x, s, z = _quantize_values(rng, kind, dtype)
    return dict(x=x, scale=s, zero_point=z.astype(_I64)), {"dtype": np.dtype(dtype).name}


# ----------------------------------------------------------------------------- ONNX / ONNX Runtime (NCHW, uint8 x int8)


def _qlinear_matmul(rng, kind):
    m, k, n = int(rng.integers(1, 6)), int(rng.integers(1, 41)), int(rng.integers(1, 9))
    sa, sb, sy = _scales(rng, kind, n, bool(rng.random() < 0.5))
    za = _zp(rng, _U8)
    zb = np.zeros(sb.shape, _I8)
    return dict(a=Q.codes(rng, 0, 255, (m, k), _U8, zero_point=int(za)), a_scale=sa, a_zero_point=za,
                b=Q.codes(rng, -127, 127, (k, n), _I8), b_scale=sb, b_zero_point=zb,
                y_scale=sy, y_zero_point=_zp(rng, _U8)), {}


def _conv_geometry(rng):
    """NCHW shapes and ONNX attributes: groups (depthwise included), strides, dilations, asymmetric pads."""
    groups = int(rng.choice([1, 1, 2, 3]))
    cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    if rng.random() < 0.25:  # depthwise
        cg, groups = 1, int(rng.integers(1, 5))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pads = [int(p) for p in rng.integers(0, 2, 4)]
    h = int(rng.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 9))
    w = int(rng.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 9))
    return dict(n=int(rng.integers(1, 3)), c=cg * groups, h=h, w=w, o=og * groups, groups=groups, kernel=[kh, kw],
                strides=[int(rng.integers(1, 3)), int(rng.integers(1, 3))], dilations=[dh, dw], pads=pads)


def _qlinear_conv(rng, kind):
    g = _conv_geometry(rng)
    xs, ws, ys = _scales(rng, kind, g["o"], bool(rng.random() < 0.7))
    xz = _zp(rng, _U8)
    arrays = dict(x=Q.codes(rng, 0, 255, (g["n"], g["c"], g["h"], g["w"]), _U8, zero_point=int(xz)), x_scale=xs,
                  x_zero_point=xz, w=Q.codes(rng, -127, 127, (g["o"], g["c"] // g["groups"], *g["kernel"]), _I8),
                  w_scale=ws, w_zero_point=np.zeros(ws.shape, _I8), y_scale=ys, y_zero_point=_zp(rng, _U8),
                  B=_bias(rng, g["o"]))
    attrs = dict(group=g["groups"], strides=g["strides"], dilations=g["dilations"], pads=g["pads"],
                 kernel_shape=g["kernel"])
    return arrays, attrs


def _qlinear_add(rng, kind):
    return _binary(rng, kind, _U8, _U8, y_name="c"), {}


def _quantize_linear(rng, kind):
    dtype = [_U8, _I8][int(rng.integers(2))]
    x, s, z = _quantize_values(rng, kind, dtype)
    return dict(x=x, y_scale=s, y_zero_point=z), {}


# ----------------------------------------------------------------------------- PyTorch (NCHW, quint8 x qint8)


def _torch_quantize(rng, kind):
    dtype = [_U8, _I8][int(rng.integers(2))]
    x, s, z = _quantize_values(rng, kind, dtype)
    return dict(x=x, scale=s, zero_point=z.astype(_I64)), {"dtype": "quint8" if dtype == _U8 else "qint8"}


def _torch_linear(rng, kind):
    b, k, n = int(rng.integers(1, 5)), int(rng.integers(1, 41)), int(rng.integers(1, 9))
    xs, ws, ys = _scales(rng, kind, n, bool(rng.random() < 0.7))
    xz = _zp(rng, _U8)
    arrays = dict(x=Q.codes(rng, 0, 255, (b, k), _U8, zero_point=int(xz)), x_scale=xs, x_zero_point=xz,
                  w=Q.codes(rng, -128, 127, (n, k), _I8), w_scale=ws, w_zero_point=np.zeros(ws.shape, _I64),
                  bias=(rng.standard_normal(n) * 0.5).astype(_F32), y_scale=ys, y_zero_point=_zp(rng, _U8))
    return arrays, {}


def _torch_conv(rng, kind):
    g = _conv_geometry(rng)
    pad = [min(g["pads"][0], g["pads"][2]), min(g["pads"][1], g["pads"][3])]  # PyTorch pads both sides alike
    g["h"], g["w"] = max(g["h"], (g["kernel"][0] - 1) * g["dilations"][0] + 1), max(g["w"], (g["kernel"][1] - 1) *
                                                                                     g["dilations"][1] + 1)
    xs, ws, ys = _scales(rng, kind, g["o"], bool(rng.random() < 0.7))
    xz = _zp(rng, _U8)
    arrays = dict(x=Q.codes(rng, 0, 255, (g["n"], g["c"], g["h"], g["w"]), _U8, zero_point=int(xz)), x_scale=xs,
                  x_zero_point=xz, w=Q.codes(rng, -128, 127, (g["o"], g["c"] // g["groups"], *g["kernel"]), _I8),
                  w_scale=ws, w_zero_point=np.zeros(ws.shape, _I64),
                  bias=(rng.standard_normal(g["o"]) * 0.5).astype(_F32), y_scale=ys, y_zero_point=_zp(rng, _U8))
    return arrays, dict(stride=g["strides"], padding=pad, dilation=g["dilations"], groups=g["groups"])


def _torch_add(rng, kind):
    return _binary(rng, kind, _U8, _I64), {"relu": bool(rng.random() < 0.3)}


#: op name -> generator ``(rng, kind) -> (arrays, attrs)``.
MAKERS = {
    "tflite.fully_connected": _tfl_fc, "tflite.conv2d": _tfl_conv,
    "tflite.depthwise_conv2d": lambda rng, kind: _tfl_conv(rng, kind, True), "tflite.add": _tfl_add,
    "tflite.quantize": _tfl_quantize, "pytorch.quantize_per_tensor": _torch_quantize, "pytorch.linear": _torch_linear,
    "pytorch.conv2d": _torch_conv, "pytorch.add": _torch_add, "onnxruntime.qlinear_add": _qlinear_add,
    **{f"{face}.{name}": fn for face in ("onnx", "onnxruntime") for name, fn in
       (("qlinear_matmul", _qlinear_matmul), ("qlinear_conv", _qlinear_conv), ("quantize_linear", _quantize_linear))},
}
