"""refquant.ops.reference_loops: the plain loops against refquant's TFLite face, bit for bit.

* ``conv2d_loop`` / ``depthwise_conv2d_loop`` against ``refquant.backends.tflite.conv2d`` /
  ``depthwise_conv2d(kernel="reference")``. That face runs LiteRT's ``ConvPerChannel`` /
  ``DepthwiseConvPerChannel`` arithmetic (``fixed_double``, ``f64_ab_div_c``), which the loops transcribe.
* ``fully_connected_loop`` against ``gemm`` + ``add_bias`` + ``requantize(mode="fixed_double")``.
  No FULLY_CONNECTED kernel of the face uses ``fixed_double``: the reference kernel rounds in
  float64 (``float64_rhaz``), because LiteRT's reference FC calls the float-scale overload. One test
  pins that 1-LSB difference on a hand-checked tie. It also runs on the real LiteRT when installed.

Marked ``kernels``: CI reruns them with NUMBA_DISABLE_JIT=1. Shapes are tiny, because the loops are Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refquant.backends import tflite
from refquant.dtypes import INT32_MAX, INT32_MIN
from refquant.errors import AccumulatorOverflowWarning, QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.kernels.bias import add_bias
from refquant.kernels.gemm import gemm
from refquant.kernels.multiplier import activation_range, requant_params
from refquant.kernels.requant import requantize
from refquant.ops.reference_loops import (
    compute_padding_height_width,
    conv2d_loop,
    depthwise_conv2d_loop,
    fully_connected_loop,
)
from support.edge_values import int_edge_values

pytestmark = pytest.mark.kernels

ROOT = Path(__file__).resolve().parents[1]
MODE, DERIVATION = "fixed_double", "f64_ab_div_c"  # LiteRT reference CONV_2D / DEPTHWISE_CONV_2D (the face's table)


# --------------------------------------------------------------------------- helpers


def loop_params(x_scale, w_scale, y_scale, y_zero_point, activation):
    """Offline: (output_multiplier, output_shift, act_min, act_max) as TFLite's Prepare derives them."""
    p = requant_params(x_scale, w_scale, y_scale, mode=MODE, derivation=DERIVATION)
    lo, hi = activation_range(activation, y_scale, y_zero_point, -128, 127)
    return p.multiplier, p.shift, lo, hi


def fc_composition(x, x_zero_point, w, b, q, shift, y_zero_point, lo, hi):
    """The oracle for fully_connected_loop: the face's kernels with fixed_double requantization."""
    n, k = w.shape
    acc = gemm(x.reshape(-1, k), np.ascontiguousarray(w.T), x_zero_point, 0)  # (M, N) int32
    acc = add_bias(acc, np.zeros(n, np.int32) if b is None else b)
    return requantize(acc, q, y_zero_point, lo, hi, mode=MODE, shift=shift, axis=-1, dtype=np.int8)


