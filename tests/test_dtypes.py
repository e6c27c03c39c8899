"""Integer formats: ranges, range variants, and 4-/2-bit packing (ONNX nibble order)."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.dtypes import (
    FORMATS,
    IntFormat,
    get_format,
    pack_int2,
    pack_int4,
    quant_range,
    unpack_int2,
    unpack_int4,
)
from refquant.backends.onnxruntime import reduced_range
from refquant.errors import QuantizationTypeError, QuantizationValueError

# pure arithmetic tests carry the kernels mark one by one: the conformance ones must not
# (CI reruns `-m kernels` with NUMBA_DISABLE_JIT=1)

# name: (bits, signed, qmin, qmax, numpy dtype) -- written out, not computed
TABLE = {
    "int2": (2, True, -2, 1, np.int8),
    "uint2": (2, False, 0, 3, np.uint8),
    "int4": (4, True, -8, 7, np.int8),
    "uint4": (4, False, 0, 15, np.uint8),
    "int8": (8, True, -128, 127, np.int8),
    "uint8": (8, False, 0, 255, np.uint8),
    "int16": (16, True, -32768, 32767, np.int16),
    "uint16": (16, False, 0, 65535, np.uint16),
    "int32": (32, True, -2147483648, 2147483647, np.int32),
}


@pytest.mark.kernels
@pytest.mark.parametrize("name", sorted(TABLE))
def test_format_table(name):
    bits, signed, qmin, qmax, dtype = TABLE[name]
    f = get_format(name)
    assert isinstance(f, IntFormat)
    assert (f.name, f.bits, f.signed, f.qmin, f.qmax, f.dtype) == (name, bits, signed, qmin, qmax, np.dtype(dtype))
    assert f.packed == (bits < 8)
    assert quant_range(name) == (qmin, qmax)
    # the storage dtype holds the whole range
    info = np.iinfo(f.dtype)
    assert info.min <= qmin and qmax <= info.max
    assert get_format(f) is f
    assert get_format(name.upper()) is f


@pytest.mark.kernels
def test_formats_registry_is_complete():
    assert set(FORMATS) == set(TABLE)


@pytest.mark.parametrize("alias,name", [("qint8", "int8"), ("quint8", "uint8"), ("qint32", "int32"),
                                        ("s8", "int8"), ("u8", "uint8"), ("s16", "int16"),
                                        ("u16", "uint16"), ("s4", "int4"), ("u4", "uint4")])
@pytest.mark.kernels
def test_aliases(alias, name):
    assert get_format(alias) is FORMATS[name]


@pytest.mark.parametrize("dtype,name", [(np.int8, "int8"), (np.uint8, "uint8"), (np.int16, "int16"),
                                        (np.uint16, "uint16"), (np.int32, "int32"),
                                        (np.dtype("uint8"), "uint8")])
@pytest.mark.kernels
def test_from_numpy_dtype(dtype, name):
    assert get_format(dtype) is FORMATS[name]


@pytest.mark.kernels
@pytest.mark.parametrize("bad", ["int3", "float8", "", "int64"])
def test_unknown_name(bad):
    with pytest.raises(QuantizationValueError, match="must be one of"):
        get_format(bad)


@pytest.mark.kernels
@pytest.mark.parametrize("bad", [np.float32, np.int64, np.uint64, bool, np.dtype("float16")])
def test_dtype_without_format(bad):
    with pytest.raises(QuantizationValueError, match="integer format"):
        get_format(bad)


@pytest.mark.kernels
@pytest.mark.parametrize("bad", [None, 5, 1.5, object()])
def test_non_format_type(bad):
    with pytest.raises(QuantizationTypeError):
        get_format(bad)


@pytest.mark.kernels
def test_error_names_the_argument():
    with pytest.raises(QuantizationValueError, match=r"^fmt must be one of .* got 'int9'"):
        get_format("int9", name="fmt")


# ---------------------------------------------------------------- range variants

@pytest.mark.parametrize("name,want", [("int8", (-127, 127)), ("int16", (-32767, 32767)), ("int4", (-7, 7)),
                                       ("uint8", (1, 255)), ("int2", (-1, 1)), ("int32", (-2 ** 31 + 1, 2 ** 31 - 1))])
@pytest.mark.kernels
def test_narrow(name, want):
    assert quant_range(name, narrow=True) == want


# PyTorch: qmin // 2, qmax // 2 (torch/ao/quantization/utils.py); ORT: a fixed table
PYTORCH_RR = {"uint8": (0, 127), "int8": (-64, 63), "uint16": (0, 32767), "int16": (-16384, 16383),
              "uint4": (0, 7), "int4": (-4, 3), "int32": (-2 ** 30, 2 ** 30 - 1)}
ORT_RR = {"uint8": (0, 127), "int8": (-64, 64), "uint16": (0, 32767), "int16": (-16384, 16384),
          "uint4": (0, 7), "int4": (-4, 3)}


@pytest.mark.kernels
@pytest.mark.parametrize("name", sorted(PYTORCH_RR))
def test_reduce_range_pytorch(name):
    assert quant_range(name, reduce_range=True) == PYTORCH_RR[name]
    assert quant_range(name, reduce_range=True) == PYTORCH_RR[name]


@pytest.mark.kernels
@pytest.mark.parametrize("name", sorted(ORT_RR))
def test_reduce_range_onnxruntime(name):
    assert reduced_range(name) == ORT_RR[name]


@pytest.mark.kernels
def test_reduce_range_tables_differ_where_documented():
    diff = {n for n in ORT_RR if ORT_RR[n] != PYTORCH_RR[n]}
    assert diff == {"int8", "int16"}


@pytest.mark.conformance
def test_reduce_range_onnxruntime_matches_the_tool():
    qu = pytest.importorskip("onnxruntime.quantization.quant_utils")
    from onnx import TensorProto
    types = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8, "uint16": TensorProto.UINT16,
             "int16": TensorProto.INT16, "uint4": TensorProto.UINT4, "int4": TensorProto.INT4}
    for name, t in types.items():
        lo, hi = qu.get_qmin_qmax_for_qType(t, reduce_range=True)
        assert reduced_range(name) == (int(lo), int(hi)), name
        lo, hi = qu.get_qmin_qmax_for_qType(t)
        assert quant_range(name) == (int(lo), int(hi)), name


@pytest.mark.kernels
def test_full_range_is_default():
    assert quant_range("int8", reduce_range=None) == quant_range("int8", reduce_range=False) == (-128, 127)


@pytest.mark.kernels
def test_range_errors():
    with pytest.raises(QuantizationTypeError, match="reduce_range must be a bool"):
        quant_range("int8", reduce_range="pytorch")  # named after arithmetic now: True halves both ends
    with pytest.raises(QuantizationValueError, match="narrow and reduce_range"):
        quant_range("int8", narrow=True, reduce_range=True)
    with pytest.raises(QuantizationValueError, match="fmt must be one of"):
        reduced_range("int32")
    with pytest.raises(QuantizationValueError):
        quant_range("int9")


# ---------------------------------------------------------------- packing

@pytest.mark.kernels
def test_onnx_nibble_order():
    """ONNX int4.md: pack(x, y) = (y << 4) | (x & 0x0F); the first element is the low nibble."""
    np.testing.assert_array_equal(pack_int4(np.array([1, 2])), np.array([0x21], np.uint8))
    np.testing.assert_array_equal(pack_int4(np.array([-1, 7], np.int8)), np.array([0x7F], np.uint8))
    np.testing.assert_array_equal(pack_int4(np.array([-8, 0, 3], np.int8)), np.array([0x08, 0x03], np.uint8))
    np.testing.assert_array_equal(pack_int4(np.array([15, 1], np.uint8)), np.array([0x1F], np.uint8))
    np.testing.assert_array_equal(pack_int2(np.array([1, 0, -1, -2], np.int8)), np.array([0b10_11_00_01], np.uint8))
    np.testing.assert_array_equal(pack_int2(np.array([3, 2, 1], np.uint8)), np.array([0b00_01_10_11], np.uint8))


@pytest.mark.kernels
def test_unpack_hand_values():
    np.testing.assert_array_equal(unpack_int4(np.array([0x21], np.uint8), 2, signed=True), [1, 2])
    np.testing.assert_array_equal(unpack_int4(np.array([0xF8], np.uint8), 2, signed=True), [-8, -1])
    np.testing.assert_array_equal(unpack_int4(np.array([0xF8], np.uint8), 2, signed=False), [8, 15])
    np.testing.assert_array_equal(unpack_int4(np.array([0xF8], np.uint8), 1, signed=True), [-8])
    np.testing.assert_array_equal(unpack_int2(np.array([0b10_11_00_01], np.uint8), 4, signed=True), [1, 0, -1, -2])


@pytest.mark.kernels
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 33])
def test_int4_round_trip(signed, n):
    rng = np.random.default_rng(n)
    dt = np.int8 if signed else np.uint8
    v = rng.integers(-8 if signed else 0, 8 if signed else 16, n).astype(dt)
    packed = pack_int4(v, signed=signed)
    assert packed.dtype == np.uint8 and packed.shape == ((n + 1) // 2,)
    out = unpack_int4(packed, n, signed=signed)
    assert out.dtype == np.dtype(dt)
    np.testing.assert_array_equal(out, v)
    if n % 2:  # odd count: the pad nibble is zero
        assert packed[-1] >> 4 == 0


@pytest.mark.kernels
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 13])
def test_int2_round_trip(signed, n):
    rng = np.random.default_rng(100 + n)
    dt = np.int8 if signed else np.uint8
    v = rng.integers(-2 if signed else 0, 2 if signed else 4, n).astype(dt)
    packed = pack_int2(v, signed=signed)
    assert packed.shape == ((n + 3) // 4,)
    np.testing.assert_array_equal(unpack_int2(packed, n, signed=signed), v)


@pytest.mark.kernels
def test_pack_full_code_space():
    """All 256 bytes unpack and repack to themselves."""
    b = np.arange(256, dtype=np.uint8)
    for signed in (True, False):
        np.testing.assert_array_equal(pack_int4(unpack_int4(b, 512, signed=signed), signed=signed), b)
        np.testing.assert_array_equal(pack_int2(unpack_int2(b, 1024, signed=signed), signed=signed), b)


@pytest.mark.kernels
def test_pack_multidim_is_c_order():
    v = np.array([[1, 2, 3], [4, 5, 6]], np.int8)
    np.testing.assert_array_equal(pack_int4(v), np.array([0x21, 0x43, 0x65], np.uint8))


@pytest.mark.conformance
@pytest.mark.parametrize("name", ["int4", "uint4", "int2", "uint2"])
def test_pack_matches_onnx_serialization(name):
    """The bytes ONNX writes into TensorProto.raw_data for an int4/uint4/int2/uint2 array."""
    numpy_helper = pytest.importorskip("onnx.numpy_helper")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    f = get_format(name)
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 5, 8, 31):
        v = rng.integers(f.qmin, f.qmax + 1, n).astype(f.dtype)
        want = np.frombuffer(numpy_helper.from_array(v.astype(getattr(ml_dtypes, name))).raw_data, np.uint8)
        pack = pack_int4 if f.bits == 4 else pack_int2
        np.testing.assert_array_equal(pack(v, signed=f.signed), want, err_msg=f"{name} n={n}")


@pytest.mark.kernels
def test_pack_errors():
    with pytest.raises(QuantizationValueError, match=r"values must be in \[-8, 7\] for int4, got 8"):
        pack_int4(np.array([1, 8]))
    with pytest.raises(QuantizationValueError, match=r"\[0, 15\] for uint4, got 16"):
        pack_int4(np.array([16], np.uint8))
    with pytest.raises(QuantizationValueError, match=r"\[0, 15\] for uint4, got -1"):
        pack_int4(np.array([-1]), signed=False)
    with pytest.raises(QuantizationValueError, match=r"\[-2, 1\] for int2, got 2"):
        pack_int2(np.array([2]))
    with pytest.raises(QuantizationTypeError, match="integer array"):
        pack_int4(np.array([1.0, 2.0]))
    with pytest.raises(QuantizationTypeError, match="uint8"):
        unpack_int4(np.array([1, 2], np.int32), 2, signed=True)
    with pytest.raises(QuantizationValueError, match=r"count must be in \[0, 4\]"):
        unpack_int4(np.array([1, 2], np.uint8), 5, signed=True)
    with pytest.raises(QuantizationValueError, match="count"):
        unpack_int2(np.array([1], np.uint8), -1, signed=True)
