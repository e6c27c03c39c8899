"""``refquant.testing.strategies``: what each strategy draws is valid, and it reaches the values that matter.

Reachability is shown with ``hypothesis.find`` (the strategy produces an example with the property),
validity with ``@given`` over many examples, and the point of it all with a downstream-style fuzz
test: a correct quantize passes, one rounding half to even is caught.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from refquant.backends import onnxruntime as ort
from refquant.backends import pytorch as torch_face
from refquant.backends import tflite
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.profiles import list_profiles
from refquant.qmodel import QuantizedModel
from refquant.qparams import make_qparams
from refquant.testing import assert_bit_exact
from refquant.testing.strategies import conv_geometries, qparams, scales, small_models, tensors

FAST = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SEARCH = settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                  phases=[Phase.generate])  # find() returns the first example found, unshrunk


# --------------------------------------------------------------------------- qparams


@pytest.mark.parametrize("profile", list_profiles())
def test_qparams_for_every_profile_and_kind(profile):
    @settings(FAST, max_examples=25)
    @given(act=qparams(profile), w=qparams(profile, kind="weight", per_channel=True, channels=3))
    def check(act, w):
        assert act.scale.dtype == np.float32 and act.scale.shape == () and act.scale > 0
        assert act.qmin <= int(act.zero_point) <= act.qmax
        assert w.scale.shape == (3,) and w.axis == 0 and np.all(w.zero_point == 0) and w.fmt.name == "int8"
        assert w.qmin == (-128 if profile.startswith("pytorch") else -127)  # PyTorch weights use the full range
    check()


def test_qparams_dtypes_follow_the_tool():
    assert find(qparams("tflite_reference"), lambda q: True).fmt.name == "int8"
    assert find(qparams("onnxruntime"), lambda q: True).fmt.name == "uint8"
    assert find(qparams("pytorch_fbgemm"), lambda q: True).fmt.name == "uint8"
    q16 = find(qparams("tflite_xnnpack", dtype="int16"), lambda q: True)
    assert q16.fmt.name == "int16" and int(q16.zero_point) == 0
    with pytest.raises(QuantizationValueError, match="dtype must be one of"):
        qparams("onnxruntime", dtype="int16")
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        qparams("tensorrt")
    with pytest.raises(QuantizationValueError, match="kind must be one of"):
        qparams("onnx", kind="bias")


@FAST
@given(qp=qparams("pytorch_fbgemm"))
def test_pytorch_fbgemm_activations_use_the_reduced_range(qp):
    assert 0 <= int(qp.zero_point) <= 127


def test_qparams_reach_range_ends_and_tie_friendly_scales():
    assert int(find(qparams("tflite_reference"), lambda q: int(q.zero_point) == -128, settings=SEARCH).zero_point) \
        == -128
    assert find(qparams("onnxruntime"), lambda q: int(q.zero_point) == 255, settings=SEARCH)
    few_bits = find(scales(), lambda s: s != 1.0 and (np.float32(s) * 2**30) % 2**23 == 0, settings=SEARCH)
    assert few_bits > 0


# --------------------------------------------------------------------------- tensors


def _exact_ties(x, qp):
    c = x.astype(np.float64) / float(qp.scale)
    return np.isfinite(c) & (c - np.floor(c) == 0.5)


def test_tensors_reach_ties_ends_and_saturation():
    qp = make_qparams(0.25, -3, "int8")
    shape = (8,)
    assert find(tensors(qp, shape), lambda x: _exact_ties(x, qp).sum() >= 3, settings=SEARCH) is not None
    top, bottom = 0.25 * (127 + 3), 0.25 * (-128 + 3)
    assert find(tensors(qp, shape), lambda x: (x == top).any() and (x == bottom).any(), settings=SEARCH) is not None
    assert find(tensors(qp, shape), lambda x: (x > top + 0.25).any() and (x < bottom - 0.25).any(),
                settings=SEARCH) is not None
    assert find(tensors(qp, shape, specials=True), lambda x: np.isnan(x).any() and np.isinf(x).any(),
                settings=SEARCH) is not None


@FAST
@given(qp=qparams("onnxruntime", kind="weight", per_channel=True), data=st.data())
def test_tensors_per_channel_and_codes(qp, data):
    n = qp.scale.size
    x = data.draw(tensors(qp, (n, 5)))
    assert x.dtype == np.float32 and x.shape == (n, 5) and np.all(np.isfinite(x))
    q = data.draw(tensors(qp, st.just((n, 3)), codes=True))
    assert q.dtype == np.int8 and q.shape == (n, 3) and q.min() >= qp.qmin and q.max() <= qp.qmax


def test_tensor_codes_reach_the_extremes_and_the_zero_point():
    qp = make_qparams(0.1, 17, "uint8")
    x = find(tensors(qp, (6,), codes=True), lambda q: {0, 255, 17} <= set(q.tolist()), settings=SEARCH)
    assert x.dtype == np.uint8


def test_strategy_argument_errors():
    with pytest.raises(QuantizationTypeError, match="qp must be a QParams"):
        tensors(0.5, (3,))
    qp1 = make_qparams(0.1, 0, "int8")
    with pytest.raises(QuantizationTypeError, match="codes must be a bool"):
        tensors(qp1, (3,), codes=np.ones(3))
    with pytest.raises(QuantizationValueError, match="shape"):
        tensors(qp1, (2**40, 2**30))
    with pytest.raises(QuantizationTypeError, match="dtype must be a format name"):
        qparams("onnx", dtype=object())
    with pytest.raises(QuantizationValueError, match="channels"):
        qparams("onnx", per_channel=True, channels=0)
    with pytest.raises(QuantizationValueError, match="hi_exp must be in"):
        scales(lo_exp=0, hi_exp=-1)
    with pytest.raises(QuantizationTypeError, match="lo_exp must be an integer"):
        scales(lo_exp="a")
    qp = make_qparams(np.float32([0.1, 0.2]), np.zeros(2, np.int64), "int8", axis=0)
    with pytest.raises(ShapeError, match="2 entries on axis 0"):
        find(tensors(qp, (3, 4)), lambda x: True)


# --------------------------------------------------------------------------- conv geometries


def _w(g, layout, dtype=np.int8):
    return np.random.default_rng(0).integers(-127, 128, g.weight_shape(layout)).astype(dtype)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(g=conv_geometries())
def test_explicit_geometries_run_in_qlinear_conv(g):
    x = np.random.default_rng(1).integers(0, 256, g.input_shape()).astype(np.uint8)
    o = g.out_channels
    y = ort.qlinear_conv(x, np.float32(0.1), np.uint8(3), _w(g, "OIHW"), np.full(o, 0.01, np.float32),
                         np.zeros(o, np.int8), np.float32(0.2), np.uint8(5), isa="exact", **g.onnx_attrs())
    assert y.shape == (g.batch, o, *g.output_size) and min(g.output_size) >= 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(g=conv_geometries(padding="symmetric"))
def test_symmetric_geometries_run_in_pytorch_conv2d(g):
    x = np.random.default_rng(1).integers(0, 256, g.input_shape()).astype(np.uint8)
    o = g.out_channels
    y = torch_face.conv2d(x, np.float32(0.1), 3, _w(g, "OIHW"), np.full(o, 0.01, np.float32), np.zeros(o, np.int64),
                          None, np.float32(0.2), 5, isa="exact", **g.pytorch_args())
    assert y.shape == (g.batch, o, *g.output_size)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(g=conv_geometries(padding="same_valid"))
def test_same_valid_geometries_run_in_tflite(g):
    x = np.random.default_rng(1).integers(-128, 128, g.input_shape("NHWC")).astype(np.int8)
    o = g.out_channels
    op, layout = (tflite.depthwise_conv2d, "1HWO") if g.depthwise else (tflite.conv2d, "OHWI")
    y = op(x, 0.1, 0, _w(g, layout), np.full(o, 0.01, np.float32), np.zeros(o, np.int32), 0.2, 0, **g.tflite_args())
    assert y.shape == (g.batch, *g.output_size, o)


def test_geometries_reach_the_awkward_cases():
    geo = conv_geometries()
    assert find(geo, lambda g: g.depthwise and g.out_channels == 2 * g.in_channels, settings=SEARCH)
    assert find(geo, lambda g: 1 < g.groups < g.in_channels, settings=SEARCH)
    assert find(geo, lambda g: g.stride == (2, 2) and g.dilation == (2, 2), settings=SEARCH)
    assert find(geo, lambda g: g.pads[0] != g.pads[2] and g.pads[1] != g.pads[3], settings=SEARCH)
    assert find(geo, lambda g: g.output_size == (1, 1) and g.height % 2 == 1, settings=SEARCH)
    assert find(conv_geometries(padding="same_valid"), lambda g: g.padding == "SAME" and g.pads[0] != g.pads[2],
                settings=SEARCH)


def test_geometry_spellings_refuse_what_a_face_cannot_take():
    g = find(conv_geometries(), lambda g: g.pads[0] != g.pads[2] and g.groups > 1, settings=SEARCH)
    with pytest.raises(UnsupportedError, match="symmetric"):
        g.pytorch_args()
    with pytest.raises(UnsupportedError, match="same_valid"):
        g.tflite_args()
    with pytest.raises(UnsupportedError, match="one group"):
        g.weight_shape("OHWI")
    with pytest.raises(QuantizationValueError, match="padding must be one of"):
        conv_geometries(padding="full")


# --------------------------------------------------------------------------- small models


def test_small_model_record_holds_native_float32():
    from refquant.testing.strategies import SmallModel

    m = SmallModel(None, np.arange(4, dtype=">f8").reshape(1, 1, 2, 2), None)
    assert m.x.dtype == np.float32 and m.x.dtype.isnative
    with pytest.raises(QuantizationTypeError, match="x must be"):
        SmallModel(None, "x", None)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(m=small_models())
def test_small_float_models_run(m):
    from refquant.nn import predict

    y = predict(m.model, m.x)
    assert m.model is m.float_model and y.shape[0] == m.x.shape[0] and np.all(np.isfinite(y))


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(m=small_models(quantized=True))
def test_small_quantized_models_run_under_every_profile(m):
    assert isinstance(m.model, QuantizedModel) and m.model.profile in list_profiles()
    y = m.model.run(m.x)
    assert y.dtype == np.float32 and y.shape[0] == m.x.shape[0]


def test_small_models_take_a_fixed_profile():
    m = find(small_models(quantized=True, profile="onnxruntime"), lambda m: True)
    assert m.model.profile == "onnxruntime"
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        small_models(quantized=True, profile="nope")


# --------------------------------------------------------------------------- a downstream fuzz test


def _my_quantize(x, qp, round_fn):
    """The code under test: TFLite's reference QUANTIZE as a port might write it."""
    v = (x / np.float32(qp.scale)).astype(np.float32)
    return np.clip(round_fn(v) + int(qp.zero_point), qp.qmin, qp.qmax).astype(np.int8)


def _half_away(v):  # std::round, exact in float32 (floor(|v| + 0.5) is not: 0.49999997 + 0.5 rounds to 1)
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


def _fuzz(round_fn, shrink=True):
    phases = list(Phase) if shrink else [Phase.generate]
    @settings(max_examples=150, deadline=None, derandomize=True, database=None, phases=phases)
    @given(qp=qparams("tflite_reference"), data=st.data())
    def test(qp, data):
        x = data.draw(tensors(qp, st.tuples(st.integers(1, 4), st.integers(1, 16))))
        assert_bit_exact(_my_quantize(x, qp, round_fn), tflite.quantize(x, qp.scale, qp.zero_point))
    test()


def test_a_correct_port_passes_and_a_half_to_even_port_is_caught():
    _fuzz(_half_away)
    with pytest.raises(AssertionError, match="±1 LSB"):
        _fuzz(np.rint, shrink=False)


# --------------------------------------------------------------------------- without hypothesis


def test_a_clear_error_without_hypothesis():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "try:\n    import refquant.testing.strategies\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "pip install hypothesis" in out.stdout