def assert_same(got, want, what, x_zero_point=None, shift=None):
    """Shape, dtype, then values; on a mismatch show the first differing outputs side by side."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    bad = got != want
    if bad.any():
        rows = "; ".join(f"{tuple(int(j) for j in i)}: loop {got[tuple(i)]} face {want[tuple(i)]}"
                         for i in np.argwhere(bad)[:5])
        hint = " (off by one: look at the rounding of eq. (2), MBQM)" if np.abs(
            got.astype(int) - want.astype(int)).max() == 1 else ""
        pytest.fail(f"{what}: {int(bad.sum())} of {got.size} outputs differ{hint}; first: {rows}; "
                    f"x_zero_point={x_zero_point}, output_shift={shift}")


def rand_int8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int8)


def random_layer(rng, o, taps, per_channel):
    """Scales, zero points and bias of a layer with ``o`` output channels and ``taps`` terms per sum.

    y_scale puts a typical |acc * M| near 50, so the outputs spread over the int8 range and
    output_shift is negative (about -7 to -11).
    """
    x_scale = np.float32(rng.uniform(0.01, 0.1))
    w_scale = rng.uniform(0.002, 0.02, size=o).astype(np.float32) if per_channel else np.float32(
        rng.uniform(0.002, 0.02))
    y_scale = np.float32(x_scale * np.mean(w_scale) * np.sqrt(taps) * 100)
    x_zp, y_zp = (int(v) for v in rng.integers(-128, 127, size=2, endpoint=True))
    b = rng.integers(-20000, 20000, size=o).astype(np.int32)
    return x_scale, w_scale, y_scale, x_zp, y_zp, b


def run_conv_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride, dilation, padding, activation):
    """(conv2d_loop, face reference) for one case."""
    (sh, sw), (dh, dw) = np.broadcast_to(stride, 2), np.broadcast_to(dilation, 2)
    geometry = compute_padding_height_width(padding, x.shape[1], x.shape[2], w.shape[1], w.shape[2],
                                            stride_height=sh, stride_width=sw, dilation_height_factor=dh,
                                            dilation_width_factor=dw)
    q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, activation)
    got = conv2d_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi, stride_height=sh, stride_width=sw,
                      dilation_height_factor=dh, dilation_width_factor=dw, **geometry)
    want = tflite.conv2d(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride=stride, padding=padding,
                         dilation=dilation, activation=activation, kernel="reference")
    return got, want, shift


def run_depthwise_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride, dilation, padding, activation, m):
    (sh, sw), (dh, dw) = np.broadcast_to(stride, 2), np.broadcast_to(dilation, 2)
    geometry = compute_padding_height_width(padding, x.shape[1], x.shape[2], w.shape[1], w.shape[2],
                                            stride_height=sh, stride_width=sw, dilation_height_factor=dh,
                                            dilation_width_factor=dw)
    q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, activation)
    got = depthwise_conv2d_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi, depth_multiplier=m, stride_height=sh,
                                stride_width=sw, dilation_height_factor=dh, dilation_width_factor=dw, **geometry)
    want = tflite.depthwise_conv2d(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride=stride, padding=padding,
                                   dilation=dilation, depth_multiplier=m, activation=activation, kernel="reference")
    return got, want, shift


# --------------------------------------------------------------------------- random cases

# name: (x shape NHWC, w shape OHWI, stride, dilation, padding, per_channel, activation)
CONV_CASES = {
    "valid_3x3_per_tensor": ((1, 5, 5, 3), (4, 3, 3, 3), 1, 1, "VALID", False, None),
    "same_3x3_per_channel_relu6": ((2, 5, 4, 3), (5, 3, 3, 3), 1, 1, "SAME", True, "RELU6"),
    "same_odd_pad_pixel_stride_2x3": ((1, 7, 6, 2), (3, 2, 4, 2), (2, 3), 1, "SAME", True, None),
    "valid_stride_2x1_dilation2_relu": ((1, 7, 6, 3), (3, 3, 2, 3), (2, 1), 2, "VALID", False, "RELU"),
    "same_dilation_2x3_relu_n1_to_1": ((1, 6, 7, 2), (2, 3, 3, 2), 1, (2, 3), "SAME", True, "RELU_N1_TO_1"),
    "grouped_2_same": ((1, 5, 5, 4), (6, 3, 3, 2), 1, 1, "SAME", True, None),
    "1x1_batch3_no_bias": ((3, 3, 3, 5), (4, 1, 1, 5), 1, 1, "VALID", True, None),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_loop_equals_face_reference(name):
    x_shape, w_shape, stride, dilation, padding, per_channel, activation = CONV_CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, w = rand_int8(rng, x_shape), rand_int8(rng, w_shape, -127)
    x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, w_shape[0], int(np.prod(w_shape[1:])), per_channel)
    b = None if "no_bias" in name else b
    got, want, shift = run_conv_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride, dilation, padding,
                                     activation)
    assert_same(got, want, f"conv2d {name}", x_zp, shift)


# name: (x shape NHWC, (kH, kW), depth_multiplier, stride, dilation, padding, per_channel, activation)
DEPTHWISE_CASES = {
    "valid_3x3_m1_per_tensor": ((1, 5, 5, 3), (3, 3), 1, 1, 1, "VALID", False, None),
    "same_3x3_m2_per_channel_relu6": ((2, 5, 4, 3), (3, 3), 2, 1, 1, "SAME", True, "RELU6"),
    "same_m2_stride2_dilation2": ((1, 7, 7, 2), (3, 2), 2, 2, 2, "SAME", True, None),
    "valid_stride_2x3_m1_relu": ((1, 6, 7, 4), (2, 3), 1, (2, 3), 1, "VALID", True, "RELU"),
    "same_m2_per_tensor_no_bias": ((1, 4, 5, 5), (2, 2), 2, 1, 1, "SAME", False, None),
}


@pytest.mark.parametrize("name", list(DEPTHWISE_CASES))
def test_depthwise_conv2d_loop_equals_face_reference(name):
    x_shape, (kh, kw), m, stride, dilation, padding, per_channel, activation = DEPTHWISE_CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    o = x_shape[3] * m
    x, w = rand_int8(rng, x_shape), rand_int8(rng, (1, kh, kw, o), -127)
    x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, o, kh * kw, per_channel)
    b = None if "no_bias" in name else b
    got, want, shift = run_depthwise_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, stride, dilation, padding,
                                          activation, m)
    assert_same(got, want, f"depthwise {name}", x_zp, shift)


# name: (x shape (..., K), N, per_channel, activation)
FC_CASES = {
    "per_tensor": ((3, 7), 5, False, None),
    "per_channel_relu6": ((2, 9), 4, True, "RELU6"),
    "leading_dims_per_channel": ((2, 3, 6), 3, True, "RELU"),
    "k1_no_bias": ((4, 1), 2, False, None),
}


@pytest.mark.parametrize("name", list(FC_CASES))
def test_fully_connected_loop_equals_fixed_double_composition(name):
    x_shape, n, per_channel, activation = FC_CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    k = x_shape[-1]
    x, w = rand_int8(rng, x_shape), rand_int8(rng, (n, k), -127)
    x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, n, k, per_channel)
    b = None if "no_bias" in name else b
    q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, activation)
    got = fully_connected_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi)
    assert_same(got, fc_composition(x, x_zp, w, b, q, shift, y_zp, lo, hi), f"fully_connected {name}", x_zp, shift)


# --------------------------------------------------------------------------- edge values


@pytest.mark.parametrize("x_zp", [-128, 127], ids=["input_offset_128", "input_offset_-127"])
@pytest.mark.parametrize("y_zp", [-128, 127])
@pytest.mark.parametrize("op", ["fully_connected", "conv2d", "depthwise_conv2d"])
def test_edge_values(op, x_zp, y_zp):
    """x from the suite's edge-value generator (int8 extremes, ±2^k ± 2), weights at ±127, ±1, 0."""
    rng = np.random.default_rng(3)
    edge = int_edge_values("int8", seed=3, n_random=8)
    w_vals = np.array([-127, 127, -1, 0, 1], np.int8)
    x_scale, y_scale = np.float32(0.05), np.float32(0.4)
    if op == "fully_connected":
        x = rng.choice(edge, size=(4, 9))
        w = rng.choice(w_vals, size=(3, 9))
        w_scale = np.array([0.004, 0.02, 0.0005], np.float32)
        b = np.array([-9000, 0, 9000], np.int32)
        q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, None)
        got = fully_connected_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi)
        want = fc_composition(x, x_zp, w, b, q, shift, y_zp, lo, hi)
    elif op == "conv2d":
        x = rng.choice(edge, size=(1, 4, 5, 2))
        w = rng.choice(w_vals, size=(3, 3, 2, 2))
        w_scale = np.array([0.004, 0.02, 0.0005], np.float32)
        b = np.array([-9000, 0, 9000], np.int32)
        got, want, shift = run_conv_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "SAME", None)
    else:
        x = rng.choice(edge, size=(1, 4, 5, 2))
        w = rng.choice(w_vals, size=(1, 3, 2, 4))
        w_scale = np.array([0.004, 0.02, 0.0005, 0.01], np.float32)
        b = np.array([-9000, 0, 9000, 100], np.int32)
        got, want, shift = run_depthwise_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "SAME", None, 2)
    assert_same(got, want, f"{op} edge values", x_zp, shift)
    inside = (got > -128) & (got < 127)
    assert inside.mean() > 0.25, f"{op}: the case mostly saturates and tests little: {np.unique(got)}"


