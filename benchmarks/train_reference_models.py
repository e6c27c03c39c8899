"""Train the bundled reference models (:mod:`refquant.models`) from a fixed seed.

    python benchmarks/train_reference_models.py                  # train all four, write the files
    python benchmarks/train_reference_models.py --check          # retrain, compare with the bundled files
    python benchmarks/train_reference_models.py --models cnn --out /tmp/models

Each model is built with ``rng=seed``, trained by :func:`refquant.nn.fit` on the digits
``train`` split (AdamW, cosine learning-rate schedule, shuffling seeded with ``seed``),
with early stopping on the ``val`` split (the best epoch's weights are kept), then
evaluated once on the ``test`` split. The script writes, into ``--out`` (default: the
package's ``refquant/data/models/``):

* ``<name>.npz`` — architecture and weights (:func:`refquant.nn.save`, fixed zip timestamps);
* ``reference_models.json`` — recipe, epochs, accuracies and sha256 of each file, which
  :func:`refquant.models.reference_model_info` reads and ``tests/test_models.py`` checks;

and prints a Markdown table; ``--update-readme`` also puts that table into
``refquant/data/README.md`` between the ``reference-models`` markers.

**Determinism.** On the same machine, with the same NumPy/BLAS, the files come out bit for
bit the same. The script sets ``OPENBLAS_NUM_THREADS=1`` (and the OpenMP/MKL/Numba thread
counts) *before NumPy is imported*, because a multi-threaded BLAS may split a matrix product
differently from run to run and change the last bits of a sum; every random number comes
from a generator seeded here (weights: ``rng=seed``; shuffling: ``fit(seed=seed)``). Another
CPU or BLAS build may round differently and train slightly different weights; the recorded
accuracies are for the bundled files, whatever machine evaluates them.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported: see "Determinism" above

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from refquant import nn  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.models import REFERENCE_MODELS, build_reference_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_MODELS = ROOT / "refquant" / "data" / "models"
README = ROOT / "refquant" / "data" / "README.md"
INDEX = "reference_models.json"
INDEX_VERSION = 1
MARK_BEGIN = "<!-- reference-models:begin (written by benchmarks/train_reference_models.py --update-readme) -->"
MARK_END = "<!-- reference-models:end -->"
COMMAND = "python benchmarks/train_reference_models.py --update-readme"


@dataclass(frozen=True)
class Recipe:
    """How one model is trained (recorded in ``reference_models.json``)."""

    seed: int = 0
    optimizer: str = "AdamW"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # CosineLR over `epochs`
    batch_size: int = 32
    epochs: int = 20  # at most
    patience: int = 5  # early stopping: epochs without a better validation accuracy


RECIPES = {
    "mlp": Recipe(epochs=30, patience=8),
    "cnn": Recipe(epochs=15),
    "resnet": Recipe(epochs=15),
    "mobilenet": Recipe(epochs=15, lr=2e-3),
}


def train_one(name: str, recipe: Recipe | None = None, *, epochs: int | None = None,
              progress: bool = False) -> tuple[nn.Module, dict]:
    """Build ``name`` from ``recipe.seed``, train it, evaluate it on the test split.

    Args:
        name: one of :data:`refquant.models.REFERENCE_MODELS`.
        recipe: default ``RECIPES[name]``.
        epochs: override ``recipe.epochs`` (a short run for tests).
        progress: show :func:`refquant.nn.fit`'s progress output.

    Returns:
        ``(model, record)``: the trained model (evaluation mode) and what
        ``reference_models.json`` stores for it (without the file's name and hash).
    """
    recipe = RECIPES[name] if recipe is None else recipe
    n_epochs = recipe.epochs if epochs is None else epochs
    x_train, y_train = load_digits("train")
    x_val, y_val = load_digits("val")
    x_test, y_test = load_digits("test")
    model = build_reference_model(name, rng=recipe.seed)
    opt = nn.AdamW(model, lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = nn.CosineLR(opt, t_max=n_epochs)
    hist = nn.fit(model, x_train, y_train, epochs=n_epochs, batch_size=recipe.batch_size, optimizer=opt,
                  scheduler=schedule, validation_data=(x_val, y_val), early_stopping=recipe.patience,
                  seed=recipe.seed, progress=progress)
    pred = nn.predict(model, x_test).argmax(axis=1)
    correct = int((pred == y_test).sum())
    record = {
        "num_parameters": model.num_parameters(),
        "recipe": {**asdict(recipe), "epochs": n_epochs},
        "epochs_run": len(hist.val_accuracy),
        "best_epoch": hist.best_epoch,
        "val_accuracy": max(hist.val_accuracy),
        "test_correct": correct,
        "test_total": int(y_test.shape[0]),
        "test_accuracy": correct / int(y_test.shape[0]),
        "numpy": np.__version__,
    }
    return model, record


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def markdown_table(index: dict, out: Path) -> str:
    """The accuracy table (deterministic: no timings; those are in ``benchmarks/train.py``)."""
    lines = ["| model | parameters | file | epochs run (best) | val accuracy | test accuracy |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in index["models"].items():
        size = (out / r["file"]).stat().st_size
        lines.append(f"| `{name}` | {r['num_parameters']:,} | {size / 1024:.1f} KiB | "
                     f"{r['epochs_run']} ({r['best_epoch']}) | {100 * r['val_accuracy']:.2f} % | "
                     f"{100 * r['test_accuracy']:.2f} % ({r['test_correct']}/{r['test_total']}) |")
    return "\n".join(lines)


def update_readme(table: str, numpy_version: str) -> None:
    """Replace the text between the markers in ``refquant/data/README.md`` by ``table``."""
    text = README.read_text(encoding="utf-8")
    if MARK_BEGIN not in text or MARK_END not in text:
        raise SystemExit(f"{README} lacks the markers {MARK_BEGIN!r} ... {MARK_END!r}")
    head, rest = text.split(MARK_BEGIN, 1)
    _, tail = rest.split(MARK_END, 1)
    body = f"\n{table}\n\nTrained with NumPy {numpy_version} by `{COMMAND}`.\n"
    README.write_text(head + MARK_BEGIN + body + MARK_END + tail, encoding="utf-8")


def run(names, out: Path, *, epochs: int | None = None, progress: bool = False, verbose: bool = True) -> dict:
    """Train ``names`` and write ``<name>.npz`` and ``reference_models.json`` into ``out``; return the index."""
    out.mkdir(parents=True, exist_ok=True)
    index = {"format_version": INDEX_VERSION, "command": COMMAND, "models": {}}
    if (out / INDEX).is_file():  # keep the records of the models not retrained now
        old = json.loads((out / INDEX).read_text(encoding="utf-8")).get("models", {})
        index["models"] = {k: v for k, v in old.items() if k not in names and (out / v["file"]).is_file()}
    for name in names:
        t0 = time.perf_counter()
        model, record = train_one(name, epochs=epochs, progress=progress)
        seconds = time.perf_counter() - t0
        path = out / f"{name}.npz"
        nn.save(model, path)
        index["models"][name] = {"file": path.name, "sha256": sha256(path), **record}
        if verbose:
            print(f"{name:10s} test {100 * record['test_accuracy']:.2f} % ({record['test_correct']}/"
                  f"{record['test_total']}), val {100 * record['val_accuracy']:.2f} %, "
                  f"{record['epochs_run']} epochs (best {record['best_epoch']}), {seconds:.1f} s, "
                  f"{path.stat().st_size / 1024:.1f} KiB", flush=True)
    index["models"] = {k: index["models"][k] for k in REFERENCE_MODELS if k in index["models"]}
    (out / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", nargs="+", choices=REFERENCE_MODELS, default=list(REFERENCE_MODELS))
    p.add_argument("--out", type=Path, default=PACKAGE_MODELS, help="output folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="override every recipe's epoch count (short runs)")
    p.add_argument("--check", action="store_true",
                   help="train into a temporary folder and compare byte for byte with the bundled files")
    p.add_argument("--update-readme", action="store_true", help="write the table into refquant/data/README.md")
    p.add_argument("--progress", action="store_true", help="show the per-epoch progress of fit")
    args = p.parse_args(argv)

    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            run(args.models, Path(tmp), epochs=args.epochs, progress=args.progress)
            bad = [n for n in [f"{m}.npz" for m in args.models]
                   if (Path(tmp) / n).read_bytes() != (PACKAGE_MODELS / n).read_bytes()]
        print("identical to the bundled files" if not bad else f"differ from the bundled files: {bad}")
        return 1 if bad else 0

    index = run(args.models, args.out, epochs=args.epochs, progress=args.progress)
    table = markdown_table(index, args.out)
    print()
    print(table)
    if args.update_readme:
        update_readme(table, np.__version__)
        print(f"\nwrote the table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
