"""Convolution geometries for fuzzing: groups, depthwise, strides, dilations, padding, odd shapes.

A :class:`ConvGeometry` holds one 2-D convolution's shapes and attributes and spells them for
each face: :meth:`~ConvGeometry.onnx_attrs` (``qlinear_conv``), :meth:`~ConvGeometry.pytorch_args`
(``conv2d``, symmetric padding), :meth:`~ConvGeometry.tflite_args` (``conv2d`` and
``depthwise_conv2d``, ``"SAME"``/``"VALID"`` padding). Every drawn geometry has an output of at
least one pixel. Needs hypothesis (``pip install hypothesis``).

Added in 0.1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _validate as V
from ..errors import UnsupportedError
from ._hypothesis import st

__all__ = ["ConvGeometry", "conv_geometries"]

PADDINGS = ("explicit", "symmetric", "same_valid")


@dataclass(frozen=True)
class ConvGeometry:
    """One 2-D convolution.

    Attributes:
        batch, in_channels, out_channels, groups, height, width: Sizes (NCHW names).
        kernel, stride, dilation: ``(h, w)`` pairs.
        pads: ``(top, left, bottom, right)``.
        padding: ``"SAME"`` or ``"VALID"`` when the pads are TFLite's for that mode, else ``None``.
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    height: int
    width: int
    kernel: tuple
    stride: tuple
    dilation: tuple
    pads: tuple
    padding: str | None = None

    @property
    def depthwise(self) -> bool:
        """One input channel per group, more than one group (TFLite's DEPTHWISE_CONV_2D)."""
        return self.groups == self.in_channels > 1

    @property
    def output_size(self) -> tuple:
        """``(out_h, out_w)``: $\\lfloor (n + p_0 + p_1 - d(k - 1) - 1) / s \\rfloor + 1$ per axis."""
        t, left, b, r = self.pads
        oh = (self.height + t + b - self.dilation[0] * (self.kernel[0] - 1) - 1) // self.stride[0] + 1
        ow = (self.width + left + r - self.dilation[1] * (self.kernel[1] - 1) - 1) // self.stride[1] + 1
        return oh, ow

    def input_shape(self, layout: str = "NCHW") -> tuple:
        """The input's shape, ``"NCHW"`` (ONNX, PyTorch) or ``"NHWC"`` (TFLite)."""
        layout = V.as_choice(layout, "layout", ("NCHW", "NHWC"))
        n, c, h, w = self.batch, self.in_channels, self.height, self.width
        return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)

    def weight_shape(self, layout: str = "OIHW") -> tuple:
        """The weights' shape: ``"OIHW"`` (ONNX, PyTorch: ``(O, C/groups, kH, kW)``), ``"OHWI"`` (TFLite
        CONV_2D, one group only) or ``"1HWO"`` (TFLite DEPTHWISE_CONV_2D)."""
        layout = V.as_choice(layout, "layout", ("OIHW", "OHWI", "1HWO"))
        o, cg, (kh, kw) = self.out_channels, self.in_channels // self.groups, self.kernel
        if layout == "OIHW":
            return (o, cg, kh, kw)
        if layout == "OHWI":
            if self.groups != 1:
                raise UnsupportedError(f"layout OHWI (TFLite CONV_2D) takes one group, this geometry has {self.groups}")
            return (o, kh, kw, cg)
        if not self.depthwise:
            raise UnsupportedError("layout 1HWO (TFLite DEPTHWISE_CONV_2D) needs groups == in_channels > 1, got "
                                   f"groups={self.groups}, in_channels={self.in_channels}")
        return (1, kh, kw, o)

    def onnx_attrs(self) -> dict:
        """``qlinear_conv`` / ``conv_integer`` keyword attributes."""
        return dict(group=self.groups, kernel_shape=list(self.kernel), strides=list(self.stride),
                    dilations=list(self.dilation), pads=[self.pads[0], self.pads[1], self.pads[2], self.pads[3]])

    def pytorch_args(self) -> dict:
        """``refquant.backends.pytorch.conv2d`` keywords (PyTorch pads both sides alike)."""
        t, left, b, r = self.pads
        if (t, left) != (b, r):
            raise UnsupportedError(f"PyTorch pads both sides alike; this geometry has pads {self.pads} "
                                   f"(draw with conv_geometries(padding='symmetric'))")
        return dict(stride=self.stride, padding=(t, left), dilation=self.dilation, groups=self.groups)

    def tflite_args(self) -> dict:
        """``refquant.backends.tflite.conv2d`` / ``depthwise_conv2d`` keywords (with ``depth_multiplier``
        when ``groups == in_channels > 1``)."""
        if self.padding is None:
            raise UnsupportedError("TFLite pads 'SAME' or 'VALID'; draw with conv_geometries(padding='same_valid')")
        args = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        if self.depthwise:
            args["depth_multiplier"] = self.out_channels // self.in_channels
        return args


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TFLite SAME: output $\\lceil n / s \\rceil$, total padding split with the extra pixel after."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def conv_geometries(*, padding: str = "explicit", max_channels: int = 6, max_size: int = 9, max_kernel: int = 3,
                    groups: bool = True) -> st.SearchStrategy:
    """:class:`ConvGeometry` records with at least one output pixel.

    Args:
        padding: ``"explicit"`` (each side 0-2, asymmetric allowed: ONNX), ``"symmetric"`` (PyTorch)
            or ``"same_valid"`` (TFLite ``"SAME"`` / ``"VALID"``; the pads are TFLite's).
        max_channels: Largest channel count per group.
        max_size: Largest input height and width (smallest: 1).
        max_kernel: Largest kernel height and width.
        groups: Draw grouped and depthwise convolutions too (``groups`` > 1); with ``"same_valid"``
            only depthwise ones (``groups == in_channels``, TFLite's DEPTHWISE_CONV_2D).
    """
    padding = V.as_choice(padding, "padding", PADDINGS)
    max_channels = V.as_positive_int(max_channels, "max_channels", maximum=256)
    max_size = V.as_positive_int(max_size, "max_size", maximum=1024)
    max_kernel = V.as_positive_int(max_kernel, "max_kernel", maximum=max_size)
    grouped = V.as_flag(groups, "groups", ints=False)

    @st.composite
    def draw(draw) -> ConvGeometry:
        pair = lambda hi: st.tuples(st.integers(1, hi), st.integers(1, hi))  # noqa: E731
        kernel, stride, dilation = draw(pair(max_kernel)), draw(pair(2)), draw(pair(2))
        eff = [dilation[i] * (kernel[i] - 1) + 1 for i in (0, 1)]
        depthwise = grouped and draw(st.sampled_from([False, False, True]))  # a third of them
        if depthwise:  # one input channel per group, 1 or 2 output channels each
            g = draw(st.integers(2, max(2, max_channels)))
            cin, cout = g, g * draw(st.integers(1, 2))
        else:
            g = 1 if padding == "same_valid" or not grouped else draw(st.sampled_from([1, 1, 2, 3]))
            cin, cout = g * draw(st.integers(1, max_channels)), g * draw(st.integers(1, max_channels))
        mode = None
        if padding == "same_valid":
            mode = draw(st.sampled_from(["SAME", "VALID"]))
            if mode == "VALID" and max(eff) > max_size:
                mode = "SAME"
            h = draw(st.integers(eff[0] if mode == "VALID" else 1, max_size))
            w = draw(st.integers(eff[1] if mode == "VALID" else 1, max_size))
            (t, b), (left, r) = ((0, 0), (0, 0)) if mode == "VALID" else (
                _same_pads(h, kernel[0], stride[0], dilation[0]), _same_pads(w, kernel[1], stride[1], dilation[1]))
        else:
            side = st.integers(0, 2)
            t, left = draw(side), draw(side)
            b, r = (t, left) if padding == "symmetric" else (draw(side), draw(side))
            h = draw(st.integers(max(1, eff[0] - t - b), max(max_size, eff[0] - t - b)))
            w = draw(st.integers(max(1, eff[1] - left - r), max(max_size, eff[1] - left - r)))
        return ConvGeometry(draw(st.integers(1, 2)), cin, cout, g, h, w, kernel, stride, dilation, (t, left, b, r),
                            mode)

    return draw()
