"""Conformance: ``refquant.backends.tflite`` op-level faces == LiteRT, bit for bit.

Every case builds one-op models (``support.tflite_builder``) and runs them on the real LiteRT
kernels; the face must return the same integers (``==``). Kernel -> resolver: ``reference`` ->
``BUILTIN_REF``, ``xnnpack`` -> ``BUILTIN`` (default XNNPACK delegate; whether it took the
node is checked against the face's own rule), ``optimized`` -> ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``
(x86-64 AVX2 behaviour: read the counts as "this machine").

Families (seeded): realistic random scales; tie-heavy (power-of-two scales, so products and
quotients land on .5); saturating (tiny output scale); extreme zero points; activation ties
(output scales 2, 4, 12 with odd zero points, where XNNPACK's clamp bounds differ from
TFLite's); targeted multiplier derivations (accumulators placed where the face's derivation
and the alternatives round differently, so a wrong derivation fails); odd shapes (K odd,
channels not a multiple of 8, 1x1 and 7x7, stride 2, dilation 2, groups, depth multiplier 2
and 3, SAME/VALID); every activation; per-channel weights.

Rerun: ``pytest tests/test_conformance_tflite_ops.py -m conformance -s`` (``-s`` prints the
number of compared outputs per op and kernel).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from support.compare import compared

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")

from ai_edge_litert import schema_py_generated as sch  # noqa: E402
from support import tflite_builder as tfl  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.ops.pointwise import _takes_max_pool  # noqa: E402
from refquant.profiles import get_profile  # noqa: E402
from refquant.errors import UnsupportedError  # noqa: E402
from refquant.kernels import elementwise as ew  # noqa: E402
from refquant.kernels import lut as klut  # noqa: E402
from refquant.kernels.elementwise_add16 import fixed_point_add16_blocks  # noqa: E402
from refquant.kernels import multiplier as mult  # noqa: E402
from refquant.kernels import requant as rq  # noqa: E402
from refquant.kernels.lut import logistic_lut_double_rne as xnnpack_logistic_lut  # noqa: E402

pytestmark = pytest.mark.conformance

RESOLVER = {"reference": "ref", "xnnpack": "xnnpack", "optimized": "builtin"}
KERNELS = tuple(RESOLVER)
ACTS = (None, "RELU", "RELU6", "RELU_N1_TO_1")
FAMILIES = ("random", "ties", "saturating", "extreme_zp", "act_ties")
F32 = np.float32
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared outputs (op, kernel):", dict(sorted(COUNTS.items())))


def check(op, kernel, got, want, ctx=""):
    COUNTS[(op, kernel)] += compared(got, want, f"{op} {kernel} {ctx}", backend="LiteRT")


def codes(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def draw(rng, family, n_out, dtype=np.int8):
    """(x_scale, per-channel w_scales (n_out,), y_scale, x_zp, y_zp) for a family."""
    info = np.iinfo(dtype)
    xz, yz = (int(rng.integers(info.min, info.max, endpoint=True)) for _ in range(2))
    if family == "ties":
        return (F32(2.0 ** -int(rng.integers(1, 6))), (2.0 ** -rng.integers(1, 8, n_out)).astype(F32),
                F32(2.0 ** -int(rng.integers(-1, 5))), xz, yz)
    ws = rng.uniform(0.001, 0.05, n_out).astype(F32)
    if family == "saturating":
        return F32(rng.uniform(0.05, 0.5)), ws, F32(rng.uniform(1e-4, 2e-3)), xz, yz
    if family == "extreme_zp":
        xz, yz = (int(rng.choice([info.min, info.min + 1, info.max - 1, info.max])) for _ in range(2))
    if family == "act_ties":
        return F32(1.0), (2.0 ** -rng.integers(0, 3, n_out)).astype(F32), F32(rng.choice([2.0, 4.0, 12.0])), xz, \
            int(rng.choice([-3, -1, 1, 3, 5]))
    return F32(rng.uniform(0.002, 0.2)), ws, F32(rng.uniform(0.005, 0.2)), xz, yz


def run_all(op, face, run, args, kwargs, run_kwargs, kernels=KERNELS, must_delegate=True):
    for kernel in kernels:
        got, delegated = run(*args, **run_kwargs, resolver=RESOLVER[kernel], return_delegated=True)
        if kernel == "xnnpack" and must_delegate:
            assert delegated, f"{op}: XNNPACK did not take the node ({run_kwargs})"
        check(op, kernel, got, face(*args, **kwargs, kernel=kernel), str(run_kwargs))


# --------------------------------------------------------------------------- FULLY_CONNECTED, CONV_2D, DEPTHWISE


def test_fully_connected():
    rng = np.random.default_rng(301)
    for t in range(150):
        family = FAMILIES[t % 5]
        lead = [(int(rng.integers(1, 17)),), (), (2, int(rng.integers(1, 6)))][t % 3]
        k, n = int(rng.integers(1, 70)), int(rng.integers(1, 20))
        xs, ws, ys, xz, yz = draw(rng, family, n)
        w_scale = ws if t % 2 else ws[0]  # per-channel / per-tensor
        x, w = codes(rng, np.int8, (*lead, k)), codes(rng, np.int8, (n, k))
        b = None if t % 7 == 3 else rng.integers(-5000, 5000, n).astype(np.int32)
        act = ACTS[t % 4] if family != "act_ties" else ("RELU6", "RELU_N1_TO_1")[t % 2]
        run_all("FULLY_CONNECTED", tflite.fully_connected, tfl.run_fully_connected, (x, xs, xz, w, w_scale, b, ys, yz),
                dict(activation=act), dict(activation=act))
    assert min(COUNTS[("FULLY_CONNECTED", k)] for k in KERNELS) > 5000


def _conv_case(rng, t, depthwise):
    family = FAMILIES[t % 5]
    kh, kw = [(1, 1), (3, 3), (7, 7), (2, 3), (3, 1)][t % 5]
    st, dl = [(1, 1), (2, 2), (1, (1, 2)), ((2, 1), 1)][t % 4]
    padding = ("SAME", "VALID")[(t // 2) % 2]
    dlh, dlw = (dl, dl) if isinstance(dl, int) else dl
    h, w_ = (int(rng.integers(e, e + 8)) for e in ((kh - 1) * dlh + 1, (kw - 1) * dlw + 1))
    if padding == "SAME" and t % 3 == 0:  # kernel larger than the input: allowed with SAME
        h, w_ = (int(v) for v in rng.integers(1, 5, 2))
    c = int(rng.integers(1, 20))
    x = codes(rng, np.int8, (int(rng.integers(1, 3)), h, w_, c))
    return family, kh, kw, st, dl, padding, x


def test_conv2d():
    rng = np.random.default_rng(302)
    for t in range(120):
        family, kh, kw, st, dl, padding, x = _conv_case(rng, t, False)
        c = x.shape[3]
        groups = 1
        if t % 6 == 5 and c > 1:  # grouped: C_g divides C
            groups = int(rng.choice([g for g in range(2, c + 1) if c % g == 0]))
        o = groups * int(rng.integers(1, 4)) if groups > 1 else int(rng.integers(1, 20))
        xs, ws, ys, xz, yz = draw(rng, family, o)
        w = codes(rng, np.int8, (o, kh, kw, c // groups))
        b = None if t % 9 == 4 else rng.integers(-5000, 5000, o).astype(np.int32)
        act = ACTS[t % 4] if family != "act_ties" else ("RELU6", "RELU_N1_TO_1")[t % 2]
        w_scale = ws if t % 3 else ws[0]
        run_all("CONV_2D", tflite.conv2d, tfl.run_conv2d, (x, xs, xz, w, w_scale, b, ys, yz),
                dict(stride=st, padding=padding, dilation=dl, activation=act),
                dict(stride=st, padding=padding, dilation=dl, activation=act))
    assert min(COUNTS[("CONV_2D", k)] for k in KERNELS) > 10000


def test_depthwise_conv2d():
    rng = np.random.default_rng(303)
    for t in range(120):
        family, kh, kw, st, dl, padding, x = _conv_case(rng, t, True)
        m = (1, 2, 1, 3)[t % 4]
        o = x.shape[3] * m
        xs, ws, ys, xz, yz = draw(rng, family, o)
        w = codes(rng, np.int8, (1, kh, kw, o))
        b = None if t % 9 == 4 else rng.integers(-5000, 5000, o).astype(np.int32)
        act = ACTS[t % 4] if family != "act_ties" else ("RELU6", "RELU_N1_TO_1")[t % 2]
        w_scale = ws if t % 3 else ws[0]
        run_all("DEPTHWISE_CONV_2D", tflite.depthwise_conv2d, tfl.run_depthwise_conv2d,
                (x, xs, xz, w, w_scale, b, ys, yz),
                dict(stride=st, padding=padding, dilation=dl, depth_multiplier=m, activation=act),
                dict(stride=st, padding=padding, dilation=dl, depth_multiplier=m, activation=act))
    assert min(COUNTS[("DEPTHWISE_CONV_2D", k)] for k in KERNELS) > 10000


# The face's (mode, derivation) per op, kernel and per-channel flag; alternatives that must lose.
FACE_MODES = {
    ("FC", "reference"): ("float64_rhaz", "f64_ab_div_c", "f64_ab_div_c"),
    ("FC", "optimized"): ("fixed_double_up_wrap", "f32_ab_then_f64_div", "f64_ab_div_c"),  # per-tensor, per-channel
    ("FC", "xnnpack"): ("float32_rne", "f32_ab_div_c", "f32_ab_div_c"),
    ("CONV", "reference"): ("fixed_double", "f64_ab_div_c", "f64_ab_div_c"),
    ("CONV", "optimized"): ("fixed_double_up_wrap", "f64_ab_div_c", "f64_ab_div_c"),
    ("CONV", "xnnpack"): ("float32_rne", "f32_ab_div_c", "f32_ab_div_c"),
}
DERIVATIONS = ("f64_ab_div_c", "f32_ab_then_f64_div", "f32_ab_div_c")


def _targets(rng, xs, ws, ys, mode, derivation, n):
    """Up to ``n`` accumulators where ``derivation`` and another derivation round differently
    under ``mode`` (outputs within +-100, so unclamped), or None. Candidates: the accumulators
    within 1e-4 of a half-integer output, found around each $(k + 1/2)/M$."""
    m = float(xs) * float(ws) / float(ys)
    half = np.arange(-100, 100) + 0.5
    reach = int(1e-4 / m) + 1
    acc = (np.round(half / m)[:, None] + np.arange(-reach, reach + 1)[None, :]).ravel()
    v = acc * m
    near = acc[(np.abs(np.abs(v - np.round(v)) - 0.5) < 1e-4) & (np.abs(acc) < 2 ** 30)].astype(np.int32)
    if near.size == 0:
        return None

    def y(der):
        p = mult.requant_params(xs, ws, ys, mode=mode, derivation=der)
        return rq.requantize(near, p.multiplier, 0, -128, 127, mode=mode, shift=p.shift, dtype=np.int8)

    mine = y(derivation)
    differs = np.zeros(near.size, bool)
    for der in DERIVATIONS:
        if der != derivation:
            differs |= y(der) != mine
    hits = near[differs]
    return rng.choice(hits, min(n, hits.size), replace=False) if hits.size else None


@pytest.mark.parametrize("op", ["FC", "CONV", "DW"])
def test_targeted_multiplier_derivation(op):
    """Accumulators placed where multiplier derivations disagree: x runs over all 256 codes,
    the weights are 1, so acc = x - Z_x + b and b places one target per channel."""
    rng = np.random.default_rng(304 + ("FC", "CONV", "DW").index(op))
    distinguishing = Counter()
    x_codes = np.arange(256, dtype=np.uint8).view(np.int8)
    for kernel in KERNELS:
        found = 0
        for trial in range(400):
            if found >= 6:
                break
            per_channel = trial % 2 == 1
            xs, ws_, ys = (F32(np.exp(rng.uniform(np.log(1e-3), np.log(0.5)))) for _ in range(3))
            mode, der_t, der_c = FACE_MODES[("FC" if op == "FC" else "CONV", kernel)]
            if op == "DW" and kernel == "optimized":
                mode = "fixed_double_up"  # 8 channels: all in the vector part
            n = 8
            ws = (ws_ * np.exp(rng.uniform(-0.5, 0.5, n))).astype(F32) if per_channel else ws_
            if per_channel:
                targets = [_targets(rng, xs, ws[c], ys, mode, der_c, 1) for c in range(n)]
                if any(tg is None for tg in targets):
                    continue
                targets = np.concatenate(targets)
            else:
                targets = _targets(rng, xs, ws, ys, mode, der_t, n)
                if targets is None:
                    continue
                targets = np.resize(targets, n)
            found += 1
            code = rng.integers(-128, 128, n)
            b = (targets.astype(np.int64) - code).astype(np.int32)  # acc = target at x = code
            args_w = (np.ones((n, 1), np.int8) if op == "FC" else np.ones((n, 1, 1, 1), np.int8) if op == "CONV"
                      else np.ones((1, 1, 1, n), np.int8))
            if op == "FC":
                x = x_codes.reshape(256, 1)
                got = tfl.run_fully_connected(x, xs, 0, args_w, ws, b, ys, 0, None, RESOLVER[kernel])
                want = tflite.fully_connected(x, xs, 0, args_w, ws, b, ys, 0, kernel=kernel)
            elif op == "CONV":
                x = x_codes.reshape(1, 16, 16, 1)
                got = tfl.run_conv2d(x, xs, 0, args_w, ws, b, ys, 0, resolver=RESOLVER[kernel])
                want = tflite.conv2d(x, xs, 0, args_w, ws, b, ys, 0, kernel=kernel)
            else:
                x = np.repeat(x_codes.reshape(1, 16, 16, 1), n, axis=3)
                got = tfl.run_depthwise_conv2d(x, xs, 0, args_w, ws, b, ys, 0, resolver=RESOLVER[kernel])
                want = tflite.depthwise_conv2d(x, xs, 0, args_w, ws, b, ys, 0, kernel=kernel)
            check(f"{op}_targeted", kernel, got, want, f"xs={xs} ws={ws} ys={ys}")
            distinguishing[kernel] += n
        assert distinguishing[kernel] >= 24, (kernel, distinguishing)


# --------------------------------------------------------------------------- ADD


ADD_SHAPES = [((3, 17), (3, 17)), ((2, 3, 8), (8,)), ((4, 1), (4, 5)), ((9,), ()), ((), (2, 7)),
              ((2, 1, 3, 1, 5), (1, 4, 1, 6, 1)), ((1, 64), (1, 64))]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_add_8bit(dtype):
    rng = np.random.default_rng(310)
    declined = 0
    for t in range(160):
        family = FAMILIES[t % 5]
        shape_a, shape_b = ADD_SHAPES[t % len(ADD_SHAPES)]
        a, b = codes(rng, dtype, shape_a), codes(rng, dtype, shape_b)
        info = np.iinfo(dtype)
        za, zb, zy = (int(rng.integers(info.min, info.max, endpoint=True)) for _ in range(3))
        if family == "extreme_zp":
            za, zb, zy = (int(rng.choice([info.min, info.max])) for _ in range(3))
        if family == "ties":
            sa, sb, sy = (F32(2.0 ** -int(rng.integers(0, 5))) for _ in range(3))
        elif family == "act_ties":
            sa, sb, sy = F32(1.0), F32(0.5), F32(rng.choice([2.0, 4.0, 12.0]))
            zy = int(rng.choice([1, 3, 5])) if dtype == np.uint8 else int(rng.choice([-3, 1, 3]))
        elif family == "saturating":
            sa, sb, sy = F32(rng.uniform(0.05, 0.5)), F32(rng.uniform(0.05, 0.5)), F32(rng.uniform(0.003, 0.01))
        else:
            sa, sb, sy = (F32(rng.uniform(0.002, 0.2)) for _ in range(3))
        if t % 23 == 7:  # out of XNNPACK's ratio range: it declines
            sa, sb, sy = F32(1.0), F32(2.0 ** -12), F32(0.5)
        act = ACTS[t % 4] if family != "act_ties" else ("RELU6", "RELU_N1_TO_1")[t % 2]
        args = (a, sa, za, b, sb, zb, sy, zy)
        check("ADD", "reference", tfl.run_add(*args, act, "ref"), tflite.add(*args, activation=act), str(shape_a))
        got, delegated = tfl.run_add(*args, act, "xnnpack", return_delegated=True)
        try:
            want = tflite.add(*args, activation=act, kernel="xnnpack")
        except UnsupportedError:  # uint8: the optimized kernel XNNPACK falls back to is not modelled
            assert not delegated and dtype == np.uint8
            declined += 1
        else:  # int8 where XNNPACK declines: the optimized kernel's result
            declined += not delegated
            check("ADD", "xnnpack", got, want, str((shape_a, shape_b)))
        if dtype == np.int8:  # the optimized int8 ADD's SIMD blocks (refquant.kernels.elementwise_add8)
            check("ADD", "optimized", tfl.run_add(*args, act, "builtin"),
                  tflite.add(*args, activation=act, kernel="optimized"), str((shape_a, shape_b)))
        else:  # the optimized uint8 ADD is not modelled
            with pytest.raises(UnsupportedError, match="optimized"):
                tflite.add(*args, activation=act, kernel="optimized")
    assert declined >= 5 and COUNTS[("ADD", "xnnpack")] > 3000
    assert dtype == np.uint8 or COUNTS[("ADD", "optimized")] > 3000


def _add_int16_model(a, sa, b, sb, sy, act, pot_scale_int16):
    g = tfl.Graph()
    ai, bi = g.tensor("a", a.shape, np.int16, sa, 0), g.tensor("b", b.shape, np.int16, sb, 0)
    yi = g.tensor("y", np.broadcast_shapes(a.shape, b.shape), np.int16, sy, 0)
    opts = sch.AddOptionsT()
    opts.fusedActivationFunction = tfl._activation(act)
    opts.potScaleInt16 = pot_scale_int16
    return tfl.build_model(g, sch.BuiltinOperator.ADD, sch.BuiltinOptions.AddOptions, opts, [ai, bi], [yi])


#: int16 ADD shapes: flat (sizes not multiples of 16: a tail), equal once padded with leading 1s (the flat
#: loop too), and broadcasts (the reference loop on every kernel set).
ADD16_SHAPES = [lambda n: ((n,), (n,)), lambda n: ((2, 3, n), (1, 2, 3, n)), lambda n: ((3, n), (n,)),
                lambda n: ((n, 1), (n, 5)), lambda n: ((), (2, n)), lambda n: ((1, 1, n), (n,)),
                lambda n: ((2, n), (2, n))]
ADD16_FAMILIES = ("random", "residual", "targeted", "tiny_ratio", "pot", "extremes")


def _add16_scales(rng, family):
    if family == "pot":
        return tuple(F32(2.0 ** -int(rng.integers(8, 14))) for _ in range(3))
    sa, sb = (F32(v) for v in rng.uniform(1e-4, 1e-2, 2))
    if family == "tiny_ratio":  # the smaller input's left shift 15 + e_b goes negative: an arithmetic right shift
        sb = F32(sa * 2.0 ** -float(rng.uniform(14, 30)))
    if family == "random":
        return sa, sb, F32(rng.uniform(1e-4, 1e-2))
    return sa, sb, F32(max(sa, sb) * 2.0 ** int(rng.integers(-1, 2)))  # the output scale = the larger input's


def _add16_differing_pairs(rng, p, n):
    """Up to ``n`` code pairs (a, b) where the optimized kernel's blocks and the reference formula differ."""
    a, b = (rng.integers(-32768, 32768, 2 ** 16).astype(np.int16) for _ in range(2))
    eq1 = ew.fixed_point_add(a, np.int16(0), b, np.int16(0), np.int16(0), p)
    eq2 = fixed_point_add16_blocks(a, b, p)  # 2^16 elements: whole blocks only
    i = np.flatnonzero(eq1 != eq2)[:n]
    return a[i], b[i]


