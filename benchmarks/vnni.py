"""Benchmark the AVX-512 VNNI kernels (refquant.kernels._gemm_vnni) against refquant's current ``gemm``,
ONNX Runtime MatMulInteger and PyTorch fbgemm, with 1 and 2 threads.

    python benchmarks/vnni.py            # both thread counts (each in a fresh process), about a minute
    python benchmarks/vnni.py --quick    # fewer rounds
    python benchmarks/vnni.py --threads 2  # one thread count, in this process

Shapes: int8 GEMM 256×1024×1024 and 1×1024×1024, uint8 activations (zero point 131) ×
int8 weights (zero point 0). GOP/s counts a multiply and an add per MAC. Columns:

* ``vnni``: :func:`refquant.kernels._gemm_vnni.gemm_vnni`, the public call (validation included);
* ``vnni_kernel``: :func:`~refquant.kernels._gemm_vnni.gemm_wrap`, what ``gemm`` calls on an AVX-512 VNNI CPU
  (validated operands, (M,)/(N,) zero points, an output array);
* ``refquant_gemm``: :func:`refquant.kernels.gemm.gemm` with ``REFQUANT_DISABLE_VNNI=1`` semantics where
  measured separately (the AVX2 ``vpmaddwd`` path);
* ``onnxruntime``: ``MatMulInteger`` (ORT_DISABLE_ALL, weights as an initializer, so prepacked once
  at session creation, int32 out); ``torch_fbgemm``: ``torch.ao.nn.quantized.Linear`` (prepacked
  weights, quint8 out: includes requantization). Both pack ``b`` once; refquant packs per call.

With 1 thread the time is the best process CPU time of many calls (robust to other load, as in
``benchmarks/kernels.py``, whose helpers this reuses); with 2 threads process CPU time adds both
threads up, so the best wall time is reported. Every column's threads are set explicitly: Numba
(``NUMBA_NUM_THREADS``, before Numba is imported), ORT ``intra_op_num_threads``, ``torch.set_num_threads``.
"""

from __future__ import annotations

import os
import sys


def _set_threads(n: int) -> None:
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


if __name__ == "__main__" and "--threads" in sys.argv:  # before NumPy/Numba read the variables
    _set_threads(int(sys.argv[sys.argv.index("--threads") + 1]))

import argparse
import json
import subprocess
import time

import numba  # reads NUMBA_NUM_THREADS now
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernels as kb  # benchmarks/kernels.py: _best_of, torch_linear, machine; sets every count to 1

if __name__ == "__main__" and "--threads" in sys.argv:  # undo that before Numba launches its threads
    _set_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    numba.config.reload_config()

from refquant.kernels import _gemm_vnni as vn
from refquant.kernels.gemm import gemm

SHAPES = ((256, 1024, 1024), (1, 1024, 1024))
COLUMNS = ("vnni", "vnni_kernel", "refquant_gemm", "onnxruntime", "torch_fbgemm")


