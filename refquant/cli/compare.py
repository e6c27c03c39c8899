"""``refquant compare``: every technique on one model and one data set, in one table.

The float model, dynamic-range int8, static int8 (per-tensor; per-channel with each calibrator),
QAT int8 and weight-only int4, each measured by :func:`refquant.evaluate.evaluate`: top-1, the
change from float, batch-1 latency, throughput, model bytes, compression and peak RAM; under a
profile whose runtime is installed, that runtime's latency on the exported integer models and
whether it computes refquant's outputs bit for bit (:mod:`refquant.cli.runtime`). With no
arguments it runs on the embedded digits and the bundled ``resnet``, offline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
import time
from dataclasses import dataclass

from .errors import UsageError
from .inputs import DEFAULT_MODEL, DEFAULT_PROFILE, PROFILE_ALIASES
from .progress import Progress
from .techniques import TECHNIQUES

__all__ = ["add_parser", "run"]

_DESCRIPTION = """\
Quantize one float model with every technique and print one table: top-1 accuracy, its change from
float (percentage points), batch-1 latency (median, ms), throughput (inferences/s at the largest
batch size), model bytes, compression (float bytes / bytes) and peak RAM (the model's arrays plus
the peak working memory of one run); when the profile's runtime is installed, that runtime's
batch-1 latency on each exported integer model and whether its outputs equal refquant's bit for
bit. With no arguments: the embedded 8x8 digits and the bundled
'resnet', offline, in well under two minutes on two cores. A progress bar goes to stderr."""

def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, 96, initial_indent="  ", subsequent_indent=" " * indent)


_EPILOG = f"""\
techniques (--techniques, comma separated names or groups; default: all = float to int4-weights;
  compression = the rows after it, which train and take longer; all+compression = every one):
{chr(10).join(_wrap(f"{t.name:<18} {t.help}", 21) for t in TECHNIQUES.values())}
  A technique the profile has no kernels for shows "n/a" with the reason; the run goes on.

profiles (--profile): any name `refquant info` lists ('-' or '_' alike), or a runtime:
{_wrap(", ".join(f"{a} = {p}" for a, p in PROFILE_ALIASES.items()), 2)}

--data FILE.npz (np.savez) holds:
  x              (N, ...) samples the model takes, e.g. (N, 1, 8, 8) float32 for the bundled models
  y              (N,) integer class labels
  x_val, y_val   optional held-out rows: then accuracy is measured on them and x/y fine-tune QAT;
                 without them accuracy is measured on x/y and QAT is skipped
  x_calibration  optional (M, ...) calibration samples (default: the first 512 rows of x)
  The values are used as stored, cast to float32: scale them as the model was trained.

runtime columns: under --profile onnxruntime (ONNX Runtime, 1 intra-op thread) and the tflite profiles
  (LiteRT, num_threads=1: tflite = the XNNPACK delegate, tflite-reference = BUILTIN_REF,
  tflite-optimized = BUILTIN_WITHOUT_DEFAULT_DELEGATES), each static and QAT int8 model is exported
  (refquant.interop) and run by the runtime itself, when it is installed (pip install onnxruntime
  onnx; pip install ai-edge-litert flatbuffers): its batch-1 latency (same protocol) and a check mark,
  ✓ when its outputs on the scored samples equal refquant's bit for bit, else ✗. Other rows: "—".

--model FILE.onnx: a float ONNX classifier (NCHW input, (N, classes) logits), read with
  refquant.interop.onnx.import_float (needs pip install onnx): a chain of Conv/Gemm/MatMul/
  BatchNormalization/Relu/Clip/pools/Flatten with residual Adds. Give its data with --data.

exit codes: 0 success, 1 a technique or the run failed, 2 bad usage (options, files, data shape).

