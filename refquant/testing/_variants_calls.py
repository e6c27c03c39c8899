"""One op call in refquant's internal convention, runnable under any candidate arithmetic.

A backend face (:mod:`refquant.backends`) translates its API to the ops layer and runs it under
*its* profile. The explainer needs the same call under *every* profile and under _variants of
one, so ``_variants_faces`` translates a face's arguments once into one of
these records, and each record runs itself under a candidate
(``Variant``: a profile, plus which step or rounding to use):

| record | what it computes | output |
|---|---|---|
| :class:`QuantizeCall` | float to codes: the profile's ``quantize`` (or ``fake_quantize``) step | codes |
| :class:`FakeQuantizeCall` | quantize-then-dequantize in float | float |
| :class:`DequantizeCall` | codes to float | float |
| ``LayerCall`` | fully connected / matmul / convolution (:mod:`refquant.ops.layers`) | codes |
| :class:`AddCall` | element-wise add (:func:`refquant.ops.pointwise.add`) | codes |

Each record also describes the arithmetic a candidate applies to it, step by step, in words
(``facts``), and gives the size of one LSB of its output (``lsb``: 1 for codes, the scale for
floats) so that distances are counted in LSB.

Added in 0.2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops import pointwise
from ..qparams import QParams
from ..quantization import dequantize, fake_quantize, quantize
from ..specs import select_spec
from . import _variants_words as W

__all__ = ["AddCall", "DequantizeCall", "FakeQuantizeCall", "QuantizeCall"]

_F32 = np.float32


@dataclass
class QuantizeCall:
    """``quantize(x, qparams)``: float ``x`` (any shape) to codes."""

    x: np.ndarray
    qparams: QParams
    kind = "quantize"

    def spec(self, variant):
        """The spec the candidate's step applies to this tensor (its cases resolved)."""
        entry = getattr(variant.profile, variant.step)
        return select_spec(entry, self.qparams, self.x.shape, self.x.dtype)

    def run(self, variant) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return quantize(self.x, self.qparams, self.spec(variant))

    def facts(self, variant) -> dict:
        return W.quantize_facts(self.spec(variant))

    def lsb(self, shape):
        return 1


@dataclass
class FakeQuantizeCall:
    """``fake_quantize(x, qparams)``: float to float; or, with the candidate's step
    ``"quantize"``, the backend's quantize followed by its dequantize (a converted model)."""

    x: np.ndarray
    qparams: QParams
    kind = "fake_quantize"

    def _steps(self, variant):
        p = variant.profile
        if variant.step == "fake_quantize":
            return p.fake_quantize, p.dequantize if p.fake_dequantize is None else p.fake_dequantize
        return p.quantize, p.dequantize

    def run(self, variant) -> np.ndarray:
        if variant.step == "fake_quantize":
            y = fake_quantize(self.x, self.qparams, variant.profile)
        else:
            q = quantize(self.x, self.qparams, variant.profile)
            y = dequantize(q, self.qparams, variant.profile)
        return y.astype(self.x.dtype)

    def facts(self, variant) -> dict:
        q, d = (select_spec(e, self.qparams, self.x.shape, self.x.dtype) for e in self._steps(variant))
        what = "fake-quantize (training)" if variant.step == "fake_quantize" else "quantize, then dequantize"
        return {"ops": what, **W.quantize_facts(q), **W.dequantize_facts(d)}

    def lsb(self, shape):
        return self.qparams.expand(shape)[0]


@dataclass
class DequantizeCall:
    """``dequantize(q, qparams)``: codes to float (``out_dtype``: the face's output type, when it
    rounds the profile's result once more, as ONNX Runtime does for a float16 scale)."""

    q: np.ndarray
    qparams: QParams
    out_dtype: object = None
    kind = "dequantize"

    def run(self, variant) -> np.ndarray:
        y = dequantize(self.q, self.qparams, variant.profile)
        return y if self.out_dtype is None else y.astype(self.out_dtype)

    def facts(self, variant) -> dict:
        return W.dequantize_facts(select_spec(variant.profile.dequantize, self.qparams, self.q.shape))

    def lsb(self, shape):
        return self.qparams.expand(shape)[0]


@dataclass
class AddCall:
    """``pointwise.add``: two code tensors of one dtype, per-tensor parameters."""

    a: np.ndarray
    a_scale: np.float32
    a_zero_point: int
    b: np.ndarray
    b_scale: np.float32
    b_zero_point: int
    y_scale: np.float32
    y_zero_point: int
    activation: str | None = None
    kind = "add"

    def run(self, variant) -> np.ndarray:
        return pointwise.add(self.a, self.a_scale, self.a_zero_point, self.b, self.b_scale, self.b_zero_point,
                             self.y_scale, self.y_zero_point, profile=variant.profile, activation=self.activation)

    def kernel(self, profile) -> tuple[str, str]:
        """``(add kernel, activation-bounds rule)`` of the profile for this dtype (its fallback's if unlisted)."""
        spec = profile.pointwise
        while spec.add_kernel(self.a.dtype) is None and spec.fallback is not None:
            spec = spec.fallback
        return spec.add_kernel(self.a.dtype) or "not_modelled", spec.activation_bounds

    def facts(self, variant) -> dict:
        return W.add_facts(*self.kernel(variant.profile), self.activation)

    def lsb(self, shape):
        return 1
