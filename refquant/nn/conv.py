"""2-D convolution (NCHW) with groups, depthwise, stride, padding and dilation; im2col-based.

Forward (cross-correlation, as every framework computes it), for output channel $o$ in
group $g = \\lfloor o / O_g \\rfloor$ with $C_g = C/G$ input channels per group:

$$ y_{n,o,h,w} = b_o + \\sum_{c=0}^{C_g-1} \\sum_{i=0}^{k_h-1} \\sum_{j=0}^{k_w-1}
   W_{o,c,i,j}\\; \\tilde x_{n,\\, gC_g + c,\\; h s_h + i d_h,\\; w s_w + j d_w} \\tag{1} $$

where $\\tilde x$ is $x$ zero-padded and $s$, $d$ are stride and dilation. Output size
$H_o = \\lfloor (H + p_t + p_b - d_h(k_h - 1) - 1)/s_h \\rfloor + 1$ (same for $W$).

**im2col.** Gathering every window into a matrix turns (1) into one matrix product per
group: with $\\mathrm{cols}_g \\in \\mathbb{R}^{(C_g k_h k_w) \\times (N H_o W_o)}$ and
$W_g \\in \\mathbb{R}^{O_g \\times (C_g k_h k_w)}$, $Y_g = W_g\\, \\mathrm{cols}_g$. The
windows are read with ``np.lib.stride_tricks.sliding_window_view`` (no copy) and copied
once into the matrix layout.

**Backward.** With $G_g = \\partial L/\\partial Y_g$:

$$ \\frac{\\partial L}{\\partial W_g} = G_g\\, \\mathrm{cols}_g^\\top, \\qquad
   \\frac{\\partial L}{\\partial \\mathrm{cols}_g} = W_g^\\top G_g, \\qquad
   \\frac{\\partial L}{\\partial b_o} = \\sum_{n,h,w} G_{n,o,h,w} \\tag{2} $$

and ``col2im`` scatters $\\partial L/\\partial\\mathrm{cols}$ back to the input positions,
one kernel tap $(i, j)$ at a time (overlapping windows add up), then drops the padding.

Weights are ``(O, C/G, kH, kW)`` as in PyTorch and ONNX. Depthwise convolution is
``groups = in_channels`` with ``out_channels = in_channels · depth_multiplier``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import QuantizationValueError, ShapeError
from ._checks import as_flag, as_float_dtype, as_input, as_int, as_pair, as_padding, check_size
from .conv_numba import JIT_ENABLED, col2im_numba, depthwise_backward_numba, depthwise_forward_numba, im2col_numba
from .init import as_rng, uniform_fan_in
from .module import Module, Parameter
from .transforms import apply_weight_transform, weight_grad

__all__ = ["Conv2d", "conv2d_output_size", "pad2d", "im2col", "col2im", "window_tap", "depthwise_forward",
           "depthwise_backward"]


def window_tap(a: np.ndarray, i: int, j: int, out_hw, stride, dilation) -> np.ndarray:
    """The (strided) view of ``a[..., h·s_h + i·d_h, w·s_w + j·d_w]`` for kernel tap (i, j)."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return a[..., i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]


