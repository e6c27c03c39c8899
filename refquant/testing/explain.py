"""Why is my result off by one? Find the arithmetic that reproduces a mismatching output.

:func:`explain_mismatch` re-runs one face op (``"tflite.fully_connected"``,
``"onnxruntime.qlinear_matmul"``, ``"pytorch.quantize_per_tensor"``, ...: the names of
``FACE_OPS``) under every candidate arithmetic of
``_variants`` — every backend profile, each one-field change of the expected
backend's spec, hand-written requantizations — and ranks them by how close each comes to the output
you got: elements differing, then the largest difference in LSB (one code, or one scale step of a
float output). A candidate with no differing element *reproduces* the output; several can (they
compute the same thing on these inputs), and the ranking shows them on one line.

:func:`explain_model` does the same for a :class:`~refquant.qmodel.QuantizedModel`: given the
per-tensor outputs of another runtime it finds the first node whose output differs and explains
that node on the inputs the other runtime fed it; given only the model's output it runs the whole
model under each backend profile.

Example::

    e = explain_mismatch("tflite.fully_connected", inputs, y_device, profile="tflite_xnnpack")
    print(e)            # verdict, what differs, the ranking
    e.best.label        # "tflite_reference"

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, RefquantError
from ..profiles import Profile, get_profile
from ..qmodel import QuantizedModel
from . import _variants_words as W
from ._variants import Variant, expected_variant, variants_for
from ._variants_faces import FACE_OPS, bind, face_op
from ._variants_match import Explanation, Match, check_actual, compare
from ._variants_model import ModelCall, node_call

__all__ = [
    "FACE_OPS",
    "Explanation",
    "Match",
    "ModelExplanation",
    "explain_mismatch",
    "explain_model",
    "resolve_profile",
]

_ORIGIN_ORDER = {"backend": 0, "spec": 1, "rounding": 2}


def resolve_profile(profile, name: str = "profile") -> Profile:
    """A :class:`~refquant.profiles.Profile`, a profile name, or a candidate label with an ISA
    (``"onnxruntime@avx2"``, ``"pytorch_fbgemm@vnni"``) as a Profile."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str) and "@" in profile:
        base, isa = profile.split("@", 1)
        try:
            return get_profile(base, isa=isa)
        except RefquantError:
            pass
    try:
        return get_profile(profile)
    except RefquantError:
        raise QuantizationValueError(f"{name} must be a profile name, a 'name@isa' label (isa avx2 or vnni) or a "
                                     f"Profile, got {V.describe(profile)}") from None


def _explain(op: str, call, expected: Variant, y_expected, actual, face: str) -> Explanation:
    """Run every candidate; rank by distance, then (ties) backends before the synthetic candidates,
    the expectation's own step (quantize, fake-quantize) first, a backend of the op's own face, the
    fewest steps changed from the expectation, a spec change before a hand-written rounding, order."""
    lsb = call.lsb(actual.shape)
    mine = compare(call, expected, y_expected, actual, lsb)
    rows, skipped = [], []
    for i, v in enumerate(variants_for(call, expected)):
        try:
            y = call.run(v)
        except RefquantError as err:
            skipped.append((v.label, str(err).splitlines()[0]))
            continue
        except (TypeError, ValueError, ArithmeticError) as err:  # a spec combination no backend has
            if v.origin == "backend":
                raise
            skipped.append((v.label, f"{type(err).__name__}: {err}".splitlines()[0]))
            continue
        m = compare(call, v, y, actual, lsb)
        backend = m.origin == "backend"
        rows.append(((m.n_diff, m.max_lsb, not backend, v.step != expected.step,
                      backend and W.face_family(m.label) != face, len(W.differences(mine.facts, m.facts)),
                      _ORIGIN_ORDER[m.origin], i), m))
    rows.sort(key=lambda r: r[0])
    return Explanation(op, mine, [m for _, m in rows], skipped)


