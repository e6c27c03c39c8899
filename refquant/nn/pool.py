"""Pooling over (N, C, H, W): `MaxPool2d`, `AvgPool2d`, `GlobalAvgPool2d`.

Windows are visited one kernel tap $(i, j)$ at a time: the tap's values for every output
position form the strided view $\\tilde x_{n,c,\\,h s_h + i d_h,\\, w s_w + j d_w}$
(:func:`refquant.nn.conv.window_tap`), so each pass is a vectorised NumPy operation.
Output size as for convolution: $H_o = \\lfloor (H + 2p_h - d_h(k_h-1) - 1)/s_h \\rfloor + 1$
(``ceil_mode=False``).
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationValueError, ShapeError
from ._checks import as_flag, as_input, as_pair
from .conv import conv2d_output_size, pad2d, window_tap
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d"]


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding", minimum=0)
        self.dilation = as_pair(dilation, "dilation")
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise QuantizationValueError(f"padding must be at most half the kernel size {self.kernel_size}, "
                                             f"got {self.padding}")
        self._cache = None

    def _prepare(self, x, pad_value: float):
        name = f"{type(self).__name__}(kernel_size={self.kernel_size})"
        x = as_input(x, name, ndim=4, layout="(N, C, H, W)")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        ho = conv2d_output_size(x.shape[2], kh, sh, ph, ph, dh)
        wo = conv2d_output_size(x.shape[3], kw, sw, pw, pw, dw)
        if ho < 1 or wo < 1:
            raise ShapeError(f"{name}: input spatial size {x.shape[2:]} is smaller than the window")
        xp = pad2d(x, (ph, ph, pw, pw), pad_value)
        return xp, (ho, wo)

    def _taps(self):
        kh, kw = self.kernel_size
        return [(i, j) for i in range(kh) for j in range(kw)]

    def _unpad(self, gxp):
        ph, pw = self.padding
        return gxp[:, :, ph: gxp.shape[2] - ph, pw: gxp.shape[3] - pw]

    def get_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "dilation": list(self.dilation)}


class MaxPool2d(_Pool2d):
    """$y_{n,c,h,w} = \\max_{i,j} \\tilde x_{n,c,\\,h s_h + i d_h,\\, w s_w + j d_w}$, padding with $-\\infty$
    (``torch.nn.MaxPool2d``, ONNX ``MaxPool``).

    Backward routes each output gradient to the window's maximum; on ties, the first
    maximum in row-major window order takes it (as PyTorch's CPU kernel).

    Args:
        kernel_size: int or (kH, kW).
        stride: int or (sH, sW); default the kernel size.
        padding: int or (pH, pW), both sides, at most half the kernel.
        dilation: int or (dH, dW).
    """

    def forward(self, x):
        xp, out_hw = self._prepare(x, -np.inf)
        taps = self._taps()
        y = window_tap(xp, *taps[0], out_hw, self.stride, self.dilation).copy()
        arg = np.zeros(y.shape, dtype=np.min_scalar_type(len(taps) - 1))  # index of the winning tap (uint8/16/32)
        for t, (i, j) in enumerate(taps[1:], start=1):
            v = window_tap(xp, i, j, out_hw, self.stride, self.dilation)
            better = v > y  # strict: the first maximum wins ties
            np.copyto(y, v, where=better)
            np.copyto(arg, t, where=better)  # (not arg[better] = t: boolean indexing is far slower)
        self._cache = (xp.shape, xp.dtype, out_hw, arg)
        return y

    def backward(self, grad_out):
        padded_shape, dtype, out_hw, arg = self._cached()
        g = self._check_grad(grad_out, arg.shape, "MaxPool2d")
        gxp = np.zeros(padded_shape, dtype=np.result_type(dtype, g.dtype))
        for t, (i, j) in enumerate(self._taps()):
            window_tap(gxp, i, j, out_hw, self.stride, self.dilation)[...] += np.where(arg == t, g, 0)
        return self._unpad(gxp)


class AvgPool2d(_Pool2d):
    """$y_{n,c,h,w} = \\frac{1}{D_{h,w}} \\sum_{i,j} \\tilde x_{n,c,\\,h s_h + i,\\, w s_w + j}$, zero padding
    (``torch.nn.AvgPool2d``, ONNX ``AveragePool``).

    The divisor $D$ is $k_h k_w$ with ``count_include_pad=True`` (PyTorch's default), or
    the number of non-padding elements in the window with ``count_include_pad=False``
    (TFLite ``AVERAGE_POOL_2D`` with SAME padding, ONNX's default).
    Backward: $\\partial L/\\partial \\tilde x$ receives $G_{n,c,h,w}/D_{h,w}$ from every window containing it.

    Args:
        kernel_size: int or (kH, kW).
        stride: int or (sH, sW); default the kernel size.
        padding: int or (pH, pW), both sides, at most half the kernel.
        count_include_pad: see above.
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = as_flag(count_include_pad, "count_include_pad")

    def _divisor(self, hw, out_hw, dtype) -> np.ndarray:
        kh, kw = self.kernel_size
        if self.count_include_pad or not any(self.padding):
            return np.asarray(kh * kw, dtype=dtype)
        ph, pw = self.padding
        ones = np.pad(np.ones(hw, dtype=dtype), ((ph, ph), (pw, pw)))
        return sum(window_tap(ones, i, j, out_hw, self.stride, self.dilation) for i, j in self._taps())

    def forward(self, x):
        xp, out_hw = self._prepare(x, 0.0)
        hw = (xp.shape[2] - 2 * self.padding[0], xp.shape[3] - 2 * self.padding[1])
        y = np.zeros(xp.shape[:2] + out_hw, dtype=xp.dtype)
        for i, j in self._taps():
            y += window_tap(xp, i, j, out_hw, self.stride, self.dilation)
        div = self._divisor(hw, out_hw, xp.dtype)
        self._cache = (xp.shape, out_hw, div)
        return y / div

    def backward(self, grad_out):
        padded_shape, out_hw, div = self._cached()
        g = self._check_grad(grad_out, padded_shape[:2] + out_hw, "AvgPool2d")
        gd = g / div
        gxp = np.zeros(padded_shape, dtype=gd.dtype)
        for i, j in self._taps():
            window_tap(gxp, i, j, out_hw, self.stride, self.dilation)[...] += gd
        return self._unpad(gxp)

    def get_config(self) -> dict:
        c = super().get_config()
        del c["dilation"]
        c["count_include_pad"] = self.count_include_pad
        return c


class GlobalAvgPool2d(Module):
    """$y_{n,c} = \\frac{1}{HW} \\sum_{h,w} x_{n,c,h,w}$ (ONNX ``GlobalAveragePool``, ``AdaptiveAvgPool2d(1)``).

    Output (N, C) by default (ready for ``Linear``), or (N, C, 1, 1) with ``keepdims=True``.
    Backward: $\\partial L/\\partial x_{n,c,h,w} = G_{n,c}/(HW)$.
    """

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = as_flag(keepdims, "keepdims")
        self._cache = None

    def forward(self, x):
        x = as_input(x, "GlobalAvgPool2d", ndim=4, layout="(N, C, H, W)")
        self._cache = x.shape
        return x.mean(axis=(2, 3), keepdims=self.keepdims)

    def backward(self, grad_out):
        shape = self._cached()
        g = self._check_grad(grad_out, shape[:2] + ((1, 1) if self.keepdims else ()), "GlobalAvgPool2d")
        g = g.reshape(shape[:2] + (1, 1)) / (shape[2] * shape[3])
        return np.broadcast_to(g, shape).copy()

    def get_config(self) -> dict:
        return {"keepdims": self.keepdims}