def pad2d(x: np.ndarray, padding: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of ``x`` by (top, bottom, left, right) with ``value`` (a copy;
    returns ``x`` itself when there is no padding). Faster than ``np.pad`` for this case."""
    pt, pb, pl, pr = padding
    if not (pt or pb or pl or pr):
        return x
    h, w = x.shape[-2:]
    out = np.full(x.shape[:-2] + (h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[..., pt: pt + h, pl: pl + w] = x
    return out


def conv2d_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """$\\lfloor (n + p_0 + p_1 - d(k-1) - 1)/s \\rfloor + 1$ (may be < 1 for too small inputs)."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
           groups: int) -> np.ndarray:
    """Gather the windows of a padded input into ``(G, C_g·kH·kW, N·Ho·Wo)`` (a copy).

    Row index is $(c, i, j)$ in C order, column index $(n, h, w)$; ``xp`` is (N, C, Hp, Wp).
    """
    n, c, _, _ = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ext = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(xp, ext, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, Ho, Wo, kH, kW) view
    ho, wo = win.shape[2], win.shape[3]
    win = win.reshape(n, groups, c // groups, ho, wo, kh, kw)
    return win.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, (c // groups) * kh * kw, n * ho * wo)


def col2im(gcols: np.ndarray, padded_shape: tuple[int, int, int, int], out_hw: tuple[int, int],
           kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], groups: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``(G, C_g·kH·kW, N·Ho·Wo)`` back to ``padded_shape``."""
    n, c, hp, wp = padded_shape
    (kh, kw), (ho, wo) = kernel, out_hw
    g6 = gcols.reshape(groups, c // groups, kh, kw, n, ho, wo)
    gx = np.zeros((n, groups, c // groups, hp, wp), dtype=gcols.dtype)
    for i in range(kh):
        for j in range(kw):
            window_tap(gx, i, j, out_hw, stride, dilation)[...] += g6[:, :, i, j].transpose(2, 0, 1, 3, 4)
    return gx.reshape(n, c, hp, wp)


def depthwise_forward(xp: np.ndarray, w: np.ndarray, out_hw, stride, dilation) -> np.ndarray:
    """Eq. (1) for one input channel per group ($C_g = 1$), tap by tap, without im2col.

    ``xp`` (N, C, Hp, Wp) padded, ``w`` (C·M, 1, kH, kW) → (N, C·M, Ho, Wo), where $M$ is
    the depth multiplier: $y_{n,cM+m} = \\sum_{i,j} W_{cM+m,0,i,j}\\, \\tilde x_{n,c,\\ldots}$.
    Same sums as the im2col path, accumulated in another order (not bit-identical).

    With stride 1 every tap is one *contiguous* slice of the flattened padded image: the
    output is computed on the padded grid, $y[p] \\mathrel{+}= W_{ij}\\, \\tilde x[p + i d_h W_p + j d_w]$
    for flat positions $p = h W_p + w$, and the $W_p - W_o$ extra columns of each row are
    dropped at the end (about 2x faster than strided views on small images).
    """
    n, c, hp, wp = xp.shape
    kh, kw = w.shape[2:]
    m = w.shape[0] // c
    (ho, wo), (dh, dw) = out_hw, dilation
    wm = w.reshape(c, m, kh, kw)
    if tuple(stride) == (1, 1):
        span = (ho - 1) * wp + wo  # flat positions from (0, 0) to (Ho-1, Wo-1)
        xf = xp.reshape(n, c, 1, hp * wp)
        acc = np.zeros((n, c, m, ho * wp), dtype=w.dtype)
        tmp = np.empty((n, c, m, span), dtype=w.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                np.multiply(xf[..., off: off + span], wm[:, :, i, j, None], out=tmp)
                acc[..., :span] += tmp
        return np.ascontiguousarray(acc.reshape(n, c * m, ho, wp)[..., :wo])
    y = np.zeros((n, c, m, ho, wo), dtype=w.dtype)
    tmp = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            np.multiply(window_tap(xp, i, j, out_hw, stride, dilation)[:, :, None], wm[:, :, i, j, None, None], out=tmp)
            y += tmp
    return y.reshape(n, c * m, ho, wo)


def depthwise_backward(g: np.ndarray, xp: np.ndarray, w: np.ndarray, stride, dilation, need_w: bool):
    """Adjoint of :func:`depthwise_forward`: returns ``(grad_xp, grad_w or None)``.

    $\\partial L/\\partial W_{cM+m,0,i,j} = \\sum_{n,h,w} G_{n,cM+m,h,w}\\,
    \\tilde x_{n,c,h s_h + i d_h, w s_w + j d_w}$ and each tap adds
    $\\sum_m W_{cM+m,0,i,j} G_{n,cM+m}$ back at the positions it read.
    """
    n, c, hp, wp = xp.shape
    kh, kw = w.shape[2:]
    m = w.shape[0] // c
    ho, wo = g.shape[2:]
    dh, dw = dilation
    wm = w.reshape(c, m, kh, kw)
    gw = np.zeros((c, m, kh, kw), dtype=w.dtype) if need_w else None
    if tuple(stride) == (1, 1):  # the flat-grid form of depthwise_forward
        span = (ho - 1) * wp + wo
        gfull = np.zeros((n, c, m, ho, wp), dtype=g.dtype)
        gfull[..., :wo] = g.reshape(n, c, m, ho, wo)  # zero gradient on the dropped columns
        gf = gfull.reshape(n, c, m, ho * wp)[..., :span]
        xf = xp.reshape(n, c, hp * wp)
        gx = np.zeros((n, c, hp * wp), dtype=np.result_type(xp.dtype, g.dtype))
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                if need_w:
                    gw[:, :, i, j] = np.einsum("ncml,ncl->cm", gf, xf[..., off: off + span])
                gx[..., off: off + span] += np.einsum("ncml,cm->ncl", gf, wm[:, :, i, j])
        return gx.reshape(xp.shape), (None if gw is None else gw.reshape(w.shape))
    g5 = g.reshape(n, c, m, ho, wo)
    gx = np.zeros(xp.shape, dtype=np.result_type(xp.dtype, g.dtype))
    for i in range(kh):
        for j in range(kw):
            xs = window_tap(xp, i, j, (ho, wo), stride, dilation)  # (N, C, Ho, Wo)
            if need_w:
                gw[:, :, i, j] = np.einsum("ncmhw,nchw->cm", g5, xs)
            window_tap(gx, i, j, (ho, wo), stride, dilation)[...] += np.einsum("ncmhw,cm->nchw", g5, wm[:, :, i, j])
    return gx, (None if gw is None else gw.reshape(w.shape))


class Conv2d(Module):
    """2-D convolution, NCHW, eq. (1)-(2) above (``torch.nn.Conv2d``, ONNX ``Conv``).

    Shapes: ``x`` (N, in_channels, H, W) → ``y`` (N, out_channels, Ho, Wo);
    ``weight`` (out_channels, in_channels/groups, kH, kW); ``bias`` (out_channels,).
    Computes in the weight's dtype.

    Args:
        in_channels: input channels $C$.
        out_channels: output channels $O$.
        kernel_size: int or (kH, kW).
        stride: int or (sH, sW).
        padding: zeros added: int, (pH, pW) (both sides), or (top, bottom, left, right).
        dilation: int or (dH, dW).
        groups: $G$, dividing both channel counts; ``groups = in_channels`` is depthwise.
        bias: add a learned bias.
        rng: seed or Generator for the initial weights (default: the process-wide one).
        dtype: float32 (default) or float64.

    Attributes:
        weight_transform: None or a callable $W \\mapsto W_{\\mathrm{eff}}$ or
            $(W_{\\mathrm{eff}}, \\mathrm{bwd})$ (see :mod:`refquant.nn.transforms`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, *, rng=None, dtype=np.float32):
        super().__init__()
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_padding(padding)
        self.dilation = as_pair(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        bias = as_flag(bias, "bias")
        for name, ch in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if ch % self.groups:
                raise QuantizationValueError(f"{name} must be divisible by groups = {self.groups}, got {ch}")
        d = as_float_dtype(dtype)
        g = as_rng(rng)
        kh, kw = self.kernel_size
        fan_in = (self.in_channels // self.groups) * kh * kw
        check_size(self.out_channels * fan_in, d.itemsize,
                   "the weight out_channels * in_channels / groups * kernel_size[0] * kernel_size[1]")
        self.weight = Parameter(uniform_fan_in((self.out_channels, self.in_channels // self.groups, kh, kw),
                                               fan_in, g, d))
        self.bias = Parameter(uniform_fan_in((self.out_channels,), fan_in, g, d)) if bias else None
        self.weight_transform = None
        self._cache = None

    @property
    def name(self) -> str:
        return f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def effective_weight(self) -> np.ndarray:
        """The weight the forward pass uses (after ``weight_transform``)."""
        return apply_weight_transform(self.weight.value, self.weight_transform, "Conv2d")[0]

    def forward(self, x):
        x = as_input(x, self.name, ndim=4, channels=self.in_channels, layout="(N, C, H, W)")
        w, bwd = apply_weight_transform(self.weight.value, self.weight_transform, "Conv2d")
        x = x.astype(w.dtype, copy=False)
        n, _, h, wd = x.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        pt, pb, pl, pr = self.padding
        ho = conv2d_output_size(h, kh, sh, pt, pb, dh)
        wo = conv2d_output_size(wd, kw, sw, pl, pr, dw)
        if ho < 1 or wo < 1:
            raise ShapeError(f"{self.name}: input spatial size {(h, wd)} with padding {self.padding} is smaller "
                             f"than the dilated kernel {(dh * (kh - 1) + 1, dw * (kw - 1) + 1)}")
        xp = pad2d(x, self.padding)
        if self.groups == self.in_channels:  # depthwise: tap-by-tap is faster than im2col here
            fwd = depthwise_forward_numba if JIT_ENABLED else depthwise_forward  # same bits (refquant.nn.conv_numba)
            y = fwd(xp, w, (ho, wo), self.stride, self.dilation)
            if self.bias is not None:
                y += self.bias.value[:, None, None]
            self._cache = ("depthwise", xp, w, bwd)
            return y
        gather = im2col_numba if JIT_ENABLED else im2col  # same bits (refquant.nn.conv_numba)
        cols = gather(xp, self.kernel_size, self.stride, self.dilation, self.groups)  # (G, K, N·Ho·Wo)
        wg = w.reshape(self.groups, self.out_channels // self.groups, -1)  # (G, O_g, K)
        y = np.matmul(wg, cols)  # (G, O_g, N·Ho·Wo)
        y = y.reshape(self.out_channels, n, ho, wo).transpose(1, 0, 2, 3)  # (N, O, Ho, Wo)
        y = np.ascontiguousarray(y)
        if self.bias is not None:
            y += self.bias.value[:, None, None]
        self._cache = ("im2col", cols, wg, bwd, xp.shape, (ho, wo))
        return y

    def backward(self, grad_out):
        cache = self._cached()
        if cache[0] == "depthwise":
            return self._backward_depthwise(grad_out, *cache[1:])
        _, cols, wg, bwd, padded_shape, (ho, wo) = cache
        n = padded_shape[0]
        g = self._check_grad(grad_out, (n, self.out_channels, ho, wo), self.name)
        gm = g.transpose(1, 0, 2, 3).reshape(self.groups, self.out_channels // self.groups, n * ho * wo)
        if self.weight.requires_grad:
            gw = np.matmul(gm, cols.transpose(0, 2, 1)).reshape(self.weight.shape)  # eq. (2)
            self.weight.accumulate(weight_grad(gw, bwd))
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=(0, 2, 3)))
        gcols = np.matmul(wg.transpose(0, 2, 1), gm)  # (G, K, N·Ho·Wo)
        scatter = col2im_numba if JIT_ENABLED else col2im  # same bits (refquant.nn.conv_numba)
        gxp = scatter(gcols, padded_shape, (ho, wo), self.kernel_size, self.stride, self.dilation, self.groups)
        return self._unpad(gxp)

    def _backward_depthwise(self, grad_out, xp, w, bwd):
        n, _, hp, wp = xp.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        out = (n, self.out_channels, conv2d_output_size(hp, kh, sh, 0, 0, dh), conv2d_output_size(wp, kw, sw, 0, 0, dw))
        g = self._check_grad(grad_out, out, self.name)
        bwd_fn = depthwise_backward_numba if JIT_ENABLED else depthwise_backward  # equal within rounding
        gxp, gw = bwd_fn(g, xp, w, self.stride, self.dilation, self.weight.requires_grad)
        if gw is not None:
            self.weight.accumulate(weight_grad(gw, bwd))
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=(0, 2, 3)))
        return self._unpad(gxp)

    def _unpad(self, gxp: np.ndarray) -> np.ndarray:
        pt, pb, pl, pr = self.padding
        return gxp[:, :, pt: gxp.shape[2] - pb, pl: gxp.shape[3] - pr]

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "dilation": list(self.dilation), "groups": self.groups,
                "bias": self.bias is not None, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
