"""The documentation's code samples run, and the docs' tables agree with the code.

Every code sample on the site is a file under ``docs/examples/`` included with pymdownx.snippets;
each one asserts the values it shows. This module runs them all, checks that every sample is
included by a page (and every included file exists), that no page carries an untested inline
Python block, and that the tables of the Conventions page and the Install page's commands match
the code and the README.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from refquant.backends.onnxruntime import reduced_range
from refquant.dtypes import quant_range
from refquant.rounding import round_by_mode

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
PAGES = sorted(DOCS.rglob("*.md"))
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$', re.M)
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _included() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for target in SNIPPET.findall(page.read_text(encoding="utf-8")):
            found.setdefault(target, []).append(str(page.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_and_asserts(path, capsys):
    source = path.read_text(encoding="utf-8")
    assert re.search(r"^\s*(assert|np\.testing\.assert)", source, re.M), \
        f"{path.name} must check the values it shows (assert ...)"
    runpy.run_path(str(path), run_name="__main__")  # raises if an assertion fails
    assert capsys.readouterr().out.strip(), f"{path.name} should print what the page shows"


def test_every_example_is_included_and_every_include_exists():
    included = _included()
    missing = [t for t in included if not (ROOT / t).is_file()]
    assert not missing, f"pages include files that do not exist: {missing}"
    orphans = [p.name for p in EXAMPLES if str(p.relative_to(ROOT)) not in included]
    assert not orphans, f"examples not included by any page (include them or delete them): {orphans}"


def test_no_untested_inline_python_on_any_page():
    for page in PAGES:
        for lang, body in FENCE.findall(page.read_text(encoding="utf-8")):
            if lang not in ("python", "py", "pycon"):
                continue
            lines = [ln for ln in body.splitlines() if ln.strip()]
            assert lines and all(SNIPPET.match(ln) for ln in lines), (
                f"{page.relative_to(ROOT)}: inline Python block; put the code in docs/examples/ and "
                f'include it with --8<-- "docs/examples/<name>.py" so that a test runs it:\n{body[:200]}')


def _table_rows(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _interval(cell: str):
    if cell == "—":
        return None
    cell = cell.strip("$").replace("2^{31}", str(2 ** 31))
    lo, hi = cell.strip("[]").split(",")

    def value(term: str) -> int:  # "-2147483648+1" -> -2147483647
        return sum(int(t) for t in re.findall(r"[+-]?\d+", term.replace(" ", "")))

    return value(lo), value(hi)


def test_conventions_range_table_matches_quant_range():
    rows = _table_rows((DOCS / "conventions.md").read_text(encoding="utf-8"), "| format | bits |")
    assert len(rows) == 9
    for fmt, bits, full, narrow, torch_rr, ort_rr in rows:
        fmt = fmt.strip("`")
        assert _interval(full) == quant_range(fmt), fmt
        assert _interval(narrow) == quant_range(fmt, narrow=True), fmt
        if _interval(torch_rr) is not None:
            assert _interval(torch_rr) == quant_range(fmt, reduce_range=True), fmt
        if _interval(ort_rr) is not None:
            assert _interval(ort_rr) == reduced_range(fmt), fmt


def test_conventions_rounding_table_matches_round_by_mode():
    rows = _table_rows((DOCS / "conventions.md").read_text(encoding="utf-8"), "| refquant name |")
    x = np.array([-2.5, -0.5, 0.5, 2.5])
    checked = 0
    for name, _short, values, *_ in rows:
        name = name.strip("`")
        if name == "stochastic":
            continue
        want = [int(v) for v in values.strip("$").split(",")]
        assert [int(v) for v in round_by_mode(x, name)] == want, name
        checked += 1
    assert checked == 8


def test_install_page_commands_are_the_readme_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = (DOCS / "install.md").read_text(encoding="utf-8")
    for heading in ("## The main job", "## The tests"):
        section = install.split(heading, 1)[1]
        command = FENCE.search(section).group(2).strip()
        assert command in readme, f"Install page ({heading}) shows `{command}`, which README.md does not"


def test_katex_is_vendored_for_offline_math():
    katex = DOCS / "assets" / "katex"
    for name in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "LICENSE"):
        assert (katex / name).is_file(), name
    assert list((katex / "fonts").glob("*.woff2")), "KaTeX fonts missing"
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for ref in ("assets/katex/katex.min.js", "assets/katex/katex.min.css", "assets/katex/contrib/auto-render.min.js",
                "pymdownx.arithmatex", "strict: true"):
        assert ref in config, ref
    assert "fonts.googleapis" not in config and "font: false" in config
