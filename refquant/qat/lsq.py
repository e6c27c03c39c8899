"""LSQ: an activation scale learned by gradient descent (Esser et al., *Learned Step Size
Quantization*, ICLR 2020).

:class:`LearnedScaleFakeQuantize` starts as a :class:`~refquant.qat.fake_quant.FakeQuantize`: the
first training batch sets the range and the recipe's $(S_0, Z)$. From then on the scale is a
:class:`refquant.nn.Parameter` $S$, $Z$ stays fixed, and the observer stops. Every forward
passes the range the parameters stand for,

$$ [lo, hi] = [\\,S\\,(p_{min} - Z),\\ S\\,(p_{max} - Z)\\,] \\tag{1} $$

($[p_{min}, p_{max}]$ the codes the recipe chooses parameters over: $[0, 127]$ under PyTorch's
``reduce_range``, else the format's range), back through the recipe
(:func:`refquant.ptq.recipes.activation_params`) and fake-quantizes with the result $(S', Z')$
($S' = S$ up to the recipe's float rounding). :func:`refquant.qat.conversion.convert` lowers with the same
range, so the integer model gets exactly the $(S', Z')$ the forward used.

Gradients, with $v = x / S'$, $\\hat y = S'(\\operatorname{clamp}(\\operatorname{round}(v) + Z',
q_{min}, q_{max}) - Z')$ and the LSQ gradient scale $g = 1/\\sqrt{n\\,Q_P}$ ($n$ elements per
sample, $Q_P = q_{max} - Z'$ positive levels):

$$ \\frac{\\partial \\hat y}{\\partial S} =
   \\begin{cases} \\operatorname{round}(v) - v & q_{min} \\le \\operatorname{round}(v) + Z' \\le q_{max} \\\\
   q_{min} - Z' \\ \\text{or}\\ q_{max} - Z' & \\text{clamped below / above} \\end{cases}, \\qquad
   \\frac{\\partial L}{\\partial S} = g \\sum \\frac{\\partial L}{\\partial \\hat y}\\,
   \\frac{\\partial \\hat y}{\\partial S}, \\tag{2} $$

($dS'/dS$ taken as 1) and $\\partial L/\\partial x$ is eq. (2) of :mod:`refquant.qat.fake_quant`.
A :class:`~refquant.qat.fake_quant.SharedFakeQuantize` that uses this scale adds nothing to its
gradient (it re-rounds values already on the grid, or an average of them).
"""

from __future__ import annotations

import numpy as np

from ..dtypes import quant_range
from ..errors import CalibrationError
from ..nn import Parameter
from ..qparams import QParams
from ..quantization import fake_quantize_backward, fake_quantize_with_mask
from .fake_quant import FakeQuantize

__all__ = ["LearnedScaleFakeQuantize"]

_F32 = np.float32
_TINY = np.finfo(np.float32).tiny


class LearnedScaleFakeQuantize(FakeQuantize):
    """A :class:`~refquant.qat.fake_quant.FakeQuantize` whose scale is learned (eq. (1)-(2)).

    Attributes:
        scale: The :class:`refquant.nn.Parameter` $S$, shape ``(1,)`` (1.0 until the first batch).
        zero_point: $Z$ set by the first batch (``None`` before).
    """

    def __init__(self, tensor: str, **kwargs):
        super().__init__(tensor, **kwargs)
        self.scale = Parameter(np.ones(1, _F32))  # exists before fit() builds its optimizer
        self.zero_point = None
        self._params_key = None

    def range(self) -> tuple[np.float32, np.float32]:
        """Eq. (1) for the current $S$.

        Raises:
            CalibrationError: No training-mode batch has reached this tensor yet.
        """
        if self.zero_point is None:
            raise CalibrationError(f"tensor {self.tensor!r}: its LearnedScaleFakeQuantize has seen no data; run at "
                                   f"least one training step (refquant.nn.fit) or refquant.qat.calibrate first")
        pmin, pmax = quant_range(self.recipe.activation_dtype, reduce_range=self.recipe.activation_reduce_range)
        s = max(abs(float(self.scale.value[0])), float(_TINY))
        return _F32(s * (pmin - self.zero_point)), _F32(s * (pmax - self.zero_point))

    def current_qparams(self) -> QParams:
        key = float(self.scale.value[0])
        if self.qparams is None or key != self._params_key:
            self.qparams, self._params_key = self.params_for(*self.range()), key
        return self.qparams

    def forward(self, x):
        if self.training and self.zero_point is None:  # the first batch: the observer's (S0, Z)
            self.observer.update(x)
            qp = self.params_for(*self.observer.range())
            self.scale.value[...] = qp.scale
            self.zero_point = int(qp.zero_point)
            self.qparams = None
        qp = self.current_qparams()
        y, mask = fake_quantize_with_mask(x, qp, self.profile)
        self._cache = (x, y, mask, qp)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad_out):
        x, y, mask, qp = self._cached()
        g = np.asarray(grad_out)
        s, z = _F32(qp.scale), int(qp.zero_point)
        codes = np.rint(y / s)  # clamp(round(v) + Z') - Z'
        dy_ds = codes - np.where(mask, x / s, 0)  # eq. (2)
        grad_scale = 1.0 / np.sqrt((x.size // x.shape[0]) * max(int(qp.qmax) - z, 1))
        self.scale.accumulate(np.array([grad_scale * float(np.sum(g * dy_ds, dtype=np.float64))], _F32))
        return fake_quantize_backward(g, mask)
