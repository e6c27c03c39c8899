"""Compare techniques on your own data: write the .npz `refquant compare` reads, run it, read its JSON.

`main([...])` is the `refquant` command run in this process: the same as
`refquant compare --model mlp --data mine.npz ...` in a shell.
"""
import json
import os
import tempfile

import numpy as np

from refquant.cli import main
from refquant.data import load_digits

x_train, y_train = load_digits("train")   # stand-ins for your arrays: (1079, 1, 8, 8) float32, (1079,) int64
x_test, y_test = load_digits("test")      # (359, 1, 8, 8), (359,)

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "mine.npz")
    np.savez(data, x=x_train, y=y_train,   # labelled rows: QAT fine-tunes on them
             x_val=x_test, y_val=y_test,   # held-out rows: every top-1 is measured on them
             x_calibration=x_train[:256])  # optional: the calibration samples
    results = os.path.join(tmp, "results.json")
    code = main(["compare", "--model", "mlp", "--data", data, "--profile", "onnxruntime",
                 "--techniques", "float,dynamic,static-minmax,static-mse,qat,int4-weights",
                 "--batch-sizes", "1,32", "--json", results])
    with open(results, encoding="utf-8") as f:
        doc = json.load(f)

assert code == 0 and doc["schema_version"] == 3
print(f"\nprofile {doc['profile']['name']}, scored on {doc['data']['x'][0]} rows, "
      f"calibrated on {doc['data']['x_calibration'][0]}")
rows = {r["technique"]: r for r in doc["results"]}
for name, r in rows.items():
    print(f"{name:>14}: top-1 {r['top1']:.4f}, {r['model_bytes']:6d} bytes ({r['compression']:.2f}x), "
          f"first call {r['evaluation']['latency']['first_call_ms']:.1f} ms"
          + (f", ONNX Runtime {r['runtime_latency_ms']:.4f} ms, bit-exact {r['runtime_bit_exact']}"
             if r["runtime_bit_exact"] is not None else ""))

assert all(r["status"] == "ok" for r in rows.values())
assert rows["int4-weights"]["model_bytes"] < rows["static-minmax"]["model_bytes"] < rows["float"]["model_bytes"]
assert rows["dynamic"]["compression"] > 3           # an MLP is all Linear layers: dynamic quantizes them all
assert min(r["top1"] for r in rows.values()) > 0.95  # every technique within a few points of float here
if doc["runtime"]["available"]:  # onnxruntime installed: it ran the static and QAT models, bit for bit
    assert all(rows[t]["runtime_bit_exact"] for t in ("static-minmax", "static-mse", "qat"))
