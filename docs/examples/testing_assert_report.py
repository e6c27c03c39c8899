"""What ``assert_bit_exact`` reports (how-to "Use refquant as the golden reference", §2).

Requantizing four int32 accumulators with M = 0.5 (a hand-checkable case): refquant's TFLite
reference path rounds half away from zero; a port that uses ``np.rint`` (half to even) differs on
two ties. The report counts them, histograms the differences in LSB and lists each with its inputs.
Float outputs are compared as bit patterns, their distance counted in ULP."""
import numpy as np

from refquant.testing import assert_bit_exact

acc = np.int32([[5, 3], [-5, 4]])                    # (2, 2) accumulators; acc * 0.5 = 2.5, 1.5, -2.5, 2
expected = np.int8([[3, 2], [-3, 2]])                # half away from zero (TFLite reference, std::round)
actual = np.rint(acc * 0.5).astype(np.int8)         # half to even: 2, 2, -2, 2

try:
    assert_bit_exact(actual, expected, inputs={"acc": acc, "acc * M": acc * 0.5})
except AssertionError as err:
    report = str(err)
print(report)
assert report.startswith("arrays are not bit-exact: 2 of 4 elements differ (50%)")
assert "(0, 0)  2       3         -1    5    2.5" in report and "(1, 0)  -2      -3        +1    -5   -2.5" in report

y = np.float32([1.0, 0.0])                           # a float output: by bits, distance in ULP
try:
    assert_bit_exact(y, np.float32([np.nextafter(np.float32(1), np.float32(2)), -0.0]))
except AssertionError as err:
    report = str(err)
print(report)
assert "1.0 (0x3f800000)  1.0000001192092896 (0x3f800001)  -1" in report and "0.0 (0x00000000)" in report
