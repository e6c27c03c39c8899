"""A layer's inputs as the matrix its weights multiply, and the moments the rounding methods need.

A Linear computes $y = W x + b$ on each row of its ``(N, K)`` input; a Conv2d with $G$ groups
computes $Y_g = W_g\\, X_g$ per group, where $X_g \\in \\mathbb{R}^{K \\times M}$ holds one im2col
column per output position ($M = N H_o W_o$, rows in $(c, i, j)$ order: :func:`refquant.nn.conv.im2col`
on the zero-padded input). :func:`layer_columns` returns that ``(G, K, M)`` stack (``G = 1`` for a
Linear).

Every method here only needs averages over the $M$ columns. With $\\hat x$ a column of the
*quantized* model's input to the layer (earlier layers already rounded) and $x$ the *float*
model's, :class:`LayerMoments` keeps

$$ \\Sigma_{\\hat x \\hat x} = \\tfrac{1}{M}\\textstyle\\sum \\hat x \\hat x^\\top, \\quad
   \\Sigma_{\\hat x x} = \\tfrac{1}{M}\\textstyle\\sum \\hat x x^\\top, \\quad
   \\Sigma_{x x} = \\tfrac{1}{M}\\textstyle\\sum x x^\\top, \\quad
   \\mu_{\\hat x} = \\tfrac{1}{M}\\textstyle\\sum \\hat x, \\quad \\mu_x = \\tfrac{1}{M}\\textstyle\\sum x, \\tag{1} $$

so that the layer's output error on the calibration data, summed over output channels and averaged
over output positions (the reconstruction loss of AdaRound, BRECQ and AIMET), is a trace:

$$ R(\\hat W) = \\tfrac{1}{M}\\textstyle\\sum \\lVert \\hat W \\hat x - W x \\rVert^2
   = \\mathrm{tr}(\\hat W \\Sigma_{\\hat x \\hat x} \\hat W^\\top)
   - 2\\,\\mathrm{tr}(\\hat W \\Sigma_{\\hat x x} W^\\top)
   + \\mathrm{tr}(W \\Sigma_{x x} W^\\top). \\tag{2} $$

(The bias cancels.) A pass over the data costs one ``(K, M) @ (M, K)`` product per group; every
AdaRound iteration afterwards costs ``(O, K) @ (K, K)``, independent of the data's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _validate as V
from ...errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ...nn.conv import im2col, pad2d
from ...qmodel import Node
from .grid import check_layer_node

__all__ = ["LayerMoments", "layer_columns"]

_F64 = np.float64


def layer_columns(node: Node, x) -> np.ndarray:
    """The ``(G, K, M)`` float64 matrix the weights of ``node`` (``linear`` or ``conv2d``, NCHW)
    multiply, for the layer input ``x`` (float, ``(N, K)`` or ``(N, C, H, W)``, finite).

    Raises:
        QuantizationTypeError, QuantizationValueError: ``node`` not a linear / conv2d node; ``x`` not
            a finite float array. ShapeError: ``x`` not the layer's input shape.
    """
    w = check_layer_node(node, integer=False).params["weight"]
    x = V.as_float_array(x, "x")
    if not np.all(np.isfinite(x)):
        raise QuantizationValueError("x must be finite, got NaN or Inf")
    x = x.astype(_F64)
    groups = int(node.attrs.get("groups", 1)) if node.op == "conv2d" else 1
    want = (w.shape[1],) if node.op == "linear" else (w.shape[1] * groups, None, None)
    if x.ndim != len(want) + 1 or x.shape[0] == 0 or any(v is not None and v != d for v, d in zip(want, x.shape[1:],
                                                                                                  strict=True)):
        shape = ", ".join("?" if v is None else str(v) for v in want)
        raise ShapeError(f"x must be the {node.op} layer's input (N, {shape}) with N >= 1, got {x.shape}")
    if node.op == "linear":
        return x.T[None]  # (1, K, N)
    top, left, bottom, right = node.attrs.get("padding", (0, 0, 0, 0))
    xp = pad2d(x, (top, bottom, left, right))  # zero padding: the real value of the input zero point
    return im2col(xp, tuple(w.shape[2:]), tuple(node.attrs.get("stride", (1, 1))),
                  tuple(node.attrs.get("dilation", (1, 1))), int(node.attrs.get("groups", 1)))


@dataclass
class LayerMoments:
    """Eq. (1) for one group of one layer: float64 ``(K, K)`` second moments, ``(K,)`` means.

    Attributes:
        xx, xf, ff: $\\Sigma_{\\hat x \\hat x}$, $\\Sigma_{\\hat x x}$, $\\Sigma_{x x}$ (``None`` when only
            means were collected).
        mean_q, mean_f: $\\mu_{\\hat x}$, $\\mu_x$.
        count: $M$, the number of columns averaged.
    """

    xx: np.ndarray | None
    xf: np.ndarray | None
    ff: np.ndarray | None
    mean_q: np.ndarray
    mean_f: np.ndarray
    count: int

    def __post_init__(self):
        self.mean_q = _vector(self.mean_q, "mean_q")
        k = self.mean_q.shape[0]
        self.mean_f = _vector(self.mean_f, "mean_f", k)
        if not (self.xx is None and self.xf is None and self.ff is None):  # means only, or all three moments
            for name in ("xx", "xf", "ff"):
                setattr(self, name, _square(getattr(self, name), name, k))
        self.count = V.as_int_scalar(self.count, "count", lo=0)

    @classmethod
    def from_columns(cls, x_quant, x_float=None, *, second_order: bool = True) -> LayerMoments:
        """Eq. (1) from ``(K, M)`` columns of the quantized model's input and the float model's
        (``x_float=None``: the same as ``x_quant``, for a layer seen by one model only).

        Raises:
            ShapeError: Not ``(K, M)`` with ``M >= 1``, or the two shapes differ.
            QuantizationValueError: NaN or Inf.
        """
        xq = _columns(x_quant, "x_quant")
        xf = xq if x_float is None else _columns(x_float, "x_float")
        if xf.shape != xq.shape:
            raise ShapeError(f"x_float must have x_quant's shape {xq.shape}, got {xf.shape}")
        m = LayerMoments.zeros(xq.shape[0], second_order=second_order)
        m.add(xq, xf)
        return m.finish()

    @classmethod
    def zeros(cls, k: int, *, second_order: bool = True) -> LayerMoments:
        """Empty sums for ``k`` inputs, to :meth:`add` batches to and :meth:`finish`."""
        sq = (lambda: np.zeros((k, k), _F64)) if second_order else (lambda: None)
        return cls(sq(), sq(), sq(), np.zeros(k, _F64), np.zeros(k, _F64), 0)

    def add(self, xq: np.ndarray, xf: np.ndarray) -> None:
        """Add the sums of one batch of ``(K, M)`` float64 columns (call :meth:`finish` at the end)."""
        if self.xx is not None:
            self.xx += xq @ xq.T
            self.xf += xq @ xf.T
            self.ff += xf @ xf.T
        self.mean_q += xq.sum(axis=1)
        self.mean_f += xf.sum(axis=1)
        self.count += xq.shape[1]

    def finish(self) -> LayerMoments:
        """Sums → averages (in place; returns ``self``)."""
        for name in ("xx", "xf", "ff", "mean_q", "mean_f"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, v / self.count)
        return self

    def output_error(self, w_hat, w) -> float:
        """Eq. (2): $R(\\hat W)$ for ``(O, K)`` weights $\\hat W$ (used on $\\hat x$) and $W$ (on $x$)."""
        w_hat, w = np.asarray(w_hat, _F64), np.asarray(w, _F64)
        r = (np.einsum("ok,kl,ol->", w_hat, self.xx, w_hat) - 2 * np.einsum("ok,kl,ol->", w_hat, self.xf, w)
             + np.einsum("ok,kl,ol->", w, self.ff, w))
        return max(float(r), 0.0)  # >= 0 up to rounding


def _vector(v, name: str, k: int | None = None) -> np.ndarray:
    a = V.as_float_array(v, name, allow_int=True)
    if k is None and (a.ndim != 1 or a.shape[0] == 0):
        raise ShapeError(f"{name} must have shape (K,) with K >= 1, got {a.shape}")
    if k is not None and a.shape != (k,):
        raise ShapeError(f"{name} must have mean_q's shape ({k},), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise QuantizationValueError(f"{name} must be finite, got NaN or Inf")
    return a.astype(_F64)


def _square(v, name: str, k: int) -> np.ndarray:
    if v is None:
        raise QuantizationTypeError(f"{name} must be a ({k}, {k}) float array with the other second moments, "
                                    f"got None")
    a = V.as_float_array(v, name, allow_int=True)
    if a.shape != (k, k):
        raise ShapeError(f"{name} must have shape (K, K) = ({k}, {k}) (K from mean_q), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise QuantizationValueError(f"{name} must be finite, got NaN or Inf")
    return a.astype(_F64)


def _columns(x, name: str) -> np.ndarray:
    a = V.as_float_array(x, name)
    if a.ndim != 2 or a.shape[1] == 0 or a.shape[0] == 0:
        raise ShapeError(f"{name} must be (K, M) columns with K, M >= 1, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise QuantizationValueError(f"{name} must be finite, got NaN or Inf")
    return a.astype(_F64)
