"""The knowledge-distillation loss (Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in
a Neural Network"): soft targets from the teacher plus the hard labels.

With student logits $z_s$, teacher logits $z_t$, labels $y$, temperature $T > 0$ and weight
$\\alpha \\in [0, 1]$, over a batch of $N$ rows:

$$ p = \\mathrm{softmax}(z_t / T), \\qquad q = \\mathrm{softmax}(z_s / T), \\tag{1} $$

$$ L = \\alpha\\, T^2\\, \\frac{1}{N}\\sum_n \\mathrm{KL}(p_n \\,\\|\\, q_n)
      + (1 - \\alpha)\\, \\frac{1}{N}\\sum_n -\\log \\mathrm{softmax}(z_{s,n})_{y_n}, \\tag{2} $$

$$ \\frac{\\partial L}{\\partial z_s} = \\frac{\\alpha T}{N}(q - p)
      + \\frac{1 - \\alpha}{N}\\big(\\mathrm{softmax}(z_s) - \\mathrm{onehot}(y)\\big). \\tag{3} $$

**Why $T^2$.** For $T$ large against the logits, $q - p \\approx (z_s - z_t)/(KT)$ (zero-mean
logits, $K$ classes), so the soft term of eq. (3) is $\\approx \\alpha (z_s - z_t)/(NK)$ whatever
$T$ is. Without the $T^2$ of eq. (2) it would shrink as $1/T^2$ and $\\alpha$ would have to be
retuned for every $T$. The soft term is :class:`refquant.nn.DistillationKLLoss` (which equals
PyTorch's ``kl_div(log_softmax(zs/T), softmax(zt/T), reduction="batchmean") * T**2``), the hard
term :class:`refquant.nn.CrossEntropyLoss`.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..nn import CrossEntropyLoss, DistillationKLLoss, Loss

__all__ = ["distillation_loss", "DistillationLoss"]


_F32_MAX = float(np.finfo(np.float32).max)


def as_temperature(temperature) -> float:
    """``temperature`` as a finite float > 0 whose $T^2$ and $1/T$ are finite in float32 (a named
    error otherwise: beyond, the softened logits or the $T^2$ factor overflow)."""
    t = V.as_real_scalar(temperature, "temperature", finite=False)
    if not np.isfinite(t) or t <= 0:
        raise QuantizationValueError(f"temperature must be finite and > 0, got {t}")
    if t * t > _F32_MAX or 1.0 / t > _F32_MAX:
        raise QuantizationValueError(f"temperature must be in [{1 / _F32_MAX:.3g}, {_F32_MAX ** 0.5:.3g}] "
                                     f"(T^2 and 1/T finite in float32), got {t}")
    return t


def as_alpha(alpha) -> float:
    """``alpha`` as a float in [0, 1] (the weight of the soft-target term)."""
    a = V.as_real_scalar(alpha, "alpha", finite=False)
    if not 0.0 <= a <= 1.0:  # NaN fails too
        raise QuantizationValueError(f"alpha must be in [0, 1] (the soft-target weight), got {a}")
    return a


class DistillationLoss(Loss):
    """Eq. (2) as a :class:`refquant.nn.Loss`, for :func:`refquant.nn.fit`.

    Call: ``loss(student_logits, (labels, teacher_logits))`` — the target is the tuple
    ``fit`` slices when given ``y=(labels, teacher_logits)``; ``student_logits`` and
    ``teacher_logits`` are (N, K) float, ``labels`` (N,) integers in $[0, K)$.
    ``backward()`` returns eq. (3) in the student logits' dtype.

    Args:
        temperature: $T > 0$ (default 4, as in many KD recipes for small image models).
        alpha: $\\alpha \\in [0, 1]$, the weight of the soft-target term (default 0.9).

    Raises:
        QuantizationValueError: ``temperature <= 0`` or ``alpha`` outside [0, 1].
        ShapeError: teacher and student logits of different shapes (on call).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9):
        super().__init__()
        self.temperature = as_temperature(temperature)
        self.alpha = as_alpha(alpha)
        self._soft = DistillationKLLoss(self.temperature)  # alpha T^2 KL: eq. (2), first term
        self._hard = CrossEntropyLoss()

    def forward(self, output, target):
        if not (isinstance(target, tuple) and len(target) == 2):
            raise QuantizationTypeError(f"target must be the pair (labels, teacher_logits), got "
                                        f"{V.describe(target)}")
        labels, teacher_logits = target
        zs = V.asarray(output, "student_logits", kinds=None, what="a float array")
        zt = V.asarray(teacher_logits, "teacher_logits", kinds=None, what="a float array")
        if zs.shape != zt.shape:
            raise ShapeError(f"teacher_logits must have student_logits' shape {zs.shape} (same batch and "
                             f"number of classes), got {zt.shape}")
        soft = self._soft(zs, zt)
        hard = self._hard(zs, labels)
        a = self.alpha
        grad = a * self._soft.backward() + (1.0 - a) * self._hard.backward()  # eq. (3)
        return a * soft + (1.0 - a) * hard, grad.astype(zs.dtype, copy=False)


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float = 4.0,
                      alpha: float = 0.9) -> tuple[float, np.ndarray]:
    """Eq. (2) and its gradient eq. (3), as one call.

    Args:
        student_logits: (N, K) float32 or float64.
        teacher_logits: (N, K) float (no gradient flows to the teacher).
        labels: (N,) integer class indices in $[0, K)$.
        temperature: $T > 0$.
        alpha: $\\alpha \\in [0, 1]$; 1 is pure soft targets, 0 plain cross-entropy.

    Returns:
        ``(loss, grad)``: the batch-mean loss (a Python float) and
        $\\partial L/\\partial z_s$, (N, K) in the student logits' dtype.

    Raises:
        QuantizationValueError: ``temperature <= 0``, ``alpha`` outside [0, 1], labels out of range.
        ShapeError: ``teacher_logits`` and ``student_logits`` of different shapes, or labels
            that are not (N,).

    Example:
        >>> import numpy as np
        >>> zs = np.array([[2.0, 0.0]]); zt = np.array([[0.0, 2.0]])
        >>> value, grad = distillation_loss(zs, zt, np.array([0]), temperature=1.0, alpha=0.0)
        >>> round(value, 4)  # alpha=0: cross-entropy of the student only
        0.1269
    """
    loss = DistillationLoss(temperature, alpha)
    value = loss(student_logits, (labels, teacher_logits))
    return value, loss.backward()
