"""Knowledge distillation on the digits: a quarter-width student trained from labels only vs
distilled from the bundled cnn (Hinton et al., 2015), and with a FitNets hint.

    python benchmarks/distill_results.py            # tune on val, then 5 seeds on test (~10 min on 2 cores)
    python benchmarks/distill_results.py --quick    # 2 seeds, a smaller grid, 30 epochs (a smoke run)
    python benchmarks/distill_results.py --json out.json

Protocol (every number from a fixed seed):

1. Teacher: ``refquant.models.load_reference_model("cnn")`` (14,458 parameters).
   Student: the same architecture at a quarter of the channels, ``3×3 conv 1→4``, ``4→8``, 2×2 max
   pool, ``8→8``, global average pool, ``Linear 8→10``, each conv followed by BatchNorm2d and ReLU
   (1,030 parameters, 14× fewer).
2. Every student trains the same way: AdamW (lr 3e-3, weight decay 1e-4), cosine schedule, batch 32,
   ``EPOCHS`` epochs, no early stopping, on the ``train`` split; weights and shuffling seeded by the
   seed. The teacher's logits are computed once (evaluation mode).
3. T and alpha are chosen on the ``val`` split with the tuning seeds (100, 101, 102), then the hint
   weight (student layer "9", the last ReLU, against the teacher's "9", through a 1×1 conv adapter).
   The ``test`` split is used only for the final table.
4. Final: labels only / distilled / distilled + hint, seeds 0-4, test top-1 mean ± sample std
   (ddof=1), and the per-seed gain over labels only (same seed: same initial weights and batch
   order). 359 test images: one image is 0.28 points.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy: deterministic BLAS sums

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from refquant import models, nn  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.distill import distill, hint_distill  # noqa: E402

TUNE_SEEDS = (100, 101, 102)
GRID_T = (1.0, 2.0, 4.0, 8.0)
GRID_ALPHA = (0.5, 0.9)
HINT_WEIGHTS = (0.1, 1.0)


def build_student(seed: int, width: int = 4) -> nn.Sequential:
    """The cnn's architecture with ``width`` / 16 of its channels (``width=4``: a quarter)."""
    g = np.random.default_rng(seed)
    c1, c2 = width, 2 * width

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False, rng=g), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(1, c1), *block(c1, c2), nn.MaxPool2d(2), *block(c2, c2), nn.GlobalAvgPool2d(),
                         nn.Linear(c2, 10, rng=g))


def train(kind: str, seed: int, data, epochs: int, teacher, **kd) -> nn.Module:
    """One student: ``kind`` in "labels", "kd", "hint"; returns it trained."""
    (x, y) = data
    student = build_student(seed)
    opt = nn.AdamW(student, lr=3e-3, weight_decay=1e-4)
    common = dict(epochs=epochs, batch_size=32, optimizer=opt, scheduler=nn.CosineLR(opt, epochs), seed=seed)
    if kind == "labels":
        nn.fit(student, x, y, progress=False, **common)
    elif kind == "kd":
        distill(student, teacher, x, y, temperature=kd["temperature"], alpha=kd["alpha"], **common)
    else:
        hint_distill(student, teacher, x, y, student_layer="9", teacher_layer="9", **kd, **common)
    return student


def _mean(xs) -> float:
    return float(np.mean(xs))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, T in {2, 8}, alpha 0.5, 30 epochs")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    epochs = 30 if args.quick else 60
    seeds = (0, 1) if args.quick else (0, 1, 2, 3, 4)
    tune_seeds = TUNE_SEEDS[:2] if args.quick else TUNE_SEEDS
    grid = list(itertools.product((2.0, 8.0) if args.quick else GRID_T, (0.5,) if args.quick else GRID_ALPHA))

    train_data, (xv, yv), (xt, yt) = load_digits("train"), load_digits("val"), load_digits("test")
    teacher = models.load_reference_model("cnn")
    t0 = time.perf_counter()

    # 1. T and alpha on val
    val = {"labels": _mean([nn.evaluate(train("labels", s, train_data, epochs, teacher), xv, yv) for s in tune_seeds])}
    for t, a in grid:
        val[f"kd T={t:g} alpha={a:g}"] = _mean([nn.evaluate(train("kd", s, train_data, epochs, teacher, temperature=t,
                                                                   alpha=a), xv, yv) for s in tune_seeds])
        print(f"val  T={t:g} alpha={a:g}: {val[f'kd T={t:g} alpha={a:g}']:.4f}", flush=True)
    best_t, best_a = max(grid, key=lambda ta: val[f"kd T={ta[0]:g} alpha={ta[1]:g}"])
    kd = dict(temperature=best_t, alpha=best_a)
    # 2. the hint weight on val, with that T and alpha
    for w in HINT_WEIGHTS:
        val[f"hint beta={w:g}"] = _mean([nn.evaluate(train("hint", s, train_data, epochs, teacher, hint_weight=w, **kd),
                                                     xv, yv) for s in tune_seeds])
        print(f"val  hint beta={w:g}: {val[f'hint beta={w:g}']:.4f}", flush=True)
    best_w = max(HINT_WEIGHTS, key=lambda w: val[f"hint beta={w:g}"])

    # 3. test, fresh seeds
    test = {"labels only": [], f"distilled (T={best_t:g}, alpha={best_a:g})": [],
            f"distilled + hint (beta={best_w:g})": []}
    for s in seeds:
        for name, kind, extra in zip(test, ("labels", "kd", "hint"), ({}, kd, dict(kd, hint_weight=best_w))):
            test[name].append(nn.evaluate(train(kind, s, train_data, epochs, teacher, **extra), xt, yt))
        print(f"test seed {s}: " + ", ".join(f"{v[-1]:.4f}" for v in test.values()), flush=True)

    student_params = build_student(0).num_parameters()
    result = {"epochs": epochs, "seeds": list(seeds), "tune_seeds": list(tune_seeds), "val": val,
              "chosen": {"temperature": best_t, "alpha": best_a, "hint_weight": best_w},
              "teacher": {"params": teacher.num_parameters(), "test_top1": nn.evaluate(teacher, xt, yt)},
              "student_params": student_params, "test": test, "seconds": time.perf_counter() - t0}
    print(f"\nteacher cnn: {result['teacher']['params']:,} parameters, test top-1 "
          f"{result['teacher']['test_top1']:.4f}; student: {student_params:,} parameters; {epochs} epochs, "
          f"seeds {list(seeds)}\n")
    print("| student | test top-1 (mean ± std) | per seed |\n|---|---|---|")
    for name, v in test.items():
        print(f"| {name} | {np.mean(v):.4f} ± {np.std(v, ddof=1):.4f} | {', '.join(f'{a:.4f}' for a in v)} |")
    names = list(test)
    for name in names[1:]:
        diff = np.array(test[name]) - np.array(test[names[0]])
        result.setdefault("paired_gain", {})[name] = diff.tolist()
        print(f"\n{name} − labels only, same seed: {', '.join(f'{d:+.4f}' for d in diff)} "
              f"(mean {diff.mean():+.4f}, better in {(diff > 0).sum()}/{len(diff)} seeds)", end="")
    print(f"\n\n({result['seconds']:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
