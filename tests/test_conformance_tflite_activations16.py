"""Conformance: the TFLite faces SOFTMAX, LOGISTIC, TANH (int16 16x8 mode, and 8-bit TANH) == LiteRT, bit for bit.

Every case builds one-op models (``support.tflite_activations16``) and runs them on the real
LiteRT kernels with the three resolvers (``reference`` -> ``BUILTIN_REF``, ``optimized`` ->
``BUILTIN_WITHOUT_DEFAULT_DELEGATES``, ``xnnpack`` -> ``BUILTIN``); the face in
``refquant.backends._tflite_ops_act`` must return the same integers. Whether XNNPACK took the
node is checked too: never for int16, always for 8-bit TANH.

Families: random input scales (log-uniform) and powers of two (the optimized kernels' fixed-point
path for LOGISTIC/TANH), scales within ``CheckedLog2``'s tolerance of a power of two, tiny and
huge scales (int32 wrap of the rescaled input), softmax beta != 1, every int16 code, extremes and
ties (rows of equal maxima, all -32768, all 32767), axis lengths 1 to 1000 and odd sizes, ranks 1
to 4, tensor lengths that leave a SIMD tail; 8-bit TANH with free output parameters and the
parameter sets where XNNPACK's table and TFLite's differ (found offline). Plus LiteRT's Prepare
refusals, each mirrored by a named refquant error.

Rerun: ``pytest tests/test_conformance_tflite_activations16.py -m conformance -s`` (``-s`` prints
the number of compared outputs per op and kernel).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from support.compare import compared

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")

from support import tflite_activations16 as tfa  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.backends._tflite_ops_act import logistic, softmax, tanh  # noqa: E402
from refquant.errors import QuantizationValueError, UnsupportedError  # noqa: E402
from refquant.kernels import lut as klut  # noqa: E402

pytestmark = pytest.mark.conformance

RESOLVER = {"reference": "ref", "optimized": "builtin", "xnnpack": "xnnpack"}
KERNELS = tuple(RESOLVER)
F32 = np.float32
COUNTS: Counter = Counter()
ALL16 = np.arange(-32768, 32768, dtype=np.int16)


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared outputs (op, kernel):", dict(sorted(COUNTS.items())))


def check(op, kernel, got, want, ctx=""):
    COUNTS[(op, kernel)] += compared(got, want, f"{op} {kernel} {ctx}", backend="LiteRT")


def log_uniform(rng, lo, hi):
    return F32(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# --------------------------------------------------------------------------- SOFTMAX int16


def _softmax_cases(rng):
    shapes = [(1,), (7,), (1000,), (5, 1), (3, 2), (4, 33), (2, 3, 17), (2, 2, 3, 5), (1, 1, 1, 64), (6, 129)]
    for t in range(48):
        shape = shapes[t % len(shapes)]
        xs = F32(2.0 ** -int(rng.integers(6, 15))) if t % 4 == 1 else log_uniform(rng, 1e-5, 0.05)
        beta = 1.0 if t % 3 == 0 else float(F32(rng.uniform(0.1, 4.0)))
        x = rng.integers(-32768, 32768, shape).astype(np.int16)
        if t % 6 == 2:
            x = (x // 256).astype(np.int16)  # small differences: ties in the exponentials
        if t % 6 == 3:
            x[..., ::2] = x.max(axis=-1, keepdims=True)  # many entries equal to the row maximum
        yield x, xs, beta
    for fill in (-32768, 32767, 0):  # constant rows at the extremes
        yield np.full((3, 11), fill, np.int16), F32(1e-3), 1.0
    extremes = np.tile(np.array([-32768, 32767], np.int16), (4, 5))
    yield extremes, F32(3e-4), 1.0
    yield extremes, F32(1e-6), 2.0  # a tiny scale: differences of 65535 stay above -10
    for xs in (F32(1.0), F32(4.0), F32(37.0)):  # large x_scale * beta: the int32 rescale wraps past 2^31
        yield rng.integers(-32768, 32768, (5, 13)).astype(np.int16), xs, 1.0


def test_softmax_int16():
    rng = np.random.default_rng(1601)
    for x, xs, beta in _softmax_cases(rng):
        for kernel in KERNELS:
            got, delegated = tfa.run_softmax(x, xs, 0, beta, RESOLVER[kernel], return_delegated=True)
            assert not delegated
            check("SOFTMAX16", kernel, got, softmax(x, xs, 0, beta=beta, kernel=kernel), f"xs={xs!r} beta={beta}")
    assert min(COUNTS[("SOFTMAX16", k)] for k in KERNELS) > 8000


# --------------------------------------------------------------------------- LOGISTIC, TANH int16


def _sigmoid_scales(rng, op):
    pot = [2.0 ** -12, 2.0 ** -11, 2.0 ** -10, 2.0 ** -13, 2.0 ** -15, 2.0 ** -12 * 1.0004, 2.0 ** -11 * 0.9996]
    odd = [1 / 32767, 8 / 32767, 1e-6, 0.02, 1.0, 6.0, 100.0]  # 6 and 100: the int32 product wraps
    return [F32(s) for s in pot + odd] + [log_uniform(rng, 1e-5, 0.01) for _ in range(8)]


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
def test_logistic_tanh_int16_every_code(op):
    """All 65,536 codes per scale, as one tensor of rank 1 and of rank 4, and a shuffled odd-length
    tensor (a SIMD tail of 7 on the optimized fixed-point path)."""
    rng = np.random.default_rng(1602 if op == "LOGISTIC" else 1603)
    run, face = (tfa.run_logistic, logistic) if op == "LOGISTIC" else (tfa.run_tanh, tanh)
    for t, xs in enumerate(_sigmoid_scales(rng, op)):
        shape = [(65536,), (4, 16, 32, 32), (8, 8192)][t % 3]
        tensors = [ALL16.reshape(shape), rng.permutation(ALL16)[:1031].reshape(1, 1031)]
        for x in tensors:
            for kernel in KERNELS:
                got, delegated = run(x, xs, 0, RESOLVER[kernel], return_delegated=True)
                assert not delegated
                check(f"{op}16", kernel, got, face(x, xs, 0, kernel=kernel), f"xs={xs!r}")
    assert min(COUNTS[(f"{op}16", k)] for k in KERNELS) > 1_000_000


@pytest.mark.parametrize("xs", [1e-15, 1e-20])
def test_logistic_tanh_int16_tiny_scales(xs):
    """A scale so small that the input multiplier rounds to 0 with left shift 31: the builtin kernels take the
    gemmlowp fixed-point path (TANH doubles its input for any nonzero left shift, measured); the reference kernel's
    power-of-two branch computes 3 << 31 (undefined in C): refused, naming x_scale."""
    x = (1000 * np.arange(-32, 33)).astype(np.int16)
    for op, run, face in (("LOGISTIC", tfa.run_logistic, logistic), ("TANH", tfa.run_tanh, tanh)):
        for kernel in ("optimized", "xnnpack"):
            got = run(x, F32(xs), 0, RESOLVER[kernel])
            check(f"{op}16_tiny", kernel, got, face(x, F32(xs), 0, kernel=kernel), f"xs={xs!r}")
        with pytest.raises(UnsupportedError, match="x_scale"):
            face(x, F32(xs), 0, kernel="reference")


# --------------------------------------------------------------------------- TANH int8 / uint8

# (dtype, x_scale, x_zero_point, y_scale, y_zero_point) where XNNPACK's table differs from TFLite's
# (found by searching random parameters offline, about one table in 2,500)
XNN_DIFFERS = [("uint8", 0.026335954666137695, 148, 0.0102128516882658, 111),
               ("uint8", 0.0016813029069453478, 147, 0.012516769580543041, 210),
               ("int8", 0.028354831039905548, 13, 0.0078125, 0),
               ("int8", 0.019014202058315277, 72, 0.0078125, 0),
               ("uint8", 0.014270978979766369, 86, 0.007522059138864279, 18)]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_tanh_8bit(dtype):
    rng = np.random.default_rng(1604)
    info = np.iinfo(dtype)
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(2, 4, 4, 8)
    params = []
    for t in range(40):
        xs = F32(2.0 ** -int(rng.integers(0, 8))) if t % 5 == 0 else log_uniform(rng, 1e-3, 1.0)
        xz = int(rng.integers(info.min, info.max + 1))
        if t % 2 == 0:
            params.append((xs, xz, None, None))  # the converter's 1/128 and 0 (int8) / 128 (uint8)
        else:
            ys = log_uniform(rng, 1 / 300, 1 / 20) if t % 4 == 1 else F32(2.0 ** -int(rng.integers(4, 9)))
            params.append((xs, xz, ys, int(rng.integers(info.min, info.max + 1))))
    params += [(F32(xs), xz, F32(ys), yz) for name, xs, xz, ys, yz in XNN_DIFFERS if name == np.dtype(dtype).name]
    params += [(F32(0.05), info.min, None, None), (F32(0.05), info.max, None, None)]  # extreme zero points
    for xs, xz, ys, yz in params:
        for kernel in KERNELS:
            got, delegated = tfa.run_tanh(x, xs, xz, RESOLVER[kernel], y_scale=ys, y_zp=yz, return_delegated=True)
            assert delegated == (kernel == "xnnpack")
            want = tanh(x, xs, xz, kernel=kernel, y_scale=ys, y_zero_point=yz)
            check("TANH8", kernel, got, want, f"xs={xs!r} xz={xz} ys={ys!r} yz={yz}")
    assert min(COUNTS[("TANH8", k)] for k in KERNELS) > 10000


def test_tanh_8bit_tables_really_differ():
    """The XNN_DIFFERS cases pin the XNNPACK model: its table and TFLite's differ there."""
    for name, xs, xz, ys, yz in XNN_DIFFERS:
        assert not np.array_equal(klut.tanh_lut(xs, xz, ys, yz, dtype=name), klut.tanh_lut_rne(xs, xz, ys, yz, dtype=name))


