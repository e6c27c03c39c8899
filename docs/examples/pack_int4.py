"""Two int4 values per byte, the first in the low nibble (ONNX)."""
import numpy as np

from refquant.dtypes import pack_int4, unpack_int4

q = np.array([1, -2, 7], dtype=np.int8)  # three int4 values
packed = pack_int4(q)                     # (ceil(3 / 2),) uint8
print([f"0x{b:02X}" for b in packed.tolist()])

# byte 0: low nibble 1 = 0x1, high nibble -2 = 0xE  -> 0xE1
# byte 1: low nibble 7 = 0x7, high nibble padding 0 -> 0x07
assert packed.tolist() == [0xE1, 0x07]
assert unpack_int4(packed, 3, signed=True).tolist() == [1, -2, 7]
