"""refquant.kernels._conv_fast: the AVX2 vpmaddwd implicit-GEMM convolution against
conv2d_reference (random and extreme codes, odd channel counts, kernels 1/3/5/7, dilation 2,
asymmetric pads, strides 2 and (2, 1), batch > 1, per-channel weight zero points, int32 wrap),
its packing against NumPy twins, and the dispatch of refquant.kernels.conv2d."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.kernels import _conv_fast as cf
from refquant.kernels import conv as conv_mod
from refquant.kernels.conv import conv2d, conv2d_reference

pytestmark = pytest.mark.kernels

needs_kernel = pytest.mark.skipif(not cf.available(), reason="needs x86-64 AVX2 and the JIT enabled")

DTYPE_PAIRS = [(np.uint8, np.int8), (np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)]

# (N, C, H, W, O, kH, kW, strides, dilations, pads (top, left, bottom, right))
CASES = [
    (1, 1, 1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),
    (1, 3, 7, 9, 5, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),
    (2, 5, 8, 11, 7, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),
    (1, 17, 12, 10, 13, 3, 3, (1, 1), (2, 2), (2, 0, 1, 3)),
    (1, 6, 11, 13, 6, 5, 5, (1, 1), (1, 1), (2, 2, 2, 2)),
    (2, 9, 14, 9, 11, 7, 7, (1, 1), (1, 1), (3, 1, 0, 4)),
    (1, 4, 9, 8, 3, 3, 2, (1, 1), (1, 2), (0, 1, 2, 0)),
    (2, 7, 13, 12, 9, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)),
    (1, 5, 15, 16, 6, 5, 3, (2, 1), (2, 1), (1, 0, 2, 1)),
    (1, 3, 10, 11, 4, 1, 1, (2, 2), (1, 1), (0, 0, 0, 0)),
    (1, 130, 6, 5, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1)),  # several channel-pair blocks
]


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _operands(seed, N, C, H, W, O, kh, kw, dx, dw):
    rng = np.random.default_rng(seed)
    return _rand(rng, dx, (N, C, H, W)), _rand(rng, dw, (O, C, kh, kw)), _rand(rng, dx, ()), _rand(rng, dw, (O,))


def _run(x, w, xz, wz, strides, dilations, pads):
    p = conv_mod.conv_args(x, w, xz, wz, strides, dilations, pads, None, "NCHW", None, "wrap", "chw", "warn")[4]
    out = np.empty((x.shape[0], w.shape[0]) + p.out_hw, np.int32)
    return cf.conv2d_wrap(x, w, int(xz), np.asarray(wz, np.int64), strides, dilations, pads, out)


@pytest.mark.parametrize("C,O,kh,kw,strides,dilations,pads", [
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)), (5, 7, 3, 2, (1, 1), (2, 1), (1, 0, 2, 1)),
    (4, 3, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1)), (3, 6, 5, 3, (2, 1), (1, 2), (0, 2, 1, 0))])
def test_packing_equals_numpy_twins(C, O, kh, kw, strides, dilations, pads):
    x, w, xz, wz = _operands(C * 10 + O, 1, C, 7, 6, O, kh, kw, np.uint8, np.int8)
    Hq, Wq, L, n_cols, phase, delta = cf.geometry(7, 6, (kh, kw), strides, dilations, pads)
    xq = np.empty(strides[0] * strides[1] * ((C + 1) // 2) * L, np.int32)
    cf.pack_image(x[0], int(xz), strides[0], strides[1], pads[0], pads[1], Hq, Wq, L, xq)
    np.testing.assert_array_equal(xq.view(np.int16),
                                  cf.pack_image_reference(x, xz, strides, pads, Hq, Wq, L).ravel())
    wq = np.empty(-(-O // cf.MR) * kh * kw * ((C + 1) // 2) * cf.MR, np.int32)
    cf.pack_weights(w, wz.astype(np.int32), wq)
    np.testing.assert_array_equal(wq.view(np.int16), cf.pack_weights_reference(w, wz).ravel())


def test_geometry_reads_stay_inside_the_plane():
    """Every computed column plus its largest tap offset stays inside the packed plane."""
    for kh, dh, sh, H, pads in ((7, 1, 1, 5, (3, 3, 3, 3)), (3, 2, 2, 9, (0, 1, 2, 0)), (1, 1, 2, 4, (0, 0, 0, 0))):
        Hq, Wq, L, n_cols, phase, delta = cf.geometry(H, H + 1, (kh, kh), (sh, sh), (dh, dh), pads)
        assert n_cols % cf.NR == 0 and L % cf.NR == 0 and n_cols + delta.max() <= L and Hq * Wq <= L
        assert phase.max() < sh * sh


@needs_kernel
@pytest.mark.parametrize("dx,dw", DTYPE_PAIRS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_random_equals_reference(case, dx, dw):
    N, C, H, W, O, kh, kw, strides, dilations, pads = case
    x, w, xz, wz = _operands(sum(case[:7]), N, C, H, W, O, kh, kw, dx, dw)
    ref = conv2d_reference(x, w, xz, wz, strides=strides, dilations=dilations, pads=pads)
    np.testing.assert_array_equal(_run(x, w, xz, wz, strides, dilations, pads), ref)


@needs_kernel
@pytest.mark.parametrize("C,kh", [(1, 1), (2, 3), (63, 3), (64, 7)])
def test_extreme_operands(C, kh):
    """|x - zx| = |w - zw| = 255 everywhere: each vpmaddwd lane is 2·255² = 130050, the maximum;
    the padded taps (raw code zx) must still contribute 0."""
    for xv, xz, wv, wz in ((0, 255, -128, 127), (0, 255, 127, -128), (-128, 127, -128, 127)):
        dx = np.uint8 if xz == 255 else np.int8
        x = np.full((1, C, 9, 10), xv, dx)
        w = np.full((3, C, kh, kh), wv, np.int8)
        args = dict(strides=1, dilations=1, pads=(kh // 2, 1, kh - 1, 0))
        ref = conv2d_reference(x, w, dx(xz), np.int8(wz), **args)
        np.testing.assert_array_equal(conv2d(x, w, dx(xz), np.int8(wz), **args), ref)


@needs_kernel
def test_int32_wrap_model():
    """K·255² > 2^31: the "wrap" model takes the fast path and wraps like the reference."""
    C = 33100
    x = np.zeros((1, C, 2, 2), np.uint8)
    w = np.full((2, C, 1, 1), -128, np.int8)
    ref = conv2d_reference(x, w, np.uint8(255), np.int8(127), acc_model="wrap")
    assert ref.min() < 0  # wrapped: the exact value is +K·255²
    np.testing.assert_array_equal(conv2d(x, w, np.uint8(255), np.int8(127), acc_model="wrap"), ref)


@pytest.mark.parametrize("available", [True, False])
def test_dispatch(monkeypatch, available):
    """conv2d takes the implicit GEMM for groups == 1 exact/wrap when available, else falls back;
    both equal the reference (NHWC and SAME pads included)."""
    if available and not cf.available():
        pytest.skip("needs x86-64 AVX2 and the JIT enabled")
    calls = []
    real = cf.conv2d_wrap
    monkeypatch.setattr(cf, "available", lambda: available)
    monkeypatch.setattr(cf, "conv2d_wrap", lambda *a: calls.append(1) or real(*a))
    x, w, xz, wz = _operands(7, 2, 5, 9, 8, 6, 3, 3, np.uint8, np.int8)
    for layout, xx, ww in (("NCHW", x, w), ("NHWC", x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1))):
        kw = dict(pads="SAME_UPPER", strides=2, layout=layout)
        np.testing.assert_array_equal(conv2d(xx, ww, xz, wz, **kw), conv2d_reference(xx, ww, xz, wz, **kw))
    x2, w2 = x[:, :4], w[:, :2]  # groups = 2: not this kernel
    np.testing.assert_array_equal(conv2d(x2, w2, xz, wz, groups=2, pads=1),
                                  conv2d_reference(x2, w2, xz, wz, groups=2, pads=1))
    assert len(calls) == (2 if available else 0)
