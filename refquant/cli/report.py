"""``refquant compare --report DIR``: ``report.md`` (figures beside it in ``DIR/figures/``) and a
self-contained ``report.html`` (figures embedded), both rendered from one list of blocks.

A block is ``("h2", text)``, ``("p", text)``, ``("table", header, rows)`` or
``("figure", file name, caption)``; :func:`markdown` and :func:`html` each render the list.
"""

from __future__ import annotations

import base64
import html as _html
import os

__all__ = ["blocks", "markdown", "html", "write_report"]

_NO_MATPLOTLIB = ('The plots need matplotlib, which is not installed: `pip install "refquant[plot]"`, then run the '
                  'same command again. The tables below do not need it.')


def _pct(v):
    return "—" if v is None else f"{100 * v:.1f}%"


def _sqnr_table(rows):
    with_layers = [r for r in rows if r.layers]
    if not with_layers:
        return None
    tensors = list(dict.fromkeys(x["tensor"] for r in with_layers for x in r.layers))
    by = {r.technique: {x["tensor"]: x["sqnr_db"] for x in r.layers} for r in with_layers}

    def fmt(v):
        return "—" if v is None else ("exact" if v == float("inf") else f"{v:.1f}")
    return ("table", ["tensor"] + list(by), [[t] + [fmt(by[k].get(t)) for k in by] for t in tensors])


def blocks(doc: dict, rows, calibration: dict | None, sparsity: dict, figures: dict | None,
           runtime: str | None = None) -> list:
    """The report's content, in order; ``runtime``: the runtime columns' short name when they are shown."""
    from .results import cells, header, runtime_note

    m, p, d, env = doc["model"], doc["profile"], doc["data"], doc["environment"]
    batch = max(doc["batch_sizes"])
    out = [("h1", f"refquant compare: {m['name']} under {p['name']}"),
           ("p", f"Command: `{' '.join(doc['command'])}` — refquant {doc['refquant']}, NumPy {env['numpy']}, "
                 f"Python {env['python']}, {env['machine']}, ISA class `{env['isa_class']}`, {env['cpu_count']} CPUs; "
                 f"the run took {doc['seconds']:.0f} s."),
           ("p", f"Profile `{p['name']}`: {p['description']}. Data: {'; '.join(d['notes'])}."),
           ("h2", "Results"),
           ("table", header(batch, runtime), [c if len(c) > 2 else c + [""] * (len(header(batch, runtime)) - 2)
                                              for c in (cells(r, runtime) for r in rows)]),
           ("p", f"top-1 on {d['x'][0]} samples; Δ in percentage points against the float model; latency: median of "
                 f"{doc['repeats']} batch-1 runs after warm-up; throughput at batch {batch}; compression: float32 "
                 "bytes / model bytes; peak RAM: the model's arrays plus the peak memory allocated while it runs one "
                 f"batch of {batch}. Every measured number is in the JSON document (`--json`).")]
    note = runtime_note(doc, rows)
    if note is not None:
        out.append(("p", note[0].upper() + note[1:]))
    if figures is None:
        out.append(("p", _NO_MATPLOTLIB))
    figs = figures or {}
    out.append(("h2", "Accuracy against model bytes"))
    if "accuracy_vs_bytes.png" in figs:
        out.append(("figure", "accuracy_vs_bytes.png", "top-1 against model bytes (up and left is better)"))
    out.append(("h2", "Latency against accuracy"))
    if "latency_vs_accuracy.png" in figs:
        out.append(("figure", "latency_vs_accuracy.png", "top-1 against batch-1 latency (up and left is better)"))
    out.append(("p", "refquant runs readable reference kernels: its latencies rank techniques on this machine, "
                     "they are not the deployed runtime's. Under the `onnxruntime` and TFLite profiles, the runtime "
                     "columns of the results table time the runtime itself on the same integer models."))
    out.append(("h2", "Per-layer SQNR"))
    sqnr = _sqnr_table(rows)
    if sqnr is None:
        out.append(("p", "No integer model with per-layer errors in this run (static or QAT techniques have them)."))
    else:
        if "layer_sqnr.png" in figs:
            out.append(("figure", "layer_sqnr.png", "signal-to-quantization-noise ratio of each integer tensor "
                                                    "against the float model (first 256 samples)"))
        out.append(("p", "Each integer tensor against the same tensor of the float model, on the first 256 "
                         "samples (QAT: against its own fine-tuned float weights); `exact`: no error."))
        out.append(sqnr)
    for r in rows:
        if r.layers_note:
            out.append(("p", f"{r.technique}: no per-layer SQNR ({r.layers_note})."))
    out.append(("h2", "Calibration ranges"))
    if calibration is not None:
        if "calibration_ranges.png" in figs:
            out.append(("figure", "calibration_ranges.png", f"histogram of {calibration['tensor']} on the "
                                                            "calibration data, and each calibrator's range"))
        out.append(("p", f"Each calibrator's range for {calibration['tensor']}, on the calibration data:"))
        out.append(("table", ["calibrator", "lo", "hi"],
                    [[c, f"{lo:.4g}", f"{hi:.4g}"] for c, (lo, hi) in calibration["ranges"].items()]))
    out.append(("h2", "Weight sparsity"))
    out.append(("p", "Share of zero weights per layer: exact zeros of the float weights, and weight codes equal to "
                     "their zero point in each integer model (weights that round to 0). The pruned float rows "
                     "of the compression group report their zero fraction in the JSON's details."))
    out.append(("table", ["layer"] + sparsity["columns"], [[r[0]] + [_pct(v) for v in r[1:]]
                                                          for r in sparsity["rows"]]))
    return out


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|")


