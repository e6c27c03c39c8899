"""Weight fake quantization: a layer's ``weight_transform`` that rounds its weights each forward.

With ``bits=8`` the integer codes and scales are the recipe's
(:func:`refquant.ptq.recipes.quantize_weight`, per output channel or per tensor): the codes
:func:`refquant.qat.conversion.convert` stores for the same float weights. With fewer bits they are
symmetric, per channel or per tensor,

$$ S = \\frac{\\max |w|}{2^{b-1} - 1}, \\qquad q = \\operatorname{clamp}\\big(\\mathrm{RNE}(w / S),\\,
   -(2^{b-1} - 1),\\, 2^{b-1} - 1\\big) \\tag{1} $$

($S = 1$ for an all-zero channel). Either way the forward weight is $w_{fq} = S\\,q$ (one float32
product), recomputed from the current float weights on every forward, and the backward is the
straight-through estimator with the clamp mask

$$ \\frac{\\partial L}{\\partial w} = \\frac{\\partial L}{\\partial w_{fq}} \\cdot
   [\\, q_{min} \\le \\mathrm{RNE}(w / S) \\le q_{max} \\,], \\tag{2} $$

$[q_{min}, q_{max}]$ the codes the recipe allows ($[-127, 127]$ for TFLite and ONNX Runtime,
$[-64, 64]$ for ONNX Runtime's 7-bit weights on AVX2, $[-128, 127]$ for PyTorch, whose scale
$\\max|w| / 127.5$ clips the largest positive weight). $S$ depends on $w$ through its maximum;
that dependence gets no gradient (as in PyTorch's weight fake-quantizer).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..nn.transforms import apply_weight_transform, weight_grad
from ..profiles import Profile
from ..ptq.recipes import Recipe, quantize_weight

__all__ = ["WeightFakeQuantize", "symmetric_codes", "weight_code_range"]

_F32 = np.float32


#: Clip ratios $r$ searched by eq. (1), largest first (a tie keeps the larger range): 1.00, 0.99, ..., 0.30.
CLIP_RATIOS = np.arange(100, 29, -1, dtype=np.float64) / 100


def symmetric_codes(w: np.ndarray, bits: int, per_channel: bool, *, clip: str = "max") -> tuple[np.ndarray, np.ndarray]:
    """Eq. (1): ``(q, S)``, int8 codes of ``w``'s shape and float32 scales ``(O,)`` or ``()``.

    ``clip="max"`` (the default) is eq. (1), $S = \\max|w| / (2^{b-1} - 1)$; ``clip="mse"`` instead
    takes the ratio $r$ of :data:`CLIP_RATIOS` whose $S = r \\max|w| / (2^{b-1} - 1)$ gives the least
    squared weight error (an alternative, not what the flows use).
    """
    clip = V.as_choice(clip, "clip", ("mse", "max"))
    qmax = 2 ** (bits - 1) - 1
    w = np.asarray(w, _F32)
    rows = w.reshape(w.shape[0] if per_channel else 1, -1)  # (O, K)
    amax = np.abs(rows).max(axis=1)  # (O,)
    ratios = CLIP_RATIOS if clip == "mse" else CLIP_RATIOS[:1]
    cand = (ratios[:, None] * amax.astype(np.float64)[None, :] / qmax).astype(_F32)  # (R, O), rounded once
    cand = np.where(amax > 0, cand, _F32(1))
    q = np.clip(np.rint((rows[None] / cand[:, :, None]).astype(_F32)), -qmax, qmax)  # RNE, (R, O, K)
    err = np.square((cand[:, :, None] * q - rows[None]).astype(np.float64)).sum(axis=2)  # (R, O)
    best = err.argmin(axis=0)  # the first minimum: the largest such ratio
    scale = cand[best, np.arange(rows.shape[0])]
    codes = q[best, np.arange(rows.shape[0])].astype(np.int8).reshape(w.shape)
    return codes, (scale if per_channel else scale.reshape(()))


def weight_code_range(recipe: Recipe, profile: Profile, bits: int) -> tuple[int, int]:
    """$[q_{min}, q_{max}]$ of eq. (2) for ``recipe`` on ``profile``'s ISA."""
    if bits != 8:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    if recipe.name == "pytorch":
        return -128, 127
    if profile.isa in recipe.weight_reduce_range_isas:
        return -64, 64
    return -127, 127


class WeightFakeQuantize:
    """Weight transform $w \\mapsto (S\\,q,\\ g \\mapsto g \\cdot \\mathrm{mask})$, eq. (1)-(2).

    A callable object (not a closure) so that a deep copy of the model copies it too.

    Args:
        recipe: The tool whose 8-bit weight rule to use.
        profile: The resolved profile (its ISA picks ONNX Runtime's 7-bit weights).
        per_channel: One scale per output channel (axis 0), else one per tensor.
        bits: 2 to 8.
        inner: The layer's previous ``weight_transform`` (a pruning mask, say), applied first;
            ``None`` for none.
    """

    def __init__(self, recipe: Recipe, profile: Profile, *, per_channel: bool, bits: int = 8, inner=None):
        self.recipe, self.profile = recipe, profile
        self.per_channel, self.bits, self.inner = per_channel, bits, inner

    def codes(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(q, S)`` for float weights ``w`` (after ``inner``): what the integer model stores."""
        if self.bits == 8:
            q, s, _ = quantize_weight(self.recipe, w, per_channel=self.per_channel, profile=self.profile)
            return q, s
        return symmetric_codes(w, self.bits, self.per_channel)

    def prepare(self, w: np.ndarray) -> tuple[np.ndarray, object]:
        """``inner(w)`` and its backward (``None`` for the identity)."""
        return apply_weight_transform(w, self.inner, "weight_transform") if self.inner is not None else (w, None)

    def fake_quantize(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(w_fq, mask)`` for weights already through ``inner``: eq. (1) and the mask of eq. (2)."""
        q, s = self.codes(w)
        sb = s.reshape((-1,) + (1,) * (w.ndim - 1)) if s.ndim else s
        w_fq = (sb * q.astype(_F32)).astype(w.dtype)  # one float32 product
        qmin, qmax = weight_code_range(self.recipe, self.profile, self.bits)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.rint(w / sb)
        return w_fq, (r >= qmin) & (r <= qmax)

    def __call__(self, w):
        w0, inner_bwd = self.prepare(w)
        w_fq, mask = self.fake_quantize(w0)
        return w_fq, (lambda g: weight_grad(np.where(mask, g, 0).astype(g.dtype), inner_bwd))
