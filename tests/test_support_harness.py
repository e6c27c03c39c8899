"""Sanity tests of tests/support: each runner runs a small case, returns the expected
dtype and shape, and reproduces a few values known from backends.md, proving that the
harness wires the real backends (op options, layouts, quantization) correctly."""

from __future__ import annotations

import numpy as np
import pytest

from support import edge_values as ev

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def tfl():
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("flatbuffers")
    from support import tflite_builder

    return tflite_builder


@pytest.fixture(scope="module")
def ox():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ml_dtypes")
    from support import onnx_runner

    return onnx_runner


def _rhaz(v):
    """Round half away from zero on float64 (exact for |v| < 2^52)."""
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= 0.5)


def _requant_float(acc, m, zp, lo, hi):
    """Float64 path: clamp(RHAZ(acc * m) + zp) -- within 1 LSB of every TFLite kernel."""
    return np.clip(_rhaz(acc.astype(np.float64) * m) + zp, lo, hi)


def _conv_nhwc(x, w, x_zp, stride, pad_h, pad_w, out_hw, depthwise=False):
    """int64 conv accumulator, x NHWC, w OHWI (or 1HWO if depthwise, multiplier O/C)."""
    n, _, _, c = x.shape
    xp = np.pad(x.astype(np.int64) - x_zp, ((0, 0), pad_h, pad_w, (0, 0)))
    kh, kw = (w.shape[1], w.shape[2])
    oh, ow = out_hw
    o = w.shape[3] if depthwise else w.shape[0]
    acc = np.zeros((n, oh, ow, o), np.int64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]  # (N, kh, kw, C)
            if depthwise:
                acc[:, i, j, :] = np.einsum("nhwc,hwcm->ncm", patch,
                                            w[0].reshape(kh, kw, c, o // c).astype(np.int64)).reshape(n, o)
            else:
                acc[:, i, j, :] = np.einsum("nhwc,ohwc->no", patch, w.astype(np.int64))
    return acc


# --------------------------------------------------------------------------- edge values


def test_edge_values_deterministic_and_typed():
    a, b = ev.edge_values("int8", seed=3), ev.edge_values("int8", seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int8 and {-128, -127, 127, 0, 64, 63, 65}.issubset(set(a.tolist()))
    assert ev.edge_values("uint4").dtype == np.uint8 and ev.edge_values("uint4").max() <= 15
    i32 = ev.accumulator_edge_values()
    assert i32.dtype == np.int32 and {-(2**31), 2**31 - 1, 2**30 + 2, -(2**30) - 2}.issubset(set(i32.tolist()))
    f = ev.edge_values("int8", scale=0.1, zero_point=3)
    assert f.dtype == np.float32 and np.isnan(f).any() and np.isinf(f).any()


@pytest.mark.parametrize("scale", [1.0, 3 * 2.0**-8, 0.0123])
def test_tie_values_are_ties(scale):
    s = np.float64(np.float32(scale))
    exact = ev.tie_values(scale, -3, "int8")
    q = exact.astype(np.float64) / s  # exact quotient: a half-integer
    np.testing.assert_array_equal(q - np.floor(q), 0.5)
    div = ev.tie_values(scale, -3, "int8", kind="float32_divide")
    q32 = (div / np.float32(scale)).astype(np.float64)
    np.testing.assert_array_equal(q32 - np.floor(q32), 0.5)
    assert not np.any(div.astype(np.float64) / s - np.floor(div.astype(np.float64) / s) == 0.5)


# --------------------------------------------------------------------------- TFLite


def test_tflite_quantize_ref_rounds_half_away(tfl):
    x = np.array([0.5, 1.5, 2.5, -0.5], np.float32)
    y = tfl.run_quantize(x, 1.0, 0, resolver="ref")
    assert y.dtype == np.int8 and y.shape == (4,)
    np.testing.assert_array_equal(y, [1, 2, 3, -1])  # RHAZ (backends.md §8)
    y, delegated = tfl.run_quantize(x, 1.0, 0, resolver="xnnpack", return_delegated=True)
    assert delegated
    np.testing.assert_array_equal(y, [0, 2, 2, 0])  # XNNPACK: rint(x * (1/s)), RNE


def test_tflite_dequantize(tfl):
    q = np.array([-128, 0, 5, 127], np.int8)
    y = tfl.run_dequantize(q, 0.5, 3, resolver="ref")
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, (q.astype(np.float32) - 3) * np.float32(0.5))


@pytest.mark.parametrize("per_channel", [False, True])
def test_tflite_fully_connected_ref_formula(tfl, per_channel):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (3, 16), dtype=np.int8)
    w = rng.integers(-127, 128, (5, 16), dtype=np.int8)
    b = rng.integers(-2000, 2000, 5).astype(np.int32)
    xs, ys = np.float32(0.05), np.float32(0.3)
    ws = np.linspace(0.004, 0.02, 5).astype(np.float32) if per_channel else np.float32(0.01)
    y = tfl.run_fully_connected(x, xs, 3, w, ws, b, ys, -4, resolver="ref")
    assert y.dtype == np.int8 and y.shape == (3, 5)
    acc = (x.astype(np.int64) - 3) @ w.T.astype(np.int64) + b  # (3, 5) int64
    m = np.float64(xs) * np.broadcast_to(ws, (5,)).astype(np.float64) / np.float64(ys)
    np.testing.assert_array_equal(y, _requant_float(acc, m, -4, -128, 127))  # ref FC computes in double
    assert not tfl.run_fully_connected(x, xs, 3, w, ws, None, ys, -4, resolver="builtin", return_delegated=True)[1]
    assert tfl.run_fully_connected(x, xs, 3, w, ws, None, ys, -4, resolver="xnnpack", return_delegated=True)[1]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_tflite_conv2d_layout(tfl, padding):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 6, 7, 4), dtype=np.int8)
    w = rng.integers(-127, 128, (3, 3, 3, 4), dtype=np.int8)  # OHWI
    b = rng.integers(-500, 500, 3).astype(np.int32)
    ws = np.array([0.01, 0.02, 0.015], np.float32)
    y = tfl.run_conv2d(x, 0.05, 2, w, ws, b, 0.7, -1, stride=2, padding=padding, resolver="ref")
    out_hw = (3, 4) if padding == "SAME" else (2, 3)
    assert y.dtype == np.int8 and y.shape == (1, *out_hw, 3)
    pads = ((0, 1), (1, 1)) if padding == "SAME" else ((0, 0), (0, 0))  # TFLite SAME: extra pad at the end
    acc = _conv_nhwc(x, w, 2, 2, pads[0], pads[1], out_hw) + b
    ref = _requant_float(acc, np.float64(np.float32(0.05)) * ws.astype(np.float64) / np.float64(np.float32(0.7)), -1,
                         -128, 127)
    assert np.abs(y.astype(np.int64) - ref).max() <= 1  # ref conv: double rounding, within 1 LSB


