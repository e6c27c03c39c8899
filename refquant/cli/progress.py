"""A progress bar on stderr that names the current step: tqdm when installed, else plain lines.

Standard output stays clean for the table or the JSON document (``refquant compare --json``
pipes into ``jq``), so the bar always goes to stderr.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``total`` steps; :meth:`start` names the next one, :meth:`done` counts it.

    With tqdm (``pip install "refquant[plot]"``) a bar; without it one line per step on stderr,
    rewritten in place when stderr is a terminal. ``enabled=False`` shows nothing.
    """

    def __init__(self, total: int, *, enabled: bool = True, desc: str = "refquant"):
        self.total, self.enabled, self.desc, self.count = total, enabled, desc, 0
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:  # the plain fallback
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
                                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                           "[{elapsed}<{remaining}]")

    def start(self, what: str) -> None:
        """Name the step about to run (shown until the next one starts)."""
        if self.bar is not None:
            self.bar.set_description_str(f"{self.desc}: {what}")
        elif self.enabled:
            line = f"[{self.count + 1}/{self.total}] {what}"
            tty = sys.stderr.isatty()
            sys.stderr.write(("\r\x1b[2K" + line) if tty else line + "\n")
            sys.stderr.flush()

    def done(self) -> None:
        """Count the current step as finished."""
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Remove the bar; say how long the whole run took."""
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            if self.bar is None and sys.stderr.isatty():
                sys.stderr.write("\r\x1b[2K")
            sys.stderr.write(f"{self.desc}: {self.count} steps in {time.perf_counter() - self.t0:.1f} s\n")
            sys.stderr.flush()
