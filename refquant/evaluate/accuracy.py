r"""Top-1 and top-k accuracy: the share of samples whose label is among the model's k best classes.

For logits $z \in \mathbb{R}^{N \times C}$ and labels $y$, the **rank** of the label of row $i$ counts
the classes placed before it, ties broken by class index (the lower index first, as ``np.argmax``
and a stable ``np.argsort`` of $-z$ order them):

$$ \mathrm{rank}_i = \#\{c : z_{ic} > z_{iy_i}\} + \#\{c < y_i : z_{ic} = z_{iy_i}\}, \qquad
   \text{top-}k = \frac{1}{N} \sum_i [\mathrm{rank}_i < k]. \tag{1} $$

So top-1 is ``argmax == y`` exactly, and a label tied with the k-th largest logit counts only if
no tied class with a lower index takes the place first. Integer logits (codes) are compared as
integers; no sort, no float conversion. See docs "Learn 15: Evaluating a quantized model", §1.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, ShapeError
from ._inputs import call, check_labels, check_logits, check_model, check_x, inference

__all__ = ["top_k_accuracy"]


def label_ranks(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Eq. (1): the rank of each row's label among its logits (0 = first), ``(N,)`` int64.
    ``logits`` ``(N, C)`` real, ``labels`` ``(N,)`` ints in ``[0, C)`` (internal: not checked)."""
    rows = np.arange(logits.shape[0])
    mine = logits[rows, labels][:, None]                                   # (N, 1)
    before = np.arange(logits.shape[1])[None, :] < labels[:, None]         # (N, C) bool: lower class index
    return (np.sum(logits > mine, axis=1) + np.sum((logits == mine) & before, axis=1)).astype(np.int64)


def top_k_accuracy(model, x, y, *, k: int = 1, batch_size: int = 256) -> float:
    """Share of the samples of ``x`` whose label ``y`` is among the model's ``k`` largest logits (eq. (1)).

    The model runs on ``x`` in batches of ``batch_size`` (a float model in evaluation mode). A model
    whose numbers depend on the batch, such as a dynamic-range model that quantizes each call's input
    from its own min and max, can score differently at another ``batch_size``.

    Args:
        model: A float :class:`refquant.nn.Module`, a :class:`~refquant.qmodel.QuantizedModel`, or a
            function ``f(x) -> logits``; each gives ``(N, classes)`` real logits for ``N`` samples.
        x: ``(N, ...)`` samples, N >= 1, in the dtype the model takes.
        y: ``(N,)`` integer labels in ``[0, classes)``.
        k: How many of the best classes count, 1 <= k <= classes.
        batch_size: Samples per call, >= 1.

    Returns:
        A Python float in [0, 1].

    Raises:
        QuantizationTypeError: ``model`` is none of the three; ``y`` is not integer.
        ShapeError: ``x`` empty, ``y`` not ``(N,)``, logits not ``(N, classes)``.
        QuantizationValueError: ``k`` < 1 or > classes; a label outside ``[0, classes)``; NaN logits.

    Example:
        >>> import numpy as np
        >>> from refquant.evaluate import top_k_accuracy
        >>> logits = np.array([[2.0, 2.0, 1.0], [0.0, 1.0, 3.0]])
        >>> top_k_accuracy(lambda x: logits, np.zeros((2, 4)), [1, 1], k=1)   # row 0: class 0 wins the tie
        0.0
        >>> top_k_accuracy(lambda x: logits, np.zeros((2, 4)), [1, 1], k=2)
        1.0
    """
    model = check_model(model)
    x = check_x(x)
    labels = check_labels(y, x.shape[0])
    k = V.as_positive_int(k, "k")
    batch_size = V.as_positive_int(batch_size, "batch_size")
    ranks, classes = model_label_ranks(model, x, labels, batch_size)
    if k > classes:
        raise QuantizationValueError(f"k must be <= the number of classes, {classes}, got {k}")
    return int(np.sum(ranks < k)) / x.shape[0]


def model_label_ranks(model, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, int]:
    """``(ranks, classes)``: eq. (1) for every sample, the model run on ``x`` in batches (arguments
    checked by the caller; the logits and the labels' upper bound checked here)."""
    ranks = np.empty(x.shape[0], np.int64)
    classes = None
    with inference(model) as f:
        for start in range(0, x.shape[0], batch_size):
            batch = x[start:start + batch_size]
            logits = check_logits(call(f, batch), batch.shape[0])
            if classes is not None and logits.shape[1] != classes:
                raise ShapeError(f"model must give the same number of classes for every batch, got {classes} "
                                 f"then {logits.shape[1]}")
            classes = logits.shape[1]
            mine = labels[start:start + batch_size]
            if int(mine.max()) >= classes:
                raise QuantizationValueError(f"y must hold labels in [0, {classes}) for a model with {classes} "
                                             f"classes, got {int(mine.max())}")
            ranks[start:start + batch.shape[0]] = label_ranks(logits, mine)
    return ranks, classes
