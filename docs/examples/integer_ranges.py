"""Integer formats and their full, narrow and reduced ranges (Conventions; Learn 1, §5)."""
from refquant.backends.onnxruntime import reduced_range
from refquant.dtypes import FORMATS, quant_range

print("format  full               narrow             reduced(pytorch)  reduced(onnxruntime)")
for name in ("int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16"):
    f = FORMATS[name]
    full = quant_range(name)
    narrow = quant_range(name, narrow=True)
    torch_rr = quant_range(name, reduce_range=True)
    ort_rr = reduced_range(name) if name not in ("int2", "uint2") else None
    print(f"{name:7s} {str(full):18s} {str(narrow):18s} {str(torch_rr):17s} {ort_rr}")
    assert full == (f.qmin, f.qmax) and narrow == (f.qmin + 1, f.qmax)

assert quant_range("int8") == (-128, 127)
assert quant_range("int8", narrow=True) == (-127, 127)              # TFLite int8 weights
assert quant_range("int8", reduce_range=True) == (-64, 63)      # qmin // 2, qmax // 2
assert reduced_range("int8") == (-64, 64)  # the ORT tool's table
assert quant_range("uint8", reduce_range=True) == reduced_range("uint8") == (0, 127)
assert quant_range("int16", reduce_range=True) == (-16384, 16383)
assert reduced_range("int16") == (-16384, 16384)
assert quant_range("uint16", reduce_range=True) == (0, 32767)
assert quant_range("int4", reduce_range=True) == reduced_range("int4") == (-4, 3)
assert quant_range("uint4", reduce_range=True) == (0, 7)
assert quant_range("int2") == (-2, 1) and quant_range("uint4") == (0, 15)
assert quant_range("int32") == (-2 ** 31, 2 ** 31 - 1)
