"""refquant.calibration against the real calibrators, bit for bit.

* PyTorch 2.13 observers (``torch.ao.quantization``): ``min_val`` / ``max_val`` buffers of the
  min/max and moving-average observers, ``HistogramObserver``'s histogram, search result and
  ``calculate_qparams()`` (through :func:`refquant.backends.pytorch.choose_qparams`).
* ONNX Runtime 1.32 calibrators (``create_calibrator`` on a one-node model, one ``collect_data``
  call per batch, which is what one ``update`` means): MinMax, MinMax with moving average,
  Percentile, Entropy.
* NVIDIA pytorch-quantization's entropy calibrator: not installable here (it is published on
  NVIDIA's package index and needs SciPy), so its collection and ``_compute_amax_entropy`` are
  transcribed below line by line, running on real torch, with SciPy's ``entropy`` transcribed too.
* The ATen float32 kernels those calibrators rely on (``linspace``, ``arange``, ``histc``,
  ``sum``, ``cumsum``) against torch directly.

Every comparison is ``==``: each original's arithmetic is reproduced exactly, so no tolerance is
needed (see the module docstrings of refquant.calibration for the conditions).
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from refquant.backends.pytorch import choose_qparams
from refquant.calibration import aten, make_observer
from refquant.errors import CalibrationError

torch = pytest.importorskip("torch")
from torch.ao.quantization import observer as tob

pytestmark = pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max:UserWarning")

F32 = np.float32


# --------------------------------------------------------------------------- data


def _datasets():
    """name -> list of float32 batches of shape (2, 3, n): random and adversarial."""
    rng = np.random.default_rng(20260611)

    def normal(n, scale=1.0, shift=0.0):
        return (rng.standard_normal((2, 3, n)) * scale + shift).astype(F32)

    outlier = normal(40)
    outlier[1, 2, 7] = 60.0
    return {
        "random": [normal(int(n)) for n in rng.integers(5, 60, 4)],
        "random_same_shape": [normal(24) for _ in range(4)],
        "growing": [normal(30, scale=4.0 ** b) for b in range(4)],
        "shrinking": [normal(30, scale=4.0 ** -b) for b in range(3)],
        "constant": [np.full((2, 3, 10), 0.75, F32)] * 3,
        "constant_then_random": [np.full((2, 3, 20), -1.5, F32), normal(20), normal(20, 3.0)],
        "zeros_then_random": [np.zeros((2, 3, 8), F32), normal(25)],
        "all_negative": [-np.abs(normal(30)) - F32(0.25) for _ in range(3)],
        "single_outlier": [normal(40), outlier, normal(40)],
        "tiny_range": [normal(30, scale=1e-6, shift=1.0) for _ in range(3)],
        "shifted_up": [normal(30, shift=float(b)) for b in range(4)],
    }


DATASETS = _datasets()
# For the entropy methods, whose originals loop in Python over every bin: ranges that grow at most
# about 2x, so that histograms stay near their first size.
HIST_DATASETS = {k: v for k, v in DATASETS.items() if k not in ("growing", "single_outlier", "shrinking")}
HIST_DATASETS["mild_growing"] = [x * F32(1.25 ** b) for b, x in enumerate(DATASETS["random_same_shape"])]
HIST_DATASETS["mild_outlier"] = [x.copy() for x in DATASETS["random_same_shape"][:3]]
HIST_DATASETS["mild_outlier"][1][0, 1, 5] = 7.0
HIST_DATASETS["constant_then_random"] = [DATASETS["constant_then_random"][0]] + [
    x * F32(0.5) for x in DATASETS["random_same_shape"][:2]]
HIST_DATASETS["mild_shrinking"] = [x * F32(0.8 ** b) for b, x in enumerate(DATASETS["random_same_shape"])]
PER_CHANNEL_DATASETS = {k: DATASETS[k] for k in ("random_same_shape", "growing", "constant_then_random", "all_negative",
                                                  "single_outlier", "tiny_range")}


def _ours(name, batches, **options):
    obs = make_observer(name, **options)
    for x in batches:
        obs.update(x)
    return obs.range()


def _same(ours, theirs, what):
    """``ours == theirs`` as float32 arrays, shape first; a diagnosing message."""
    ours = np.asarray(ours, F32).reshape(-1)
    theirs = np.asarray(theirs, F32).reshape(-1)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs {theirs.shape}"
    bad = np.flatnonzero(ours.view(np.int32) != theirs.view(np.int32))
    if bad.size:
        i = bad[0]
        ulp = abs(int(ours[i].view(np.int32)) - int(theirs[i].view(np.int32)))
        pytest.fail(f"{what}: {bad.size} values differ, first at {i}: refquant {ours[i]!r} vs original "
                    f"{theirs[i]!r} ({ulp} ulp apart)")


# --------------------------------------------------------------------------- PyTorch observers


@pytest.mark.parametrize("data", list(DATASETS))
def test_minmax_equals_torch_minmax_observer(data):
    o = tob.MinMaxObserver()
    for x in DATASETS[data]:
        o(torch.from_numpy(x))
    lo, hi = _ours("minmax", DATASETS[data])
    _same([lo, hi], [o.min_val.item(), o.max_val.item()], f"minmax on {data}")


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("data", list(PER_CHANNEL_DATASETS))
def test_minmax_per_channel_equals_torch(data, axis):
    o = tob.PerChannelMinMaxObserver(ch_axis=axis)
    for x in DATASETS[data]:
        o(torch.from_numpy(x))
    lo, hi = _ours("minmax", DATASETS[data], axis=axis)
    assert lo.shape == hi.shape == (DATASETS[data][0].shape[axis],) and lo.dtype == np.float32
    _same(lo, o.min_val.numpy(), f"per-channel min on {data}, axis {axis}")
    _same(hi, o.max_val.numpy(), f"per-channel max on {data}, axis {axis}")


@pytest.mark.parametrize("c", [0.01, 0.3, 1.0])
@pytest.mark.parametrize("data", list(DATASETS))
def test_moving_average_equals_torch(data, c):
    o = tob.MovingAverageMinMaxObserver(averaging_constant=c)
    for x in DATASETS[data]:
        o(torch.from_numpy(x))
    lo, hi = _ours("moving_average", DATASETS[data], averaging_constant=c)
    _same([lo, hi], [o.min_val.item(), o.max_val.item()], f"moving average c={c} on {data}")


@pytest.mark.parametrize("data", list(PER_CHANNEL_DATASETS))
def test_moving_average_per_channel_equals_torch(data):
    o = tob.MovingAveragePerChannelMinMaxObserver(averaging_constant=0.25, ch_axis=1)
    for x in DATASETS[data]:
        o(torch.from_numpy(x))
    lo, hi = _ours("moving_average", DATASETS[data], averaging_constant=0.25, axis=1)
    _same(lo, o.min_val.numpy(), f"per-channel moving min on {data}")
    _same(hi, o.max_val.numpy(), f"per-channel moving max on {data}")


HISTOGRAM_CASES = [  # (torch dtype, qscheme, reduce_range)
    ("quint8", "per_tensor_affine", False),
    ("qint8", "per_tensor_symmetric", False),
    ("quint8", "per_tensor_affine", True),
    ("qint8", "per_tensor_affine", False),
]


@pytest.mark.parametrize("data", list(DATASETS))
def test_mse_equals_torch_histogram_observer(data):
    """Histogram buffer, searched range and ``calculate_qparams()`` (scale and zero point) all equal."""
    for dtype, qscheme, reduce_range in HISTOGRAM_CASES:
        o = tob.HistogramObserver(dtype=getattr(torch, dtype), qscheme=getattr(torch, qscheme),
                                  reduce_range=reduce_range)
        for x in DATASETS[data]:
            o(torch.from_numpy(x))
        obs = make_observer("mse", dtype=dtype)
        for x in DATASETS[data]:
            obs.update(x)
        _same(obs._hist.histogram, o.histogram.numpy(), f"HistogramObserver.histogram on {data}")
        lo, hi = obs.range()
        scale, zero_point = o.calculate_qparams()
        s, z = choose_qparams(lo, hi, dtype=dtype, qscheme=qscheme, reduce_range=reduce_range)
        _same(s, scale.numpy(), f"scale of {dtype} {qscheme} reduce_range={reduce_range} on {data} "
                                f"(range {lo!r}, {hi!r})")
        np.testing.assert_array_equal(z, zero_point.numpy(), err_msg=f"zero point, {dtype} {qscheme} on {data}")
        new_min, new_max = o._non_linear_param_search()  # the range itself (private, but the precise oracle)
        _same([lo, hi], [new_min.item(), new_max.item()], f"searched range on {data}")


def test_mse_many_random_streams_equal_torch():
    """Seeded random streams: sizes, scales and shifts that make the histogram grow and re-bin."""
    rng = np.random.default_rng(7)
    for trial in range(15):
        batches = [(rng.standard_normal(int(rng.integers(1, 400))) * 10.0 ** rng.uniform(-3, 2)
                    + rng.standard_normal() * rng.integers(0, 3)).astype(F32) for _ in range(int(rng.integers(1, 5)))]
        num_bins = int(rng.choice([16, 256, 2048]))
        o = tob.HistogramObserver(bins=num_bins)
        for x in batches:
            o(torch.from_numpy(x))
        new_min, new_max = o._non_linear_param_search()
        lo, hi = _ours("mse", batches, num_bins=num_bins)
        _same([lo, hi], [new_min.item(), new_max.item()], f"trial {trial}, num_bins {num_bins}")


MAX = np.finfo(F32).max
EXTREME_STREAMS = [  # ranges beyond float32's maximum (max - min overflows), and tiny widths that then grow
    [np.array([MAX, -MAX], F32)],
    [np.array([MAX, 0, 1, 2], F32), np.array([3e38, 1], F32)],
    [np.array([-MAX / 2, MAX / 2], F32), np.array([0.0, 1.0], F32)],
    [np.array([0, 1], F32), np.array([0, MAX], F32)],
    [np.array([1e-30, 2e-30], F32), np.array([1e-20], F32)],
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("stream", range(len(EXTREME_STREAMS)))
def test_extreme_ranges_equal_torch_and_transcription(stream):
    """Overflowing float32 arithmetic included: torch's NaN/inf search result, histc's overflowed
    bins (x86 converts them to INT64_MIN, which lands in bin 0), NVIDIA's failure to grow."""
    batches = EXTREME_STREAMS[stream]
    o = tob.HistogramObserver()
    for x in batches:
        o(torch.from_numpy(x))
    new_min, new_max = o._non_linear_param_search()
    _same(_ours("mse", batches), [new_min.item(), new_max.item()], f"mse on extreme stream {stream}")
    cal = _TranscribedHistogramCalibrator(num_bins=256)
    try:
        for x in batches:
            cal.collect(torch.from_numpy(x))
    except (OverflowError, RuntimeError):  # int(inf) bins, or a histc too large to allocate
        with pytest.raises(CalibrationError, match="would grow the histogram"):
            _ours("entropy_tensorrt", batches, num_bins=256)
        return
    amax = _compute_amax_entropy(cal._calib_hist.int().cpu().numpy(), cal._calib_bin_edges.cpu().numpy(), 8, False)
    _same(_ours("entropy_tensorrt", batches, num_bins=256)[1], amax.item(), f"amax on extreme stream {stream}")


