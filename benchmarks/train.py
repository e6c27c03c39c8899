"""Benchmark the float training library on the reference models, next to PyTorch (issue 4 §5).

    python benchmarks/train.py             # train the four models from scratch, then forward throughput
    python benchmarks/train.py --quick     # forward throughput only (bundled weights), fewer rounds
    python benchmarks/train.py --json out.json

Two tables:

1. **Training from scratch**: each reference model with its recipe from
   ``benchmarks/train_reference_models.py`` (same seed, same early stopping), timed as wall
   time and as process CPU time, plus the test accuracy reached. Training runs NumPy's BLAS
   on **one thread** (``OPENBLAS_NUM_THREADS=1``, as the training script does for bit-for-bit
   reproducibility); on the 2-core target machine the other core is idle.
2. **Forward throughput** (images/s) of each bundled float model in evaluation mode, refquant
   (NumPy + the Numba depthwise kernel) and PyTorch (when installed) on the same weights and
   the same batch of test images, **single thread for both** (BLAS/OpenMP/Numba variables set
   before NumPy is imported, ``torch.set_num_threads(1)``, ``torch.inference_mode()``). The
   PyTorch model is built layer for layer from the refquant one (:func:`to_torch`) and its
   outputs are checked against refquant's before timing. Times are the best of several
   interleaved rounds of process CPU time, which other load on the machine disturbs least.
   ``ratio`` = PyTorch images/s ÷ refquant images/s (the target is ≤ 3 at batch 256).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from refquant import nn  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.models import list_reference_models, load_reference_model  # noqa: E402


def _load_training_script():
    """``benchmarks/train_reference_models.py`` as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parent / "train_reference_models.py"
    spec = importlib.util.spec_from_file_location("train_reference_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def to_torch(model: nn.Module):
    """The same network as a ``torch.nn.Module`` with the same weights (evaluation mode).

    Covers the layers of the reference models: Sequential, Residual, Linear, Conv2d
    (symmetric padding), BatchNorm2d, ReLU, ReLU6, MaxPool2d, GlobalAvgPool2d, Flatten.
    Parameter and buffer names match refquant's dotted names, so one ``load_state_dict``
    copies them.
    """
    import torch

    T = torch.nn

    class Residual(T.Module):
        def __init__(self, body, shortcut, activation):
            super().__init__()
            self.body, self.shortcut, self.activation = body, shortcut, activation

        def forward(self, x):
            y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
            return y if self.activation is None else self.activation(y)

    class GlobalAvgPool(T.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    def convert(m):
        if m is None:
            return None
        if isinstance(m, nn.Sequential):
            return T.Sequential(*[convert(c) for c in m])
        if isinstance(m, nn.Residual):
            return Residual(convert(m.body), convert(m.shortcut), convert(m.activation))
        if isinstance(m, nn.Linear):
            return T.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        if isinstance(m, nn.Conv2d):
            pt, pb, pl, pr = m.padding
            if (pt, pl) != (pb, pr):
                raise NotImplementedError(f"asymmetric padding {m.padding} has no torch.nn.Conv2d equivalent")
            return T.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, (pt, pl), m.dilation,
                            m.groups, bias=m.bias is not None)
        if isinstance(m, nn.BatchNorm2d):
            return T.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
        if isinstance(m, nn.MaxPool2d):
            return T.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation)
        simple = {nn.ReLU: T.ReLU, nn.ReLU6: T.ReLU6, nn.Flatten: T.Flatten, nn.GlobalAvgPool2d: GlobalAvgPool}
        if type(m) in simple:
            return simple[type(m)]()
        raise NotImplementedError(f"no torch equivalent for {type(m).__name__}")

    theirs = convert(model)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise RuntimeError(f"state mismatch: missing {missing}, unexpected {unexpected}")
    return theirs.eval()


