r"""Convolution geometries as predicates (offline, integers only): the shapes that make a backend
pick another kernel, and the shapes some kernels mishandle.

Profiles name them (:data:`refquant.modes.CONV_GEOMETRIES`): ``conv_families`` (which layer spec
a convolution takes) and :class:`~refquant.specs.ConvDispatch` (``refused``, ``zero_accumulator``);
:func:`refquant.ops.layers.conv2d` asks :func:`matches` before it runs. Shapes are NCHW / OIHW;
``padding`` is ``(pad_h, pad_w)`` applied on both sides.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matches"]


def _out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _some_column_all_padding(n: int, k: int, s: int, p: int, d: int) -> bool:
    """Some output position along this axis has every tap in the padding."""
    return any(all(not 0 <= o * s - p + j * d < n for j in range(k)) for o in range(_out_size(n, k, s, p, d)))


def matches(name: str, x_shape, w_shape, stride, padding, dilation, groups: int, x_zero_point: int,
            w_zero_point=0) -> bool:
    """Whether a convolution has the geometry ``name`` (see :data:`refquant.modes.CONV_GEOMETRIES`).

    Args:
        name: A geometry name.
        x_shape: ``(N, C, H, W)``. w_shape: ``(O, C/groups, kH, kW)``.
        stride, padding, dilation: ``(h, w)`` pairs of ints.
        groups: The group count. x_zero_point: The input zero point.
        w_zero_point: The weight zero point(s), scalar or ``(O,)``.
    """
    _, c, _, w = x_shape
    o, cg, kh, kw = w_shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ow = _out_size(w, kw, sw, pw, dw)
    if name == "one_channel_groups":
        return cg == 1 and o // groups > 1 and dw == 1 and (kw > 1 or (kh > 1 and dh == 1 and ow > 4))
    if name == "padded_single_column":
        return ow == 1 and x_zero_point != 0 and _some_column_all_padding(w, kw, sw, pw, dw)
    if name == "strided_dilated_padded_column":
        return sw > 1 and dw > 1 and _some_column_all_padding(w, kw, sw, pw, dw)
    if name == "depthwise_kh1_row_padding":
        return (groups == c == o and cg == 1 and c % 16 == 0 and kh == 1 and (dh, dw) == (1, 1) and ph > 0
                and pw == 0 and x_zero_point != 0)
    if name == "depthwise_equal_weight_zero_points":
        wz = np.ravel(w_zero_point)
        return groups == c == o and bool(np.all(wz == wz[0]))
    if name == "depthwise_k3k5_c8_same_padding":
        return (groups == c and o in (c, 2 * c) and c % 8 == 0 and {sh, sw} <= {1, 2} and kh == kw
                and kh in (3, 5) and (dh, dw) == (1, 1) and ph == pw == (kh - 1) // 2)
    raise ValueError(f"unknown geometry {name!r}")
