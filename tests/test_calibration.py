"""refquant.calibration without any backend: names, options, bad input, hand-worked ranges,
batch-order claims, bounded memory, and the float32 helpers (against exact fractions)."""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.calibration import (
    ALL_CALIBRATORS,
    CALIBRATORS,
    EntropyObserver,
    HistogramMSEObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    Observer,
    PercentileObserver,
    TensorRTEntropyObserver,
    aten,
    make_observer,
)
from refquant.calibration.entropy import entropy_threshold
from refquant.calibration.entropy_tensorrt import compute_amax_entropy
from refquant.errors import (
    CalibrationError,
    QuantizationTypeError,
    QuantizationValueError,
    RefquantError,
    ShapeError,
    UnsupportedError,
)

F32 = np.float32
PER_CHANNEL = ("minmax", "moving_average")
# fewer bins where a test checks streaming, not the arithmetic (NVIDIA's search is quadratic in the bins)
FAST = {"entropy_tensorrt": {"num_bins": 256}, "mse": {"num_bins": 256}}


def _batches(seed=0, n=4, shape=(3, 5, 7), scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * scale).astype(F32) for _ in range(n)]


def _range(name, batches, **options):
    obs = make_observer(name, **options)
    for x in batches:
        obs.update(x)
    return obs.range()


# --------------------------------------------------------------------------- names and options


def test_names_are_pinned():
    assert CALIBRATORS == ("minmax", "moving_average", "percentile", "mse", "entropy")
    assert ALL_CALIBRATORS == CALIBRATORS + ("entropy_tensorrt",)
    classes = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver,
               "percentile": PercentileObserver, "mse": HistogramMSEObserver, "entropy": EntropyObserver,
               "entropy_tensorrt": TensorRTEntropyObserver}
    for name in ALL_CALIBRATORS:
        obs = make_observer(name)
        assert type(obs) is classes[name] and isinstance(obs, Observer)
        assert obs.name == name and obs.axis is None


@pytest.mark.parametrize("name", ALL_CALIBRATORS)
def test_every_observer_streams_and_reports_float32_scalars(name):
    lo, hi = _range(name, _batches())
    for v in (lo, hi):
        assert isinstance(v, np.float32) and np.shape(v) == (), f"{name}: {type(v)} {np.shape(v)}"
    assert lo <= hi


@pytest.mark.parametrize("name", PER_CHANNEL)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_per_channel_shapes(name, axis):
    batches = _batches()
    lo, hi = _range(name, batches, axis=axis)
    c = batches[0].shape[axis]
    assert lo.shape == hi.shape == (c,) and lo.dtype == hi.dtype == np.float32
    assert np.all(lo <= hi)


def test_unknown_name_and_bad_name_type():
    with pytest.raises(QuantizationValueError, match=r"name must be one of .*got 'kl'"):
        make_observer("kl")
    with pytest.raises(QuantizationTypeError, match="name"):
        make_observer(3)


@pytest.mark.parametrize("name, options, error, word", [
    ("minmax", {"num_bins": 10}, QuantizationTypeError, "num_bins"),
    ("entropy", {"symmetric": True}, QuantizationTypeError, "symmetric"),
    ("mse", {"quant_min": 0}, QuantizationTypeError, "quant_min"),
    ("percentile", {"num_bins": 0}, QuantizationValueError, "num_bins"),
    ("percentile", {"num_bins": 2.5}, QuantizationTypeError, "num_bins"),
    ("percentile", {"num_bins": True}, QuantizationTypeError, "num_bins"),
    ("percentile", {"percentile": 100.5}, QuantizationValueError, "percentile"),
    ("percentile", {"percentile": float("nan")}, QuantizationValueError, "percentile"),
    ("percentile", {"percentile": "99"}, QuantizationTypeError, "percentile"),
    ("percentile", {"symmetric": "yes"}, QuantizationTypeError, "symmetric"),
    ("moving_average", {"averaging_constant": 1.5}, QuantizationValueError, "averaging_constant"),
    ("moving_average", {"averaging_constant": -0.1}, QuantizationValueError, "averaging_constant"),
    ("moving_average", {"variant": "tflite"}, QuantizationValueError, "variant"),
    ("moving_average", {"variant": "onnxruntime", "averaging_constant": 0.1}, QuantizationValueError,
     "averaging_constant"),
    ("mse", {"dtype": "float32"}, QuantizationValueError, "dtype"),
    ("mse", {"capability": "sse2"}, QuantizationValueError, "capability"),
    ("mse", {"num_bins": -3}, QuantizationValueError, "num_bins"),
    ("mse", {"num_bins": 10 ** 15}, QuantizationValueError, "num_bins"),
    ("entropy", {"num_quantized_bins": 256}, QuantizationValueError, "num_quantized_bins"),
    ("entropy", {"num_bins": 0}, QuantizationValueError, "num_bins"),
    ("entropy_tensorrt", {"start_bin": 4096}, QuantizationValueError, "start_bin"),
    ("entropy_tensorrt", {"num_bits": 40}, QuantizationValueError, "num_bits"),
    ("entropy_tensorrt", {"stride": 0}, QuantizationValueError, "stride"),
    ("entropy_tensorrt", {"unsigned": 1}, QuantizationTypeError, "unsigned"),
])
def test_bad_options_name_the_option(name, options, error, word):
    with pytest.raises(error, match=rf"\b{word}\b"):
        make_observer(name, **options)


