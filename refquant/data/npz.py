"""Load the user's own samples and labels from a ``.npz`` archive, validated.

The archive is what ``np.savez(path, x=x, y=y)`` writes: ``x`` holds N samples on its
first axis (e.g. (N, C, H, W) images or (N, F) feature rows), ``y`` holds N integer
class labels. Everything is checked before it is returned, so a bad file fails here,
with the reason, rather than deep inside calibration or training.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib

import numpy as np

from ..errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, ShapeError

__all__ = ["load_npz"]


def _npy_header(f, key: str, path: str):
    """``(shape, fortran_order, dtype)`` from the header of the ``.npy`` member open as ``f``."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise QuantizationValueError(
        f"array {key!r} in path {path} has .npy format version {version}; versions 1.0 and 2.0 are read")


def _read_array(zf: zipfile.ZipFile, key: str, path: str, role: str) -> np.ndarray:
    """One array out of an open archive, with errors that name the key and what is there.

    The ``.npy`` header is read first and the data after it, never more bytes than the member
    holds: a header claiming a larger array than the file contains is refused before anything
    of that size is allocated (``np.load`` would allocate what the header says).
    """
    members = {name[:-4]: name for name in zf.namelist() if name.endswith(".npy")}
    if key not in members:
        raise FormatVersionError(
            f"{role} must name an array in {path}, got {key!r}; arrays present: {sorted(members)}")
    try:
        with zf.open(members[key]) as f:
            shape, fortran, dtype = _npy_header(f, key, path)
            if dtype.hasobject:  # object arrays need pickle, which is never allowed here
                raise QuantizationTypeError(f"array {key!r} in path {path} must be numeric, got a pickled object array")
            nbytes = math.prod(shape) * dtype.itemsize
            data = f.read(nbytes + 1)  # grows with what the member holds, not with what the header claims
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise QuantizationValueError(f"array {key!r} in path {path} is damaged: {exc}") from exc
    if len(data) != nbytes:
        raise QuantizationValueError(
            f"array {key!r} in path {path} is damaged: its header claims shape {shape} of {dtype} ({nbytes} bytes), "
            f"the file holds {len(data)} bytes of data")
    a = np.frombuffer(data, dtype=dtype, count=math.prod(shape)).reshape(shape, order="F" if fortran else "C")
    return np.array(a, dtype=dtype.newbyteorder("="), order="C")  # writable, native byte order


def load_npz(path: str | os.PathLike, *, x_key: str = "x",
             y_key: str | None = "y") -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``(x, y)`` from a ``.npz`` file and validate them.

    Checks, in order: the file is a ``.npz`` archive; ``x_key`` (and ``y_key``) exist;
    ``x`` is an integer or floating array of rank >= 2 with at least one sample and no
    NaN or ±Inf; ``y`` is a 1-D integer array of non-negative labels with as many
    entries as ``x`` has samples. Pickled (object) arrays are never loaded.

    Args:
        path: File written by ``np.savez`` / ``np.savez_compressed``.
        x_key: Name of the samples array in the archive.
        y_key: Name of the labels array, or ``None`` for unlabelled data (e.g. a
            calibration set), in which case ``y`` is returned as ``None``.

    Returns:
        ``(x, y)``: ``x`` (N, ...) with its stored dtype (a float or integer dtype,
        unchanged so that e.g. uint8 images stay uint8); ``y`` (N,) int64, or None.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        QuantizationValueError: the file is not a ``.npz`` archive; ``x`` holds NaN or
            Inf; ``y`` holds a negative label.
        FormatVersionError: ``x_key`` or ``y_key`` is not in the archive (the message
            lists the arrays present).
        QuantizationTypeError: ``x`` is not integer or floating (bool, complex,
            strings, objects); ``y`` is not an integer array.
        ShapeError: ``x`` has rank < 2 or no samples; ``y`` is not 1-D; the lengths
            of ``x`` and ``y`` differ.

    Example:
        >>> np.savez(tmp / "mine.npz", x=images, y=labels)  # doctest: +SKIP
        >>> x, y = load_npz(tmp / "mine.npz")  # doctest: +SKIP
    """
    for name, key in (("x_key", x_key), ("y_key", y_key)):
        if not (isinstance(key, str) or (name == "y_key" and key is None)):
            raise QuantizationTypeError(f"{name} must be a str, got {type(key).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise QuantizationTypeError(f"path must be a str or an os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str) or "\x00" in path:
        raise QuantizationValueError(f"path must be a file name (a str without NUL bytes), got {path!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"path must name an existing .npz file, got {path!r}")
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise QuantizationValueError(
            f"path must be a .npz archive (np.savez), got {path!r}, which is not a zip file")

    try:
        with zipfile.ZipFile(path) as zf:
            x = _read_array(zf, x_key, path, "x_key")
            y = None if y_key is None else _read_array(zf, y_key, path, "y_key")
    except (zipfile.BadZipFile, OSError) as exc:
        raise QuantizationValueError(f"path {path!r} is a damaged .npz archive: {exc}") from exc

    if x.dtype.kind not in "iuf":
        raise QuantizationTypeError(
            f"x ({x_key!r}) must have an integer or floating dtype, got {x.dtype}")
    if x.ndim < 2:
        raise ShapeError(
            f"x ({x_key!r}) must have rank >= 2, (N, features) or (N, C, H, W), "
            f"got shape {x.shape}")
    if x.shape[0] == 0:
        raise ShapeError(f"x ({x_key!r}) must hold at least one sample, got shape {x.shape}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)  # same shape as x, bool
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise QuantizationValueError(
                f"x ({x_key!r}) must be finite, got {int(bad.sum())} NaN/Inf values, "
                f"first at index {first} = {x[first]}")
    if y is None:
        return x, None

    if y.dtype.kind not in "iu":
        hint = "; convert with y.astype(np.int64) before saving" if y.dtype.kind == "f" else ""
        raise QuantizationTypeError(
            f"y ({y_key!r}) must hold integer class labels, got dtype {y.dtype}{hint}")
    if y.ndim != 1:
        raise ShapeError(
            f"y ({y_key!r}) must be 1-D (N,) class labels, got shape {y.shape} "
            "(one-hot labels: save y.argmax(axis=1))")
    if len(y) != len(x):
        raise ShapeError(
            f"y ({y_key!r}) must have one label per sample of x, i.e. length {len(x)}, "
            f"got {len(y)}")
    if y.dtype.kind == "i" and (y < 0).any():
        first = int(np.flatnonzero(y < 0)[0])
        raise QuantizationValueError(
            f"y ({y_key!r}) must hold labels >= 0, got {int(y[first])} at index {first}")
    if y.dtype == np.uint64 and (y > np.iinfo(np.int64).max).any():
        raise QuantizationValueError(f"y ({y_key!r}) must hold labels <= 2**63 - 1")
    return x, y.astype(np.int64)