examples:
  refquant compare
  refquant compare --profile onnxruntime --techniques float,static-minmax,static-mse
  refquant compare --data mine.npz --model mlp --json results.json --report report/
  refquant compare --model mynet.onnx --data mine.npz --profile onnxruntime"""


def _positive_ints(option: str):
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be comma-separated integers, got {text!r}") from None
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"{option} must be integers > 0, got {text!r}")
        return sorted(set(values))
    return parse


def _positive_int(option: str):
    def parse(text: str) -> int:
        values = _positive_ints(option)(text)
        if len(values) != 1:
            raise argparse.ArgumentTypeError(f"{option} must be one integer > 0, got {text!r}")
        return values[0]
    return parse


def add_parser(sub, parents) -> argparse.ArgumentParser:
    """Register ``compare`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("compare", parents=parents, help="every quantization technique on one model: one table",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|FILE.onnx",
                   help=f"a bundled reference model: mlp, cnn, resnet, mobilenet (default {DEFAULT_MODEL}), or a "
                        "float ONNX classifier (below)")
    p.add_argument("--data", metavar="FILE.npz", help="your data: arrays x, y, optionally x_val, y_val and "
                   "x_calibration (below); default: the embedded digits")
    p.add_argument("--profile", default=DEFAULT_PROFILE, metavar="NAME",
                   help=f"the runtime to match bit for bit (default {DEFAULT_PROFILE} = tflite_xnnpack)")
    p.add_argument("--techniques", default="all", metavar="LIST", help="comma-separated technique names (below)")
    p.add_argument("--batch-sizes", type=_positive_ints("--batch-sizes"), default=[1, 32, 256], metavar="LIST",
                   help="throughput batch sizes (default 1,32,256); the table shows the largest")
    p.add_argument("--repeats", type=_positive_int("--repeats"), default=50, metavar="N",
                   help="timed batch-1 runs per technique for the latency (default 50)")
    p.add_argument("--qat-epochs", type=_positive_int("--qat-epochs"), default=1, metavar="N",
                   help="training epochs of QAT and the compression rows (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the training rows' shuffling (default 0)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="the results as one JSON document: to stdout instead of the table, or to FILE")
    p.add_argument("--report", metavar="DIR", help="write DIR/report.md and a self-contained DIR/report.html "
                   "with plots (matplotlib: pip install 'refquant[plot]')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=run, parser=p)
    return p


def _check_writable_dir(path: str, option: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create directory {path!r}: {exc.strerror or exc}") from None
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write to {path!r}" + ("" if os.path.isdir(path) else " (not a directory)"))


@dataclass(frozen=True)
class _Plan:
    """The options resolved: what to run, on what."""
    profile: str
    techniques: list
    model_name: str
    data: object  # inputs.Data
    setup: object  # techniques.Setup
    runtime: dict | None = None  # runtime.probe(profile): the JSON's "runtime"; None: no runtime columns

    @property
    def runtime_columns(self) -> str | None:
        """The runtime columns' short name when they are shown (the runtime imported), else None."""
        return self.runtime["short"] if self.runtime and self.runtime["available"] else None


def _plan(args) -> _Plan:
    """Every option resolved and checked, before any work (UsageError on the first bad one)."""
    from .inputs import (
        check_data_fits,
        load_data_file,
        load_digits_data,
        load_model,
        resolve_profile,
    )
    from .runtime import probe
    from .techniques import Setup, parse_techniques

    profile = resolve_profile(args.profile)
    techniques = parse_techniques(args.techniques)
    if args.json not in (None, "-"):
        parent = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise UsageError(f"--json: cannot write the file {args.json!r}")
    if args.report is not None:
        _check_writable_dir(args.report, "--report")
    name, model = load_model(args.model)
    data = load_data_file(args.data) if args.data is not None else load_digits_data()
    check_data_fits(model, data)
    setup = Setup(model, profile, data.x_calibration, data.x_train, data.y_train, args.seed, args.qat_epochs)
    return _Plan(profile, techniques, name, data, setup, probe(profile))


def _fill(row, ev, float_top1: float, float_bytes: int) -> None:
    """The table's numbers from an Evaluation."""
    row.top1, row.top5 = ev.top1, ev.top5
    row.delta_points = 100 * (ev.top1 - float_top1)
    row.latency_ms = ev.latency.median_ms
    row.throughput = ev.throughput[max(ev.throughput)]
    row.model_bytes = ev.memory.model_bytes
    row.compression = float_bytes / ev.memory.model_bytes
    row.peak_ram_bytes = ev.memory.loaded_bytes + ev.memory.peak_python_bytes
    row.evaluation = ev.as_dict()


def _runtime_steps(name: str, plan: _Plan) -> int:
    """1 when technique ``name``'s model is run by the profile's runtime too (a progress step), else 0."""
    from .techniques import TECHNIQUES
    return int(plan.runtime_columns is not None and TECHNIQUES[name].integer)


def _run_on_runtime(row, model, plan: _Plan, args) -> None:
    """The row's runtime columns: export ``model``, run it on the runtime, time it, compare its outputs.

    A model the exporter refuses, or a runtime that fails on the file, leaves "—" and the reason."""
    from ..errors import RefquantError
    from .runtime import measure

    try:
        details = measure(plan.profile, model, plan.data.x, args.repeats)
    except RefquantError as exc:
        row.runtime_reason = "not exportable: " + str(exc).splitlines()[0]
    except Exception as exc:  # the runtime's own error (it refused or crashed on the file): reported, not fatal
        first = (str(exc).strip().splitlines() or [""])[0]
        row.runtime_reason = f"{plan.runtime['name']} failed on the exported model: {type(exc).__name__}: {first}"
    else:
        row.runtime = details
        row.runtime_latency_ms = details["latency"]["median_ms"]
        row.runtime_bit_exact = details["bit_exact"]


def _measure_one(name: str, plan: _Plan, args, progress, baseline: tuple):
    """``(row, model)`` (model None if it did not run): build the technique's model, evaluate it, and
    (under a runtime's profile) run it on the runtime.

    Not applicable: an ``n/a`` row. A refquant error while building or measuring: a ``failed`` row
    (the run goes on, and exits 1). Anything else is a bug and ends the run."""
    from ..errors import RefquantError
    from ..evaluate import evaluate, layer_errors
    from ..qmodel import QuantizedModel
    from .results import Row
    from .techniques import NotApplicable, build, label, not_integer_reason

    row, model, x, y = Row(name, label(name, plan.setup)), None, plan.data.x, plan.data.y
    steps_left = 2 + _runtime_steps(name, plan)  # building, measuring, the runtime
    progress.start(f"{name}: quantizing" if name != "float" else "float: loading")
    t = time.perf_counter()
    try:
        model, reference, extras = build(name, plan.setup)
        row.build_seconds = time.perf_counter() - t
        progress.done()
        steps_left -= 1
        progress.start(f"{name}: measuring")
        _fill(row, evaluate(model, x, y, name=name, batch_sizes=tuple(args.batch_sizes), repeats=args.repeats),
              *baseline)
        extras.apply(row, baseline[1])  # a compression row: its details, a pruned model's bytes stored sparse
    except NotApplicable as exc:
        row.status, row.reason, model = "n/a", str(exc), None
    except RefquantError as exc:
        row.status, row.reason, model = "failed", str(exc).splitlines()[0], None
    if model is not None and plan.runtime_columns is not None:
        row.runtime_reason = not_integer_reason(name)
        if _runtime_steps(name, plan):
            progress.done()
            steps_left -= 1
            progress.start(f"{name}: {plan.runtime['name']}")
            _run_on_runtime(row, model, plan, args)
    if model is not None and args.report is not None and isinstance(model, QuantizedModel):
        try:  # the report's per-layer SQNR; a model it cannot pair with its float one only loses that plot
            row.layers = layer_errors(model, reference, x[:256])
        except RefquantError as exc:
            row.layers_note = str(exc).splitlines()[0]
    for _ in range(steps_left):
        progress.done()
    return row, model


def _environment() -> dict:
    import numpy as np

    from ..cpu import detect_isa_class
    return {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "machine": platform.machine(), "isa_class": detect_isa_class(), "cpu_count": os.cpu_count()}


def _measure(plan: _Plan, args, progress) -> tuple:
    """``(document, rows, {technique: model})``: the baseline, then every technique."""
    from .. import __version__
    from ..evaluate import model_bytes, top_k_accuracy
    from ..profiles import PROFILES
    from .results import document

    t0 = time.perf_counter()
    model, data = plan.setup.model, plan.data
    progress.start("float baseline")
    baseline = (top_k_accuracy(model, data.x, data.y, k=1), model_bytes(model))  # for Δ and compression
    progress.done()
    measured = [_measure_one(name, plan, args, progress, baseline) for name in plan.techniques]
    rows = [row for row, _ in measured]
    doc = document(rows, {
        "refquant": __version__, "command": ["refquant", *args.argv],
        "model": {"name": plan.model_name, "float_bytes": baseline[1], "float_top1": baseline[0]},
        "profile": {"name": plan.profile, "requested": args.profile, "description": PROFILES[plan.profile].description},
        "data": data.describe(), "techniques": plan.techniques, "batch_sizes": args.batch_sizes,
        "repeats": args.repeats, "qat_epochs": args.qat_epochs, "seed": args.seed, "environment": _environment(),
        "runtime": plan.runtime, "seconds": time.perf_counter() - t0})
    return doc, rows, {row.technique: m for row, m in measured}


def run(args: argparse.Namespace) -> int:
    """``refquant compare``: resolve the options, measure each technique, print and write the results."""
    plan = _plan(args)
    steps = (1 + sum(2 + _runtime_steps(t, plan) for t in plan.techniques)
             + (2 if args.report is not None else 0))
    progress = Progress(steps, enabled=not args.no_progress, desc="compare")
    try:
        doc, rows, models = _measure(plan, args, progress)
        if args.report is not None:
            from .report import write_report
            paths = write_report(args.report, doc, rows, models, plan.setup, progress, plan.runtime_columns)
    finally:
        progress.close()
    if args.json == "-":
        print(json.dumps(doc, indent=2, allow_nan=False))
    else:
        print(_summary(doc, rows, plan.runtime_columns))
        if args.json is not None:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
            print(f"JSON written to {args.json}")
    if args.report is not None:
        print("report written to " + ", ".join(paths), file=sys.stderr if args.json == "-" else sys.stdout)
    failed = [r for r in rows if r.status == "failed"]
    if failed:
        print(f"refquant compare: {len(failed)} technique(s) failed: "
              + "; ".join(f"{r.technique}: {r.reason}" for r in failed), file=sys.stderr)
        return 1
    return 0


def _summary(doc: dict, rows, runtime: str | None = None) -> str:
    """The header lines, the table and the notes under it."""
    from .results import runtime_note, table

    m, p, d = doc["model"], doc["profile"], doc["data"]
    head = [f"model {m['name']} ({m['float_bytes']:,} bytes in float32), profile {p['name']}: {p['description']}",
            f"data: {'; '.join(d['notes'])}"]
    n, batch = d["x"][0], max(doc["batch_sizes"])
    notes = [f"top-1 on {n} samples (one sample = {100 / n:.2f} points); latency: median of {doc['repeats']} batch-1 "
             f"runs after warm-up (the first call, with any JIT compilation, is in the JSON); inf/s and peak RAM at "
             f"batch {batch}; peak RAM: the model's arrays plus the peak memory allocated while it runs one batch."]
    note = runtime_note(doc, rows)
    if note is not None:
        notes.append(note)
    return "\n".join(head + ["", table(rows, max(doc["batch_sizes"]), runtime), ""] + notes)
