"""Time each step of Learn 6 ("From a naive loop to a fast Numba kernel") on one GEMM, single thread.

    python benchmarks/naive_to_fast.py            # 256x1024x1024 (about a minute)
    python benchmarks/naive_to_fast.py --quick    # fewer repetitions

The steps are the functions of ``docs/examples/kernel_steps.py`` (which the docs tests check
against ``gemm_reference`` on small shapes); this script checks them again on the benchmark's
inputs and prints GOP/s (2·M·K·N / best process CPU time) as a Markdown table, with ONNX
Runtime's ``MatMulInteger`` for comparison when it is installed. Step 0 (pure Python) is timed
on 8x128x128: at 256x1024x1024 it would take hours.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best(f, rounds: int) -> float:
    """Best process CPU time (s) of ``f()`` over ``rounds`` calls, after one warm-up call."""
    f()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        f()
        best = min(best, time.process_time() - t0)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args(argv)
    rounds = 2 if args.quick else 5

    steps = _load("kernel_steps", ROOT / "docs" / "examples" / "kernel_steps.py")
    bench = _load("bench_kernels", ROOT / "benchmarks" / "kernels.py")
    from refquant.kernels.gemm import gemm_reference

    rng = np.random.default_rng(0)
    M, K, N = 256, 1024, 1024
    a = rng.integers(0, 256, (M, K)).astype(np.uint8)
    b = rng.integers(-128, 128, (K, N)).astype(np.int8)
    za, zb = 131, 0
    want = gemm_reference(a, b, za, zb)
    rows = []
    for step in steps.STEPS:
        if step is steps.step0_python:  # pure Python: a small corner of the same inputs
            m, k, n = 8, 128, 128
            args_ = (a[:m, :k], b[:k, :n], za, zb)
            want_ = gemm_reference(*args_)
        else:
            m, k, n = M, K, N
            args_ = (a, b, za, zb)
            want_ = want
        t0 = time.perf_counter()
        got = step(*args_)  # the first call includes the JIT compile (or the Numba cache load)
        first = time.perf_counter() - t0
        np.testing.assert_array_equal(got, want_, err_msg=step.__name__)
        slow = step in (steps.step0_python, steps.step1_numpy_int32, steps.step2_numba_naive)
        t = _best(lambda: step(*args_), 1 if slow else rounds)
        rows.append((step.__name__, f"{m}x{k}x{n}", 2 * m * k * n / t / 1e9, first))
        print(f"  {step.__name__}: {rows[-1][2]:.3f} GOP/s", flush=True)
    try:
        ort = bench.ort_matmul_integer(a, b, za, zb)
        np.testing.assert_array_equal(ort(), gemm_reference(a, b, za, zb, acc_model="pairwise_sat16_u8s8")
                                      if bench.machine()["isa"] == "avx2" else want)
        rows.append(("ONNX Runtime MatMulInteger", f"{M}x{K}x{N}", 2 * M * K * N / _best(ort, rounds) / 1e9, None))
    except ImportError:
        pass

    info = bench.machine()
    print("\nMachine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    base = rows[1][2]
    print("\n| step | shape | GOP/s | × NumPy int32 | first call (s) |\n|---|---|---|---|---|")
    for name, shape, gops, first in rows:
        first = "—" if first is None else f"{first:.2f}"
        print(f"| {name} | {shape} | {gops:.3g} | {gops / base:.3g}× | {first} |")


if __name__ == "__main__":
    main()
