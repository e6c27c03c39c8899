"""Validation and normalisation of convolution arguments (internal to :mod:`.conv`).

Everything is checked here, before any kernel runs; the kernels then see NCHW input,
OIHW weights, and explicit (top, left, bottom, right) pads.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ._checks import check_acc_model, check_on_overflow, check_operand, check_zero_point

_W_LAYOUTS = {"NCHW": ("OIHW",), "NHWC": ("OHWI", "1HWO")}
_GEOMETRY_MAX = 2 ** 31 - 1  # strides, dilations and pads: C ints in TFLite, and far past any image
_PAD_MODES = ("VALID", "SAME", "SAME_UPPER", "SAME_LOWER")


@dataclass(frozen=True)
class ConvParams:
    strides: tuple
    dilations: tuple
    pads: tuple  # (top, left, bottom, right)
    groups: int
    out_hw: tuple
    model: str
    k_order: str
    on_overflow: str
    layout: str

    def to_layout(self, out_nchw: np.ndarray) -> np.ndarray:
        """Return the (N, O, OH, OW) result in the caller's layout."""
        if self.layout == "NHWC":
            return np.ascontiguousarray(out_nchw.transpose(0, 2, 3, 1))
        return out_nchw


def _int_pair(v, name):
    """An int >= 1 or a pair of them -> (h, w)."""
    seq = (v, v) if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) else v
    if isinstance(seq, (str, bytes, dict)):
        raise QuantizationTypeError(f"{name} must be an int or a pair of ints, got {V.describe(v)}")
    try:
        items = tuple(seq)
    except TypeError:
        raise QuantizationTypeError(f"{name} must be an int or a pair of ints, got {V.describe(v)}") from None
    if len(items) != 2:
        raise QuantizationValueError(f"{name} must be an int or a pair of ints (h, w), got {V.describe(v)}")
    for it in items:
        if isinstance(it, (bool, np.bool_)) or not isinstance(it, (numbers.Integral, np.integer)):
            raise QuantizationTypeError(f"{name} must contain ints, got {V.describe(v)}")
        if it < 1:
            raise QuantizationValueError(f"{name} must be >= 1, got {V.describe(v)}")
        if it > _GEOMETRY_MAX:
            raise QuantizationValueError(f"{name} must be <= 2^31 - 1, got {V.describe(v)}")
    return int(items[0]), int(items[1])


