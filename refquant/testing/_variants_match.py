"""The explainer's verdicts: how close each candidate comes (:class:`Match`), and the ranking
of one mismatch (:class:`Explanation`), with the words a person reads.

:func:`compare` measures one candidate's output against the actual one: elements that differ and
the largest difference in LSB (one code; for a float output, one scale step). :func:`describe`
names a candidate in words from its facts (``_variants_words``).

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError
from . import _variants_words as W

__all__ = ["Explanation", "Match"]  # compare, describe, check_actual: helpers of refquant.testing.explain

_SHOWN = 8  # ranking lines in str()


@dataclass(frozen=True)
class Match:
    """How close one candidate's output comes to the actual output.

    Attributes:
        label: The candidate's name (``"tflite_reference"``, ``"onnxruntime@avx2"``, ...).
        origin: ``"backend"``, ``"spec"`` or ``"rounding"`` (``Variant``).
        description: The candidate in words.
        facts: Its arithmetic, step -> words.
        n_diff, n_total: Elements that differ, and all elements.
        max_lsb: The largest difference in LSB (0 when exact; ``inf`` against a NaN).
        first: Up to 3 ``(index, candidate value, actual value)`` of differing elements.
    """

    label: str
    origin: str
    description: str
    facts: dict
    n_diff: int
    n_total: int
    max_lsb: float
    first: tuple
    key: bytes = field(repr=False, default=b"")

    @property
    def exact(self) -> bool:
        return self.n_diff == 0

    def summary(self) -> str:
        if self.exact:
            return "exact"
        lsb = f"{self.max_lsb:.3g}" if self.max_lsb != int(self.max_lsb) else str(int(self.max_lsb))
        return f"{self.n_diff} of {self.n_total} differ, max {lsb} LSB"


@dataclass
class Explanation:
    """The verdict on one mismatch (``str()`` prints it for a person).

    Attributes:
        op: The op explained.
        expected: Your expectation (the face's own profile, or ``profile=``) against the actual output.
        ranking: Every candidate that could run the op, closest first.
        skipped: ``(label, reason)`` of candidates that cannot run it (the backend refuses the inputs).
    """

    op: str
    expected: Match
    ranking: list
    skipped: list

    @property
    def best(self) -> Match | None:
        """The closest candidate (a backend before a spec change before a hand-written rounding on ties)."""
        return self.ranking[0] if self.ranking else None

    @property
    def exact(self) -> list:
        """Every candidate that reproduces the actual output."""
        return [m for m in self.ranking if m.exact]

    def reproduces(self, label: str) -> bool:
        """Whether the candidate ``label`` reproduces the actual output exactly."""
        return any(m.label == label for m in self.exact)

    @property
    def differences(self) -> list:
        """Steps on which the best candidate's arithmetic differs from the expectation's."""
        return [] if self.best is None or self.expected.exact else W.differences(self.expected.facts, self.best.facts)

    def __repr__(self) -> str:
        return f"Explanation(op={self.op!r}, verdict={self.verdict()!r})"

    def verdict(self) -> str:
        e, b = self.expected, self.best
        if e.exact:
            return f"matches the expectation ({e.label}: {e.description}) exactly: no mismatch"
        if b is None:
            return "no candidate arithmetic could run this op on these inputs"
        if b.exact:
            return f"reproduced exactly by {b.label}: {b.description}"
        hint = " (more than a few LSB: suspect the parameters, layout or inputs rather than the arithmetic)" \
            if b.max_lsb > 4 else ""
        return f"no candidate reproduces it exactly; closest is {b.label} ({b.summary()}): {b.description}{hint}"

    def __str__(self) -> str:
        e = self.expected
        lines = [f"{self.op}: {e.summary()} against the expectation ({e.label}: {e.description})"]
        if not e.exact:
            lines.append("  first differences (index: expected -> actual): "
                         + ", ".join(f"{i}: {_fmt(a)} -> {_fmt(b)}" for i, a, b in e.first))
        lines.append(f"Verdict: {self.verdict()}")
        if self.differences:
            lines += ["What differs from the expectation:"] + [f"  {d}" for d in self.differences]
        lines.append("Candidates, closest first (one line per distinct output):")
        groups: dict = {}
        for m in self.ranking:
            groups.setdefault(m.key, []).append(m)
        for members in list(groups.values())[:_SHOWN]:
            names = ", ".join(m.label for m in members[:3]) + (f" (+{len(members) - 3} more)" if len(members) > 3 else "")
            lines.append(f"  {members[0].summary():<28} {names}: {members[0].description}")
        if len(groups) > _SHOWN:
            lines.append(f"  ... {len(groups) - _SHOWN} more outputs")
        if self.skipped:
            lines.append(f"({len(self.skipped)} candidates cannot run these inputs: "
                         + ", ".join(label for label, _ in self.skipped[:6]) + (", ..." if len(self.skipped) > 6 else "")
                         + ")")
        return "\n".join(lines)


def _fmt(v) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):.9g}"


def describe(call, v, facts: dict) -> str:
    """The candidate ``v`` (a ``Variant``) in words."""
    if v.origin == "rounding":
        return f"a hand-written requantization: {facts['requantization']}, {facts['rounding']}"
    if call.kind in ("model", "node"):
        return W.backend_words(v.profile)
    main = {"layer": ("requantization", "rounding"), "quantize": ("scaling", "rounding", "zero point"),
            "dequantize": ("subtraction",), "add": ("add",),
            "fake_quantize": ("ops", "rounding", "zero point")}.get(call.kind, tuple(facts))
    if call.kind == "layer" and "int16" in facts.get("accumulation", ""):
        main = ("accumulation",) + main
    what = "; ".join(facts[k] for k in main if k in facts)
    if v.origin == "spec":
        return f"as expected, but {v.label[v.label.index('[') + 1:-1]}: {what}"
    step = {"fake_quantize": " fake-quantize", "quantize": ""}[v.step] if call.kind == "quantize" else ""
    return f"{W.backend_words(v.profile)}{step}: {what}"


def compare(call, v, y, actual, lsb) -> Match:
    """How close ``y`` (the output of candidate ``v`` on ``call``) comes to ``actual``; ``lsb``: one LSB."""
    y64, a64 = np.asarray(y, np.float64), np.asarray(actual, np.float64)
    same = (y64 == a64) | (np.isnan(y64) & np.isnan(a64))
    diff = ~same
    with np.errstate(invalid="ignore"):
        dist = np.where(diff, np.abs(y64 - a64) / np.broadcast_to(np.asarray(lsb, np.float64), y64.shape), 0.0)
    dist = np.where(diff & np.isnan(dist), np.inf, dist)
    first = tuple((tuple(int(i) for i in idx), y64[tuple(idx)], a64[tuple(idx)]) for idx in np.argwhere(diff)[:3])
    facts = call.facts(v)
    return Match(v.label, v.origin, describe(call, v, facts), facts, int(diff.sum()), int(diff.size),
                 float(dist.max()) if dist.size else 0.0, first, np.ascontiguousarray(y64).tobytes())


def check_actual(actual, like: np.ndarray, name: str = "actual", source: str = "the inputs") -> np.ndarray:
    """``actual`` as an array of ``like``'s shape and kind (codes or floats), else a named error."""
    a = V.asarray(actual, name, kinds="iuf", what="a numeric array")
    if a.shape != like.shape:
        raise ShapeError(f"{name} must have the output shape {like.shape} that {source} give, got {a.shape}")
    if (like.dtype.kind in "iu") != (a.dtype.kind in "iu"):
        want = "integer codes" if like.dtype.kind in "iu" else "floats"
        raise QuantizationTypeError(f"{name} must hold {want} like the output ({like.dtype}), got dtype {a.dtype}")
    return a