@pytest.mark.parametrize("name", ["percentile", "mse", "entropy", "entropy_tensorrt"])
def test_histogram_observers_are_per_tensor(name):
    with pytest.raises(UnsupportedError, match="axis must be None"):
        make_observer(name, axis=1)


@pytest.mark.parametrize("axis", ["1", 1.0, True])
def test_axis_must_be_an_int(axis):
    with pytest.raises(QuantizationTypeError, match="axis"):
        make_observer("minmax", axis=axis)


# --------------------------------------------------------------------------- bad input


BAD_X = [
    (np.array([1.0, np.nan], F32), QuantizationValueError, r"x must be finite, got nan at index \(1,\)"),
    (np.array([[1.0], [np.inf]]), QuantizationValueError, "x must be finite, got inf"),
    (np.array([-np.inf], np.float16), QuantizationValueError, "x must be finite"),
    (np.array([1.0, 1e39]), QuantizationValueError, "x must be finite in float32, got 1e[+]?39"),
    (np.zeros((0, 3), F32), ShapeError, r"x must not be empty, got shape \(0, 3\)"),
    (np.arange(4), QuantizationTypeError, "x must be a float array, got integer dtype int64"),
    (np.array([True, False]), QuantizationTypeError, "x must be a float array"),
    (np.array([1 + 2j]), QuantizationTypeError, "x must be a real float array"),
    ([[1.0, 2.0], [3.0]], QuantizationTypeError, "x must be"),
    ("1.0", QuantizationTypeError, "x must be"),
]


@pytest.mark.parametrize("name", ALL_CALIBRATORS)
@pytest.mark.parametrize("x, error, message", BAD_X)
def test_bad_batches_are_refused_and_leave_the_state_alone(name, x, error, message):
    obs = make_observer(name, **FAST.get(name, {}))
    with pytest.raises(error, match=message):
        obs.update(x)
    with pytest.raises(CalibrationError):  # nothing was recorded
        obs.range()
    good = _batches(1)
    for b in good:
        obs.update(b)
    before = obs.range()
    with pytest.raises(error):
        obs.update(x)
    assert obs.range() == before


@pytest.mark.parametrize("name", PER_CHANNEL)
def test_per_channel_axis_checks(name):
    obs = make_observer(name, axis=1)
    with pytest.raises(ShapeError, match=r"axis=1 is out of range for x of shape \(5,\)"):
        obs.update(np.ones(5, F32))
    obs = make_observer(name, axis=-3)
    with pytest.raises(ShapeError, match=r"axis=-3 .* at least 3 dimensions"):
        obs.update(np.ones((2, 2), F32))
    obs = make_observer(name, axis=0)
    obs.update(np.ones((3, 2), F32))
    with pytest.raises(ShapeError, match=r"x must have 3 channels along axis 0"):
        obs.update(np.ones((4, 2), F32))
    assert obs.range()[0].shape == (3,)


