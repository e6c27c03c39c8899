"""One row per technique, the table ``refquant compare`` prints, and the JSON document (its schema).

A row holds what the table shows, each number in its unit: ``top1`` a share in [0, 1],
``delta_points`` percentage points, ``latency_ms`` the median batch-1 latency, ``throughput``
inferences per second at the largest batch size, ``peak_ram_bytes`` the model's arrays in RAM plus
the peak working memory of one batch (``Memory.loaded_bytes + Memory.peak_python_bytes``).
Under a profile whose runtime is installed (:mod:`refquant.cli.runtime`), ``runtime_latency_ms``
is that runtime's median batch-1 latency on the exported model and ``runtime_bit_exact`` whether
its outputs equal refquant's bit for bit.

Schema versions: 1, the first; 2 adds the top-level ``runtime`` object and each result's
``runtime_latency_ms``, ``runtime_bit_exact``, ``runtime_reason`` and ``runtime`` (all required,
``null`` when not measured), so a version-1 reader's schema rejects a version-2 document; 3 adds each
result's ``details`` (required, ``null`` for the quantization rows): what a compression technique
reports beyond the table (a pruned model's dense bytes, zero fraction and storage per layer; the
bytes on-device fine-tuning changed; the student's size), from :class:`Extras`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["SCHEMA_VERSION", "JSON_SCHEMA", "Row", "Extras", "header", "cells", "table", "runtime_note", "document",
           "json_safe"]

#: Bumped when a field changes meaning, disappears or becomes required (an optional new field does not bump
#: it). 2: the runtime fields; 3: ``details`` (module docstring).
SCHEMA_VERSION = 3


@dataclass
class Row:
    technique: str             # the --techniques name
    label: str                 # the table's first column
    status: str = "ok"         # "ok", "n/a" (cannot run here: reason) or "failed" (reason)
    reason: str | None = None
    top1: float | None = None  # share in [0, 1]
    top5: float | None = None
    delta_points: float | None = None  # 100 * (top1 - float top1)
    latency_ms: float | None = None    # median, batch 1
    throughput: float | None = None    # inferences/s at the largest batch size
    model_bytes: int | None = None
    compression: float | None = None   # float model bytes / model_bytes
    peak_ram_bytes: int | None = None
    build_seconds: float | None = None  # quantization, calibration, training: not evaluation
    evaluation: dict | None = None      # refquant.evaluate.Evaluation.as_dict()
    runtime_latency_ms: float | None = None  # the profile's runtime: median batch-1 latency of the exported model
    runtime_bit_exact: bool | None = None    # its outputs on the scored samples == refquant's, bit for bit
    runtime_reason: str | None = None        # why there are no runtime numbers (not exportable, runtime error)
    runtime: dict | None = None              # runtime.measure()'s details: latency, file bytes, mismatches
    details: dict | None = None              # a compression technique's own facts (Extras.details)
    layers: list | None = field(default=None, repr=False)  # per-layer errors (--report only)
    layers_note: str | None = None  # why ``layers`` is missing for an integer model (--report only)


@dataclass(frozen=True)
class Extras:
    """What a technique adds to its row beyond what :func:`refquant.evaluate.evaluate` measures.

    ``stored_bytes``: the model's bytes as stored when that is not the measured object's own
    (a pruned model's weights in a sparse format); ``details``: the row's JSON ``details``."""
    stored_bytes: int | None = None
    details: dict | None = None

    def apply(self, row: Row, float_bytes: int) -> None:
        """Set ``row.details`` and, with ``stored_bytes``, its model bytes and compression."""
        if self.stored_bytes is not None:
            row.model_bytes, row.compression = self.stored_bytes, float_bytes / self.stored_bytes
        row.details = self.details


def _size(n: int) -> str:
    for unit, step in (("B", 1), ("KiB", 1024), ("MiB", 1024**2), ("GiB", 1024**3)):
        if n < 1024 * step or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n / step:.1f} {unit}"
    return str(n)  # pragma: no cover


def header(batch_size: int, runtime: str | None = None) -> list[str]:
    """The table's column titles; with ``runtime`` (a short name: ``ORT``, ``LiteRT``) its two columns too."""
    head = ["technique", "top-1", "Δ vs float (pts)", "latency ms", f"inf/s (batch {batch_size})", "model bytes",
            "compression", "peak RAM"]
    return head + ([f"{runtime} ms", f"{runtime} bit-exact"] if runtime else [])


def cells(r: Row, runtime: str | None = None) -> list[str]:
    """A row's cells as text: all of them, or ``[label, "status: reason"]`` for a row that did not run.

    With ``runtime``: its latency and ✓ (bit-exact) or ✗, or "—" twice for a row it did not run."""
    if r.status != "ok":
        return [r.label, f"{r.status}: {r.reason.split('; ')[0]}"]  # the JSON keeps the whole reason
    delta = "baseline" if r.technique == "float" else f"{r.delta_points:+.2f}"
    out = [r.label, f"{100 * r.top1:.2f}%", delta, f"{r.latency_ms:.3f}", f"{r.throughput:,.0f}",
           f"{r.model_bytes:,}", f"{r.compression:.2f}x", _size(r.peak_ram_bytes)]
    if runtime:
        if r.runtime_bit_exact is None:
            out += ["—", "—"]
        else:
            out += [f"{r.runtime_latency_ms:.4f}", "✓" if r.runtime_bit_exact else "✗"]  # runtimes can be µs-fast
    return out


def table(rows: list[Row], batch_size: int, runtime: str | None = None) -> str:
    """The rows as aligned text columns; a row that did not run spans the columns with its reason."""
    head = header(batch_size, runtime)
    body = [cells(r, runtime) for r in rows]
    width = [max([len(head[i])] + [len(c[i]) for c in body if len(c) == len(head)]) for i in range(len(head))]
    width[0] = max([width[0]] + [len(c[0]) for c in body])

    def line(c):
        if len(c) != len(head):
            return f"{c[0]:<{width[0]}}  {c[1]}"
        return "  ".join([c[0].ljust(width[0])] + [v.rjust(w) for v, w in zip(c[1:], width[1:])])
    rule = "  ".join("-" * w for w in width)
    return "\n".join([line(head), rule] + [line(c) for c in body])


def runtime_note(doc: dict, rows) -> str | None:
    """The footer line about the runtime columns (what they show, or how to get them); None: no runtime."""
    rt = doc["runtime"]
    if rt is None:
        return None
    if not rt["available"]:
        return f"runtime columns: {rt['note']}."
    short, n = rt["short"], doc["data"]["x"][0]
    text = (f"{short} ms, {short} bit-exact: {rt['name']} {rt['version']} running each integer model written by "
            f"refquant.interop ({rt['format']}), {rt['settings']}; latency measured as refquant's; ✓: its outputs on "
            f"the {n} scored samples equal refquant's bit for bit (float32 bits), ✗: they differ; —: not run "
            "(float, dynamic-range and weight-only models are not fully integer; the JSON's runtime_reason says why).")
    differ = [r.technique for r in rows if r.runtime_bit_exact is False]
    if differ:
        text += f" Outputs differ for {', '.join(differ)}: the JSON's runtime.mismatches counts them."
    return text


def json_safe(v):
    """``v`` with every non-finite float replaced by None (an exact layer's +inf SQNR): strict JSON."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def document(rows: list[Row], run: dict) -> dict:
    """The JSON document: ``schema_version``, what ran (``run``), and one result per row."""
    results = []
    for r in rows:
        d = asdict(r)
        if d["evaluation"] is not None and r.layers is not None:
            d["evaluation"]["layers"] = r.layers
        del d["layers"], d["layers_note"]
        results.append(d)
    return json_safe({"schema_version": SCHEMA_VERSION, **run, "results": results})


_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}
_BOOL = {"type": ["boolean", "null"]}

#: JSON Schema (draft 2020-12) of :func:`document`'s output; docs/how-to/compare-techniques.md explains it.
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "refquant compare results",
    "type": "object",
    "required": ["schema_version", "refquant", "command", "model", "profile", "data", "techniques", "batch_sizes",
                 "repeats", "seed", "environment", "runtime", "seconds", "results"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "refquant": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "object", "required": ["name", "float_bytes", "float_top1"],
                  "properties": {"name": {"type": "string"}, "float_bytes": {"type": "integer"},
                                 "float_top1": {"type": "number"}}},
        "profile": {"type": "object", "required": ["name", "requested", "description"],
                    "properties": {"name": {"type": "string"}, "requested": {"type": "string"},
                                   "description": {"type": "string"}}},
        "data": {"type": "object", "required": ["source", "x", "x_calibration", "x_train", "notes"]},
        "techniques": {"type": "array", "items": {"type": "string"}},
        "batch_sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "repeats": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "environment": {"type": "object"},
        "runtime": {"type": ["object", "null"],  # null: the profile has no runtime column
                    "required": ["name", "short", "available", "version", "settings", "install", "format", "note"],
                    "properties": {"name": {"type": "string"}, "short": {"type": "string"},
                                   "available": {"type": "boolean"}, "version": _STR, "settings": {"type": "string"},
                                   "install": {"type": "string"}, "format": {"type": "string"}, "note": _STR}},
        "seconds": {"type": "number"},
        "results": {"type": "array", "items": {
            "type": "object",
            "required": ["technique", "label", "status", "reason", "top1", "top5", "delta_points", "latency_ms",
                         "throughput", "model_bytes", "compression", "peak_ram_bytes", "build_seconds",
                         "evaluation", "runtime_latency_ms", "runtime_bit_exact", "runtime_reason", "runtime",
                         "details"],
            "properties": {
                "technique": {"type": "string"}, "label": {"type": "string"},
                "status": {"enum": ["ok", "n/a", "failed"]}, "reason": _STR,
                "top1": _NUM, "top5": _NUM, "delta_points": _NUM, "latency_ms": _NUM, "throughput": _NUM,
                "model_bytes": _INT, "compression": _NUM, "peak_ram_bytes": _INT, "build_seconds": _NUM,
                "evaluation": {"type": ["object", "null"]},
                "runtime_latency_ms": _NUM, "runtime_bit_exact": _BOOL, "runtime_reason": _STR,
                "runtime": {"type": ["object", "null"],
                            "required": ["format", "file_bytes", "latency", "compared", "mismatches", "bit_exact"],
                            "properties": {"format": {"type": "string"}, "file_bytes": {"type": "integer"},
                                           "latency": {"type": "object"}, "compared": {"type": "integer"},
                                           "mismatches": {"type": "integer", "minimum": 0},
                                           "bit_exact": {"type": "boolean"}, "delegated": {"type": "boolean"}}},
                "details": {"type": ["object", "null"],  # null: a quantization row; keys as the technique says
                            "properties": {"storage": {"enum": ["bitmask", "2:4"]}, "dense_bytes": {"type": "integer"},
                                           "stored_bytes": {"type": "integer"},
                                           "zero_fraction": {"type": "number", "minimum": 0},
                                           "layers": {"type": "array"},
                                           "changed_bytes": {"type": "integer", "minimum": 0}}},
            }}},
    },
}
