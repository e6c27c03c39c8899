"""Labelled mismatches: outputs of one backend checked against another's expectation.

Each :class:`LabelledCase` is a face call's ``inputs`` (selecting the *expected* backend with their
``kernel=`` / ``isa=`` / ``engine=``), the ``actual`` output another backend ``label`` gives on the same
inputs, and where that output came from. They are drawn from every pair of profiles that can disagree
on an op; inputs are tie-rich (power-of-two scales, odd zero points, values on exact halves) so that
rounding rules show. The explainer is scored on them (``tests/test_testing_explain_labelled.py``):
its best candidate should be ``label``, or ``label`` among the candidates that reproduce the output.

| pairs | op | actual made by |
|---|---|---|
| TFLite reference / XNNPACK / optimized | ``tflite.*`` (5 ops) | the TFLite face, ``kernel=`` |
| ONNX Runtime AVX2 / VNNI (u8s8 pair saturation) | ``onnxruntime.qlinear_matmul``, ``qlinear_conv`` | the face, ``isa=`` |
| ONNX spec / ONNX Runtime / ``onnx.reference`` | ``onnx.qlinear_*``, ``onnxruntime.qlinear_*`` | the faces; ``onnx.reference``'s profile through the ops layer |
| PyTorch fbgemm / qnnpack | ``pytorch.linear``, ``conv2d``, ``add`` | the face, ``engine=`` |
| PyTorch quantize / fake-quantize; torch 2.13 / 1.6-2.12 | ``pytorch.quantize_per_tensor``, ``fake_quantize_per_tensor_affine`` | the face's other function |
| round half away (TFLite) / half to even (ONNX) | ``tflite.quantize``, ``onnx.quantize_linear``, ``onnxruntime.quantize_linear``, ``onnxruntime.qlinear_add`` | the other face |

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from .. import _validate as V
from ..backends import pytorch
from ..ops import layers
from ._variants import profile_label
from ._variants_faces import FACE_OPS, bind

__all__ = ["LabelledCase", "labelled_cases"]

_F32, _I8, _U8, _I32 = np.float32, np.int8, np.uint8, np.int32


@dataclass(frozen=True)
class LabelledCase:
    """``actual`` is what backend ``label`` returns for ``inputs``; ``inputs`` select the expectation."""

    op: str
    inputs: dict
    actual: np.ndarray
    label: str
    source: str


def _pow2(rng, lo, hi, shape=()):
    return (2.0 ** -rng.integers(lo, hi + 1, shape)).astype(_F32)


def _tfl_layer(rng, op):
    """A small TFLite layer with power-of-two scales: $S_x S_w / S_y = 2^{-k}$, many exact ties."""
    xs, ws, ys = _pow2(rng, 1, 3), _pow2(rng, 2, 4, (6,) if rng.random() < 0.5 else ()), _pow2(rng, -1, 1)
    a = dict(x_scale=xs, x_zero_point=int(rng.integers(-5, 6)), w_scale=ws, y_scale=ys,
             y_zero_point=int(rng.integers(-9, 10)) | 1, activation=[None, "RELU"][int(rng.integers(2))])
    codes = lambda *s: rng.integers(-20, 21, s).astype(_I8)
    if op == "tflite.fully_connected":
        a.update(x=codes(3, 8), w=codes(6, 8), b=rng.integers(-64, 65, 6).astype(_I32))
    elif op == "tflite.conv2d":
        a.update(x=codes(1, 5, 5, 3), w=codes(6, 3, 3, 3), b=rng.integers(-64, 65, 6).astype(_I32), padding="SAME")
    else:  # depthwise: 10 channels, so that the optimized kernel's last 10 % 8 channels take its scalar tail
        a.update(x=codes(1, 5, 5, 10), w=codes(1, 3, 3, 10), b=rng.integers(-64, 65, 10).astype(_I32),
                 w_scale=_pow2(rng, 2, 4), padding="VALID")
    return a


def _add_args(rng, dtype=_I8, names=("a", "b", "y")):
    """An element-wise add; scales $2^{-4}, 2^{-4}$ or $2^{-5}$, $2^{-3}$: sums land on exact halves."""
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    a = {names[0]: rng.integers(lo, hi + 1, 40).astype(dtype), names[1]: rng.integers(lo, hi + 1, 40).astype(dtype)}
    for n, s in zip(names, (2.0 ** -4, 2.0 ** -int(rng.integers(4, 6)), 2.0 ** -3)):
        a[n + "_scale"] = _F32(s)
        a[n + "_zero_point"] = dtype(rng.integers(lo // 4, hi // 4))
    return a


def _ties(rng, scale, zp, n=20):
    """float32 values on exact halves of ``scale`` around the zero point, plus a few random ones."""
    k = rng.integers(-60, 60, n) + 0.5
    k[::5] = rng.uniform(-60, 60, len(k[::5]))
    return (k * scale).astype(_F32)


def _ort_layer(rng, conv: bool, saturating: bool):
    """uint8 x int8 operands. ``saturating``: large codes, so that u8 x s8 pair sums pass int16 (x86 AVX2)
    while signs mixed at random keep the sum in range. Otherwise small codes and $S_a = \\mathrm{fl}(1/3)$,
    $S_b = 3/2$, $S_y = 8$: ONNX Runtime's float32 multiplier is exactly $2^{-4}$ (exact ties), the
    specification's exact one a little more."""
    xz = int(rng.integers(100, 156))
    x_shape, w_shape = ((1, 4, 5, 5), (6, 4, 3, 3)) if conv else ((3, 16), (16, 6))
    if saturating:
        x = rng.integers(180, 256, x_shape).astype(_U8)
        w = (rng.integers(90, 128, w_shape) * rng.choice([1, -1], w_shape)).astype(_I8)
        scales = (2.0 ** -4, 2.0 ** -6, 2.0)
    else:
        x = (xz + rng.integers(-6, 7, x_shape)).astype(_U8)
        w = rng.integers(-6, 7, w_shape).astype(_I8)
        scales = (1 / 3, 1.5, 8.0)
    xs, ws, ys = (_F32(v) for v in scales)
    a = dict(x_scale=xs, x_zero_point=_U8(0 if saturating else xz), w_scale=ws, w_zero_point=_I8(0), y_scale=ys,
             y_zero_point=_U8(int(rng.integers(60, 190)) | 1))
    if conv:
        return dict(x=x, w=w, **a)
    return dict(a=x, a_scale=xs, a_zero_point=a["x_zero_point"], b=w, b_scale=ws, b_zero_point=a["w_zero_point"],
                y_scale=ys, y_zero_point=a["y_zero_point"])


