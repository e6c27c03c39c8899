"""The embedded 8×8 handwritten digits (UCI optical recognition, as scikit-learn ships them).

1,797 grey-level images of the digits 0..9, each 8×8 pixels whose values count the
"on" pixels of a 4×4 block of a 32×32 bitmap, so $x \\in \\{0, \\dots, 16\\}$. The file
``digits.npz`` sits inside the package (48 KB) and is found with
:mod:`importlib.resources`: no network and no scikit-learn at run time. Licence and
attribution: ``refquant/data/README.md``.

The fixed split is stratified 60 / 20 / 20 per class (train 1,079, val 359, test 359)
and stored as index arrays in the file, so it never depends on the NumPy version;
``refquant/data/build_digits.py`` documents how it was drawn.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from .._validate import as_choice, as_flag, describe
from ..errors import FormatVersionError, QuantizationTypeError

__all__ = ["load_digits", "DIGITS_SPLITS", "DIGITS_CLASS_COUNTS"]

#: Names accepted by ``load_digits(split=...)``.
DIGITS_SPLITS = ("train", "val", "test", "all")

#: Images per class 0..9 in the whole set (as scikit-learn's ``load_digits``).
DIGITS_CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)

_FORMAT_VERSION = 1
_KEYS = ("format_version", "images", "labels", "train_idx", "val_idx", "test_idx")


@functools.lru_cache(maxsize=1)
def _read_packaged() -> dict[str, np.ndarray]:
    """Read ``digits.npz`` once; the arrays are made read-only and never handed out."""
    resource = resources.files(__package__).joinpath("digits.npz")
    with resources.as_file(resource) as path, np.load(path, allow_pickle=False) as npz:
        missing = [k for k in _KEYS if k not in npz.files]
        if missing:
            raise FormatVersionError(
                f"packaged digits.npz must hold {list(_KEYS)}, missing {missing}; "
                "the installation is damaged, reinstall refquant")
        arrays = {k: npz[k] for k in _KEYS}
    version = int(arrays["format_version"])
    if version != _FORMAT_VERSION:
        raise FormatVersionError(
            f"packaged digits.npz format_version must be {_FORMAT_VERSION}, got {version}")
    for value in arrays.values():
        value.setflags(write=False)
    return arrays


def load_digits(split: str = "train", *, dtype=np.float32, flatten: bool = False,
                normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load the embedded 8×8 digits, one split of them.

    With ``normalize`` the pixels are scaled to $[0, 1]$ by $x / 16$ (computed in
    float64, then cast to ``dtype``; $k/16$ is exact in every float format, so the
    values do not depend on the order of these steps). Without it they keep their
    integer values $0..16$, cast to ``dtype``.

    Args:
        split: ``"train"`` (1,079 images), ``"val"`` (359), ``"test"`` (359) or
            ``"all"`` (1,797, in the source order). Within a split the images keep
            their source order (ascending row index); shuffle in the training loop.
        dtype: NumPy dtype of ``x``. Must be floating when ``normalize`` is True;
            may be any integer or floating dtype otherwise (e.g. ``np.uint8``).
        flatten: Return ``x`` as (N, 64) instead of (N, 1, 8, 8).
        normalize: Divide by 16 so that ``x`` lies in $[0, 1]$.

    Returns:
        ``(x, y)``: ``x`` (N, 1, 8, 8) NCHW, or (N, 64) row-major if ``flatten``, of
        ``dtype``; ``y`` (N,) int64 labels 0..9. Fresh arrays the caller may modify.

    Raises:
        QuantizationValueError: ``split`` is not one of :data:`DIGITS_SPLITS`.
        QuantizationTypeError: ``dtype`` is not numeric, or not floating with
            ``normalize=True``.
        FormatVersionError: the packaged file is damaged or of another version.

    Example:
        >>> x, y = load_digits("test")
        >>> x.shape, x.dtype, y.shape, y.dtype
        ((359, 1, 8, 8), dtype('float32'), (359,), dtype('int64'))
    """
    split = as_choice(split, "split", DIGITS_SPLITS)
    flatten, normalize = as_flag(flatten, "flatten"), as_flag(normalize, "normalize")
    try:
        out_dtype = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError, SyntaxError) as exc:
        raise QuantizationTypeError(f"dtype must be a NumPy dtype, got {describe(dtype)}") from exc
    if out_dtype is None:
        raise QuantizationTypeError("dtype must be a NumPy dtype, got None")
    out_dtype = out_dtype.newbyteorder("=")
    if out_dtype.kind not in "iuf":
        raise QuantizationTypeError(f"dtype must be an integer or floating dtype, got {out_dtype}")
    if normalize and out_dtype.kind != "f":
        raise QuantizationTypeError(
            f"dtype must be floating when normalize=True (values k/16), got {out_dtype}; "
            "pass normalize=False for the raw integer counts 0..16")

    arrays = _read_packaged()
    images, labels = arrays["images"], arrays["labels"]  # (1797, 8, 8) uint8, (1797,) uint8
    if split != "all":
        rows = arrays[f"{split}_idx"].astype(np.int64)  # (N,) int64
        images, labels = images[rows], labels[rows]

    x = images.astype(np.float64) / 16.0 if normalize else images  # (N, 8, 8)
    x = x.astype(out_dtype)  # always a fresh copy
    x = x.reshape(len(x), 64) if flatten else x.reshape(len(x), 1, 8, 8)
    y = labels.astype(np.int64)  # (N,) int64
    return x, y