def test_tflite_depthwise_layout(tfl):
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (1, 5, 5, 3), dtype=np.int8)
    w = rng.integers(-127, 128, (1, 3, 3, 6), dtype=np.int8)  # 1HWO, multiplier 2
    ws = np.linspace(0.01, 0.03, 6).astype(np.float32)
    y = tfl.run_depthwise_conv2d(x, 0.05, 0, w, ws, None, 0.5, 0, depth_multiplier=2, resolver="ref")
    assert y.dtype == np.int8 and y.shape == (1, 3, 3, 6)
    acc = _conv_nhwc(x, w, 0, 1, (0, 0), (0, 0), (3, 3), depthwise=True)
    ref = _requant_float(acc, np.float64(np.float32(0.05)) * ws.astype(np.float64) / np.float64(np.float32(0.5)), 0,
                         -128, 127)
    assert np.abs(y.astype(np.int64) - ref).max() <= 1


def test_tflite_add_pool_softmax_logistic(tfl):
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 4, 6, 2), dtype=np.int8)
    y = tfl.run_add(x, 0.05, 3, x[:, :1], 0.07, -2, 0.1, 1, resolver="ref")
    want = np.clip(_rhaz(((x - 3.0) * np.float32(0.05) + (x[:, :1] - -2.0) * np.float32(0.07)) / np.float32(0.1)) + 1,
                   -128, 127)
    assert y.dtype == np.int8 and y.shape == x.shape and np.abs(y - want).max() <= 1
    mp = tfl.run_max_pool2d(x, 0.05, 3, 2, resolver="ref")
    np.testing.assert_array_equal(mp, x.reshape(1, 2, 2, 3, 2, 2).max(axis=(2, 4)))
    ap = tfl.run_average_pool2d(x, 0.05, 3, (2, 3), stride=(2, 3), resolver="ref")
    assert ap.shape == (1, 2, 2, 2)
    assert np.abs(ap - x.reshape(1, 2, 2, 2, 3, 2).astype(np.float64).mean(axis=(2, 4))).max() <= 0.5
    sm, delegated = tfl.run_softmax(x[0, 0], 0.1, 0, beta=1.0, resolver="xnnpack", return_delegated=True)
    assert sm.dtype == np.int8 and sm.shape == (6, 2) and not delegated  # XNNPACK never takes SOFTMAX
    p = np.exp(x[0, 0] * 0.1 - (x[0, 0] * 0.1).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.abs((sm.astype(np.int64) + 128) / 256.0 - p).max() <= 1 / 256
    lg = tfl.run_logistic(x[0, 0], 0.1, 0, resolver="ref")
    assert np.abs((lg.astype(np.int64) + 128) / 256.0 - 1 / (1 + np.exp(-x[0, 0] * 0.1))).max() <= 1 / 256


def test_tflite_interpreter_cache_reuses(tfl):
    x = np.array([0.25, -3.0], np.float32)
    a = tfl.run_quantize(x, 0.5, 1)
    n = len(tfl._CACHE)
    b = tfl.run_quantize(x * 2, 0.5, 1)
    assert len(tfl._CACHE) == n
    np.testing.assert_array_equal(a, [2, -5])
    np.testing.assert_array_equal(b, [2, -11])


# --------------------------------------------------------------------------- ONNX


def test_ort_quantize_linear_specials(ox):
    x = np.array([0.5, 1.5, 2.5, -0.5, np.nan, np.inf, -np.inf, 1e10], np.float32)
    y = ox.run_quantize_linear(x, np.float32(1.0), np.int8(0))
    assert y.dtype == np.int8 and y.shape == (8,)
    np.testing.assert_array_equal(y, [0, 2, 2, 0, -128, 127, -128, 127])  # RNE; NaN -> qmin (backends.md §2.5)
    y = ox.run_quantize_linear(x, np.float32(1.0), np.uint8(0))
    np.testing.assert_array_equal(y, [0, 2, 2, 0, 0, 255, 0, 255])
    r = ox.run_quantize_linear(x, np.float32(1.0), np.int8(0), engine="reference")
    np.testing.assert_array_equal(r[5], -128)  # reference-evaluator bug: +inf -> qmin (backends.md §2.1)


def test_ort_int4_and_int2_quantize_linear(ox):
    x = np.array([0.5, 1.5, 2.5, -9, 7.6, -3.5, np.nan, np.inf], np.float32)
    y = ox.run_quantize_linear(x, np.float32(1.0), output_dtype="int4")
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, [0, 2, 2, -8, 7, -4, -8, 7])
    u = ox.run_quantize_linear(x, np.float32(1.0), np.uint8(1), output_dtype="uint4")
    np.testing.assert_array_equal(u, [1, 3, 3, 0, 9, 0, 0, 15])
    i2 = ox.run_quantize_linear(x[:5], np.float32(1.0), output_dtype="int2", opset=25)
    np.testing.assert_array_equal(i2, [0, 1, 1, -2, 1])
    q = np.array([-8, -1, 0, 7, 3], np.int8)  # odd count: last byte padded
    for engine in ("ort", "reference"):
        d = ox.run_dequantize_linear(q, np.float32(0.5), np.int8(1), x_dtype="int4", engine=engine)
        np.testing.assert_array_equal(d, (q - 1.0) * 0.5)