def _add16_eq2_everywhere(a, b, p, lo, hi):
    """Eq. (2) on every element of the flat operands (zero-padded to whole blocks)."""
    pad = -a.size % 16
    a, b = np.pad(a, (0, pad)), np.pad(b, (0, pad))
    return fixed_point_add16_blocks(a, b, p, act_min=lo, act_max=hi)[:a.size - pad]


def test_add_int16():
    """int16 (zero points 0, left shift 15; ``pot_scale_int16 = false``, what the converter writes): the
    reference kernel runs eq. (1) of :mod:`refquant.kernels.elementwise_add16`; the optimized kernel (and
    "xnnpack", which does not take int16) runs eq. (2) on whole 16-element blocks of a non-broadcast add and
    eq. (1) on the tail and on broadcasts. The two differ by one code only next to a tie of the output stage:
    independent random scales never showed it (the first version of this test, which claimed one formula for
    every kernel), so the ``residual`` family uses an output scale equal to the larger input's (the
    converter's residual ADDs), and ``targeted`` plants code pairs where the formulas differ (blocks, tails
    and broadcast rows alike)."""
    rng = np.random.default_rng(311)
    seen = Counter()
    for t in range(360):
        family = ADD16_FAMILIES[t % len(ADD16_FAMILIES)]
        n = int(rng.integers(1, 90))
        shape_a, shape_b = ADD16_SHAPES[t % len(ADD16_SHAPES)](n)
        sa, sb, sy = _add16_scales(rng, family)
        act = ACTS[(t // 2) % 4]
        p = ew.fixed_point_add_params(sa, sb, sy, left_shift=15)
        if family in ("residual", "tiny_ratio"):
            a = np.clip(np.round(rng.normal(0, 4000, shape_a)), -32768, 32767).astype(np.int16)
            b = np.clip(np.round(rng.normal(0, 4000, shape_b)), -32768, 32767).astype(np.int16)
        else:
            a, b = codes(rng, np.int16, shape_a), codes(rng, np.int16, shape_b)
        a, b = np.array(a, np.int16), np.array(b, np.int16)  # shape () too
        if family == "extremes":
            a.ravel()[::2], b.ravel()[1::3] = -32768, 32767
        if family in ("targeted", "tiny_ratio"):  # plant differing pairs along the last axis
            pa, pb = _add16_differing_pairs(rng, p, b.shape[-1])
            b[..., :pb.size] = pb
            if a.ndim and a.shape[-1] == b.shape[-1]:
                a[..., :pa.size] = pa
        model = _add_int16_model(a, sa, b, sb, sy, act, False)
        shape = np.broadcast_shapes(a.shape, b.shape)
        lo, hi = mult.activation_range(act, sy, 0, -32768, 32767)
        eq1 = ew.fixed_point_add(a, np.int16(0), b, np.int16(0), np.int16(0), p, act_min=lo, act_max=hi).ravel()
        eq2 = _add16_eq2_everywhere(np.broadcast_to(a, shape).ravel(), np.broadcast_to(b, shape).ravel(), p, lo, hi)
        for kernel in KERNELS:
            got = tfl.run_model(model, [a, b], RESOLVER[kernel])
            check("ADD_int16", kernel, got, tflite.add(a, sa, 0, b, sb, 0, sy, 0, activation=act, kernel=kernel))
            flat = a.size == b.size == int(np.prod(shape))
            n_blocks = got.size // 16 * 16 if flat else 0
            seen[kernel, "blocks differ"] += int((got.ravel()[:n_blocks] != eq1[:n_blocks]).sum())
            seen[kernel, "tail/broadcast differ"] += int((got.ravel()[n_blocks:] != eq1[n_blocks:]).sum())
        seen["eq. (2) differs in tails/broadcasts"] += int((eq2[n_blocks:] != eq1[n_blocks:]).sum())
    print("\nADD int16 (elements):", dict(seen))
    assert min(COUNTS[("ADD_int16", k)] for k in KERNELS) > 20000
    assert seen["reference", "blocks differ"] == seen["reference", "tail/broadcast differ"] == 0, seen
    assert seen["optimized", "blocks differ"] > 50 and seen["xnnpack", "blocks differ"] > 50, seen
    assert seen["optimized", "tail/broadcast differ"] == seen["xnnpack", "tail/broadcast differ"] == 0, seen
    assert seen["eq. (2) differs in tails/broadcasts"] > 100, seen  # there LiteRT's optimized kernel follows eq. (1)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_pooling(dtype):
    rng = np.random.default_rng(320)
    info = np.iinfo(dtype)
    taken = Counter()
    for t in range(120):
        h, w, c = (int(v) for v in rng.integers(1, [10, 10, 11]))
        x = codes(rng, dtype, (int(rng.integers(1, 3)), h, w, c))
        if t % 5 == 2:  # saturating windows
            x[..., ::2] = info.max if t % 2 else info.min
        fh, fw = int(rng.integers(1, min(h, 4) + 1)), int(rng.integers(1, min(w, 4) + 1))
        stride = [None, (1, 1), (2, 2), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))][t % 4]
        padding = ("SAME", "VALID")[t % 2]
        if t % 3 == 0:  # activation ties: scales 2, 4, 12 and odd zero points
            s, z = F32(rng.choice([2.0, 4.0, 12.0])), int(rng.choice([1, 3, 5]))
        else:
            s, z = F32(rng.uniform(0.005, 0.1)), int(rng.integers(info.min, info.max, endpoint=True))
        act = ACTS[t % 4]
        kw = dict(filter_size=(fh, fw), stride=stride, padding=padding, activation=act)
        for kernel in KERNELS:
            got = tfl.run_average_pool2d(x, s, z, (fh, fw), stride, padding, act, RESOLVER[kernel])
            check("AVERAGE_POOL_2D", kernel, got, tflite.average_pool2d(x, s, z, **kw, kernel=kernel))
            got, delegated = tfl.run_max_pool2d(x, s, z, (fh, fw), stride, padding, act, RESOLVER[kernel],
                                                return_delegated=True)
            check("MAX_POOL_2D", kernel, got, tflite.max_pool2d(x, s, z, **kw, kernel=kernel))
            if kernel == "xnnpack":
                sh_sw = (fh, fw) if stride is None else stride
                sh_sw = (sh_sw, sh_sw) if np.ndim(sh_sw) == 0 else tuple(sh_sw)
                takes = _takes_max_pool(get_profile("tflite_xnnpack").pointwise, np.dtype(dtype), (fh, fw), sh_sw)
                assert delegated == takes, (fh, fw, stride)
                taken[delegated] += 1
    assert min(COUNTS[(op, k)] for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D") for k in KERNELS) > 3000
    if dtype != np.int16:
        assert taken[True] > 10 and taken[False] > 10, taken


# --------------------------------------------------------------------------- SOFTMAX, LOGISTIC


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_softmax(dtype):
    rng = np.random.default_rng(330)
    info = np.iinfo(dtype)
    for t in range(150):
        xs = F32(2.0 ** -int(rng.integers(1, 6))) if t % 3 == 1 else F32(rng.uniform(0.01, 0.5))
        xz = int(rng.integers(info.min, info.max, endpoint=True))
        beta = float(F32(rng.choice([1.0, rng.uniform(0.1, 3.0)])))
        shape = [(int(rng.integers(1, 9)), int(rng.integers(2, 40))), (int(rng.integers(1, 300)),),
                 (2, 3, int(rng.integers(1, 17)))][t % 3]
        x = codes(rng, dtype, shape)
        if t % 5 == 4:
            x[..., ::3] = info.max  # many entries equal to the row maximum
        for kernel in KERNELS:
            got, delegated = tfl.run_softmax(x, xs, xz, beta, RESOLVER[kernel], return_delegated=True)
            assert not delegated  # XNNPACK never takes SOFTMAX in this LiteRT
            check("SOFTMAX", kernel, got, tflite.softmax(x, xs, xz, beta=beta, kernel=kernel))
    assert min(COUNTS[("SOFTMAX", k)] for k in KERNELS) > 5000


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_logistic(dtype):
    """Every code through each table; the scales include ones where XNNPACK's table and TFLite's
    differ (found by searching both offline), so the XNNPACK model is really pinned."""
    rng = np.random.default_rng(340)
    info = np.iinfo(dtype)
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(4, 8, 8)
    params, differing = [], []
    while len(differing) < 6:  # a difference in about 1 of 150 random tables
        xs, xz = F32(np.exp(rng.uniform(np.log(1e-3), np.log(2.0)))), int(rng.integers(info.min, info.max + 1))
        if not np.array_equal(xnnpack_logistic_lut(xs, xz, dtype=dtype), klut.logistic_lut(xs, xz, dtype=dtype)):
            differing.append((xs, xz))
        elif len(params) < 40:
            params.append((xs, xz))
    params += differing + [(F32(2.0 ** -k), int(z)) for k in range(0, 10, 3) for z in (info.min, 0, info.max)]
    for xs, xz in params:
        for kernel in KERNELS:
            got, delegated = tfl.run_logistic(x, xs, xz, RESOLVER[kernel], return_delegated=True)
            assert delegated == (kernel == "xnnpack")
            check("LOGISTIC", kernel, got, tflite.logistic(x, xs, xz, kernel=kernel), f"xs={xs!r} xz={xz}")
    assert min(COUNTS[("LOGISTIC", k)] for k in KERNELS) > 10000


# --------------------------------------------------------------------------- what LiteRT refuses


def test_refusals_match_litert():
    """Requests the interpreter refuses are refused by the face with a refquant error."""
    rng = np.random.default_rng(350)
    x = codes(rng, np.int8, (1, 3, 3, 2))
    w_fc, w_conv = codes(rng, np.int8, (2, 2)), codes(rng, np.int8, (2, 1, 1, 2))
    w_dw = codes(rng, np.int8, (1, 1, 1, 2))
    big = (1.0, 1.0, F32(1 / 300))  # requantization scale 300 >= 256: XNNPACK fails to prepare
    for run, face, args in (
            (tfl.run_fully_connected, tflite.fully_connected, (x.reshape(-1, 2), 1.0, 0, w_fc, 1.0, None, big[2], 0)),
            (tfl.run_conv2d, tflite.conv2d, (x, 1.0, 0, w_conv, 1.0, None, big[2], 0)),
            (tfl.run_depthwise_conv2d, tflite.depthwise_conv2d, (x, 1.0, 0, w_dw, 1.0, None, big[2], 0))):
        with pytest.raises((RuntimeError, ValueError)):
            run(*args, resolver="xnnpack")
        with pytest.raises(UnsupportedError, match="256"):
            face(*args, kernel="xnnpack")
        check(face.__name__, "reference", run(*args, resolver="ref"), face(*args))
    a = codes(rng, np.int16, (2, 5))
    with pytest.raises((RuntimeError, ValueError)):
        tfl.run_add(a, 0.01, 3, a, 0.01, 0, 0.02, 0, None, "ref")
    with pytest.raises(ValueError, match="a_zero_point must be 0"):
        tflite.add(a, 0.01, 3, a, 0.01, 0, 0.02, 0)
