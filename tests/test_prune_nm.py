"""refquant.prune.nm: N:M masks (2:4) along the reduction axis, the checker and its offending groups."""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn, prune
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.models import load_reference_model


def nm_oracle(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Group by group, written out: row o = output channel, group g = columns g·m ... g·m + m - 1 of the
    C-order flattening; keep the n largest |w|, the lower index on ties; a short last group keeps min(n, r)."""
    rows = np.abs(w.reshape(w.shape[0], -1).astype(np.float64))
    keep = np.zeros(rows.shape, bool)
    for o in range(rows.shape[0]):
        for start in range(0, rows.shape[1], m):
            group = list(range(start, min(start + m, rows.shape[1])))
            ranked = sorted(group, key=lambda i: (-rows[o, i], i))
            keep[o, ranked[:n]] = True
    return keep.reshape(w.shape)


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8), (3, 4), (4, 4)])
def test_nm_masks_on_the_mlp_match_the_group_by_group_oracle(n, m):
    model = load_reference_model("mlp")
    masks = prune.nm_masks(model, n, m)
    layers = dict(model.named_modules())
    for name, mask in masks.items():
        w = layers[name].weight.value
        assert mask.shape == w.shape and mask.dtype == np.bool_
        np.testing.assert_array_equal(mask, nm_oracle(w, n, m), err_msg=f"layer {name}, {n}:{m}")
        assert prune.check_nm(mask, n, m) and prune.check_nm(np.where(mask, w, 0), n, m)
        assert mask.sum() == w.size * n // m  # exactly n per group


def test_conv_groups_run_over_input_channels_times_kernel_in_c_order():
    conv = nn.Conv2d(4, 3, 3, rng=0)  # K = 4·3·3 = 36 per output channel
    masks = prune.nm_masks(nn.Sequential(conv), 2, 4)
    w = conv.weight.value
    np.testing.assert_array_equal(masks["0"], nm_oracle(w, 2, 4))
    # the im2col row order: group 0 of filter 0 is (c=0, taps (0,0), (0,1), (0,2), (1,0))
    g0 = np.abs(w[0, 0].reshape(-1)[:4])
    assert set(np.flatnonzero(masks["0"][0, 0].reshape(-1)[:4])) == set(np.argsort(-g0, kind="stable")[:2])


def test_a_layer_whose_row_is_not_a_multiple_of_m_is_refused_or_padded():
    cnn = load_reference_model("cnn")  # its first conv has 1·3·3 = 9 weights per filter
    with pytest.raises(ShapeError, match=r"layer '0': the reduction axis has 9 weights per output channel, not a "
                                         r"multiple of m = 4; pass pad=True"):
        prune.nm_masks(cnn, 2, 4)
    masks = prune.nm_masks(cnn, 2, 4, pad=True)
    w0 = cnn[0].weight.value
    np.testing.assert_array_equal(masks["0"], nm_oracle(w0, 2, 4))
    assert (masks["0"].reshape(16, 9).sum(axis=1) == 5).all()  # 2 + 2 + the tail's 1
    assert prune.check_nm(masks["0"], 2, 4, pad=True)
    with pytest.raises(ShapeError, match=r"w: the reduction axis has 9 weights"):
        prune.check_nm(masks["0"], 2, 4)
    others = prune.nm_masks(cnn, 2, 4, layers=["3", "7", "11"])  # or leave it out
    assert list(others) == ["3", "7", "11"]


def test_ties_keep_the_lower_index():
    lin = nn.Linear(8, 2, bias=False, rng=0)
    lin.weight.value[...] = 1.0
    mask = prune.nm_masks(nn.Sequential(lin), 2, 4)["0"]
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0, 1, 1, 0, 0]] * 2)


def test_violations_name_row_and_group_start():
    w = np.array([[1, 1, 0, 0, 1, 1, 1, 0],
                  [0, 0, 0, 0, 1, 1, 1, 1]], np.float32)
    np.testing.assert_array_equal(prune.nm_violations(w, 2, 4), [[0, 4], [1, 4]])
    assert prune.nm_violations(w, 2, 4).dtype == np.int64
    assert not prune.check_nm(w, 2, 4) and prune.check_nm(w, 3, 4) is False and prune.check_nm(w, 4, 4)
    assert prune.check_nm(w[:, :4], 2, 4)
    assert prune.nm_violations(w[:, :4], 2, 4).shape == (0, 2)
    assert not prune.check_nm(np.array([np.nan, 0, 0, np.nan, 1, 0, 0, 0]), 1, 4)  # NaN is nonzero; 1-D: one row
    assert prune.check_nm(np.array([True, False, True, False]), 2, 4)  # a mask
    np.testing.assert_array_equal(prune.nm_violations(np.ones((2, 1, 3, 3)), 2, 4, pad=True),
                                  [[0, 0], [0, 4], [1, 0], [1, 4]])  # the tail group (1 weight) is fine


@pytest.mark.parametrize("n, m, err, msg", [
    (5, 4, QuantizationValueError, r"n must be in \[1, m\] = \[1, 4\], got 5"),
    (0, 4, QuantizationValueError, r"n must be an integer >= 1, got 0"),
    (2, 0, QuantizationValueError, r"m must be an integer >= 1, got 0"),
    (2.0, 4, QuantizationTypeError, r"n must be an integer"),
    (2, 2 ** 40, ShapeError, r"not a multiple of m = 1099511627776"),
])
def test_bad_n_m(n, m, err, msg):
    with pytest.raises(err, match=msg):
        prune.nm_masks(load_reference_model("mlp"), n, m)
    with pytest.raises(err, match=msg.replace("layer '1'", "w")):
        prune.check_nm(np.ones((4, 8)), n, m)


def test_bad_w_and_pad():
    with pytest.raises(ShapeError, match=r"w must be a non-empty array"):
        prune.check_nm(np.zeros((0, 4)), 2, 4)
    with pytest.raises(ShapeError, match=r"w must be a non-empty array"):
        prune.nm_violations(np.float32(1.0), 2, 4)
    with pytest.raises(QuantizationTypeError, match=r"w must be a numeric array"):
        prune.check_nm(np.array(["a", "b", "c", "d"]), 2, 4)
    with pytest.raises(QuantizationTypeError, match=r"pad must be a bool"):
        prune.nm_masks(load_reference_model("mlp"), 2, 4, pad="yes")
    assert prune.check_nm(np.ones((1, 8)), 2, 4, pad=True) is False
    assert prune.nm_violations(np.ones((1, 3)), 2, 2 ** 40, pad=True).tolist() == [[0, 0]]  # no huge padding
