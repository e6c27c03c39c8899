"""Conformance: the TFLite face in 16x8 mode == LiteRT, bit for bit.

FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D with int16 activations (zero point 0), int8
weights (per-tensor or per-channel) and an int64 bias (the converter's) or an int32 bias (the op's
``quantized_bias_type`` set to INT32), one-op models from ``support.tflite_16x8``, compared with
``==`` on the three resolvers: ``reference`` -> ``BUILTIN_REF``, ``optimized`` ->
``BUILTIN_WITHOUT_DEFAULT_DELEGATES``, ``xnnpack`` -> ``BUILTIN`` (the delegate must decline the
node, and the result must equal the builtin one).

Families (seeded): realistic random scales; tie-heavy (power-of-two scales); saturating (tiny
output scales, where the reference FULLY_CONNECTED's ``(int32)`` cast of a huge double gives
INT32_MIN); extreme codes (+-32767, -32768 against -128, -127, 127); wide sums (K up to 1500
extreme terms: accumulators past 2^31, which the int64 kernels keep and the int32-bias kernels
wrap); int64 biases beyond int32 (up to +-2^62 and the int64 ends); odd shapes (K odd, channels
not a multiple of 8, stride 2, dilation 2, SAME/VALID, groups, depth multiplier 2); every
activation; no bias; targeted alternatives (inputs where the measured rounding, multiplier
derivation or accumulator and a plausible alternative disagree, and the alternative must lose).

Rerun: ``pytest tests/test_conformance_tflite_16x8.py -m conformance -s`` (``-s`` prints the
number of compared outputs per op, bias and kernel).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from support.compare import compared

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")

from support import tflite_16x8 as t16  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.errors import QuantizationTypeError, QuantizationValueError, UnsupportedError  # noqa: E402
from refquant.ops import layers  # noqa: E402
from refquant.profiles import get_profile  # noqa: E402

pytestmark = pytest.mark.conformance

RESOLVER = {"reference": "ref", "optimized": "builtin", "xnnpack": "xnnpack"}
ACTS = (None, "RELU", "RELU6", "RELU_N1_TO_1")
FAMILIES = ("random", "ties", "saturating", "extremes", "wide")
F32 = np.float32
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared outputs (op, bias, kernel):", dict(sorted(COUNTS.items())))


def check(key, got, want, ctx=""):
    assert got.dtype == np.int16, (key, got.dtype, ctx)
    COUNTS[key] += compared(got, want, f"{key} {ctx}", backend="LiteRT")


def run_all(op, bias_kind, run, face, args, kwargs, ctx):
    """Every kernel: LiteRT == face; under BUILTIN the node is not delegated and equals the builtin result."""
    got = {}
    for kernel, resolver in RESOLVER.items():
        y, delegated = run(*args, **kwargs, resolver=resolver, return_delegated=True)
        assert not delegated, f"{op}: XNNPACK took a 16x8 node ({ctx})"
        got[kernel] = y
        check((op, bias_kind, kernel), y, face(kernel), ctx)
    np.testing.assert_array_equal(got["xnnpack"], got["optimized"])


def acts16(rng, family, shape):
    """int16 activations of a family."""
    if family == "wide":  # mostly one sign per row: the sum grows with K
        sign = rng.random(shape[:-1] + (1,)) < 0.5
        return np.where((rng.random(shape) < 0.9) == sign, 32767, -32768).astype(np.int16)
    if family == "extremes":
        return rng.choice(np.array([-32768, -32767, 32767, 32767, -32768, 0, 1, -1], np.int16), shape)
    return rng.integers(-32768, 32767, shape, endpoint=True).astype(np.int16)


def weights8(rng, family, shape):
    if family == "wide":  # mostly one sign: the sum grows with K
        return np.where(rng.random(shape) < 0.95, 127, -128).astype(np.int8)
    if family == "extremes":
        return rng.choice(np.array([-128, -127, 127, 0, 1], np.int8), shape)
    return rng.integers(-128, 127, shape, endpoint=True).astype(np.int8)


def scales(rng, family, n_out, per_channel, k):
    """(x_scale, w_scale (n_out,) or scalar, y_scale) so that outputs spread over int16, or saturate."""
    if family == "ties":
        xs, ys = F32(2.0 ** -int(rng.integers(4, 10))), F32(2.0 ** -int(rng.integers(-2, 6)))
        ws = (2.0 ** -rng.integers(1, 8, n_out)).astype(F32)
    else:
        xs = F32(rng.uniform(1e-5, 1e-3))
        ws = rng.uniform(1e-3, 1e-2, n_out).astype(F32)
        typical = float(xs) * float(np.median(ws)) * 32768 * 100 * np.sqrt(k) / 2000  # ~2000 codes out
        ys = F32(typical * (1e-4 if family == "saturating" else rng.uniform(0.3, 3)))
        if family == "wide":
            ys = F32(float(xs) * float(np.median(ws)) * 2.0 ** 32 / 20000)  # 2^32 of acc ~ 20000 codes: wraps show
    return xs, (ws if per_channel else ws[:1].reshape(())), ys


def bias(rng, kind, n, family, xs, ws, ys):
    """An int64 / int32 bias (or None); int64 biases reach beyond int32 in some families."""
    if kind == "none":
        return None
    if kind == "int32":
        hi = 2 ** 31 - 1 if family in ("extremes", "wide") else 2 ** 24
        b = rng.integers(-hi, hi, n, endpoint=True)
        if family == "extremes":
            b[: min(n, 2)] = (2 ** 31 - 1, -(2 ** 31))[: min(n, 2)]
        return b.astype(np.int32)
    b = rng.integers(-(2 ** 24), 2 ** 24, n)
    if family in ("extremes", "wide", "saturating"):
        b = rng.integers(-(2 ** 40), 2 ** 40, n)
        ends = [2 ** 62, -(2 ** 62), 2 ** 63 - 1, -(2 ** 63), 2 ** 47, -(2 ** 47) - 3]
        b[: min(n, 6)] = ends[: min(n, 6)] if family == "extremes" else b[: min(n, 6)]
    return b.astype(np.int64)


# --------------------------------------------------------------------------- FULLY_CONNECTED


def test_fully_connected_16x8():
    rng = np.random.default_rng(1608)
    wide = wrapped_min = 0
    for t in range(150):
        family = FAMILIES[t % len(FAMILIES)]
        kind = ("int64", "int32", "none")[t % 3]
        per_channel = t % 2 == 0
        m = int(rng.integers(4, 17))
        k = int(rng.integers(513, 1500)) if family == "wide" else int(rng.choice([1, 3, 17, 64, 255]))
        n = int(rng.choice([1, 3, 8, 13, 20]))
        x, w = acts16(rng, family, (m, k)), weights8(rng, family, (n, k))
        xs, ws, ys = scales(rng, family, n, per_channel, k)
        b = bias(rng, kind, n, family, xs, ws, ys)
        act = ACTS[t % 4]
        acc = x.astype(np.int64) @ w.T.astype(np.int64) + (0 if b is None else b.astype(np.int64))
        wide += int(np.count_nonzero(np.abs(acc) > 2 ** 31))
        if kind == "int64" and act is None:  # the (int32) cast of a huge positive double: INT32_MIN -> -32768
            ref = t16.run_fully_connected_16x8(x, xs, w, ws, b, ys, act)
            wrapped_min += int(np.count_nonzero((ref == -32768) & (acc > 0)))
        run_all("FULLY_CONNECTED", kind, t16.run_fully_connected_16x8,
                lambda kernel: tflite.fully_connected(x, xs, 0, w, ws, b, ys, 0, activation=act, kernel=kernel),
                (x, xs, w, ws, b, ys, act), {}, f"case {t} {family} {kind} {act}")
    assert min(COUNTS[("FULLY_CONNECTED", b, k)] for b in ("int64", "int32", "none") for k in RESOLVER) > 3000
    assert wide > 100 and wrapped_min > 10, (wide, wrapped_min)  # the adversarial families reached their cases


def test_fully_connected_16x8_wide_sums_differ_by_bias_width():
    """K = 1500 extreme terms: the int64 kernels keep a sum past 2^31, the int32-bias ones wrap it;
    the same codes give different outputs, and the face gives each."""
    rng = np.random.default_rng(1609)
    x, w = acts16(rng, "wide", (16, 1500)), weights8(rng, "wide", (4, 1500))
    xs, ws, ys = scales(rng, "wide", 4, True, 1500)
    assert np.abs(x.astype(np.int64) @ w.T.astype(np.int64)).max() > 2 ** 31
    out = {}
    for kind in ("int64", "int32"):
        b = np.zeros(4, kind)
        for kernel, resolver in RESOLVER.items():
            want = t16.run_fully_connected_16x8(x, xs, w, ws, b, ys, resolver=resolver)
            out[kind] = tflite.fully_connected(x, xs, 0, w, ws, b, ys, 0, kernel=kernel)
            check(("FULLY_CONNECTED", kind, kernel), want, out[kind], "wide")
    assert not np.array_equal(out["int64"], out["int32"])


# --------------------------------------------------------------------------- CONV_2D / DEPTHWISE_CONV_2D


def _geometry(rng, t):
    return dict(stride=int(rng.choice([1, 2])) if t % 3 else (2, 1), padding=("SAME", "VALID")[t % 2],
                dilation=2 if t % 4 == 3 else 1)


def test_conv2d_16x8():
    rng = np.random.default_rng(1610)
    wide = grouped = 0
    for t in range(120):
        family = FAMILIES[t % len(FAMILIES)]
        kind = ("int64", "int32")[t % 2]
        per_channel = t % 3 != 0
        c = 1100 if family == "wide" else int(rng.choice([2, 3, 4, 6]))
        groups = 2 if t % 7 == 3 and c % 2 == 0 else 1
        kh, kw = (1, 1) if family == "wide" else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        o = int(rng.choice([2, 4, 6, 10]))
        act, geo = ACTS[t % 4], _geometry(rng, t)
        h, wd = (int(rng.integers(1, 5)) + geo["dilation"] * (k - 1) + 1 for k in (kh, kw))
        x = acts16(rng, family, (int(rng.integers(1, 3)), h, wd, c))
        w = weights8(rng, family, (o, kh, kw, c // groups))
        xs, ws, ys = scales(rng, family, o, per_channel, kh * kw * c // groups)
        b = bias(rng, kind, o, family, xs, ws, ys)
        wide += family == "wide" and np.abs(x.astype(np.int64).sum(-1)).max() * 127 > 2 ** 31
        grouped += groups == 2 and kind == "int32"  # the optimized resolver runs these on the reference kernel
        run_all("CONV_2D", kind, t16.run_conv2d_16x8,
                lambda kernel: tflite.conv2d(x, xs, 0, w, ws, b, ys, 0, activation=act, kernel=kernel, **geo),
                (x, xs, w, ws, b, ys), dict(activation=act, **geo), f"case {t} {family} {kind} g={groups} {geo}")
    assert min(COUNTS[("CONV_2D", b, k)] for b in ("int64", "int32") for k in RESOLVER) > 4000 and wide > 10 and grouped >= 3


def test_depthwise_conv2d_16x8():
    rng = np.random.default_rng(1611)
    for t in range(80):
        family = FAMILIES[t % len(FAMILIES)]
        per_channel = t % 3 != 0
        mult = (1, 2)[t % 2]
        c = int(rng.choice([1, 3, 5, 9, 16]))
        kh, kw = (5, 5) if family == "wide" else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        act, geo = ACTS[t % 4], _geometry(rng, t)
        h, wd = (int(rng.integers(2, 7)) + geo["dilation"] * (k - 1) + 1 for k in (kh, kw))
        x = acts16(rng, family, (int(rng.integers(1, 3)), h, wd, c))
        w = weights8(rng, family, (1, kh, kw, c * mult))
        xs, ws, ys = scales(rng, family, c * mult, per_channel, kh * kw)
        b = bias(rng, "int64", c * mult, family, xs, ws, ys) if t % 5 else None
        run_all("DEPTHWISE_CONV_2D", "int64", t16.run_depthwise_conv2d_16x8,
                lambda kernel: tflite.depthwise_conv2d(x, xs, 0, w, ws, b, ys, 0, depth_multiplier=mult,
                                                       activation=act, kernel=kernel, **geo),
                (x, xs, w, ws, b, ys), dict(depth_multiplier=mult, activation=act, **geo),
                f"case {t} {family} m={mult} {geo}")
    assert min(COUNTS[("DEPTHWISE_CONV_2D", "int64", k)] for k in RESOLVER) > 10000


# --------------------------------------------------------------------------- refusals


def test_refusals_match_litert():
    """What LiteRT's Prepare refuses is refused by the face, naming the argument."""
    rng = np.random.default_rng(1612)
    x = acts16(rng, "random", (1, 4, 4, 2))
    w_fc, w_conv, w_dw = weights8(rng, "random", (3, 2)), weights8(rng, "random", (3, 1, 1, 2)), \
        weights8(rng, "random", (1, 1, 1, 2))
    b64 = np.zeros(3, np.int64)
    for build, face, args in (
            (t16.build_fully_connected_16x8, tflite.fully_connected, (x.reshape(-1, 2), 0.01, w_fc, 0.1, b64, 0.5)),
            (t16.build_conv2d_16x8, tflite.conv2d, (x, 0.01, w_conv, 0.1, b64, 0.5))):
        xv, xs, w, ws, b, ys = args
        for zps, name in (((3, 0), "x_zero_point"), ((0, -2), "y_zero_point")):
            model = build(xv.shape, xs, w, ws, b, ys, x_zp=zps[0], y_zp=zps[1])
            with pytest.raises((RuntimeError, ValueError)):
                t16.run_model(model, [xv], "ref")
            with pytest.raises(QuantizationValueError, match=f"{name} must be 0 for int16 activations"):
                face(xv, xs, zps[0], w, ws, b, ys, zps[1])
    # DEPTHWISE_CONV_2D: an int32 bias fails to prepare
    with pytest.raises((RuntimeError, ValueError)):
        t16.run_depthwise_conv2d_16x8(x, 0.01, w_dw, 0.1, np.zeros(2, np.int32), 0.5)
    with pytest.raises(QuantizationTypeError, match="b must be an int64 array"):
        tflite.depthwise_conv2d(x, 0.01, 0, w_dw, 0.1, np.zeros(2, np.int32), 0.5, 0)


