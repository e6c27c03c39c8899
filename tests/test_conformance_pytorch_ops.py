"""refquant.backends.pytorch op level (linear, conv2d, add, dynamic_linear) against torch 2.13 CPU.

Compared with ``==`` (dynamic_linear: float32 bit patterns) on seeded cases per op and engine
(fbgemm, x86, qnnpack): realistic random, tie-heavy (power-of-two scales), saturating (tiny
output scales, extreme zero points, products past 2^31), per-channel weights with zero points,
odd shapes, every fbgemm conv path (depthwise fast path, groupwise, pointwise, im2col; stride 2,
dilation 2, 7x7, groups), and full-range uint8 x int8 operands with and without reduce_range, where
AVX2 ``vpmaddubsw`` pair saturation shows. Each test asserts how many outputs it compared and how
many of them the rejected alternative models would get wrong, so a silently weakened test fails.
The machine must be x86-64 AVX2 without AVX512-VNNI for fbgemm's saturation to be observable
(``isa="auto"`` then means ``"avx2"``); elsewhere the fbgemm counts of saturated outputs are skipped.

Rerun: ``pytest tests/test_conformance_pytorch_ops.py -m conformance -s``
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.ao.nn.quantized as nnq  # noqa: E402
import torch.ao.nn.quantized.dynamic as nnqd  # noqa: E402
from support.torch_runner import quantized_engine, require_engine  # noqa: E402

from refquant._validate import as_int_pair  # noqa: E402
from refquant.backends import _pytorch_add as ADD  # noqa: E402
from refquant.kernels import conv as kconv  # noqa: E402
from refquant.kernels.elementwise_blocks import float_add_blocks  # noqa: E402
from refquant.kernels import gemm as kgemm  # noqa: E402
from refquant.ops import layers  # noqa: E402
from refquant.profiles import get_profile  # noqa: E402
from refquant.backends import pytorch as P  # noqa: E402
from refquant.errors import UnsupportedError  # noqa: E402
from refquant.kernels import bias as B  # noqa: E402
from refquant.kernels import requant as RQ  # noqa: E402
from refquant.quantization import fma_f32  # noqa: E402

pytestmark = [pytest.mark.conformance, pytest.mark.filterwarnings("ignore::UserWarning")]
F32 = np.float32
ENGINES = ("fbgemm", "x86", "qnnpack")
AVX2 = get_profile("pytorch_fbgemm").with_isa("auto").isa in ("avx2", "avx_vnni")  # fbgemm pairs u8s8 here


def check(ours, theirs, what):
    """Shape, dtype, values (floats by bit pattern); returns the number of outputs compared."""
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch {theirs.dtype}"
    a, b = (ours.view(np.uint32), theirs.view(np.uint32)) if ours.dtype == F32 else (ours, theirs)
    bad = np.flatnonzero((a != b).ravel())
    if bad.size:
        pytest.fail(f"{what}: {bad.size}/{a.size} differ (NOT OK); first at {bad[:5]}: refquant "
                    f"{ours.ravel()[bad[:5]]} torch {theirs.ravel()[bad[:5]]}")
    return ours.size


def _report(name, counts):
    print(f"\n[conformance pytorch ops] {name}: {counts}")


# --------------------------------------------------------------------------- torch runners


def _qt(codes, scale, zp):
    t = torch.from_numpy(np.ascontiguousarray(codes))
    return torch._make_per_tensor_quantized_tensor(t, float(scale), int(zp))


def _qw(w, ws, wz):
    if np.ndim(ws) or np.ndim(wz):
        n = w.shape[0]
        return torch._make_per_channel_quantized_tensor(
            torch.from_numpy(w), torch.tensor(np.broadcast_to(np.asarray(ws, np.float64), (n,)).copy()),
            torch.tensor(np.broadcast_to(np.asarray(wz, np.int64), (n,)).copy()), 0)
    return _qt(w, ws, wz)


def torch_linear(x, xs, xz, w, ws, wz, bias, ys, yz):
    lin = nnq.Linear(w.shape[1], w.shape[0])
    lin.set_weight_bias(_qw(w, ws, wz), None if bias is None else torch.from_numpy(bias))
    lin.scale, lin.zero_point = float(ys), int(yz)
    return lin(_qt(x, xs, xz)).int_repr().numpy()


def torch_conv(x, xs, xz, w, ws, wz, bias, ys, yz, stride, padding, dilation, groups):
    o, cg, kh, kw = w.shape
    conv = nnq.Conv2d(cg * groups, o, (kh, kw), stride=stride, padding=padding, dilation=dilation, groups=groups)
    conv.set_weight_bias(_qw(w, ws, wz), None if bias is None else torch.from_numpy(bias))
    conv.scale, conv.zero_point = float(ys), int(yz)
    return conv(_qt(x, xs, xz)).int_repr().numpy()


def torch_dynamic_linear(x, w, ws, wz, bias, reduce_range):
    lin = nnqd.Linear(w.shape[1], w.shape[0])
    lin.set_weight_bias(_qw(w, ws, wz), None if bias is None else torch.from_numpy(bias))
    return torch.ops.quantized.linear_dynamic(torch.from_numpy(x), lin._packed_params._packed_params,
                                              reduce_range=reduce_range).numpy()


# --------------------------------------------------------------------------- case generators


def weight_params(rng, n, per_channel, kind):
    if kind == "ties":
        ws = np.array([2.0 ** -int(rng.integers(4, 9)) for _ in range(n)], F32) if per_channel else \
            F32(2.0 ** -int(rng.integers(4, 9)))
    else:
        ws = rng.uniform(0.001, 0.02, n).astype(F32) if per_channel else F32(rng.uniform(0.001, 0.02))
    with_zp = rng.random() < 0.3
    if not with_zp:
        return ws, (np.zeros(n, np.int64) if per_channel else 0)
    if kind == "saturating":  # extreme weight zero points
        return ws, (rng.choice([-128, 127], n) if per_channel else int(rng.choice([-128, 127])))
    return ws, (rng.integers(-20, 21, n) if per_channel else int(rng.integers(-20, 21)))


def output_params(rng, kind, xs, ws, acc_span):
    """y_scale, y_zero_point: outputs spread over ~100 codes (random), power of two (ties), or tiny
    scales and extreme zero points (saturating)."""
    atws = float(xs) * float(np.max(ws))
    if kind == "ties":
        ys = F32(2.0 ** np.round(np.log2(atws * max(acc_span, 1) / 64)))
    elif kind == "saturating":
        ys = F32(atws * max(acc_span, 1) / 4000 * rng.uniform(0.5, 2))
        return ys, int(rng.choice([0, 1, 254, 255]))
    else:
        ys = F32(atws * max(acc_span, 1) / 100 * rng.uniform(0.5, 2))
    return ys, int(rng.integers(0, 256))


def pick_bias(rng, atws, n):
    """fbgemm, per tensor, output multiplier 1 (y_scale = act_times_w_scale): biases where the
    fused reciprocal, the unfused reciprocal and the division land on different sides of .5."""
    a = float(atws)
    b = (rng.integers(-50, 50, 4000) + 0.5) * a * (1 + rng.uniform(-3e-7, 3e-7, 4000))
    b = b.astype(F32)
    rcp = F32(1.0 / float(F32(a)))
    acc = np.array([0.0, 1.0])
    fused = np.rint(np.float32(b[:, None] * np.float64(rcp) + acc))  # RNE; b*rcp exact in float64
    div = np.rint((b / F32(a)).astype(F32)[:, None] + acc.astype(F32))  # RNE
    split = (b * rcp).astype(F32)[:, None] + acc.astype(F32)
    differ = (fused != div).any(axis=1) | (fused != np.rint(split)).any(axis=1)  # RNE
    good = b[differ]
    return (good[:n] if good.size >= n else np.resize(good, n)) if good.size else np.zeros(n, F32)


# --------------------------------------------------------------------------- linear


def fbgemm_bias_alternatives(acc, bias, xs, ws, ys, yz, axis):
    """Outputs under the rejected per-tensor bias forms (division; reciprocal without FMA)."""
    atws = F32(xs * ws)
    m = F32(atws / ys)
    return [RQ.requantize(f, m, yz, 0, 255, mode="float32_rne", axis=axis, dtype=np.uint8)
            for f in (B.float_bias_accumulator(acc, bias, atws, axis=axis),
                      B.float_bias_accumulator(acc, bias, atws, axis=axis, reciprocal=True, fused=False))]


def overflowed(got, acc_exact, multiplier):
    """Outputs that torch sends to 0 because fl(acc M) >= 2^31 (with a 2x margin)."""
    return int(((got == 0) & (acc_exact.astype(np.float64) * float(np.min(multiplier)) > 2.0 ** 32)).sum())


@pytest.mark.parametrize("engine", ENGINES)
def test_linear(engine):
    require_engine(engine)
    rng = np.random.default_rng(301)
    counts = {"outputs": 0, "pair_saturation_matters": 0, "cvtps_overflow": 0, "bias_alternatives_wrong": 0,
              "pairwise_model_wrong": 0}
    with quantized_engine(engine):
        for t in range(96):
            kind = ("random", "ties", "saturating")[t % 3]
            per_channel, full_range = (t // 3) % 2 == 1, (t // 6) % 2 == 1
            targeted = t % 12 == 0  # random, per tensor: biases on the .5 boundary of the bias forms, M = 1
            m = int(rng.choice([1, 3, 17, 96, 256]))
            k = int(rng.choice([1, 2, 3, 7, 16, 33, 64, 127, 300])) if not targeted else int(rng.integers(1, 3))
            n = int(rng.choice([1, 5, 8, 13, 32]))
            x = rng.integers(0, 256 if full_range else 128, (m, k)).astype(np.uint8)
            w = rng.integers(-128, 128, (n, k)).astype(np.int8) if not targeted else \
                rng.integers(-2, 3, (n, k)).astype(np.int8)
            xs = F32(2.0 ** -int(rng.integers(3, 8)) if kind == "ties" else rng.uniform(0.005, 0.05))
            xz = int(rng.choice([0, 255]) if kind == "saturating" else rng.integers(0, 256))
            ws, wz = weight_params(rng, n, per_channel, kind)
            ys, yz = output_params(rng, kind, xs, ws, 128 * 64 * np.sqrt(k))
            bias = None if t % 5 == 4 else rng.normal(0, 2, n).astype(F32)
            if kind == "saturating" and t % 4 == 2:
                ys = F32(float(xs) * float(np.max(ws)) * 2e-6)  # products past 2^31: cvtps2dq overflow
            if targeted:
                wz, xz, yz = 0, int(x.mean()), 128
                ys = F32(xs * ws)
                bias = pick_bias(rng, ys, n)
            args = (x, xs, xz, w, ws, wz, bias, ys, yz)
            got = torch_linear(*args)
            ours = P.linear(*args, engine=engine)
            counts["outputs"] += check(ours, got, f"linear {engine} case {t} ({kind})")
            counts["pair_saturation_matters"] += int((P.linear(*args, engine=engine, isa="exact") != ours).sum())
            acc = (x.astype(np.int64) - xz) @ (w.astype(np.int64) - np.reshape(wz, (-1, 1))).T  # exact (M, N)
            counts["cvtps_overflow"] += overflowed(got, acc, np.asarray(xs * np.asarray(ws, F32) / ys, F32))
            if targeted and engine != "qnnpack":
                counts["bias_alternatives_wrong"] += sum(int((alt != got).sum()) for alt in fbgemm_bias_alternatives(
                    acc.astype(np.int32), bias, xs, ws, ys, yz, -1))
            if engine == "qnnpack" and full_range:  # qnnpack is exact: fbgemm's pair saturation would be wrong
                pairs = kgemm.gemm(x, np.ascontiguousarray(w.T), xz, np.asarray(wz).astype(np.int8),
                                   acc_model="pairwise_sat16_u8s8")
                alt = layers.output_stage(pairs, get_profile("pytorch_qnnpack").linear, xs, np.asarray(ws, F32), ys,
                                          yz, bias=bias, axis=-1, out_dtype=np.uint8)
                counts["pairwise_model_wrong"] += int((alt != got).sum())
        # a 3-D input, as nnq.Linear accepts (..., K)
        x = rng.integers(0, 256, (2, 5, 9)).astype(np.uint8)
        w = rng.integers(-128, 128, (4, 9)).astype(np.int8)
        args = (x, F32(0.02), 7, w, F32(0.01), 0, None, F32(0.05), 100)
        counts["outputs"] += check(P.linear(*args, engine=engine), torch_linear(*args), f"linear {engine} 3-D input")
    _report(f"linear {engine}", counts)
    assert counts["outputs"] > 20000 and counts["cvtps_overflow"] > 100, counts
    if engine != "qnnpack":
        assert counts["bias_alternatives_wrong"] > 20, counts
        if AVX2:
            assert counts["pair_saturation_matters"] > 100, counts  # the saturation model is really exercised
    else:
        assert counts["pairwise_model_wrong"] > 100, counts


def test_linear_pairwise_only_on_full_range():
    """On AVX2 (no AVX-512 VNNI) reduce_range (x codes <= 127) keeps vpmaddubsw exact and full-range
    codes saturate; on an AVX-512 VNNI CPU fbgemm's vpdpbusd is exact for both. Both pinned."""
    require_engine("fbgemm")
    rng = np.random.default_rng(302)
    seen = {"reduced": 0, "full": 0}
    with quantized_engine("fbgemm"):
        for full in (False, True):
            x = rng.integers(0, 256 if full else 128, (256, 64)).astype(np.uint8)
            w = rng.choice(np.array([-128, 127, -127, 126], np.int8), (16, 64))  # full-range int8 weights
            args = (x, F32(0.01), 0, w, F32(0.01), 0, None, F32(4.0), 128)
            got = torch_linear(*args)
            check(P.linear(*args), got, f"linear full={full}")
            seen["full" if full else "reduced"] = int((P.linear(*args, isa="exact") != got).sum())
    assert seen["reduced"] == 0, seen
    assert (seen["full"] > 100) if AVX2 else (seen["full"] == 0), (AVX2, seen)


