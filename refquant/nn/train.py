"""Training loop: `fit`, with `evaluate` and `predict`.

``fit`` runs mini-batch training: per batch ``model.zero_grad()``, forward, loss,
``model.backward(loss.backward())``, ``optimizer.step()``; per epoch the schedule's
``step()``, validation accuracy, a progress line, and early stopping. It is
deterministic for a fixed ``seed``: the shuffling order and every stochastic layer's
generator (Dropout) derive from it, and NumPy's matrix products give the same bits for
the same inputs on the same machine and thread count.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, TrainingDivergedError
from ._checks import as_int, check_finite
from .init import as_seed
from .losses import CrossEntropyLoss, Loss
from .module import Module
from .optim import Adam, Optimizer

__all__ = ["History", "fit", "evaluate", "predict"]


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch run.

    Attributes:
        train_loss: mean training loss over the epoch's batches.
        train_accuracy: training accuracy over the epoch (None entries without labels).
        val_loss: cross-entropy on ``validation_data`` after the epoch (empty without it).
        val_accuracy: accuracy on ``validation_data`` after the epoch (empty without it).
        lr: learning rate used in the epoch.
        best_epoch: 1-based epoch of the best validation accuracy (None without validation).
        stopped_early: True if early stopping ended training.
        seconds: wall time per epoch.
    """

    train_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: list = field(default_factory=list)


def _check_data(x, y, name: str, x_name: str = "x", y_name: str = "y"):
    x = V.asarray(x, x_name, kinds=None, what="a float array")
    if x.dtype.kind != "f":
        raise QuantizationTypeError(f"{name} {x_name} must be a float array, got dtype {x.dtype}; "
                                    f"convert it with x.astype(np.float32)")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ShapeError(f"{name} {x_name} must hold at least one example on axis 0, got shape {x.shape}")
    check_finite(x, f"{name} {x_name}")
    ys = y if isinstance(y, tuple) else (y,)
    ys = tuple(V.asarray(t, y_name, kinds=None, what="an array of targets") for t in ys)
    for t in ys:
        if t.ndim == 0 or t.shape[0] != x.shape[0]:
            raise ShapeError(f"{name} targets {y_name} must have {x.shape[0]} rows to match {x_name} {x.shape}, "
                             f"got {t.shape}")
    return x, (ys if isinstance(y, tuple) else ys[0])