def _best_wall(impls: dict, rounds: int) -> dict:
    """Best wall time (s) of each callable over ``rounds`` interleaved rounds, after one warm-up."""
    for f in impls.values():
        f()
    best = {k: float("inf") for k in impls}
    for _ in range(rounds):
        for k, f in impls.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def ort_matmul_integer(a, b, za, zb, threads):
    """``kernels.ort_matmul_integer`` with ``threads`` intra-op threads."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    inits = {"b": b, "za": np.array(za, np.uint8), "zb": np.array(zb, np.int8)}
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"a": a})[0]


def _impls(M, K, N, threads, rng, only=None) -> dict:
    """The callables of every column (or of ``only``) on one shape (uint8 a with zero point 131, int8 b
    with 0), each checked against ``gemm`` where it returns the same int32 values."""
    a = rng.integers(0, 256, (M, K)).astype(np.uint8)
    b = rng.integers(-128, 128, (K, N)).astype(np.int8)
    za, zb = np.uint8(131), np.int8(0)
    za_v, zb_v, out = np.full(M, 131, np.int64), np.zeros(N, np.int64), np.empty((M, N), np.int32)

    def torch_fbgemm():
        f = kb.torch_linear(a, b, za)
        import torch

        torch.set_num_threads(threads)  # torch_linear set 1
        return f

    make = {"vnni": lambda: lambda: vn.gemm_vnni(a, b, za, zb),
            "vnni_kernel": lambda: lambda: vn.gemm_wrap(a, b, za_v, zb_v, out),
            "refquant_gemm": lambda: lambda: gemm(a, b, za, zb),
            "onnxruntime": lambda: ort_matmul_integer(a, b, za, zb, threads),
            "torch_fbgemm": torch_fbgemm}
    want = gemm(a, b, za, zb)
    impls = {}
    for name in COLUMNS if only is None else (only,):
        try:
            impls[name] = make[name]()
        except ImportError:
            continue
        if name != "torch_fbgemm":  # torch requantizes to uint8; ORT is exact on a VNNI CPU
            np.testing.assert_array_equal(impls[name](), want, err_msg=name)
    return impls


def run(threads: int, rounds: int, only=None) -> list[dict]:
    """GOP/s of every column (or of ``only``) on every shape with ``threads`` threads (this process's)."""
    assert numba.config.NUMBA_NUM_THREADS >= threads, "set NUMBA_NUM_THREADS before Numba is imported"
    numba.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    for M, K, N in SHAPES:
        impls = _impls(M, K, N, threads, rng, only)
        best = kb._best_of(impls, rounds) if threads == 1 else _best_wall(impls, rounds)
        ops = 2 * M * K * N
        rows.append({"shape": f"GEMM {M}x{K}x{N}", "threads": threads, **{k: ops / v / 1e9 for k, v in best.items()}})
        print(f"  {threads} thread(s) {rows[-1]['shape']}: "
              + ", ".join(f"{k} {rows[-1][k]:.1f}" for k in COLUMNS if k in rows[-1]), flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--threads", type=int, help="run one thread count in this process and print JSON rows")
    ap.add_argument("--only", choices=COLUMNS, help="with --threads: time this column alone")
    args = ap.parse_args(argv)
    rounds = 10 if args.quick else 40
    if args.threads:
        print(json.dumps(run(args.threads, rounds, args.only)))
        return
    if not vn.vnni_available():
        sys.exit("AVX512-VNNI kernels unavailable here (CPU without avx512_vnni, or NUMBA_DISABLE_JIT=1)")
    rows = []
    # 1 thread: every column in one process, interleaved. 2 threads: each column in its own process, since
    # idle OpenMP/ORT pool threads spin for a while after a parallel region and would slow the next column.
    for threads, only in [(1, None)] + [(2, c) for c in COLUMNS]:
        cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads)] + (["--quick"] * args.quick)
        out = subprocess.run(cmd + (["--only", only] if only else []), capture_output=True, text=True, check=True)
        print(out.stdout.rsplit("\n", 2)[0], flush=True)
        new = json.loads(out.stdout.strip().splitlines()[-1])
        if only is None:
            rows += new
        else:
            for r, n in zip(rows[len(rows) - len(SHAPES):] if only != COLUMNS[0] else [], new):
                r.update({only: n[only]})
            if only == COLUMNS[0]:
                rows += new
    info = kb.machine()
    print("\nMachine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print("GOP/s = 2·MACs / best time (1 thread: process CPU time; 2 threads: wall time).\n")
    print("| shape | threads | " + " | ".join(COLUMNS) + " | vnni / ORT | vnni / refquant_gemm |")
    print("|---" * (len(COLUMNS) + 4) + "|")
    for r in rows:
        cells = [f"{r[c]:.1f}" if c in r else "—" for c in COLUMNS]
        ort = f"{r['vnni'] / r['onnxruntime']:.2f}×" if "onnxruntime" in r else "—"
        print(f"| {r['shape']} | {r['threads']} | " + " | ".join(cells)
              + f" | {ort} | {r['vnni'] / r['refquant_gemm']:.2f}× |")


if __name__ == "__main__":
    main()
