"""On-device fine-tuning of an int8 model on shifted digits: accuracy before/after for each ``update``
mode of :func:`refquant.finetune.finetune`, and how many bytes of the model changed.

    python benchmarks/finetune_results.py            # both shifts, every mode (~2 min on 2 cores)
    python benchmarks/finetune_results.py --quick    # the contrast shift, one learning rate per mode
    python benchmarks/finetune_results.py --json out.json

Protocol (every number from a fixed seed):

1. The factory model: the bundled cnn, ``refquant.ptq.quantize_static`` with the TFLite reference
   profile, calibrated on the first 256 *unshifted* training images.
2. The device's data are shifted: ``contrast`` $x' = 0.6x + 0.3$ (a dimmer, washed-out sensor) and
   ``inverted`` $x' = 1 - x$ (light digits on a dark background). Both stay inside the model's input
   range [0, 1], so the input quantizer does not clip them.
3. Each mode fine-tunes on the shifted ``train`` split (1078 images, ``EPOCHS`` epochs, batch 32,
   Adam, seed 0); its learning rate is picked from ``LRS[mode]`` by shifted ``val`` top-1. The
   shifted ``test`` split is used only for the table (359 images: one image is 0.28 points), with
   the unshifted test top-1 after fine-tuning beside it (what the adapted model forgot).
4. *changed bytes*: stored bytes of the model that differ from the factory model (``FinetuneReport``);
   the model's size does not change.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy: deterministic BLAS sums

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from refquant import models, ptq  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.finetune import accuracy, finetune  # noqa: E402

SHIFTS = {"contrast": lambda x: (0.6 * x + 0.3).astype(np.float32),
          "inverted": lambda x: (1.0 - x).astype(np.float32)}
MODES = ("bias", "last", "scales", ("scales", "bias"))
LRS = {"bias": (1e-3, 3e-3, 1e-2, 3e-2), "last": (3e-3, 1e-2, 3e-2, 1e-1), "scales": (3e-3, 1e-2, 3e-2, 1e-1),
       ("scales", "bias"): (3e-3, 1e-2, 3e-2)}
EPOCHS = 3


def _name(mode) -> str:
    return mode if isinstance(mode, str) else "+".join(mode)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="contrast shift only, the first learning rate per mode")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    shifts = ("contrast",) if args.quick else tuple(SHIFTS)

    (x, y), (xv, yv), (xt, yt) = load_digits("train"), load_digits("val"), load_digits("test")
    qm = ptq.quantize_static(models.load_reference_model("cnn"), x[:256], profile="tflite_reference")
    t0 = time.perf_counter()
    result = {"profile": qm.profile, "model_bytes": qm.nbytes, "epochs": EPOCHS,
              "unshifted_test_top1": accuracy(qm, xt, yt), "shifts": {}}
    for shift in shifts:
        f = SHIFTS[shift]
        rows = {"(none)": {"lr": None, "val_top1": accuracy(qm, f(xv), yv), "test_top1": accuracy(qm, f(xt), yt),
                           "unshifted_test_top1": result["unshifted_test_top1"], "changed_bytes": 0,
                           "changed_values": 0, "trainable_values": 0, "seconds": 0.0}}
        for mode in MODES:
            best = None
            for lr in LRS[mode][:1] if args.quick else LRS[mode]:
                q2, r = finetune(qm, f(x), y, update=mode, epochs=EPOCHS, lr=lr, batch_size=32, seed=0,
                                 eval_data=(f(xv), yv))
                print(f"{shift:>9} {_name(mode):>12} lr={lr:g}: val {r.accuracy_before:.4f} -> "
                      f"{r.accuracy_after:.4f} ({r.seconds:.0f} s)", flush=True)
                if best is None or r.accuracy_after > best[2].accuracy_after:
                    best = (lr, q2, r)
            lr, q2, r = best
            rows[_name(mode)] = {"lr": lr, "val_top1": r.accuracy_after, "test_top1": accuracy(q2, f(xt), yt),
                                 "unshifted_test_top1": accuracy(q2, xt, yt), "changed_bytes": r.changed_bytes,
                                 "changed_values": r.changed_values, "trainable_values": r.trainable_values,
                                 "seconds": r.seconds}
        result["shifts"][shift] = rows
    result["seconds"] = time.perf_counter() - t0

    print(f"\nint8 cnn ({qm.profile}), {qm.nbytes:,} bytes; unshifted test top-1 "
          f"{result['unshifted_test_top1']:.4f}; fine-tuned {EPOCHS} epochs on the shifted train split\n")
    for shift, rows in result["shifts"].items():
        print(f"**{shift}**\n\n| update | lr | shifted test top-1 | unshifted test top-1 after | trained values | "
              f"changed values | changed bytes | train time |\n|---|---|---|---|---|---|---|---|")
        for name, row in rows.items():
            lr = "" if row["lr"] is None else f"{row['lr']:g}"
            print(f"| {name} | {lr} | {row['test_top1']:.4f} | {row['unshifted_test_top1']:.4f} | "
                  f"{row['trainable_values']} | {row['changed_values']} | {row['changed_bytes']} | "
                  f"{row['seconds']:.0f} s |")
        print()
    print(f"({result['seconds']:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
