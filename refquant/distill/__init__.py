"""Knowledge distillation: train a small student from a large teacher's soft targets.

::

    from refquant import distill, models
    teacher = models.load_reference_model("cnn")
    hist = distill.distill(student, teacher, x_train, y_train, temperature=4.0, alpha=0.9, epochs=15)

* :mod:`refquant.distill.loss` — :func:`~refquant.distill.loss.distillation_loss` and
  :class:`~refquant.distill.loss.DistillationLoss` (Hinton et al., 2015): soft targets at
  temperature $T$, scaled by $T^2$, plus the hard labels;
* :mod:`refquant.distill.kd` — :func:`~refquant.distill.kd.distill`: the teacher's logits computed
  once, then :func:`refquant.nn.fit` with that loss;
* :mod:`refquant.distill.hints` — :func:`~refquant.distill.hints.hint_distill` (FitNets, Romero et
  al., 2015): also match an intermediate feature map through a learned 1×1 conv adapter.

Measured on the digits (teacher: the bundled cnn): ``benchmarks/distill_results.py``.
"""

from __future__ import annotations

from .hints import hint_distill
from .kd import distill, teacher_logits
from .loss import DistillationLoss, distillation_loss

__all__ = ["distillation_loss", "DistillationLoss", "distill", "teacher_logits", "hint_distill"]