def test_tanh_8bit_libm_case():
    """A known limit: LiteRT calls the C library's ``tanhf``; here glibc's differs from the correctly
    rounded value and moves one entry. LiteRT equals the ``math="libm"`` table; the face (correctly
    rounded) differs in that entry only."""
    x = np.arange(256, dtype=np.uint8)
    xs, xz, ys, yz = F32(0.005497004836797714), 241, F32(0.018964271992444992), 165
    libm = klut.tanh_lut(xs, xz, ys, yz, dtype="uint8", math="libm")
    if np.array_equal(libm, klut.tanh_lut(xs, xz, ys, yz, dtype="uint8")):
        pytest.skip("this C library's tanhf is correctly rounded at the pinned input")
    got = tfa.run_tanh(x, xs, xz, "ref", y_scale=ys, y_zp=yz)
    np.testing.assert_array_equal(got, libm[x])
    assert np.count_nonzero(got != tanh(x, xs, xz, y_scale=ys, y_zero_point=yz)) == 1


# --------------------------------------------------------------------------- 8-bit SOFTMAX / LOGISTIC unchanged


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_8bit_softmax_logistic_match_litert(dtype):
    """The copied 8-bit logic: same as LiteRT (and so as the existing faces)."""
    rng = np.random.default_rng(1605)
    info = np.iinfo(dtype)
    for t in range(12):
        x = rng.integers(info.min, info.max + 1, [(3, 17), (40,), (2, 2, 9)][t % 3]).astype(dtype)
        xs, xz = log_uniform(rng, 0.01, 0.5), int(rng.integers(info.min, info.max + 1))
        beta = float(F32(rng.uniform(0.5, 2.0)))
        for kernel in KERNELS:
            got = tfa.run_softmax(x, xs, xz, beta, RESOLVER[kernel])
            check("SOFTMAX8", kernel, got, softmax(x, xs, xz, beta=beta, kernel=kernel))
            np.testing.assert_array_equal(got, tflite.softmax(x, xs, xz, beta=beta, kernel=kernel))
            got = tfa.run_logistic(x, xs, xz, RESOLVER[kernel])
            check("LOGISTIC8", kernel, got, logistic(x, xs, xz, kernel=kernel))
            np.testing.assert_array_equal(got, tflite.logistic(x, xs, xz, kernel=kernel))