def test_refusals_not_modelled():
    """int16 weights (LiteRT's 16x16 FULLY_CONNECTED) and uint8 weights with int16 activations are
    refused as not modelled; a float bias, as the wrong dtype; a profile without 16x8 layers says so."""
    x = np.zeros((2, 3), np.int16)
    for w, what in ((np.zeros((2, 3), np.int16), "16x16"), (np.zeros((2, 3), np.uint8), "uint8")):
        with pytest.raises(UnsupportedError, match=what):
            tflite.fully_connected(x, 0.01, 0, w, 0.1, None, 0.5, 0)
    with pytest.raises(QuantizationTypeError, match="b must be an int64 or int32 array"):
        tflite.fully_connected(x, 0.01, 0, np.zeros((2, 3), np.int8), 0.1, np.zeros(2, np.float32), 0.5, 0)
    for profile in ("onnx", "onnxruntime", "pytorch_fbgemm", "gemmlowp"):
        with pytest.raises(UnsupportedError, match=f"'{profile}' has no int16-activation \\(16x8\\) layers"):
            layers.linear(x, F32(0.01), 0, np.zeros((2, 3), np.int8), F32(0.1), 0, np.zeros(2, np.int64),
                          F32(0.5), 0, profile=profile, out_dtype=np.int16)


