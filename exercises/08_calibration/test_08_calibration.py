"""Tests for exercise 08. DO NOT EDIT: edit calibrate.py, then run ``python -m exercises 08``.

First the cases you can check by hand (Learn 8), then fresh data compared bit for bit with refquant:
the ``minmax`` and ``percentile`` observers of ``refquant.calibration`` (ONNX Runtime's
``HistogramCollector`` for the percentile) and ``refquant.backends.tflite.activation_qparams``.
"""

import gc
import weakref

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant.backends.tflite import activation_qparams
from refquant.calibration import make_observer
from refquant.calibration.ort_histogram import AbsoluteHistogram
from refquant.calibration.percentile import percentile_range as ort_percentile_range

ex = load_exercise(__file__, "calibrate.py")


def _bits(v):
    return f"{float(v)!r} (0x{np.float32(v).view(np.uint32):08X})"


def _same_f32(got, want) -> bool:
    return np.float32(got).view(np.uint32) == np.float32(want).view(np.uint32)


# ----------------------------------------------------------------------------- minmax_range
def test_minmax_by_hand():
    lo, hi = ex.minmax_range([np.array([1.0, -2.0]), np.array([[3.0]])])
    assert (float(lo), float(hi)) == (-2.0, 3.0), f"batches [1, -2] and [[3]]: expected (-2, 3), got ({lo}, {hi})"
    assert isinstance(lo, np.float32) and isinstance(hi, np.float32), "return np.float32 scalars"


def test_minmax_all_negative_by_hand():
    lo, hi = ex.minmax_range(iter([np.array([-5.0, -1.0]), np.array([-3.0])]))
    if float(hi) == 0.0:
        pytest.fail("all values are negative but hi came out 0: start from the first batch's max, not from 0")
    assert (float(lo), float(hi)) == (-5.0, -1.0), f"expected (-5, -1), got ({lo}, {hi})"


def test_minmax_no_batch():
    with pytest.raises(ValueError):
        ex.minmax_range(iter([]))


def test_minmax_float64_is_rounded_to_float32():
    # float32(0.1) = 0.100000001490116...; the observer sees float32, as a float32 model's tensors are
    lo, hi = ex.minmax_range([np.array([0.1, 0.3], np.float64)])
    assert _same_f32(lo, np.float32(0.1)) and _same_f32(hi, np.float32(0.3)), \
        f"convert each batch to float32 first: got ({lo!r}, {hi!r})"
    assert isinstance(lo, np.float32) and isinstance(hi, np.float32), "return np.float32 scalars"


def test_minmax_streams_the_batches():
    alive = []

    def batches():
        rng = np.random.default_rng(8)
        for i in range(12):
            kept = sum(ref() is not None for ref in alive[:-1])   # every batch but the one just handed out
            assert kept == 0, (f"when batch {i} was requested, {kept} earlier batches were still referenced: "
                               "keep only the running lo and hi, not the batches (no list, no concatenate)")
            x = rng.normal(size=(64, 8)).astype(np.float32)
            alive.append(weakref.ref(x))
            yield x
            del x
            gc.collect()

    ex.minmax_range(batches())


def test_minmax_fresh_streams_against_refquant():
    rng = np.random.default_rng(808)
    for trial in range(60):
        dtype = [np.float16, np.float32, np.float64][trial % 3]
        stream = [(rng.normal(rng.uniform(-3, 3), 10.0 ** rng.uniform(-2, 2), size=tuple(rng.integers(1, 6, 3))))
                  .astype(dtype) for _ in range(int(rng.integers(1, 7)))]
        observer = make_observer("minmax")
        for x in stream:
            observer.update(x)
        want = observer.range()
        got = ex.minmax_range(iter(stream))
        assert _same_f32(got[0], want[0]) and _same_f32(got[1], want[1]), \
            f"trial {trial} ({np.dtype(dtype).name}): expected ({_bits(want[0])}, {_bits(want[1])}), got {got}"


