"""LiteRT against refquant on models drawn by ``refquant.testing.strategies.small_models``.

    python benchmarks/testing_small_models_litert.py              # 200 models per kernel set (~1 min)
    python benchmarks/testing_small_models_litert.py --models 50

For each of LiteRT's three kernel sets (reference ``BUILTIN_REF``, XNNPACK ``BUILTIN``, optimized
``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), hypothesis draws small float models (MLP or CNN: Conv2d with
strides, padding, depthwise groups, Max/AvgPool, ReLU/ReLU6; seeded weights and data), quantizes each
with ``refquant.ptq.quantize_static`` under the matching profile, exports it with
``refquant.interop.tflite.export`` and runs it in LiteRT; the float32 outputs are compared with
``QuantizedModel.run`` bit for bit. ``derandomize=True``: the same models on every run.
Prints, per kernel set: models drawn, bit-exact, refused by the exporter, mismatched.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import HealthCheck, given, settings

from refquant.errors import UnsupportedError
from refquant.interop import tflite
from refquant.testing import mismatch_report
from refquant.testing.strategies import small_models

KERNEL_SETS = {"tflite_reference": "BUILTIN_REF", "tflite_xnnpack": "BUILTIN",
               "tflite_optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def litert(path: str, x: np.ndarray, resolver: str) -> np.ndarray:
    it = Interpreter(model_path=path, experimental_op_resolver_type=getattr(OpResolverType, resolver))
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], x.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def sweep(profile: str, n: int, directory: str) -> collections.Counter:
    stats: collections.Counter = collections.Counter()

    @settings(max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(m=small_models(quantized=True, profile=profile))
    def run(m):
        path = os.path.join(directory, "m.tflite")
        stats["drawn"] += 1
        try:
            tflite.export(m.model, path, input_shape=m.x.shape[1:])
        except UnsupportedError:
            stats["refused by export"] += 1
            return
        report = mismatch_report(litert(path, m.x, KERNEL_SETS[profile]), m.model.run(m.x))
        stats["bit-exact" if report is None else "mismatch"] += 1
        if report:
            print(report.splitlines()[0])

    run()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200, help="models drawn per kernel set (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for profile in KERNEL_SETS:
            s = sweep(profile, args.models, d)
            print(f"{profile:<17} drawn {s['drawn']:4d}  bit-exact {s['bit-exact']:4d}  "
                  f"refused by export {s['refused by export']:3d}  mismatch {s['mismatch']:3d}")


if __name__ == "__main__":
    main()
