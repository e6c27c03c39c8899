"""The quantization-flow table: every bundled model × flow × profile, top-1 and bytes, and how
long each flow takes. Writes the Markdown the docs show (``--write docs/results/flows.md``).

    python benchmarks/ptq_table.py                 # print the table (~3 min on 2 cores)
    python benchmarks/ptq_table.py --quick         # two models, two profiles
    python benchmarks/ptq_table.py --write docs/results/flows.md

Data: the embedded digits; calibration on the first 512 training images, QAT on the training
split, accuracy on the 359 test images (one image is 0.28 points).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from refquant import __version__, models, nn
from refquant.calibration import CALIBRATORS
from refquant.cpu import detect_isa_class
from refquant.data import load_digits
from refquant.errors import QuantizationValueError, UnsupportedError
from refquant.ptq import quantize_dynamic, quantize_static, quantize_weights
from refquant.ptq.debug import accuracy

PAGE = """# Quantization flows: accuracy, size and time

Every bundled model quantized by every flow under every profile that runs it, measured on the
digits test split (359 images: one image is 0.28 points). This page is written by
`benchmarks/ptq_table.py --write docs/flow-results.md`; rerun it after a change.

* **static int8**: `refquant.ptq.quantize_static`, calibration on the first 512 training
  images, per-channel weights (each calibrator), and per-tensor with min-max;