@pytest.mark.parametrize("name", ALL_CALIBRATORS)
def test_range_before_update_and_after_reset(name):
    obs = make_observer(name, **FAST.get(name, {}))
    with pytest.raises(CalibrationError, match=rf"{name} observer has no data"):
        obs.range()
    assert issubclass(CalibrationError, RefquantError) and issubclass(CalibrationError, RuntimeError)
    batches = _batches(2)
    for x in batches:
        obs.update(x)
    first = obs.range()
    obs.reset()
    with pytest.raises(CalibrationError):
        obs.range()
    for x in batches:
        obs.update(x)
    assert obs.range() == first


@pytest.mark.parametrize("name", ALL_CALIBRATORS)
def test_other_float_dtypes_and_layouts_equal_float32(name):
    """float16/float64 are converted to float32; byte-swapped and strided arrays give the same range."""
    batches = [x.astype(np.float16).astype(F32) for x in _batches(3)]
    options = FAST.get(name, {})
    ref = _range(name, batches, **options)
    assert _range(name, [x.astype(np.float16) for x in batches], **options) == ref
    assert _range(name, [x.astype(np.float64) for x in batches], **options) == ref
    assert _range(name, [x.astype(">f4") for x in batches], **options) == ref
    assert _range(name, [np.asfortranarray(x) for x in batches], **options) == ref
    assert _range(name, [x.tolist() for x in batches], **options) == ref


# --------------------------------------------------------------------------- hand-worked values


def test_minmax_by_hand():
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], F32)
    assert _range("minmax", [x]) == (-4.0, 3.0)
    lo, hi = _range("minmax", [x], axis=0)
    np.testing.assert_array_equal(lo, [-1.0, -4.0])
    np.testing.assert_array_equal(hi, [2.0, 3.0])
    assert _range("minmax", [x], symmetric=True) == (-4.0, 4.0)
    assert _range("minmax", [x, np.array([9.0], F32)]) == (-4.0, 9.0)


def test_moving_average_by_hand():
    b1, b2 = np.array([0.0, 1.0], F32), np.array([2.0, 3.0], F32)
    # PyTorch: the first batch sets (0, 1); then lo = 0 + 0.5 (2 - 0), hi = 1 + 0.5 (3 - 1)
    assert _range("moving_average", [b1, b2], averaging_constant=0.5) == (1.0, 2.0)
    assert _range("moving_average", [b1, b2]) == (F32(0) + F32(0.01) * F32(2), F32(1) + F32(0.01) * F32(2))
    # ONNX Runtime: the mean of the batch minima (0, 2) and maxima (1, 3)
    assert _range("moving_average", [b1, b2], variant="onnxruntime") == (1.0, 2.0)
    assert _range("moving_average", [b1, b2 - 10], variant="onnxruntime", symmetric=True) == (-4.0, 4.0)


def test_percentile_by_hand():
    """Integer data whose histogram edges are integers, so every threshold can be counted by hand."""
    # symmetric: |x| = 1..100, each twice, 99 bins over [1, 100]: bin k holds |x| = k + 1 (bin 98 also
    # holds 100), so cdf[k] = (k + 1) / 100 and the first cdf >= 0.895 is k = 89, edge 90
    x = np.concatenate([-np.arange(1, 101, dtype=F32), np.arange(1, 101, dtype=F32)])
    assert _range("percentile", [x], num_bins=99, percentile=89.5) == (F32(-90.0), F32(90.0))
    # positive data: the symmetric range's low end is raised to the data's minimum (ONNX Runtime's clamp)
    assert _range("percentile", [np.arange(1, 101, dtype=F32)], num_bins=99, percentile=89.5) == (1.0, 90.0)
    # signed: -50..50 over 100 unit bins (50 joins bin 99), cdf[k] = (k + 1) / 101; a 90% range cuts
    # 5% each side: first cdf >= 0.05 is k = 5 (edge -45), first cdf >= 0.95 is k = 95 (edge 45)
    lo, hi = _range("percentile", [np.arange(-50, 51, dtype=F32)], num_bins=100, percentile=90.0,
                    symmetric=False)
    assert (lo, hi) == (F32(-45.0), F32(45.0))


def test_entropy_defaults_reduce_to_minmax_on_one_batch():
    """128 bins and 128 quantized bins: one window, the whole histogram, clamped to the data."""
    x = _batches(5)[0]
    assert _range("entropy", [x]) == (x.min(), x.max())


