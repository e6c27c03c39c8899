"""Exercise 08: calibration — a streaming min-max observer, a percentile range, TFLite's int8 parameters.  <- the file you edit.

Read first: docs "Learn 8: Calibration — choosing the range", sections 1 and 3
(docs/learn/calibration.md), and "Learn 2", section 4, for the affine parameters.
Check your work: ``python -m exercises 08`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. The tests compare your results bit for bit with refquant's observers
(``refquant.calibration``) and its TFLite face (``refquant.backends.tflite.activation_qparams``).
"""

import numpy as np


def minmax_range(batches) -> tuple[np.float32, np.float32]:
    """Learn 8, eq. (6): the running minimum and maximum of a stream of batches.

    ``batches`` is any iterable of float arrays (any shapes; float16, float32 or float64, each
    converted to float32 first). Iterate over it once and keep two numbers: do not collect or
    concatenate the batches (the tests hand you a generator and check that each batch can be freed
    as soon as you move to the next). Start from the first batch, not from 0: data that are all
    negative have a negative maximum.

    Return ``(lo, hi)`` as ``np.float32`` scalars. Raise ``ValueError`` if there is no batch.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("minmax_range")
    # END YOUR SOLUTION


def abs_histogram(x, num_bins: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The histogram ONNX Runtime's percentile calibrator starts from (``collect_absolute_value``,
    one batch): ``np.histogram`` of ``|x|``, with ``x`` flattened and converted to float32, in
    ``num_bins`` equal bins from ``min |x|`` to ``max |x|`` (NumPy's default range).

    Return ``(hist, edges)``: the counts as int64, shape ``(num_bins,)``, and the bin edges cast to
    float32, shape ``(num_bins + 1,)``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("abs_histogram")
    # END YOUR SOLUTION


def percentile_range(hist, edges, min_value, max_value, percentile: float = 99.999) -> tuple[np.float32, np.float32]:
    """Learn 8, eq. (8): ONNX Runtime's symmetric percentile range (``compute_percentile``) from a
    histogram of ``|x|`` (``hist`` with ``len(edges) == len(hist) + 1``). Exactly:

    1. ``cdf = np.cumsum(hist / hist.sum())`` (float64, this expression: the tests compare bits);
    2. ``i = np.searchsorted(cdf, percentile / 100.0)``: the first bin whose cdf reaches p;
    3. ``t = edges[i]``, the **left** edge of that bin (so even 100% cuts the top bin off);
    4. the range is ``(-t, t)``, clamped to the data: ``lo = max(-t, min_value)``,
       ``hi = min(t, max_value)`` (``min_value``, ``max_value``: the data's own extremes).

    Return ``(lo, hi)`` as ``np.float32`` scalars.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("percentile_range")
    # END YOUR SOLUTION


def tflite_int8_qparams(lo, hi) -> tuple[np.float32, int]:
    """Learn 8, eq. (1) as TFLite's converter computes it (``GetAsymmetricQuantizationParams``)
    for int8 codes ``[-128, 127]``, every operation in float32::

        lo = min(lo, 0); hi = max(hi, 0)
        scale = (hi - lo) / 255
        zp_from_min = -128 - lo / scale
        zero_point = -128 if zp_from_min < -128, 127 if zp_from_min > 127,
                     else round_half_away_from_zero(zp_from_min)

    Return ``(scale, zero_point)``: a ``np.float32`` and a Python int. Raise ``ValueError`` when
    ``lo`` and ``hi`` are both 0 (TFLite would store scale 0, which no kernel accepts).
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("tflite_int8_qparams")
    # END YOUR SOLUTION
