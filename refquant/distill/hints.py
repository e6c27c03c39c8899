"""`hint_distill`: distillation plus a hint on an intermediate feature map (FitNets: Romero et al.,
2015, "FitNets: Hints for Thin Deep Nets").

A *hint* is the output of a teacher layer; the student's *guided* layer is asked to predict it
through a learned adapter $r$ (a 1×1 :class:`refquant.nn.Conv2d`, or a :class:`refquant.nn.Linear`
for (N, C) features), because the two layers usually have different channel counts:

$$ L = L_{KD}(z_s, z_t, y) + \\beta\\, \\frac{1}{P}\\big\\| r(f_s) - f_t \\big\\|_2^2, \\tag{1} $$

$L_{KD}$ eq. (2) of :mod:`refquant.distill.loss`, $f_s$ the guided layer's output, $f_t$ the hint,
$P$ the number of elements, $\\beta$ ``hint_weight``. FitNets trains the hint first and the KD
loss after (two stages); here both terms are summed in one stage, which is simpler and, on small
models, works as well.

How the features are reached: forward hooks (:meth:`refquant.nn.Module.register_forward_hook`)
on the named modules capture $f_t$ (once, with the teacher's logits, in evaluation mode) and
$f_s$ (every batch). refquant.nn has no backward hooks, so the gradient of the hint term is added
at the guided layer by wrapping that layer's ``backward`` for the duration of training — a
pragmatic shortcut, undone when ``hint_distill`` returns (also on error).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError
from ..nn import Adam, Conv2d, History, Linear, Loss, Module, MSELoss, Optimizer, fit, predict
from ..nn.init import as_seed
from .kd import as_labels, check_student
from .loss import DistillationLoss

__all__ = ["hint_distill"]


def named_layer(model: Module, name, arg: str) -> Module:
    """The submodule of ``model`` called ``name`` (a dotted name of ``model.named_modules()``)."""
    if not isinstance(name, str):
        raise QuantizationTypeError(f"{arg} must be a module name (str), got {V.describe(name)}")
    layers = dict(model.named_modules())
    if name not in layers or name == "":
        names = [n for n in layers if n]
        shown = names if len(names) <= 20 else names[:20] + ["..."]
        raise QuantizationValueError(f"{arg} must name a layer of the model (one of {shown}), got {name!r}")
    return layers[name]


class _Capture:
    """A forward hook that keeps the hooked module's outputs (``keep_all``: every call's, else the last)."""

    def __init__(self, keep_all: bool = False):
        self.keep_all, self.outputs, self.last, self.pending = keep_all, [], None, None

    def __call__(self, module, inputs, output):
        if self.keep_all:
            self.outputs.append(output)
        self.last = output


def _teacher_pass(teacher: Module, layer: Module, x) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's logits and hint feature for every row of ``x`` (evaluation mode)."""
    cap = _Capture(keep_all=True)
    with layer.register_forward_hook(cap):
        logits = predict(teacher, x)
    return logits, np.concatenate(cap.outputs, axis=0)


def _adapter(f_s: np.ndarray, f_t: np.ndarray, adapter, seed: int) -> Module:
    """The given adapter (checked on one example) or a new 1×1 conv / linear from ``f_s``'s channels to ``f_t``'s."""
    if f_s.ndim != f_t.ndim or f_s.ndim not in (2, 4) or f_s.shape[2:] != f_t.shape[2:]:
        raise ShapeError(f"the student feature {f_s.shape[1:]} and the teacher feature {f_t.shape[1:]} (per example) "
                         f"must both be (C, H, W) with the same H, W, or both (C,)")
    if adapter is None:
        cs, ct = f_s.shape[1], f_t.shape[1]
        adapter = Conv2d(cs, ct, 1, rng=seed) if f_s.ndim == 4 else Linear(cs, ct, rng=seed)
    elif not isinstance(adapter, Module):
        raise QuantizationTypeError(f"adapter must be a refquant.nn Module or None, got {V.describe(adapter)}")
    probe = predict(adapter, f_s[:1])
    if probe.shape[1:] != f_t.shape[1:]:
        raise ShapeError(f"adapter must map the student feature {f_s.shape[1:]} to the teacher's {f_t.shape[1:]}, "
                         f"got {probe.shape[1:]}")
    return adapter


class _Guided(Module):
    """The student and the adapter as one model for ``fit`` (so one optimizer updates both)."""

    def __init__(self, student: Module, adapter: Module):
        super().__init__()
        self.student, self.adapter = student, adapter

    def forward(self, x):
        return self.student(x)

    def backward(self, grad_out):
        return self.student.backward(grad_out)


