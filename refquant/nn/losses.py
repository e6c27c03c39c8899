"""Losses: softmax cross-entropy from logits, mean squared error, distillation KL.

A loss is called as ``value = loss(output, target)`` (a Python float) and
``loss.backward()`` then returns $\\partial L/\\partial \\mathrm{output}$ in the output's
dtype, ready for ``model.backward``.

All softmaxes subtract the row maximum first, $\\log\\mathrm{softmax}(z)_k = z_k - m -
\\log\\sum_j e^{z_j - m}$ with $m = \\max_j z_j$, so no exponential overflows.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._checks import as_flag, as_positive_float, as_probability

__all__ = ["log_softmax", "softmax", "Loss", "CrossEntropyLoss", "MSELoss", "DistillationKLLoss"]


def _scores(z, axis):
    """``z`` as a float array (integers and bools as float64, so that ``z - max`` cannot wrap) and
    ``axis`` normalized; NaN/Inf pass through as data."""
    a = V.asarray(z, "z", kinds=None, what="a real array")
    if a.dtype.kind in "iub":
        a = a.astype(np.float64)
    elif a.dtype.kind != "f":
        raise QuantizationTypeError(f"z must be a real array, got dtype {a.dtype}")
    return a, V.normalize_axis(axis, max(a.ndim, 1))


def _row_max(z, axis):
    return z.max(axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty row is fine


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """$z_k - \\max z - \\log \\sum_j e^{z_j - \\max z}$ along ``axis`` (float dtypes kept; integer
    input computed in float64)."""
    z, axis = _scores(z, axis)
    if z.ndim == 0:
        return np.zeros_like(z)  # one element: log 1
    zs = z - _row_max(z, axis)
    return zs - np.log(np.exp(zs).sum(axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """$e^{z_k - \\max z} / \\sum_j e^{z_j - \\max z}$ along ``axis`` (float dtypes kept; integer
    input computed in float64)."""
    z, axis = _scores(z, axis)
    if z.ndim == 0:
        return np.ones_like(z)
    e = np.exp(z - _row_max(z, axis))
    return e / e.sum(axis=axis, keepdims=True)


def _logits(z, name: str = "logits") -> np.ndarray:
    a = V.asarray(z, name, kinds=None, what="a float array")
    if a.dtype.kind != "f":
        raise QuantizationTypeError(f"{name} must be a float array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ShapeError(f"{name} must have shape (N, num_classes), got {a.shape}")
    return a


def _check_batch(n: int, reduction: str, name: str, shape) -> None:
    """A mean over no element is undefined (0/0): refuse it rather than return NaN."""
    if n == 0 and reduction == "mean":
        raise ShapeError(f"{name} must hold at least one element for reduction='mean' (a mean over an empty "
                         f"batch is 0/0), got shape {shape}")


class Loss:
    """Base class: ``__call__(output, target) -> float`` caches, ``backward() -> grad``."""

    def __init__(self):
        self._grad = None

    def __call__(self, output, target) -> float:
        value, self._grad = self.forward(output, target)
        return value

    def forward(self, output, target):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """$\\partial L/\\partial \\mathrm{output}$ of the last call."""
        if self._grad is None:
            raise QuantizationValueError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._grad


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy from logits (``torch.nn.CrossEntropyLoss``).

    With $p = \\mathrm{softmax}(z_n)$ and target distribution $q$ (one-hot of $y_n$, or
    $(1-\\varepsilon)\\,\\mathrm{onehot} + \\varepsilon/K$ with label smoothing $\\varepsilon$):

    $$ L = \\frac{1}{N}\\sum_n -\\sum_k q_{n,k} \\log p_{n,k}, \\qquad
       \\frac{\\partial L}{\\partial z_{n,k}} = \\frac{p_{n,k} - q_{n,k}}{N}. $$

    Args:
        reduction: ``"mean"`` (divide by $N$) or ``"sum"``.
        label_smoothing: $\\varepsilon \\in [0, 1)$.

    Call: ``loss(logits, labels)`` with ``logits`` (N, K) float and ``labels`` (N,)
    integers in $[0, K)$.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        self.reduction = V.as_choice(reduction, "reduction", ("mean", "sum"))
        self.label_smoothing = as_probability(label_smoothing, "label_smoothing")

    def forward(self, logits, labels):
        z = _logits(logits)
        y = V.asarray(labels, "labels", kinds=None, what="an integer array of class indices")
        if y.dtype.kind not in "iu":
            raise QuantizationTypeError(f"labels must be an integer array of class indices, got dtype {y.dtype}")
        if y.shape != (z.shape[0],):
            raise ShapeError(f"labels must have shape ({z.shape[0]},) to match logits {z.shape}, got {y.shape}")
        n, k = z.shape
        _check_batch(n, self.reduction, "logits", z.shape)
        bad = V.first_outside(y, 0, k - 1)
        if bad is not None:
            raise QuantizationValueError(f"labels must be in [0, {k - 1}] for {k} classes, got {bad}")
        logp = log_softmax(z)
        q = np.zeros_like(z)
        q[np.arange(n), y] = 1.0
        if self.label_smoothing:
            q = q * (1 - self.label_smoothing) + self.label_smoothing / k
        total = -float((q * logp).sum(dtype=np.float64))
        grad = np.exp(logp) - q
        if self.reduction == "mean":
            return total / n, grad / z.dtype.type(n)
        return total, grad


class MSELoss(Loss):
    """Mean squared error $L = \\frac{1}{P}\\sum_i (o_i - t_i)^2$ over all $P$ elements
    (``torch.nn.MSELoss``); $\\partial L/\\partial o = 2(o - t)/P$. ``reduction="sum"`` drops $1/P$."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = V.as_choice(reduction, "reduction", ("mean", "sum"))

    def forward(self, output, target):
        o = V.asarray(output, "output", kinds=None, what="a float array")
        t = V.asarray(target, "target", kinds=None, what="a real array")
        if o.dtype.kind != "f":
            raise QuantizationTypeError(f"output must be a float array, got dtype {o.dtype}")
        if t.dtype.kind not in "iuf":
            raise QuantizationTypeError(f"target must be a real array, got dtype {t.dtype}")
        if o.shape != t.shape:
            raise ShapeError(f"target must have the output's shape {o.shape}, got {t.shape}")
        _check_batch(o.size, self.reduction, "output", o.shape)
        d = o - t.astype(o.dtype)
        total = float((d * d).sum(dtype=np.float64))
        if self.reduction == "mean":
            return total / d.size, (2.0 / d.size) * d
        return total, 2.0 * d


