"""Parity with the TFLite converter in 16x8 mode: refquant's ``lower(..., int16_steps=every step)`` /
``quantize_static(..., int16_layers="all")`` against the ``.tflite`` files TensorFlow's converter wrote with
``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`` for the four bundled models. No TensorFlow here.

The fixtures (``tests/fixtures/tflite/<name>_16x8.tflite``, ``converter_16x8.json`` with the ranges the converter's
calibrator recorded) are made by ``tests/fixtures/make_tflite_fixtures.py --mode 16x8``; the graph matching,
parameter comparison and LiteRT runs are those of ``tests/test_conformance_tflite_converter.py``.

1. **Parameters**: from the converter's recorded ranges, refquant chooses every parameter as the converter did
   (symmetric int16 activations, int8 per-channel weights, int64 bias codes and their recorded scales), under
   every TFLite profile. From refquant's own calibration, weights and zero points are equal and activation scales
   within the int8 test's float-summation ulps.
2. **Outputs**: with the converter's parameters, ``qm.run`` and every tensor of ``qm.trace`` equal LiteRT's on the
   359 test images, under every resolver (XNNPACK takes no 16x8 node: its result is the builtin kernels').

Rerun: ``pytest tests/test_conformance_tflite_converter_16x8.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

import test_conformance_tflite_converter as C  # noqa: E402
from support.tflite_graph import read_graph, run_graph  # noqa: E402

from refquant.profiles import get_profile  # noqa: E402
from refquant.ptq.lower import lower  # noqa: E402
from refquant.ptq.trace import INPUT  # noqa: E402

pytestmark = [pytest.mark.conformance,
              pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")]

_F32 = np.float32
REGENERATE = ("regenerate with `python tests/fixtures/make_tflite_fixtures.py --mode 16x8` in a venv with "
              "tensorflow-cpu")


@functools.cache
def _index() -> dict:
    return json.loads((C.FIXTURES / "converter_16x8.json").read_text())


@functools.cache
def _fixture(name: str):
    entry = _index()["fixtures"][f"{name}_16x8"]
    content = (C.FIXTURES / entry["file"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"], f"{entry['file']} changed; {REGENERATE}"
    return read_graph(content)


def _all_steps(name: str) -> set:
    return {s.name for s in C._calibrated(name).steps}


@functools.cache
def _static(name: str):
    """``quantize_static(model, CAL, profile="tflite_reference", int16_layers="all")``."""
    return C._calibrated(name).lower(int16_layers="all")


@functools.cache
def _converter_ranges(name: str) -> dict:
    recorded = {r["tensor"]: r["range"] for r in _index()["fixtures"][f"{name}_16x8"]["calibrated_ranges"]}
    out = {}
    for node, op in C._match(_static(name), _fixture(name)):
        if node.op == "dequantize":
            continue
        lo, hi = recorded[op.outputs[0]]
        out[INPUT if node.op == "quantize" else node.output] = (_F32(lo), _F32(hi))
    return out


@functools.cache
def _as_converter(name: str, profile: str):
    cal = C._calibrated(name)
    return lower(cal.steps, _converter_ranges(name), profile=get_profile(profile, isa="auto"), recipe=cal.recipe,
                 int16_steps=_all_steps(name))


@functools.cache
def _litert(name: str, resolver: str) -> dict:
    values = run_graph(_fixture(name).content, [C._nhwc(C.X_TEST)], resolver, every_tensor=True)
    return {i: C._nchw(a) for i, a in values.items()}


@pytest.mark.parametrize("name", C.MODELS)
def test_same_float_weights(name):
    """The 16x8 fixtures were converted from refquant's folded float32 weights (SHA-256 per layer)."""
    assert _index()["fixtures"][f"{name}_16x8"]["folded_weights_sha256"] == \
        C._index()["models"][name]["folded_weights_sha256"], REGENERATE
    assert len(C._match(_static(name), _fixture(name))) == len(_static(name).nodes)


@pytest.mark.parametrize("name", C.MODELS)
def test_parameters_from_the_converters_ranges(name):
    """Every parameter equals the converter's: int16 activation scales (zero points 0), weights, int64 bias codes
    and the bias tensors' recorded scales, under every TFLite profile."""
    for profile in C.PROFILE.values():
        qm = _as_converter(name, profile)
        assert all(t.dtype == "int16" for t in qm.tensors.values() if t.is_integer)
        diffs = C._param_diffs(qm, _fixture(name))
        assert not diffs, f"{name}/{profile}: parameters differ from the converter's 16x8 model (NOT OK): {diffs}"


@pytest.mark.parametrize("name", C.MODELS)
def test_own_calibration_differs_only_by_range_ulps(name):
    """``quantize_static(..., int16_layers="all")``: weights and zero points equal the converter's; activation scales
    within ``SCALE_ULPS`` (the float-summation ulps of the ranges, as in int8)."""
    qm, fx = _static(name), _fixture(name)
    diffs = C._param_diffs(qm, fx)
    assert not {k: v for k, v in diffs.items() if k[1] == "weight"}, diffs
    for node, op in C._match(qm, fx):
        if node.op == "dequantize":
            continue
        y, t = qm.tensors[node.output], fx.tensors[op.outputs[0]]
        assert y.zero_point == 0 == int(t.zero_point[0])
        assert C._ulps(y.scale, t.scale[0]) <= C.SCALE_ULPS, (node.output, y.scale, t.scale[0])


CASES = [(n, r) for n in C.MODELS for r in C.PROFILE]


@pytest.mark.parametrize("name,resolver", CASES, ids=[f"{n}-{r}" for n, r in CASES])
def test_outputs_with_the_converters_parameters(name, resolver):
    """``qm.run`` and every tensor of ``qm.trace`` (int16 codes) equal LiteRT's on the 359 test images."""
    qm, fx = _as_converter(name, C.PROFILE[resolver]), _fixture(name)
    lite = _litert(name, resolver)
    y = qm.run(C.X_TEST)
    assert not C._diff("output", y, lite[fx.outputs[0]]), C._diff("output", y, lite[fx.outputs[0]])
    env = qm.trace(C.X_TEST)
    bad = [m for node, op in C._match(qm, fx) for m in C._diff(f"{node.output!r}", env[node.output],
                                                              lite[op.outputs[0]])]
    assert not bad, f"{name}/{resolver}: (NOT OK) " + "; ".join(bad)
