"""Float32 versions of the graph's ops, for the layers a model keeps in float.

A partially quantized model (a layer no profile can quantize, a mixed-precision plan that keeps
the most sensitive layers in float, dynamic quantization that leaves convolutions alone,
weight-only quantization that dequantizes its weights) runs those nodes here. They compute in
float32 with NumPy's own summation order: no backend promises an order for float layers, so
these are **not** bit-exact with any runtime's float kernels, only close (a few float32 ulps).

Layout: NCHW activations, OIHW weights, ``padding`` as ``(top, left, bottom, right)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear", "conv2d", "max_pool2d", "average_pool2d", "global_average_pool", "activation"]

_F32 = np.float32
_LIMITS = {None: None, "NONE": None, "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def activation(y: np.ndarray, name) -> np.ndarray:
    """Apply a fused activation (``None``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"``) in float32."""
    limits = _LIMITS[name]
    if limits is None:
        return y
    return np.clip(y, _F32(limits[0]), None if limits[1] is None else _F32(limits[1])).astype(_F32)


def linear(x: np.ndarray, w: np.ndarray, bias, act=None) -> np.ndarray:
    """$y = x W^T + b$ in float32: ``x (M, K)``, ``w (N, K)``."""
    y = (x.astype(_F32) @ w.astype(_F32).T).astype(_F32)
    if bias is not None:
        y = (y + bias.astype(_F32)).astype(_F32)
    return activation(y, act)


def _windows(x: np.ndarray, kernel, stride, padding, dilation, value=0.0) -> np.ndarray:
    """``(N, C, OH, OW, kH, kW)`` view of the padded input's windows."""
    pt, pl, pb, pr = padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)
    kh, kw = kernel
    dh, dw = dilation
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1], ::dh, ::dw]


def conv2d(x: np.ndarray, w: np.ndarray, bias, *, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
           groups: int = 1, act=None) -> np.ndarray:
    """2-D convolution in float32 (cross-correlation, as every framework): ``x (N, C, H, W)``,
    ``w (O, C/groups, kH, kW)`` → ``(N, O, OH, OW)``."""
    x = x.astype(_F32)
    o, cg, kh, kw = w.shape
    win = _windows(x, (kh, kw), stride, padding, dilation)  # (N, C, OH, OW, kh, kw)
    n, _, oh, ow = win.shape[:4]
    og = o // groups
    y = np.empty((n, o, oh, ow), _F32)
    for g in range(groups):
        xs = win[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og].astype(_F32)
        y[:, g * og:(g + 1) * og] = np.einsum("nchwij,ocij->nohw", xs, ws, optimize=True)
    if bias is not None:
        y = (y + bias.astype(_F32).reshape(1, -1, 1, 1)).astype(_F32)
    return activation(y, act)


def max_pool2d(x: np.ndarray, kernel, stride) -> np.ndarray:
    """Max over each window (no padding): float32 or codes alike."""
    return _windows(x, kernel, stride, (0, 0, 0, 0), (1, 1)).max(axis=(4, 5))


def average_pool2d(x: np.ndarray, kernel, stride) -> np.ndarray:
    """Mean over each window (no padding), float32."""
    return _windows(x.astype(_F32), kernel, stride, (0, 0, 0, 0), (1, 1)).mean(axis=(4, 5), dtype=_F32)


def global_average_pool(x: np.ndarray) -> np.ndarray:
    """Mean over the spatial axes, float32: ``(N, C, H, W)`` → ``(N, C)``."""
    return x.astype(_F32).mean(axis=(2, 3), dtype=_F32)
