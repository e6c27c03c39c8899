"""Exercise 03: choosing the scale and zero point from a range.  <- the file you edit.

Read first: docs "Learn 2: Affine and symmetric quantization", sections 4-6
(docs/learn/affine-and-symmetric.md).
Check your work: ``python -m exercises 03`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. Follow the rule of PyTorch's observers (``MinMaxObserver.calculate_qparams``), which
``refquant.qparams.choose_qparams`` also implements, bit for bit: every operation in
**float32**, zero points rounded half to even, and a floor of ``EPS = float32 machine epsilon`` on
the scale so that an all-zero range still gets a scale > 0.
"""

import numpy as np

EPS = np.float32(np.finfo(np.float32).eps)  # 1.1920929e-07


def affine_qparams(min_val: float, max_val: float, qmin: int, qmax: int) -> tuple[np.float32, int]:
    """Affine (asymmetric) parameters, Learn 2 eqs. (6)-(9). Return ``(scale, zero_point)``:
    a ``np.float32`` and a Python int.

    1. widen the range to contain zero: ``r_min = min(min_val, 0)``, ``r_max = max(max_val, 0)``;
    2. ``scale = max((r_max - r_min) / (qmax - qmin), EPS)``, in float32;
    3. ``zero_point = qmin - round_half_to_even(r_min / scale)`` (the division in float32),
       clamped to ``[qmin, qmax]``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("affine_qparams")
    # END YOUR SOLUTION


def symmetric_qparams(min_val: float, max_val: float, qmin: int, qmax: int) -> tuple[np.float32, int]:
    """Symmetric parameters, Learn 2 eq. (10). Return ``(scale, zero_point)``.

    ``scale = max(max(|r_min|, |r_max|) / ((qmax - qmin) / 2), EPS)`` in float32 (the divisor is
    127.5 for [-128, 127]); ``zero_point`` is 0 for a signed range (``qmin < 0``), else the
    midpoint ``(qmin + qmax + 1) // 2`` (128 for [0, 255]).
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("symmetric_qparams")
    # END YOUR SOLUTION