def _md_table(head, rows):
    lines = ["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows])


def markdown(content: list, figure_dir: str = "figures") -> str:
    """Markdown, figures linked as ``figure_dir/<name>``."""
    parts = []
    for b in content:
        if b[0] == "h1":
            parts.append(f"# {b[1]}")
        elif b[0] == "h2":
            parts.append(f"## {b[1]}")
        elif b[0] == "p":
            parts.append(b[1])
        elif b[0] == "table":
            parts.append(_md_table(b[1], b[2]))
        elif b[0] == "figure":
            parts.append(f"![{b[2]}]({figure_dir}/{b[1]})")
    return "\n\n".join(parts) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}
td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
figure{margin:1rem 0}img{max-width:100%}figcaption{font-size:.85rem;color:#555}code{background:#f3f3f3}"""


def _inline(text: str) -> str:
    """Escape, then ``code`` spans as <code>."""
    parts = _html.escape(text).split("`")
    return "".join(f"<code>{s}</code>" if i % 2 else s for i, s in enumerate(parts))


def html(content: list, figures: dict | None) -> str:
    """One self-contained HTML page: the figures embedded as base64 PNG."""
    title = next((b[1] for b in content if b[0] == "h1"), "refquant compare")
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for b in content:
        if b[0] in ("h1", "h2"):
            parts.append(f"<{b[0]}>{_inline(b[1])}</{b[0]}>")
        elif b[0] == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif b[0] == "table":
            head = "".join(f"<th>{_html.escape(h)}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "figure":
            data = base64.b64encode(figures[b[1]]).decode("ascii")
            parts.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_html.escape(b[2])}\">"
                         f"<figcaption>{_html.escape(b[2])}</figcaption></figure>")
    return "\n".join(parts + ["</body></html>"]) + "\n"


def write_report(directory: str, doc: dict, rows, models: dict, setup, progress,
                 runtime: str | None = None) -> list[str]:
    """Compute the report's extras, draw, write ``report.md``, ``figures/*.png`` and ``report.html``."""
    from .analysis import calibration_ranges, weight_sparsity
    from .plots import figures as draw

    progress.start("report: calibration ranges")
    calibration = calibration_ranges(setup.model, setup.x_calibration)
    sparsity = weight_sparsity(setup.model, {k: v for k, v in models.items() if v is not None})
    progress.done()
    progress.start("report: plots")
    figs = draw(doc, rows, calibration)
    content = blocks(doc, rows, calibration, sparsity, figs, runtime)
    paths = [os.path.join(directory, "report.md"), os.path.join(directory, "report.html")]
    if figs:
        os.makedirs(os.path.join(directory, "figures"), exist_ok=True)
        for name, png in figs.items():
            with open(os.path.join(directory, "figures", name), "wb") as f:
                f.write(png)
    with open(paths[0], "w", encoding="utf-8") as f:
        f.write(markdown(content))
    with open(paths[1], "w", encoding="utf-8") as f:
        f.write(html(content, figs))
    progress.done()
    return paths