# --------------------------------------------------------------------------- what LiteRT refuses, and what it accepts

X16, X8, U8 = np.zeros((2, 3), np.int16), np.zeros((2, 3), np.int8), np.zeros((2, 3), np.uint8)

# (name, LiteRT call, face call, the face's error): LiteRT's Prepare fails on all three resolvers
REFUSED = [
    ("softmax16 x_zp", lambda r: tfa.run_softmax(X16, 1e-3, 1, 1.0, r), lambda k: softmax(X16, 1e-3, 1, kernel=k)),
    ("softmax16 y_zp", lambda r: tfa.run_softmax(X16, 1e-3, 0, 1.0, r, y_zp=1),
     lambda k: softmax(X16, 1e-3, 0, kernel=k, y_zero_point=1)),
    ("softmax16 y_scale", lambda r: tfa.run_softmax(X16, 1e-3, 0, 1.0, r, y_scale=1 / 30000),
     lambda k: softmax(X16, 1e-3, 0, kernel=k, y_scale=1 / 30000)),
    ("softmax8 y_zp", lambda r: tfa.run_softmax(X8, 0.1, 0, 1.0, r, y_zp=0),
     lambda k: softmax(X8, 0.1, 0, kernel=k, y_zero_point=0)),
    ("softmax8 y_scale", lambda r: tfa.run_softmax(X8, 0.1, 0, 1.0, r, y_scale=1 / 250),
     lambda k: softmax(X8, 0.1, 0, kernel=k, y_scale=1 / 250)),
    ("logistic16 x_zp", lambda r: tfa.run_logistic(X16, 1e-3, 1, r), lambda k: logistic(X16, 1e-3, 1, kernel=k)),
    ("logistic16 y_zp", lambda r: tfa.run_logistic(X16, 1e-3, 0, r, y_zp=1),
     lambda k: logistic(X16, 1e-3, 0, kernel=k, y_zero_point=1)),
    ("logistic16 y_scale", lambda r: tfa.run_logistic(X16, 1e-3, 0, r, y_scale=1 / 32767),
     lambda k: logistic(X16, 1e-3, 0, kernel=k, y_scale=1 / 32767)),
    ("tanh16 x_zp", lambda r: tfa.run_tanh(X16, 1e-3, 1, r), lambda k: tanh(X16, 1e-3, 1, kernel=k)),
    ("tanh16 y_zp", lambda r: tfa.run_tanh(X16, 1e-3, 0, r, y_zp=2), lambda k: tanh(X16, 1e-3, 0, kernel=k, y_zero_point=2)),
    ("tanh16 y_scale", lambda r: tfa.run_tanh(X16, 1e-3, 0, r, y_scale=1 / 1000),
     lambda k: tanh(X16, 1e-3, 0, kernel=k, y_scale=1 / 1000)),
]


