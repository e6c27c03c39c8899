"""A test file of your project with refquant's pytest plugin (how-to "Use refquant as the golden
reference", §3). pytest gives the test the ``refquant_oracle`` fixture; the golden file comes from
``--refquant-golden-dir`` (written once by ``refquant golden --op tflite.fully_connected --out
tests/golden/fully_connected.npz``). Run as a script, the file writes that golden file into a
temporary directory and builds the same ``Oracle`` the fixture returns."""
import numpy as np


def std_round(v):  # std::round, exact on doubles
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


def my_fully_connected(x, x_zp, w, w_scale, b, x_scale, y_scale, y_zp, activation):
    """The code under test: LiteRT's reference FULLY_CONNECTED, int8, as a port would write it."""
    m = np.float64(x_scale) * np.asarray(w_scale, np.float64) / np.float64(y_scale)   # (N,) or () float64
    acc = (x.astype(np.int64) - x_zp) @ w.astype(np.int64).T + b                       # exact accumulators
    lo = y_zp if activation in ("RELU", "RELU6") else -128                             # fused activation
    hi = min(127, y_zp + int(std_round(np.float32(6) / np.float32(y_scale)))) if activation == "RELU6" else 127
    return np.clip(std_round(acc * m) + y_zp, max(lo, -128), hi).astype(np.int8)


def run_case(case):
    p = case.params
    return my_fully_connected(case.inputs["x"], int(p["x_zero_point"]), p["w"], p["w_scale"], p["b"],
                              p["x_scale"], p["y_scale"], int(p["y_zero_point"]), case.attrs["activation"])


def test_fully_connected_golden_file(refquant_oracle):
    golden = refquant_oracle.golden("fully_connected")     # tests/golden/fully_connected.npz
    assert golden.op == "tflite.fully_connected" and golden.profile == "tflite_reference"
    assert golden.check(run_case) > 0                      # AssertionError with the report on a mismatch


def test_one_call(refquant_oracle):
    x, w = np.int8([[1, -2, 3]]), np.int8([[2, 2, 2]])
    want = refquant_oracle.op("tflite", "fully_connected", x, 0.5, 0, w, np.float32([0.25]), np.int32([0]), 1.0, 0,
                              kernel="reference")           # 0.125 * (2 - 4 + 6) = 0.5: a tie, away from zero
    refquant_oracle.assert_bit_exact(my_fully_connected(x, 0, w, 0.25, 0, 0.5, 1.0, 0, None), want)
    assert want[0, 0] == 1


if __name__ == "__main__":
    import tempfile

    from refquant.testing import write_golden
    from refquant.testing.plugin import Oracle

    with tempfile.TemporaryDirectory() as d:
        write_golden(f"{d}/fully_connected.npz", op="tflite.fully_connected", cases=24, seed=0)
        test_fully_connected_golden_file(Oracle(d))        # what pytest runs, with the fixture's object
        test_one_call(Oracle(d))
        n = Oracle(d).golden("fully_connected").check(run_case)
    assert n == 304  # 24 seeded cases of 1-4 rows and 1-8 outputs each
    print(f"my_fully_connected == the golden file's {n} outputs (24 cases); the tie 0.5 rounds to 1")