def explain_mismatch(op, inputs, actual, *, profile=None) -> Explanation:
    """Explain why ``actual`` differs from what a face op returns.

    Args:
        op: A face op name, a key of :data:`FACE_OPS` (``"tflite.conv2d"``, ``"onnx.qlinear_matmul"``, ...).
        inputs: The keyword arguments of that face call (a dict; positional names as keywords),
            including its ``kernel=`` / ``isa=`` / ``engine=`` choice if you made one.
        actual: The output you got (the op's output shape; codes or floats as the op returns).
        profile: Your expectation: a profile name, a ``"name@isa"`` label or a
            :class:`~refquant.profiles.Profile`. ``None``: the profile the face runs for ``inputs``.

    Returns:
        An :class:`Explanation`.

    Raises:
        QuantizationValueError: An unknown ``op`` or ``profile``.
        QuantizationTypeError, ShapeError: ``inputs`` the face refuses (the face's own error,
            naming its argument), or an ``actual`` of the wrong shape or kind.
        UnsupportedError: Inputs the explainer does not cover (see
            ``_variants_faces``), or a ``profile`` that cannot run the op.
    """
    entry = face_op(op)
    args = bind(entry, inputs)
    y_face = np.asarray(entry.function(**args))
    call = entry.call(args, y_face)
    if profile is None:
        expected = expected_variant(entry.profile(args), call.kind)
        y_expected = y_face
    else:
        expected = expected_variant(resolve_profile(profile), call.kind)
        y_expected = call.run(expected)
    return _explain(op, call, expected, y_expected, check_actual(actual, y_face), W.face_family(op))


def _n_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Elements of two arrays of one shape that differ (NaN equals NaN)."""
    same = a == b
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        same |= np.isnan(a.astype(np.float64)) & np.isnan(b.astype(np.float64))
    return int(np.count_nonzero(~same))


@dataclass
class ModelExplanation:
    """Where a model's outputs first diverge from refquant's, and why (``str()`` prints it).

    Attributes:
        node: The first node whose output differs; ``None`` when only the model's output was
            given (the explanation is then over whole-model candidates) or nothing differs.
        compared: ``(tensor, elements differing, elements)`` of each compared tensor, in
            execution order, up to the first that differs.
        explanation: The :class:`Explanation` of that node (or of the whole model); ``None``
            when every compared tensor matches.
    """

    node: str | None
    compared: list
    explanation: Explanation | None

    def __str__(self) -> str:
        if self.explanation is None:
            return f"all {len(self.compared)} compared tensors match refquant's model exactly: no mismatch"
        if self.node is None:
            return "only the model's output was given: whole-model candidates\n" + str(self.explanation)
        return (f"first diverging node: {self.node!r} (after {len(self.compared) - 1} matching tensors)\n"
                + str(self.explanation))


def explain_model(qmodel, x, actual) -> ModelExplanation:
    """Find the first node of ``qmodel`` whose output differs from ``actual`` and explain it.

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel`.
        x: Its input, as :meth:`~refquant.qmodel.QuantizedModel.run` takes it.
        actual: Another runtime's outputs: a dict tensor name (or node name) -> array, in the
            dtype and shape of ``qmodel.trace(x)``'s tensors (the first differing node is
            explained on the inputs *it* received, taken from ``actual`` where given); or one
            array, the model's output (then the whole model runs under each backend profile).

    Returns:
        A :class:`ModelExplanation`.

    Raises:
        QuantizationTypeError: ``qmodel`` is not a QuantizedModel; an ``actual`` array of the wrong kind.
        QuantizationValueError: A key of ``actual`` that names no tensor or node of the model.
        ShapeError: An ``actual`` array of the wrong shape.
    """
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a refquant.qmodel.QuantizedModel, got {V.describe(qmodel)}")
    trace = qmodel.trace(x)
    model_profile = qmodel.resolved_profile
    face = W.face_family(model_profile.name)
    if not isinstance(actual, dict):
        out = qmodel.outputs[0]
        got = check_actual(actual, trace[out], source="x")
        n_diff = _n_diff(got, trace[out])
        if not n_diff:
            return ModelExplanation(None, [(out, 0, got.size)], None)
        call = ModelCall(qmodel, {n: trace[n] for n in qmodel.inputs})
        e = _explain("model", call, expected_variant(model_profile, "model"), trace[out], got, face)
        return ModelExplanation(None, [(out, n_diff, got.size)], e)
    output_of = {n.name: n.output for n in qmodel.nodes}
    given = {}
    for key, value in actual.items():
        name = output_of.get(key, key)
        if name not in trace:
            raise QuantizationValueError(f"actual must be keyed by the model's tensor or node names, got {key!r}")
        given[name] = check_actual(value, trace[name], f"actual[{key!r}]", source="x").astype(trace[name].dtype)
    compared = []
    for node in qmodel.nodes:
        if node.output not in given:
            continue
        n_diff = _n_diff(given[node.output], trace[node.output])
        compared.append((node.output, n_diff, given[node.output].size))
        if n_diff:
            call = node_call(node, [given.get(i, trace[i]) for i in node.inputs], qmodel.tensors)
            expected = expected_variant(model_profile, call.kind)
            op = f"node {node.name!r} ({node.op})"
            return ModelExplanation(node.name, compared, _explain(op, call, expected, call.run(expected),
                                                                  given[node.output], face))
    return ModelExplanation(None, compared, None)