def same_pads(size: int, kernel: int, stride: int, dilation: int, mode: str) -> tuple[int, int]:
    """(begin, end) pads of ``SAME_UPPER``/``SAME_LOWER``: output size ``ceil(size / stride)``.

    Total pad $= \\max((\\lceil n/s \\rceil - 1) s + d (k - 1) + 1 - n, 0)$; ``SAME_UPPER`` (TFLite
    ``SAME``, ONNX ``auto_pad``) puts the odd pixel at the end, ``SAME_LOWER`` at the beginning.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if mode in ("SAME", "SAME_UPPER") else (big, small)


def _pads(pads, hw, kernel, strides, dilations):
    if isinstance(pads, (bytes, dict)):
        raise QuantizationTypeError(f"pads must be an int, a sequence of ints or a mode name, got {V.describe(pads)}")
    if isinstance(pads, str):
        mode = pads.upper()
        if mode not in _PAD_MODES:
            raise QuantizationValueError(f"pads must be one of {_PAD_MODES} or ints, got {pads!r}")
        if mode == "VALID":
            return (0, 0, 0, 0)
        (t, b), (l, r) = (same_pads(hw[a], kernel[a], strides[a], dilations[a], mode) for a in (0, 1))
        return (t, l, b, r)
    seq = (pads,) * 4 if isinstance(pads, (numbers.Integral, np.integer)) and not isinstance(pads, bool) else pads
    try:
        items = tuple(seq)
    except TypeError:
        raise QuantizationTypeError(
            f"pads must be an int, a sequence of ints or a mode name, got {V.describe(pads)}") from None
    if len(items) == 2:
        items = (items[0], items[1], items[0], items[1])
    if len(items) != 4:
        raise QuantizationValueError(
            f"pads must have 1, 2 (h, w) or 4 (top, left, bottom, right) values, got {V.describe(pads)}")
    for it in items:
        if isinstance(it, (bool, np.bool_)) or not isinstance(it, (numbers.Integral, np.integer)):
            raise QuantizationTypeError(f"pads must contain ints, got {V.describe(pads)}")
        if it < 0:
            raise QuantizationValueError(f"pads must be >= 0, got {V.describe(pads)}")
        if it > _GEOMETRY_MAX:
            raise QuantizationValueError(f"pads must be <= 2^31 - 1, got {V.describe(pads)}")
    return tuple(int(i) for i in items)


def conv_args(x, w, x_zero_point, w_zero_point, strides, dilations, pads, groups, layout, w_layout,
              acc_model, k_order, on_overflow):
    """Validate; return ``(x_nchw, w_oihw, xz, wz, ConvParams)`` (zero points as int64 arrays)."""
    layout = V.as_choice(layout, "layout", tuple(_W_LAYOUTS))
    w_layout = _W_LAYOUTS[layout][0] if w_layout is None else w_layout
    if not isinstance(w_layout, str) or w_layout not in _W_LAYOUTS[layout]:
        raise QuantizationValueError(
            f"w_layout must be one of {_W_LAYOUTS[layout]} for layout={layout!r}, got {V.describe(w_layout)}")
    x = check_operand(x, "x", 4)
    w = check_operand(w, "w", 4)
    if layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    C = x.shape[1]
    if w_layout == "OHWI":
        w = w.transpose(0, 3, 1, 2)
    elif w_layout == "1HWO":
        if w.shape[0] != 1:
            raise ShapeError(f"w in '1HWO' layout must have shape (1, kH, kW, O), got {w.shape}")
        w = w.transpose(3, 0, 1, 2)
        if groups is not None and (isinstance(groups, (bool, np.bool_)) or
                                   not isinstance(groups, (numbers.Integral, np.integer)) or groups != C):
            raise QuantizationValueError(
                f"groups must be C = {C} for w_layout='1HWO' (depthwise), got {V.describe(groups)}")
        groups = C
    groups = 1 if groups is None else groups
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"groups must be an int, got {V.describe(groups)}")
    groups = int(groups)
    if groups < 1:
        raise QuantizationValueError(f"groups must be >= 1, got {groups}")
    O, Cg, kh, kw = w.shape
    if C % groups:
        raise ShapeError(f"input channels C = {C} must be divisible by groups = {groups}")
    if O % groups:
        raise ShapeError(f"output channels O = {O} must be divisible by groups = {groups}")
    if Cg != C // groups:
        raise ShapeError(f"w must have C / groups = {C // groups} input channels per group, got {Cg} (w {w.shape})")
    if kh < 1 or kw < 1:
        raise ShapeError(f"kernel must be at least 1x1, got {kh}x{kw}")
    st = _int_pair(strides, "strides")
    dl = _int_pair(dilations, "dilations")
    H, W = x.shape[2], x.shape[3]
    pd = _pads(pads, (H, W), (kh, kw), st, dl)
    eff_h, eff_w = dl[0] * (kh - 1) + 1, dl[1] * (kw - 1) + 1
    if eff_h > H + pd[0] + pd[2] or eff_w > W + pd[1] + pd[3]:
        raise ShapeError(f"dilated kernel {eff_h}x{eff_w} (w's {kh}x{kw} with dilations {dl}) is larger than the "
                         f"padded input {H + pd[0] + pd[2]}x{W + pd[1] + pd[3]} (x padded by pads {pd})")
    out_hw = ((H + pd[0] + pd[2] - eff_h) // st[0] + 1, (W + pd[1] + pd[3] - eff_w) // st[1] + 1)
    V.check_allocation(x.shape[0] * O * out_hw[0] * out_hw[1], 8, "the output N * O * OH * OW (from x, w and pads)")
    V.check_allocation(C * (H + pd[0] + pd[2]) * (W + pd[1] + pd[3]), 8, "the padded image C * (H + pads) * (W + pads)")
    xz = check_zero_point(x_zero_point, x.dtype, "x_zero_point")
    wz = check_zero_point(w_zero_point, w.dtype, "w_zero_point", O, "one per output channel, O")
    model = check_acc_model(acc_model, x.dtype, w.dtype, names=("x", "w"))
    V.as_choice(k_order, "k_order", ("chw", "hwc"))
    if Cg * kh * kw >= 2**24:
        raise UnsupportedError(f"C/groups·kH·kW must be < 2^24, got {Cg * kh * kw}")
    params = ConvParams(st, dl, pd, groups, out_hw, model, k_order, check_on_overflow(on_overflow), layout)
    return x, w, xz, wz, params
