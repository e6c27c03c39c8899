"""The core under a profile, the ops layer and each backend face give identical results (design.md §1).

A face only translates its backend's names, argument order, layouts and tensor types, then calls
the core (:func:`refquant.quantize`, :func:`refquant.dequantize`, :func:`refquant.fake_quantize_with_mask`)
or the ops (:func:`refquant.ops.layers.linear`, :func:`refquant.ops.layers.conv2d`) with the profile its
``kernel=`` / ``engine=`` / ``zero_point_order=`` / ``isa=`` selects. Each test here builds the same
:class:`~refquant.qparams.QParams` (or layer arguments) the face documents, calls the core or the ops
directly with the profile, and compares with the face: shape, dtype, then values (floats by bit
pattern, integers with ``assert_array_equal``). Where one side raises a refquant error, the other
must raise the same type.

Inputs: hypothesis draws the structure (shapes, odd sizes, empty arrays, per-tensor / per-channel /
blocked parameters, scales, zero points, a seed); the values come from ``support.edge_values`` for
those parameters (exact ``.5`` ties of ``x / S`` and their neighbours, float32-division ties,
``±2^k S``, NaN, ±Inf, ±0, ±FLT_MAX, subnormals) plus quotients past int32 and the format's limits,
and fresh seeded random values. Deterministic edge tests and three regression tests follow.

A real disagreement is marked ``xfail(strict=True)`` with a one-line reproducer; library code is
not changed here.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support.edge_values import (
    TIE_SCALES,
    float_edge_values,
    int_edge_values,
    special_floats,
)

import refquant
from refquant import make_qparams
from refquant.backends import onnx as onnx_face
from refquant.backends import onnxruntime as ort_face
from refquant.backends import pytorch as torch_face
from refquant.backends import tflite as tfl_face
from refquant.backends._pytorch_ops import ENGINE_PROFILES
from refquant.dtypes import FORMATS, IntFormat
from refquant.errors import AccumulatorOverflowWarning, RefquantError, UnsupportedError
from refquant.ops import layers
from refquant.profiles import PROFILES, get_profile

try:  # int4/uint4/int2/uint2 DequantizeLinear inputs are ml_dtypes arrays
    import ml_dtypes
except ImportError:  # pragma: no cover - ml_dtypes comes with onnx
    ml_dtypes = None

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
SETTINGS = settings(max_examples=50, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
LAYER_SETTINGS = settings(SETTINGS, max_examples=40)

# face -> the profiles it exposes (read from the faces' own tables where they have one)
FACE_PROFILES = {
    "tflite": tuple(tfl_face.PROFILE_OF_KERNEL.values()),
    "pytorch": tuple(torch_face.PROFILE_OF_ZERO_POINT_ORDER.values()) + tuple(ENGINE_PROFILES.values())
    + (torch_face._PROFILE,),
    "onnx": ("onnx",),  # the ONNX face names its profile inline
    "onnxruntime": (ort_face._PROFILE,),
}
TFLITE_KERNELS = sorted(tfl_face.PROFILE_OF_KERNEL.items())  # (kernel, profile)
TORCH_ORDERS = sorted(torch_face.PROFILE_OF_ZERO_POINT_ORDER.items())  # (zero_point_order, profile)
TORCH_ENGINES = sorted(ENGINE_PROFILES.items())  # (engine, profile)
TORCH_DTYPES = {"quint8": "uint8", "qint8": "int8", "qint32": "int32"}
ISAS = ("avx2", "vnni", "exact", "auto")
ONNX_FACES = [("onnx", onnx_face, "onnx"), ("onnxruntime", ort_face, ort_face._PROFILE)]
SUB_BYTE = {name: getattr(ml_dtypes, name, None) for name in ("int4", "uint4", "int2", "uint2")}
# PyTorch fake-quantize ranges have no dtype: the face's QParams use an int64 container format
FQ_FORMAT = IntFormat("int64", 64, True, -(2 ** 63), 2 ** 63 - 1, np.dtype(np.int64))


# --------------------------------------------------------------------------- comparison


def call(fn, *args, **kwargs):
    """``fn(...)``, or the refquant error it raised (the other side must raise the same type)."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", AccumulatorOverflowWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)
    except RefquantError as e:
        return e


def assert_identical(face, core, what: str, inputs=None) -> None:
    """Shape, dtype, then values: floats by bit pattern, integers and masks with assert_array_equal;
    on a difference, the first differing elements side by side with their inputs."""
    if isinstance(face, Exception) or isinstance(core, Exception):
        assert type(face) is type(core), f"{what}: face -> {face!r}, core/ops -> {core!r}"
        return
    face, core = np.asarray(face), np.asarray(core)
    assert face.shape == core.shape, f"{what}: shape: face {face.shape} != core/ops {core.shape}"
    assert face.dtype == core.dtype, f"{what}: dtype: face {face.dtype} != core/ops {core.dtype}"
    if face.dtype.kind == "f":
        u = np.dtype(f"u{face.dtype.itemsize}")
        a, b = np.ascontiguousarray(face).view(u), np.ascontiguousarray(core).view(u)
    else:
        a, b = face, core
    bad = np.flatnonzero((a != b).reshape(-1))
    if bad.size:
        inp = None if inputs is None or np.size(inputs) != face.size else np.asarray(inputs).reshape(-1)
        rows = [f"  [{np.unravel_index(i, face.shape)}]" + (f" input={inp[i]!r}" if inp is not None else "")
                + f" face={face.reshape(-1)[i]!r} core/ops={core.reshape(-1)[i]!r}" for i in bad[:8]]
        pytest.fail(f"{what}: {bad.size} of {face.size} elements differ (NOT OK), first ones:\n" + "\n".join(rows))
    if face.dtype.kind != "f":
        np.testing.assert_array_equal(face, core, err_msg=what)


# --------------------------------------------------------------------------- input values


def _range(fmt: str) -> tuple[int, int]:
    f = FORMATS[fmt]
    return int(f.qmin), int(f.qmax)


@functools.lru_cache(maxsize=1024)
def float_pool(scale: float, zero_point: int, fmt: str) -> np.ndarray:
    """float32 edge values for quantizing with (scale, zero_point) to ``fmt`` (``support.edge_values``:
    exact ties, neighbours, float32-division ties, ±2^k S, specials, seeded random), plus quotients
    ``x / S`` past int32 and near 2^63 and the format's limits ± 1/2."""
    name = fmt if fmt in FORMATS and FORMATS[fmt].bits <= 32 else "int32"
    lo, hi = _range(name)
    s = float(np.float32(scale))
    with np.errstate(over="ignore", invalid="ignore"):  # a huge scale overflows some edges to inf: data
        base = float_edge_values(s, int(np.clip(zero_point, lo, hi)), name, n_random=64)
    far = np.array([2.0 ** 31 - 128, 2.0 ** 31 - 64, 2.0 ** 31 - 1, 2.0 ** 31, 2.0 ** 31 + 256, 2.0 ** 32, 2.0 ** 40,
                    2.0 ** 62, 2.0 ** 63, 2.0 ** 64, 1e30])
    ends = np.array([lo - zero_point, hi - zero_point], np.float64)[:, None] + np.array([-1.5, -0.5, 0, 0.5, 1.5])
    with np.errstate(over="ignore"):
        extra = (np.concatenate([far, -far, ends.ravel()]) * s).astype(F32)
    return np.concatenate([base, extra[np.isfinite(extra)], special_floats()]).astype(F32)


def fill_floats(rng, shape, pools, axis=None) -> np.ndarray:
    """float32 array of ``shape`` drawn from ``pools`` (one pool, or one per channel along ``axis``),
    about a quarter of it fresh uniform values over the first pool's finite span."""
    x = np.empty(shape, F32)
    if axis is None:
        x[...] = rng.choice(pools[0], size=shape)
    else:
        xm = np.moveaxis(x, axis, 0)  # a view: writes go to x
        for c in range(xm.shape[0]):
            xm[c] = rng.choice(pools[c], size=xm[c].shape)
    fin = pools[0][np.isfinite(pools[0])]
    span = float(np.max(np.abs(fin))) if fin.size else 1.0
    fresh = rng.random(shape) < 0.25
    x[fresh] = rng.uniform(-min(span, 1e30), min(span, 1e30), size=int(np.count_nonzero(fresh))).astype(F32)
    return x


