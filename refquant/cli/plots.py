"""The report's figures, drawn with matplotlib (``pip install "refquant[plot]"``) as PNG bytes.

:func:`figures` returns None when matplotlib is not installed; the report then says how to get
the plots instead of failing.
"""

from __future__ import annotations

import io
import math

__all__ = ["figures"]


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


_MARKERS = "osD^vPX*hp"


def _scatter(plt, results, x_key, x_label):
    """top-1 against ``x_key`` on a log axis, one marker per technique, named in the legend."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, r in enumerate(results):
        ax.plot(r[x_key], 100 * r["top1"], _MARKERS[i % len(_MARKERS)], ms=7, alpha=0.85, label=r["technique"],
                color="#d62728" if r["technique"] == "float" else f"C{i % 10}")
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")  # 1, 2, 5 of each decade
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(x_label)
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="(equal points overlap)",
              title_fontsize=7)
    return fig


def _layer_sqnr(plt, rows):
    fig, ax = plt.subplots(figsize=(8, 4.2))
    drawn = False
    for r in rows:
        if not r.layers:
            continue
        sqnr = [x["sqnr_db"] if x["sqnr_db"] is not None and math.isfinite(x["sqnr_db"]) else float("nan")
                for x in r.layers]
        ax.plot(range(len(sqnr)), sqnr, "o-", ms=3, label=r.technique)
        ticks = [x["tensor"] for x in r.layers]
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xticks(range(len(ticks)), ticks, rotation=60, fontsize=7)
    ax.set_xlabel("integer tensor, in graph order")
    ax.set_ylabel("SQNR (dB; higher is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _calibration(plt, cal):
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.2))
    v = cal["values"]
    ax.hist(v[v != 0], bins=150, color="#c7d6e8", log=True)
    styles = ["-", "--", "-.", ":"]
    for (name, (lo, hi)), ls in zip(cal["ranges"].items(), styles):
        line = ax.axvline(hi, ls=ls, lw=1.5, color=f"C{list(cal['ranges']).index(name)}",
                          label=f"{name}: [{lo:.3g}, {hi:.3g}]")
        if lo < 0:
            ax.axvline(lo, ls=ls, lw=1.5, color=line.get_color())
    ax.set_xlabel(f"value ({np.mean(v == 0):.0%} exact zeros not drawn)")
    ax.set_ylabel("count (log)")
    ax.set_title(cal["tensor"], fontsize=9)
    ax.legend(fontsize=8)
    return fig


def figures(doc: dict, rows, calibration: dict | None) -> dict | None:
    """``{file name: PNG bytes}``, or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in doc["results"] if r["status"] == "ok"]
    out = {}
    if ok:
        out["accuracy_vs_bytes.png"] = _png(_scatter(plt, ok, "model_bytes", "model bytes (log scale)"))
        out["latency_vs_accuracy.png"] = _png(_scatter(plt, ok, "latency_ms",
                                                       "batch-1 latency, median (ms, log scale)"))
    fig = _layer_sqnr(plt, rows)
    if fig is not None:
        out["layer_sqnr.png"] = _png(fig)
    if calibration is not None:
        out["calibration_ranges.png"] = _png(_calibration(plt, calibration))
    return out
