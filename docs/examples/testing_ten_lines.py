"""Fuzz your kernel against refquant in ten lines (how-to "Use refquant as the golden reference", §1).

``my_quantize`` stands for the code under test: TFLite's reference QUANTIZE ported to another
language. hypothesis draws parameters valid for the profile and tensors rich in exact ties
(k + 1/2)·S, their float32 neighbours, range ends and saturating values; refquant's face op is the
oracle; ``assert_bit_exact`` reports the first mismatches beside their inputs. Run as a script, the
file also shows a port that looks right and is not."""
import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from refquant.backends import tflite
from refquant.testing import assert_bit_exact
from refquant.testing.strategies import qparams, tensors


def std_round(v):                      # std::round: half away from zero, exact
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


ROUND = std_round                      # the port's rounding (__main__ below tries another one)


def my_quantize(x, scale, zero_point):  # the code under test
    v = (x / np.float32(scale)).astype(np.float32)                       # float32(x / s), as LiteRT
    return np.clip(ROUND(v) + zero_point, -128, 127).astype(np.int8)


@settings(max_examples=100, deadline=None, derandomize=True, database=None, phases=[Phase.generate])
@given(qp=qparams("tflite_reference"), data=st.data())
def test_my_quantize(qp, data):
    x = data.draw(tensors(qp, (4, 16)))
    want = tflite.quantize(x, qp.scale, qp.zero_point)                   # the oracle
    got = my_quantize(x, qp.scale, int(qp.zero_point))
    assert_bit_exact(got, want, inputs={"x": x, "x / s": x / np.float32(qp.scale)})


if __name__ == "__main__":
    test_my_quantize()
    print("std::round port: bit-exact on 100 drawn cases")
    ROUND = lambda v: np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))  # noqa: E731 - looks the same...
    try:
        test_my_quantize()
    except AssertionError as err:
        report = str(err)
        print("floor(|v| + 0.5) port:", report.splitlines()[0], report.split("(C order):\n")[1], sep="\n")
        assert "0.4999999701976776" in report  # x / s = 0.49999997, and float32(0.49999997 + 0.5) == 1
    else:
        raise AssertionError("the strategies should reach v = 0.49999997, the float32 neighbour of a tie")