def test_ort_blocked_and_per_axis(ox):
    x = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3).astype(np.float32)
    s = np.full((2, 3, 2), 0.25, np.float32)
    for engine in ("ort", "reference"):
        y = ox.run_quantize_linear(x, s, np.zeros((2, 3, 2), np.int8), axis=2, block_size=2, engine=engine)
        np.testing.assert_array_equal(y, np.clip(np.rint(x / np.float32(0.25)), -128, 127))  # RNE
        pa = ox.run_quantize_linear(x, np.array([0.1, 0.2, 0.3], np.float32), np.array([0, 1, 2], np.int8),
                                    axis=1, engine=engine)
        s3, z3 = np.array([0.1, 0.2, 0.3], np.float32)[:, None], np.array([0, 1, 2])[:, None]
        np.testing.assert_array_equal(pa, np.clip(np.rint(x / s3) + z3, -128, 127))  # RNE, float32 divide


def test_dynamic_quantize_linear_examples(ox):
    x = np.array([-1, 0, 1, 2, 3, 4, 5, 6.5], np.float32)
    for engine in ("ort", "reference"):
        y, s, z = ox.run_dynamic_quantize_linear(x, engine=engine)
        assert (y.dtype, s.dtype, z.dtype, s.shape) == (np.uint8, np.float32, np.uint8, ())
        np.testing.assert_array_equal(y, [0, 34, 68, 102, 136, 170, 204, 255])
        assert z == 34
    assert ox.run_dynamic_quantize_linear(np.zeros(4, np.float32))[1] == 1.0  # ORT: scale 1 (backends.md §2.3)
    assert ox.run_dynamic_quantize_linear(np.zeros(4, np.float32), engine="reference")[1] == np.float32(1 / 255)


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return set()


