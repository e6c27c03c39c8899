"""Tests for exercise 12. DO NOT EDIT: edit pruning.py, then run ``python -m exercises 12``.

First values you can check by hand, then your functions against ``refquant.prune`` on weights full
of equal magnitudes (where only the tie rule decides): TFMOT's kept count, magnitude masks per layer
and global, N:M masks and the N:M check, and the bytes of ``refquant.prune.sparse`` storage.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import nn, prune
from refquant.prune.sparse import storage_table

ex = load_exercise(__file__, "pruning.py")


def _model(weights):
    """A refquant.nn model whose Linear (2-D) and Conv2d (4-D) layers hold ``weights``, named "0", "1", ..."""
    layers = []
    for w in weights:
        if w.ndim == 2:
            layer = nn.Linear(w.shape[1], w.shape[0], rng=0)
        else:
            layer = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], rng=0)
        layer.weight.value[...] = w
        layers.append(layer)
    return nn.Sequential(*layers)


def _tied(rng, shape):
    """float32 weights with few distinct magnitudes: ties everywhere."""
    return (rng.integers(-3, 4, shape) * rng.choice([0.25, 1.0])).astype(np.float32)


def _first_difference(got, want):
    i = tuple(int(j) for j in np.argwhere(np.asarray(got) != want)[0])
    return f"first difference at index {i}: got {np.asarray(got)[i]}, want {want[i]}"


@pytest.mark.parametrize("n, s, want, why", [
    (8, 0.5, 4, "8 * 0.5 = 4"),
    (9, 0.5, 4, "4.5 rounds half to EVEN: np.rint, not floor(x + 0.5)"),
    (3, 0.5, 2, "1.5 rounds half to even: 2"),
    (10, 0.85, 1, "in float32, 10 * (1 - 0.85) = 1.4999998: compute in float32, not float64"),
    (15, 0.9, 2, "in float32, 15 * (1 - 0.9) = 1.5000004: compute in float32, not float64"),
    (10, 0.99, 1, "at least one weight is always kept"),
    (7, 0.0, 7, "sparsity 0 keeps everything"),
])
def test_kept_count_by_hand(n, s, want, why):
    got = ex.kept_count(n, s)
    assert isinstance(got, int), f"return a Python int, got {type(got).__name__}"
    assert got == want, f"kept_count({n}, {s}): got {got}, want {want} ({why})"


def test_kept_count_matches_refquant():
    rng = np.random.default_rng(12)
    cases = [(n, s / 100) for n in range(1, 120) for s in range(0, 100, 3)]
    cases += [(int(rng.integers(1, 100_000)), float(rng.random())) for _ in range(500)]
    for n, s in cases:
        want = prune.kept_count(n, s)
        assert ex.kept_count(n, s) == want, f"kept_count({n}, {s!r}): got {ex.kept_count(n, s)}, want {want}"


def test_magnitude_mask_by_hand():
    w = np.array([[0.5, -0.1, 0.3, -0.5],
                  [0.2, 0.5, -0.3, 0.05]], np.float32)
    got = ex.magnitude_mask(w, 0.5)
    assert np.asarray(got).dtype == np.bool_ and np.shape(got) == w.shape, "return a bool array of w's shape"
    want = np.array([[True, False, True, True], [False, True, False, False]])
    np.testing.assert_array_equal(got, want, err_msg="keep the 4 largest |w|: 0.5, -0.5, 0.5, then the FIRST 0.3 "
                                                     "(|-0.3| ties with it; the earlier one in C order wins)")
    ones = np.ones((3, 3), np.float32)
    got = ex.magnitude_mask(ones, 0.5)
    assert int(np.sum(got)) == 4, (f"all 9 weights tie: keep exactly k = 4 of them, got {int(np.sum(got))} "
                                   f"(a threshold |w| >= t keeps every tied weight)")
    np.testing.assert_array_equal(got, np.arange(9).reshape(3, 3) < 4, err_msg="ties: the first four in C order")


@pytest.mark.parametrize("shape", [(4, 6), (16, 9), (3, 2, 3, 3), (8, 4, 1, 1)])
def test_magnitude_mask_matches_refquant(shape):
    rng = np.random.default_rng(sum(shape))
    for s in (0.0, 0.3, 0.5, 0.75, 0.9, 0.99):
        w = _tied(rng, shape)
        want = prune.magnitude_masks(_model([w]), s)["0"]
        got = ex.magnitude_mask(w, s)
        assert np.shape(got) == want.shape, f"shape {np.shape(got)}, want {want.shape}"
        assert np.array_equal(got, want), f"shape {shape}, sparsity {s}: " + _first_difference(got, want)


def test_global_magnitude_masks_by_hand():
    a = np.array([[1.0, 3.0]], np.float32)
    b = np.array([[3.0, 2.0, 0.5, 4.0]], np.float32)
    got = ex.global_magnitude_masks([a, b], 2 / 3)             # 6 weights: k = round(6 / 3) = 2
    assert isinstance(got, list) and len(got) == 2, "return a list with one mask per weight"
    np.testing.assert_array_equal(got[0], [[False, True]],
                                  err_msg="4 first, then one of the two 3s: the one in the EARLIER layer")
    np.testing.assert_array_equal(got[1], [[False, False, False, True]])
    got = ex.global_magnitude_masks([a, b], 0.5)
    assert sum(int(np.sum(m)) for m in got) == 3, "one ranking over all weights: 3 of 6 kept in total"


def test_global_magnitude_masks_match_refquant():
    rng = np.random.default_rng(120)
    for _ in range(10):
        weights = [_tied(rng, (8, 6)), _tied(rng, (5, 8)), _tied(rng, (4, 5, 3, 3)) * 0.5]
        model = _model(weights)
        for s in (0.2, 0.5, 0.8, 0.95):
            want = prune.magnitude_masks(model, s, scope="global")
            got = ex.global_magnitude_masks(weights, s)
            for i, (g, w) in enumerate(zip(got, want.values())):
                assert np.shape(g) == w.shape, f"layer {i}: shape {np.shape(g)}, want {w.shape}"
                assert np.array_equal(g, w), (f"sparsity {s}, layer {i}: " + _first_difference(g, w)
                                              + " (one threshold over all layers; ties: earlier layer first)")


def test_nm_mask_by_hand():
    w = np.array([[0.1, -0.7, 0.4, 0.2, 0.3, 0.3, -0.9, 0.0]], np.float32)
    got = ex.nm_mask(w, 2, 4)
    assert np.asarray(got).dtype == np.bool_ and np.shape(got) == w.shape, "return a bool array of w's shape"
    np.testing.assert_array_equal(got, [[False, True, True, False, True, False, True, False]],
                                  err_msg="each group of 4 keeps its 2 largest |w|; 0.3 = 0.3: the lower index")


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8), (1, 2), (3, 3)])
def test_nm_mask_matches_refquant(n, m):
    rng = np.random.default_rng(10 * n + m)
    for shape in [(6, 4 * m), (3, m, 1, 1), (5, 2 * m, 1, 1)]:
        w = _tied(rng, shape)
        want = prune.nm_masks(_model([w]), n, m)["0"]
        got = ex.nm_mask(w, n, m)
        assert np.shape(got) == want.shape, f"shape {np.shape(got)}, want {want.shape}"
        assert np.array_equal(got, want), f"{n}:{m}, shape {shape}: " + _first_difference(got, want)
        assert int(np.sum(got)) == w.size // m * n, "every group keeps exactly n"
    w = _tied(rng, (4, 2, 2, 2))                               # K = 8 per filter: flattened (c, i, j)
    np.testing.assert_array_equal(ex.nm_mask(w, 2, 4), prune.nm_masks(_model([w]), 2, 4)["0"],
                                  err_msg="a Conv2d weight: groups run along w.reshape(O, -1)")


def test_is_nm_sparse_by_hand():
    assert ex.is_nm_sparse(np.array([[0, 5, 0, -3], [7, 0, 2, 0]], np.int8), 2, 4) is True
    assert ex.is_nm_sparse(np.array([[1, 5, 0, -3]], np.int8), 2, 4) is False, "three nonzeros in a group of 4"
    assert ex.is_nm_sparse(np.array([[1, 1, 0, 0, 0, 0, 1, 1]], np.float32), 2, 4) is True
    assert ex.is_nm_sparse(np.array([[0, 1, 1, 1, 0, 0, 0, 0]], np.float32), 2, 4) is False, \
        "groups are [0, 4) and [4, 8), not any 4 consecutive entries: [0, 1, 1, 1] has 3"
    assert ex.is_nm_sparse(np.array([[True, False, True, False]]), 2, 4) is True, "a boolean mask works too"


def test_is_nm_sparse_matches_refquant():
    rng = np.random.default_rng(1212)
    for _ in range(300):
        n, m = [(2, 4), (1, 4), (4, 8), (1, 2)][int(rng.integers(4))]
        w = rng.integers(-1, 2, (int(rng.integers(1, 6)), m * int(rng.integers(1, 5))))
        w = w * (rng.random(w.shape) < rng.choice([0.3, 0.5, 0.7]))
        for a in (w.astype(np.float32), w.astype(np.int8), w != 0):
            assert ex.is_nm_sparse(a, n, m) == prune.check_nm(a, n, m), f"{n}:{m}, w =\n{a}"


def test_storage_bytes_by_hand():
    w = np.array([[0, 5, 0, -3],
                  [0, 0, 0, 0],
                  [7, 0, 2, 0]], np.int8)
    got = ex.storage_bytes(w)
    assert isinstance(got, dict) and set(got) == {"dense", "csr", "bitmask", "2:4"}, \
        'return {"dense": ..., "csr": ..., "bitmask": ..., "2:4": ...}'
    assert got["dense"] == 12
    assert got["csr"] == 12, "CSR: 4 values + 4 uint8 columns + 4 uint8 row pointers (O + 1 = 4)"
    assert got["bitmask"] == 7, "bitmask: 4 values + one byte of bits per row (ceil(4 / 8) = 1)"
    assert got["2:4"] == 8, "2:4: 3 rows x 1 group x 2 values = 6 value bytes, + 6 positions x 2 bits = 2 bytes"
    got = ex.storage_bytes(w.astype(np.float32))
    assert (got["dense"], got["csr"], got["bitmask"], got["2:4"]) == (48, 24, 19, 26), \
        "float32 values are 4 bytes each; the index and metadata bytes do not change"
    assert ex.storage_bytes(np.array([[1, 2, 3, 0]], np.int8))["2:4"] is None, "not 2:4 sparse: None"


@pytest.mark.parametrize("shape", [(3, 8), (16, 64), (10, 300), (64, 9), (4, 70000), (256, 1024)])
def test_storage_bytes_match_refquant(shape):
    rng = np.random.default_rng(shape[0] * shape[1] % 1000)
    for dtype in (np.int8, np.float32):
        for s in (0.0, 0.5, 0.9, 0.999):
            w = rng.integers(-127, 128, shape).astype(dtype)
            w[rng.random(shape) < s] = 0
            want = storage_table(w)["bytes"]
            got = ex.storage_bytes(w)
            assert got == want, (f"{np.dtype(dtype).name} {shape}, {int(np.count_nonzero(w))} nonzeros: got {got}, "
                                 f"refquant stores {want}; index widths: uint8/uint16/uint32 for K - 1 and for nnz")
        if shape[1] % 4 == 0 or shape[1] < 100:                # a 2:4-sparse weight (last group padded)
            w = rng.integers(-127, 128, shape).astype(np.int8)
            G = -(-shape[1] // 4)
            padded = np.zeros((shape[0], G * 4), np.int8)
            padded[:, :shape[1]] = w
            groups = padded.reshape(shape[0], G, 4)
            np.put_along_axis(groups, np.argsort(rng.random(groups.shape), axis=2)[:, :, :2], 0, axis=2)
            w = np.ascontiguousarray(groups.reshape(shape[0], -1)[:, :shape[1]])
            assert ex.storage_bytes(w) == storage_table(w)["bytes"], f"2:4 weight {shape}: got {ex.storage_bytes(w)}"
