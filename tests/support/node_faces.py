"""One ``linear`` / ``conv2d`` node of refquant's integer model, run through a backend *face*
(:mod:`refquant.backends.tflite`, :mod:`~refquant.backends.onnxruntime`, :mod:`~refquant.backends.pytorch`)
with the node's own parameters: the op the backend's converter would emit for that layer.

The integer model is NCHW with OIHW weights; the faces take their backend's layouts:

| profile | linear | conv2d | depthwise (groups = C = O) |
|---|---|---|---|
| ``tflite_*`` | FULLY_CONNECTED | PAD with $Z_x$, CONV_2D, NHWC / OHWI | PAD, DEPTHWISE_CONV_2D, 1HWO |
| ``onnxruntime`` | QLinearConv 1×1 (a bias), QLinearMatMul (none) | QLinearConv, NCHW / OIHW | QLinearConv ``group = C`` |
| ``pytorch_*`` | ``quantized::linear`` (+ ReLU) | ``quantized::conv2d`` (+ ReLU), NCHW | the same, ``groups = C`` |

:func:`run_face` raises :class:`FaceRefuses` (the reason as its message) for a node the face cannot
express. NumPy only: no backend is imported.
"""

from __future__ import annotations

import numpy as np

from refquant.backends import onnxruntime as O
from refquant.backends import pytorch as P
from refquant.backends import tflite as T

__all__ = ["FaceRefuses", "run_face"]


class FaceRefuses(Exception):
    """The backend face cannot express this node (the reason is the message)."""


def _tflite(node, x, xi, yi, kernel: str) -> np.ndarray:
    p, a = node.params, node.attrs
    act = a.get("activation")
    if node.op == "linear":
        return T.fully_connected(x, xi.scale, xi.zero_point, p["weight"], p["weight_scale"], p.get("bias"),
                                 yi.scale, yi.zero_point, activation=act, kernel=kernel)
    # TFLite pads SAME (the odd pixel at the end) or VALID; a converter writes PyTorch's symmetric padding as
    # a PAD op with the input's zero point, then VALID. Exact: a padded tap adds (Z_x - Z_x) w = 0.
    top, left, bottom, right = a["padding"]
    xp = np.pad(x.transpose(0, 2, 3, 1), ((0, 0), (top, bottom), (left, right), (0, 0)),
                constant_values=xi.zero_point)  # (N, H', W', C) int8
    w, groups, c = p["weight"], a["groups"], x.shape[1]
    geometry = {"stride": tuple(a["stride"]), "padding": "VALID", "dilation": tuple(a["dilation"]),
                "activation": act, "kernel": kernel}
    rest = (p["weight_scale"], p.get("bias"), yi.scale, yi.zero_point)
    if groups == 1:
        y = T.conv2d(xp, xi.scale, xi.zero_point, w.transpose(0, 2, 3, 1), *rest, **geometry)  # OIHW -> OHWI
    elif groups == c == w.shape[0]:
        y = T.depthwise_conv2d(xp, xi.scale, xi.zero_point, w.transpose(1, 2, 3, 0), *rest,
                               **geometry)  # (O, 1, kH, kW) -> 1HWO
    else:
        raise FaceRefuses(f"groups={groups} with {c} channels and {w.shape[0]} outputs: neither CONV_2D nor a "
                          f"DEPTHWISE_CONV_2D of multiplier 1")
    return y.transpose(0, 3, 1, 2)


def _onnxruntime(node, x, xi, yi) -> np.ndarray:
    p, a = node.params, node.attrs
    if a.get("activation"):
        raise FaceRefuses(f"a fused {a['activation']}: ORT removes an activation the output range lies in")
    q = (xi.scale, xi.zero_point)
    w = (p["weight_scale"], p["weight_zero_point"], yi.scale, np.uint8(yi.zero_point))
    if node.op == "linear":
        if "bias" not in p:
            return O.qlinear_matmul(x, *q, p["weight"].T, *w)
        # QLinearMatMul has no bias, and ORT runs a QDQ Gemm as com.microsoft.QGemm, which the face lacks:
        # a 1x1 QLinearConv over (N, K, 1, 1) is the same arithmetic (acc + B in int32, then the float32
        # requantization; the onnxruntime profile's linear and conv specs are one LayerSpec)
        return O.qlinear_conv(x[:, :, None, None], *q, p["weight"][:, :, None, None], *w, p["bias"])[:, :, 0, 0]
    return O.qlinear_conv(x, *q, p["weight"], *w, p.get("bias"), pads=list(a["padding"]), strides=list(a["stride"]),
                          dilations=list(a["dilation"]), group=a["groups"])


def _pytorch(node, x, xi, yi, engine: str) -> np.ndarray:
    p, a = node.params, node.attrs
    act = a.get("activation")
    if act not in (None, "RELU"):
        raise FaceRefuses(f"a fused {act}: torch fuses ReLU only")
    args = (x, xi.scale, xi.zero_point, p["weight"], p["weight_scale"], p["weight_zero_point"], p.get("bias"),
            yi.scale, yi.zero_point)
    if node.op == "linear":
        y = P.linear(*args, engine=engine)
    else:
        top, left, bottom, right = a["padding"]
        if (top, left) != (bottom, right):
            raise FaceRefuses(f"asymmetric padding {a['padding']}: torch pads symmetrically")
        y = P.conv2d(*args, stride=tuple(a["stride"]), padding=(top, left), dilation=tuple(a["dilation"]),
                     groups=a["groups"], engine=engine)
    # LinearReLU / ConvReLU2d clamp the requantized code below at Z_y; the face has no activation argument,
    # and max(clamp(v, 0, 255), Z_y) = clamp(v, Z_y, 255) exactly
    return np.maximum(y, np.uint8(yi.zero_point)) if act == "RELU" else y


def run_face(profile: str, node, x: np.ndarray, x_info, y_info) -> np.ndarray:
    """The face's result for ``node`` on input codes ``x`` (NCHW or ``(M, K)``), NCHW / ``(M, N)`` codes.

    ``x_info`` / ``y_info``: the node's input and output :class:`~refquant.qmodel.TensorInfo`. Every
    face runs with ``isa="auto"`` (this CPU), as the integer model does.
    """
    if profile.startswith("tflite_"):
        return _tflite(node, x, x_info, y_info, profile.removeprefix("tflite_"))
    if profile == "onnxruntime":
        return _onnxruntime(node, x, x_info, y_info)
    if profile.startswith("pytorch_"):
        return _pytorch(node, x, x_info, y_info, profile.removeprefix("pytorch_"))
    raise FaceRefuses(f"no face adapter for profile {profile!r}")
