"""`finetune`: adapt an integer model to new data the way a device would.

Every step runs the **integer** model forward on a mini-batch (:meth:`QuantizedModel.trace`),
takes the cross-entropy of its dequantized output, walks the straight-through backward pass of
:mod:`refquant.finetune.ste` down to the chosen parameters only, steps their float masters and
re-quantizes them into a new integer model (:mod:`refquant.finetune.trainable`). The graph never
changes: same nodes, same tensors and activation parameters, same profile; only some node
constants get new values, so the result is as valid an integer model as the input and its ``run``
is as integer-only. ``FinetuneReport.changes`` lists every constant that differs, with the exact
number of values and stored bytes — what an over-the-air update of the model would have to ship.

Offline vs runtime: the steps are float arithmetic (training), the model they produce runs
integer-only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError
from ..nn import SGD, Adam, CrossEntropyLoss
from ..nn.init import as_seed
from ..qmodel import QuantizedModel
from .ste import GraphBackward, real_value
from .trainable import Trainable, as_update, param_changes

__all__ = ["finetune", "FinetuneReport", "accuracy"]


@dataclass
class FinetuneReport:
    """What :func:`finetune` did.

    Attributes:
        update: the modes trained, e.g. ``("bias",)``.
        accuracy_before, accuracy_after: top-1 of the integer model before and after, on
            ``eval_data`` (or the fine-tuning data when none was given: see ``evaluated_on``).
        evaluated_on: ``"eval_data"`` or ``"training data"``.
        changes: ``{"node/param": (values changed, bytes changed as stored)}``.
        changed_values: total values that differ from the input model.
        changed_bytes: total stored bytes that differ (a byte of an int32 bias counts when it differs).
        trainable_values: values trained (each has a float master copy during training only).
        model_bytes: :attr:`QuantizedModel.nbytes` (unchanged by fine-tuning).
        loss: mean training loss per epoch.
        train_accuracy: training top-1 per epoch (of the integer model that ran each batch).
        seconds: wall time of the training loop.
    """

    update: tuple
    accuracy_before: float
    accuracy_after: float
    evaluated_on: str
    changes: dict
    changed_values: int
    changed_bytes: int
    trainable_values: int
    model_bytes: int
    loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    seconds: float = 0.0


def accuracy(qm: QuantizedModel, x, y, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``qm.run`` on ``(x, y)`` (``x`` float32 (N, ...), ``y`` (N,) labels)."""
    if not isinstance(qm, QuantizedModel):
        raise QuantizationTypeError(f"qm must be a refquant.qmodel.QuantizedModel, got {type(qm).__name__}")
    x, y = _data(x, y, "")
    batch_size = V.as_positive_int(batch_size, "batch_size")
    hits = 0
    for i in range(0, x.shape[0], batch_size):
        out = qm.run(x[i:i + batch_size])
        if not isinstance(out, np.ndarray) or out.ndim != 2:
            raise ShapeError(f"qm must output (N, num_classes) scores to be scored, got {V.describe(out)}")
        hits += int((out.argmax(axis=1) == y[i:i + batch_size]).sum())
    return hits / x.shape[0]


