"""`FakeQuantize`: an activation tensor quantized and dequantized in float, trained through.

For a batch $x$ of the tensor, a :class:`FakeQuantize` in training mode

1. updates its range $[lo, hi]$ with PyTorch's ``MovingAverageMinMaxObserver`` rule (the first
   batch sets it, then $lo \\leftarrow lo + c\\,(\\min x - lo)$ and the same for $hi$, $c = 0.01$,
   every operation rounded to float32);
2. chooses $(S, Z)$ for $[lo, hi]$ with the recipe of the profile's tool
   (:func:`refquant.ptq.recipes.activation_params`: the parameters
   :func:`refquant.ptq.lower.lower` gives this tensor when it is called with the same range);
3. returns, with the profile's ``fake_quantize`` spec (rounding, division, zero-point order),

$$ y = S\\,\\big(\\operatorname{clamp}(q_u,\\, q_{min},\\, q_{max}) - Z\\big), \\qquad
   q_u = \\operatorname{round}(x / S) + Z, \\tag{1} $$

with $[q_{min}, q_{max}]$ the full range of the integer model's tensor (uint8 even where the
recipe chooses $S$ for the reduced range $[0, 127]$, as PyTorch's ``FakeQuantize`` does).

Backward is the straight-through estimator with the clamp mask:

$$ \\frac{\\partial L}{\\partial x} = \\frac{\\partial L}{\\partial y} \\cdot
   [\\, q_{min} \\le q_u \\le q_{max} \\,]. \\tag{2} $$

In evaluation mode step 1 is skipped: the range, and so $(S, Z)$, are those of the last
training batch. A :class:`SharedFakeQuantize` applies another tensor's $(S, Z)$ (for ops whose
integer output keeps its input's parameters, such as an average pool) and observes nothing.
See [Learn: quantization-aware training](../learn/qat.md).
"""

from __future__ import annotations

import numpy as np

from ..calibration.moving_average import MovingAverageMinMaxObserver
from ..errors import CalibrationError
from ..nn import Module
from ..profiles import Profile
from ..ptq.recipes import Recipe, activation_params
from ..qparams import QParams, make_qparams
from ..quantization import fake_quantize_backward, fake_quantize_with_mask

__all__ = ["FakeQuantize", "SharedFakeQuantize", "AVERAGING_CONSTANT"]

#: PyTorch's default ``averaging_constant`` of ``MovingAverageMinMaxObserver``.
AVERAGING_CONSTANT = 0.01


class FakeQuantize(Module):
    """Eq. (1) forward and eq. (2) backward for one activation tensor of the integer model.

    Args:
        tensor: Name of the integer model's tensor this module stands for (``"input"``, a
            layer path); named in errors.
        profile: The resolved :class:`~refquant.profiles.Profile` (its ``fake_quantize`` spec).
        recipe: The :class:`~refquant.ptq.recipes.Recipe` that turns a range into $(S, Z)$.
        averaging_constant: $c$ of the moving average.

    Attributes:
        observer: The :class:`~refquant.calibration.moving_average.MovingAverageMinMaxObserver`.
        qparams: The :class:`~refquant.qparams.QParams` of the last forward (``None`` before one).
    """

    def __init__(self, tensor: str, *, profile: Profile, recipe: Recipe, averaging_constant=AVERAGING_CONSTANT):
        super().__init__()
        self.tensor = str(tensor)
        self.profile, self.recipe = profile, recipe
        self.observer = MovingAverageMinMaxObserver(averaging_constant=averaging_constant)
        self.qparams: QParams | None = None
        self._cache = None

    def range(self) -> tuple[np.float32, np.float32]:
        """``(lo, hi)``: the range whose parameters the last forward used (float32 scalars).

        Raises:
            CalibrationError: No training-mode batch has reached this tensor yet.
        """
        try:
            lo, hi = self.observer.range()
        except CalibrationError:
            raise CalibrationError(f"tensor {self.tensor!r}: its FakeQuantize has seen no data; run at least one "
                                   f"training step (refquant.nn.fit) or refquant.qat.calibrate first") from None
        return np.float32(lo), np.float32(hi)

    def params_for(self, lo, hi) -> QParams:
        """The recipe's $(S, Z)$ for ``[lo, hi]`` over the integer tensor's full code range."""
        s, z = activation_params(self.recipe, lo, hi)
        return make_qparams(np.float32(s), z, self.recipe.activation_dtype)

    def current_qparams(self) -> QParams:
        """$(S, Z)$ for the current range (computed once per range)."""
        if self.qparams is None:
            self.qparams = self.params_for(*self.range())
        return self.qparams

    def observe(self, x: np.ndarray) -> None:
        """Step 1 of the module docstring: update the range, forget the cached $(S, Z)$."""
        self.observer.update(x)
        self.qparams = None

    def forward(self, x):
        if self.training:
            self.observe(x)
        y, mask = fake_quantize_with_mask(x, self.current_qparams(), self.profile)  # eq. (1)
        self._cache = mask
        return y.astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return fake_quantize_backward(grad_out, self._cached())  # eq. (2)

    def extra_repr(self) -> str:
        qp = self.qparams
        return f"{self.tensor!r}" + ("" if qp is None else f", scale={float(qp.scale):.6g}, "
                                                          f"zero_point={int(qp.zero_point)}")


class SharedFakeQuantize(Module):
    """Eq. (1)-(2) with the current $(S, Z)$ of another :class:`FakeQuantize` (``source``).

    For an op whose integer output keeps its input's parameters (average pool, a standalone
    clamp such as PyTorch's ReLU6): the integer op's output lies on its input's grid, so the
    float op's output is fake-quantized with the same $(S, Z)$. ``source`` is referenced, not
    registered as a child (a learned scale would otherwise be counted twice); this module never
    observes.
    """

    def __init__(self, tensor: str, source: FakeQuantize):
        super().__init__()
        self.tensor = str(tensor)
        object.__setattr__(self, "source", source)
        self._cache = None

    def forward(self, x):
        y, mask = fake_quantize_with_mask(x, self.source.current_qparams(), self.source.profile)
        self._cache = mask
        return y.astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return fake_quantize_backward(grad_out, self._cached())

    def extra_repr(self) -> str:
        return f"{self.tensor!r}, parameters of {self.source.tensor!r}"
