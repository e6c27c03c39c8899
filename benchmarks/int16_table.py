"""int8, 16x8 and the mixed int8/int16 plan on the bundled models: top-1, logit SQNR, bytes, activation memory.

    python benchmarks/int16_table.py                         # print the table (~2 min on 2 cores)
    python benchmarks/int16_table.py --write docs/int16-results.md

Data: the embedded digits. Calibration on the first 512 training images (min-max, per-channel
weights), the mixed plan chosen on the validation split (``max_drop=0``: step layers up until the
validation top-1 equals the float model's), every number reported on the 359 test images. Profile:
``tflite_reference`` (the 16x8 kernels run the same arithmetic under every TFLite profile when the
bias is int64, as the converter writes it).

An "outlier" twin of the cnn is added: its first convolution's output channel 0 scaled up by 128
and the next convolution's input channel 0 scaled down by 128. The float model computes the same
function (ReLU commutes with a positive scale), but that one channel now sets the per-tensor
activation range, and int8 has too few codes left for the others: the case int16 activations
are for.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from refquant import __version__, models, nn
from refquant.cpu import detect_isa_class
from refquant.data import load_digits
from refquant.ptq.debug import accuracy, mixed_precision_plan
from refquant.ptq.flows import calibrate_model

PROFILE = "tflite_reference"
PAGE = """# int16 activations: measured

TFLite's 16x8 mode (int16 activations with zero point 0, int8 weights, int64 bias) against int8,
and the mixed plan that moves only the most sensitive layers to int16, on the bundled models. Written
by `benchmarks/int16_table.py --write docs/int16-results.md`; rerun it after a change.

* calibration: min-max on the first 512 training images, per-channel weights, profile
  `{profile}`;
* **mixed**: `mixed_precision_plan(..., max_drop=0)` on the validation split: the most sensitive
  layers step up to int16 one at a time until the validation top-1 equals the float model's;
* top-1 and the SQNR of the logits against the float model's on the 359 test images;
* *bytes*: `QuantizedModel.nbytes` (weights, biases, scales, each tensor's parameters);
  *act. bytes*: the largest tensor between nodes for one image (codes, or float32 where a layer
  stays float: what the runtime must hold at once, at least); *ms*: `run` on the 359 test images, this machine, after a warm-up call.

{table}

*outlier cnn*: the cnn with its first convolution's output channel 0 scaled by 128 and the next
convolution's input channel 0 by 1/128 (the same float function; one channel now sets the
activation range).

Machine: {machine}; refquant {version}, numpy {numpy}.
"""


def outlier_cnn(factor: float = 128.0) -> nn.Module:
    """The cnn with conv 0's output channel 0 scaled by ``factor`` and conv 1's input channel 0 by ``1/factor``."""
    model = models.load_reference_model("cnn")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    first, second = convs[0], convs[1]
    if bns:  # scale after the batch norm: its affine output feeds the ReLU
        bn = bns[0]
        bn.weight.value[0] *= factor
        bn.bias.value[0] *= factor
    else:
        first.weight.value[0] *= factor
        if first.bias is not None:
            first.bias.value[0] *= factor
    second.weight.value[:, 0] /= factor
    return model


def logit_sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    r = ref.astype(np.float64)
    return float(10 * np.log10(np.sum(r * r) / np.sum((r - got) ** 2)))


def act_bytes(qm, x1) -> int:
    """The largest tensor between nodes for one image (integer codes, or float32 where a layer stays float)."""
    t = qm.trace(x1)
    return max(t[n].nbytes for n in qm.tensors if n in t and n not in qm.inputs)


def measure(label, qm, model, x, y):
    qm.run(x[:2])  # compile the kernels first: the time is the run's, not Numba's
    t0 = time.perf_counter()
    out = qm.run(x)
    ms = 1e3 * (time.perf_counter() - t0)
    return {"variant": label, "top1": accuracy(lambda _: out, x, y), "sqnr": logit_sqnr(model(x), out),
            "bytes": qm.nbytes, "act": act_bytes(qm, x[:1]), "ms": ms}


def rows_for(name, model, x_cal, x_val, y_val, x, y):
    cal = calibrate_model(model, x_cal, profile=PROFILE)
    rows = [{"variant": "float", "top1": accuracy(model, x, y), "sqnr": float("inf"), "bytes": None, "act": None,
             "ms": None}]
    rows.append(measure("int8", cal.lower(), model, x, y))
    rows.append(measure("16x8", cal.lower(int16_layers="all"), model, x, y))
    plan = mixed_precision_plan(cal, None, x_val, y_val, max_drop=0.0)
    label = f"mixed ({len(plan.int16_layers)} int16, {len(plan.float_layers)} float)"
    rows.append(measure(label, plan.apply(), model, x, y))
    for r in rows:
        r["model"] = name
    return rows


def table(rows) -> str:
    lines = ["| model | variant | top-1 | logit SQNR (dB) | bytes | act. bytes | ms |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        sq = "—" if r["sqnr"] == float("inf") else f"{r['sqnr']:.1f}"
        b = "—" if r["bytes"] is None else str(r["bytes"])
        a = "—" if r["act"] is None else str(r["act"])
        ms = "—" if r["ms"] is None else f"{r['ms']:.0f}"
        lines.append(f"| {r['model']} | {r['variant']} | {100 * r['top1']:.2f}% | {sq} | {b} | {a} | {ms} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", help="write the Markdown page to this path")
    parser.add_argument("--models", nargs="*", default=list(models.REFERENCE_MODELS) + ["outlier_cnn"])
    args = parser.parse_args(argv)
    x_cal = load_digits("train")[0][:512]
    x_val, y_val = load_digits("val")
    x, y = load_digits("test")
    rows = []
    for name in args.models:
        model = outlier_cnn() if name == "outlier_cnn" else models.load_reference_model(name)
        rows += rows_for(name.replace("_", " "), model, x_cal, x_val, y_val, x, y)
        print(table([r for r in rows if r["model"] == name.replace("_", " ")]), flush=True)
    text = table(rows)
    if args.write:
        machine = f"{platform.processor() or platform.machine()}, ISA class {detect_isa_class()}"
        page = PAGE.format(profile=PROFILE, table=text, machine=machine, version=__version__, numpy=np.__version__)
        with open(args.write, "w") as f:
            f.write(page)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