def _data(x, y, what: str):
    """``x`` float32 (N, ...) finite and ``y`` (N,) integer labels; messages say ``{what} x``."""
    what = f"{what} " if what else ""
    x = V.as_float_array(x, f"{what}x")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ShapeError(f"{what}x must hold at least one example on axis 0, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise QuantizationValueError(f"{what}x must be finite, got NaN or Inf")
    y = V.asarray(y, f"{what}y", kinds=None, what="an integer label array")
    if y.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{what}y must be integer class labels, got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ShapeError(f"{what}y must have shape ({x.shape[0]},) to match x, got {y.shape}")
    return x.astype(np.float32, copy=False), y


def finetune(qm, x, y, *, update="bias", epochs: int = 5, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
             eval_data=None, optimizer: str = "adam") -> tuple[QuantizedModel, FinetuneReport]:
    """Fine-tune the integer model ``qm`` on ``(x, y)``; ``qm`` itself is not modified.

    Args:
        qm: a :class:`~refquant.qmodel.QuantizedModel` (e.g. from :func:`refquant.ptq.quantize_static`
            under any integer profile) with one float32 input and one (N, K) output.
        x: float32 inputs (N, ...), what ``qm.run`` takes.
        y: (N,) integer labels.
        update: ``"bias"``, ``"last"``, ``"scales"`` or a tuple of them (see
            :mod:`refquant.finetune.trainable`).
        epochs: passes over ``(x, y)`` (>= 1).
        lr: learning rate (> 0) of the optimizer, for the masters in real units (``"scales"``:
            per unit of $\\ln S$).
        batch_size: examples per step (>= 1).
        seed: seeds the shuffling.
        eval_data: ``(x_eval, y_eval)`` for the before/after accuracy (default: ``(x, y)``).
        optimizer: ``"adam"`` (``refquant.nn.Adam``) or ``"sgd"`` (momentum 0.9).

    Returns:
        ``(model, report)``: the new QuantizedModel and a :class:`FinetuneReport`.

    Raises:
        QuantizationTypeError: ``qm`` is not a QuantizedModel ("fine-tuning a model that was not
            quantized"), or data of the wrong type.
        QuantizationValueError: unknown ``update``, ``lr <= 0``, ``epochs`` or ``batch_size`` < 1.
        UnsupportedError: a node with no straight-through backward here (named).
        TrainingDivergedError: the loss or a trained value stopped being finite (names ``lr``).
    """
    if not isinstance(qm, QuantizedModel):
        raise QuantizationTypeError(f"fine-tuning a model that was not quantized: qm must be a refquant.qmodel."
                                    f"QuantizedModel (make one with refquant.ptq.quantize_static), "
                                    f"got {type(qm).__name__}")
    modes = as_update(update)
    epochs, batch_size = V.as_positive_int(epochs, "epochs"), V.as_positive_int(batch_size, "batch_size")
    lr = V.as_real_scalar(lr, "lr", finite=False)
    if not (np.isfinite(lr) and lr > 0):
        raise QuantizationValueError(f"lr must be finite and > 0, got {lr}")
    optimizer, seed = V.as_choice(optimizer, "optimizer", ("adam", "sgd")), as_seed(seed)
    x, y = _data(x, y, "training")
    x_eval, y_eval = (x, y) if eval_data is None else _pair(eval_data)
    _check_labels(qm, x, {"training y": y, "eval_data y": y_eval})

    trainable = Trainable(qm, modes)
    params = trainable.parameters()
    opt = Adam(params, lr=lr) if optimizer == "adam" else SGD(params, lr=lr, momentum=0.9)
    before = accuracy(qm, x_eval, y_eval)
    report = FinetuneReport(modes, before, before, "training data" if eval_data is None else "eval_data", {}, 0, 0,
                            int(sum(p.value.size for p in params)), qm.nbytes)
    t0 = time.perf_counter()
    tuned = _train(trainable, opt, x, y, epochs=epochs, batch_size=batch_size, seed=seed, report=report)
    report.seconds = time.perf_counter() - t0
    tuned.metadata = dict(qm.metadata, finetune={"update": list(modes), "epochs": epochs, "lr": lr,
                                                 "batch_size": batch_size, "optimizer": optimizer, "seed": seed})
    report.accuracy_after = accuracy(tuned, x_eval, y_eval)
    report.changes = param_changes(qm, tuned)
    report.changed_values = sum(v for v, _ in report.changes.values())
    report.changed_bytes = sum(b for _, b in report.changes.values())
    return tuned, report


def _train(trainable: Trainable, opt, x, y, *, epochs: int, batch_size: int, seed: int,
           report: FinetuneReport) -> QuantizedModel:
    """The loop: integer forward, cross-entropy, eq. (1) backward, a step of the masters, re-quantize."""
    qm = trainable.qm
    backward, loss_fn, out_name = GraphBackward(qm, trainable.layers), CrossEntropyLoss(), qm.outputs[0]
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    n_batches = -(-n // batch_size)
    current = trainable.model()
    for epoch in range(1, epochs + 1):
        total, hits = 0.0, 0
        order = rng.permutation(n)
        for b in range(n_batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            env = current.trace(x[idx])
            logits = real_value(current.tensors[out_name], env[out_name])  # (N, K) float32
            value = loss_fn(logits, y[idx])
            trainable.set_grads(backward.run(current, env, {out_name: loss_fn.backward()}), current)
            opt.step()
            trainable.after_step()
            if not (np.isfinite(value) and _fit_float32(opt.params)):
                raise TrainingDivergedError(f"fine-tuning diverged at epoch {epoch}/{epochs}, batch {b + 1}/{n_batches}"
                                            f": a trained value left the float32 range; try a smaller lr "
                                            f"(lr={opt.lr:g})")
            total += value * len(idx)
            hits += int((logits.argmax(axis=1) == y[idx]).sum())
            current = trainable.model()  # re-quantize: the next batch runs the updated integer model
        report.loss.append(total / n)
        report.train_accuracy.append(hits / n)
    return current


def _fit_float32(params) -> bool:
    """Every trained value is finite in float32 (what the integer model's scales and float biases hold)."""
    with np.errstate(over="ignore"):
        return all(np.all(np.isfinite(p.value.astype(np.float32))) for p in params)


def _check_labels(qm: QuantizedModel, x: np.ndarray, labels: dict) -> None:
    """One input, one (N, K) output, and every label in [0, K)."""
    if len(qm.inputs) != 1 or len(qm.outputs) != 1:
        raise ShapeError(f"qm must have one input and one output to be fine-tuned, got inputs {list(qm.inputs)} and "
                         f"outputs {list(qm.outputs)}")
    out = qm.run(x[:1])
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ShapeError(f"qm must output (N, num_classes) scores to be fine-tuned, got {V.describe(out)}")
    k = out.shape[1]
    for what, y in labels.items():
        bad = V.first_outside(y, 0, k - 1)
        if bad is not None:
            raise QuantizationValueError(f"{what} must hold class labels in [0, {k - 1}] for qm's {k} outputs, "
                                         f"got {bad}")


def _pair(eval_data):
    if not (isinstance(eval_data, (tuple, list)) and len(eval_data) == 2):
        raise QuantizationTypeError(f"eval_data must be a pair (x_eval, y_eval), got {V.describe(eval_data)}")
    return _data(*eval_data, "eval_data")