class _HintLoss(Loss):
    """Eq. (1): KD on the logits plus $\\beta$ MSE on the captured feature; the feature's gradient is
    left in ``tap.pending`` for the guided layer's backward."""

    def __init__(self, kd: DistillationLoss, adapter: Module, tap: _Capture, weight: float):
        super().__init__()
        self.kd, self.adapter, self.tap, self.weight, self.mse = kd, adapter, tap, weight, MSELoss()

    def forward(self, output, target):
        labels, t_logits, t_feat = target
        kd = self.kd(output, (labels, t_logits))
        hint = self.mse(self.adapter(self.tap.last), t_feat)
        g_adapter = self.mse.backward() * np.float32(self.weight)
        self.tap.pending = self.adapter.backward(g_adapter)  # also accumulates the adapter's gradients
        return kd + self.weight * hint, self.kd.backward()


def hint_distill(student: Module, teacher: Module, x, y, *, student_layer: str, teacher_layer: str,
                 hint_weight: float = 1.0, temperature: float = 4.0, alpha: float = 0.9, adapter: Module | None = None,
                 epochs: int = 10, batch_size: int = 64, optimizer: Optimizer | None = None, scheduler=None,
                 validation_data=None, seed: int = 0, progress: bool = False) -> tuple[History, Module]:
    """Train ``student`` in place with eq. (1): KD loss plus a hint on ``student_layer``.

    Args:
        student: the :class:`refquant.nn.Module` to train.
        teacher: a trained :class:`refquant.nn.Module` (never updated), same number of outputs.
        x, y: float32 inputs (N, ...) and (N,) integer labels.
        student_layer: the guided layer, a name from ``student.named_modules()`` (``"5"``).
        teacher_layer: the hint layer, a name from ``teacher.named_modules()``; its output must have
            the student feature's spatial size (channels may differ).
        hint_weight: $\\beta \\ge 0$.
        temperature, alpha: as :func:`refquant.distill.distill`.
        adapter: the regressor $r$; default a new ``Conv2d(C_s, C_t, 1)`` (or ``Linear`` for (N, C)
            features) seeded with ``seed``.
        epochs, batch_size, scheduler, validation_data, seed, progress: as :func:`refquant.nn.fit`.
        optimizer: an Optimizer over the student; the adapter's parameters are added to it.
            Default ``Adam(lr=1e-3)`` over both.

    Returns:
        ``(history, adapter)``: the :class:`refquant.nn.History` (``train_loss`` is eq. (1)) and the
        trained adapter (only needed for training; the student runs without it).

    Raises:
        QuantizationValueError: a layer name that is not in its model; ``temperature <= 0``,
            ``alpha`` outside [0, 1], ``hint_weight < 0``.
        ShapeError: features of different spatial sizes, or outputs of different shapes.
    """
    kd = DistillationLoss(temperature, alpha)
    weight = V.as_real_scalar(hint_weight, "hint_weight")
    if weight < 0:
        raise QuantizationValueError(f"hint_weight must be >= 0, got {weight}")
    seed = as_seed(seed)  # it also seeds the default adapter
    if not isinstance(teacher, Module):
        raise QuantizationTypeError(f"teacher must be a refquant.nn Module (its layers are hooked), "
                                    f"got {V.describe(teacher)}")
    if not isinstance(student, Module):
        raise QuantizationTypeError(f"student must be a refquant.nn Module, got {V.describe(student)}")
    s_layer = named_layer(student, student_layer, "student_layer")
    t_layer = named_layer(teacher, teacher_layer, "teacher_layer")
    t_logits, t_feat = _teacher_pass(teacher, t_layer, x)
    check_student(student, x, t_logits)
    labels = as_labels(y, *t_logits.shape)
    tap = _Capture()
    with s_layer.register_forward_hook(tap):
        predict(student, x[:1])
        adapter = _adapter(tap.last, t_feat, adapter, seed)
        model = _Guided(student, adapter)
        if optimizer is None:
            optimizer = Adam(model, lr=1e-3)
        elif isinstance(optimizer, Optimizer):
            known = {id(p) for p in optimizer.params}
            optimizer.params.extend(p for p in adapter.parameters() if id(p) not in known)
        original = s_layer.backward

        def guided_backward(grad_out):  # adds the hint's gradient, eq. (1), at the guided layer
            pending, tap.pending = tap.pending, None
            return original(grad_out if pending is None else grad_out + pending)

        object.__setattr__(s_layer, "backward", guided_backward)
        try:
            hist = fit(model, x, (labels, t_logits, t_feat), epochs=epochs, batch_size=batch_size,
                       loss=_HintLoss(kd, adapter, tap, weight), optimizer=optimizer, scheduler=scheduler,
                       validation_data=validation_data, seed=seed, progress=progress)
        except TrainingDivergedError as err:  # name the loss' settings too: they scale it
            raise TrainingDivergedError(f"{err} (distilling with temperature={kd.temperature:g}, alpha={kd.alpha:g}, "
                                        f"hint_weight={weight:g})") from None
        finally:
            s_layer.__dict__.pop("backward", None)
    return hist, adapter