def test_entropy_threshold_by_hand():
    """Four bins, two quantized bins, so windows i = 1 and i = 2 around the zero bin z = 2.

    i = 1: bins [1, 4) (an even bin count makes windows one bin wider on the right), threshold
    (-1, 2); P = [50 + 1, 50, 1]; groups of m = 1 bin: Q = [50, 50 + 1, 0] (the leftover bin is
    summed into the last group but gets no Q); smoothed Q = [49.99995, 50.99995, 0.0001];
    D = 0.5 ln(0.5/0.495) + 0.49 ln(0.49/0.505) + 0.0098 ln(0.0098/1e-6) = 0.08.
    i = 2: all bins, threshold (-2, 2); Q = [25, 25, 25, 25] (51 / 2 truncated); D = 0.60.
    """
    hist = np.array([1, 50, 50, 1], np.int64)
    edges = np.array([-2, -1, 0, 1, 2], F32)
    assert entropy_threshold(hist, edges, F32(-2), F32(2), 2) == (F32(-1), F32(2))
    assert entropy_threshold(hist, edges, F32(-0.5), F32(1.5), 2) == (F32(-0.5), F32(1.5))  # clamped to the data


def test_tensorrt_amax_is_an_edge_and_last_minimum():
    hist = np.zeros(300, np.int32)
    hist[:100] = 10  # uniform mass in the first 100 bins: every window from 128 on is lossless
    edges = np.arange(301, dtype=F32)
    amax = compute_amax_entropy(hist, edges, 8, False, 1, 128)
    assert amax == edges[300]  # D is equal (0) for all i >= 128: the LAST minimum wins
    assert isinstance(amax, np.float32)
    lo, hi = _range("entropy_tensorrt", [np.linspace(0.01, 1, 500, dtype=F32)], num_bins=256, unsigned=True)
    assert lo == 0 and hi > 0


def test_tensorrt_zero_first_batch_cannot_grow():
    obs = make_observer("entropy_tensorrt")
    obs.update(np.zeros(10, F32))
    assert obs.range() == (F32(-0.0), F32(0.0))
    with pytest.raises(CalibrationError, match="bin width is 0"):
        obs.update(np.ones(3, F32))


def test_percentile_refuses_a_range_too_narrow_for_its_bins():
    obs = make_observer("percentile")
    x = (F32(1) + np.arange(30, dtype=F32) * F32(2 ** -23)).astype(F32)  # 30 distinct float32 values
    with pytest.raises(CalibrationError, match="cannot be cut into 2048 histogram bins"):
        obs.update(x)
    obs.update(np.array([0.0, 1.0], F32))
    assert obs.range()[1] <= 1.0


# --------------------------------------------------------------------------- batch order and memory


@pytest.mark.parametrize("options", [{}, {"axis": 1}, {"symmetric": True}])
def test_minmax_ignores_batch_order(options):
    batches = _batches(6, n=5)
    ref = _range("minmax", batches, **options)
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        np.testing.assert_array_equal(_range("minmax", [batches[i] for i in perm], **options), ref)
    np.testing.assert_array_equal(_range("minmax", [np.concatenate(batches)], **options), ref)


def test_ort_moving_average_ignores_order_when_sums_are_exact():
    """The mean is order-free when no sum rounds (small integer minima and maxima)."""
    batches = [np.array([-k, k + 1], F32) for k in range(7)]
    ref = _range("moving_average", batches, variant="onnxruntime")
    assert _range("moving_average", batches[::-1], variant="onnxruntime") == ref == (F32(-3.0), F32(4.0))


@pytest.mark.parametrize("name", ["moving_average", "percentile", "mse", "entropy", "entropy_tensorrt"])
def test_order_dependent_observers_are_deterministic(name):
    """Claimed order-dependent, never random: the same stream twice gives the same range."""
    batches = _batches(7, n=3) + [_batches(8, n=1, scale=1.5)[0]]
    assert _range(name, batches, **FAST.get(name, {})) == _range(name, batches, **FAST.get(name, {}))


def test_pytorch_moving_average_depends_on_order():
    a, b = np.array([0.0, 1.0], F32), np.array([-10.0, 10.0], F32)
    assert _range("moving_average", [a, b]) != _range("moving_average", [b, a])