@pytest.mark.parametrize("name,run,face", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_like_litert(name, run, face):
    for kernel in KERNELS:
        with pytest.raises(RuntimeError):
            run(RESOLVER[kernel])
        with pytest.raises(QuantizationValueError, match="Prepare error"):
            face(kernel)


def test_logistic8_output_scale_refused_except_by_xnnpack():
    for kernel in ("reference", "optimized"):
        with pytest.raises(RuntimeError):
            tfa.run_logistic(X8, 0.1, 0, RESOLVER[kernel], y_scale=1 / 255)
        with pytest.raises(QuantizationValueError, match="y_scale must be 0.00390625"):
            logistic(X8, 0.1, 0, kernel=kernel, y_scale=1 / 255)
    tfa.run_logistic(X8, 0.1, 0, "xnnpack", y_scale=1 / 255)  # the delegate takes it
    with pytest.raises(UnsupportedError, match="XNNPACK delegate accepts"):
        logistic(X8, 0.1, 0, kernel="xnnpack", y_scale=1 / 255)


def test_accepted_output_parameters():
    """Within LiteRT's tolerances: int16 outputs are modelled (the kernels never read the scale);
    8-bit ones LiteRT accepts but refquant does not model are refused, named."""
    rng = np.random.default_rng(1606)
    x = rng.integers(-32768, 32768, (3, 21)).astype(np.int16)
    for kernel in KERNELS:
        ys = 1 / 32768 * 1.0009
        check("SOFTMAX16", kernel, tfa.run_softmax(x, 1e-3, 0, 1.0, RESOLVER[kernel], y_scale=ys),
              softmax(x, 1e-3, 0, kernel=kernel, y_scale=ys))
        ys = 1 / 32768 * 1.0003  # CheckedLog2 still says -15
        check("TANH16", kernel, tfa.run_tanh(x, 1e-3, 0, RESOLVER[kernel], y_scale=ys),
              tanh(x, 1e-3, 0, kernel=kernel, y_scale=ys))
        tfa.run_softmax(X8, 0.1, 0, 1.0, RESOLVER[kernel], y_scale=1 / 256 * 1.0005)
        with pytest.raises(UnsupportedError, match="y_scale"):
            softmax(X8, 0.1, 0, kernel=kernel, y_scale=1 / 256 * 1.0005)
        tfa.run_logistic(U8, 0.1, 0, RESOLVER[kernel], y_zp=3)
        with pytest.raises(UnsupportedError, match="y_zero_point 3"):
            logistic(U8, 0.1, 0, kernel=kernel, y_zero_point=3)