# --------------------------------------------------------------------------- conv2d

# (name, C, O, groups, kernel, stride, padding, dilation); the fbgemm path each takes on AVX2
CONVS = [
    ("depthwise3x3", 16, 16, 16, 3, 1, 1, 1), ("depthwise3x3_s2", 8, 8, 8, 3, 2, 1, 1),
    ("depthwise5x5", 8, 8, 8, 5, 1, 2, 1), ("depthwise_mult2", 8, 16, 8, 3, 1, 1, 1),
    ("depthwise_c6", 6, 6, 6, 3, 1, 1, 1), ("depthwise_pad0", 8, 8, 8, 3, 1, 0, 1),
    ("groupwise_cg2", 8, 8, 4, 3, 1, 1, 1), ("groupwise_cg4", 16, 16, 4, 3, 1, 1, 1),
    ("groupwise_cg8", 16, 16, 2, 3, 2, 1, 1), ("groupwise_cg16", 32, 32, 2, 3, 1, 1, 1),
    ("groups_cg3", 9, 6, 3, 3, 1, 1, 1), ("pointwise", 13, 7, 1, 1, 1, 0, 1),
    ("pointwise_s2", 6, 5, 1, 1, 2, 0, 1), ("im2col3x3", 5, 7, 1, 3, 1, 1, 1),
    ("im2col_dilation2", 3, 4, 1, 3, 2, 2, 2), ("im2col7x7", 3, 8, 1, 7, 2, 3, 1),
    ("im2col_1x3", 4, 3, 1, (1, 3), (1, 2), (0, 1), 1),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_conv2d(engine):
    require_engine(engine)
    rng = np.random.default_rng(303)
    counts = {"outputs": 0, "pair_saturation_matters": 0, "cvtps_overflow": 0, "bias_alternatives_wrong": 0,
              "refused_unreproducible": 0}
    paths = set()
    # engine x86 on an AVX-512 VNNI CPU sends symmetric-weight convs to oneDNN (its own output stage,
    # tested in test_conformance_pytorch_onednn.py); some of these geometries are refused there
    onednn = engine == "x86" and get_profile("pytorch_x86").with_isa("auto").isa == "avx512_vnni"
    with quantized_engine(engine):
        for i, (name, c, o, g, k, s, p, d) in enumerate(CONVS):
            kh, kw = (k, k) if np.isscalar(k) else k
            for t in range(4):
                kind = ("random", "ties", "saturating", "random")[t]
                per_channel = (i + t) % 2 == 1
                targeted = t == 3 and not per_channel  # M = 1, biases on the .5 boundary of the bias forms
                hw = (int(rng.integers(7, 12)), int(rng.integers(7, 12)))
                x = rng.integers(0, 256 if t < 3 else 128, (2, c) + hw).astype(np.uint8)
                w = rng.integers(-128, 128, (o, c // g, kh, kw)).astype(np.int8) if not targeted else \
                    rng.integers(-1, 2, (o, c // g, kh, kw)).astype(np.int8)
                xs = F32(2.0 ** -int(rng.integers(3, 8)) if kind == "ties" else rng.uniform(0.005, 0.05))
                xz = int(rng.choice([0, 255]) if kind == "saturating" else rng.integers(0, 256))
                ws, wz = weight_params(rng, o, per_channel, kind)
                ys, yz = output_params(rng, kind, xs, ws, 128 * 64 * np.sqrt(c // g * kh * kw))
                bias = None if t == 1 else rng.normal(0, 2, o).astype(F32)
                if t == 2 and i % 2 == 0:
                    ys = F32(float(xs) * float(np.max(ws)) * 2e-6)  # cvtps2dq overflow
                if targeted:
                    x = (x // 8 + 56).astype(np.uint8)  # codes 56..71 around x_zero_point 64: small accumulators
                    xz, wz, yz, ys = 64, 0, 128, F32(xs * ws)
                    bias = pick_bias(rng, ys, o)
                args = (x, xs, xz, w, ws, wz, bias, ys, yz)
                geo = dict(stride=s, padding=p, dilation=d, groups=g)
                try:
                    ours = P.conv2d(*args, **geo, engine=engine)
                except UnsupportedError as err:
                    assert onednn and "not reproducible" in str(err), err
                    counts["refused_unreproducible"] += 1
                    continue
                got = torch_conv(*args, s, p, d, g)
                counts["outputs"] += check(ours, got, f"conv2d {engine} {name} case {t} ({kind})")
                exact = P.conv2d(*args, **geo, engine=engine, isa="exact")
                counts["pair_saturation_matters"] += int((exact != ours).sum())
                if t == 2 or targeted:
                    acc = kconv.conv2d(x, w, xz, np.asarray(wz, np.int64).astype(np.int8), strides=s, pads=p,
                                           dilations=d, groups=g)  # exact int32 (N, O, OH, OW)
                    counts["cvtps_overflow"] += overflowed(got, acc, np.asarray(xs * np.asarray(ws, F32) / ys, F32))
                if targeted and engine != "qnnpack":
                    counts["bias_alternatives_wrong"] += sum(int((alt != got).sum()) for alt in
                                                             fbgemm_bias_alternatives(acc, bias, xs, ws, ys, yz, 1))
            paths.add(P.fbgemm_conv_path(c, o, (kh, kw), *(as_int_pair(v, "v", minimum=0) for v in (s, p, d)), g))
    _report(f"conv2d {engine}", counts)
    assert paths == {"depthwise", "groupwise", "pointwise", "im2col"}
    assert counts["outputs"] > 30000, counts
    if onednn:  # oneDNN clamps before converting (its huge negatives give 0 too, so no overflow count)
        assert counts["refused_unreproducible"] > 0, counts
    else:
        assert counts["cvtps_overflow"] > 100, counts
    if engine != "qnnpack":
        assert counts["bias_alternatives_wrong"] > 20, counts
        if AVX2:
            assert counts["pair_saturation_matters"] > 100, counts


def test_conv2d_qnnpack_bias_rounding():
    """qnnpack quantizes the float bias at run time with a reciprocal multiply: biases where
    rint(b * (1/(S_w S_x))) and rint(b / (S_w S_x)) differ move every output of their channel."""
    require_engine("qnnpack")
    rng = np.random.default_rng(304)
    total = differ = 0
    with quantized_engine("qnnpack"):
        for t in range(40):
            xs, ws = F32(rng.uniform(0.005, 0.05)), F32(rng.uniform(0.001, 0.02))
            s = F32(ws * xs)
            cand = rng.normal(0, 3, 20000).astype(F32)
            odd = cand[np.rint((cand * F32(F32(1) / s)).astype(F32)) != np.rint(cand / s)]  # RNE both
            o = 4
            bias = np.resize(odd, o).astype(F32) if odd.size else np.zeros(o, F32)
            x = rng.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)
            w = rng.integers(-3, 4, (o, 3, 1, 1)).astype(np.int8)
            args = (x, xs, 128, w, ws, 0, bias, s, 128)  # requantization scale ~1: one code per bias step
            got = torch_conv(*args, 1, 0, 1, 1)
            total += check(P.conv2d(*args, engine="qnnpack"), got, f"qnnpack conv bias case {t}")
            qb_div = np.rint(bias / s).astype(np.int64)  # RNE: the rejected division
            differ += int((qb_div != np.rint((bias * F32(F32(1) / s)).astype(F32))).sum())
    assert total > 5000 and differ >= 20, (total, differ)


# --------------------------------------------------------------------------- add


def _torch_add(a, sa, za, b, sb, zb, sy, zy, relu):
    op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
    return op(_qt(a, sa, za), _qt(b, sb, zb), float(sy), int(zy)).int_repr().numpy()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_add(engine, dtype):
    require_engine(engine)
    rng = np.random.default_rng(305)
    info = np.iinfo(dtype)
    counts = {"outputs": 0, "refused_alike": 0, "vector_vs_tail_differ": 0, "aten_model_wrong": 0}
    previous = torch.get_num_threads()
    try:
        with quantized_engine(engine):
            torch.set_num_threads(1)
            for t in range(300):
                kind = ("random", "ties", "saturating")[t % 3]
                shape = [(int(rng.integers(1, 200)),), (3, int(rng.integers(1, 50))), (2, 3, 4, 5), (64,), (1,)][t % 5]
                a = rng.integers(info.min, info.max + 1, shape).astype(dtype)
                b = rng.integers(info.min, info.max + 1, shape).astype(dtype)
                if kind == "ties":
                    sa, sb, sy = (F32(2.0 ** -int(rng.integers(1, 8))) for _ in range(3))
                elif kind == "saturating":
                    sa, sb, sy = F32(rng.uniform(0.05, 0.5)), F32(rng.uniform(0.05, 0.5)), F32(rng.uniform(0.002, 0.01))
                else:
                    sa, sb, sy = (F32(rng.uniform(0.01, 0.2)) for _ in range(3))
                za, zb, zy = (int(rng.choice([info.min, info.max]) if kind == "saturating" else
                                  rng.integers(info.min, info.max + 1)) for _ in range(3))
                relu = t % 4 == 0
                args = (a, sa, za, b, sb, zb, sy, zy)
                try:
                    got = _torch_add(*args, relu)
                except RuntimeError:
                    with pytest.raises(UnsupportedError):
                        P.add(*args, relu=relu, engine=engine)
                    counts["refused_alike"] += 1
                    continue
                counts["outputs"] += check(P.add(*args, relu=relu, engine=engine), got, f"add {engine} case {t}")
                if engine == "qnnpack" and dtype == np.uint8:  # QNNPACK's fixed point, not ATen's float kernel
                    counts["aten_model_wrong"] += int((ADD.aten_add(*args, relu=relu) != got).sum())
                if not (engine == "qnnpack" and dtype == np.uint8):  # vector lanes vs scalar tail, same data
                    vec = float_add_blocks(np.resize(a.ravel(), 64), sa, za, np.resize(b.ravel(), 64), sb, zb,
                                           sy, zy, relu=relu)
                    tail = float_add_blocks(np.resize(a.ravel(), 63), sa, za, np.resize(b.ravel(), 63), sb, zb,
                                            sy, zy, relu=relu)
                    counts["vector_vs_tail_differ"] += int((vec[:63] != tail).sum())
            # large tensors: each at::parallel_for chunk ends in its own scalar tail
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for n in (32769, 100001):
                    a = rng.integers(info.min, info.max + 1, n).astype(dtype)
                    b = rng.integers(info.min, info.max + 1, n).astype(dtype)
                    args = (a, F32(0.0625), 3, b, F32(0.03125), -5 if dtype == np.int8 else 5, F32(0.0625), 7)
                    got = _torch_add(*args, False)
                    counts["outputs"] += check(P.add(*args, engine=engine, num_threads=threads), got,
                                               f"add {engine} n={n} threads={threads}")
    finally:
        torch.set_num_threads(previous)
    _report(f"add {engine} {np.dtype(dtype).name}", counts)
    assert counts["outputs"] > 100000, counts
    if engine == "qnnpack" and dtype == np.uint8:
        assert counts["aten_model_wrong"] > 100 and counts["refused_alike"] > 0, counts
    else:
        assert counts["vector_vs_tail_differ"] > 50, counts


# --------------------------------------------------------------------------- dynamic_linear


@pytest.mark.parametrize("engine", ENGINES)
def test_dynamic_linear(engine):
    require_engine(engine)
    rng = np.random.default_rng(306)
    counts = {"outputs": 0, "pair_saturation_matters": 0, "other_float_order_wrong": 0}
    with quantized_engine(engine):
        for t in range(80):
            reduce_range = t % 2 == 0
            m, k, n = int(rng.integers(1, 40)), int(rng.choice([1, 2, 5, 16, 33, 100])), int(rng.integers(1, 20))
            x = (rng.normal(0, 1, (m, k)) * rng.uniform(0.01, 10)).astype(F32)
            if t % 5 == 1:
                x = np.abs(x)  # all positive: Z_x = 0
            elif t % 5 == 2:
                x = np.round(x * 4) / 4  # tie-heavy values
            w = rng.integers(-128, 128, (n, k)).astype(np.int8)
            ws, wz = weight_params(rng, n, t % 3 == 0, "random")
            bias = None if t % 4 == 3 else rng.normal(0, 1, n).astype(F32)
            got = torch_dynamic_linear(x, w, ws, wz, bias, reduce_range)
            ours = P.dynamic_linear(x, w, ws, wz, bias, reduce_range=reduce_range, engine=engine)
            counts["outputs"] += check(ours, got, f"dynamic_linear {engine} case {t} rr={reduce_range}")
            exact = P.dynamic_linear(x, w, ws, wz, bias, reduce_range=reduce_range, engine=engine, isa="exact")
            counts["pair_saturation_matters"] += int((exact.view(np.uint32) != ours.view(np.uint32)).sum())
            if bias is not None:  # the other engine's float order (fma <-> multiply then add) would be wrong
                rr = reduce_range and engine != "qnnpack"
                sx, zx = P.choose_qparams_dynamic(float(x.min()), float(x.max()), qmin=0, qmax=255, reduce_range=rr)
                xq = P.quantize_per_tensor(x, sx, zx, "quint8")
                acc = kgemm.gemm(xq, np.ascontiguousarray(w.T), zx, np.asarray(wz).astype(np.int8),
                                 acc_model="pairwise_sat16_u8s8" if AVX2 and engine != "qnnpack" else "exact")
                af, mm = acc.astype(F32), (F32(sx) * np.asarray(ws, F32)).astype(F32)
                alt = ((af * mm).astype(F32) + bias).astype(F32) if engine != "qnnpack" else \
                    fma_f32(af, np.broadcast_to(mm, af.shape).astype(F32), np.broadcast_to(bias, af.shape))
                counts["other_float_order_wrong"] += int((alt.view(np.uint32) != got.view(np.uint32)).sum())
        x3 = rng.normal(0, 1, (2, 3, 6)).astype(F32)
        w3 = rng.integers(-128, 128, (4, 6)).astype(np.int8)
        counts["outputs"] += check(P.dynamic_linear(x3, w3, F32(0.01), 0, None, engine=engine),
                                   torch_dynamic_linear(x3, w3, F32(0.01), 0, None, True), "dynamic_linear 3-D")
    _report(f"dynamic_linear {engine}", counts)
    assert counts["outputs"] > 5000 and counts["other_float_order_wrong"] > 100, counts
    if engine != "qnnpack" and AVX2:
        assert counts["pair_saturation_matters"] > 50, counts