* **dynamic int8**: `refquant.ptq.quantize_dynamic` (each tool's rule for which layers it
  quantizes: PyTorch and ONNX Runtime every Linear, the TFLite converter only Linear layers with
  at least 1024 weights, so the cnn's classifier stays float there);
* **QAT**: `refquant.qat.prepare_qat` from the bundled weights, trained with `refquant.nn.fit`
  (Adam; the epochs are in the row), then `refquant.qat.convert`; the **PTQ 4-bit** row is the
  same prepared model converted right after calibration, the baseline QAT must improve on;
* **weight-only**: `refquant.ptq.quantize_weights` (float32 compute, int4/int8 weights per
  output channel or per group of input channels; a layer with fewer input channels than the
  group keeps one scale per channel, and a group size that does not divide a layer's input
  channels is refused).

*bytes* is `QuantizedModel.nbytes`: weights as stored (int4 packed two per byte; QAT's 4-bit
weights are stored one per byte, as int8 codes), scales, zero points, biases and each integer
tensor's parameters; for the float model, its parameters (batch norm included). *time* is the
flow's wall time on this machine (calibration, training and lowering; not evaluation). A profile
that cannot run a model says which node it refuses.

"""

PROFILES = ["tflite_reference", "tflite_xnnpack", "onnxruntime", "pytorch_fbgemm", "pytorch_qnnpack"]


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def rows_for(name, profiles, x_cal, x_train, y_train, x_test, y_test, qat: bool):
    model = models.load_reference_model(name)
    base = accuracy(model, x_test, y_test)
    float_bytes = sum(p.value.nbytes for p in model.parameters())
    rows = [(name, "float32", "-", base, float_bytes, 0.0)]
    for profile in profiles:
        for calibrator in CALIBRATORS:
            try:
                qm, sec = _timed(lambda: quantize_static(model, x_cal, profile=profile, calibrator=calibrator))
            except UnsupportedError as err:
                rows.append((name, f"static int8 ({calibrator})", profile, None, None, str(err).split(":")[0]))
                continue
            rows.append((name, f"static int8 per-channel ({calibrator})", profile, accuracy(qm, x_test, y_test),
                         qm.nbytes, sec))
        try:
            qm, sec = _timed(lambda: quantize_static(model, x_cal, profile=profile, per_channel=False))
            rows.append((name, "static int8 per-tensor (minmax)", profile, accuracy(qm, x_test, y_test), qm.nbytes,
                         sec))
        except UnsupportedError:
            pass
        try:
            qm, sec = _timed(lambda: quantize_dynamic(model, profile=profile))
            rows.append((name, "dynamic int8", profile, accuracy(qm, x_test, y_test), qm.nbytes, sec))
        except UnsupportedError:
            pass
        if qat:
            rows.extend(_qat_rows(name, model, profile, x_cal, x_train, y_train, x_test, y_test))
    for bits, group in ((8, None), (4, None), (4, 16), (4, 8)):
        label = f"weight-only int{bits} " + (f"group {group}" if group else "per-channel")
        try:
            qm, sec = _timed(lambda: quantize_weights(model, bits=bits, group_size=group))
        except QuantizationValueError as err:
            rows.append((name, label, "-", None, None, str(err).split(",")[0]))
            continue
        rows.append((name, label, "-", accuracy(qm, x_test, y_test), qm.nbytes, sec))
    return rows


INT8_EPOCHS = {"mlp": 2, "cnn": 1, "resnet": 1, "mobilenet": 1}
INT4_EPOCHS = {"mlp": 3, "cnn": 1, "resnet": 1, "mobilenet": 1}


def _qat_rows(name, model, profile, x_cal, x_train, y_train, x_test, y_test):
    """QAT int8 (Adam 1e-4) and 4-bit weights (Adam 3e-4, cosine) from the bundled weights, with the
    4-bit PTQ baseline: the same prepared model converted right after calibration."""
    from refquant import qat
    out = []
    for bits in (8, 4):
        try:
            t = time.perf_counter()
            if bits == 4:
                calibrated = qat.calibrate(qat.prepare_qat(model, profile=profile, weight_bits=4), x_cal)
                ptq = qat.convert(calibrated)
                out.append((name, "PTQ 4-bit weights, int8 activations", profile, accuracy(ptq, x_test, y_test),
                            ptq.nbytes, time.perf_counter() - t))
                t = time.perf_counter()
            fq = qat.prepare_qat(model, profile=profile, weight_bits=bits)
            if bits == 8:
                opt, epochs, sched = nn.Adam(fq, lr=1e-4), INT8_EPOCHS[name], None
            else:
                opt, epochs = nn.Adam(fq, lr=3e-4), INT4_EPOCHS[name]
                sched = nn.CosineLR(opt, epochs)
            nn.fit(fq, x_train, y_train, epochs=epochs, optimizer=opt, scheduler=sched, progress=False, seed=0)
            qm = qat.convert(fq)
            label = f"QAT int8 ({epochs} epochs)" if bits == 8 else f"QAT 4-bit weights, int8 activations ({epochs} epochs)"
            out.append((name, label, profile, accuracy(qm, x_test, y_test), qm.nbytes, time.perf_counter() - t))
        except UnsupportedError as err:
            out.append((name, f"QAT {bits}-bit", profile, None, None, str(err).split(":")[0]))
    return out


def markdown(rows) -> str:
    lines = ["| model | flow | profile | top-1 | Δ vs float (points) | bytes | time (s) |",
             "|---|---|---|---:|---:|---:|---:|"]
    base = {}
    for name, flow, profile, acc, nbytes, sec in rows:
        if flow == "float32":
            base[name] = acc
        if acc is None:
            lines.append(f"| {name} | {flow} | {profile} | refused: {sec} | | | |")
            continue
        delta = 100 * (acc - base[name])
        lines.append(f"| {name} | {flow} | {profile} | {100 * acc:.2f}% | {delta:+.2f} | {nbytes} | {sec:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="mlp and cnn, two profiles, no QAT")
    ap.add_argument("--write", help="write the Markdown table to this file")
    args = ap.parse_args(argv)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    x_cal = x_train[:512]
    names = ["mlp", "cnn"] if args.quick else list(models.REFERENCE_MODELS)
    profiles = PROFILES[::3] if args.quick else PROFILES
    rows = []
    t0 = time.perf_counter()
    for name in names:
        rows.extend(rows_for(name, profiles, x_cal, x_train, y_train, x_test, y_test, not args.quick))
        print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    header = (f"refquant {__version__}, NumPy {np.__version__}, Python {platform.python_version()}, "
              f"{platform.machine()}, ISA class `{detect_isa_class()}`; the whole table took "
              f"{time.perf_counter() - t0:.0f} s")
    text = header + "\n\n" + markdown(rows)
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(PAGE + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
