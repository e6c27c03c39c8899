"""Exercise 06: requantize with a fused clamp, and an integer linear layer. SOLUTION (spoilers: try the exercise first).

Read first: docs "Learn 4: Fixed-point requantization", section 6, and "Learn 5: An integer-only
linear layer" (docs/learn/fixed-point-requantization.md, docs/learn/integer-linear-layer.md).
Check your work: ``python -m exercises 06`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy.
You built ``multiply_by_quantized_multiplier`` in exercise 05; here use refquant's (imported
below: TFLite's double rounding, Learn 4 eq. (9)). Everything else is yours.
"""

import numpy as np

from refquant.fixedpoint import multiply_by_quantized_multiplier  # (x, q, shift) -> int32, broadcasts


def activation_range(activation, output_scale: float, output_zero_point: int, qmin: int, qmax: int) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` (Learn 4, section 6): the clamp of a fused
    activation, as Python ints ``(act_min, act_max)``.

    With ``Q(f) = output_zero_point + round_half_away_from_zero(float32(f) / float32(output_scale))``
    (the division in float32):

    * ``None`` or ``"NONE"``: ``(qmin, qmax)``;
    * ``"RELU"``: ``(max(qmin, Q(0)), qmax)``;
    * ``"RELU6"``: ``(max(qmin, Q(0)), min(qmax, Q(6)))``;
    * ``"RELU_N1_TO_1"``: ``(max(qmin, Q(-1)), min(qmax, Q(1)))``.
    """
    # BEGIN YOUR SOLUTION
    def q(f):
        v = np.float32(f) / np.float32(output_scale)  # float32 division, as TFLite
        a = np.abs(v)
        n = np.floor(a)
        r = n + (a - n >= 0.5)                        # round half away from zero, exact (Learn 1, eq. (5))
        return output_zero_point + int(np.copysign(r, v))

    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    return qmin, qmax
    # END YOUR SOLUTION


def requantize(acc: np.ndarray, quantized_multiplier, shift, output_zero_point: int,
               act_min: int, act_max: int) -> np.ndarray:
    """Learn 4, eq. (13): ``clamp(MBQM(acc, q, shift) + output_zero_point, act_min, act_max)`` as int8.

    ``acc`` is an int32 array of shape (..., C). ``quantized_multiplier`` and ``shift`` are ints
    (per tensor) or 1-D arrays of C values (per output channel, along the last axis of ``acc``).
    Add the zero point in int64 (the tests keep it from overflowing), clamp, then cast to int8.
    """
    # BEGIN YOUR SOLUTION
    scaled = multiply_by_quantized_multiplier(acc, quantized_multiplier, shift).astype(np.int64)
    return np.clip(scaled + output_zero_point, act_min, act_max).astype(np.int8)
    # END YOUR SOLUTION


def quantized_linear(x_q: np.ndarray, w_q: np.ndarray, bias_q: np.ndarray, x_zero_point: int,
                     quantized_multiplier, shift, output_zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    """An integer-only linear layer (Learn 5, eqs. (4)-(6)): TFLite's int8 layout, requantized with
    gemmlowp's double rounding as TFLite's reference convolutions do (a 1x1 convolution).

    ``x_q``: (B, K) int8 inputs with zero point ``x_zero_point``; ``w_q``: (N, K) int8 weights,
    symmetric (zero point 0), one row per output; ``bias_q``: (N,) int32. Per-output-channel
    ``quantized_multiplier`` and ``shift`` ((N,) arrays, or ints). Return (B, N) int8:

        acc[b, n] = sum_k (x_q[b, k] - x_zero_point) * w_q[n, k] + bias_q[n]     (exact, int64)
        y = requantize(acc, quantized_multiplier, shift, output_zero_point, act_min, act_max)
    """
    # BEGIN YOUR SOLUTION
    acc = (x_q.astype(np.int64) - x_zero_point) @ w_q.astype(np.int64).T + bias_q.astype(np.int64)  # (B, N)
    return requantize(acc.astype(np.int32), quantized_multiplier, shift, output_zero_point, act_min, act_max)
    # END YOUR SOLUTION
