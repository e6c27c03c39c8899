"""Benchmark refquant's integer kernels against ONNX Runtime, PyTorch (fbgemm) and NumPy, single thread.

    python benchmarks/kernels.py            # full table (about a minute)
    python benchmarks/kernels.py --quick    # fewer repetitions

Shapes (issue 3 §4): int8 GEMM 256×1024×1024 and 1×1024×1024 (uint8 activations × int8
weights), 3×3 conv 1×64×56×56 → 64 (pad 1) and depthwise 3×3 1×128×56×56 (pad 1). Each
implementation is timed on the same inputs; a round calls every implementation once, and the
table reports the best of all rounds, in process CPU time (robust to other load on the machine). GOP/s counts one
multiply and one add per MAC. What each backend computes:

* refquant: int32 accumulators (``acc_model="exact"``; :mod:`refquant.kernels`), bit-exact.
* ONNX Runtime (``ORT_DISABLE_ALL``, 1 intra-op thread, weights as constant initializers):
  ``MatMulInteger`` u8×s8 (int32 out) and ``QLinearConv`` u8×s8 with w zero point 0 (its
  symmetric fast path; uint8 out, requantization included); ``ConvInteger`` for reference.
* PyTorch fbgemm: ``torch.ao.nn.quantized.Linear`` / ``Conv2d`` (quint8 out, requant included).
* NumPy: ``int32 @`` (and, for convolutions, im2col + ``int32 @``).

Single thread everywhere: the BLAS/OpenMP thread variables are set before NumPy is
imported (and ``threadpoolctl`` limits BLAS when installed), ORT ``intra_op_num_threads=1``,
``torch.set_num_threads(1)``, ``NUMBA_NUM_THREADS=1``. ``OPENBLAS_CORETYPE`` is left as the
environment has it (it is printed): refquant's float32 GEMM is exact under any BLAS kernel.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    import threadpoolctl  # noqa: E402

    threadpoolctl.threadpool_limits(1)
except ImportError:  # pragma: no cover - optional
    threadpoolctl = None

from refquant.kernels.conv import conv2d as _conv2d  # noqa: E402
from refquant.kernels.conv import im2col_reference as _im2col_reference  # noqa: E402
from refquant.kernels.gemm import gemm as _gemm  # noqa: E402


def _best_of(impls: dict, rounds: int) -> dict:
    """Best time (s) of each callable over ``rounds`` interleaved rounds (after one warm-up).

    The time is the process's CPU time (``time.process_time``: all its threads), not wall time:
    every implementation runs single-threaded, so the two agree on an idle machine, and CPU
    time stays meaningful when other processes share the cores.
    """
    for f in impls.values():
        f()
    best = {k: float("inf") for k in impls}
    for _ in range(rounds):
        for k, f in impls.items():
            t0 = time.process_time()
            f()
            best[k] = min(best[k], time.process_time() - t0)
    return best


# ------------------------------------------------------------------ backends

def _ort_session(node, inputs, inits, out_type):
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", out_type, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_matmul_integer(a, b, za, zb):
    from onnx import TensorProto, helper

    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    sess = _ort_session(node, [helper.make_tensor_value_info("a", TensorProto.UINT8, list(a.shape))],
                        {"b": b, "za": np.array(za, np.uint8), "zb": np.array(zb, np.int8)}, TensorProto.INT32)
    return lambda: sess.run(None, {"a": a})[0]


def ort_conv(x, w, xz, wz, group, op):
    from onnx import TensorProto, helper

    attrs = dict(pads=[1, 1, 1, 1], group=group, kernel_shape=[3, 3])
    xin = [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))]
    if op == "ConvInteger":
        node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
        inits = {"w": w, "xz": np.array(xz, np.uint8), "wz": np.array(wz, np.int8)}
        out_type = TensorProto.INT32
    else:
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], **attrs)
        inits = {"xs": np.array(0.02, np.float32), "xz": np.array(xz, np.uint8), "w": w,
                 "ws": np.array(0.01, np.float32), "wz": np.array(wz, np.int8),
                 "ys": np.array(0.5, np.float32), "yz": np.array(128, np.uint8)}
        out_type = TensorProto.UINT8
    sess = _ort_session(node, xin, inits, out_type)
    return lambda: sess.run(None, {"x": x})[0]


def torch_linear(a, b, za):
    import torch

    torch.set_num_threads(1)
    torch.backends.quantized.engine = "fbgemm"
    lin = torch.ao.nn.quantized.Linear(b.shape[0], b.shape[1])
    wq = torch.quantize_per_tensor(torch.from_numpy(b.T.astype(np.float32)), 1.0, 0, torch.qint8)
    lin.set_weight_bias(wq, None)
    lin.scale, lin.zero_point = 64.0, 128
    xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(a), 1.0, int(za))
    return lambda: lin(xq)


def torch_conv(x, w, xz, groups):
    import torch

    torch.set_num_threads(1)
    torch.backends.quantized.engine = "fbgemm"
    conv = torch.ao.nn.quantized.Conv2d(x.shape[1], w.shape[0], 3, padding=1, groups=groups)
    wq = torch.quantize_per_tensor(torch.from_numpy(w.astype(np.float32)), 1.0, 0, torch.qint8)
    conv.set_weight_bias(wq, None)
    conv.scale, conv.zero_point = 64.0, 128
    xq = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), 1.0, int(xz))
    return lambda: conv(xq)


def _numpy_conv(x, w, xz, groups):
    """im2col (reference) + int32 @: NumPy's integer matmul on the same work as the conv."""
    C, O = x.shape[1], w.shape[0]
    Cg, Og = C // groups, O // groups
    def run():
        for g in range(groups):
            col = _im2col_reference(x[0, g * Cg:(g + 1) * Cg], (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), xz)
            w32 = w[g * Og:(g + 1) * Og].reshape(Og, -1).astype(np.int32)
            _ = w32 @ (col.astype(np.int32) - xz)
    return run