def _torch_layer(rng, conv: bool):
    """quint8 x qint8 with a float bias and $M \\approx 1/2$: fbgemm adds the bias's fraction in float, qnnpack
    rounds the bias to int32 first, so the two part on many outputs."""
    xz = int(rng.integers(100, 150))
    x = (xz + rng.integers(-8, 9, (1, 3, 5, 5) if conv else (3, 8))).astype(_U8)
    w = rng.integers(-8, 9, (4, 3, 3, 3) if conv else (4, 8)).astype(_I8)
    xs, ws = _F32(rng.uniform(0.02, 0.05)), _F32(rng.uniform(0.02, 0.05))
    return dict(x=x, x_scale=xs, x_zero_point=xz, w=w, w_scale=ws, w_zero_point=0,
                bias=rng.normal(0, 0.05, 4).astype(_F32), y_scale=_F32(xs * ws * rng.uniform(1.5, 3)),
                y_zero_point=int(rng.integers(100, 150)))


# --------------------------------------------------------------------------- the pairs


def _kernel_pairs(op, make):
    """Every ordered pair of TFLite kernels: actual from the first, expectation the second."""
    for a, b in permutations(("reference", "xnnpack", "optimized"), 2):
        yield lambda rng, a=a, b=b: _face_case(op, make(rng), {"kernel": a}, {"kernel": b})