def test_ops_layer_nchw_and_out_dtype():
    """The ops layer takes the 16x8 path for int16 ``x`` in either layout (the integer model's NCHW
    equals the face's NHWC), and a 16x8 layer's output is int16."""
    rng = np.random.default_rng(1613)
    x = acts16(rng, "random", (2, 6, 5, 4))
    w = weights8(rng, "random", (3, 3, 2, 4))
    ws, b = rng.uniform(1e-3, 1e-2, 3).astype(F32), rng.integers(-(2 ** 40), 2 ** 40, 3)
    for kernel, profile in (("reference", "tflite_reference"), ("optimized", "tflite_optimized")):
        nhwc = tflite.conv2d(x, 0.01, 0, w, ws, b, 0.5, 0, stride=2, padding="SAME", kernel=kernel)
        nchw = layers.conv2d(x.transpose(0, 3, 1, 2), F32(0.01), 0, w.transpose(0, 3, 1, 2), ws, 0, b, F32(0.5), 0,
                             profile=profile, strides=2, pads="SAME_UPPER", out_dtype=np.int16)
        np.testing.assert_array_equal(nchw, nhwc.transpose(0, 3, 1, 2))
    with pytest.raises(UnsupportedError, match="int16 outputs"):
        layers.linear(x[0, 0], F32(0.01), 0, w[:, 0, 0], ws, 0, b, F32(0.5), 0, profile="tflite_reference",
                      out_dtype=np.int8)