@pytest.mark.parametrize("op", ["fully_connected", "conv2d", "depthwise_conv2d"])
def test_bias_near_int32_limits_wraps_like_an_int32_adder(op):
    """acc + bias leaves int32: the loop wraps; the face warns and wraps; both agree.

    M = 2^-30 exactly (q = 2^30, shift = -29), so r = round(acc / 2^30) shows the wrap:
    INT32_MAX + (positive taps) comes out near -2, not clamped at +2.
    """
    x_scale, w_scale, y_scale, x_zp, y_zp = np.float32(2.0**-10), np.float32(2.0**-10), np.float32(2.0**10), -128, 0
    b = np.array([INT32_MAX, INT32_MIN, INT32_MAX - 2**20, INT32_MIN + 2**20], np.int32)
    signs = np.array([1, -1, 1, -1], np.int8)  # channel 0 overflows up, channel 1 down, 2 and 3 stay inside
    if op == "fully_connected":
        x = np.full((2, 5), 127, np.int8)  # x + input_offset = 255
        w = (signs[:, None] * np.full((4, 5), 3, np.int8)).astype(np.int8)
        q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, None)
        got = fully_connected_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi)
        with pytest.warns(AccumulatorOverflowWarning):
            want = fc_composition(x, x_zp, w, b, q, shift, y_zp, lo, hi)
    elif op == "conv2d":
        x = np.full((1, 3, 3, 1), 127, np.int8)
        w = (signs[:, None, None, None] * np.full((4, 2, 2, 1), 3, np.int8)).astype(np.int8)
        with pytest.warns(AccumulatorOverflowWarning):
            got, want, shift = run_conv_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "VALID", None)
    else:
        x = np.full((1, 3, 3, 2), 127, np.int8)
        w = (signs[None, None, None, :] * np.full((1, 2, 2, 4), 3, np.int8)).astype(np.int8)
        with pytest.warns(AccumulatorOverflowWarning):
            got, want, shift = run_depthwise_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "VALID",
                                                  None, 2)
    assert int(np.ravel(shift)[0]) == -29, f"expected shift -29 for M = 2^-30, got {shift}"
    assert_same(got, want, f"{op} bias near int32 limits", x_zp, shift)
    first = got.reshape(-1, 4)[0]
    assert first[0] < 0 < first[1], f"{op}: channel 0 should wrap below zero and channel 1 above, got {first}"
    assert first[2] == 2 and first[3] == -2, f"{op}: channels 2 and 3 stay inside int32, got {first}"


