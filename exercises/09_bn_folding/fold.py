"""Exercise 09: fold BatchNorm into the layer before it, and the ReLU6 clamp of the folded layer.  <- the file you edit.

Read first: docs "Learn 11: Batch-norm folding, activation fusion and cross-layer equalization",
sections 1 and 2 (docs/learn/bn-folding-and-fusion.md).
Check your work: ``python -m exercises 09`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. Folding is offline float arithmetic: compute in float64. The tests compare your folded
parameters with ``refquant.passes.fold_parameters`` to within a float64 tolerance (two correct
implementations may order their roundings differently), fold the bundled CNN with your function
and compare its logits with the unfolded model's to within float32 rounding, and compare your
clamp with ``refquant.kernels.multiplier.activation_range`` exactly.
"""

import numpy as np


def bn_scale_shift(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Learn 11, eq. (1): an evaluation-mode BatchNorm as one multiply and one add per channel,
    ``BN(y)_c = a_c * y_c + shift_c`` with

        a_c = gamma_c / sqrt(var_c + eps)
        shift_c = beta_c - a_c * mean_c

    ``gamma``, ``beta``, ``mean``, ``var``: ``(C,)`` float arrays (the BatchNorm's weight, bias,
    running mean and running variance); ``eps > 0``. Return ``(a, shift)`` as float64 ``(C,)``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("bn_scale_shift")
    # END YOUR SOLUTION


def fold_bn(weight, bias, gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Learn 11, eq. (3): the weight and bias of a Conv2d or Linear layer with the BatchNorm after
    it folded in,

        W'[c, ...] = a_c * W[c, ...]
        b'_c = a_c * (b_c - mean_c) + beta_c

    with ``a`` from :func:`bn_scale_shift`. ``weight``: ``(O, ...)``, output channels on axis 0
    (Linear ``(O, K)``, Conv2d ``(O, C/groups, kH, kW)``, depthwise included); ``bias``: ``(O,)`` or
    ``None`` for a layer without bias (then ``b = 0``). Return ``(W', b')`` as float64 arrays of
    shapes ``weight.shape`` and ``(O,)``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("fold_bn")
    # END YOUR SOLUTION


def relu6_clamp(output_scale: float, output_zero_point: int, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """Learn 11, eq. (4): the clamp ``[act_min, act_max]`` that a ReLU6 fused into the folded
    integer layer becomes, with TFLite's rounding of the bound:

        act_min = max(qmin, output_zero_point)                 # the code of the real 0
        act_max = min(qmax, output_zero_point + round_half_away_from_zero(float32(6) / float32(S)))

    (the division in float32). Return Python ints.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("relu6_clamp")
    # END YOUR SOLUTION
