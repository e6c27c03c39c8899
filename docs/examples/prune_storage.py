"""Sparse storage with every byte counted: CSR, bitmask, 2:4, and where each beats dense (Learn 16, §6)."""
import numpy as np

from refquant import prune
from refquant.kernels.gemm import gemm
from refquant.kernels.sparse import sparse_matmul_int8
from refquant.models import load_reference_model
from refquant.prune.sparse import break_even_sparsity, storage_table, to_bitmask, to_csr

# 1. By hand: a 3x4 int8 weight whose pruned codes are the zero point 0.
w = np.array([[0, 5, 0, -3],
              [0, 0, 0, 0],
              [7, 0, 2, 0]], np.int8)
csr, bm = to_csr(w), to_bitmask(w)
print("CSR:", csr.values.tolist(), csr.col_idx.tolist(), csr.row_ptr.tolist(), csr.col_idx.dtype, f"{csr.nbytes} B")
print("bitmask:", bm.mask.ravel().tolist(), bm.values.tolist(), f"{bm.nbytes} B; dense {w.nbytes} B")
assert (csr.values.tolist(), csr.col_idx.tolist(), csr.row_ptr.tolist()) == ([5, -3, 7, 2], [1, 3, 0, 2], [0, 2, 2, 4])
assert csr.col_idx.dtype == csr.row_ptr.dtype == np.uint8 and csr.nbytes == 4 + 4 + 4 == w.nbytes   # eq. (7)
assert bm.mask.ravel().tolist() == [0b1010, 0, 0b0101] and bm.nbytes == 4 + 3                       # eq. (8)

# The pruned code is the zero point, not 0: with Z = 3 the codes equal to 3 are the ones left out.
w3 = np.array([[3, 3, 9, 3]], np.int8)
assert to_csr(w3, zero_point=3).values.tolist() == [9] and to_csr(w3, zero_point=3).to_dense().tolist() == [[3, 3, 9, 3]]

# 2. A real layer: the MLP's (64, 128) hidden weight as per-channel int8 codes, magnitude-pruned.
mlp = load_reference_model("mlp")
O, K = mlp[3].weight.shape
print("| sparsity | dense | CSR | bitmask | 2:4 |")
print("|---:|---:|---:|---:|---:|")
for s in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95):
    weight = mlp[3].weight.value * prune.magnitude_masks(mlp, s, layers=["3"])["3"]
    half = np.abs(weight).max(axis=1, keepdims=True)                  # (64, 1); 0 for a row pruned entirely
    scale = np.where(half > 0, half / 127, 1)                         # symmetric per channel: Z = 0
    codes = np.round(weight / scale).astype(np.int8)                  # (64, 128) int8
    t = storage_table(codes)
    b, nnz = t["bytes"], t["nnz"]
    c, p = (1 if K - 1 <= 255 else 2), (1 if nnz <= 255 else 2 if nnz <= 65535 else 4)
    assert b["csr"] == nnz * (1 + c) + (O + 1) * p                    # eq. (7), index widths as TFLite's
    assert b["bitmask"] == nnz + O * -(-K // 8)                       # eq. (8)
    print(f"| {100 * t['sparsity']:.1f} % | {b['dense']:,} | {b['csr']:,} | {b['bitmask']:,} | "
          f"{'—' if b['2:4'] is None else format(b['2:4'], ',')} |")
codes = np.round(mlp[3].weight.value / np.abs(mlp[3].weight.value).max(axis=1, keepdims=True) * 127).astype(np.int8)
codes[~prune.nm_masks(mlp, 2, 4, layers=["3"])["3"]] = 0
print(f"| 50 % (2:4) | {codes.nbytes:,} | {to_csr(codes).nbytes:,} | {to_bitmask(codes).nbytes:,} | "
      f"{storage_table(codes)['bytes']['2:4']:,} |")
assert storage_table(codes)["bytes"]["2:4"] == O * K // 2 + O * K // 8   # eq. (9)

# 3. Break-even sparsities, exact (bytes): the lowest sparsity at which the format is no larger than dense.
print("| shape (O, K) | CSR int8 | CSR float32 | CSR int4 | bitmask int8 | bitmask float32 | bitmask int4 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for shape in ((128, 64), (64, 128), (10, 64), (32, 288), (64, 576), (256, 1024)):
    cells = [break_even_sparsity(f, shape, v) for f in ("csr", "bitmask") for v in ("int8", "float32", "int4")]
    print(f"| {shape} | " + " | ".join("never" if c is None else f"{100 * c:.2f} %" for c in cells) + " |")
    c = 1 if shape[1] <= 256 else 2                                   # column index bytes: uint8 or uint16
    assert c / (1 + c) < break_even_sparsity("csr", shape, "int8") < c / (1 + c) + 0.02   # eq. (10) + row_ptr
    assert break_even_sparsity("bitmask", shape, "int8") == 1 / 8     # eq. (10), K a multiple of 8

# 4. The sparse kernel computes what the dense one does, bit for bit (it only skips zero terms).
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (8, K)).astype(np.uint8)                    # (8, 128) uint8, zero point 128
sparse = to_csr(codes)
np.testing.assert_array_equal(
    sparse_matmul_int8(x, np.uint8(128), sparse.values, sparse.col_idx, sparse.row_ptr, np.int8(0)),
    gemm(x, np.ascontiguousarray(codes.T), np.uint8(128), np.int8(0)))
print("sparse_matmul_int8 == gemm on the 2:4 weight")
