"""PyTorch's x86 engine on an AVX-512 VNNI CPU: symmetric-weight convolutions run on oneDNN.

``refquant.backends.pytorch.conv2d(..., engine="x86")`` must equal torch 2.13 bit for bit there:
the ``pytorch_x86`` profile's conv dispatch sends those convolutions to the float32 scale-chain
output stage (:mod:`refquant.kernels.requant_chain`). Random, tie-heavy, saturating, off-grid
bias, depthwise, grouped and wide cases; extreme scales (inf/NaN reciprocals); the modelled
zero-accumulator defect; the refused, non-reproducible geometries; thread-count invariance.

On a CPU without AVX-512 VNNI the x86 engine is fbgemm (tested in
``test_conformance_pytorch_ops.py``): this file is skipped there, with the reason.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.nn.quantized as nnq  # noqa: E402
from support.torch_runner import quantized_engine, require_engine  # noqa: E402

from refquant.backends import pytorch as P  # noqa: E402
from refquant.errors import UnsupportedError  # noqa: E402
from refquant.kernels.conv import conv2d as conv_acc  # noqa: E402
from refquant.kernels.requant_chain import (requantize_scale_chain, requantize_scale_chain_reference,  # noqa: E402
                                            scale_chain_constants)
from refquant.profiles import get_profile  # noqa: E402

pytestmark = pytest.mark.conformance
F32 = np.float32
HOST = get_profile("pytorch_x86").with_isa("auto").isa
needs_vnni = pytest.mark.skipif(HOST != "avx512_vnni",
                                reason=f"oneDNN's path needs an AVX-512 VNNI CPU; this CPU: {HOST}")


def _qw(w, ws):
    if np.ndim(ws):
        return torch._make_per_channel_quantized_tensor(torch.from_numpy(w), torch.tensor(np.asarray(ws, np.float64)),
                                                        torch.zeros(w.shape[0], dtype=torch.int64), 0)
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(w), float(ws), 0)


def torch_conv(x, xs, xz, w, ws, b, ys, yz, s, p, d, g):
    o, cg, kh, kw = w.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = nnq.Conv2d(cg * g, o, (kh, kw), stride=s, padding=p, dilation=d, groups=g)
        conv.set_weight_bias(_qw(w, ws), None if b is None else torch.from_numpy(b))
    conv.scale, conv.zero_point = float(ys), int(yz)
    xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(xs), int(xz))
    return conv(xq).int_repr().numpy()


def ours(x, xs, xz, w, ws, b, ys, yz, s, p, d, g):
    return P.conv2d(x, xs, xz, w, ws, 0, b, ys, yz, stride=s, padding=p, dilation=d, groups=g, engine="x86")


def check(a, t, what):
    assert a.shape == t.shape and a.dtype == t.dtype, (what, a.shape, t.shape)
    bad = np.flatnonzero(a.ravel() != t.ravel())
    if bad.size:
        pytest.fail(f"{what}: {bad.size}/{a.size} differ (NOT OK); first {bad[:5]}: refquant {a.ravel()[bad[:5]]} "
                    f"torch {t.ravel()[bad[:5]]}")
    return a.size


def _geometry(rng, kind):
    if kind == "depthwise":
        c = int(rng.choice([3, 8, 16, 17, 32]))
        g, o, cg = c, c, 1
    elif kind == "grouped":
        g = int(rng.choice([2, 3, 4, 8]))
        cg, og = int(rng.integers(2, 6)), int(rng.integers(1, 6))
        c, o = g * cg, g * og
    elif kind == "wide":
        g, cg, c, o = 1, 0, int(rng.choice([64, 128, 200])), int(rng.choice([16, 33]))
        cg = c
    else:
        g, cg = 1, int(rng.integers(2, 12))
        c, o = cg, int(rng.integers(1, 40))
    k = (int(rng.choice([1, 3, 5])), int(rng.choice([1, 3])))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    d = (int(rng.choice([1, 1, 2])), 1)  # dilation_w 1 with stride_w > 1: no crashing geometry
    p = (int(rng.integers(0, 3)), int(rng.integers(0, 2)))
    H = max(d[0] * (k[0] - 1) + 1 - 2 * p[0], 1) + int(rng.integers(0, 8))
    W = max(d[1] * (k[1] - 1) + 1 - 2 * p[1], 1) + int(rng.integers(2, 8))
    return (int(rng.integers(1, 3)), c, H, W), (o, c // g, *k), s, p, d, g


@needs_vnni
def test_onednn_conv_random_and_adversarial():
    require_engine("x86")
    rng = np.random.default_rng(2026)
    counts = {"outputs": 0, "refused": 0, "ties": 0, "fbgemm_would_differ": 0}
    with quantized_engine("x86"):
        for t in range(160):
            kind = ("random", "ties", "saturating", "bias", "depthwise", "grouped", "wide", "random")[t % 8]
            xshape, wshape, s, p, d, g = _geometry(rng, kind)
            x = rng.integers(0, 256, xshape).astype(np.uint8)
            w = rng.integers(-128, 128, wshape).astype(np.int8)
            o = wshape[0]
            per_channel = t % 3 == 0
            ws = rng.uniform(0.002, 0.02, o).astype(F32) if per_channel else F32(rng.uniform(0.002, 0.02))
            xs = F32(2.0 ** -int(rng.integers(3, 7)) if kind == "ties" else rng.uniform(0.005, 0.05))
            xz = int(rng.choice([0, 255]) if kind == "saturating" else rng.integers(0, 256))
            k = wshape[1] * wshape[2] * wshape[3]
            ys = F32(float(xs) * float(np.max(ws)) * (2e-3 if kind == "saturating" else 4 * np.sqrt(k)))
            if kind == "ties":  # small accumulators, scaled by 1/2 or 1/4: exact .5 ties, odd zero points
                w = rng.integers(-2, 3, wshape).astype(np.int8)
                x = np.clip(xz + rng.integers(-3, 4, xshape), 0, 255).astype(np.uint8)
                ws = F32(2.0 ** -int(rng.integers(2, 6)))
                ys = F32(float(xs) * float(ws) * float(rng.choice([2, 4])))
            yz = int(rng.integers(0, 128)) * 2 + 1 if kind == "ties" else int(rng.integers(0, 256))
            b = None if t % 4 == 1 else rng.normal(0, 3 if kind == "bias" else 1, o).astype(F32)
            args = (x, xs, xz, w, ws, b, ys, yz, s, p, d, g)
            try:
                mine = ours(*args)
            except UnsupportedError as err:
                assert "not reproducible" in str(err), err
                counts["refused"] += 1
                continue
            got = torch_conv(*args)
            counts["outputs"] += check(mine, got, f"case {t} {kind}")
            fbgemm = P.conv2d(x, xs, xz, w, ws, 0, b, ys, yz, stride=s, padding=p, dilation=d, groups=g,
                              engine="fbgemm")
            counts["fbgemm_would_differ"] += int((fbgemm != got).sum())
            if kind == "ties":
                counts["ties"] += got.size
    print("[conformance onednn]", counts)
    assert counts["outputs"] > 20000 and counts["ties"] > 1000 and counts["fbgemm_would_differ"] > 500, counts
    assert counts["refused"] < 40, counts  # only the one-channel-group geometries


@needs_vnni
@pytest.mark.parametrize("ys", [F32(1e-38), F32(1e38), F32(3e-45)], ids=["tiny", "huge", "subnormal"])
def test_onednn_extreme_scales(ys):
    """1/S_y past float32 (inf, NaN = 0 * inf -> 255) and the clamp before conversion (no overflow to 0)."""
    require_engine("x86")
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (1, 4, 6, 6)).astype(np.uint8)
    w = rng.integers(-128, 128, (5, 4, 3, 3)).astype(np.int8)
    b = rng.normal(0, 1, 5).astype(F32)
    with quantized_engine("x86"):
        args = (x, F32(0.02), 3, w, F32(0.01), b, ys, 17, (1, 1), (1, 1), (1, 1), 1)
        check(ours(*args), torch_conv(*args), f"y_scale {ys}")


@needs_vnni
def test_onednn_zero_accumulator_defect_is_modelled():
    """Depthwise, 16 channels, kH 1, row padding only, x_zero_point != 0: oneDNN 3.12 returns the bias alone."""
    require_engine("x86")
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (1, 16, 5, 7)).astype(np.uint8)
    w = rng.integers(-128, 128, (16, 1, 1, 3)).astype(np.int8)
    b = rng.normal(0, 1, 16).astype(F32)
    with quantized_engine("x86"):
        args = (x, F32(0.02), 9, w, F32(0.01), b, F32(0.05), 100, (1, 1), (1, 0), (1, 1), 16)
        got = torch_conv(*args)
        check(ours(*args), got, "zero accumulator")
        assert np.unique(got[0, 0]).size == 1  # every pixel of a channel: bias only


@needs_vnni
def test_onednn_thread_count_invariant():
    require_engine("x86")
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (2, 32, 12, 12)).astype(np.uint8)
    w = rng.integers(-128, 128, (48, 32, 3, 3)).astype(np.int8)
    b = rng.normal(0, 1, 48).astype(F32)
    args = (x, F32(0.02), 11, w, rng.uniform(0.002, 0.02, 48).astype(F32), b, F32(0.3), 128, (1, 1), (1, 1),
            (1, 1), 1)
    before = torch.get_num_threads()
    try:
        with quantized_engine("x86"):
            for n in (1, 2):
                torch.set_num_threads(n)
                check(ours(*args), torch_conv(*args), f"{n} threads")
    finally:
        torch.set_num_threads(before)


def test_asymmetric_weights_and_many_groups_stay_on_fbgemm():
    """The dispatch rule: a weight zero point, or more than 100 groups, keeps fbgemm on every CPU."""
    x = np.full((1, 101, 3, 3), 200, np.uint8)
    w = np.full((101, 1, 3, 3), 127, np.int8)
    fb = P.conv2d(x, F32(0.02), 3, w, F32(0.01), 0, None, F32(0.2), 7, padding=1, groups=101, engine="fbgemm")
    np.testing.assert_array_equal(
        P.conv2d(x, F32(0.02), 3, w, F32(0.01), 0, None, F32(0.2), 7, padding=1, groups=101, engine="x86"), fb)
    x2, w2 = x[:, :8], w[:8, :1].repeat(8, axis=1)
    fb = P.conv2d(x2, F32(0.02), 3, w2, F32(0.01), 1, None, F32(0.2), 7, padding=1, engine="fbgemm")
    np.testing.assert_array_equal(
        P.conv2d(x2, F32(0.02), 3, w2, F32(0.01), 1, None, F32(0.2), 7, padding=1, engine="x86"), fb)


@pytest.mark.kernels
def test_scale_chain_twin_equals_reference():
    """The vectorized chain equals the element-by-element spec bit for bit, NaN and saturation included."""
    rng = np.random.default_rng(10)
    acc = rng.integers(-2 ** 31, 2 ** 31, (2, 5, 3, 4)).astype(np.int32)
    acc[0, 0, 0, :4] = [0, -1, 2 ** 31 - 1, -2 ** 31]
    for xs, ws, ys, yz, relu in ((0.02, 0.01, 0.3, 0, False), (0.02, rng.uniform(0.001, 0.1, 5), 1e-30, 7, True),
                                 (1e-20, 1e-20, 3e-45, 255, False)):
        s_x, s_w, d = scale_chain_constants(F32(xs), np.asarray(ws, F32), F32(ys))
        b = rng.normal(0, 100, 5).astype(F32)
        for bias in (None, b):
            ref = requantize_scale_chain_reference(acc, s_x, s_w, bias, d, yz, 0, 255, axis=1, relu=relu)
            np.testing.assert_array_equal(requantize_scale_chain(acc, s_x, s_w, bias, d, yz, 0, 255, axis=1,
                                                                 relu=relu), ref)


@pytest.mark.kernels
def test_scale_chain_constants_by_hand():
    """s_x = fl(1/fl(1/S_x)) is one ulp from S_x for some float32 values; d = fl(1/S_y) for normal S_y."""
    one = F32(1)
    v = next(F32(u) for u in np.linspace(0.01, 0.02, 1000, dtype=F32) if F32(one / F32(one / F32(u))) != F32(u))
    s_x, _, d = scale_chain_constants(v, F32(0.5), F32(0.25))
    assert s_x != v and abs(int(s_x.view(np.int32)) - int(v.view(np.int32))) == 1
    assert d == F32(4.0)
    acc = conv_acc(np.full((1, 1, 1, 1), 3, np.uint8), np.full((1, 1, 1, 1), 2, np.int8), 0, 0)  # 6
    # 6 * 0.25 * 1 * 2 = 3, + 100 -> 103
    assert requantize_scale_chain(acc, F32(0.25), F32(1.0), None, F32(2.0), 100, 0, 255, axis=1)[0, 0, 0, 0] == 103


def test_unreproducible_geometry_is_refused_only_where_onednn_runs():
    """One input channel per group with several outputs (a grayscale first layer): oneDNN 3.12's results
    change from run to run (measured), so refquant refuses it on AVX-512 VNNI hosts, and runs fbgemm's
    arithmetic elsewhere."""
    x = np.full((1, 1, 6, 6), 30, np.uint8)
    w = np.ones((8, 1, 3, 3), np.int8)
    args = (x, F32(0.02), 3, w, F32(0.01), 0, None, F32(0.2), 7)
    for isa in ("avx512_vnni", "avx2"):
        prof = get_profile("pytorch_x86").with_isa(isa)
        if isa == "avx512_vnni":
            with pytest.raises(UnsupportedError, match="not reproducible"):
                P.conv2d(*args, padding=1, engine="x86", isa="vnni")
        else:
            np.testing.assert_array_equal(P.conv2d(*args, padding=1, engine="x86", isa="avx2"),
                                          P.conv2d(*args, padding=1, engine="fbgemm", isa="avx2"))
        assert prof.conv_dispatch[0].applies(prof.isa, 1, 0) == (isa == "avx512_vnni")
