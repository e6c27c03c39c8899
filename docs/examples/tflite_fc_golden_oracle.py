"""refquant as the golden oracle of a pytest test (how-to, §7).

``my_int8_linear`` stands for the code under test (a C kernel called through ctypes, a port to
another language, an accelerator's simulator...): it must return what LiteRT's reference
FULLY_CONNECTED returns, bit for bit. pytest collects ``test_*`` functions from your tests/
directory; this file also runs the test itself when executed as a script."""
import numpy as np

from refquant.backends.tflite import fully_connected


def prepare(x_scale, w_scale, y_scale):
    """Offline part of the code under test: the double multiplier of each output channel."""
    return np.float64(np.float32(x_scale)) * np.asarray(w_scale, np.float32).astype(np.float64) / np.float64(
        np.float32(y_scale))


def my_int8_linear(x, x_zp, w, b, multiplier, y_zp, round_fn):
    """Runtime part of the code under test (int8 in, int8 out, no activation)."""
    acc = (x.astype(np.int64) - x_zp) @ w.astype(np.int64).T + b        # exact int32 accumulators
    return np.clip(round_fn(acc * multiplier) + y_zp, -128, 127).astype(np.int8)


def half_away(v):  # std::round, exact on doubles
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


def cases(seed=0, n=90):
    """Seeded layers: realistic scales, power-of-two scales (exact ties), tiny output scales (saturation)."""
    rng = np.random.default_rng(seed)
    for t in range(n):
        kind = ("random", "ties", "saturating")[t % 3]
        k, n_out = int(rng.integers(1, 64)), int(rng.integers(1, 9))
        x = rng.integers(-128, 128, (int(rng.integers(1, 20)), k)).astype(np.int8)
        w = rng.integers(-127, 128, (n_out, k)).astype(np.int8)
        b = rng.integers(-5000, 5000, n_out).astype(np.int32)
        if kind == "ties":
            xs, ws, ys = np.float32(2.0 ** -3), (2.0 ** -rng.integers(4, 9, n_out)).astype(np.float32), np.float32(1.0)
        else:
            xs, ws = np.float32(rng.uniform(0.005, 0.05)), rng.uniform(0.001, 0.01, n_out).astype(np.float32)
            ys = np.float32(rng.uniform(0.0005, 0.002) if kind == "saturating" else rng.uniform(0.02, 0.2))
        yield x, xs, int(rng.integers(-128, 128)), w, ws, b, ys, int(rng.integers(-128, 128))


def assert_bit_exact(round_fn, kernel="reference"):
    n = 0
    for x, xs, xz, w, ws, b, ys, yz in cases():
        want = fully_connected(x, xs, xz, w, ws, b, ys, yz, kernel=kernel)        # the oracle
        got = my_int8_linear(x, xz, w, b, prepare(xs, ws, ys), yz, round_fn)
        np.testing.assert_array_equal(got, want, err_msg=f"x_scale={xs} w_scale={ws} y_scale={ys}")
        n += got.size
    return n


def test_my_int8_linear_is_bit_exact():
    assert assert_bit_exact(half_away) > 1000


if __name__ == "__main__":
    test_my_int8_linear_is_bit_exact()
    print("my_int8_linear == LiteRT reference FULLY_CONNECTED on", assert_bit_exact(half_away), "outputs")
    try:  # the same test catches a port that rounds half to even (np.rint)
        assert_bit_exact(np.rint)
    except AssertionError as e:
        first = next((ln.strip() for ln in str(e).splitlines() if "ACTUAL" in ln), "")
        print("np.rint instead of std::round fails:", first)   # e.g. [9, 2]: -62 (ACTUAL), -63 (DESIRED)
    else:
        raise AssertionError("the tie-heavy cases should expose round-half-to-even")