def as_dtype(x, dtype):
    """``x`` in another float dtype; past float16's range is ±inf (data, not an error)."""
    with np.errstate(over="ignore"):
        return x.astype(dtype)


@functools.lru_cache(maxsize=64)
def int_pool(fmt: str) -> np.ndarray:
    name = "int32" if fmt == "int32" else fmt
    return int_edge_values(name, n_random=64).astype(np.int64)


def fill_ints(rng, shape, fmt: str) -> np.ndarray:
    lo, hi = _range(fmt)
    v = rng.choice(int_pool(fmt), size=shape)
    fresh = rng.random(shape) < 0.3
    v[fresh] = rng.integers(lo, hi, size=int(np.count_nonzero(fresh)), endpoint=True)
    return v.astype(FORMATS[fmt].dtype)


# --------------------------------------------------------------------------- strategies

def f32s(lo, hi):
    """Floats in [lo, hi] rounded to float32 (as the faces store scales)."""
    return st.floats(lo, hi).map(lambda v: float(np.float32(v)))


SPECIAL_SCALES = (2.0 ** -20, 1e-30, float(np.finfo(F32).tiny), 3e-39, 2.0 ** 100, 3.0e38, 1e-7)
SCALES = st.one_of(st.sampled_from(TIE_SCALES), f32s(1e-4, 1e2),
                   st.sampled_from(SPECIAL_SCALES)).map(float)
SCALES_F16 = st.one_of(st.sampled_from([s for s in TIE_SCALES if s >= 2 ** -10]),
                       st.floats(2e-3, 100.0).map(lambda v: float(np.float16(v)))).map(float)
SEEDS = st.integers(0, 2 ** 32 - 1)


def shapes(min_dims=0, max_dims=4):
    """Odd and empty shapes up to rank 4, long 1-D vectors (SIMD blocks of 8 plus a tail), and 0-d."""
    opts = [hnp.array_shapes(min_dims=max(min_dims, 1), max_dims=max_dims, min_side=0, max_side=6)]
    if min_dims <= 1:
        opts.append(st.integers(0, 41).map(lambda n: (n,)))
    if min_dims == 0:
        opts.append(st.just(()))
    return st.one_of(*opts)


def channel_axis(data, shape) -> int:
    """A channel axis in [0, ndim), non-empty when the shape has a non-empty dimension (an empty
    per-channel scale is refused by every face; one case in a few still tries it)."""
    nonempty = [i for i, d in enumerate(shape) if d >= 1]
    if nonempty and data.draw(st.integers(0, 7), label="allow an empty channel axis") > 0:
        return data.draw(st.sampled_from(nonempty), label="axis")
    return data.draw(st.integers(0, len(shape) - 1), label="axis")


