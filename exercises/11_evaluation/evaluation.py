"""Exercise 11: Evaluating a quantized model — top-k with ties, latency statistics, stored bytes, per-tensor error.  <- the file you edit.

Read first: docs "Learn 15: Evaluating a quantized model", sections 1, 2 and 4
(docs/learn/evaluating.md), and "Learn 13", section 1 (docs/learn/debugging.md).
Check your work: ``python -m exercises 11`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. The tests compare your functions with ``refquant.evaluate``: top-k accuracy on logits full
of ties, the bytes of real int4 and int8 weight-only models, and the per-layer rows of
``refquant.evaluate.layer_errors`` on the bundled MLP.
"""

import numpy as np


def top_k_hits(logits, labels, k: int) -> np.ndarray:
    """Learn 15, eq. (1): is each row's label among its ``k`` best classes?

        rank[i] = #{c : logits[i, c] > logits[i, labels[i]]}
                + #{c < labels[i] : logits[i, c] == logits[i, labels[i]]}     # ties: lower index first
        hit[i]  = rank[i] < k

    ``logits``: ``(N, C)`` real (float or integer codes); ``labels``: ``(N,)`` ints in ``[0, C)``;
    ``1 <= k <= C``. Return a bool array of shape ``(N,)``. (Top-k accuracy is its mean.)
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("top_k_hits")
    # END YOUR SOLUTION


def latency_summary(times_ms, warmup: int) -> tuple[float, float, float, float]:
    """Learn 15, section 2: summarise per-call times, the first call kept apart.

    ``times_ms[0]`` is the first call; the next ``warmup`` calls are not counted; the rest are the
    samples. Return ``(first_call_ms, median, p90, p99)`` of the samples, as Python floats, with
    percentiles interpolated linearly between order statistics (``np.percentile``'s default).
    At least one sample remains.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("latency_summary")
    # END YOUR SOLUTION


def weight_only_nbytes(weights, bits: int, biases) -> int:
    """Learn 15, section 4: bytes of a weight-only model as stored (``QuantizedModel.nbytes``).

    For each layer: its weight's ``n`` codes — int4 (``bits <= 4``) two per byte, ``(n + 1) // 2``
    bytes per layer; else one byte each — plus one float32 scale per output channel (axis 0 of the
    weight), plus its float32 bias (``None``: no bias). ``weights``: list of arrays;
    ``biases``: list, one per weight. Return a Python int.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("weight_only_nbytes")
    # END YOUR SOLUTION


def tensor_error(reference, q, scale: float, zero_point: int) -> tuple[float, float]:
    """Learn 13, eqs. (1)-(2): the SQNR (dB) and the max error (LSB) of integer codes ``q``
    (parameters ``scale``, ``zero_point``) against the float values ``reference`` of the same tensor.

        deq  = scale * (q - zero_point)                     # in float64
        sqnr = 10 log10(sum(r^2) / sum((r - deq)^2))        # +inf when there is no error at all
        lsb  = max |r - deq| / scale

    ``reference`` float array; ``q`` integer array of the same size (reshape ``reference`` to ``q``'s
    shape). Return ``(sqnr, lsb)`` as Python floats.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("tensor_error")
    # END YOUR SOLUTION
