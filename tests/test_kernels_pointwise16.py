"""Kernels of the weight-free TFLite ops added for 16x8 mode, on values small enough to check by hand.

:mod:`refquant.kernels.requant_codes`, :mod:`refquant.kernels.mean`,
:mod:`refquant.kernels.elementwise_narrow` and :mod:`refquant.kernels.elementwise_add16` are element-wise
or cheap reductions with one plain NumPy implementation each (no Numba twin); LiteRT is their oracle in
``tests/test_conformance_tflite_int16_pointwise.py``. Here: the SIMD-block corner cases by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.kernels import elementwise as ew
from refquant.kernels import mean as kmean
from refquant.kernels import requant_codes as krq
from refquant.kernels.elementwise_add16 import fixed_point_add16_blocks
from refquant.kernels.elementwise_narrow import fixed_point_mul_blocks

pytestmark = pytest.mark.kernels
F32 = np.float32


def test_fixed_point_requantize_blocks_round_half_up():
    """S_x / S_y = 1/4 (q = 2^30, shift -1): (x - 0) = -2 is -0.5 after the exact SRDHM; the reference
    RDBPOT rounds it away from zero (-1), the 16-element SIMD blocks half up (0)."""
    q, shift = krq.fixed_point_requantize_params(F32(0.25), F32(1.0))
    assert (q, shift) == (2 ** 30, -1)
    x = np.full(17, -2, np.int8)
    assert krq.fixed_point_requantize(x, 0, q, shift, 0, np.int8).tolist() == [-1] * 17
    assert krq.fixed_point_requantize(x, 0, q, shift, 0, np.int8, simd_block=16).tolist() == [0] * 16 + [-1]
    # int8 -> int16 with a nonzero output zero point, and saturation at the int16 ends
    q, shift = krq.fixed_point_requantize_params(F32(1.0), F32(2.0 ** -8))
    y = krq.fixed_point_requantize(np.array([-128, 1, 127], np.int8), 1, q, shift, 5, np.int16)
    assert y.tolist() == [-32768, 5, 32261]  # -129 * 256 + 5 saturates; 0 + 5; 126 * 256 + 5


def test_shift8_requantize_by_hand():
    """m = 256 * 0.5 = 128: y = (256 Z_y + 128 (x - Z_x) + 128) >> 8, a half-up rounding."""
    m = krq.shift8_requantize_params(F32(0.05), F32(0.1))
    assert m == 128
    x = np.array([4, 5, 2, 1, -128, 127], np.int8)
    assert krq.shift8_requantize(x, 3, m, -2).tolist() == [-1, -1, -2, -3, -67, 60]  # 0.5 -> 1, -0.5 -> 0
    with pytest.raises(QuantizationValueError, match="2\\^-8, 128"):
        krq.shift8_requantize_params(F32(1.0), F32(300.0))


def test_mean_by_hand():
    """Mean of [1, 2, 3, 4] = 2.5 rounds away from zero (3; -2.5 -> -3) in the reference MEAN; the
    optimized 4-D kernel's 16-channel blocks round -2.5 half up (-2)."""
    x = np.array([[1, 2, 3, 4], [-1, -2, -3, -4]], np.int8)
    y = kmean.mean_fixed_point(x, F32(0.1), 0, F32(0.1), 0, 1)
    assert y.tolist() == [[3], [-3]]
    x4 = np.tile(np.array([-3, -3, -2, -2], np.int8).reshape(1, 2, 2, 1), (1, 1, 1, 17))
    y4 = kmean.mean_fixed_point_4d(x4, F32(0.1), 0, F32(0.1), 0)
    assert y4.shape == (1, 1, 1, 17) and y4.ravel().tolist() == [-2] * 16 + [-3]
    assert kmean.mean_axes((-1, 3, 1), 4) == (1, 3)


def test_mul_blocks_narrow_to_int16():
    """127 * 127 * 4 = 64516 leaves int16: the reference clamps 64516 + 10 to 127; a SIMD block
    saturates to 32767, adds 10 with int16 wrap-around (-32759) and saturates to -128."""
    a = np.full(3, 127, np.int8)
    q, shift = 2 ** 30, 3  # multiplier 4
    assert fixed_point_mul_blocks(a, 0, a, 0, 10, q, shift, block=2).tolist() == [-128, -128, 127]
    assert fixed_point_mul_blocks(a, 0, a, 0, 0, q, shift, block=1).tolist() == [127, 127, 127]
    u = np.full(9, 255, np.uint8)  # uint8: vqmovun_s16 saturates the wrapped value to 0
    assert fixed_point_mul_blocks(u, 0, u, 0, 10, q, shift, block=8).tolist() == [0] * 8 + [255]


def test_add16_blocks_round_each_input_once():
    """S_a = S_y = 1, S_b = fl(0.7): M_b = 1503238528, e_b = -1, M_y = 2^30, e_y = -13. For b = -3835
    (a = 0) the exact sum is -2684.49998... The reference rounds b's scaled value twice (SRDHM of
    b 2^15 is -87965695, RDBPOT by 1 gives -43982848 = -2684.5 * 2^14, an output tie rounded away
    from zero: -2685); the 16-element blocks shift first (b 2^14) and round once (-43982847: -2684).
    The 17th element is the tail: the reference formula."""
    p = ew.fixed_point_add_params(F32(1.0), F32(0.7), F32(1.0), left_shift=15)
    assert (p.b_multiplier, p.b_shift, p.output_multiplier, p.output_shift) == (1503238528, -1, 2 ** 30, -13)
    a, b = np.zeros(17, np.int16), np.full(17, -3835, np.int16)
    assert fixed_point_add16_blocks(a, b, p).tolist() == [-2684] * 16 + [-2685]
    assert ew.fixed_point_add(a, np.int16(0), b, np.int16(0), np.int16(0), p).tolist() == [-2685] * 17
    # the fused activation clamps both parts; a 2-D operand keeps its shape (C order, one flat loop)
    y = fixed_point_add16_blocks(a.reshape(1, 17), b.reshape(1, 17), p, act_min=-2684, act_max=0)
    assert y.shape == (1, 17) and y.ravel().tolist() == [-2684] * 17
    # a tiny ratio: 15 + e_b < 0 is an arithmetic right shift (flooring) before the multiply
    p = ew.fixed_point_add_params(F32(1.0), F32(2.0 ** -20), F32(1.0), left_shift=15)
    assert p.left_shift + p.b_shift < 0
    big = np.full(16, 32767, np.int16)
    assert fixed_point_add16_blocks(big, big, p).tolist() == [32767] * 16  # 32767 + 0.03


def test_add16_blocks_refuse_bad_operands():
    p = ew.fixed_point_add_params(F32(1.0), F32(0.7), F32(1.0), left_shift=15)
    x = np.zeros(16, np.int16)
    with pytest.raises(QuantizationTypeError, match="a must (be a NumPy int16|have dtype int16)"):
        fixed_point_add16_blocks(x.astype(np.int8), x, p)
    with pytest.raises(ShapeError, match="one shape"):
        fixed_point_add16_blocks(x, x[:8], p)
    with pytest.raises(QuantizationTypeError, match="left_shift 15"):
        fixed_point_add16_blocks(x, x, ew.fixed_point_add_params(F32(1.0), F32(0.7), F32(1.0)))