def zero_points(lo: int, hi: int):
    edges = sorted({v for v in (lo, lo + 1, -1, 0, 1, 3, hi - 1, hi) if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


# --------------------------------------------------------------------------- the registry


def test_every_profile_a_face_exposes_is_registered_and_covered():
    covered = ({p for _, p in TFLITE_KERNELS} | {p for _, p in TORCH_ORDERS} | {p for _, p in TORCH_ENGINES}
               | {p for _, _, p in ONNX_FACES} | {torch_face._PROFILE})
    for face, names in FACE_PROFILES.items():
        assert set(names) <= set(PROFILES), f"{face} selects unregistered profiles {set(names) - set(PROFILES)}"
        assert set(names) <= covered, f"{face}'s profiles {set(names) - covered} are not tested here"


def test_pytorch_profiles_share_quantize_dequantize_and_fake_quantize():
    """The PyTorch face reads dequantize and fake-quantize from ``pytorch_fbgemm`` whatever the engine
    or zero-point order: that is only right if every PyTorch profile holds the same specs there."""
    base = get_profile(torch_face._PROFILE)
    for name in set(ENGINE_PROFILES.values()) | set(torch_face.PROFILE_OF_ZERO_POINT_ORDER.values()):
        p = get_profile(name)
        assert (p.dequantize, p.fake_quantize, p.fake_dequantize) == \
               (base.dequantize, base.fake_quantize, base.fake_dequantize), name
    for name in set(ENGINE_PROFILES.values()):  # quantize_per_tensor ignores the engine
        assert get_profile(name).quantize == base.quantize, name


# --------------------------------------------------------------------------- quantize: TFLite


@pytest.mark.parametrize("dtype", tfl_face.QUANTIZE_DTYPES)
@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@SETTINGS
@given(data=st.data())
def test_tflite_quantize(kernel, profile, dtype, data):
    lo, hi = _range(dtype)
    shape = data.draw(shapes(), label="shape")
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    per_channel = FORMATS[dtype].bits >= 8 and len(shape) >= 1 and data.draw(st.booleans(), label="per_channel")
    if per_channel:
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        c = shape[axis]
        per_channel = c >= 2  # a one-element scale is per-tensor in the flatbuffer
    if per_channel:
        scales = np.array([data.draw(SCALES) for _ in range(c)], F32)
        shared = data.draw(st.booleans(), label="one zero point")
        zps = np.array([data.draw(zero_points(lo, hi)) for _ in range(1 if shared else c)], np.int64)
        zp_c = np.broadcast_to(zps, (c,))
        x = fill_floats(rng, shape, [float_pool(float(s), int(z), dtype) for s, z in zip(scales, zp_c)], axis)
        qp = call(make_qparams, scales, zp_c, dtype, axis=axis % len(shape))
        zp_arg = zps if not shared else zps[0]
    else:
        scale, axis = data.draw(SCALES, label="scale"), 0
        zp_arg = data.draw(zero_points(lo, hi), label="zero_point")
        x = fill_floats(rng, shape, [float_pool(scale, zp_arg, dtype)])
        scales = scale
        qp = call(make_qparams, scale, zp_arg, dtype)
    x_in = as_dtype(x, data.draw(st.sampled_from([F32, F32, F16, F64]), label="x dtype"))
    face = call(tfl_face.quantize, x_in, scales, zp_arg, dtype=dtype, axis=axis, kernel=kernel)
    core = qp if isinstance(qp, Exception) else call(refquant.quantize, as_dtype(x_in, F32), qp, profile)
    assert_identical(face, core, f"tflite.quantize(kernel={kernel!r}, dtype={dtype}) vs quantize(.., {profile!r})",
                     x_in)


@pytest.mark.parametrize("dtype", tfl_face.DEQUANTIZE_DTYPES)
@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@SETTINGS
@given(data=st.data())
def test_tflite_dequantize(kernel, profile, dtype, data):
    lo, hi = _range(dtype)
    shape = data.draw(shapes(), label="shape")
    q = fill_ints(np.random.default_rng(data.draw(SEEDS, label="seed")), shape, dtype)
    zps_st = st.just(0) if dtype == "int16" else zero_points(lo, hi)  # TFLite: int16 zero point 0
    # per-channel DEQUANTIZE: int8/uint8 only; a one-element scale is per-tensor
    per_channel = dtype != "int16" and len(shape) >= 1 and data.draw(st.booleans(), label="per_channel")
    axis = 0
    if per_channel:
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        c = shape[axis]
        per_channel = c >= 2
    if per_channel:
        scales = np.array([data.draw(SCALES) for _ in range(c)], F32)
        shared = data.draw(st.booleans(), label="one zero point")
        zp_arg = np.array([data.draw(zps_st) for _ in range(1 if shared else c)], np.int64)
        qp = call(make_qparams, scales, np.broadcast_to(zp_arg, (c,)), dtype, axis=axis % len(shape))
        zp_arg = zp_arg[0] if shared else zp_arg
    else:
        scales, zp_arg = data.draw(SCALES, label="scale"), data.draw(zps_st, label="zero_point")
        qp = call(make_qparams, scales, zp_arg, dtype)
    face = call(tfl_face.dequantize, q, scales, zp_arg, axis=axis, kernel=kernel)
    core = qp if isinstance(qp, Exception) else call(refquant.dequantize, q, qp, profile)
    assert_identical(face, core, f"tflite.dequantize(kernel={kernel!r}, {dtype}) vs dequantize(.., {profile!r})", q)


# --------------------------------------------------------------------------- quantize: PyTorch


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("qdtype", sorted(TORCH_DTYPES))
@pytest.mark.parametrize("order,profile", TORCH_ORDERS)
@SETTINGS
@given(data=st.data())
def test_pytorch_quantize(order, profile, qdtype, per_channel, data):
    fmt = TORCH_DTYPES[qdtype]
    lo, hi = _range(fmt)
    shape = data.draw(shapes(min_dims=1 if per_channel else 0), label="shape")
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    x_dtype = data.draw(st.sampled_from([F32, F32, F16, F64]), label="x dtype")
    if per_channel:
        axis = channel_axis(data, shape)
        c = shape[axis]
        scales = np.array([data.draw(SCALES) for _ in range(c)], F64)
        zps = np.array([data.draw(zero_points(lo, hi)) for _ in range(c)], np.int64)
        x = fill_floats(rng, shape, [float_pool(float(s), int(z), fmt) for s, z in zip(scales, zps)] or
                        [float_pool(1.0, 0, fmt)], axis if c else None)
        x = as_dtype(x, x_dtype)
        face = call(torch_face.quantize_per_channel, x, scales, zps, axis, qdtype, zero_point_order=order)
        qp = call(make_qparams, scales, zps, fmt, axis=axis)
    else:
        scale, zp = data.draw(SCALES, label="scale"), data.draw(zero_points(lo, hi), label="zero_point")
        x = as_dtype(fill_floats(rng, shape, [float_pool(scale, zp, fmt)]), x_dtype)
        face = call(torch_face.quantize_per_tensor, x, scale, zp, qdtype, zero_point_order=order)
        qp = call(make_qparams, scale, zp, fmt)
    core = qp if isinstance(qp, Exception) else call(refquant.quantize, as_dtype(x, F32), qp, profile)
    assert_identical(face, core, f"pytorch.quantize_per_{'channel' if per_channel else 'tensor'}({qdtype}, "
                                 f"zero_point_order={order!r}) vs quantize(.., {profile!r})", x)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("qdtype", sorted(TORCH_DTYPES))
@SETTINGS
@given(data=st.data())
def test_pytorch_dequantize(qdtype, per_channel, data):
    fmt = TORCH_DTYPES[qdtype]
    lo, hi = _range(fmt)
    shape = data.draw(shapes(min_dims=1 if per_channel else 0), label="shape")
    q = fill_ints(np.random.default_rng(data.draw(SEEDS, label="seed")), shape, fmt)
    if per_channel:
        axis = channel_axis(data, shape)
        c = shape[axis]
        # torch keeps per-channel scales in float64: the face's QParams do too (scale_dtype=float64)
        scales = np.array([data.draw(st.one_of(SCALES, st.floats(1e-4, 10.0))) for _ in range(c)], F64)
        zps = np.array([data.draw(zero_points(lo, hi)) for _ in range(c)], np.int64)
        face = call(torch_face.dequantize, q, scales, zps, axis=axis)
        qp = call(make_qparams, scales, zps, fmt, axis=axis, scale_dtype=np.float64)
    else:
        scale, zp = data.draw(SCALES, label="scale"), data.draw(zero_points(lo, hi), label="zero_point")
        face = call(torch_face.dequantize, q, scale, zp)
        qp = call(make_qparams, scale, zp, fmt)
    core = qp if isinstance(qp, Exception) else call(refquant.dequantize, q, qp, torch_face._PROFILE)
    assert_identical(face, core, f"pytorch.dequantize({qdtype}, per_channel={per_channel}) vs "
                                 f"dequantize(.., {torch_face._PROFILE!r})", q)


# --------------------------------------------------------------------------- quantize: ONNX, ONNX Runtime


def _onnx_granularity(data, shape):
    """(axis, block_size, scale shape): per-tensor, per-axis or blocked, as ONNX's shapes say."""
    kinds = ["per_tensor"]
    if len(shape) >= 1:
        kinds.append("per_axis")
        if all(d >= 1 for d in shape):
            kinds.append("blocked")
    kind = data.draw(st.sampled_from(kinds), label="granularity")
    if kind == "per_tensor":
        return None, 0, ()
    nonempty = [i for i, d in enumerate(shape) if d >= 1]
    if not nonempty:
        return None, 0, ()
    axis = data.draw(st.sampled_from(nonempty), label="axis") - data.draw(st.sampled_from([0, len(shape)]))
    d = shape[axis]
    if kind == "per_axis":
        return axis, 0, (d,)
    b = data.draw(st.integers(1, d + 1), label="block_size")
    sshape = list(shape)
    sshape[axis] = -(-d // b)
    return axis, b, tuple(sshape)


def _zp_array(zps: np.ndarray, fmt: str):
    """The ONNX zero point: its dtype is the output type (int4/int2 held in int8/uint8 with output_dtype)."""
    return zps.astype(FORMATS[fmt].dtype), (fmt if fmt in SUB_BYTE else None)


def _core_qparams(scale, zps, fmt, axis, block, shape):
    """The QParams the ONNX faces build: a one-element, non-blocked scale is per-tensor."""
    if block:
        return call(make_qparams, scale, zps, fmt, axis=axis % len(shape), block_size=block, scale_dtype=scale.dtype)
    if axis is None or scale.size == 1:
        return call(make_qparams, scale.reshape(()), zps.reshape(()), fmt, scale_dtype=scale.dtype)
    return call(make_qparams, scale, zps, fmt, axis=axis % len(shape), scale_dtype=scale.dtype)


@pytest.mark.parametrize("fmt", onnx_face.ONNX_INTEGER_TYPES)
@pytest.mark.parametrize("face_name,face,profile", ONNX_FACES, ids=[f[0] for f in ONNX_FACES])
@SETTINGS
@given(data=st.data())
def test_onnx_quantize_linear(face_name, face, profile, fmt, data):
    lo, hi = _range(fmt)
    shape = data.draw(shapes(), label="shape")
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    axis, block, sshape = _onnx_granularity(data, shape)
    x_dtype = data.draw(st.sampled_from([F32, F32, F16] + ([F64] if face_name == "onnx" else [])), label="x dtype")
    if face_name == "onnx":
        s_dtype = data.draw(st.sampled_from([F32, F16]), label="scale dtype")
    else:  # ORT binds x and the scale to one type (float64 x is rounded to float32 first)
        s_dtype = F16 if x_dtype == F16 else F32
    n = int(np.prod(sshape))
    scale = np.array([data.draw(SCALES_F16 if s_dtype == F16 else SCALES) for _ in range(n)],
                     s_dtype).reshape(sshape)
    zps = np.array([data.draw(zero_points(lo, hi)) for _ in range(n)], np.int64).reshape(sshape)
    # values: ties of the first block's parameters, plus the pool's specials and random values
    x = as_dtype(fill_floats(rng, shape, [float_pool(float(scale.flat[0]), int(zps.flat[0]), fmt)]), x_dtype)
    zp_arg, out = _zp_array(zps, fmt)
    if fmt == "uint8" and not zps.any() and data.draw(st.booleans(), label="zero point None"):
        zp_arg = None  # default: uint8, zero point 0
    elif out is None and data.draw(st.booleans(), label="name output_dtype"):
        out = fmt
    face_y = call(face.quantize_linear, x, scale, zp_arg, axis=1 if axis is None else axis, block_size=block,
                  output_dtype=out)
    x_core = as_dtype(x, F32) if (face_name == "onnxruntime" and x_dtype == F64) else x  # ORT takes float32
    qp = _core_qparams(scale, zps, fmt, axis, block, shape)
    core = qp if isinstance(qp, Exception) else call(refquant.quantize, x_core, qp, profile)
    assert_identical(face_y, core, f"{face_name}.quantize_linear({fmt}, x {x_dtype}, scale {s_dtype}, "
                                   f"axis={axis}, block_size={block}) vs quantize(.., {profile!r})", x)


@pytest.mark.parametrize("fmt", ["int8", "uint8", "int16", "uint16", "int32"] + [
    pytest.param(f, marks=pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")) for f in SUB_BYTE])
@pytest.mark.parametrize("face_name,face,profile", ONNX_FACES, ids=[f[0] for f in ONNX_FACES])
@SETTINGS
@given(data=st.data())
def test_onnx_dequantize_linear(face_name, face, profile, fmt, data):
    lo, hi = _range(fmt)
    shape = data.draw(shapes(), label="shape")
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    axis, block, sshape = _onnx_granularity(data, shape)
    # ONNX: float32 scales here (float16: see the xfail below); ORT: float16 too, its output rounded
    s_dtype = data.draw(st.sampled_from([F32, F16]), label="scale dtype") if face_name == "onnxruntime" else F32
    n = int(np.prod(sshape))
    scale = np.array([data.draw(SCALES_F16 if s_dtype == F16 else SCALES) for _ in range(n)],
                     s_dtype).reshape(sshape)
    zp_st = st.just(0) if (fmt == "int32" and face_name == "onnx") else zero_points(lo, hi)
    zps = np.array([data.draw(zp_st) for _ in range(n)], np.int64).reshape(sshape)
    q = fill_ints(rng, shape, fmt)  # int4/int2 in int8/uint8
    if fmt == "int32" and data.draw(st.booleans(), label="codes near the int32 ends"):
        q = rng.choice(np.array([lo, lo + 1, lo + 2, hi - 2, hi - 1, hi], np.int32), size=shape).astype(np.int32)
        zps = np.full(sshape, 3 if face_name == "onnxruntime" else 0, np.int64)
    q_arg = q.astype(SUB_BYTE[fmt]) if fmt in SUB_BYTE else q  # ml_dtypes: the face reads the format from it
    zp_arg = zps.astype(FORMATS[fmt].dtype)
    face_y = call(face.dequantize_linear, q_arg, scale, zp_arg, axis=1 if axis is None else axis, block_size=block)
    qp = _core_qparams(scale, zps, fmt, axis, block, shape)
    core = qp if isinstance(qp, Exception) else call(refquant.dequantize, q, qp, profile)
    if s_dtype == F16 and not isinstance(core, Exception):
        core = as_dtype(core, F16)  # ORT: the float32 product rounded to the float16 output type (face docstring)
    assert_identical(face_y, core, f"{face_name}.dequantize_linear({fmt}, scale {s_dtype}, axis={axis}, "
                                   f"block_size={block}) vs dequantize(.., {profile!r})", q)


@pytest.mark.parametrize("fmt,scale", [("int8", 0.1), ("int8", 3 * 2.0 ** -8), ("int16", 0.3)])
def test_onnx_dequantize_linear_float16_scale(fmt, scale):
    """With a float16 scale the ONNX output type is float16 and the product is computed in it: the
    ``onnx`` profile's dequantize spec says so (precision of the scale), so the face and the core agree
    (q = -32764, Z = -5, S = float16(0.3) gives float16 -9820 on both)."""
    q = int_edge_values(fmt)
    s16, zp = np.float16(scale), 3 if fmt == "int8" else -5
    face_y = onnx_face.dequantize_linear(q, s16, FORMATS[fmt].dtype.type(zp))
    core = refquant.dequantize(q, make_qparams(s16, zp, fmt, scale_dtype=np.float16), "onnx")
    assert face_y.dtype == core.dtype == np.float16
    assert_identical(face_y, core, f"onnx.dequantize_linear({fmt}, scale float16) vs dequantize(.., 'onnx')", q)


# --------------------------------------------------------------------------- fake-quantize: PyTorch

FQ_RANGES = ((0, 255), (-128, 127), (0, 15), (-8, 7), (0, 1), (-(2 ** 31), 2 ** 31 - 1), (0, 2 ** 32),
             (-(2 ** 32), 2 ** 32))


def fq_ranges():
    random_range = st.tuples(st.integers(-(2 ** 32), 2 ** 32), st.integers(-(2 ** 32), 2 ** 32)).map(sorted).map(tuple)
    small_range = st.tuples(st.integers(-300, 300), st.integers(-300, 300)).map(sorted).map(tuple)
    return st.one_of(st.sampled_from(FQ_RANGES), small_range, random_range)


@functools.lru_cache(maxsize=1024)
def fq_pool(scale: float, zp: int, lo: int, hi: int) -> np.ndarray:
    """float32 values for fake-quantizing to [lo, hi] with (scale, zp): exact ties near both ends and 0,
    their neighbours, quotients past the range, int32 and 2^63, specials."""
    s = np.float64(np.float32(scale))
    n = np.unique(np.concatenate([np.arange(lo - zp - 3, lo - zp + 3), np.arange(hi - zp - 3, hi - zp + 3),
                                  np.arange(-3, 4)]).astype(np.float64))
    far = np.array([2.0 ** 24, 2.0 ** 31, 2.0 ** 32 + 2, 2.0 ** 40, 2.0 ** 63, 2.0 ** 64, 1e30]) * s
    with np.errstate(over="ignore"):
        ties = ((n + 0.5) * s).astype(F32)
        exact = ties[ties.astype(np.float64) == (n + 0.5) * s]
        vals = np.concatenate([exact, np.nextafter(exact, np.float32(np.inf)), np.nextafter(exact, -np.float32(np.inf)),
                               (n * s).astype(F32), far.astype(F32), (-far).astype(F32), special_floats()])
    return vals.astype(F32)


@pytest.mark.parametrize("x_dtype", [F16, F32, F64], ids=["float16", "float32", "float64"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@SETTINGS
@given(data=st.data())
def test_pytorch_fake_quantize(per_channel, x_dtype, data):
    lo, hi = data.draw(fq_ranges(), label="(quant_min, quant_max)")
    shape = data.draw(shapes(min_dims=1 if per_channel else 0), label="shape")
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    scales_st = st.one_of(SCALES, st.sampled_from([2.0 ** -24, 2.0 ** 20]).map(float))
    if per_channel:
        axis = channel_axis(data, shape)
        c = shape[axis]
        scale = np.array([data.draw(scales_st) for _ in range(c)], F32)
        zp = np.array([data.draw(zero_points(lo, hi)) for _ in range(c)], np.int64)
        x = fill_floats(rng, shape, [fq_pool(float(s), int(z), lo, hi) for s, z in zip(scale, zp)] or
                        [fq_pool(1.0, 0, lo, hi)], axis if c else None)
        qp = call(make_qparams, scale, zp, FQ_FORMAT, axis=axis, qmin=lo, qmax=hi)
        args = (scale, zp, axis, lo, hi)
        faces = (torch_face.fake_quantize_per_channel_affine_cachemask, torch_face.fake_quantize_per_channel_affine)
    else:
        scale, zp = data.draw(scales_st, label="scale"), data.draw(zero_points(lo, hi), label="zero_point")
        x = fill_floats(rng, shape, [fq_pool(scale, zp, lo, hi)])
        qp = call(make_qparams, scale, zp, FQ_FORMAT, qmin=lo, qmax=hi)
        args = (scale, zp, lo, hi)
        faces = (torch_face.fake_quantize_per_tensor_affine_cachemask, torch_face.fake_quantize_per_tensor_affine)
    with np.errstate(over="ignore"):
        x = x.astype(x_dtype)
    what = f"pytorch.fake_quantize_per_{'channel' if per_channel else 'tensor'}_affine(x {x_dtype}, [{lo}, {hi}])"
    face = call(faces[0], x, *args)
    face_y = call(faces[1], x, *args)
    core = qp if isinstance(qp, Exception) else call(refquant.fake_quantize_with_mask, x, qp, torch_face._PROFILE)
    if isinstance(face, Exception) or isinstance(core, Exception):
        assert_identical(face, core, what)
        assert_identical(face_y, core, what)
        return
    (y, mask), (y_core, mask_core) = face, core
    with np.errstate(over="ignore"):
        y_core = y_core.astype(x_dtype)  # torch returns x's dtype (face docstring); the core its dequantize precision
    assert_identical(y, y_core, what + " y vs fake_quantize_with_mask(.., 'pytorch_fbgemm')", x)
    assert_identical(mask, mask_core, what + " mask", x)
    assert_identical(face_y, y_core, what.replace("_cachemask", "") + " (no mask)", x)


# --------------------------------------------------------------------------- layers: shared draws

X_SCALES = st.one_of(st.sampled_from([1.0, 0.5, 2.0 ** -7, 0.1]), f32s(1e-3, 2.0)).map(float)
W_SCALES = st.one_of(st.sampled_from([2.0 ** -7, 0.01, 2.0 ** -10]), f32s(1e-4, 0.1)).map(float)
Y_SCALES = st.one_of(st.sampled_from([1.0, 0.25, 2.0 ** -5]), f32s(1e-3, 4.0),
                     st.sampled_from([1e-7, 1e-5, 1e4])).map(float)  # requantization scales >= 256 and tiny ones
ACTIVATIONS = (None, "NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def codes(rng, shape, fmt, data, label):
    """Integer codes: edge values, values at the format's ends, or one end everywhere (uint8 255 times
    int8 -128 in every pair drives the x86 int16 pair saturation)."""
    mode = data.draw(st.sampled_from(["edges", "extreme", "constant"]), label=f"{label} values")
    lo, hi = _range(fmt)
    if mode == "extreme":
        return rng.choice(np.array([lo, hi, hi, lo + 1, hi - 1]), size=shape).astype(FORMATS[fmt].dtype)
    if mode == "constant":
        return np.full(shape, data.draw(st.sampled_from([hi, lo]), label=f"{label} end"), FORMATS[fmt].dtype)
    return fill_ints(rng, shape, fmt)


def w_params(data, n, fmt, per_channel_zp=True):
    """Weight scale () or (n,) float32, weight zero point () or (n,) int64."""
    lo, hi = _range(fmt)
    per_channel = n >= 1 and data.draw(st.booleans(), label="per-channel w_scale")
    ws = (np.array([data.draw(W_SCALES) for _ in range(n)], F32) if per_channel
          else np.asarray(data.draw(W_SCALES, label="w_scale"), F32))
    if per_channel_zp and n >= 1 and data.draw(st.booleans(), label="per-channel w_zero_point"):
        wz = np.array([data.draw(zero_points(lo, hi)) for _ in range(n)], np.int64)
    elif per_channel_zp:
        wz = np.asarray(data.draw(zero_points(lo, hi), label="w_zero_point"), np.int64)
    else:
        wz = np.asarray(0, np.int64)
    return ws, wz


def scalar_ws(ws):
    """What the faces pass on: a one-element weight scale is per-tensor."""
    return ws.reshape(()) if ws.size == 1 else ws


def conv_geometry(data, rng, c_max=6):
    """(C, O, groups, kH, kW, stride, dilation, (H, W)) with a non-empty output for explicit pads."""
    kind = data.draw(st.sampled_from(["random", "random", "depthwise", "pointwise", "groupwise", "fbgemm_dw"]),
                     label="geometry")
    if kind == "fbgemm_dw":  # fbgemm's depthwise fast path: C % 8 == 0, 3x3/5x5, pad (k-1)/2
        g = c = 8 * data.draw(st.integers(1, 2))
        o = c * data.draw(st.sampled_from([1, 2]))
        k = data.draw(st.sampled_from([3, 5]))
        s = data.draw(st.sampled_from([1, 2]))
        return c, o, g, k, k, (s, s), (1, 1), ((k - 1) // 2, (k - 1) // 2)
    if kind == "groupwise":  # fbgemm's groupwise path: C_g == O_g in {2, 4, 8}, 3x3, pad 1
        cg = data.draw(st.sampled_from([2, 4, 8]))
        g = data.draw(st.integers(1, 3))
        s = data.draw(st.sampled_from([1, 2]))
        return cg * g, cg * g, g, 3, 3, (s, s), (1, 1), (1, 1)
    if kind == "pointwise":
        c = data.draw(st.integers(1, c_max))
        return c, data.draw(st.integers(1, 7)), 1, 1, 1, (1, 1), (1, 1), (0, 0)
    if kind == "depthwise":  # groups = C, multiplier 1 (most often) or 2
        g = c = data.draw(st.integers(1, 9))
        o = c * data.draw(st.sampled_from([1, 1, 2]))
    else:
        g = data.draw(st.integers(1, 3))
        c = g * data.draw(st.integers(1, 3))
        o = g * data.draw(st.integers(1, 3))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    st_ = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    dl = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pad = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    return c, o, g, kh, kw, st_, dl, pad


def image_size(data, kh, kw, dl, pad, label="(H, W)"):
    """An input size whose padded extent holds the dilated kernel (odd sizes included); ``pad`` is
    symmetric ``(h, w)`` or ``(top, left, bottom, right)``."""
    t, l, b, r = pad if len(pad) == 4 else (pad[0], pad[1], pad[0], pad[1])
    h0 = max(1, dl[0] * (kh - 1) + 1 - t - b)
    w0 = max(1, dl[1] * (kw - 1) + 1 - l - r)
    return h0 + data.draw(st.integers(0, 5), label=f"{label} H extra"), w0 + data.draw(st.integers(0, 5))


# --------------------------------------------------------------------------- layers: TFLite


@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@LAYER_SETTINGS
@given(data=st.data())
def test_tflite_fully_connected(kernel, profile, data):
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    n, k = data.draw(st.integers(1, 17), label="N"), data.draw(st.integers(1, 40), label="K")
    lead = data.draw(st.sampled_from([(1,), (3,), (5,), (2, 3), (0,)]), label="batch")
    x = codes(rng, lead + (k,), "int8", data, "x")
    w = codes(rng, (n, k), "int8", data, "w")
    ws, _ = w_params(data, n, "int8", per_channel_zp=False)
    b = None if data.draw(st.booleans(), label="no bias") else fill_ints(rng, (n,), "int32") // \
        data.draw(st.sampled_from([1, 2 ** 10, 2 ** 20]))
    b = None if b is None else b.astype(np.int32)
    xs, ys = data.draw(X_SCALES, label="x_scale"), data.draw(Y_SCALES, label="y_scale")
    xz, yz = data.draw(zero_points(-128, 127), label="x_zp"), data.draw(zero_points(-128, 127), label="y_zp")
    act = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    face = call(tfl_face.fully_connected, x, xs, xz, w, ws, b, ys, yz, activation=act, kernel=kernel)
    ops = call(layers.linear, x.reshape(-1, k), np.float32(xs), xz, w, scalar_ws(ws), 0,
               np.zeros(n, np.int32) if b is None else b, np.float32(ys), yz, profile=profile, activation=act)
    assert_identical(face, ops, f"tflite.fully_connected(kernel={kernel!r}) vs ops.layers.linear({profile!r})")


@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@LAYER_SETTINGS
@given(data=st.data())
def test_tflite_conv2d(kernel, profile, data):
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    c, o, g, kh, kw, stride, dil, _ = conv_geometry(data, rng)
    padding = data.draw(st.sampled_from(["SAME", "VALID"]), label="padding")
    h, wd = image_size(data, kh, kw, dil, (0, 0))
    nb = data.draw(st.integers(1, 2), label="N")
    x = codes(rng, (nb, h, wd, c), "int8", data, "x")
    w = codes(rng, (o, kh, kw, c // g), "int8", data, "w")
    ws, _ = w_params(data, o, "int8", per_channel_zp=False)
    b = None if data.draw(st.booleans(), label="no bias") else (fill_ints(rng, (o,), "int32") // 2 ** 12).astype(
        np.int32)
    xs, ys = data.draw(X_SCALES, label="x_scale"), data.draw(Y_SCALES, label="y_scale")
    xz, yz = data.draw(zero_points(-128, 127), label="x_zp"), data.draw(zero_points(-128, 127), label="y_zp")
    act = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    face = call(tfl_face.conv2d, x, xs, xz, w, ws, b, ys, yz, stride=stride, padding=padding, dilation=dil,
                activation=act, kernel=kernel)
    ops = call(layers.conv2d, x, np.float32(xs), xz, w, scalar_ws(ws), 0, np.zeros(o, np.int32) if b is None else b,
               np.float32(ys), yz, profile=profile, strides=stride, dilations=dil,
               pads="SAME_UPPER" if padding == "SAME" else "VALID", groups=g, layout="NHWC", w_layout="OHWI",
               family="conv" if g == 1 else "grouped_conv", activation=act)  # a CONV_2D node is never depthwise
    assert_identical(face, ops, f"tflite.conv2d(kernel={kernel!r}, groups={g}) vs ops.layers.conv2d({profile!r})")


@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@LAYER_SETTINGS
@given(data=st.data())
def test_tflite_depthwise_conv2d(kernel, profile, data):
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    c = data.draw(st.sampled_from([1, 2, 3, 8, 9, 17]), label="C")
    m = data.draw(st.integers(1, 3), label="depth_multiplier")
    o = c * m
    kh, kw = data.draw(st.integers(1, 3), label="kH"), data.draw(st.integers(1, 3), label="kW")
    stride = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    dil = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]), label="padding")
    h, wd = image_size(data, kh, kw, dil, (0, 0))
    x = codes(rng, (data.draw(st.integers(1, 2), label="N"), h, wd, c), "int8", data, "x")
    w = codes(rng, (1, kh, kw, o), "int8", data, "w")
    ws, _ = w_params(data, o, "int8", per_channel_zp=False)
    b = None if data.draw(st.booleans(), label="no bias") else (fill_ints(rng, (o,), "int32") // 2 ** 12).astype(
        np.int32)
    xs, ys = data.draw(X_SCALES, label="x_scale"), data.draw(Y_SCALES, label="y_scale")
    xz, yz = data.draw(zero_points(-128, 127), label="x_zp"), data.draw(zero_points(-128, 127), label="y_zp")
    act = data.draw(st.sampled_from(ACTIVATIONS), label="activation")
    face = call(tfl_face.depthwise_conv2d, x, xs, xz, w, ws, b, ys, yz, stride=stride, padding=padding,
                dilation=dil, depth_multiplier=m, activation=act, kernel=kernel)
    ops = call(layers.conv2d, x, np.float32(xs), xz, w, scalar_ws(ws), 0, np.zeros(o, np.int32) if b is None else b,
               np.float32(ys), yz, profile=profile, strides=stride, dilations=dil,
               pads="SAME_UPPER" if padding == "SAME" else "VALID", layout="NHWC", w_layout="1HWO",
               family="depthwise", activation=act)
    assert_identical(face, ops, f"tflite.depthwise_conv2d(kernel={kernel!r}, m={m}) vs ops.layers.conv2d({profile!r})")


# --------------------------------------------------------------------------- layers: PyTorch


def _torch_layer_args(data, rng, n):
    ws, wz = w_params(data, n, "int8")
    bias = None if data.draw(st.booleans(), label="no bias") else \
        rng.uniform(-1, 1, n).astype(F32) * np.float32(data.draw(st.sampled_from([0.0, 1.0, 100.0, 1e4]), label="bias size"))
    xs, ys = data.draw(X_SCALES, label="x_scale"), data.draw(Y_SCALES, label="y_scale")
    xz, yz = data.draw(zero_points(0, 255), label="x_zp"), data.draw(zero_points(0, 255), label="y_zp")
    return ws, wz, bias, xs, ys, xz, yz


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("engine,profile", TORCH_ENGINES)
@LAYER_SETTINGS
@given(data=st.data())
def test_pytorch_linear(engine, profile, isa, data):
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    n, k = data.draw(st.integers(1, 17), label="N"), data.draw(st.integers(1, 40), label="K")
    lead = data.draw(st.sampled_from([(1,), (3,), (7,), (2, 3), (0,)]), label="batch")
    x = codes(rng, lead + (k,), "uint8", data, "x")
    w = codes(rng, (n, k), "int8", data, "w")
    ws, wz, bias, xs, ys, xz, yz = _torch_layer_args(data, rng, n)
    face = call(torch_face.linear, x, xs, xz, w, ws, wz, bias, ys, yz, engine=engine, isa=isa)
    prof = get_profile(profile).with_isa(isa)
    ops = call(layers.linear, x.reshape(-1, k), np.float32(xs), xz, w, ws, wz, bias, np.float32(ys), yz, profile=prof,
               out_dtype=np.uint8)
    if not isinstance(ops, Exception):
        ops = ops.reshape(lead + (n,))
    assert_identical(face, ops, f"pytorch.linear(engine={engine!r}, isa={isa!r}) vs ops.layers.linear({profile!r} "
                                f"with_isa({isa!r}) = {prof.isa})")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("engine,profile", TORCH_ENGINES)
@LAYER_SETTINGS
@given(data=st.data())
def test_pytorch_conv2d(engine, profile, isa, data):
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    c, o, g, kh, kw, stride, dil, pad = conv_geometry(data, rng)
    h, wd = image_size(data, kh, kw, dil, pad)
    x = codes(rng, (data.draw(st.integers(1, 2), label="N"), c, h, wd), "uint8", data, "x")
    w = codes(rng, (o, c // g, kh, kw), "int8", data, "w")
    ws, wz, bias, xs, ys, xz, yz = _torch_layer_args(data, rng, o)
    prof = get_profile(profile).with_isa(isa)
    what = (f"pytorch.conv2d(engine={engine!r}, isa={isa!r}, groups={g}) vs ops.layers.conv2d({profile!r} "
            f"with_isa({isa!r}) = {prof.isa})")
    face = call(torch_face.conv2d, x, xs, xz, w, ws, wz, bias, ys, yz, stride=stride, padding=pad, dilation=dil,
                groups=g, engine=engine, isa=isa)
    path = torch_face.fbgemm_conv_path(c, o, (kh, kw), stride, pad, dil, g)  # fbgemm's kernel choice
    ops = call(layers.conv2d, x, np.float32(xs), xz, w, ws, wz, bias, np.float32(ys), yz, profile=prof, strides=stride,
               dilations=dil, pads=pad, groups=g, k_order="hwc", family="depthwise" if path == "depthwise" else "conv",
               out_dtype=np.uint8)
    if onednn_refusal(engine, prof, g, wz, face, ops):
        return
    assert_identical(face, ops, what + f" [fbgemm path {path}]")


def onednn_refusal(engine, prof, groups, wz, face, ops) -> bool:
    """engine "x86" on AVX-512 VNNI sends symmetric-weight convolutions with groups <= 100 to oneDNN,
    which is being modelled separately: a face that refuses such a case (UnsupportedError naming oneDNN)
    where the ops do not is skipped, never anything else."""
    return (engine == "x86" and prof.isa == "avx512_vnni" and groups <= 100 and not np.any(wz)
            and isinstance(face, UnsupportedError) and "oneDNN" in str(face) and not isinstance(ops, UnsupportedError))


# --------------------------------------------------------------------------- layers: ONNX Runtime, ONNX

QLINEAR_TYPES = {"onnxruntime": [("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8")],
                 "onnx": [("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8"), ("int8", "uint8")]}
LAYER_CASES = [("onnxruntime", isa) for isa in ISAS] + [("onnx", None)]


def _layer_profile(face_name, isa):
    return get_profile("onnx") if face_name == "onnx" else get_profile(ort_face._PROFILE).with_isa(isa)


@pytest.mark.parametrize("face_name,isa", LAYER_CASES, ids=[f"{f}-{i}" for f, i in LAYER_CASES])
@LAYER_SETTINGS
@given(data=st.data())
def test_qlinear_matmul(face_name, isa, data):
    face_mod = ort_face if face_name == "onnxruntime" else onnx_face
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    a_fmt, b_fmt = data.draw(st.sampled_from(QLINEAR_TYPES[face_name]), label="(a, b) types")
    y_fmt = a_fmt if face_name == "onnxruntime" else data.draw(st.sampled_from(["uint8", "int8"]), label="y type")
    m, k, n = (data.draw(st.integers(1, 13), label=lab) for lab in ("M", "K", "N"))
    a = codes(rng, (m, k), a_fmt, data, "a")
    b = codes(rng, (k, n), b_fmt, data, "b")
    sb, zb = w_params(data, n, b_fmt)
    sa, sy = data.draw(X_SCALES, label="a_scale"), data.draw(Y_SCALES, label="y_scale")
    za, zy = data.draw(zero_points(*_range(a_fmt)), label="a_zp"), data.draw(zero_points(*_range(y_fmt)), label="y_zp")
    a_dt, b_dt, y_dt = (FORMATS[f].dtype.type for f in (a_fmt, b_fmt, y_fmt))
    kw = {"isa": isa} if face_name == "onnxruntime" else {}
    face = call(face_mod.qlinear_matmul, a, np.float32(sa), a_dt(za), b, sb, zb.astype(b_dt), np.float32(sy), y_dt(zy), **kw)
    prof = _layer_profile(face_name, isa)
    ops = call(layers.linear, a, np.float32(sa), za, np.ascontiguousarray(b.T), scalar_ws(sb), zb, None, np.float32(sy), zy,
               profile=prof, out_dtype=y_dt)
    assert_identical(face, ops, f"{face_name}.qlinear_matmul({a_fmt} x {b_fmt}, isa={isa!r}) vs "
                                f"ops.layers.linear({prof.name!r}, isa {prof.isa})")


@pytest.mark.parametrize("face_name,isa", LAYER_CASES, ids=[f"{f}-{i}" for f, i in LAYER_CASES])
@LAYER_SETTINGS
@given(data=st.data())
def test_qlinear_conv(face_name, isa, data):
    face_mod = ort_face if face_name == "onnxruntime" else onnx_face
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    x_fmt, w_fmt = data.draw(st.sampled_from(QLINEAR_TYPES[face_name]), label="(x, w) types")
    y_fmt = x_fmt if face_name == "onnxruntime" else data.draw(st.sampled_from(["uint8", "int8"]), label="y type")
    c, o, g, kh, kw, stride, dil, pad = conv_geometry(data, rng)
    pads = (pad[0], pad[1], data.draw(st.integers(0, 2), label="pad bottom"), data.draw(st.integers(0, 2)))
    h, wd = image_size(data, kh, kw, dil, pads)
    x = codes(rng, (data.draw(st.integers(1, 2), label="N"), c, h, wd), x_fmt, data, "x")
    w = codes(rng, (o, c // g, kh, kw), w_fmt, data, "w")
    sw, zw = w_params(data, o, w_fmt)
    bias = None if data.draw(st.booleans(), label="no bias") else (fill_ints(rng, (o,), "int32") // 2 ** 12).astype(
        np.int32)
    sx, sy = data.draw(X_SCALES, label="x_scale"), data.draw(Y_SCALES, label="y_scale")
    zx, zy = data.draw(zero_points(*_range(x_fmt)), label="x_zp"), data.draw(zero_points(*_range(y_fmt)), label="y_zp")
    x_dt, w_dt, y_dt = (FORMATS[f].dtype.type for f in (x_fmt, w_fmt, y_fmt))
    kw_isa = {"isa": isa} if face_name == "onnxruntime" else {}
    face = call(face_mod.qlinear_conv, x, np.float32(sx), x_dt(zx), w, sw, zw.astype(w_dt), np.float32(sy), y_dt(zy), bias,
                pads=list(pads), strides=list(stride), dilations=list(dil), group=g, **kw_isa)
    prof = _layer_profile(face_name, isa)
    # the profile alone picks the family (MLAS's exact depthwise kernel: multiplier 1 and one weight zero
    # point) and the pair order (QLinearConv's NHWC im2col: (kH, kW, c)), as an imported model's node does
    family, k_order = None, None
    ops = call(layers.conv2d, x, np.float32(sx), zx, w, scalar_ws(sw), zw, bias, np.float32(sy), zy, profile=prof, strides=stride,
               dilations=dil, pads=pads, groups=g, layout="NCHW", k_order=k_order, family=family, out_dtype=y_dt)
    assert_identical(face, ops, f"{face_name}.qlinear_conv({x_fmt} x {w_fmt}, groups={g}, isa={isa!r}) vs "
                                f"ops.layers.conv2d({prof.name!r}, isa {prof.isa}, family {family})")


# --------------------------------------------------------------------------- deterministic edges


@pytest.mark.parametrize("dtype", tfl_face.QUANTIZE_DTYPES)
@pytest.mark.parametrize("kernel,profile", TFLITE_KERNELS)
@pytest.mark.parametrize("scale,zp", [(1.0, 0), (0.5, -3), (3 * 2.0 ** -8, 5), (0.1, 1)])
def test_tflite_quantize_edges(kernel, profile, dtype, scale, zp):
    """Every edge value at once, in one long vector (SIMD blocks and a tail) and an odd 2-D shape."""
    lo, hi = _range(dtype)
    zp = int(np.clip(zp, lo, hi))
    x = float_pool(scale, zp, dtype)
    for arr in (x, x[: x.size - x.size % 7].reshape(7, -1), x[:21], x[:0], x[:1].reshape(())):
        face = call(tfl_face.quantize, arr, scale, zp, dtype=dtype, kernel=kernel)
        core = call(refquant.quantize, arr, make_qparams(scale, zp, dtype), profile)
        assert_identical(face, core, f"tflite.quantize(kernel={kernel!r}, {dtype}, S={scale}, Z={zp})", arr)


@pytest.mark.parametrize("qdtype", sorted(TORCH_DTYPES))
@pytest.mark.parametrize("order,profile", TORCH_ORDERS)
@pytest.mark.parametrize("scale,zp", [(1.0, 1), (0.5, 0), (3 * 2.0 ** -8, 3), (0.1, 7)])
def test_pytorch_quantize_edges(order, profile, qdtype, scale, zp):
    fmt = TORCH_DTYPES[qdtype]
    x = float_pool(scale, zp, fmt)
    for arr in (x, x.reshape(1, -1), x[:33], x[:0]):
        face = call(torch_face.quantize_per_tensor, arr, scale, zp, qdtype, zero_point_order=order)
        core = call(refquant.quantize, arr, make_qparams(scale, zp, fmt), profile)
        assert_identical(face, core, f"pytorch.quantize_per_tensor({qdtype}, {order}, S={scale}, Z={zp})", arr)
        xc = np.stack([arr, -arr], axis=1)  # two channels
        face = call(torch_face.quantize_per_channel, xc, [scale, 2 * scale], [zp, 0], 1, qdtype,
                    zero_point_order=order)
        core = call(refquant.quantize, xc, make_qparams([scale, 2 * scale], [zp, 0], fmt, axis=1), profile)
        assert_identical(face, core, f"pytorch.quantize_per_channel({qdtype}, {order}, S={scale}, Z={zp})", xc)


@pytest.mark.parametrize("fmt", onnx_face.ONNX_INTEGER_TYPES)
@pytest.mark.parametrize("face_name,face,profile", ONNX_FACES, ids=[f[0] for f in ONNX_FACES])
@pytest.mark.parametrize("scale,zp", [(1.0, 0), (0.25, 1), (5 * 2.0 ** -10, 3)])
def test_onnx_quantize_linear_edges(face_name, face, profile, fmt, scale, zp):
    lo, hi = _range(fmt)
    zp = int(np.clip(zp, lo, hi))
    x = float_pool(scale, zp, fmt)
    zp_arg, out = _zp_array(np.asarray(zp), fmt)
    for arr in (x, x[:0], x[: x.size - x.size % 5].reshape(5, -1)):
        face_y = call(face.quantize_linear, arr, scale, zp_arg, output_dtype=out)
        core = call(refquant.quantize, arr, make_qparams(scale, zp, fmt), profile)
        assert_identical(face_y, core, f"{face_name}.quantize_linear({fmt}, S={scale}, Z={zp})", arr)


@pytest.mark.parametrize("x_dtype", [F16, F32, F64], ids=["float16", "float32", "float64"])
@pytest.mark.parametrize("lo,hi", [(0, 255), (-128, 127), (-(2 ** 31), 2 ** 31 - 1), (-5, 9)])
def test_pytorch_fake_quantize_edges(lo, hi, x_dtype):
    for scale, zp in [(1.0, 0), (0.5, int(np.clip(3, lo, hi))), (0.1, lo), (2.0 ** -24, hi)]:
        with np.errstate(over="ignore"):
            x = fq_pool(scale, zp, lo, hi).astype(x_dtype)
        y, mask = torch_face.fake_quantize_per_tensor_affine_cachemask(x, scale, zp, lo, hi)
        yc, mc = refquant.fake_quantize_with_mask(x, make_qparams(scale, zp, FQ_FORMAT, qmin=lo, qmax=hi),
                                                  torch_face._PROFILE)
        with np.errstate(over="ignore"):
            yc = yc.astype(x_dtype)
        assert_identical(y, yc, f"fake_quantize_per_tensor_affine(S={scale}, Z={zp}, [{lo}, {hi}], {x_dtype})", x)
        assert_identical(mask, mc, "mask", x)
        x2 = np.stack([x, -x], axis=0)
        y, mask = torch_face.fake_quantize_per_channel_affine_cachemask(x2, [scale, scale], [zp, zp], 0, lo, hi)
        yc, mc = refquant.fake_quantize_with_mask(
            x2, make_qparams([scale, scale], [zp, zp], FQ_FORMAT, axis=0, qmin=lo, qmax=hi), torch_face._PROFILE)
        with np.errstate(over="ignore"):
            yc = yc.astype(x_dtype)
        assert_identical(y, yc, f"fake_quantize_per_channel_affine(S={scale}, Z={zp}, [{lo}, {hi}], {x_dtype})", x2)
        assert_identical(mask, mc, "mask (per channel)", x2)


# --------------------------------------------------------------------------- regressions


def test_regression_pytorch_qint32_dequantize_wraps_like_the_face():
    """(a) qint32 codes near ±(2^31 - 1), zero point 3: q - Z wraps in int32 (fbgemm Dequantize), so both
    ends give about +1.07e9 (S = 0.5); the profile path and the face agree."""
    q = np.array([2 ** 31 - 1, 2 ** 31 - 2, 2 ** 31 - 3, -(2 ** 31), -(2 ** 31) + 1, -(2 ** 31) + 2, 0, 3], np.int32)
    core = refquant.dequantize(q, make_qparams(0.5, 3, "int32"), "pytorch_fbgemm")
    face = torch_face.dequantize(q, 0.5, 3)
    assert_identical(face, core, "pytorch.dequantize(qint32, S=0.5, Z=3)", q)
    assert np.all(core[:6] > 1.07e9) and core[6] == np.float32(-1.5) and core[7] == 0
    # per channel: no wrap (float(q) - float(Z) times the float64 scale)
    qc = np.stack([q, q], axis=1)
    core_c = refquant.dequantize(qc, make_qparams([0.5, 0.25], [3, 3], "int32", axis=1, scale_dtype=np.float64),
                                 "pytorch_fbgemm")
    assert_identical(torch_face.dequantize(qc, np.array([0.5, 0.25]), np.array([3, 3]), axis=1), core_c,
                     "pytorch.dequantize(qint32, per channel, Z=3)", qc)


def test_regression_pytorch_qint32_nan_is_int32_min():
    """(b) NaN quantized per tensor to qint32 gives -2147483648 through the profile and through the face."""
    x = np.array([np.nan, -np.nan, 1.0, np.inf, -np.inf], np.float32)
    for order, profile in TORCH_ORDERS:
        core = refquant.quantize(x, make_qparams(0.1, 0, "int32"), profile)
        face = torch_face.quantize_per_tensor(x, 0.1, 0, "qint32", zero_point_order=order)
        assert_identical(face, core, f"quantize_per_tensor(NaN, qint32, {order})", x)
        assert core[0] == core[1] == -(2 ** 31), core


def test_regression_tflite_optimized_simd_blocks_and_tail():
    """(c) tflite_optimized on the 21 ties -19.5 .. 0.5 (S = 1, Z = 0): two blocks of 8 round half to
    even (x * (1/S)), the 5-element tail rounds half away from zero (double division)."""
    x = np.arange(-19.5, 1.0, 1.0).astype(np.float32)
    assert x.size == 21
    core = refquant.quantize(x, make_qparams(1.0, 0, "int8"), "tflite_optimized")
    face = tfl_face.quantize(x, 1.0, 0, dtype="int8", kernel="optimized")
    assert_identical(face, core, "tflite.quantize(kernel='optimized') on -19.5..0.5", x)
    rne, rhaz = np.rint(x[:16]), np.sign(x[16:]) * np.floor(np.abs(x[16:]) + 0.5)
    np.testing.assert_array_equal(core, np.concatenate([rne, rhaz]).astype(np.int8),
                                  err_msg="blocks of 8 should be half-to-even, the tail half-away")


SATURATING = {"255 x -128": (255, -128), "255 x 127": (255, 127), "mixed": None}


def _saturating_codes(shape_x, shape_w, pattern, seed=0):
    """uint8 x and int8 w whose adjacent u8*s8 pair sums leave int16 (or, "mixed", some of them)."""
    if SATURATING[pattern] is not None:
        xv, wv = SATURATING[pattern]
        return np.full(shape_x, xv, np.uint8), np.full(shape_w, wv, np.int8)
    rng = np.random.default_rng(seed)
    return (rng.choice(np.array([0, 200, 255, 255], np.uint8), size=shape_x),
            rng.choice(np.array([-128, -127, 127, 0, 5], np.int8), size=shape_w))


@pytest.mark.parametrize("pattern", sorted(SATURATING))
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("engine,profile", TORCH_ENGINES)
def test_pytorch_layers_saturating_edges(engine, profile, isa, pattern):
    """Pair saturation (or its absence) on every fbgemm conv path and in linear, both zero-point kinds."""
    prof = get_profile(profile).with_isa(isa)
    x, w = _saturating_codes((3, 7), (5, 7), pattern)
    for wz in (np.asarray(0, np.int64), np.array([0, 1, -2, 3, 0], np.int64)):
        face = call(torch_face.linear, x, 0.05, 3, w, 0.01, wz, None, 0.5, 128, engine=engine, isa=isa)
        ops = call(layers.linear, x, np.float32(0.05), 3, w, np.float32(0.01), wz, None, np.float32(0.5), 128,
                   profile=prof, out_dtype=np.uint8)
        assert_identical(face, ops, f"pytorch.linear({engine}, {isa}, {pattern}) vs ops ({prof.isa})")
    # (C, O, groups, k, stride, pad): depthwise fast path, groupwise, pointwise, im2col
    for c, o, g, k, s, p in [(8, 8, 8, 3, 1, 1), (16, 32, 16, 5, 2, 2), (8, 8, 2, 3, 1, 1), (6, 4, 1, 1, 1, 0),
                             (4, 6, 2, 2, 1, 0), (4, 4, 4, 3, 1, 0)]:
        x, w = _saturating_codes((1, c, 7, 6), (o, c // g, k, k), pattern, seed=c + o)
        for wz in (np.asarray(0, np.int64), np.asarray(2, np.int64)):
            what = f"pytorch.conv2d({engine}, {isa}, {pattern}, C={c}, O={o}, groups={g}, k={k}, wz={int(wz)})"
            face = call(torch_face.conv2d, x, 0.05, 3, w, 0.01, wz, None, 0.5, 128, stride=s, padding=p, groups=g,
                        engine=engine, isa=isa)
            path = torch_face.fbgemm_conv_path(c, o, (k, k), (s, s), (p, p), (1, 1), g)
            ops = call(layers.conv2d, x, np.float32(0.05), 3, w, np.float32(0.01), wz, None, np.float32(0.5), 128,
                       profile=prof, strides=s, pads=p, groups=g, k_order="hwc",
                       family="depthwise" if path == "depthwise" else "conv", out_dtype=np.uint8)
            if onednn_refusal(engine, prof, g, wz, face, ops):
                continue
            assert_identical(face, ops, what + f" [fbgemm path {path}] vs ops ({prof.isa})")


@pytest.mark.parametrize("pattern", sorted(SATURATING))
@pytest.mark.parametrize("face_name,isa", LAYER_CASES, ids=[f"{f}-{i}" for f, i in LAYER_CASES])
def test_qlinear_saturating_edges(face_name, isa, pattern):
    """QLinearMatMul and QLinearConv (regular, depthwise with multiplier 1, depthwise with unequal
    weight zero points, multiplier 2) on pair-saturating codes."""
    face_mod = ort_face if face_name == "onnxruntime" else onnx_face
    kw_isa = {"isa": isa} if face_name == "onnxruntime" else {}
    prof = _layer_profile(face_name, isa)
    a, b = _saturating_codes((3, 9), (9, 4), pattern)
    face = call(face_mod.qlinear_matmul, a, np.float32(0.05), np.uint8(3), b, np.float32(0.01), np.int8(0),
                np.float32(0.5), np.uint8(128), **kw_isa)
    ops = call(layers.linear, a, np.float32(0.05), 3, np.ascontiguousarray(b.T), np.float32(0.01), 0, None,
               np.float32(0.5), 128, profile=prof, out_dtype=np.uint8)
    assert_identical(face, ops, f"{face_name}.qlinear_matmul({isa}, {pattern}) vs ops ({prof.isa})")
    for c, o, g, wz in [(4, 6, 1, np.int8(0)), (4, 4, 4, np.int8(0)), (4, 4, 4, np.array([0, 1, 0, 2], np.int8)),
                        (4, 8, 4, np.int8(1)), (6, 6, 2, np.int8(0))]:
        x, w = _saturating_codes((1, c, 6, 5), (o, c // g, 3, 3), pattern, seed=c * o)
        face = call(face_mod.qlinear_conv, x, np.float32(0.05), np.uint8(3), w, np.float32(0.01), wz,
                    np.float32(0.5), np.uint8(128), None, pads=[1, 0, 1, 2], group=g, **kw_isa)
        wz64 = np.asarray(wz, np.int64)
        family, k_order = None, None  # the profile's choice (see test_qlinear_conv)
        ops = call(layers.conv2d, x, np.float32(0.05), 3, w, np.float32(0.01), wz64, None, np.float32(0.5), 128,
                   profile=prof, pads=(1, 0, 1, 2), groups=g, layout="NCHW", k_order=k_order, family=family,
                   out_dtype=np.uint8)
        assert_identical(face, ops, f"{face_name}.qlinear_conv({isa}, {pattern}, C={c}, O={o}, groups={g}, "
                                    f"wz={wz64.tolist()}) vs ops ({prof.isa}, {family})")