# --------------------------------------------------------------------------- ATen kernels


def test_aten_kernels_equal_torch():
    rng = np.random.default_rng(11)
    for _ in range(60):
        a = F32(rng.standard_normal() * 10.0 ** rng.integers(-5, 5))
        b = F32(a + abs(rng.standard_normal()) * 10.0 ** rng.integers(-5, 5))
        n = int(rng.integers(2, 5000))
        _same(aten.linspace_f32(a, b, n), torch.linspace(float(a), float(b), n).numpy(), f"linspace({a}, {b}, {n})")
        w = F32(abs(rng.standard_normal()) * 10.0 ** rng.integers(-4, 2))
        m = F32(w * rng.integers(100, 4000) * (1 + rng.random()))
        _same(aten.arange_f32(0.0, float(m + w), float(w)),
              torch.arange(0, torch.tensor(m) + torch.tensor(w), torch.tensor(w)).numpy(), f"arange(0, {m}+{w}, {w})")
        x = (rng.standard_normal(int(rng.integers(1, 3000))) * 10.0 ** rng.integers(-3, 3)).astype(F32)
        lo, hi = float(x.min()) - abs(float(x.min())) * rng.random(), float(x.max())
        nb = int(rng.integers(1, 3000))
        _same(aten.histc_f32(x, nb, lo, hi), torch.histc(torch.from_numpy(x), nb, min=lo, max=hi).numpy(), "histc")
        assert float(aten.cascade_sum_f32(x)) == torch.sum(torch.from_numpy(x)).item(), f"sum of {x.size}"
        _same(aten.cumsum_f32(x), torch.cumsum(torch.from_numpy(x), 0).numpy(), "cumsum")


