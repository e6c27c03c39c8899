"""Check the exercises: ``python -m exercises [ID ...|all] [--solutions]`` from the repository root.

* no argument: list the exercises and how to start;
* ``01`` (or ``1``, or the folder name): run that exercise's tests on your file, and print the
  hints from ``exercises/registry.py`` when a check fails;
* ``all``: every exercise;
* ``--solutions``: check the fenced-off solutions instead of your files (what CI does).

Exit status 0 when every selected exercise passes, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from . import registry
from ._loader import ENV, ROOT


class _Outcomes:
    """pytest plugin: remember which test files had a failing test."""

    def __init__(self) -> None:
        self.failed_files: set[str] = set()
        self.ran_files: set[str] = set()

    def pytest_runtest_logreport(self, report) -> None:
        path = report.nodeid.split("::")[0]
        self.ran_files.add(Path(path).parent.name)
        if report.failed:
            self.failed_files.add(Path(path).parent.name)

    def pytest_collectreport(self, report) -> None:
        if report.failed:  # e.g. a syntax error in the learner's file
            self.failed_files.add(Path(report.nodeid.split("::")[0]).parent.name)


def _list() -> None:
    print("refquant exercises (edit the file, then run `python -m exercises ID`):\n")
    for ex in registry.EXERCISES:
        print(f"  {ex['id']}  {ex['title']:<66s} exercises/{ex['folder']}/{ex['file']}")
        for quiz in registry.QUIZZES:
            if quiz["after"] == ex["id"]:
                print(f"      {quiz['title']}: exercises/{quiz['file']}")
    print("\nStart with: python -m exercises 01")


def _hints(ex: dict) -> str:
    lines = [f"Hints for {ex['id']} ({ex['title']}); read {ex['read']}:"]
    for i, h in enumerate(ex["hints"], 1):
        lines.append(textwrap.fill(h, width=96, initial_indent=f"  {i}. ", subsequent_indent="     "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exercises", description=__doc__.split("\n")[0])
    parser.add_argument("ids", nargs="*", help="exercise ids (01, 02, ...) or 'all'")
    parser.add_argument("--solutions", action="store_true", help="check the solutions, not your files")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every test and every failure")
    args = parser.parse_args(argv)

    if not args.ids:
        _list()
        return 0
    try:
        selected = registry.EXERCISES if args.ids == ["all"] else [registry.find(i) for i in args.ids]
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2
    try:
        import pytest
    except ImportError:
        print('pytest is missing: pip install -e ".[test]"', file=sys.stderr)
        return 2

    os.environ[ENV] = "solutions" if args.solutions else "learner"
    tests = []
    for ex in selected:
        found = sorted((ROOT / ex["folder"]).glob("test_*.py"))
        if not found:
            print(f"exercise {ex['id']}: no test file in exercises/{ex['folder']}", file=sys.stderr)
            return 2
        tests += [str(p) for p in found]

    outcomes = _Outcomes()
    pytest_args = ["-p", "no:cacheprovider", "--no-header", "--tb=short", "-q"] + (["-v"] if args.verbose else [])
    if len(selected) == 1 and not args.verbose and not args.solutions:
        pytest_args.append("-x")  # one failure at a time, with its diagnosis, then the hints
    code = pytest.main(pytest_args + tests, plugins=[outcomes])

    failed = [ex for ex in selected if ex["folder"] in outcomes.failed_files or ex["folder"] not in outcomes.ran_files]
    print()
    for ex in selected:
        status = "FAILED" if ex in failed else "passed"
        print(f"exercise {ex['id']} ({ex['title']}): {status}")
    if failed and not args.solutions:
        for ex in failed:
            print()
            print(_hints(ex))
    elif not failed and len(selected) == 1 and not args.solutions:
        ids = [e["id"] for e in registry.EXERCISES]
        i = ids.index(selected[0]["id"])
        for quiz in registry.QUIZZES:
            if quiz["after"] == selected[0]["id"]:
                print(f"\nTime for {quiz['title']}: exercises/{quiz['file']}")
        if i + 1 < len(ids):
            print(f"Next: python -m exercises {ids[i + 1]}")
    return 0 if not failed and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
