"""Load the module an exercise's tests check: the learner's file, or the fenced-off solution.

The tests call :func:`load_exercise`; the environment variable ``REFQUANT_EXERCISES_SOURCE``
chooses which file it loads:

* ``learner`` (default): the file in the exercise's folder, the one you edit;
* ``solutions``: the same file name under ``exercises/_solutions/<folder>/`` (used by CI to prove
  that every exercise can be passed).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ENV = "REFQUANT_EXERCISES_SOURCE"
ROOT = Path(__file__).resolve().parent


def exercise_path(folder: str, filename: str, source: str | None = None) -> Path:
    """Path of ``filename`` in exercise ``folder`` for ``source`` (``learner`` or ``solutions``)."""
    source = source or os.environ.get(ENV, "learner")
    if source == "learner":
        return ROOT / folder / filename
    if source == "solutions":
        return ROOT / "_solutions" / folder / filename
    raise ValueError(f"{ENV} must be 'learner' or 'solutions', got {source!r}")


def load_exercise(test_file: str, filename: str):
    """Import ``filename`` from the folder of ``test_file`` (or from its solution) as a fresh module."""
    folder = Path(test_file).resolve().parent.name
    path = exercise_path(folder, filename)
    name = f"exercise_{folder}_{path.stem}_{'solution' if '_solutions' in path.parts else 'learner'}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
