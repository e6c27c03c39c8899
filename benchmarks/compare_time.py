"""How long ``refquant compare`` takes end to end: the issue's budget is two minutes on two cores.

    python benchmarks/compare_time.py              # the default run, warm and cold Numba cache
    python benchmarks/compare_time.py --runs 3     # three warm runs (median)
    python benchmarks/compare_time.py -- --model resnet --report /tmp/r   # any compare options after --

Each run is a fresh ``python -m refquant compare`` process (imports, data, model, every technique,
the table), timed by wall clock. *cold* points ``NUMBA_CACHE_DIR`` at an empty directory, so every
Numba kernel compiles as on a fresh install; *warm* reuses the cache the earlier runs wrote. The
load average is printed beside each time: other processes on the machine slow a run down.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET_SECONDS = 120.0


def timed_run(options: list[str], env: dict) -> float:
    cmd = [sys.executable, "-m", "refquant", "compare", "--no-progress", *options]
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {res.returncode}:\n{res.stderr}")
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="warm runs (default 1); the median is reported")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-cache run")
    ap.add_argument("options", nargs=argparse.REMAINDER, help="options passed to refquant compare, after --")
    args = ap.parse_args(argv)
    options = [o for o in args.options if o != "--"]
    print(f"refquant compare {' '.join(options) or '(defaults)'}: Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs")
    rows = []
    if not args.no_cold:
        with tempfile.TemporaryDirectory() as cache:
            load = os.getloadavg()[0]
            rows.append(("cold (empty Numba cache)", timed_run(options, dict(os.environ, NUMBA_CACHE_DIR=cache)), load))
    warm = []
    for _ in range(args.runs):
        load = os.getloadavg()[0]
        warm.append((timed_run(options, dict(os.environ)), load))
    rows.append((f"warm (median of {len(warm)})", statistics.median(s for s, _ in warm),
                 statistics.median(x for _, x in warm)))
    for label, seconds, load in rows:
        verdict = "within" if seconds <= BUDGET_SECONDS else "OVER"
        print(f"  {label:<28} {seconds:6.1f} s  ({verdict} the {BUDGET_SECONDS:.0f} s budget; load average {load:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
