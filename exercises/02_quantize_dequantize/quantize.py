"""Exercise 02: quantize and dequantize, as the ONNX specification defines them.  <- the file you edit.

Read first: docs "Learn 2: Affine and symmetric quantization", sections 1-3
(docs/learn/affine-and-symmetric.md).
Check your work: ``python -m exercises 02`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only (the tests compare with refquant). ONNX ``QuantizeLinear`` computes, in float32,

    q = clamp(round_half_to_even(x / scale) + zero_point, qmin, qmax)

and ``DequantizeLinear`` computes ``(q - zero_point) * scale``.
"""

import numpy as np


def quantize(x: np.ndarray, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Quantize a float array per tensor (Learn 2, eq. (2)); return int64 codes of x's shape.

    * divide ``x / scale`` in **float32** (both operands converted to float32 first);
    * round half to even (``np.rint`` is allowed here);
    * add ``zero_point`` to the rounded integer, then clamp to ``[qmin, qmax]``.
    """
    x = np.asarray(x)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("quantize")
    # END YOUR SOLUTION


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Dequantize integer codes (Learn 2, eq. (1)); return a float32 array of q's shape.

    Subtract in integers (int64), convert the difference to float32, multiply by the float32 scale.
    """
    q = np.asarray(q)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("dequantize")
    # END YOUR SOLUTION


def quantize_per_channel(x: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, axis: int,
                         qmin: int, qmax: int) -> np.ndarray:
    """Per-channel quantize: element ``x[..., c, ...]`` (``c`` on ``axis``) uses ``scales[c]`` and
    ``zero_points[c]``; otherwise exactly :func:`quantize`. Return int64 codes of x's shape.

    ``scales`` and ``zero_points`` are 1-D of length ``x.shape[axis]``; ``axis`` may be negative.
    Hint: reshape them so that they broadcast along ``axis``.
    """
    x = np.asarray(x)
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("quantize_per_channel")
    # END YOUR SOLUTION


def fake_quantize(x: np.ndarray, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Quantize then dequantize: the float32 value each input is stored as (Learn 2, §2).

    Quantization-aware training computes this in the forward pass.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("fake_quantize")
    # END YOUR SOLUTION