# ----------------------------------------------------------------------------- abs_histogram
def test_abs_histogram_by_hand():
    # |x| = [3, 1, 0, 2]: 3 bins from 0 to 3, edges [0, 1, 2, 3]; the last bin includes its right edge.
    hist, edges = ex.abs_histogram(np.array([-3.0, 1.0, 0.0, 2.0]), num_bins=3)
    assert np.asarray(hist).tolist() == [1, 1, 2], f"expected counts [1, 1, 2], got {np.asarray(hist).tolist()}"
    assert np.asarray(edges).tolist() == [0.0, 1.0, 2.0, 3.0], f"expected edges [0, 1, 2, 3], got {edges}"
    assert np.asarray(edges).dtype == np.float32, f"cast the edges to float32, got {np.asarray(edges).dtype}"


def test_abs_histogram_fresh_against_refquant():
    rng = np.random.default_rng(8080)
    for trial in range(30):
        x = rng.standard_t(3, size=(int(rng.integers(2, 300)), 7)).astype(np.float32) * np.float32(rng.uniform(0.1, 9))
        num_bins = int(rng.choice([16, 128, 2048]))
        ref = AbsoluteHistogram(num_bins)
        ref.add(x)
        hist, edges = ex.abs_histogram(x, num_bins)
        np.testing.assert_array_equal(np.asarray(hist), ref.hist, err_msg=f"trial {trial}: counts")
        np.testing.assert_array_equal(np.asarray(edges).view(np.uint32), ref.edges.view(np.uint32),
                                      err_msg=f"trial {trial}: edges (float32 bits)")


# ----------------------------------------------------------------------------- percentile_range
HIST = np.array([4, 2, 1, 1])                        # 8 values: cdf = [0.5, 0.75, 0.875, 1.0], exact in binary
EDGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0], np.float32)


def test_percentile_by_hand():
    cases = [
        ((-3.5, 3.9, 80.0), (-2.0, 2.0)),     # cdf first reaches 0.8 in bin 2, whose left edge is 2
        ((0.0, 3.9, 80.0), (0.0, 2.0)),       # ReLU data: the low end is clamped to the data's minimum
        ((-3.5, 3.9, 87.5), (-2.0, 2.0)),     # cdf[2] == 0.875 exactly: searchsorted finds bin 2
        ((-3.5, 3.9, 100.0), (-3.0, 3.0)),    # bin 3 reaches 100%: its LEFT edge, 3, not 4
        ((-3.5, 2.5, 100.0), (-3.0, 2.5)),    # ... clamped to the data's maximum
    ]
    for (mn, mx, p), want in cases:
        got = ex.percentile_range(HIST, EDGES, np.float32(mn), np.float32(mx), p)
        got_f = (float(got[0]), float(got[1]))
        if got_f != want and (mn, mx, p) == (-3.5, 3.9, 80.0) and got_f == (-3.0, 3.0):
            pytest.fail("percentile 80 gave 3: the threshold is the LEFT edge of the bin, edges[i], not edges[i + 1]")
        assert got_f == want, f"min {mn}, max {mx}, percentile {p}: expected {want}, got {got_f}"
        assert isinstance(got[0], np.float32) and isinstance(got[1], np.float32), "return np.float32 scalars"


def test_percentile_fresh_histograms_against_refquant():
    rng = np.random.default_rng(8181)
    for trial in range(200):
        n = int(rng.integers(2, 300))
        hist = rng.integers(0, 50, n) * (rng.random(n) < 0.7)
        hist[0] += 1
        edges = np.cumsum(np.concatenate([[0], rng.uniform(0.01, 1, n)])).astype(np.float32)
        mn, mx = np.float32(-rng.uniform(0, edges[-1])), np.float32(rng.uniform(0, edges[-1]))
        p = float(rng.choice([99.999, 99.99, 99.9, 99.0, 90.0, 100.0, rng.uniform(50, 100)]))
        want = ort_percentile_range(hist, edges, mn, mx, p, symmetric=True)
        got = ex.percentile_range(hist, edges, mn, mx, p)
        assert _same_f32(got[0], want[0]) and _same_f32(got[1], want[1]), \
            f"trial {trial}, percentile {p}: expected ({_bits(want[0])}, {_bits(want[1])}), got {got}"


