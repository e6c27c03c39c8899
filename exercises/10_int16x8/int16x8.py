"""Exercise 10: TFLite's 16x8 mode — int16 activation parameters and a 16x8 1x1 convolution.  <- the file you edit.

Read first: docs "Learn 14: int16 activations (TFLite's 16x8 mode)", sections 1 and 2
(docs/learn/int16-activations.md).
Check your work: ``python -m exercises 10`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only (and ``refquant.fixedpoint_multiplier.quantize_multiplier``, which exercise 05 built). The
tests compare your parameters with ``refquant.backends.tflite.activation_qparams`` and your
convolution with ``refquant.backends.tflite.conv2d``, bit for bit, on random codes and on
accumulators past 2^31.
"""

import numpy as np

from refquant.fixedpoint_multiplier import quantize_multiplier


def int16_activation_params(min_val: float, max_val: float) -> tuple[np.float32, int]:
    """Learn 14, eq. (1): the TFLite converter's int16 activation parameters, symmetric:

        lo = min(float32(min_val), 0);  hi = max(float32(max_val), 0)
        scale = float32(max(|lo|, |hi|) / 32767)       # in float32
        zero_point = 0

    Return ``(scale as np.float32, 0)``. (An all-zero range would give scale 0: the tests do not ask.)
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("int16_activation_params")
    # END YOUR SOLUTION


def reduced_multiplier(quantized_multiplier: int) -> int:
    """Learn 14, eq. (3), left: the 31-bit multiplier ``q`` (``0 <= q < 2**31``) rounded to 16 bits,

        q < 0x7FFF0000 ? (q + 2**15) >> 16 : 0x7FFF

    (the second case keeps the result below 2**15). Return a Python int.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("reduced_multiplier")
    # END YOUR SOLUTION

def mbqm_int64(acc, quantized_multiplier: int, shift: int) -> np.ndarray:
    """Learn 14, eq. (3), right: TFLite's 64-bit ``MultiplyByQuantizedMultiplier``.

        r = reduced_multiplier(q)
        y = (acc * r + 2**(14 - shift)) >> (15 - shift)     # in int64; one rounding, half up

    ``acc``: int64 array (|acc| < 2**47); ``shift`` in [-31, 7] (negative: a right shift, as
    ``quantize_multiplier`` returns it). Return an int64 array of ``acc``'s shape.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("mbqm_int64")
    # END YOUR SOLUTION

def conv1x1_16x8(x, w, b, x_scale, w_scale, y_scale) -> np.ndarray:
    """A TFLite 16x8 CONV_2D with a 1x1 kernel, stride 1, no activation: per output channel ``o``

        acc[n, o] = sum_k x[n, k] * w[o, k] + b[o]                  # exact, in int64 (Learn 14, eq. (2))
        M_o = double(x_scale) * double(w_scale[o]) / double(y_scale)
        q_o, shift_o = quantize_multiplier(M_o)
        y[n, o] = clip(mbqm_int64(acc[:, o], q_o, shift_o), -32768, 32767)   # zero point 0

    ``x``: int16 ``(N, K)`` (zero point 0); ``w``: int8 ``(O, K)``; ``b``: int64 ``(O,)``;
    ``x_scale``, ``y_scale``: float32 scalars; ``w_scale``: float32 ``(O,)``. Form the products of
    the float32 scales in double, as LiteRT does. Return int16 ``(N, O)``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("conv1x1_16x8")
    # END YOUR SOLUTION