def _face_case(op, args, actual_kw, expected_kw):
    fn = FACE_OPS[op].function
    label = profile_label(FACE_OPS[op].profile(bind(FACE_OPS[op], {**args, **actual_kw})))
    return op, {**args, **expected_kw}, fn(**args, **actual_kw), label, f"{op}({actual_kw})"


def _cross(op, args, actual_op, actual_args, label):
    """Expectation ``op``; actual from another face function on the same values."""
    return op, args, FACE_OPS[actual_op].function(**actual_args), label, actual_op


def _ort_isa(op, conv, a, b):
    return lambda rng: _face_case(op, _ort_layer(rng, conv, True), {"isa": a}, {"isa": b})


def _onnx_vs_ort(op, conv, expected_is_onnx: bool):
    """The ONNX spec and ONNX Runtime (VNNI) on the same QLinear inputs, one as the expectation."""
    other = op.replace("onnxruntime.", "onnx.")

    def make(rng):
        a = _ort_layer(rng, conv, False)
        if expected_is_onnx:
            return _cross(other, a, op, {**a, "isa": "vnni"}, "onnxruntime@vnni")
        return _cross(op, {**a, "isa": "vnni"}, other, a, "onnx")
    return make


def _quantize_cross(expected_op):
    """Round half away from zero (TFLite reference QUANTIZE) against half to even (ONNX QuantizeLinear)."""
    def make(rng):
        x = _ties(rng, 0.125, 3)
        tfl, onx = dict(x=x, scale=0.125, zero_point=3), dict(x=x, y_scale=_F32(0.125), y_zero_point=_I8(3))
        if expected_op == "tflite.quantize":
            return _cross(expected_op, tfl, "onnx.quantize_linear", onx, "onnx")
        return _cross(expected_op, onx, "tflite.quantize", tfl, "tflite_reference")
    return make


def _ort_add_vs_tflite(rng):
    a = _add_args(rng, _I8, ("a", "b", "c"))
    return _cross("onnxruntime.qlinear_add", a, "tflite.add", {k.replace("c_", "y_"): v for k, v in a.items()},
                  "tflite_reference")


def _generators():
    for op in ("tflite.fully_connected", "tflite.conv2d", "tflite.depthwise_conv2d"):
        yield from _kernel_pairs(op, lambda r, op=op: _tfl_layer(r, op))
    yield from _kernel_pairs("tflite.add", _add_args)
    yield from _kernel_pairs("tflite.quantize", lambda r: dict(x=_ties(r, 0.125, 3), scale=0.125, zero_point=3))
    for op, conv in (("onnxruntime.qlinear_matmul", False), ("onnxruntime.qlinear_conv", True)):
        yield from (_ort_isa(op, conv, a, b) for a, b in permutations(("avx2", "vnni")))
        yield _onnx_vs_ort(op, conv, True)
        yield _onnx_vs_ort(op, conv, False)
        yield lambda rng, op=op, conv=conv: _onnx_reference(rng, op.replace("onnxruntime.", "onnx."), conv)
    for op, conv in (("pytorch.linear", False), ("pytorch.conv2d", True)):
        for a, b in permutations(("fbgemm", "qnnpack")):
            yield lambda rng, op=op, conv=conv, a=a, b=b: _face_case(
                op, _torch_layer(rng, conv), {"engine": a, "isa": "vnni"}, {"engine": b, "isa": "vnni"})
    for a, b in permutations(("fbgemm", "qnnpack")):
        yield lambda rng, a=a, b=b: _face_case("pytorch.add", _add_args(rng, _U8), {"engine": a}, {"engine": b})
    for a, b in permutations(("before", "after")):
        yield lambda rng, a=a, b=b: _face_case("pytorch.quantize_per_tensor", _torch_q(rng),
                                               {"zero_point_order": a}, {"zero_point_order": b})
    yield _torch_fake_codes
    yield _torch_converted
    yield from (_quantize_cross(op) for op in ("onnx.quantize_linear", "onnxruntime.quantize_linear",
                                               "tflite.quantize"))
    yield _ort_add_vs_tflite


