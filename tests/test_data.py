"""Tests of refquant.data: embedded digits, load_npz, synthetic_images."""

from __future__ import annotations

import gzip
import hashlib
import sys
import tracemalloc

import numpy as np
import pytest

from refquant.data import (DIGITS_CLASS_COUNTS, load_digits, load_npz, synthetic_images)
from refquant.data import build_digits
from refquant.data.digits import _read_packaged
from refquant.data.synthetic import _class_factors
from refquant.errors import (FormatVersionError, QuantizationTypeError, QuantizationValueError,
                             ShapeError)

# Per-class counts of UCI optdigits.tes (= sklearn.datasets.load_digits), from the UCI page.
UCI_TEST_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
# sha256(images.tobytes() + labels.tobytes()) of the packaged arrays; changes only if the data do.
CONTENT_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"
# First and last csv rows of sklearn's digits.csv.gz (64 pixels, then the label).
FIRST_ROW = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
             0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
             0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0], 0
LAST_ROW = [0, 0, 10, 14, 8, 1, 0, 0, 0, 2, 16, 14, 6, 1, 0, 0, 0, 0, 15, 15, 8, 15, 0, 0,
            0, 0, 5, 16, 16, 10, 0, 0, 0, 0, 12, 15, 15, 12, 0, 0, 0, 4, 16, 6, 4, 16, 6, 0,
            0, 8, 16, 10, 8, 16, 8, 0, 0, 1, 8, 12, 14, 12, 1, 0], 8
SPLIT_SIZES = {"train": 1079, "val": 359, "test": 359, "all": 1797}


# --------------------------------------------------------------------------- digits

def test_digits_all_counts_and_content():
    x, y = load_digits("all", normalize=False, dtype=np.uint8)
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), UCI_TEST_CLASS_COUNTS)
    assert list(DIGITS_CLASS_COUNTS) == UCI_TEST_CLASS_COUNTS
    assert x.min() == 0 and x.max() == 16
    np.testing.assert_array_equal(x[0].ravel(), FIRST_ROW[0])
    np.testing.assert_array_equal(x[-1].ravel(), LAST_ROW[0])
    assert (y[0], y[-1]) == (FIRST_ROW[1], LAST_ROW[1])
    raw = _read_packaged()
    digest = hashlib.sha256(raw["images"].tobytes() + raw["labels"].tobytes()).hexdigest()
    assert digest == CONTENT_SHA256, "packaged digits changed; regenerate with build_digits.py"


def test_packaged_file_metadata():
    raw = _read_packaged()
    assert int(raw["format_version"]) == build_digits.FORMAT_VERSION == 1
    assert raw["images"].dtype == np.uint8 and raw["images"].shape == (1797, 8, 8)
    for key in ("train_idx", "val_idx", "test_idx"):
        assert raw[key].dtype == np.int32
        assert np.all(np.diff(raw[key]) > 0), f"{key} must be sorted and unique"
    with np.load(build_digits.OUTPUT, allow_pickle=False) as npz:
        assert str(npz["source_sha256"]) == build_digits.SOURCE_SHA256


@pytest.mark.parametrize("split", ["train", "val", "test", "all"])
def test_digits_split_sizes_and_stratification(split):
    x, y = load_digits(split)
    n = SPLIT_SIZES[split]
    assert x.shape == (n, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=10)
    expected = np.asarray(UCI_TEST_CLASS_COUNTS) * n / 1797
    assert np.all(np.abs(counts - expected) <= 1.5), (counts, expected)


def test_digits_splits_disjoint_and_cover_all():
    raw = _read_packaged()
    parts = [raw[k].astype(np.int64) for k in ("train_idx", "val_idx", "test_idx")]
    union = np.concatenate(parts)
    assert len(union) == 1797
    np.testing.assert_array_equal(np.sort(union), np.arange(1797))
    # The loader returns exactly those rows, in that order.
    x_all, y_all = load_digits("all")
    for split, rows in zip(("train", "val", "test"), parts):
        x, y = load_digits(split)
        np.testing.assert_array_equal(x.view(np.uint32), x_all[rows].view(np.uint32))
        np.testing.assert_array_equal(y, y_all[rows])


def test_digits_deterministic_and_fresh_arrays():
    x1, y1 = load_digits("train")
    x1[...] = -1.0
    y1[...] = -1
    x2, y2 = load_digits("train")
    x3, y3 = load_digits("train")
    assert x2.min() == 0.0 and y2.min() == 0, "load_digits must not hand out its cache"
    np.testing.assert_array_equal(x2.view(np.uint32), x3.view(np.uint32))
    np.testing.assert_array_equal(y2, y3)