@pytest.mark.parametrize("op", ["fully_connected", "conv2d", "depthwise_conv2d"])
def test_multiplier_shifts_positive_and_negative(op):
    """One call whose per-channel shifts run from -10 to +4 (M from 5e-4 to 10)."""
    rng = np.random.default_rng(11)
    x_scale, y_scale, x_zp, y_zp = np.float32(0.5), np.float32(0.1), 3, -5
    w_scale = np.array([1e-4, 0.05, 0.4, 2.0], np.float32)  # M = 5e-4, 0.25, 2, 10
    b = np.array([40000, -7, 3, -1], np.int32)
    if op == "fully_connected":
        x = rand_int8(rng, (5, 4), x_zp - 4, x_zp + 4)
        w = rand_int8(rng, (4, 4), -3, 3)
        q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, None)
        got = fully_connected_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi)
        want = fc_composition(x, x_zp, w, b, q, shift, y_zp, lo, hi)
    elif op == "conv2d":
        x = rand_int8(rng, (1, 4, 4, 2), x_zp - 4, x_zp + 4)
        w = rand_int8(rng, (4, 2, 2, 2), -2, 2)
        got, want, shift = run_conv_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "SAME", None)
    else:
        x = rand_int8(rng, (1, 4, 4, 2), x_zp - 4, x_zp + 4)
        w = rand_int8(rng, (1, 2, 2, 4), -2, 2)
        got, want, shift = run_depthwise_pair(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, 1, 1, "SAME", None, 2)
    assert np.min(shift) < 0 < np.max(shift), f"the case must mix shift signs, got {shift}"
    assert_same(got, want, f"{op} shifts {shift}", x_zp, shift)


# --------------------------------------------------------------------------- FULLY_CONNECTED: not LiteRT's reference

# M = 0.5 exactly (q = 2^30, shift 0); acc = x. MBQM rounds a tie up, std::round away from zero.
TIE_X = np.array([[-5], [5], [-3], [3], [-1], [1]], np.int8)
TIE_LOOP = [-2, 3, -1, 2, 0, 1]  # RDBPOT(SRDHM(x, 2^30), 0) = floor(x/2 + 1/2)
TIE_FLOAT64 = [-3, 3, -2, 2, -1, 1]  # round(double(x) * 0.5), half away from zero


def test_fully_connected_loop_rounds_ties_unlike_litert_reference_fc():
    """Hand-checked: the fixed-point loop and LiteRT's reference FC (the face's float64_rhaz) differ on ties."""
    w = np.array([[1]], np.int8)
    q, shift, lo, hi = loop_params(1.0, 0.5, 1.0, 0, None)
    assert (int(q), int(shift)) == (2**30, 0)
    got = fully_connected_loop(TIE_X, w, None, 0, 0, q, shift, lo, hi)
    assert got.ravel().tolist() == TIE_LOOP, "looks like round half away from zero; MBQM's SRDHM rounds ties up"
    face = tflite.fully_connected(TIE_X, 1.0, 0, w, 0.5, None, 1.0, 0, kernel="reference")
    assert face.ravel().tolist() == TIE_FLOAT64


