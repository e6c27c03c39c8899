"""Exercise 12: Pruning — magnitude masks, the global threshold, N:M masks and the bytes of sparse storage.  <- the file you edit.

Read first: docs "Learn 16: Pruning — masks, real sparsity and N:M", sections 2, 5 and 6
(docs/learn/pruning.md).
Check your work: ``python -m exercises 12`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only. The tests compare your functions with ``refquant.prune``: masks on weights full of equal
magnitudes (the tie rule decides), the global masks of several layers, 2:4 and other N:M masks and
checks, and the bytes that ``refquant.prune.sparse`` stores.
"""

import numpy as np


def kept_count(n: int, sparsity: float) -> int:
    """Learn 16, eq. (2): how many of ``n`` weights a sparsity keeps, with TFMOT's arithmetic.

        k = max(round(n * (1 - s)), 1)

    ``n`` and ``s`` are converted to float32, ``1 - s`` and the product are computed in float32, and
    the product is rounded half to even (``np.rint``). Return a Python int in ``[1, n]``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("kept_count")
    # END YOUR SOLUTION


def magnitude_mask(w, sparsity: float) -> np.ndarray:
    """Learn 16, eq. (3): keep the ``k = kept_count(w.size, sparsity)`` weights of largest ``|w|``.

    Equal magnitudes: the weight that comes first in C order (``w.ravel()``) is kept. Exactly
    ``k`` weights are kept, whatever the ties. ``w``: float array of any shape. Return a bool array
    of ``w``'s shape, True = kept.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("magnitude_mask")
    # END YOUR SOLUTION


def global_magnitude_masks(weights, sparsity: float) -> list:
    """Learn 16, section 2, ``scope="global"``: one ranking of ``|w|`` over all the layers together.

    ``weights``: a list of float arrays (one per layer, any shapes). Keep the
    ``kept_count(total, sparsity)`` largest magnitudes among all ``total`` weights; equal magnitudes:
    the earlier layer first, then C order inside a layer. Return a list of bool arrays, one per
    weight, of its shape.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("global_magnitude_masks")
    # END YOUR SOLUTION


def nm_mask(w, n: int, m: int) -> np.ndarray:
    """Learn 16, eq. (6): keep the ``n`` largest ``|w|`` of every ``m`` consecutive weights of a row.

    Rows are output channels: ``w.reshape(w.shape[0], -1)`` (a Linear ``(O, K)``, or a Conv2d
    ``(O, C, kH, kW)`` flattened per output channel). Groups are columns ``[g*m, g*m + m)`` of a row;
    ``K`` is a multiple of ``m``. Equal magnitudes in a group: the lower index is kept. Return a bool
    array of ``w``'s shape, True = kept.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("nm_mask")
    # END YOUR SOLUTION


def is_nm_sparse(w, n: int, m: int) -> bool:
    """Learn 16, eq. (6): does every group of ``m`` consecutive entries of each row hold at most ``n``
    nonzeros? ``w``: a weight or a mask; rows and groups as in :func:`nm_mask`. Return a Python bool.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("is_nm_sparse")
    # END YOUR SOLUTION


def storage_bytes(w) -> dict:
    """Learn 16, eqs. (7)-(9): the bytes of a pruned 2-D weight ``(O, K)`` in each format.

    ``w`` is float32 (values of 4 bytes) or int8 codes (1 byte) whose pruned entries are 0 (the zero
    point). With ``nnz`` the number of nonzero entries and ``v`` the bytes of one value:

        dense    O * K * v
        CSR      nnz * (v + c) + (O + 1) * p         (eq. (7))
        bitmask  nnz * v + O * ceil(K / 8)           (eq. (8))
        2:4      (values + positions of a 2:4-sparse w)  (eq. (9); None when w is not 2:4 sparse)

    The CSR index widths are TFLite's: ``c`` is the bytes of the smallest of uint8, uint16, uint32
    that holds the largest column ``K - 1``; ``p`` of the smallest that holds ``nnz``. For 2:4 with
    ``G = ceil(K / 4)`` groups per row (a last, partial group is padded): ``O * G * 2`` values and
    ``ceil(O * G * 2 * 2 / 8)`` bytes of 2-bit positions. Return
    ``{"dense": int, "csr": int, "bitmask": int, "2:4": int or None}``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("storage_bytes")
    # END YOUR SOLUTION