def test_bias_quantize_int64():
    """The converter's 16x8 bias: float32 b * (float)(1/(S_x S_w)), round half away, SafeCast
    saturation and the symmetric clamp to +-INT64_MAX (hand-worked values)."""
    s_x, s_w = F32(0.5), np.array([0.25, 0.25, 0.25, 0.25, 2.0 ** -40], F32)  # scales 1/8 and 2^-41
    b = np.array([0.0625, -0.0625, 1e30, -1e30, 2.0 ** 20], F32)  # 0.5 -> 1, -0.5 -> -1 (RHAZ), 2^61
    q = tflite.bias_quantize(b, s_x, s_w, dtype="int64")
    assert q.dtype == np.int64
    np.testing.assert_array_equal(q, [1, -1, 2 ** 63 - 1, -(2 ** 63 - 1), 2 ** 61])
    np.testing.assert_array_equal(tflite.bias_quantize(b[:2], s_x, s_w[:2]), np.array([1, -1], np.int32))


def _with_16x8(profile, family, bias, **change):
    """``profile`` with one 16x8 spec changed (an alternative the measurements must rule out)."""
    p = get_profile(profile)
    return p.replace(layers_16x8=tuple((f, b, dataclasses.replace(sp, **change) if (f, b) == (family, bias) else sp)
                                       for f, b, sp in p.layers_16x8))


