"""`distill`: train a student on a teacher's soft targets and the labels (Hinton et al., 2015).

The teacher runs once, in evaluation mode, over the whole training set before training starts
(:func:`teacher_logits`); its logits then travel with the labels through
:func:`refquant.nn.fit` as ``y = (labels, teacher_logits)`` and are sliced with each mini-batch.
Once is enough because the teacher is fixed, deterministic in evaluation mode (BatchNorm uses its
running statistics, Dropout is off) and the inputs are not augmented: per-batch teacher calls
would compute the same numbers every epoch. It also means a teacher much larger than the student
costs one forward pass over the data, not one per epoch.

The teacher may be a :class:`refquant.nn.Module` or a :class:`refquant.qmodel.QuantizedModel`
(its ``run`` returns float32 logits): a deployed integer model can teach a smaller one.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError
from ..nn import History, Module, Optimizer, fit, predict
from ..qmodel import QuantizedModel
from .loss import DistillationLoss

__all__ = ["distill", "teacher_logits"]


def teacher_logits(teacher, x, *, batch_size: int = 256) -> np.ndarray:
    """The teacher's outputs for ``x``, in evaluation mode (its mode is restored after).

    Args:
        teacher: a :class:`refquant.nn.Module` or a :class:`~refquant.qmodel.QuantizedModel`.
        x: float32 inputs with the batch on axis 0.
        batch_size: rows per forward pass.

    Returns:
        (N, K) logits (float32 for a QuantizedModel; the Module's dtype otherwise).
    """
    batch_size = V.as_positive_int(batch_size, "batch_size")
    if isinstance(teacher, QuantizedModel):
        x = V.as_float_array(x, "x")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ShapeError(f"x must hold at least one example on axis 0, got shape {x.shape}")
        out = [teacher.run(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        if not all(isinstance(o, np.ndarray) for o in out):
            raise QuantizationTypeError("teacher must have one output (the logits), got a model with several")
        return np.concatenate(out, axis=0)
    if not isinstance(teacher, Module):
        raise QuantizationTypeError(f"teacher must be a refquant.nn Module or a QuantizedModel, "
                                    f"got {V.describe(teacher)}")
    return predict(teacher, x, batch_size=batch_size)


def check_student(student, x, t_logits: np.ndarray) -> None:
    """The student is a Module whose output for one example has the teacher's shape (N, K)."""
    if not isinstance(student, Module):
        raise QuantizationTypeError(f"student must be a refquant.nn Module, got {V.describe(student)}")
    if t_logits.ndim != 2:
        raise ShapeError(f"the teacher must output logits of shape (N, num_classes), got {t_logits.shape}")
    probe = predict(student, x[:1])
    if probe.shape[1:] != t_logits.shape[1:]:
        raise ShapeError(f"the student's output per example {probe.shape[1:]} must match the teacher's "
                         f"{t_logits.shape[1:]} (same number of classes)")


def as_labels(y, n: int, k: int) -> np.ndarray:
    """``y`` as (n,) integer class labels in [0, k)."""
    labels = V.asarray(y, "y", kinds=None, what="an integer label array")
    if labels.dtype.kind not in "iu":
        raise QuantizationTypeError(f"y must be integer class labels, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ShapeError(f"y must have shape ({n},) to match x, got {labels.shape}")
    bad = V.first_outside(labels, 0, k - 1)
    if bad is not None:
        raise QuantizationValueError(f"y must hold class labels in [0, {k - 1}] for the teacher's {k} outputs, "
                                     f"got {bad}")
    return labels


def distill(student: Module, teacher, x, y, *, temperature: float = 4.0, alpha: float = 0.9, epochs: int = 10,
            batch_size: int = 64, optimizer: Optimizer | None = None, scheduler=None, validation_data=None,
            seed: int = 0, progress: bool = False) -> History:
    """Train ``student`` in place on ``(x, y)`` with the distillation loss, eq. (2) of
    :mod:`refquant.distill.loss`; leave it in evaluation mode.

    Args:
        student: the :class:`refquant.nn.Module` to train (its output (N, K) logits).
        teacher: a trained Module or QuantizedModel with the same K outputs; never updated.
        x: float32 training inputs (N, ...).
        y: (N,) integer labels.
        temperature: $T > 0$.
        alpha: weight of the soft targets, in [0, 1].
        epochs, batch_size, optimizer, scheduler, validation_data, seed, progress: as
            :func:`refquant.nn.fit` (default optimizer ``Adam(student, lr=1e-3)``).

    Returns:
        The :class:`refquant.nn.History` of ``fit`` (``val_*`` on ``validation_data``, hard labels).

    Raises:
        QuantizationValueError: ``temperature <= 0``, ``alpha`` outside [0, 1], bad data.
        ShapeError: teacher and student outputs of different shapes; ``y`` not (N,).
        QuantizationTypeError: ``student`` or ``teacher`` of the wrong type.

    Example:
        >>> from refquant import models
        >>> from refquant.data import load_digits
        >>> x, y = load_digits("train")
        >>> student = models.build_mlp(rng=0)
        >>> hist = distill(student, models.load_reference_model("cnn"), x, y, epochs=1)
        >>> len(hist.train_loss)
        1
    """
    loss = DistillationLoss(temperature, alpha)  # checks temperature and alpha first
    t_logits = teacher_logits(teacher, x)
    check_student(student, x, t_logits)
    labels = as_labels(y, *t_logits.shape)
    try:
        return fit(student, x, (labels, t_logits), epochs=epochs, batch_size=batch_size, loss=loss,
                   optimizer=optimizer, scheduler=scheduler, validation_data=validation_data, seed=seed,
                   progress=progress)
    except TrainingDivergedError as err:  # name the distillation settings too: they scale the loss
        raise TrainingDivergedError(f"{err} (distilling with temperature={loss.temperature:g}, "
                                    f"alpha={loss.alpha:g})") from None