# ------------------------------------------------------------------ first-call compile time

_COMPILE_SNIPPET = r"""
import time, numpy as np
t0 = time.perf_counter(); from refquant.kernels.gemm import gemm; from refquant.kernels.conv import conv2d; t_import = time.perf_counter() - t0
a = np.ones((8, 16), np.uint8); b = np.ones((16, 8), np.int8)
x = np.ones((1, 4, 6, 6), np.uint8); w = np.ones((4, 4, 3, 3), np.int8); wd = np.ones((4, 1, 3, 3), np.int8)
out = {"import": t_import}
for name, f in (("gemm", lambda: gemm(a, b)),
                ("gemm_pairwise", lambda: gemm(a, b, acc_model="pairwise_sat16_u8s8")),
                ("conv2d", lambda: conv2d(x, w, pads=1)),
                ("conv2d_depthwise", lambda: conv2d(x, wd, pads=1, groups=4))):
    t0 = time.perf_counter(); f(); out[name] = time.perf_counter() - t0
print(__import__("json").dumps(out))
"""


def compile_times() -> dict:
    """First calls in fresh processes: with an empty Numba cache (compile) and then with it warm."""
    res = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "cached"):
            out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env, capture_output=True,
                                 text=True, check=True)
            res[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


# ------------------------------------------------------------------ main

def machine() -> dict:
    from refquant.cpu import detect_isa

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "?"
    if threadpoolctl is not None:
        info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
                         f"{i['num_threads']} thread)" for i in info) or "?"
    return {"cpu": cpu, "isa": detect_isa(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else 20
    rng = np.random.default_rng(0)
    rows = []

    def bench(label, ops, impls, rounds=rounds):
        best = _best_of(impls, rounds)
        rows.append({"shape": label, "gop": ops / 1e9, **{k: ops / v / 1e9 for k, v in best.items()}})
        print(f"  {label}: " + ", ".join(f"{k} {ops / v / 1e9:.2f} GOP/s" for k, v in best.items()), flush=True)

    def optional(impls, name, make):
        try:
            impls[name] = make()
        except ImportError:
            pass

    for M, K, N in ((256, 1024, 1024), (1, 1024, 1024)):
        a = rng.integers(0, 256, (M, K)).astype(np.uint8)
        b = rng.integers(-128, 128, (K, N)).astype(np.int8)
        za = 131
        impls = {"refquant": lambda: _gemm(a, b, za, 0)}
        optional(impls, "onnxruntime", lambda: ort_matmul_integer(a, b, za, 0))
        optional(impls, "torch_fbgemm", lambda: torch_linear(a, b, za))
        a32, b32 = a.astype(np.int32), b.astype(np.int32)
        impls_np = {"numpy_int32": lambda: a32 @ b32}
        label = f"GEMM {M}x{K}x{N}"
        bench(label, 2 * M * K * N, impls)
        best = _best_of(impls_np, 1 if M > 1 else rounds)  # NumPy int32 @ is slow: one round for the big one
        rows[-1]["numpy_int32"] = 2 * M * K * N / best["numpy_int32"] / 1e9

    for C, O, groups, label in ((64, 64, 1, "conv3x3 1x64x56x56->64"), (128, 128, 128, "depthwise3x3 1x128x56x56")):
        x = rng.integers(0, 256, (1, C, 56, 56)).astype(np.uint8)
        w = rng.integers(-128, 128, (O, C // groups, 3, 3)).astype(np.int8)
        impls = {"refquant": lambda: _conv2d(x, w, 128, 0, pads=1, groups=groups)}
        optional(impls, "onnxruntime", lambda: ort_conv(x, w, 128, 0, groups, "QLinearConv"))
        optional(impls, "ort_ConvInteger", lambda: ort_conv(x, w, 128, 0, groups, "ConvInteger"))
        optional(impls, "torch_fbgemm", lambda: torch_conv(x, w, 128, groups))
        ops = 2 * O * (C // groups) * 9 * 56 * 56
        bench(label, ops, impls)
        best = _best_of({"numpy_int32": _numpy_conv(x, w, 128, groups)}, 1)
        rows[-1]["numpy_int32"] = ops / best["numpy_int32"] / 1e9

    info = machine()
    comp = compile_times()
    print()
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    print("Single thread. GOP/s = 2·MACs / best process CPU time. ORT conv = QLinearConv (w zero point 0),"
          " torch = fbgemm quantized modules (both include requantization).\n")
    cols = ["refquant", "onnxruntime", "torch_fbgemm", "numpy_int32", "ort_ConvInteger"]
    print("| shape | " + " | ".join(cols) + " | refquant/ORT | refquant/NumPy |")
    print("|---" * (len(cols) + 3) + "|")
    for r in rows:
        cells = [f"{r[c]:.2f}" if c in r else "—" for c in cols]
        ratio = f"{r['refquant'] / r['onnxruntime']:.2f}×" if "onnxruntime" in r else "—"
        print(f"| {r['shape']} | " + " | ".join(cells) + f" | {ratio} | {r['refquant'] / r['numpy_int32']:.0f}× |")
    print("\nFirst call (s), fresh process: 'cold' = empty Numba cache (JIT compile), 'cached' = cache=True hit")
    print("| call | cold | cached |\n|---|---|---|")
    for k in comp["cold"]:
        print(f"| {k} | {comp['cold'][k]:.2f} | {comp['cached'][k]:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "rows": rows, "first_call_s": comp}, fh, indent=2)


if __name__ == "__main__":
    main()