def test_percentile_observer_end_to_end():
    # Your histogram + your percentile = ONNX Runtime's PercentileCalibrater on one batch, bit for bit.
    rng = np.random.default_rng(8282)
    for trial in range(20):
        x = (rng.standard_t(4, size=(256, 16)) * rng.uniform(0.1, 5)).astype(np.float32)
        if trial % 2:
            x = np.maximum(x, 0)                                   # ReLU outputs
        num_bins, p = int(rng.choice([128, 2048])), float(rng.choice([99.999, 99.99, 99.9]))
        observer = make_observer("percentile", num_bins=num_bins, percentile=p)
        observer.update(x)
        want = observer.range()
        hist, edges = ex.abs_histogram(x, num_bins)
        got = ex.percentile_range(hist, edges, x.min(), x.max(), p)
        assert _same_f32(got[0], want[0]) and _same_f32(got[1], want[1]), \
            f"trial {trial}: expected ({_bits(want[0])}, {_bits(want[1])}), got {got}"


# ----------------------------------------------------------------------------- tflite_int8_qparams
def _check_qparams(lo, hi, want_scale, want_zp):
    scale, zp = ex.tflite_int8_qparams(lo, hi)
    assert isinstance(zp, int), f"[{lo}, {hi}]: return the zero point as a Python int, got {type(zp).__name__}"
    assert _same_f32(scale, want_scale), f"[{lo}, {hi}]: scale {_bits(scale)}, expected {_bits(want_scale)}"
    if zp != want_zp and zp == want_zp + 1 and want_zp < 0:
        pytest.fail(f"[{lo}, {hi}]: zero point {zp}, expected {want_zp}: the tie -124.5 rounds half AWAY from zero "
                    "(TFLite's std::round), not half to even")
    assert zp == want_zp, f"[{lo}, {hi}]: zero point {zp}, expected {want_zp}"


def test_tflite_qparams_by_hand():
    _check_qparams(-1.0, 2.984375, np.float32(2.0**-6), -64)      # S = 3.984375 / 255 = 1/64, Z = -128 + 64
    _check_qparams(0.0, 6.0, np.float32(6) / np.float32(255), -128)  # a ReLU6 output
    _check_qparams(2.0, 4.0, np.float32(4) / np.float32(255), -128)  # widened to [0, 4]
    _check_qparams(-4.0, -2.0, np.float32(4) / np.float32(255), 127)  # widened to [-4, 0]: Z = -128 + 255
    _check_qparams(-1.75, 125.75, np.float32(0.5), -125)          # Z = -128 + 3.5 = -124.5 exactly: -125


def test_tflite_qparams_all_zero_range():
    with pytest.raises(ValueError):
        ex.tflite_int8_qparams(0.0, 0.0)


def test_tflite_qparams_fresh_against_refquant():
    rng = np.random.default_rng(8383)
    n = 400
    lo = -(10.0 ** rng.uniform(-4, 3, n)) * (rng.random(n) < 0.8)
    hi = (10.0 ** rng.uniform(-4, 3, n)) * (rng.random(n) < 0.8)
    for a, b in zip(lo.astype(np.float32), hi.astype(np.float32)):
        if a == 0 and b == 0:
            continue
        qp = activation_qparams(a, b)
        want_s, want_z = np.float32(qp.scale), int(qp.zero_point)
        scale, zp = ex.tflite_int8_qparams(a, b)
        if not _same_f32(scale, want_s) or zp != want_z:
            s64 = (max(float(b), 0.0) - min(float(a), 0.0)) / 255.0
            hint = ""
            if _same_f32(np.float32(s64), scale) and not _same_f32(scale, want_s):
                hint = "; that scale is the float64 quotient: subtract and divide in float32"
            pytest.fail(f"[{float(a)!r}, {float(b)!r}]: expected ({_bits(want_s)}, {want_z}), got ({_bits(scale)}, {zp}){hint}")
