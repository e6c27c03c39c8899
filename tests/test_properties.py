"""Invariants of quantize / dequantize / fake_quantize, checked with hypothesis.

For every named profile and several formats:

1. inside the representable range, $|\\mathrm{dequantize}(\\mathrm{quantize}(x)) - x| \\le S/2$
   (plus the float32 rounding of the steps, stated below);
2. zero is exactly representable: ``quantize(0) == Z`` and ``dequantize(Z) == 0``;
3. per-axis (and per-block) parameters with one channel (block) equal per-tensor ones;
4. ``quantize`` and ``fake_quantize`` are monotone (non-decreasing) in $x$.

Examples are derandomized (a fixed sequence per test) and few, to keep CI time small.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from refquant.dtypes import get_format  # noqa: E402
from refquant.profiles import PROFILES, get_profile  # noqa: E402
from refquant.qparams import make_qparams  # noqa: E402
from refquant.quantization import dequantize, fake_quantize, fake_quantize_with_mask, quantize  # noqa: E402

pytestmark = pytest.mark.kernels

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None, database=None)
PROFILE_NAMES = sorted(PROFILES)
FORMATS = ["int8", "uint8", "int4", "uint4", "int16", "uint16", "int2"]
# profiles whose quantize saturates +-inf and huge values (no C int cast): monotone on all of R
def _saturates(name: str) -> bool:
    """Whether every kernel of the profile saturates (no C int cast of NaN or of huge values)."""
    from refquant.specs import Cases, SimdSplit
    entry = PROFILES[name].quantize
    leaves = [c.spec for c in entry.cases] + [entry.default] if isinstance(entry, Cases) else [entry]
    leaves = [p for sp in leaves for p in ((sp.body, sp.tail) if isinstance(sp, SimdSplit) else (sp,))]
    return all(sp.overflow == "saturate" and sp.nan != "int_cast" for sp in leaves)


SATURATING = [n for n in PROFILE_NAMES if _saturates(n)]


@st.composite
def qcase(draw, formats=FORMATS, profiles=PROFILE_NAMES):
    """(profile, QParams) with a float32 scale over 8 decades and an in-range zero point."""
    profile = draw(st.sampled_from(profiles))
    fmt = get_format(draw(st.sampled_from(formats)))
    scale = np.float32(draw(st.floats(1e-5, 1e3, allow_nan=False, allow_infinity=False)))
    zp = draw(st.integers(fmt.qmin, fmt.qmax))
    return profile, make_qparams(scale, zp, fmt)


def _codes(draw, qp, n_max=40):
    """Real values S*(u - Z) for u drawn uniformly in [qmin, qmax] (ties included)."""
    u = draw(st.lists(st.one_of(st.floats(qp.qmin, qp.qmax, allow_nan=False),
                                st.integers(qp.qmin * 2, qp.qmax * 2).map(lambda k: k / 2)),
                      min_size=1, max_size=n_max))
    u = np.clip(np.array(u, np.float64), qp.qmin, qp.qmax)
    return (float(qp.scale) * (u - int(qp.zero_point))).astype(np.float32)


@SETTINGS
@given(case=qcase(), data=st.data())
def test_round_trip_error_at_most_half_a_step(case, data):
    """|deq(q(x)) - x| <= S/2 + S*2^-6 + 2^-21|x| for x in [S(qmin - Z), S(qmax - Z)].

    The slack covers float32 rounding of x/S (or x*(1/S), or x/S + Z: at most a few ulp of a
    value below 2^16, i.e. < 2^-6 steps for 16-bit formats) and of the dequantize product.
    """
    profile, qp = case
    x = _codes(data.draw, qp)
    q = quantize(x, qp, profile)
    y = dequantize(q, qp, profile).astype(np.float64)
    s = float(qp.scale)
    err = np.abs(y - x.astype(np.float64))
    bound = s * (0.5 + 2.0 ** -6) + 2.0 ** -21 * np.abs(x.astype(np.float64))
    assert np.all(err <= bound), (profile, qp, x[err > bound], q[err > bound], y[err > bound])
    # fake-quantize agrees with the same bound and never reports a clip inside the range
    fq, mask = fake_quantize_with_mask(x, qp, profile)
    assert np.all(np.abs(fq.astype(np.float64) - x) <= bound)
    inner = (x >= s * (qp.qmin - int(qp.zero_point) + 1)) & (x <= s * (qp.qmax - int(qp.zero_point) - 1))
    assert mask[inner].all()


@SETTINGS
@given(case=qcase(formats=FORMATS + ["int32"]))
def test_zero_is_exactly_representable(case):
    profile, qp = case
    if qp.fmt.name == "int32":  # keep Z exact in float32 (x*inv + Z is a float32 sum for PyTorch)
        qp = make_qparams(qp.scale, int(np.clip(qp.zero_point, -2 ** 24, 2 ** 24)), "int32")
    zeros = np.array([0.0, -0.0], np.float32)
    q = quantize(zeros, qp, profile)
    np.testing.assert_array_equal(q, [int(qp.zero_point)] * 2)
    d = dequantize(q, qp, profile)
    assert d.tolist() == [0.0, 0.0]
    assert fake_quantize(zeros, qp, profile).tolist() == [0.0, 0.0]


@SETTINGS
@given(case=qcase(), data=st.data())
def test_one_channel_equals_per_tensor(case, data):
    profile, qp = case
    x = _codes(data.draw, qp)
    n = x.size
    extra = np.array([np.nan, np.inf, -np.inf, 3e9], np.float32)  # specials go the same way too
    x = np.concatenate([x, extra])
    s, z = float(qp.scale), int(qp.zero_point)
    # a backend may run other kernels for per-channel tensors (TFLite, PyTorch): compare one spec's math
    prof = get_profile(profile)
    qspec, dspec = prof.spec_for("quantize", qp, x.shape, x.dtype), prof.spec_for("dequantize", qp, x.shape)
    fqspec = prof.spec_for("fake_quantize", qp, x.shape, x.dtype)
    profile = prof.replace(quantize=qspec, dequantize=dspec, fake_quantize=fqspec,
                           fake_dequantize=prof.spec_for("fake_dequantize", qp, x.shape, x.dtype))
    q_t = quantize(x, qp, profile)
    fq_t, m_t = fake_quantize_with_mask(x, qp, profile)
    for shape, axis in (((1, n + 4), 0), ((n + 4, 1), 1), ((n + 4, 1), -1)):
        qa = make_qparams([s], [z], qp.fmt, axis=axis)
        xa = x.reshape(shape)
        np.testing.assert_array_equal(quantize(xa, qa, profile).ravel(), q_t)
        fq, m = fake_quantize_with_mask(xa, qa, profile)
        np.testing.assert_array_equal(fq.ravel().view(np.uint32), fq_t.view(np.uint32))
        np.testing.assert_array_equal(m.ravel(), m_t)
        np.testing.assert_array_equal(dequantize(q_t.reshape(shape), qa, profile).ravel().view(np.uint32),
                                      dequantize(q_t, qp, profile).view(np.uint32))
    # one block covering the whole axis
    qb = make_qparams(np.full((1, 1), s, np.float32), np.full((1, 1), z), qp.fmt, axis=1, block_size=n + 4)
    np.testing.assert_array_equal(quantize(x.reshape(1, -1), qb, profile).ravel(), q_t)


@SETTINGS
@given(case=qcase(), data=st.data())
def test_quantize_is_monotone(case, data):
    """Finite x with |x/S| < 2^20 (the C int-cast profiles are not monotone past 2^31)."""
    profile, qp = case
    s = float(qp.scale)
    lim = s * 2.0 ** 20
    xs = data.draw(st.lists(st.floats(-lim, lim, allow_nan=False), min_size=2, max_size=50))
    x = np.sort(np.concatenate([np.array(xs, np.float32), _codes(data.draw, qp)]))
    q = quantize(x, qp, profile).astype(np.int64)
    assert np.all(np.diff(q) >= 0), (profile, qp, x, q)
    fq = fake_quantize(x, qp, profile)
    assert np.all(np.diff(fq) >= 0)


@SETTINGS
@given(case=qcase(profiles=SATURATING), data=st.data())
def test_saturating_profiles_are_monotone_on_all_reals(case, data):
    profile, qp = case
    xs = data.draw(st.lists(st.floats(allow_nan=False, width=32), min_size=2, max_size=50))
    x = np.sort(np.concatenate([np.array(xs + [np.inf, -np.inf, 3e38, -3e38], np.float32), _codes(data.draw, qp)]))
    with np.errstate(over="ignore", invalid="ignore"):
        q = quantize(x, qp, profile).astype(np.int64)
    assert np.all(np.diff(q) >= 0), (profile, qp, x, q)
    assert q[0] == qp.qmin and q[-1] == qp.qmax


def test_profile_lists_are_not_empty():
    assert len(SATURATING) >= 3
    assert {"onnx", "onnxruntime", "pytorch_fbgemm"} <= set(SATURATING)
    # XNNPACK leaves int16 and per-channel QUANTIZE to the optimized kernel, whose C casts wrap
    assert "tflite_xnnpack" not in SATURATING
    assert get_profile("tflite_reference").name not in SATURATING
