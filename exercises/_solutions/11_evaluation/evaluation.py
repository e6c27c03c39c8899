"""Exercise 11: Evaluating a quantized model — top-k with ties, latency statistics, stored bytes, per-tensor error. SOLUTION (spoilers: try the exercise first).

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
    z = np.asarray(logits)
    y = np.asarray(labels, np.int64)
    mine = z[np.arange(z.shape[0]), y][:, None]                      # (N, 1): each row's label logit
    lower = np.arange(z.shape[1])[None, :] < y[:, None]              # (N, C): classes before the label
    rank = np.sum(z > mine, axis=1) + np.sum((z == mine) & lower, axis=1)
    return rank < k
    # END YOUR SOLUTION


def latency_summary(times_ms, warmup: int) -> tuple[float, float, float, float]:
    """Learn 15, section 2: summarise per-call times, the first call kept apart.

    ``times_ms[0]`` is the first call; the next ``warmup`` calls are not counted; the rest are the
    samples. Return ``(first_call_ms, median, p90, p99)`` of the samples, as Python floats, with
    percentiles interpolated linearly between order statistics (``np.percentile``'s default).
    At least one sample remains.
    """
    # BEGIN YOUR SOLUTION
    t = np.asarray(times_ms, np.float64)
    samples = t[1 + warmup:]
    median, p90, p99 = np.percentile(samples, [50, 90, 99])
    return float(t[0]), float(median), float(p90), float(p99)
    # END YOUR SOLUTION


def weight_only_nbytes(weights, bits: int, biases) -> int:
    """Learn 15, section 4: bytes of a weight-only model as stored (``QuantizedModel.nbytes``).

    For each layer: its weight's ``n`` codes — int4 (``bits <= 4``) two per byte, ``(n + 1) // 2``
    bytes per layer; else one byte each — plus one float32 scale per output channel (axis 0 of the
    weight), plus its float32 bias (``None``: no bias). ``weights``: list of arrays;
    ``biases``: list, one per weight. Return a Python int.
    """
    # BEGIN YOUR SOLUTION
    total = 0
    for w, b in zip(weights, biases):
        n = np.asarray(w).size
        total += (n + 1) // 2 if bits <= 4 else n                    # the codes
        total += 4 * np.asarray(w).shape[0]                          # one float32 scale per output channel
        total += 0 if b is None else 4 * np.asarray(b).size          # float32 bias
    return int(total)
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
    q = np.asarray(q)
    r = np.asarray(reference, np.float64).reshape(q.shape)
    deq = float(scale) * (q.astype(np.float64) - zero_point)
    err = r - deq
    noise = float(np.sum(err ** 2))
    sqnr = float("inf") if noise == 0 else float(10 * np.log10(np.sum(r ** 2) / noise))
    return sqnr, float(np.max(np.abs(err)) / float(scale))
    # END YOUR SOLUTION
