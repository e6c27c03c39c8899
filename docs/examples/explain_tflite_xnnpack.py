"""TFLite reference kernels vs the XNNPACK delegate: one FULLY_CONNECTED, explained (how-to, §1).

The golden outputs came from the reference kernels (``kernel="reference"``); the phone ran the
default interpreter, whose XNNPACK delegate takes the node. Inputs small enough to check by hand:
S_x S_w / S_y = 0.5 * 0.5 / 1 = 1/4, so the accumulators 2, 6, -2, 5 give 0.5, 1.5, -0.5, 1.25.
"""
import numpy as np

from refquant.backends import tflite
from refquant.testing.explain import explain_mismatch

inputs = dict(x=np.array([[1, 2, 3, 4]], np.int8), x_scale=0.5, x_zero_point=0,
              w=np.array([[2, 0, 0, 0], [0, 0, 2, 0], [-2, 0, 0, 0], [0, 1, 1, 0]], np.int8), w_scale=0.5,
              b=np.zeros(4, np.int32), y_scale=1.0, y_zero_point=0)

golden = tflite.fully_connected(**inputs, kernel="reference")  # std::round: ties away from zero
device = tflite.fully_connected(**inputs, kernel="xnnpack")    # lrintf: ties to even
print("golden:", golden.tolist(), " device:", device.tolist())
assert golden.tolist() == [[1, 2, -1, 1]] and device.tolist() == [[0, 2, 0, 1]]

e = explain_mismatch("tflite.fully_connected", {**inputs, "kernel": "reference"}, device)
print(e)
assert e.best.label == "tflite_xnnpack" and e.reproduces("tflite_xnnpack")
assert e.expected.n_diff == 2 and e.expected.max_lsb == 1
assert "rounding: expected round half away from zero (std::round); actual round half to even" in "\n".join(
    e.differences)
