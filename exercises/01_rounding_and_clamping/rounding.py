"""Exercise 01: rounding and clamping.  <- the file you edit.

Read first: docs "Learn 1: Rounding and integer ranges" (docs/learn/rounding-and-ranges.md).
Check your work: ``python -m exercises 01`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``. Use NumPy,
not refquant: the tests compare your functions with refquant's. Every rounding function takes a
float array (float32 or float64) and returns a float array of the *same dtype* holding integers;
NaN stays NaN and +-inf stay +-inf.
"""

import numpy as np


def round_half_to_even(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer; a tie (fraction exactly 0.5) goes to the even neighbour.

    RNE(2.5) = 2, RNE(3.5) = 4, RNE(-0.5) = -0 (Learn 1, eq. (2)).

    Do not call ``np.round`` or ``np.rint`` (that would be the whole exercise): start from
    ``n = np.floor(x)`` and the fraction ``f = x - n``, which is exact (Learn 1, §2).
    """
    x = np.asarray(x)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("round_half_to_even")
    # END YOUR SOLUTION


def round_half_away_from_zero(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer; a tie goes away from zero: RHAZ(2.5) = 3, RHAZ(-2.5) = -3.

    C's ``std::round``; TFLite's reference QUANTIZE (Learn 1, eq. (3)). Must be exact in float32:
    ``np.floor(x + 0.5)`` is wrong for x = 0.49999997 (Learn 1, eq. (5)).
    """
    x = np.asarray(x)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("round_half_away_from_zero")
    # END YOUR SOLUTION


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer; a tie goes toward +infinity: RHU(2.5) = 3, RHU(-2.5) = -2.

    What ``(v + 2^(k-1)) >> k`` computes in integers (Learn 1, eqs. (4), (7)). Exact in float32.
    """
    x = np.asarray(x)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("round_half_up")
    # END YOUR SOLUTION


def int_range(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """Return ``(qmin, qmax)`` of a ``bits``-bit integer format as two Python ints.

    Signed two's complement or unsigned (Learn 1, eq. (10)); ``narrow`` drops the lowest code
    (int8 narrow is (-127, 127)).
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("int_range")
    # END YOUR SOLUTION


def saturate(v: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """Clamp integers into ``[qmin, qmax]`` (Learn 1, eq. (11)); return an int64 array of v's shape.

    Saturate, do not wrap: 200 into int8 is 127, not -56.
    """
    v = np.asarray(v)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("saturate")
    # END YOUR SOLUTION