def test_ort_matmul_integer_u8s8_pair_saturation(ox):
    flags = _cpu_flags()
    if "avx2" not in flags:
        pytest.skip("the u8s8 pair-saturation model is for x86 AVX2")
    a = np.full((1, 64), 255, np.uint8)
    b = np.stack([np.full(64, 127, np.int8), np.full(64, -128, np.int8)], axis=1)  # (64, 2)
    y = ox.run_matmul_integer(a, b, np.uint8(0), np.int8(0))
    assert y.dtype == np.int32 and y.shape == (1, 2)
    np.testing.assert_array_equal(ox.run_matmul_integer(a, b, engine="reference"), [[2072640, -2088960]])
    if flags & {"avx512_vnni", "avx_vnni"}:
        np.testing.assert_array_equal(y, [[2072640, -2088960]])
    else:
        np.testing.assert_array_equal(y, [[1048544, -1048576]])  # vpmaddubsw: 32 x sat16(2*255*b)


def test_ort_qlinear_matmul_and_conv_formula(ox):
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (3, 8), dtype=np.int8)
    b = rng.integers(-128, 128, (8, 4), dtype=np.int8)
    y = ox.run_qlinear_matmul(a, 0.05, np.int8(1), b, 0.02, np.int8(0), 0.3, np.int8(-3))
    assert y.dtype == np.int8 and y.shape == (3, 4)
    acc = (a.astype(np.int32) - 1) @ b.astype(np.int32)
    m = (np.float32(0.05) * np.float32(0.02)) / np.float32(0.3)  # float32, (a*b)/y as MLAS
    want = np.clip(np.rint(acc.astype(np.float32) * m) - 3, -128, 127)  # RNE (backends.md §2.5)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(ox.run_qlinear_matmul(a, 0.05, np.int8(1), b, 0.02, np.int8(0), 0.3, np.int8(-3),
                                                        const_weights=True), y)
    x = rng.integers(-128, 128, (1, 2, 5, 5), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 2, 3, 3), dtype=np.int8)
    bias = np.array([100, -50, 7], np.int32)
    c = ox.run_qlinear_conv(x, 0.05, np.int8(2), w, np.float32(0.01), np.int8(0), 0.4, np.int8(5), bias,
                            pads=[1, 1, 1, 1])
    assert c.dtype == np.int8 and c.shape == (1, 3, 5, 5)
    ci = ox.run_conv_integer(x, w, np.int8(2), np.int8(0), pads=[1, 1, 1, 1])
    assert ci.dtype == np.int32 and ci.shape == (1, 3, 5, 5)
    m = (np.float32(0.05) * np.float32(0.01)) / np.float32(0.4)
    want = np.clip(np.rint((ci + bias[:, None, None]).astype(np.float32) * m) + 5, -128, 127)
    np.testing.assert_array_equal(c, want)


def test_ort_contrib_ops_shapes(ox):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 3, 4, 4), dtype=np.uint8)
    y = ox.run_qlinear_add(x, 0.05, np.uint8(128), x[:, :1], 0.07, np.uint8(100), 0.1, np.uint8(128))
    assert y.dtype == np.uint8 and y.shape == x.shape
    g = ox.run_qlinear_global_average_pool(x, 0.05, np.uint8(128), 0.05, np.uint8(128))
    assert g.shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(g.ravel(), np.rint(x.reshape(3, 16).mean(axis=1)))  # same qparams: mean
    s = ox.run_qlinear_sigmoid(x.astype(np.int8), 0.05, np.int8(0), 1 / 256, np.int8(-128))
    assert s.dtype == np.int8 and s.shape == x.shape
    with pytest.raises(ValueError, match="engine='ort' only"):
        ox.run_qlinear_sigmoid(x, 0.05, np.uint8(0), 1 / 256, np.uint8(0), engine="reference")


def test_ort_session_cache(ox):
    x = np.array([1.0, 2.0], np.float32)
    ox.run_quantize_linear(x, np.float32(0.5), np.int8(0))
    n = len(ox._CACHE)
    y = ox.run_quantize_linear(np.arange(6, dtype=np.float32), np.float32(0.5), np.int8(0))  # other shape, same rank
    assert len(ox._CACHE) == n
    np.testing.assert_array_equal(y, [0, 2, 4, 6, 8, 10])


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_torch_quantized_engine_restores():
    torch = pytest.importorskip("torch")
    from support import torch_runner

    engines = torch_runner.supported_engines()
    assert "qnnpack" in engines or "fbgemm" in engines
    before = torch.backends.quantized.engine
    name = "qnnpack" if "qnnpack" in engines else engines[0]
    with torch_runner.quantized_engine(name):
        assert torch.backends.quantized.engine == name
        q = torch.quantize_per_tensor(torch.tensor([0.5, 1.5, -0.5]), 1.0, 0, torch.qint8)
        assert torch_runner.to_numpy_int(q).dtype == np.int8
    assert torch.backends.quantized.engine == before
    with pytest.raises(ValueError):
        with torch_runner.quantized_engine("no-such-engine"):
            pass
