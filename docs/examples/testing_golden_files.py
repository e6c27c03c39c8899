"""Golden files: write, read back, and read without refquant (how-to "Use refquant as the golden
reference", §4). The second half reads the file as a C, C++ or Rust program would: a ZIP of
``.npy`` members, each a small text header and raw little-endian values; the JSON header says
what each array is."""
import ast
import json
import tempfile
import zipfile

import numpy as np

from refquant.testing import load_golden, write_golden

tmp = tempfile.TemporaryDirectory()
path = tmp.name + "/qconv.npz"
write_golden(path, op="onnxruntime.qlinear_conv", profile="onnxruntime", cases=6, seed=0, isa="avx2")

golden = load_golden(path)
case = golden[1]                                        # kinds cycle: random, ties, saturating
print(golden.op, golden.profile, "isa", golden.header["isa"], "-", len(golden), "cases")
print("call:", golden.header["call"]["function"], golden.header["call"]["arguments"], golden.header["call"]["keywords"])
print("case 1:", case.kind, case.attrs)
print("  inputs:", {k: (v.dtype.name, v.shape) for k, v in case.inputs.items()},
      "expected:", {k: (v.dtype.name, v.shape) for k, v in case.expected.items()})
print("regenerate:", golden.header["regenerate"])
assert golden.verify() == sum(c.expected["y"].size for c in golden)   # this refquant still computes the same bits
assert case.kind == "ties" and list(case.inputs) == ["x"] and case.expected["y"].dtype == np.uint8


def read_npy(blob: bytes) -> np.ndarray:
    """An .npy member by hand: magic, version 1.0, header length, a Python-literal dict, the raw data."""
    assert blob[:8] == b"\x93NUMPY\x01\x00"
    n = int.from_bytes(blob[8:10], "little")
    meta = ast.literal_eval(blob[10:10 + n].decode("latin1"))   # {'descr': '<i4', 'fortran_order': False, ...}
    assert not meta["fortran_order"] and meta["descr"][0] in "<|"  # little-endian (or one byte), C order
    return np.frombuffer(blob[10 + n:], np.dtype(meta["descr"])).reshape(meta["shape"])


with zipfile.ZipFile(path) as z:
    header = json.loads(read_npy(z.read("header.npy")).tobytes().decode("utf-8"))
    spec = header["cases"][1]["arrays"][-1]             # the expected output of case 1
    y = read_npy(z.read(spec["key"] + ".npy"))
print("header:", header["magic"], "format_version", header["format_version"], "-", spec)
assert header["magic"] == "refquant-golden" and header["format_version"] == 1
assert spec["role"] == "expected" and list(y.shape) == spec["shape"] and np.array_equal(y, case.expected["y"])
tmp.cleanup()