def test_fully_connected_loop_within_one_lsb_of_face_reference():
    """On random layers fixed_double and float64_rhaz differ by at most 1 LSB (stated bound)."""
    rng = np.random.default_rng(5)
    for per_channel in (False, True):
        x, w = rand_int8(rng, (16, 12)), rand_int8(rng, (6, 12), -127)
        x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, 6, 12, per_channel)
        q, shift, lo, hi = loop_params(x_scale, w_scale, y_scale, y_zp, None)
        got = fully_connected_loop(x, w, b, -x_zp, y_zp, q, shift, lo, hi).astype(int)
        face = tflite.fully_connected(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, kernel="reference").astype(int)
        assert np.abs(got - face).max() <= 1, f"per_channel={per_channel}: {np.abs(got - face).max()} LSB apart"


@pytest.mark.conformance
def test_on_real_litert_reference_kernels():
    """LiteRT BUILTIN_REF: FULLY_CONNECTED rounds the tie in float64; CONV_2D / DEPTHWISE_CONV_2D equal the loops."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("flatbuffers")
    from support.tflite_builder import run_conv2d, run_depthwise_conv2d, run_fully_connected

    w = np.array([[1]], np.int8)
    assert run_fully_connected(TIE_X, 1.0, 0, w, 0.5, None, 1.0, 0, resolver="ref").ravel().tolist() == TIE_FLOAT64
    rng = np.random.default_rng(1)
    x, wc = rand_int8(rng, (1, 5, 6, 4)), rand_int8(rng, (6, 3, 2, 2), -127)  # groups 2
    x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, 6, 12, True)
    got, _, shift = run_conv_pair(x, x_scale, x_zp, wc, w_scale, b, y_scale, y_zp, (2, 1), (1, 2), "SAME", "RELU6")
    litert = run_conv2d(x, x_scale, x_zp, wc, w_scale, b, y_scale, y_zp, stride=(2, 1), padding="SAME",
                        dilation=(1, 2), activation="RELU6", resolver="ref")
    assert_same(got, litert, "conv2d_loop vs LiteRT CONV_2D", x_zp, shift)
    wd = rand_int8(rng, (1, 3, 3, 8), -127)  # depth multiplier 2
    x_scale, w_scale, y_scale, x_zp, y_zp, b = random_layer(rng, 8, 9, True)
    got, _, shift = run_depthwise_pair(x, x_scale, x_zp, wd, w_scale, b, y_scale, y_zp, 1, 1, "SAME", None, 2)
    litert = run_depthwise_conv2d(x, x_scale, x_zp, wd, w_scale, b, y_scale, y_zp, padding="SAME",
                                  depth_multiplier=2, resolver="ref")
    assert_same(got, litert, "depthwise_conv2d_loop vs LiteRT DEPTHWISE_CONV_2D", x_zp, shift)


# --------------------------------------------------------------------------- geometry, errors, no JIT


@pytest.mark.parametrize("padding, n, k, s, d, want", [
    ("SAME", 5, 2, 1, 1, (0, 5)),  # total padding 1: the odd pixel goes after
    ("SAME", 7, 3, 2, 1, (1, 4)),  # (4-1)*2 + 3 - 7 = 2
    ("SAME", 6, 4, 3, 1, (0, 2)),  # (2-1)*3 + 4 - 6 = 1
    ("SAME", 6, 3, 1, 2, (2, 6)),  # effective filter 5: total 4
    ("VALID", 7, 3, 1, 2, (0, 3)),  # (7 + 1 - 5) // 1
    ("VALID", 7, 2, 3, 1, (0, 2)),  # (7 + 3 - 2) // 3
])
def test_compute_padding_height_width_hand_values(padding, n, k, s, d, want):
    g = compute_padding_height_width(padding, n, n + 1, k, 1, stride_height=s, dilation_height_factor=d)
    assert (g["pad_height"], g["output_height"]) == want
    assert g["pad_width"] == 0


X4 = np.zeros((1, 4, 4, 4), np.int8)


@pytest.mark.parametrize("call, err, match", [
    (lambda: fully_connected_loop(np.zeros((2, 3), np.int16), np.zeros((2, 3), np.int8), None, 0, 0, 2**30, 0,
                                  -128, 127), QuantizationTypeError, "x must be an int8 array"),
    (lambda: fully_connected_loop(np.zeros((2, 3), np.int8), np.zeros((2, 4), np.int8), None, 0, 0, 2**30, 0,
                                  -128, 127), ShapeError, r"accum_depth = w.shape\[1\] = 4"),
    (lambda: fully_connected_loop(np.zeros((2, 3), np.int8), np.zeros((2, 3), np.int8), np.zeros(3, np.int32), 0, 0,
                                  2**30, 0, -128, 127), ShapeError, r"bias must have shape \(2,\)"),
    (lambda: fully_connected_loop(np.zeros((2, 3), np.int8), np.zeros((2, 3), np.int8), None, 129, 0, 2**30, 0,
                                  -128, 127), QuantizationValueError, r"input_offset must be in \[-127, 128\]"),
    (lambda: fully_connected_loop(np.zeros((2, 3), np.int8), np.zeros((2, 3), np.int8), None, 0, 0, [2**30] * 3, 0,
                                  -128, 127), ShapeError, "output_multiplier must be a scalar or have shape"),
    (lambda: conv2d_loop(X4, np.zeros((3, 1, 1, 2), np.int8), None, 0, 0, 2**30, 0, -128, 127), ShapeError,
     "must be divisible by groups = 2"),
    (lambda: conv2d_loop(X4, np.zeros((2, 1, 1, 4), np.int8), None, 0, 0, 2**30, 0, 5, 4), QuantizationValueError,
     "output_activation_min must be <= output_activation_max"),
    (lambda: conv2d_loop(X4, np.zeros((2, 7, 1, 4), np.int8), None, 0, 0, 2**30, 0, -128, 127), ShapeError,
     "larger than the padded input height"),
    (lambda: depthwise_conv2d_loop(X4, np.zeros((1, 2, 2, 6), np.int8), None, 0, 0, 2**30, 0, -128, 127,
                                   depth_multiplier=2), ShapeError, "input_depth \\* depth_multiplier = 4 \\* 2 = 8"),
    (lambda: compute_padding_height_width("FULL", 4, 4, 3, 3), QuantizationValueError, "padding must be"),
])
def test_bad_arguments_are_named(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_same_padding_without_jit():
    """The loops need no Numba: a SAME-padded conv and depthwise under NUMBA_DISABLE_JIT=1 (the face too)."""
    code = """if True:
        import numpy as np
        from refquant.backends import tflite
        from refquant.kernels.multiplier import requant_params
        from refquant.ops.reference_loops import compute_padding_height_width, conv2d_loop, depthwise_conv2d_loop
        rng = np.random.default_rng(0)
        x = rng.integers(-128, 127, (1, 5, 4, 2), endpoint=True).astype(np.int8)
        w = rng.integers(-127, 127, (3, 2, 3, 2), endpoint=True).astype(np.int8)
        wd = rng.integers(-127, 127, (1, 3, 2, 4), endpoint=True).astype(np.int8)
        b = np.array([100, -200, 300, -400], np.int32)
        g = compute_padding_height_width("SAME", 5, 4, 2, 3, stride_height=2)
        p = requant_params(0.05, 0.01, 0.2, mode="fixed_double", derivation="f64_ab_div_c")
        y = conv2d_loop(x, w, b[:3], 7, -3, p.multiplier, p.shift, -128, 127, stride_height=2, **g)
        r = tflite.conv2d(x, 0.05, -7, w, 0.01, b[:3], 0.2, -3, stride=(2, 1), padding="SAME", kernel="reference")
        assert y.shape == r.shape and y.dtype == r.dtype and np.array_equal(y, r), (y, r)
        g = compute_padding_height_width("SAME", 5, 4, 3, 2)
        y = depthwise_conv2d_loop(x, wd, b, 7, -3, p.multiplier, p.shift, -128, 127, depth_multiplier=2, **g)
        r = tflite.depthwise_conv2d(x, 0.05, -7, wd, 0.01, b, 0.2, -3, padding="SAME", depth_multiplier=2,
                                    kernel="reference")
        assert y.shape == r.shape and y.dtype == r.dtype and np.array_equal(y, r), (y, r)
        import numba
        assert numba.config.DISABLE_JIT
    """
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"NUMBA_DISABLE_JIT=1 run failed:\n{res.stdout}\n{res.stderr[-3000:]}"
