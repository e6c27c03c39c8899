"""What every evaluation function checks first: the model, the data, the labels, the logits (internal).

A model is a float :class:`refquant.nn.Module`, a :class:`~refquant.qmodel.QuantizedModel` (its
``run``), or, where only outputs are needed, a plain function ``f(x) -> logits``. :func:`inference`
gives one function of ``x`` for all three; a float model runs in evaluation mode (BatchNorm's running
statistics, no dropout) and gets its layers' modes back afterwards.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import _validate as V
from .. import nn
from ..errors import (
    QuantizationTypeError,
    QuantizationValueError,
    RefquantError,
    ShapeError,
)
from ..qmodel import QuantizedModel

#: Largest ``repeats`` / ``warmup`` accepted (a bound on a call's length; run again for more).
MAX_CALLS = 1_000_000


def check_model(model, name: str = "model", *, callables: bool = True):
    """``model`` itself, if it is a Module, a QuantizedModel or (with ``callables``) a function."""
    if isinstance(model, (nn.Module, QuantizedModel)):
        return model
    if callables and callable(model) and not isinstance(model, type):
        return model
    what = "a refquant.nn Module, a QuantizedModel" + (" or a function of x" if callables else "")
    raise QuantizationTypeError(f"{name} must be {what}, got {V.describe(model)}")


@contextlib.contextmanager
def inference(model):
    """A function ``f(x)`` running ``model`` as it runs for inference, for the ``with`` block."""
    if isinstance(model, QuantizedModel):
        yield model.run
        return
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)  # as Module.train sets it


def check_x(x, name: str = "x") -> np.ndarray:
    """A non-empty ``(N, ...)`` real array (native byte order), finite if float."""
    a = V.asarray(x, name, kinds="iuf", what="a real array of samples")
    if a.ndim == 0 or a.shape[0] == 0:
        raise ShapeError(f"{name} must be an (N, ...) batch with N >= 1 samples, got shape {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise QuantizationValueError(f"{name} must be finite, got NaN or Inf")
    return a


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """``(n,)`` integer class labels >= 0 (their upper bound is checked against the logits)."""
    labels = V.as_int_array(y, name)
    if labels.shape != (n,):
        raise ShapeError(f"{name} must have shape ({n},), one label per sample of x, got {labels.shape}")
    if labels.size and int(labels.min()) < 0:
        raise QuantizationValueError(f"{name} must hold class labels >= 0, got {int(labels.min())}")
    return labels


def call(f, batch: np.ndarray, name: str = "model"):
    """``f(batch)``, a refquant error re-raised naming ``x`` (a batch the model cannot take)."""
    try:
        return f(batch)
    except RefquantError as err:
        raise type(err)(f"{name} cannot run on x (a batch of shape {batch.shape}): {err}") from None


def check_logits(out, n: int, name: str = "model") -> np.ndarray:
    """What ``name`` returned for ``n`` samples, as finite ``(n, classes)`` logits."""
    if isinstance(out, dict) or out is None:
        raise QuantizationTypeError(f"{name} must return one (N, classes) array of logits, got {V.describe(out)}")
    a = V.asarray(out, f"{name}(x)", kinds="iuf", what="an (N, classes) array of logits")
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] == 0:
        raise ShapeError(f"{name} must return (N, classes) logits, N = {n} rows for {n} samples, got shape {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise QuantizationValueError(f"{name} returned NaN or Inf logits")
    return a
