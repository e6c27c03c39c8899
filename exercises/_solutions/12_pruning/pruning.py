"""Exercise 12: Pruning — magnitude masks, the global threshold, N:M masks and the bytes of sparse storage. SOLUTION (spoilers: try the exercise first).

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
    product = np.float32(n) * (np.float32(1) - np.float32(sparsity))  # float32, as TFMOT
    return int(min(max(int(np.rint(product)), 1), n))
    # END YOUR SOLUTION


def magnitude_mask(w, sparsity: float) -> np.ndarray:
    """Learn 16, eq. (3): keep the ``k = kept_count(w.size, sparsity)`` weights of largest ``|w|``.

    Equal magnitudes: the weight that comes first in C order (``w.ravel()``) is kept. Exactly
    ``k`` weights are kept, whatever the ties. ``w``: float array of any shape. Return a bool array
    of ``w``'s shape, True = kept.
    """
    # BEGIN YOUR SOLUTION
    w = np.asarray(w)
    mag = np.abs(w.astype(np.float64)).ravel()
    order = np.argsort(-mag, kind="stable")                        # largest first; ties: lower index first
    keep = np.zeros(mag.size, dtype=bool)
    keep[order[:kept_count(mag.size, sparsity)]] = True
    return keep.reshape(w.shape)
    # END YOUR SOLUTION


def global_magnitude_masks(weights, sparsity: float) -> list:
    """Learn 16, section 2, ``scope="global"``: one ranking of ``|w|`` over all the layers together.

    ``weights``: a list of float arrays (one per layer, any shapes). Keep the
    ``kept_count(total, sparsity)`` largest magnitudes among all ``total`` weights; equal magnitudes:
    the earlier layer first, then C order inside a layer. Return a list of bool arrays, one per
    weight, of its shape.
    """
    # BEGIN YOUR SOLUTION
    arrays = [np.asarray(w) for w in weights]
    flat = np.concatenate([np.abs(w.astype(np.float64)).ravel() for w in arrays])
    keep = magnitude_mask(flat, sparsity)                          # the same rule on the concatenation
    out, start = [], 0
    for w in arrays:
        out.append(keep[start:start + w.size].reshape(w.shape))
        start += w.size
    return out
    # END YOUR SOLUTION


def nm_mask(w, n: int, m: int) -> np.ndarray:
    """Learn 16, eq. (6): keep the ``n`` largest ``|w|`` of every ``m`` consecutive weights of a row.

    Rows are output channels: ``w.reshape(w.shape[0], -1)`` (a Linear ``(O, K)``, or a Conv2d
    ``(O, C, kH, kW)`` flattened per output channel). Groups are columns ``[g*m, g*m + m)`` of a row;
    ``K`` is a multiple of ``m``. Equal magnitudes in a group: the lower index is kept. Return a bool
    array of ``w``'s shape, True = kept.
    """
    # BEGIN YOUR SOLUTION
    w = np.asarray(w)
    rows = np.abs(w.astype(np.float64)).reshape(w.shape[0], -1)    # (O, K)
    groups = rows.reshape(rows.shape[0], -1, m)                    # (O, K/m, m)
    order = np.argsort(-groups, axis=2, kind="stable")[:, :, :n]   # the n largest, ties to the lower index
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=2)
    return keep.reshape(w.shape)
    # END YOUR SOLUTION


def is_nm_sparse(w, n: int, m: int) -> bool:
    """Learn 16, eq. (6): does every group of ``m`` consecutive entries of each row hold at most ``n``
    nonzeros? ``w``: a weight or a mask; rows and groups as in :func:`nm_mask`. Return a Python bool.
    """
    # BEGIN YOUR SOLUTION
    w = np.asarray(w)
    nonzero = (w != 0).reshape(w.shape[0], -1, m)                  # (O, K/m, m)
    return bool(np.all(nonzero.sum(axis=2) <= n))
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
    w = np.asarray(w)
    (O, K), v = w.shape, w.dtype.itemsize
    nnz = int(np.count_nonzero(w))

    def index_bytes(largest):
        return next(t.itemsize for t in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
                    if largest <= np.iinfo(t).max)

    G = -(-K // 4)
    padded = np.zeros((O, G * 4), bool)
    padded[:, :K] = w != 0
    two_four = bool(np.all(padded.reshape(O, G, 4).sum(axis=2) <= 2))
    return {"dense": O * K * v,
            "csr": nnz * (v + index_bytes(K - 1)) + (O + 1) * index_bytes(nnz),
            "bitmask": nnz * v + O * -(-K // 8),
            "2:4": O * G * 2 * v + -(-O * G * 2 * 2 // 8) if two_four else None}
    # END YOUR SOLUTION