def test_digits_options():
    raw, _ = load_digits("val", normalize=False, dtype=np.int64)
    x64, _ = load_digits("val", dtype=np.float64)
    x16, _ = load_digits("val", dtype=np.float16)
    flat, _ = load_digits("val", flatten=True)
    assert raw.dtype == np.int64 and raw.max() == 16
    # k/16 is exact in every float format, so all dtypes hold the same values.
    np.testing.assert_array_equal(x64, raw / 16.0)
    np.testing.assert_array_equal(x16.astype(np.float64), x64)
    assert x64.min() == 0.0 and x64.max() == 1.0
    assert flat.shape == (359, 64)
    np.testing.assert_array_equal(flat, x64.reshape(359, 64).astype(np.float32))


def test_digits_bad_arguments():
    with pytest.raises(QuantizationValueError, match=r"split must be one of .* got 'training'"):
        load_digits("training")
    with pytest.raises(QuantizationTypeError, match="must be floating when normalize=True"):
        load_digits("train", dtype=np.uint8)
    with pytest.raises(QuantizationTypeError, match="integer or floating"):
        load_digits("train", dtype=np.complex64)


def test_digits_needs_no_sklearn():
    assert "sklearn" not in sys.modules


def test_build_helpers_roundtrip(tmp_path):
    rows = np.array([FIRST_ROW[0] + [FIRST_ROW[1]], LAST_ROW[0] + [LAST_ROW[1]]] * 900)[:1797]
    csv = "\n".join(",".join(str(v) for v in r) for r in rows).encode()
    images, labels = build_digits.parse_csv(gzip.compress(csv))
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[1].ravel(), LAST_ROW[0])
    with pytest.raises(ValueError, match="sha256"):
        build_digits.build_arrays(gzip.compress(csv))
    train, val, test = build_digits.stratified_split(labels)
    assert len(train) + len(val) + len(test) == 1797
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    arrays = {"a": images, "b": np.asarray(3, dtype=np.int64)}
    build_digits.write_npz(tmp_path / "one.npz", arrays)
    build_digits.write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz") as npz:
        np.testing.assert_array_equal(npz["a"], images)
        assert npz["b"].shape == ()


# --------------------------------------------------------------------------- load_npz

def _save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_load_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
    y = np.array([0, 2, 1, 2, 0], dtype=np.int32)
    lx, ly = load_npz(_save(tmp_path, x=x, y=y))
    assert lx.dtype == np.float32 and ly.dtype == np.int64
    np.testing.assert_array_equal(lx.view(np.uint32), x.view(np.uint32))
    np.testing.assert_array_equal(ly, y)
    # Other keys, integer images kept as stored, unlabelled data.
    img = rng.integers(0, 256, size=(4, 8), dtype=np.uint8)
    path = _save(tmp_path, images=img, labels=np.arange(4, dtype=np.uint8))
    lx, ly = load_npz(path, x_key="images", y_key="labels")
    assert lx.dtype == np.uint8 and ly.dtype == np.int64
    lx, ly = load_npz(path, x_key="images", y_key=None)
    assert ly is None and lx.shape == (4, 8)


def test_load_npz_missing_arrays_name_present_keys(tmp_path):
    path = _save(tmp_path, images=np.zeros((2, 3)), labels=np.zeros(2, dtype=np.int64))
    with pytest.raises(FormatVersionError, match=r"x_key .* got 'x'; arrays present: \['images', 'labels'\]"):
        load_npz(path)
    with pytest.raises(FormatVersionError, match=r"y_key .* got 'y'"):
        load_npz(path, x_key="images")


@pytest.mark.parametrize("x, y, error, pattern", [
    (np.zeros((3, 4)), np.zeros(2, dtype=np.int64), ShapeError, "length 3, got 2"),
    (np.zeros((3, 4)), np.zeros(3), QuantizationTypeError, "integer class labels, got dtype float64"),
    (np.zeros(3), np.zeros(3, dtype=np.int64), ShapeError, r"rank >= 2.*got shape \(3,\)"),
    (np.zeros((0, 4)), np.zeros(0, dtype=np.int64), ShapeError, "at least one sample"),
    (np.zeros((3, 4)), np.zeros((3, 10), dtype=np.int64), ShapeError, r"1-D.*got shape \(3, 10\)"),
    (np.zeros((3, 4)), np.array([0, -1, 2]), QuantizationValueError, "labels >= 0, got -1 at index 1"),
    (np.zeros((3, 4), dtype=bool), np.zeros(3, dtype=np.int64), QuantizationTypeError, "got bool"),
    (np.zeros((3, 4), dtype=np.complex64), np.zeros(3, dtype=np.int64), QuantizationTypeError,
     "got complex64"),
])
def test_load_npz_bad_contents(tmp_path, x, y, error, pattern):
    with pytest.raises(error, match=pattern):
        load_npz(_save(tmp_path, x=x, y=y))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_npz_non_finite(tmp_path, bad):
    x = np.zeros((3, 2, 2), dtype=np.float32)
    x[1, 0, 1] = bad
    with pytest.raises(QuantizationValueError, match=r"finite, got 1 NaN/Inf values, first at index \(1, 0, 1\)"):
        load_npz(_save(tmp_path, x=x, y=np.zeros(3, dtype=np.int64)))


def test_load_npz_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros((2, 2)))
    with pytest.raises(QuantizationValueError, match="not a zip file"):
        load_npz(npy)
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2, dtype=np.int64))
    with pytest.raises(QuantizationTypeError, match="pickled object array"):
        load_npz(obj)
    with pytest.raises(QuantizationTypeError, match="x_key must be a str"):
        load_npz(obj, x_key=0)


# --------------------------------------------------------------------------- synthetic

def test_synthetic_shapes_dtypes_and_balance():
    x, y = synthetic_images(25, num_classes=10)
    assert x.shape == (25, 3, 32, 32) and x.dtype == np.float32
    assert y.shape == (25,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2])
    for dtype in (np.float16, np.float64):
        xd, yd = synthetic_images(4, (1, 5, 7), dtype=dtype)
        assert xd.shape == (4, 1, 5, 7) and xd.dtype == dtype
        np.testing.assert_array_equal(yd, synthetic_images(4, (1, 5, 7))[1])
    x0, y0 = synthetic_images(0)
    assert x0.shape == (0, 3, 32, 32) and y0.shape == (0,)


def test_synthetic_deterministic():
    a, ya = synthetic_images(40, (3, 16, 16), seed=7)
    b, yb = synthetic_images(40, (3, 16, 16), seed=7)
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    np.testing.assert_array_equal(ya, yb)
    c, _ = synthetic_images(40, (3, 16, 16), seed=8)
    assert not np.array_equal(a, c)
    d, _ = synthetic_images(40, (3, 16, 16), seed=7, task_seed=1)
    assert not np.array_equal(a, d)


def test_synthetic_patterns_unit_rms_and_independent_of_num_classes():
    x, y = synthetic_images(30, (2, 12, 9), num_classes=3, noise=0.0, dtype=np.float64)
    rms = np.sqrt((x ** 2).mean(axis=(1, 2, 3)))  # = amplitude s_i in [0.5, 1.5]
    assert np.all((rms >= 0.5) & (rms <= 1.5))
    unit = x / rms[:, None, None, None]
    for c in range(3):
        members = unit[y == c]
        np.testing.assert_allclose(members, np.broadcast_to(members[0], members.shape), atol=1e-12)
    u3, v3 = _class_factors(3, 2, 12, 9, 0, np.dtype(np.float64))
    u5, v5 = _class_factors(5, 2, 12, 9, 0, np.dtype(np.float64))
    np.testing.assert_array_equal(u3, u5[:3])
    np.testing.assert_array_equal(v3, v5[:3])


def test_synthetic_is_learnable_across_seeds():
    # Same task (task_seed), different samples (seed): nearest class mean generalizes.
    xt, yt = synthetic_images(500, (3, 16, 16), seed=0, noise=1.0)
    xe, ye = synthetic_images(200, (3, 16, 16), seed=1, noise=1.0)
    means = np.stack([xt[yt == c].mean(axis=0).ravel() for c in range(10)])  # (10, 768)
    dist = ((xe.reshape(200, 1, -1) - means[None]) ** 2).sum(axis=-1)          # (200, 10)
    accuracy = (dist.argmin(axis=1) == ye).mean()
    assert accuracy >= 0.95, f"nearest-class-mean accuracy {accuracy:.3f}"


def test_synthetic_large_images_bounded_memory():
    tracemalloc.start()
    try:
        x, y = synthetic_images(32, (3, 224, 224), seed=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (32, 3, 224, 224) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert peak < x.nbytes + 80e6, f"peak {peak / 1e6:.0f} MB for a {x.nbytes / 1e6:.0f} MB result"


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(n=-1), QuantizationValueError, "n must be >= 0, got -1"),
    (dict(n=2.5), QuantizationTypeError, "n must be an int, got float"),
    (dict(n=True), QuantizationTypeError, "n must be an int, got bool"),
    (dict(n=2, shape=(32, 32)), ShapeError, r"\(C, H, W\) tuple of 3 ints"),
    (dict(n=2, shape=(3, 0, 4)), QuantizationValueError, "shape entries must be >= 1, got 0"),
    (dict(n=2, num_classes=0), QuantizationValueError, "num_classes must be >= 1"),
    (dict(n=2, seed=-3), QuantizationValueError, "seed must be >= 0"),
    (dict(n=2, dtype=np.int8), QuantizationTypeError, "floating dtype, got int8"),
    (dict(n=2, noise=-0.1), QuantizationValueError, "noise must be a finite float >= 0"),
])
def test_synthetic_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        synthetic_images(**kwargs)
