"""Pruning results on the bundled models: accuracy after fine-tuning, sparsity, size and latency.

    python benchmarks/prune_results.py                  # cnn and mlp (~1-3 min on 2 cores)
    python benchmarks/prune_results.py --models cnn --epochs 3

For each model and technique (seeds fixed):

* **magnitude 50 % (layer)** / **(global)**: ``prune.magnitude_masks`` at sparsity 0.5 per layer, or
  with one threshold across layers; **random 50 %**: ``prune.random_masks`` (the baseline);
* **2:4**: ``prune.nm_masks(n=2, m=4, pad=True)`` (the cnn's first convolution has 9 weights per
  filter: its last group of 1 keeps that weight);
* **structured 30 %**: ``prune.prune_channels(model, 0.3)`` (l1 filter norms; the thinnable layers);
* **90 %** magnitude (global) and random: beyond the targets, where the criterion matters (at 50 % the
  digits are easy enough that fine-tuning recovers even random masks).

Each pruned model is fine-tuned on the train split (``nn.fit``, Adam, lr ``--lr`` = 1e-3, fit's default
and a third of the reference models' training lr, ``--epochs`` = 10 epochs, batch 32, shuffling seed 0,
the masked weights kept at 0 by ``prune.apply_masks``), validated on "val" after every epoch (*val* is
the last epoch's; the last epoch's weights are kept, no selection), and measured on the test split
(359 images: one image is 0.28 points). *before FT* is the test accuracy right after pruning.
*zeros* is ``prune.sparsity(model).overall`` (Linear/Conv2d weights that are 0); *params* is
``num_parameters()`` (BatchNorm included). *latency* is the median of ``--repeats`` batch-1
``nn.predict`` calls on test images (``refquant.evaluate.latency``), measured only for the float and
the structured model (the masked models have the float model's shapes and dense cost).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from refquant import evaluate, nn, prune
from refquant.data import load_digits
from refquant.models import load_reference_model


def _acc(model, x, y) -> float:
    return nn.evaluate(model, x, y)


def _latency_ms(model, x, repeats: int) -> float:
    return evaluate.latency(lambda b: nn.predict(model, b), x, repeats=repeats, warmup=20).median_ms


def _finetune(model, data, *, epochs: int, lr: float, masks=None):
    """Fine-tune in place (masked weights kept at 0 when ``masks`` is given); return the History."""
    (x, y), val = data["train"], data["val"]
    opt = nn.Adam(model, lr=lr)
    handle = prune.apply_masks(model, masks, optimizer=opt) if masks is not None else None
    try:
        return nn.fit(model, x, y, epochs=epochs, batch_size=32, optimizer=opt, validation_data=val,
                      seed=0, progress=False)
    finally:
        if handle is not None:
            handle.remove()


def rows_for(name: str, data, args) -> list[dict]:
    x_test, y_test = data["test"]
    base = load_reference_model(name)
    base_acc = _acc(base, x_test, y_test)
    rows = [dict(model=name, technique="float32", before=None, after=base_acc, val=_acc(base, *data["val"]),
                 zeros=prune.sparsity(base).overall, params=base.num_parameters(),
                 latency=_latency_ms(base, x_test, args.repeats), seconds=0.0)]
    mask_makers = {
        "magnitude 50% (layer)": lambda m: prune.magnitude_masks(m, 0.5, scope="layer"),
        "magnitude 50% (global)": lambda m: prune.magnitude_masks(m, 0.5, scope="global"),
        "random 50% (baseline)": lambda m: prune.random_masks(m, 0.5, seed=0),
        "2:4": lambda m: prune.nm_masks(m, 2, 4, pad=True),
        "magnitude 90% (global)": lambda m: prune.magnitude_masks(m, 0.9, scope="global"),
        "random 90% (baseline)": lambda m: prune.random_masks(m, 0.9, seed=0),
    }
    for technique, make in mask_makers.items():
        t0 = time.perf_counter()
        model = load_reference_model(name)
        masks = make(model)
        prune.apply_masks(model, masks).remove()  # zero the pruned weights
        before = _acc(model, x_test, y_test)
        hist = _finetune(model, data, epochs=args.epochs, lr=args.lr, masks=masks)
        rows.append(dict(model=name, technique=technique, before=before, after=_acc(model, x_test, y_test),
                         val=hist.val_accuracy[-1],
                         zeros=prune.sparsity(model).overall, params=model.num_parameters(), latency=None,
                         seconds=time.perf_counter() - t0))
    t0 = time.perf_counter()
    small = prune.prune_channels(load_reference_model(name), 0.3)
    before = _acc(small, x_test, y_test)
    hist = _finetune(small, data, epochs=args.epochs, lr=args.lr)
    seconds = time.perf_counter() - t0
    rows.append(dict(model=name, technique="structured 30% (l1, thinned)", before=before,
                     after=_acc(small, x_test, y_test), val=hist.val_accuracy[-1], zeros=prune.sparsity(small).overall,
                     params=small.num_parameters(), latency=_latency_ms(small, x_test, args.repeats),
                     seconds=seconds))
    for r in rows:
        r["delta"] = 100 * (r["after"] - base_acc)
    return rows


def table(rows) -> str:
    head = ("| model | technique | test top-1 before FT | test top-1 after FT | Δ vs float (points) | val top-1 "
            "| zeros | params | batch-1 predict (ms, median) | time (s) |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        before = "-" if r["before"] is None else f"{100 * r['before']:.2f} %"
        lat = "-" if r["latency"] is None else f"{r['latency']:.3f}"
        lines.append(f"| {r['model']} | {r['technique']} | {before} | {100 * r['after']:.2f} % | {r['delta']:+.2f} "
                     f"| {100 * r['val']:.2f} % | {100 * r['zeros']:.1f} % | {r['params']:,} | {lat} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["cnn", "mlp"], choices=["mlp", "cnn", "resnet", "mobilenet"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--repeats", type=int, default=1000, help="timed batch-1 calls per latency")
    args = p.parse_args(argv)
    nn.manual_seed(0)
    data = {split: load_digits(split) for split in ("train", "val", "test")}
    rows = []
    for name in args.models:
        rows += rows_for(name, data, args)
    print(f"# Pruning results (numpy {np.__version__}, {platform.machine()}, fine-tuning: Adam lr {args.lr}, "
          f"{args.epochs} epochs, batch 32, last epoch)\n")
    print(table(rows))


if __name__ == "__main__":
    main()