def _targeted_scales(rng, how, n, per_channel, k):
    """``"ties"``: $M_c = S_x S_w[c] / S_y \\in \\{2^{-1}, 2^{-2}, 2^{-3}\\}$ (exact .5 after one or two
    shifts); ``"random"``: random $M_c$ with outputs of ~15000 codes; ``"derivation"``: per-tensor
    scales whose fixed-point multiplier moves by >= 32 between ``double(fl(S_x S_w)) / S_y`` and
    ``double(S_x) double(S_w) / double(S_y)``, outputs of ~15000 codes."""
    if how == "ties":
        ws = (2.0 ** -rng.integers(1, 4, n)).astype(F32)
        return F32(2.0 ** -6), (ws if per_channel else ws[:1].reshape(())), F32(2.0 ** -6)
    from refquant.kernels.multiplier import requant_params
    while True:
        xs, ws = F32(rng.uniform(1e-4, 1e-3)), rng.uniform(1e-3, 1e-2, n).astype(F32)
        ys = F32(float(xs) * float(np.median(ws)) * 32768 * 74 * np.sqrt(k) / 15000)
        if how == "random":
            return xs, (ws if per_channel else ws[:1].reshape(())), ys
        q = [int(requant_params(xs, ws[0], ys, mode="fixed_double", derivation=d).multiplier)
             for d in ("f64_ab_div_c", "f32_ab_then_f64_div")]
        if abs(q[0] - q[1]) >= 32:
            return xs, ws[0], ys


