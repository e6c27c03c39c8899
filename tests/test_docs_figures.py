"""The docs' figures are drawn by scripts under docs/examples/ and committed as PNGs under docs/assets/.

Each script is also run by tests/test_docs_examples.py (its numbers are checked there, with or
without matplotlib); this module runs it with matplotlib's non-interactive backend into a
temporary directory, so that a change that breaks the drawing fails here, and checks that the
committed figure exists and is shown by its page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = [  # (script, PNG it draws, page that shows it)
    ("docs/examples/requant_histogram.py", "single_vs_double_rounding.png", "docs/learn/fixed-point-requantization.md"),
    ("docs/examples/calibration_ranges.py", "calibration_ranges.png", "docs/learn/calibration.md"),
]


@pytest.mark.parametrize("script,png,page", FIGURES, ids=[f[1] for f in FIGURES])
def test_figure_script_draws_its_png(script, png, page, tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, MPLBACKEND="Agg", REFQUANT_FIGURE_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, str(ROOT / script)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    drawn = tmp_path / png
    assert drawn.is_file(), f"{script} did not write {png}"
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn.stat().st_size > 10_000


@pytest.mark.parametrize("script,png,page", FIGURES, ids=[f[1] for f in FIGURES])
def test_committed_figure_is_shown_by_its_page(script, png, page):
    committed = ROOT / "docs" / "assets" / png
    assert committed.is_file(), f"regenerate it: REFQUANT_FIGURE_DIR=docs/assets python {script}"
    assert committed.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"../assets/{png}" in (ROOT / page).read_text(encoding="utf-8")