def _torch_q(rng):
    return dict(x=_ties(rng, 0.25, 0), scale=0.25, zero_point=int(rng.integers(60, 190)) | 1, dtype="quint8")


def _torch_fake_codes(rng):
    """quantize_per_tensor expected; the codes a QAT model's fake-quantize gives (a power-of-two scale: exact)."""
    a = _torch_q(rng)
    y = pytorch.fake_quantize_per_tensor_affine(a["x"], a["scale"], a["zero_point"], 0, 255)
    codes = (np.rint(y / _F32(a["scale"])) + a["zero_point"]).astype(_U8)
    return "pytorch.quantize_per_tensor", a, codes, "pytorch_fbgemm:fake_quantize", "fake_quantize_per_tensor_affine"


def _torch_converted(rng):
    """fake-quantize expected; what the converted model computes: quantize_per_tensor, then dequantize."""
    a = _torch_q(rng)
    q = pytorch.quantize_per_tensor(a["x"], a["scale"], a["zero_point"], "quint8")
    args = dict(x=a["x"], scale=a["scale"], zero_point=a["zero_point"], quant_min=0, quant_max=255)
    return ("pytorch.fake_quantize_per_tensor_affine", args, pytorch.dequantize(q, a["scale"], a["zero_point"]),
            "pytorch_fbgemm:quantize+dequantize", "quantize_per_tensor + dequantize")


def _onnx_reference(rng, op, conv):
    """The ONNX spec expected; ``onnx.reference``'s arithmetic (its profile, through the ops layer)."""
    a = _ort_layer(rng, conv, False)
    sx, zx = (a["x_scale"], a["x_zero_point"]) if conv else (a["a_scale"], a["a_zero_point"])
    x, w = (a["x"], a["w"]) if conv else (a["a"], np.ascontiguousarray(a["b"].T))
    ws = a["w_scale"] if conv else a["b_scale"]
    common = (x, sx, int(zx), w, ws, 0, None, a["y_scale"], int(a["y_zero_point"]))
    y = layers.conv2d(*common, profile="onnx_reference", out_dtype=_U8) if conv else \
        layers.linear(*common, profile="onnx_reference", out_dtype=_U8)
    return op, a, y, "onnx_reference", "refquant.ops.layers under profile onnx_reference"


def labelled_cases(seed: int = 0, per_pair: int = 2, attempts: int = 40) -> list[LabelledCase]:
    """``per_pair`` mismatching cases for every pair of the module table (deterministic in ``seed``).

    A pair is tried on up to ``attempts`` random inputs; an input on which the two agree is no case.

    Args:
        seed: An int >= 0. per_pair: Cases per pair, in [1, 100]. attempts: Inputs tried per pair,
            in [1, 1000].

    Raises:
        QuantizationValueError, QuantizationTypeError: An argument out of range or not an int.
    """
    seed = V.as_int_scalar(seed, "seed", lo=0, hi=2**63 - 1)
    per_pair = V.as_int_scalar(per_pair, "per_pair", lo=1, hi=100)
    attempts = V.as_int_scalar(attempts, "attempts", lo=1, hi=1000)
    rng = np.random.default_rng(seed)
    cases = []
    for make in _generators():
        found = 0
        for _ in range(attempts):
            op, inputs, actual, label, source = make(rng)
            expected = FACE_OPS[op].function(**inputs)
            if np.array_equal(np.asarray(expected), np.asarray(actual), equal_nan=expected.dtype.kind == "f"):
                continue
            cases.append(LabelledCase(op, inputs, np.asarray(actual), label, source))
            found += 1
            if found == per_pair:
                break
    return cases