def _best_cpu_time(impls: dict, rounds: int, min_time: float = 0.05) -> dict:
    """Best process CPU time (s) per call of each callable over ``rounds`` interleaved rounds.

    Each round repeats a callable until ``min_time`` has passed (after one warm-up call).
    """
    reps = {}
    for k, f in impls.items():
        f()
        t0 = time.process_time()
        f()
        reps[k] = max(1, int(min_time / max(time.process_time() - t0, 1e-6)))
    best = {k: float("inf") for k in impls}
    for _ in range(rounds):
        for k, f in impls.items():
            t0 = time.process_time()
            for _ in range(reps[k]):
                f()
            best[k] = min(best[k], (time.process_time() - t0) / reps[k])
    return best


def bench_training(names) -> list[dict]:
    script = _load_training_script()
    rows = []
    for name in names:
        w0, c0 = time.perf_counter(), time.process_time()
        _, rec = script.train_one(name)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        rows.append({"model": name, "wall_s": wall, "cpu_s": cpu, "epochs": rec["epochs_run"],
                     "cpu_s_per_epoch": cpu / rec["epochs_run"], "test_accuracy": rec["test_accuracy"]})
        print(f"trained {name:10s} {wall:6.1f} s wall, {cpu:6.1f} s CPU, {rec['epochs_run']} epochs, "
              f"test {100 * rec['test_accuracy']:.2f} %", flush=True)
    return rows


def bench_forward(names, batches, rounds: int) -> list[dict]:
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except ImportError:
        torch = None
    x_test, _ = load_digits("test")
    rows = []
    for name in names:
        model = load_reference_model(name)
        theirs = to_torch(model) if torch is not None else None
        for batch in batches:
            x = np.ascontiguousarray(np.resize(x_test, (batch,) + x_test.shape[1:]))  # (B, 1, 8, 8) float32
            impls = {"refquant": lambda: model(x)}
            if theirs is not None:
                xt = torch.from_numpy(x)

                def run_torch(theirs=theirs, xt=xt):
                    with torch.inference_mode():
                        return theirs(xt)

                err = float(np.abs(run_torch().numpy() - model(x)).max())
                if err > 1e-3:
                    raise RuntimeError(f"{name}: torch and refquant outputs differ by {err}")
                impls["torch"] = run_torch
            best = _best_cpu_time(impls, rounds)
            row = {"model": name, "batch": batch, "refquant_img_s": batch / best["refquant"]}
            if "torch" in best:
                row["torch_img_s"] = batch / best["torch"]
                row["ratio"] = row["torch_img_s"] / row["refquant_img_s"]
            rows.append(row)
            print(f"forward {name:10s} batch {batch:4d}: refquant {row['refquant_img_s']:10.0f} img/s"
                  + (f", torch {row['torch_img_s']:10.0f} img/s, ratio {row['ratio']:.2f}" if "ratio" in row else ""),
                  flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Training and forward-throughput benchmark of refquant.nn")
    p.add_argument("--quick", action="store_true", help="skip training; fewer forward rounds")
    p.add_argument("--models", nargs="+", default=None, help="subset of the reference models")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    names = args.models or list_reference_models()
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"NumPy {np.__version__}, torch {torch_version or 'not installed'}; single thread for both\n")
    train_rows = [] if args.quick else bench_training(names)
    fwd_rows = bench_forward(names, args.batches, rounds=3 if args.quick else 7)

    if train_rows:
        print("\n| model | train time (wall) | CPU time | epochs | CPU s/epoch | test accuracy |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in train_rows:
            print(f"| `{r['model']}` | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {r['epochs']} | "
                  f"{r['cpu_s_per_epoch']:.2f} | {100 * r['test_accuracy']:.2f} % |")
    print("\n| model | batch | refquant img/s | PyTorch img/s | PyTorch ÷ refquant |")
    print("|---|---:|---:|---:|---:|")
    for r in fwd_rows:
        print(f"| `{r['model']}` | {r['batch']} | {r['refquant_img_s']:,.0f} | "
              f"{r.get('torch_img_s', float('nan')):,.0f} | {r.get('ratio', float('nan')):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"numpy": np.__version__, "torch": torch_version, "training": train_rows,
                                         "forward": fwd_rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