@pytest.mark.parametrize("kernel, family, bias_kind, per_channel, change", [
    ("optimized", "linear", "int32", True, dict(requant="fixed_double")),  # ruy's second rounding is half up
    ("optimized", "linear", "none", False, dict(multiplier_per_tensor=None)),  # per-tensor: float32 product first
    ("reference", "linear", "int32", True, dict(requant="fixed_double_up_wrap")),
    ("optimized", "conv", "int32", True, dict(requant="fixed_double")),
    ("reference", "conv", "int32", False, dict(requant="fixed_double_up_wrap")),
    ("reference", "conv", "int64", True, dict(requant="fixed_single")),
    ("optimized", "depthwise", "int64", True, dict(requant="fixed_double")),
])
def test_targeted_alternatives_are_ruled_out(kernel, family, bias_kind, per_channel, change):
    """Inputs where the measured spec and a plausible alternative round differently: LiteRT equals the
    face and differs from the alternative somewhere (so the conformance above is not vacuous)."""
    rng = np.random.default_rng(1614)
    profile = {"reference": "tflite_reference", "optimized": "tflite_optimized"}[kernel]
    alt = _with_16x8(profile, family, bias_kind, **change)
    differ = 0
    how = ("derivation" if "multiplier_per_tensor" in change
           else "random" if change.get("requant") == "fixed_single" else "ties")
    for t in range(6):
        lim = 60 if how == "ties" else 32768
        if family == "linear":
            x = rng.integers(-lim, lim, (256, 31)).astype(np.int16)
            w = weights8(rng, "random", (16, 31))
            xs, ws, ys = _targeted_scales(rng, how, 16, per_channel, 31)
            b = None if bias_kind == "none" else rng.integers(-1000, 1000, 16).astype(bias_kind)
            want = t16.run_fully_connected_16x8(x, xs, w, ws, b, ys, resolver=RESOLVER[kernel])
            got = tflite.fully_connected(x, xs, 0, w, ws, b, ys, 0, kernel=kernel)
            other = layers.linear(x, xs, 0, w, ws, 0, b, ys, 0, profile=alt, out_dtype=np.int16)
        else:
            dw = family == "depthwise"
            x = rng.integers(-lim, lim, (2, 10, 10, 8)).astype(np.int16)
            w = weights8(rng, "random", (1, 3, 3, 8) if dw else (8, 3, 3, 8))
            xs, ws, ys = _targeted_scales(rng, how, 8, per_channel, 9 if dw else 72)
            b = rng.integers(-1000, 1000, 8).astype(bias_kind)
            run = t16.run_depthwise_conv2d_16x8 if dw else t16.run_conv2d_16x8
            face = tflite.depthwise_conv2d if dw else tflite.conv2d
            want = run(x, xs, w, ws, b, ys, resolver=RESOLVER[kernel])
            got = face(x, xs, 0, w, ws, b, ys, 0, kernel=kernel)
            other = layers.conv2d(x, xs, 0, w, ws, 0, b, ys, 0, profile=alt, layout="NHWC",
                                  w_layout="1HWO" if dw else "OHWI", family=family, out_dtype=np.int16)
        check(("targeted " + family, bias_kind, kernel), want, got)
        differ += int(np.count_nonzero(other != want))
    assert differ > 0, f"{change} is not ruled out by these inputs"
