"""QParams: validation at construction and expansion against an input shape."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.qparams import QParams, make_qparams

pytestmark = pytest.mark.kernels


def test_per_tensor_fields():
    qp = make_qparams(0.25, 3, "int8")
    assert isinstance(qp, QParams)
    assert qp.granularity == "per_tensor"
    assert qp.scale.dtype == np.float32 and qp.scale.shape == ()
    assert qp.zero_point.dtype == np.int64 and qp.zero_point.shape == ()
    assert (qp.qmin, qp.qmax, qp.fmt.name, qp.axis, qp.block_size) == (-128, 127, "int8", None, None)
    s, z = qp.expand((4, 5))
    assert s.shape == () and float(s) == 0.25 and int(z) == 3
    assert "QParams(scale=0.25, zero_point=3, fmt=int8, range=[-128, 127])" == repr(qp)


def test_scale_is_rounded_to_float32():
    qp = make_qparams(0.1, 0)  # float64 0.1 -> float32 0.1 (not equal to 0.1 in float64)
    assert qp.scale.dtype == np.float32 and qp.scale == np.float32(0.1)
    assert make_qparams(0.1, scale_dtype=np.float64).scale.dtype == np.float64


def test_zero_point_default_and_range_variants():
    assert int(make_qparams(1.0).zero_point) == 0
    qp = make_qparams(1.0, 0, "int8", narrow=True)
    assert (qp.qmin, qp.qmax) == (-127, 127)
    qp = make_qparams(1.0, 0, "int8", reduce_range=True)
    assert (qp.qmin, qp.qmax) == (-64, 63)
    qp = make_qparams(1.0, 0, "uint8", reduce_range=True)
    assert (qp.qmin, qp.qmax) == (0, 127)
    qp = make_qparams(1.0, 0, "int8", qmin=-4, qmax=3)
    assert (qp.qmin, qp.qmax) == (-4, 3)
    qp = make_qparams(1.0, 0, "int8", qmax=3)
    assert (qp.qmin, qp.qmax) == (-128, 3)


def test_zero_point_checked_against_format_not_reduced_range():
    # PyTorch's symmetric quint8 observer keeps zp = 128 under reduce_range [0, 127]
    qp = make_qparams(1.0, 128, "uint8", reduce_range=True)
    assert int(qp.zero_point) == 128


@pytest.mark.parametrize("zp", [np.int8(3), np.array(3), np.array([3]), 3.0, np.float32(-2.0)])
def test_zero_point_integer_like_accepted(zp):
    qp = make_qparams(1.0, zp, "int8")
    assert qp.zero_point.shape == () and qp.zero_point.dtype == np.int64


def test_per_axis_expand_and_negative_axis():
    qp = make_qparams([0.5, 1.0, 2.0], [1, 2, 3], "int8", axis=1)
    assert qp.granularity == "per_axis"
    s, z = qp.expand((2, 3, 4))
    assert s.shape == (1, 3, 1) and z.shape == (1, 3, 1)
    np.testing.assert_array_equal(s.ravel(), np.array([0.5, 1.0, 2.0], np.float32))
    np.testing.assert_array_equal(z.ravel(), [1, 2, 3])
    qn = make_qparams([0.5, 1.0, 2.0], [1, 2, 3], "int8", axis=-2)
    s2, z2 = qn.expand((2, 3, 4))
    np.testing.assert_array_equal(s2, s)
    np.testing.assert_array_equal(z2, z)
    s3, _ = make_qparams([1.0, 2.0, 3.0, 4.0], axis=-1).expand((2, 3, 4))
    assert s3.shape == (1, 1, 4)


def test_per_axis_scalar_zero_point_broadcasts():
    qp = make_qparams([0.5, 1.0], 4, "uint8", axis=0)
    np.testing.assert_array_equal(qp.zero_point, [4, 4])
    assert qp.zero_point.dtype == np.int64


def test_per_axis_single_channel():
    qp = make_qparams([0.5], [3], "int8", axis=0)
    s, z = qp.expand((1, 5))
    assert s.shape == (1, 1) and float(s[0, 0]) == 0.5 and int(z[0, 0]) == 3


def test_per_tensor_size_one_array_is_per_tensor():
    qp = make_qparams(np.array([0.5]), np.array([3]), "int8")
    assert qp.scale.shape == () and qp.zero_point.shape == () and qp.granularity == "per_tensor"


@pytest.mark.parametrize("d,b", [(8, 4), (7, 4), (5, 2), (9, 3), (1, 4), (6, 6), (6, 1)])
def test_per_block_expand(d, b):
    """Element i along the axis uses block i // B; the last block may be partial."""
    nb = -(-d // b)
    rng = np.random.default_rng(d * 10 + b)
    scale = rng.uniform(0.1, 2.0, (3, nb)).astype(np.float32)
    zp = rng.integers(-10, 10, (3, nb))
    qp = make_qparams(scale, zp, "int8", axis=1, block_size=b)
    assert qp.granularity == "per_block"
    s, z = qp.expand((3, d))
    assert s.shape == (3, d) and z.shape == (3, d)
    for r in range(3):
        for i in range(d):
            assert s[r, i] == scale[r, i // b] and z[r, i] == zp[r, i // b]


def test_per_block_axis0_and_negative_axis():
    scale = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)  # blocks along axis 0 of a (3, 2) input, B=2
    for axis in (0, -2):
        s, _ = make_qparams(scale, 0, "int4", axis=axis, block_size=2).expand((3, 2))
        np.testing.assert_array_equal(s, np.array([[1, 2], [1, 2], [3, 4]], np.float32))


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("scale", [0.0, -1.0, np.nan, np.inf, -np.inf, [1.0, 0.0], 1e-50, 1e39])
def test_bad_scale_values(scale):
    axis = 0 if isinstance(scale, list) else None
    with pytest.raises(QuantizationValueError, match="scale must be finite and > 0"):
        make_qparams(scale, 0, axis=axis)


@pytest.mark.parametrize("scale", ["0.5", None, [True], np.array([1 + 1j])])
def test_bad_scale_types(scale):
    with pytest.raises(QuantizationTypeError, match="scale"):
        make_qparams(scale, 0)


def test_empty_scale():
    with pytest.raises(ShapeError, match="must not be empty"):
        make_qparams(np.array([], np.float32), axis=0)


def test_scale_message_names_received_value():
    with pytest.raises(QuantizationValueError, match=r"got -2\.0$"):
        make_qparams(-2.0)


@pytest.mark.parametrize("zp,fmt,msg", [
    (300, "int8", r"zero_point must be in \[-128, 127\] for int8, got 300"),
    (-1, "uint8", r"\[0, 255\] for uint8, got -1"),
    (16, "uint4", r"\[0, 15\] for uint4, got 16"),
    (-9, "int4", r"\[-8, 7\] for int4, got -9"),
    (70000, "uint16", r"\[0, 65535\] for uint16, got 70000"),
])
def test_zero_point_out_of_range(zp, fmt, msg):
    with pytest.raises(QuantizationValueError, match=msg):
        make_qparams(1.0, zp, fmt)


@pytest.mark.parametrize("zp", [0.5, np.float32(1.25), np.nan, np.inf, "3", np.array([1 + 0j])])
def test_zero_point_not_integer(zp):
    with pytest.raises(QuantizationTypeError, match="zero_point"):
        make_qparams(1.0, zp, "int8")


def test_zero_point_shape_mismatch():
    with pytest.raises(ShapeError, match="zero_point must have the scale's shape"):
        make_qparams([1.0, 2.0, 3.0], [0, 1], axis=0)


def test_per_tensor_scale_must_be_scalar():
    with pytest.raises(ShapeError, match="per-tensor scale must be a scalar"):
        make_qparams([1.0, 2.0], 0)


def test_per_axis_scale_must_be_1d():
    with pytest.raises(ShapeError, match="per-axis scale must be 1-D"):
        make_qparams(np.ones((2, 2)), 0, axis=0)
    with pytest.raises(ShapeError):
        make_qparams(1.0, 0, axis=0)


def test_block_without_axis():
    with pytest.raises(QuantizationValueError, match="block_size needs an axis"):
        make_qparams(np.ones((2, 2)), 0, block_size=2)


@pytest.mark.parametrize("b,exc", [(0, QuantizationValueError), (-2, QuantizationValueError),
                                   (1.5, QuantizationTypeError), (True, QuantizationTypeError)])
def test_bad_block_size(b, exc):
    with pytest.raises(exc, match="block_size"):
        make_qparams(np.ones((2, 2)), 0, axis=0, block_size=b)


@pytest.mark.parametrize("axis", [1.0, "0", True])
def test_bad_axis_type(axis):
    with pytest.raises(QuantizationTypeError, match="axis"):
        make_qparams([1.0, 2.0], 0, axis=axis)


def test_bad_qmin_qmax():
    with pytest.raises(QuantizationValueError, match=r"\[qmin, qmax\] must lie inside \[-128, 127\]"):
        make_qparams(1.0, 0, "int8", qmin=-200)
    with pytest.raises(QuantizationValueError, match="qmin <= qmax"):
        make_qparams(1.0, 0, "int8", qmin=5, qmax=4)


def test_unknown_format():
    with pytest.raises(QuantizationValueError, match="fmt must be one of"):
        make_qparams(1.0, 0, "int7")


def test_expand_errors():
    qp = make_qparams([1.0, 2.0, 3.0], 0, axis=1)
    with pytest.raises(ShapeError, match=r"scale must have shape \(4,\) to match x.shape\[1\] = 4, got \(3,\)"):
        qp.expand((2, 4))
    with pytest.raises(QuantizationValueError, match="axis must be in"):
        qp.expand((3,))
    with pytest.raises(ShapeError, match="rank >= 1"):
        make_qparams([1.0], 0, axis=0).expand(())
    qb = make_qparams(np.ones((2, 2), np.float32), 0, axis=1, block_size=3)
    with pytest.raises(ShapeError, match="blocked scale must have shape"):
        qb.expand((2, 7))  # needs 3 blocks
    qb.expand((2, 6))
    qb.expand((2, 4))  # 2 blocks: 3 + 1 (partial)