@pytest.mark.parametrize("name, options", [(n, {}) for n in ALL_CALIBRATORS] + [("minmax", {"axis": 0})])
def test_state_size_does_not_grow_with_the_batch_count(name, options):
    """Batches inside the first batch's range: the pickled observer has the same size after 5 and 200."""
    rng = np.random.default_rng(9)
    first = np.linspace(-3, 3, 64, dtype=F32).reshape(4, 16)

    def size(n):
        obs = make_observer(name, **options, **FAST.get(name, {}))
        obs.update(first)
        for _ in range(n):
            obs.update(np.clip(rng.standard_normal((4, 16)), -2.5, 2.5).astype(F32))
        return len(pickle.dumps(obs))

    assert size(200) == size(5)


def test_ort_moving_average_keeps_two_floats_per_batch():
    def size(n):
        obs = make_observer("moving_average", variant="onnxruntime")
        for _ in range(n):
            obs.update(np.ones(1000, F32))
        return len(pickle.dumps(obs))

    assert size(512) - size(256) <= 2 * 4 * 256 + 200  # two float32 per batch (doubling buffer)


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=20), min_size=1, max_size=5))
def test_minmax_is_the_min_and_max_of_everything(batches):
    batches = [np.array(b, F32) for b in batches]
    everything = np.concatenate(batches)
    assert _range("minmax", batches) == (everything.min(), everything.max())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=2, max_size=30), min_size=1, max_size=3),
       st.sampled_from(["percentile", "entropy", "mse", "moving_average"]))
def test_ranges_lie_inside_the_data(batches, name):
    batches = [np.array(b, F32) for b in batches]
    everything = np.concatenate(batches)
    lo, hi = _range(name, batches, **({"num_bins": 64} if name in ("percentile", "mse") else {}))
    assert lo <= hi
    if name != "mse":  # the searched range ends on a bin edge, which may pass the data by a rounding
        assert everything.min() <= lo and hi <= everything.max()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=12), min_size=1, max_size=4),
       st.sampled_from(PER_CHANNEL))
def test_per_channel_on_one_channel_equals_per_tensor(batches, name):
    tensor = _range(name, [np.array(b, F32) for b in batches])
    channel = _range(name, [np.array(b, F32)[None, :] for b in batches], axis=0)
    assert (channel[0][0], channel[1][0]) == tensor


# --------------------------------------------------------------------------- float32 helpers


def test_fma_f32_rounds_once():
    """Against exact fractions, on random values and on products that land exactly on float32 ties."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal(3000).astype(F32)
    b = (rng.standard_normal(3000) * 10.0 ** rng.integers(-3, 3, 3000)).astype(F32)
    c = (rng.standard_normal(3000) * 10.0 ** rng.integers(-8, 8, 3000)).astype(F32)
    # ties: a*b exact in float32 plus half an ulp of c, plus or minus a tiny amount
    a[:200] = F32(1.5)
    b[:200] = F32(2.0 ** -30) * rng.choice([1, 3, -1], 200).astype(F32)
    c[:200] = F32(1.0)
    got = aten.fma_f32(a, b, c)
    for i in range(a.size):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        want = F32(float(exact))  # float(Fraction) rounds once to float64 ...
        lo, hi = np.nextafter(want, F32(-np.inf)), np.nextafter(want, F32(np.inf))
        best = min((lo, want, hi), key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.int32)) & 1))
        assert got[i] == best, f"fma({a[i]!r}, {b[i]!r}, {c[i]!r}) = {got[i]!r}, exact rounding {best!r}"


def test_capability_resolution():
    assert aten.resolve_capability("auto") in ("avx512", "avx2", "default")
    assert aten.resolve_capability("default") == "default"
    with pytest.raises(QuantizationValueError, match="capability"):
        aten.resolve_capability("neon")


def test_cascade_sum_small_cases_by_hand():
    assert aten.cascade_sum_f32(np.array([1.0, 2.0, 3.0], F32)) == 6.0
    # two vectors of 8 lanes added lane-wise, then the lanes left to right: lane 0 is 1 + 2**24, a tie
    # that rounds to 2**24, and each later +1 is another tie lost: torch.sum gives 2**24, not 2**24 + 8
    x = np.array([1.0] * 8 + [2.0 ** 24] + [0.0] * 7, F32)
    assert aten.cascade_sum_f32(x) == F32(2.0 ** 24)
