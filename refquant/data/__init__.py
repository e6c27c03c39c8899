"""Data: the embedded 8×8 digits, the user's own ``.npz`` files, synthetic images.

* :func:`load_digits` — 1,797 handwritten digits packed in the package (no network,
  no scikit-learn), with a fixed stratified train / val / test split.
* :func:`load_npz` — ``(x, y)`` from the user's ``np.savez`` file, validated.
* :func:`synthetic_images` — seeded, learnable synthetic images of any size.

Licence and attribution of the embedded data: ``refquant/data/README.md``.
"""

from __future__ import annotations

from .digits import DIGITS_CLASS_COUNTS, DIGITS_SPLITS, load_digits
from .npz import load_npz
from .synthetic import synthetic_images

__all__ = [
    "load_digits",
    "load_npz",
    "synthetic_images",
    "DIGITS_SPLITS",
    "DIGITS_CLASS_COUNTS",
]