def test_aten_default_capability_matches_torch_under_that_dispatch():
    """Run torch with ``ATEN_CPU_CAPABILITY=default`` (kernels built without FMA): linspace rounds twice.
    (The AVX2 build is what this process runs, covered by :func:`test_aten_kernels_equal_torch`.)"""
    capability = "default"
    if aten.resolve_capability("auto") == "default":
        pytest.skip("this CPU has no AVX2 build to compare against")
    code = ("import numpy as np, torch; rng = np.random.default_rng(3); out = []\n"
            "for _ in range(200):\n"
            "    a = np.float32(rng.standard_normal()); b = np.float32(a + rng.random() * 100)\n"
            "    n = int(rng.integers(2, 3000))\n"
            "    out.append((float(a), float(b), n, torch.linspace(float(a), float(b), n).numpy().tobytes().hex()))\n"
            "print(repr(out))")
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    for a, b, n, hexbytes in ast.literal_eval(r.stdout):
        _same(aten.linspace_f32(a, b, n, capability), np.frombuffer(bytes.fromhex(hexbytes), F32),
              f"linspace({a}, {b}, {n}) under {capability}")


# --------------------------------------------------------------------------- ONNX Runtime calibrators


@pytest.fixture(scope="module")
def ort_calibrate(tmp_path_factory):
    """``(batches, method, per_batch=True, **extra_options) -> (lo, hi)`` from ONNX Runtime."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import (
        CalibrationDataReader,
        CalibrationMethod,
        create_calibrator,
    )

    d = tmp_path_factory.mktemp("ort_calibration")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "w"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), d / "relu.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self, batches):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"x": b}

    def run(batches, method, per_batch=True, **extra):
        with contextlib.redirect_stdout(io.StringIO()):  # ORT prints progress
            cal = create_calibrator(d / "relu.onnx", augmented_model_path=str(d / "augmented.onnx"),
                                    calibrate_method=getattr(CalibrationMethod, method), extra_options=extra)
            for group in ([b] for b in batches) if per_batch else [batches]:
                cal.collect_data(Reader(group))
            return cal.compute_data()["x"].range_value  # the input tensor x

    return run


@pytest.mark.parametrize("data", list(DATASETS))
def test_minmax_equals_ort(ort_calibrate, data):
    b = DATASETS[data]
    # one collect_data call: ORT 1.32 cannot merge per-channel ranges across calls (Python min of arrays)
    _same(_ours("minmax", b), ort_calibrate(b, "MinMax", per_batch=False), f"MinMax on {data}")
    _same(_ours("minmax", b, symmetric=True), ort_calibrate(b, "MinMax", per_batch=False, symmetric=True),
          f"symmetric MinMax on {data}")
    lo, hi = _ours("minmax", b, axis=1)
    ref_lo, ref_hi = ort_calibrate(b, "MinMax", per_batch=False, per_channel=True)  # ORT's channel axis is 1
    _same(lo, ref_lo, f"per-channel MinMax min on {data}")
    _same(hi, ref_hi, f"per-channel MinMax max on {data}")


@pytest.mark.parametrize("data", list(DATASETS))
def test_moving_average_equals_ort(ort_calibrate, data):
    b = DATASETS[data]
    ref = ort_calibrate(b, "MinMax", per_batch=False, moving_average=True)
    _same(_ours("moving_average", b, variant="onnxruntime"), ref, f"moving-average MinMax on {data}")
    ref = ort_calibrate(b, "MinMax", per_batch=False, moving_average=True, symmetric=True)
    _same(_ours("moving_average", b, variant="onnxruntime", symmetric=True), ref, f"symmetric moving average, {data}")


PERCENTILE_OPTIONS = [{}, {"symmetric": False}, {"num_bins": 256, "percentile": 99.0},
                      {"symmetric": False, "num_bins": 100, "percentile": 90.0}]


@pytest.mark.parametrize("data", list(DATASETS))
def test_percentile_equals_ort(ort_calibrate, data):
    for options in PERCENTILE_OPTIONS:
        try:
            ref = ort_calibrate(DATASETS[data], "Percentile", **options)
        except ValueError as err:  # np.histogram: "Too many bins for data range" (tiny_range, 2048 bins)
            assert "Too many bins" in str(err)
            with pytest.raises(CalibrationError, match="cannot be cut into"):
                _ours("percentile", DATASETS[data], **options)
            continue
        _same(_ours("percentile", DATASETS[data], **options), ref, f"Percentile {options} on {data}")


# ORT's loop is slow (a Python sum per group per window): few windows, an odd bin count among them
ENTROPY_OPTIONS = [{}, {"num_bins": 200}, {"num_bins": 63, "num_quantized_bins": 31}]


@pytest.mark.parametrize("data", list(HIST_DATASETS))
def test_entropy_equals_ort(ort_calibrate, data):
    for options in ENTROPY_OPTIONS:
        batches = HIST_DATASETS[data]
        _same(_ours("entropy", batches, **options), ort_calibrate(batches, "Entropy", **options),
              f"Entropy {options} on {data}")


def test_ort_one_collect_call_is_one_update_of_the_concatenation(ort_calibrate):
    """ORT histograms all batches of one collect_data call at once: one update with them concatenated."""
    b = HIST_DATASETS["mild_growing"]
    for name, method, options in [("percentile", "Percentile", {}), ("entropy", "Entropy", {"num_bins": 200})]:
        _same(_ours(name, [np.concatenate(b)], **options), ort_calibrate(b, method, per_batch=False, **options),
              f"{method} with one collect_data call")


# --------------------------------------------------------------------------- NVIDIA pytorch-quantization


class _TranscribedHistogramCalibrator:
    """pytorch_quantization.calib.HistogramCalibrator(num_bits, None, unsigned, num_bins), its
    default torch_hist=True path of ``collect``, transcribed line by line (on real torch)."""

    def __init__(self, num_bins=2048, skip_zeros=False):
        self._num_bins = num_bins
        self._skip_zeros = skip_zeros
        self._calib_bin_edges = None
        self._calib_hist = None

    def collect(self, x):
        if torch.min(x) < 0.:
            x = x.abs()
        x = x.float()
        with torch.no_grad():
            if self._skip_zeros:
                x = x[torch.where(x != 0)]
            x_max = x.max()
            if self._calib_bin_edges is None and self._calib_hist is None:
                self._calib_hist = torch.histc(x, bins=self._num_bins, min=0, max=x_max)
                self._calib_bin_edges = torch.linspace(0, x_max, self._num_bins + 1)
            else:
                if x_max > self._calib_bin_edges[-1]:
                    width = self._calib_bin_edges[1] - self._calib_bin_edges[0]
                    self._num_bins = int((x_max / width).ceil().item())
                    self._calib_bin_edges = torch.arange(0, x_max + width, width, device=x.device)
                hist = torch.histc(x, bins=self._num_bins, min=0, max=self._calib_bin_edges[-1])
                hist[:self._calib_hist.numel()] += self._calib_hist
                self._calib_hist = hist


def _scipy_entropy(pk, qk):
    """scipy.stats.entropy(pk, qk) transcribed, with scipy.special.rel_entr's C definition
    (``x * log(x / y)`` with the C library's log, here ``math.log``)."""
    pk = np.asarray(pk)
    pk = 1.0 * pk / np.sum(pk, axis=0, keepdims=True)
    qk = np.asarray(qk)
    pk, qk = np.broadcast_arrays(pk, qk)
    qk = 1.0 * qk / np.sum(qk, axis=0, keepdims=True)

    def rel_entr(x, y):
        if math.isnan(x) or math.isnan(y):
            return math.nan
        if x > 0 and y > 0:
            return x * math.log(x / y)
        if x == 0 and y >= 0:
            return 0.0
        return math.inf

    vec = np.array([rel_entr(float(a), float(b)) for a, b in zip(pk, qk)])
    return np.sum(vec, axis=0)


def _compute_amax_entropy(calib_hist, calib_bin_edges, num_bits, unsigned, stride=1, start_bin=128):
    """pytorch_quantization.calib.histogram._compute_amax_entropy, transcribed (logging dropped)."""
    if calib_bin_edges is None and calib_hist is None:
        return None
    bins = calib_hist[:]
    bins[0] = bins[1]
    total_data = np.sum(bins)
    divergences = []
    arguments = []
    nbins = 1 << (num_bits - 1 + int(unsigned))
    starting = start_bin
    stop = len(bins)
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(starting, stop + 1, stride):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = Counter(digitized_space)
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        total_counts_new = np.sum(new_density) + np.sum(bins[i:])
        reference_density = np.array(bins[:len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        total_counts_old = np.sum(reference_density)
        if round(total_counts_new) != total_data or round(total_counts_old) != total_data:
            raise RuntimeError("Count mismatch!")
        with np.errstate(invalid="ignore", divide="ignore"):
            ent = _scipy_entropy(reference_density, new_density)
        divergences.append(ent)
        arguments.append(i)
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - np.argmin(divergences[::-1])
    calib_amax = calib_bin_edges[last_argmin * stride + starting]
    return torch.tensor(calib_amax.item())


@pytest.mark.parametrize("data, unsigned", [(d, False) for d in HIST_DATASETS]
                         + [(d, True) for d in ("random", "all_negative", "mild_outlier")])
def test_entropy_tensorrt_equals_transcription(data, unsigned):
    # 192 bins, not the default 2048: the transcription loops in Python over every candidate and
    # every bin (seconds per stream at 2048); our code path does not depend on the bin count
    num_bins = 192
    cal = _TranscribedHistogramCalibrator(num_bins=num_bins)
    try:
        for x in HIST_DATASETS[data]:
            cal.collect(torch.from_numpy(x))
    except OverflowError:  # a first batch of zeros: bin width 0, int(inf) bins
        with pytest.raises(CalibrationError, match="bin width is 0"):
            _ours("entropy_tensorrt", HIST_DATASETS[data], num_bins=num_bins)
        return
    amax = _compute_amax_entropy(cal._calib_hist.int().cpu().numpy(), cal._calib_bin_edges.cpu().numpy(),
                                 8, unsigned, 1, 128)
    lo, hi = _ours("entropy_tensorrt", HIST_DATASETS[data], num_bins=num_bins, unsigned=unsigned)
    _same(hi, amax.item(), f"amax on {data}")
    assert lo == (0 if unsigned else -hi)


def test_entropy_tensorrt_options_equal_transcription():
    """``stride``, ``start_bin``, ``num_bits`` and ``skip_zeros`` on one stream."""
    batches = [np.where(x > 0.5, x, F32(0)) for x in HIST_DATASETS["random_same_shape"]]  # many exact zeros
    for options in [{"stride": 3}, {"start_bin": 40, "num_bits": 6}, {"skip_zeros": True}]:
        cal = _TranscribedHistogramCalibrator(num_bins=200, skip_zeros=options.get("skip_zeros", False))
        for x in batches:
            cal.collect(torch.from_numpy(x))
        amax = _compute_amax_entropy(cal._calib_hist.int().cpu().numpy(), cal._calib_bin_edges.cpu().numpy(),
                                     options.get("num_bits", 8), False, options.get("stride", 1),
                                     options.get("start_bin", 128))
        _same(_ours("entropy_tensorrt", batches, num_bins=200, **options)[1], amax.item(), f"amax with {options}")
