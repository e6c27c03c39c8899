"""Exercise 13: Knowledge distillation — soft targets at a temperature, the KD loss with its T^2 factor, its gradient. SOLUTION (spoilers: try the exercise first).

Read first: docs "Learn 18: Knowledge distillation", sections 1-3 (docs/learn/distillation.md).
Check your work: ``python -m exercises 13`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. The tests compare your functions with ``refquant.distill.distillation_loss`` (value and
gradient) and your gradient with central differences of your loss. Shapes: student and teacher
logits ``(N, K)`` float, ``labels`` ``(N,)`` integers in ``[0, K)``; compute in float64.
"""

import numpy as np


def log_softmax_t(z, temperature: float) -> np.ndarray:
    """Learn 18, eq. (1), in logs: ``log softmax(z / T)`` along axis 1, as float64 ``(N, K)``.

        u = z / T
        log_softmax(u)[n, k] = u[n, k] - max_j u[n, j] - log(sum_j exp(u[n, j] - max_j u[n, j]))

    Subtract each row's maximum before ``exp``: logits of 1000 must give finite logs, not ``-inf``
    or NaN. (``np.exp`` of the result is the softened distribution ``softmax(z / T)``.)
    """
    # BEGIN YOUR SOLUTION
    u = np.asarray(z, np.float64) / np.float64(temperature)
    u = u - u.max(axis=1, keepdims=True)                     # the row's largest entry becomes 0
    return u - np.log(np.exp(u).sum(axis=1, keepdims=True))
    # END YOUR SOLUTION


def distillation_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float) -> float:
    """Learn 18, eq. (2): the batch mean of Hinton's KD loss, as a Python float.

        p = softmax(z_t / T),  q = softmax(z_s / T)                       # eq. (1)
        L = alpha * T^2 * mean_n KL(p_n || q_n)                           # soft targets
          + (1 - alpha) * mean_n -log softmax(z_s)[n, y_n]                # hard labels, at T = 1

    with ``KL(p || q) = sum_k p_k (log p_k - log q_k)`` (the teacher's distribution first). Use
    the log-probabilities of :func:`log_softmax_t`, not ``np.log`` of probabilities (a probability
    that underflows to 0 has log ``-inf``).
    """
    # BEGIN YOUR SOLUTION
    zs, zt = np.asarray(student_logits, np.float64), np.asarray(teacher_logits, np.float64)
    y = np.asarray(labels)
    n = zs.shape[0]
    t = float(temperature)
    log_p, log_q = log_softmax_t(zt, t), log_softmax_t(zs, t)          # eq. (1), in logs
    kl = float((np.exp(log_p) * (log_p - log_q)).sum()) / n           # mean_n KL(p_n || q_n)
    ce = float(-log_softmax_t(zs, 1.0)[np.arange(n), y].sum()) / n    # cross-entropy at T = 1
    return alpha * t * t * kl + (1.0 - alpha) * ce
    # END YOUR SOLUTION


def distillation_grad(student_logits, teacher_logits, labels, temperature: float, alpha: float) -> np.ndarray:
    """Learn 18, eq. (3): dL/dz_s of :func:`distillation_loss`, float64 ``(N, K)``.

        dL/dz_s = alpha * T / N * (q - p) + (1 - alpha) / N * (softmax(z_s) - onehot(y))

    The teacher's logits are constants: no gradient flows to them. Derive the first term yourself
    (Learn 18, section 3) before you trust it: the T^2 of the loss and the 1/T of the chain rule
    through ``z_s / T`` leave one T.
    """
    # BEGIN YOUR SOLUTION
    zs, zt = np.asarray(student_logits, np.float64), np.asarray(teacher_logits, np.float64)
    y = np.asarray(labels)
    n, k = zs.shape
    t = float(temperature)
    p, q = np.exp(log_softmax_t(zt, t)), np.exp(log_softmax_t(zs, t))
    onehot = np.eye(k)[y]
    return alpha * t / n * (q - p) + (1.0 - alpha) / n * (np.exp(log_softmax_t(zs, 1.0)) - onehot)
    # END YOUR SOLUTION
