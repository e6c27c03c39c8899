"""A pruning mask saves nothing by itself: the same bytes, the same multiply-adds, the same time (Learn 16, §1)."""
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from refquant import prune
from refquant.data import load_digits
from refquant.evaluate import model_bytes
from refquant.kernels.gemm import gemm
from refquant.models import load_reference_model
from refquant.ptq import quantize_static

x_calibration = load_digits("train")[0][:512]

# 1. Bytes. Prune 90 % of the MLP's weights (the zeros stay in the arrays) and store both models.
dense = load_reference_model("mlp")
pruned = load_reference_model("mlp")
prune.apply_masks(pruned, prune.magnitude_masks(pruned, 0.9, scope="global")).remove()
print(f"zeros: dense {prune.sparsity(dense).overall:.1%}, pruned {prune.sparsity(pruned).overall:.1%}")
bytes_ = {"float32": (model_bytes(dense), model_bytes(pruned)),
          "int8": (quantize_static(dense, x_calibration, profile="pytorch_fbgemm").nbytes,
                   quantize_static(pruned, x_calibration, profile="pytorch_fbgemm").nbytes)}
for fmt, (d, p) in bytes_.items():
    print(f"{fmt:>7s} model bytes: dense {d:,}, 90 % zeros {p:,}")
    assert d == p                                                     # a zero is stored like any other value
assert pruned[3].weight.value.nbytes == dense[3].weight.value.nbytes == 64 * 128 * 4

# 2. Time. A dense kernel multiplies every entry, zero or not: the same O·K·N multiply-adds.
CLOCK = time.process_time                                             # this process's CPU time


def best_us(fs, repeats=21):
    """Best µs per call of each function over `repeats` runs of ~2 ms loops, the functions interleaved.
    The best run, as timeit reports it: load from other processes only ever adds time, and with the
    runs interleaved a quiet moment reaches every function."""
    calls = []
    for f in fs:
        f()                                                           # warm-up: JIT compilation, caches
        t0, n = CLOCK(), 0
        while CLOCK() - t0 < 2e-3 or n < 1:
            f()
            n += 1
        calls.append(n)
    runs = [[] for _ in fs]
    for _ in range(repeats):
        for f, n, r in zip(fs, calls, runs):
            t0 = CLOCK()
            for _ in range(n):
                f()
            r.append((CLOCK() - t0) / n)
    return [1e6 * min(r) for r in runs]


rng = np.random.default_rng(0)
O, K, N = 256, 1024, 32
w = rng.integers(-127, 128, (O, K)).astype(np.int8)                  # (O, K) int8 weight codes, zero point 0
w_zeros = w.copy()
w_zeros.reshape(-1)[rng.permutation(O * K)[:int(0.9 * O * K)]] = 0   # 90 % of the codes set to the zero point
x = rng.integers(0, 256, (N, K)).astype(np.uint8)                    # (N, K) uint8 activations, zero point 128
wt, wt_zeros = np.ascontiguousarray(w.T), np.ascontiguousarray(w_zeros.T)   # (K, O): gemm's operand
xf = x.astype(np.float32)
wf, wf_zeros = np.ascontiguousarray(w.T, np.float32), np.ascontiguousarray(w_zeros.T, np.float32)
threads = numba.get_num_threads()
numba.set_num_threads(1)                                              # one thread for each kernel: CPU time is
try:                                                                  # then one core's, whatever else runs
    with threadpool_limits(limits=1, user_api="blas"):
        times = {"int8 gemm (refquant kernel)": best_us([lambda: gemm(x, wt, np.uint8(128), np.int8(0)),
                                                           lambda: gemm(x, wt_zeros, np.uint8(128), np.int8(0))]),
                 "float32 matmul (NumPy BLAS)": best_us([lambda: xf @ wf, lambda: xf @ wf_zeros])}
finally:
    numba.set_num_threads(threads)
for name, (t_dense, t_zeros) in times.items():
    print(f"{name}: dense weight {t_dense:.1f} µs, 90 % zeros {t_zeros:.1f} µs ({t_dense / t_zeros:.2f}x)")
    assert 0.5 < t_dense / t_zeros < 2.0                              # no speed-up: the zeros are multiplied too