class DistillationKLLoss(Loss):
    """Knowledge-distillation loss (Hinton et al., 2015): KL from the teacher's softened
    distribution to the student's, at temperature $T$, averaged over the batch.

    $$ p = \\mathrm{softmax}(z_t/T), \\quad q = \\mathrm{softmax}(z_s/T), \\quad
       L = \\frac{T^2}{N} \\sum_n \\sum_k p_{n,k} (\\log p_{n,k} - \\log q_{n,k}), $$

    $$ \\frac{\\partial L}{\\partial z_s} = \\frac{T}{N}(q - p). $$

    **The $T^2$ convention.** The factor $T^2$ (``scale_by_t2=True``, the default) keeps
    the gradient's magnitude roughly independent of $T$ (the soft-target gradients scale
    as $1/T^2$), so it can be mixed with a hard-label cross-entropy as
    $\\alpha L_{KD} + (1-\\alpha) L_{CE}$ without retuning. This equals PyTorch's
    ``F.kl_div(F.log_softmax(zs/T, 1), F.softmax(zt/T, 1), reduction="batchmean") * T**2``.
    With ``scale_by_t2=False`` the loss is the plain batch-mean KL.

    Call: ``loss(student_logits, teacher_logits)``, both (N, K). The teacher gets no gradient.

    Args:
        temperature: $T > 0$ (default 4).
        scale_by_t2: multiply by $T^2$ (default True).
    """

    def __init__(self, temperature: float = 4.0, scale_by_t2: bool = True):
        super().__init__()
        self.temperature = as_positive_float(temperature, "temperature")
        self.scale_by_t2 = as_flag(scale_by_t2, "scale_by_t2")

    def forward(self, student_logits, teacher_logits):
        zs = _logits(student_logits, "student_logits")
        zt = _logits(teacher_logits, "teacher_logits")
        if zs.shape != zt.shape:
            raise ShapeError(f"teacher_logits must have the student's shape {zs.shape}, got {zt.shape}")
        t = self.temperature
        n = zs.shape[0]
        _check_batch(n, "mean", "student_logits", zs.shape)
        logq = log_softmax(zs / zs.dtype.type(t))
        logp = log_softmax(zt.astype(zs.dtype) / zs.dtype.type(t))
        p = np.exp(logp)
        scale = t * t if self.scale_by_t2 else 1.0
        kl = float((p * (logp - logq)).sum(dtype=np.float64))
        grad = (np.exp(logq) - p) * zs.dtype.type(scale / (t * n))
        return scale * kl / n, grad
