"""Sparse int8 weights: bytes of dense / CSR / bitmask / 2:4 and time of the dense vs the sparse kernel.

For each weight shape (O, K) and sparsity (0, 50, 70, 80, 90, 95 %, plus 98 and 99 %, where the time
break-even lies on a CPU with int8 dot-product instructions), a random int8 weight (zero point 0) is pruned uniformly at
random (exactly round(s·O·K) entries set to the zero point), stored with :mod:`refquant.prune.sparse`
and multiplied by a uint8 activation batch (N = 1 and 32) with

* dense:  ``refquant.kernels.gemm.gemm(x, W^T, z_x, z_w)`` (W^T made contiguous once, outside the timing),
* sparse: ``refquant.kernels.sparse.sparse_matmul_int8(x, z_x, csr.values, csr.col_idx, csr.row_ptr, z_w)``,

both as a user calls them (argument checks included). Each time is the median over ``--repeats`` runs
of a loop of calls lasting about 2 ms, dense and sparse runs interleaved (background load falls on
both alike), after a warm-up call (JIT compilation excluded). Every sparse result is checked ``==`` against the dense one. 2:4 bytes are shown where the weight is 2:4 sparse;
the last row of each shape is a 2:4-structured weight (50 %, the two largest of every four kept).

Run: ``python benchmarks/sparse.py [--repeats 15] [--threads N] [--clock wall|cpu]`` (seeded: ``--seed 0``).
On a machine shared with other work, ``--threads 1 --clock cpu`` measures this process's CPU time,
which other processes do not inflate.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from refquant.kernels.gemm import gemm
from refquant.kernels.sparse import sparse_matmul_int8
from refquant.prune.sparse import break_even_sparsity, storage_table, to_csr

SHAPES = [(256, 1024), (64, 576)]
SPARSITIES = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]  # 98 and 99 %: where the time break-even lies here
BATCHES = [1, 32]


CLOCK = time.perf_counter  # --clock cpu: time.process_time (this process's CPU time, all its threads)


def _calls_per_run(f) -> int:
    """How many calls of f take about 2 ms (at least one)."""
    t0, calls = CLOCK(), 0
    while CLOCK() - t0 < 2e-3 or calls < 1:
        f()
        calls += 1
    return calls


def _median_seconds(fs, repeats: int) -> list:
    """Median seconds per call of each function; one run of each per repeat, interleaved, so that
    background load on the machine falls on all of them alike. A warm-up call first (compilation)."""
    for f in fs:
        f()
    calls = [_calls_per_run(f) for f in fs]
    runs = [[] for _ in fs]
    for _ in range(repeats):
        for f, n, r in zip(fs, calls, runs):
            t0 = CLOCK()
            for _ in range(n):
                f()
            r.append((CLOCK() - t0) / n)
    return [float(np.median(r)) for r in runs]


def _weight(rng, shape, sparsity):
    O, K = shape
    w = rng.integers(-127, 127, size=shape, endpoint=True).astype(np.int8)
    w[w == 0] = 1  # a random code 0 would add to the sparsity by accident
    w.reshape(-1)[rng.permutation(O * K)[:round(sparsity * O * K)]] = 0
    return w


def _two_four(w):
    """Keep the two largest |w| of every four consecutive columns."""
    g = w.reshape(w.shape[0], -1, 4).copy()
    drop = np.argsort(np.abs(g.astype(np.int16)), axis=-1, kind="stable")[..., :2]
    np.put_along_axis(g, drop, 0, axis=-1)
    return g.reshape(w.shape)


def _crossing(xs, ys):
    """The x from which ys (sparse minus dense) stays <= 0 up to the end of the sweep, linearly
    interpolated from the point before; None if the last point is still > 0."""
    i = len(ys)
    while i > 0 and ys[i - 1] <= 0:
        i -= 1
    if i == len(ys):
        return None
    if i == 0:
        return xs[0]
    (x0, y0), (x1, y1) = (xs[i - 1], ys[i - 1]), (xs[i], ys[i])
    return x0 + (x1 - x0) * y0 / (y0 - y1)


def _fmt(v, digits=1):
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def run(repeats: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clock = "CPU time (process_time)" if CLOCK is time.process_time else "wall time (perf_counter)"
    print(f"refquant sparse benchmark: numba {numba.__version__}, {numba.get_num_threads()} Numba thread(s), "
          f"{clock}, median of {repeats} repeats, seed {seed}; load average {os.getloadavg()[0]:.1f}\n")
    for shape in SHAPES:
        K = shape[1]
        cases = [(f"{100 * s:.0f} %", _weight(rng, shape, s)) for s in SPARSITIES]
        cases.append(("50 % (2:4)", _two_four(_weight(rng, shape, 0.0))))
        xs = {N: rng.integers(0, 255, size=(N, K), endpoint=True).astype(np.uint8) for N in BATCHES}
        print(f"## weight (O, K) = {shape} int8, zero point 0; activations uint8, zero point 128")
        print(f"{'sparsity':>11} | {'dense B':>8} | {'CSR B':>8} | {'bitmask B':>9} | {'2:4 B':>7} | "
              + " | ".join(f"dense N={N} µs | sparse N={N} µs | speed-up" for N in BATCHES))
        rows = []
        for label, w in cases:
            t = storage_table(w)
            b = t["bytes"]
            csr = to_csr(w)
            wt = np.ascontiguousarray(w.T)  # (K, O) the dense kernel's operand, prepared once
            times = []
            for N in BATCHES:
                x = xs[N]
                want = gemm(x, wt, np.uint8(128), np.int8(0))
                got = sparse_matmul_int8(x, np.uint8(128), csr.values, csr.col_idx, csr.row_ptr, np.int8(0))
                assert np.array_equal(got, want), f"sparse != dense at {shape} {label} N={N}"
                td, ts = _median_seconds([
                    lambda x=x, wt=wt: gemm(x, wt, np.uint8(128), np.int8(0)),
                    lambda x=x, c=csr: sparse_matmul_int8(x, np.uint8(128), c.values, c.col_idx, c.row_ptr, np.int8(0)),
                ], repeats)
                times.append((td, ts))
            rows.append((label, t["sparsity"], b, times))
            print(f"{label:>11} | {b['dense']:>8} | {b['csr']:>8} | {b['bitmask']:>9} | "
                  f"{'—' if b['2:4'] is None else b['2:4']:>7} | "
                  + " | ".join(f"{1e6 * td:>14.1f} | {1e6 * ts:>15.1f} | {td / ts:>7.2f}x" for td, ts in times))
        sweep = rows[:len(SPARSITIES)]
        s = [r[1] for r in sweep]
        csr_cross = _crossing(s, [r[2]["csr"] - r[2]["dense"] for r in sweep])
        print(f"break-even, bytes (int8 values): CSR measured {_fmt(csr_cross)} (exact {_fmt(break_even_sparsity('csr', shape, 'int8'), 2)}; float32 values "
              f"{_fmt(break_even_sparsity('csr', shape, 'float32'), 2)}), bitmask measured "
              f"{_fmt(_crossing(s, [r[2]['bitmask'] - r[2]['dense'] for r in sweep]))} (exact "
              f"{_fmt(break_even_sparsity('bitmask', shape, 'int8'), 2)}; float32 "
              f"{_fmt(break_even_sparsity('bitmask', shape, 'float32'), 2)})")
        for i, N in enumerate(BATCHES):
            cross = _crossing(s, [r[3][i][1] - r[3][i][0] for r in sweep])
            print(f"break-even, time, batch {N}: sparse kernel faster than dense "
                  + (f"from {_fmt(cross)} on (linear interpolation)" if cross is not None else "nowhere in the sweep"))
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: Numba's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: this process's CPU time, robust on a shared machine (use with --threads 1)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        numba.set_num_threads(args.threads)
    run(args.repeats, args.seed)


if __name__ == "__main__":
    main()