def _check_model(model) -> Module:
    if not isinstance(model, Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {type(model).__name__}")
    return model


def _labels(y):
    """The class labels in ``y`` (first array of a tuple) if they are 1-D integers, else None."""
    t = y[0] if isinstance(y, tuple) else y
    return t if t.ndim == 1 and t.dtype.kind in "iu" else None


def _take(y, idx):
    return tuple(t[idx] for t in y) if isinstance(y, tuple) else y[idx]


def predict(model: Module, x, *, batch_size: int = 256) -> np.ndarray:
    """Outputs of ``model`` in evaluation mode for ``x``, batch by batch (mode restored after)."""
    _check_model(model)
    batch_size = as_int(batch_size, "batch_size")
    x = V.asarray(x, "x", kinds=None, what="a float array")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ShapeError(f"x must hold at least one example on axis 0, got shape {x.shape}")
    was_training = model.training
    model.eval()
    try:
        outs = [model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs, axis=0)


def evaluate(model: Module, x, y, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)`` (``y`` integer labels), in evaluation mode."""
    _check_model(model)
    y = V.asarray(y, "y", kinds=None, what="an integer label array")
    out = predict(model, x, batch_size=batch_size)
    if y.shape != (out.shape[0],):
        raise ShapeError(f"y must have shape ({out.shape[0]},) to match x, got {y.shape}")
    return float((out.argmax(axis=1) == y).mean())


class _Progress:
    """A tqdm bar over the batches if tqdm is installed, else one plain line per epoch."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the plain fallback
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, leave=True, dynamic_ncols=True)
        self.desc = desc

    def update(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self, summary: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(summary)
            self.bar.close()
        elif self.enabled:
            print(f"{self.desc}: {summary}", file=sys.stderr, flush=True)


def fit(model: Module, x, y, *, epochs: int = 10, batch_size: int = 64, loss: Loss | None = None,
        optimizer: Optimizer | None = None, scheduler=None, validation_data=None,
        early_stopping: int | None = None, restore_best: bool = True, seed: int = 0, shuffle: bool = True,
        progress: bool = True) -> History:
    """Train ``model`` on ``(x, y)`` with mini-batches; leave it in evaluation mode.

    Args:
        model: the network.
        x: inputs, float array with the batch on axis 0.
        y: targets sliced along axis 0 with ``x`` and passed to ``loss``: an integer label
            array (N,) for cross-entropy, any array, or a tuple of arrays (e.g. labels and
            teacher logits for a custom distillation loss).
        epochs: maximum number of epochs.
        batch_size: examples per step (the last batch may be smaller).
        loss: a :class:`~refquant.nn.losses.Loss` (default ``CrossEntropyLoss()``).
        optimizer: default ``Adam(model, lr=1e-3)``.
        scheduler: an object with ``step()`` called after every epoch (``StepLR``, ``CosineLR``).
        validation_data: ``(x_val, y_val)`` with integer labels, evaluated after every epoch.
        early_stopping: stop after this many epochs without a better validation accuracy
            (needs ``validation_data``); None trains all epochs.
        restore_best: with early stopping, load the weights of the best epoch at the end.
        seed: seeds the shuffling and every stochastic layer (Dropout).
        shuffle: shuffle the training set every epoch.
        progress: show a progress bar (tqdm if installed, else one line per epoch on stderr).

    Returns:
        A :class:`History`.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite (names epoch and batch).
        QuantizationTypeError, ShapeError, QuantizationValueError: bad data or arguments.
    """
    _check_model(model)
    epochs = as_int(epochs, "epochs")
    batch_size = as_int(batch_size, "batch_size")
    x, y = _check_data(x, y, "training")
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise QuantizationTypeError(
                f"validation_data must be a pair (x_val, y_val), got {V.describe(validation_data)}")
        x_val, y_val = _check_data(*validation_data, "validation", "validation_data x_val", "validation_data y_val")
        if _labels(y_val) is None:
            raise QuantizationTypeError("validation_data y_val must be integer class labels of shape (N,)")
    if early_stopping is not None:
        early_stopping = as_int(early_stopping, "early_stopping")
        if validation_data is None:
            raise QuantizationValueError("early_stopping needs validation_data")
    if loss is not None and not isinstance(loss, Loss):
        raise QuantizationTypeError(f"loss must be a refquant.nn Loss (or None), got {V.describe(loss)}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise QuantizationTypeError(f"optimizer must be a refquant.nn Optimizer (or None), got {V.describe(optimizer)}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise QuantizationTypeError(f"scheduler must have a step() method (StepLR, CosineLR) or be None, "
                                    f"got {V.describe(scheduler)}")
    restore_best, shuffle, progress = (V.as_flag(restore_best, "restore_best"), V.as_flag(shuffle, "shuffle"),
                                       V.as_flag(progress, "progress"))
    loss = CrossEntropyLoss() if loss is None else loss
    optimizer = Adam(model, lr=1e-3) if optimizer is None else optimizer
    val_loss = CrossEntropyLoss()

    rng = np.random.default_rng(as_seed(seed, "seed"))
    for m in model.modules():  # a fresh, seeded generator per stochastic layer
        m.reseed(np.random.default_rng(rng.integers(2**63)))
    n = x.shape[0]
    n_batches = -(-n // batch_size)
    labels = _labels(y)
    hist = History()
    best_acc, best_state, waited = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(n) if shuffle else np.arange(n)
        bar = _Progress(progress, n_batches, f"epoch {epoch}/{epochs}")
        total_loss, correct = 0.0, 0
        try:
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                model.zero_grad()
                out = model(x[idx])
                value = loss(out, _take(y, idx))
                if not np.isfinite(value):
                    raise TrainingDivergedError(
                        f"loss became {value} at epoch {epoch}/{epochs}, batch {b + 1}/{n_batches}; "
                        f"try a smaller learning rate (lr={optimizer.lr:g}) or check the data")
                model.backward(loss.backward())
                optimizer.step()
                total_loss += value * len(idx)
                if labels is not None and out.ndim == 2:
                    correct += int((out.argmax(axis=1) == labels[idx]).sum())
                bar.update(value)
        except BaseException:
            bar.close("stopped")
            raise
        hist.lr.append(optimizer.lr)
        hist.train_loss.append(total_loss / n)
        hist.train_accuracy.append(correct / n if labels is not None else None)
        summary = f"loss {hist.train_loss[-1]:.4f}"
        if labels is not None:
            summary += f", acc {hist.train_accuracy[-1]:.4f}"
        if validation_data is not None:
            out = predict(model, x_val)
            hist.val_loss.append(float(val_loss(out, y_val)))
            hist.val_accuracy.append(float((out.argmax(axis=1) == y_val).mean()))
            summary += f", val_loss {hist.val_loss[-1]:.4f}, val_acc {hist.val_accuracy[-1]:.4f}"
            if hist.val_accuracy[-1] > best_acc:
                best_acc, hist.best_epoch, waited = hist.val_accuracy[-1], epoch, 0
                if early_stopping is not None and restore_best:
                    best_state = model.state_dict()
            else:
                waited += 1
        hist.seconds.append(time.perf_counter() - t0)
        bar.close(summary + f" ({hist.seconds[-1]:.1f} s)")
        if scheduler is not None:
            scheduler.step()
        if early_stopping is not None and waited >= early_stopping:
            hist.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist
