"""Build ``refquant/data/digits.npz`` from scikit-learn's copy of the UCI digits.

This script documents, and can repeat, how the packaged file was made. The loader
(:func:`refquant.data.load_digits`) never imports it and never needs the network.

How ``digits.npz`` was produced (2026, scikit-learn 1.9.1 wheel):

    pip download --no-deps -d /tmp/skl scikit-learn
    python -m refquant.data.build_digits /tmp/skl/scikit_learn-*.whl

The source is ``sklearn/datasets/data/digits.csv.gz`` read out of the wheel with
:mod:`zipfile` (scikit-learn itself is not installed or imported). Its sha256 is
checked against :data:`SOURCE_SHA256`; the file has not changed in scikit-learn for
many releases, but if it ever does the script stops rather than silently producing
a different dataset. ``--check`` rebuilds in memory and compares with the packaged
file array by array.

The csv holds 1,797 rows of 65 integers: 64 pixels (row-major 8×8, values 0..16)
then the label 0..9. The stratified split (60 / 20 / 20 per class, seed
:data:`SPLIT_SEED`) is computed here once and stored as index arrays, so it never
changes with the NumPy version that later *loads* the file.

Archive layout (an ordinary ``.npz``; every member a plain, non-pickled ``.npy``):

| key | dtype | shape | meaning |
|---|---|---|---|
| ``format_version`` | int64 | () | :data:`FORMAT_VERSION` |
| ``images`` | uint8 | (1797, 8, 8) | pixel counts 0..16 |
| ``labels`` | uint8 | (1797,) | digit 0..9 |
| ``train_idx`` / ``val_idx`` / ``test_idx`` | int32 | (n,) | sorted row indices |
| ``source_sha256`` | <U64 | () | sha256 of the source ``digits.csv.gz`` |

The zip members carry a fixed timestamp so the same NumPy/zlib produce the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
SOURCE_MEMBER = "sklearn/datasets/data/digits.csv.gz"
SOURCE_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SPLIT_SEED = 20260101
OUTPUT = Path(__file__).with_name("digits.npz")


def read_source(path: str | Path) -> bytes:
    """Return the bytes of ``digits.csv.gz`` from a scikit-learn wheel, or the file itself."""
    path = Path(path)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(SOURCE_MEMBER)
    return path.read_bytes()


def parse_csv(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse the gzipped csv into ``images`` (1797, 8, 8) uint8 and ``labels`` (1797,) uint8."""
    text = gzip.decompress(blob).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)  # (1797, 65) int64
    if table.shape != (1797, 65):
        raise ValueError(f"expected a (1797, 65) table, got {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError("pixels must lie in [0, 16] and labels in [0, 9]")
    images = pixels.reshape(-1, 8, 8).astype(np.uint8)  # (1797, 8, 8) uint8
    return images, labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, ...]:
    """Split row indices 60 / 20 / 20 within each class.

    For a class with $n_c$ rows, validation and test each take
    $\\lfloor (n_c + 2) / 5 \\rfloor$ rows (the nearest integer to $n_c / 5$) and
    training takes the rest, after one ``np.random.default_rng(seed).permutation``
    per class, in class order. Each returned index array is sorted ascending.

    Returns:
        ``(train_idx, val_idx, test_idx)``, each int32.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c in range(int(labels.max()) + 1):
        rows = rng.permutation(np.flatnonzero(labels == c))  # (n_c,) int64
        n_hold = (len(rows) + 2) // 5
        parts[0].append(rows[2 * n_hold:])
        parts[1].append(rows[:n_hold])
        parts[2].append(rows[n_hold:2 * n_hold])
    return tuple(np.sort(np.concatenate(p)).astype(np.int32) for p in parts)


def build_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """All arrays of ``digits.npz`` from the source bytes (checks the sha256 first)."""
    digest = hashlib.sha256(blob).hexdigest()
    if digest != SOURCE_SHA256:
        raise ValueError(f"source sha256 must be {SOURCE_SHA256}, got {digest}")
    images, labels = parse_csv(blob)
    train_idx, val_idx, test_idx = stratified_split(labels)
    return {
        "format_version": np.asarray(FORMAT_VERSION, dtype=np.int64),
        "images": images,
        "labels": labels,
        "train_idx": train_idx,
        "val_idx": val_idx,
        "test_idx": test_idx,
        "source_sha256": np.asarray(digest),
    }


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` with fixed member timestamps (reproducible bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value, order="C"), allow_pickle=False)
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="scikit-learn wheel (.whl) or digits.csv.gz")
    parser.add_argument("--output", default=str(OUTPUT), help="default: %(default)s")
    parser.add_argument("--check", action="store_true",
                        help="compare with the existing output instead of writing it")
    args = parser.parse_args(argv)
    arrays = build_arrays(read_source(args.source))
    if args.check:
        with np.load(args.output, allow_pickle=False) as packaged:
            same = set(packaged.files) == set(arrays) and all(
                packaged[k].dtype == v.dtype and np.array_equal(packaged[k], v)
                for k, v in arrays.items())
        print("OK: packaged file matches the source" if same else "NOT OK: packaged file differs")
        return 0 if same else 1
    write_npz(args.output, arrays)
    sizes = {k: len(arrays[k]) for k in ("train_idx", "val_idx", "test_idx")}
    print(f"wrote {args.output}: {len(arrays['labels'])} images, split {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
