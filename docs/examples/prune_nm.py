"""2:4 sparsity: the mask, the check, the compressed values and their 2-bit metadata, by hand (Learn 16, §5)."""
import numpy as np

from refquant import nn, prune
from refquant.data import load_digits
from refquant.models import load_reference_model
from refquant.prune.sparse import to_nm

# 1. One row of 8 weights: two groups of 4; each keeps its 2 largest |w| (a tie keeps the lower index).
layer = nn.Sequential(nn.Linear(8, 1, rng=0))
layer[0].weight.value[:] = [[0.1, -0.7, 0.4, 0.2,     0.3, 0.3, -0.9, 0.0]]
mask = prune.nm_masks(layer, 2, 4)["0"]
print("mask:", mask.astype(int).tolist())
assert mask.tolist() == [[False, True, True, False, True, False, True, False]]   # 0.3 = 0.3: position 4 wins
w = np.where(mask, layer[0].weight.value, np.float32(0))              # (1, 8) float32, 2:4 sparse
assert prune.check_nm(w, 2, 4) and not prune.check_nm(layer[0].weight.value, 2, 4)
print("groups with more than 2 nonzeros in the dense row [row, first column]:",
      prune.nm_violations(layer[0].weight.value, 2, 4).tolist())

# 2. Stored: the 4 kept values, and each one's position in its group in 2 bits. Group 0 keeps positions
#    1 and 2, group 1 positions 0 and 2: nibbles 1 + 2·4 = 0b1001 and 0 + 2·4 = 0b1000, two per byte,
#    the first group in the low nibble: 0b1000_1001 = 0x89.
nm = to_nm(w, 2, 4)
print("values:", nm.values.astype(np.float64).round(2).tolist(), " metadata:", [hex(b) for b in nm.indices.tolist()], f" {nm.nbytes} bytes")
np.testing.assert_array_equal(nm.values, np.float32([[-0.7, 0.4, 0.3, -0.9]]))
assert nm.indices.tolist() == [0x89] and nm.nbytes == 4 * 4 + 1     # 16 bytes of values + 1 of metadata
np.testing.assert_array_equal(nm.to_dense(), w)

# 3. A whole layer: the MLP's (64, 128) hidden weight as int8 codes, dense against 2:4.
mlp = load_reference_model("mlp")
masks = prune.nm_masks(mlp, 2, 4)
codes = np.round(mlp[3].weight.value / np.abs(mlp[3].weight.value).max() * 127).astype(np.int8)  # symmetric, Z = 0
codes[~masks["3"]] = 0                                                # (64, 128) int8, 2:4 sparse
for fmt, w8 in (("int8", codes), ("float32", np.where(masks["3"], mlp[3].weight.value, np.float32(0)))):
    nm = to_nm(w8, 2, 4)
    dense = w8.nbytes
    print(f"{fmt}: dense {dense:,} bytes; 2:4 {nm.values.nbytes:,} values + {nm.indices.nbytes:,} metadata "
          f"= {nm.nbytes:,} ({nm.nbytes / dense:.1%} of dense)")
    assert nm.indices.nbytes == 64 * 128 // 8                         # K/8 bytes of metadata per row
assert abs(to_nm(codes, 2, 4).nbytes / codes.nbytes - 0.625) < 1e-12

# 4. Accuracy of the 2:4 MLP before fine-tuning, against 50 % unstructured magnitude pruning.
x_test, y_test = load_digits("test")
top1 = {}
for label, make in (("2:4", lambda m: prune.nm_masks(m, 2, 4)),
                    ("50 %, magnitude, layer", lambda m: prune.magnitude_masks(m, 0.5))):
    model = load_reference_model("mlp")
    prune.apply_masks(model, make(model)).remove()
    top1[label] = nn.evaluate(model, x_test, y_test)
print({k: f"{100 * v:.2f} %" for k, v in top1.items()})
assert top1["50 %, magnitude, layer"] >= top1["2:4"] > 0.9           # the pattern costs a little, not much
