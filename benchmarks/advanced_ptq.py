"""Advanced PTQ of weights against round-to-nearest: bias correction, AdaRound, GPTQ.

    python benchmarks/advanced_ptq.py                   # 4 models, 4-bit per-channel and group 8 (~2 min)
    python benchmarks/advanced_ptq.py --quick           # mlp and cnn only
    python benchmarks/advanced_ptq.py --bits 3          # another width

Every model is quantized weight-only (:func:`refquant.ptq.quantize_weights`: symmetric, per output
channel or per group of 8 input channels; float32 compute), then rewritten on the *same grid* by
each method of :mod:`refquant.ptq.advanced`:

* ``rtn``: the flow's round-to-nearest codes (the baseline);
* ``bias-corr (emp.)`` / ``bias-corr (anal.)``: RTN codes, biases shifted by the mean output error
  measured on the calibration data / derived from the BatchNorms (only layers a BatchNorm feeds);
* ``adaround``: AdaRound, 1000 Adam steps per layer, the paper's defaults (λ = 0.01, β 20 → 2);
* ``gptq``: GPTQ, blocks of 128, 1 % damping, columns in order (``act-order``: by decreasing
  $H_{ii}$); ``gptq+bias-corr``: then empirical bias correction.

Data: calibration on the first 512 training images (the methods draw no random numbers: every
number here is deterministic; ``SEED`` is printed for the record), errors and top-1 on the 359 test images (one
image is 0.28 points). Columns: top-1; the logits' SQNR against the float model's,
$10 \\log_{10}(\\sum r^2 / \\sum (r - \\hat r)^2)$ dB; the mean and the worst per-layer SQNR of
every Linear/Conv2d output (after its fused activation, errors of earlier layers included); the
method's time. The second table lists every layer's SQNR for the 4-bit per-channel models.

BLAS runs single-threaded (the matrices are small; on a shared machine threads only add waiting).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    import threadpoolctl  # noqa: E402

    threadpoolctl.threadpool_limits(1, user_api="blas")
except ImportError:  # pragma: no cover - optional
    threadpoolctl = None

from refquant import models  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.evaluate import top_k_accuracy  # noqa: E402
from refquant.passes import prepare_for_quantization  # noqa: E402
from refquant.ptq import advanced as A  # noqa: E402
from refquant.ptq import quantize_weights  # noqa: E402
from refquant.ptq.trace import float_outputs, trace  # noqa: E402

SEED = 0
METHODS = {
    "rtn": lambda rtn, m, x: rtn,
    "bias-corr (emp.)": lambda rtn, m, x: A.bias_correction(rtn, m, x),
    "bias-corr (anal.)": lambda rtn, m, x: A.bias_correction(rtn, m, mode="analytical"),
    "adaround": lambda rtn, m, x: A.adaround(rtn, m, x),
    "gptq": lambda rtn, m, x: A.gptq(rtn, m, x),
    "gptq (act-order)": lambda rtn, m, x: A.gptq(rtn, m, x, act_order=True),
    "gptq+bias-corr": lambda rtn, m, x: A.bias_correction(A.gptq(rtn, m, x), m, x),
}


def sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-300)))


def layer_sqnr(qm, reference: dict) -> dict:
    """Per-layer SQNR of every linear/conv2d node's output (its fused activation included)."""
    got = qm.trace(reference["input"])
    return {n.name: sqnr(reference[n.output], got[n.output]) for n in qm.nodes if n.op in ("linear", "conv2d")}


def run_model(name, bits, group_sizes, x_cal, x_test, y_test):
    model = models.load_reference_model(name)
    prepared = prepare_for_quantization(model, keep_names=True)
    reference = float_outputs(prepared, trace(prepared), x_test)
    logits = reference["__output__"]
    rows, per_layer = [], {}
    float_top1 = top_k_accuracy(model, x_test, y_test)
    for group_size in group_sizes:
        rtn = quantize_weights(model, bits=bits, group_size=group_size)
        config = f"int{bits} " + (f"group {group_size}" if group_size else "per-channel")
        for method, fn in METHODS.items():
            t = time.perf_counter()
            qm = fn(rtn, model, x_cal)
            sec = time.perf_counter() - t
            layers = layer_sqnr(qm, reference)
            rows.append((name, config, method, 100 * float_top1, 100 * top_k_accuracy(qm, x_test, y_test),
                         sqnr(logits, qm.run(x_test)), float(np.mean(list(layers.values()))),
                         float(min(layers.values())), sec, qm.metadata.get("bias_corrected_layers")))
            if group_size is None:
                per_layer[method] = layers
    return rows, per_layer


def print_summary(rows):
    print("| model | weights | method | top-1 % (float) | logits SQNR dB | mean layer SQNR dB | worst layer dB "
          "| time s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    base = {}
    for name, config, method, f_top1, top1, out_db, mean_db, worst_db, sec, corrected in rows:
        if method == "rtn":
            base[(name, config)] = (out_db, mean_db)
        d_out, d_mean = out_db - base[(name, config)][0], mean_db - base[(name, config)][1]
        note = "" if corrected is None or method != "bias-corr (anal.)" else f" ({len(corrected)} layers)"
        print(f"| {name} | {config} | {method}{note} | {top1:.2f} ({f_top1:.2f}) | {out_db:.2f} ({d_out:+.2f}) | "
              f"{mean_db:.2f} ({d_mean:+.2f}) | {worst_db:.2f} | {sec:.1f} |")


def print_layers(name, per_layer):
    methods = list(per_layer)
    print(f"\n{name}, per-layer SQNR dB (int4 per-channel)\n")
    print("| layer | " + " | ".join(methods) + " |")
    print("|---|" + "---:|" * len(methods))
    for layer in per_layer["rtn"]:
        print(f"| {layer} | " + " | ".join(f"{per_layer[m][layer]:.2f}" for m in methods) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="mlp and cnn only")
    ap.add_argument("--bits", type=int, default=4, help="weight bits (2 to 8)")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer tables")
    args = ap.parse_args(argv)
    x_cal = load_digits("train")[0][:512]
    x_test, y_test = load_digits("test")
    names = ["mlp", "cnn"] if args.quick else ["mlp", "cnn", "resnet", "mobilenet"]
    t0 = time.perf_counter()
    rows, layers = [], {}
    for name in names:
        r, per_layer = run_model(name, args.bits, (None, 8), x_cal, x_test, y_test)
        rows.extend(r)
        layers[name] = per_layer
    print(f"seed {SEED}; calibration: 512 training images; test: {len(y_test)} images; "
          f"total {time.perf_counter() - t0:.0f} s\n")
    print_summary(rows)
    if not args.no_layers:
        for name in names:
            print_layers(name, layers[name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
