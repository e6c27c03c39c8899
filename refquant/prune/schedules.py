"""Gradual pruning schedules: TFMOT's ``PolynomialDecay`` and Zhu & Gupta's automated gradual pruning.

Zhu & Gupta, "To prune, or not to prune" (2017), eq. (1): starting at step $t_0$ and every
$\\Delta t$ steps for $n$ pruning steps, the sparsity rises from $s_i$ to $s_f$ as

$$ s_t = s_f + (s_i - s_f)\\left(1 - \\frac{t - t_0}{n\\,\\Delta t}\\right)^3,
   \\qquad t \\in \\{t_0,\\, t_0 + \\Delta t,\\, \\ldots,\\, t_0 + n\\Delta t\\}, \\tag{1} $$

fast at first (the network has many redundant weights) and slowly at the end.
``tfmot.sparsity.keras.PolynomialDecay`` is the same curve with any power $p$:

$$ s(t) = s_f + (s_i - s_f)\\,(1 - q)^p, \\qquad
   q = \\min\\!\\Big(1, \\max\\!\\Big(0, \\frac{t - t_b}{t_e - t_b}\\Big)\\Big), \\tag{2} $$

and it says *when* to prune: at the steps $t_b \\le t \\le t_e$ with $(t - t_b) \\bmod f = 0$.
AGP with $(t_0, n, \\Delta t)$ is ``PolynomialDecay(s_i, s_f, t0, t0 + n*dt, power=3, frequency=dt)``.

**Steps** (TFMOT 0.8, ``PruneLowMagnitude`` + ``UpdatePruningStep``): step $t$ is the $t$-th
optimizer step of training, counted from 1. Before the forward pass of step $t$, if
``should_prune(t)``, every pruned layer's mask is recomputed from its current weights at
``sparsity(t)``; the step then trains with that mask. So with ``begin_step = 0`` the first mask
update happens at step ``frequency``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError
from ._checks import as_sparsity

__all__ = ["PolynomialDecay", "agp_sparsity"]


def _as_step(step, name: str = "step") -> int:
    return V.as_int_scalar(step, name)


def _as_power(power) -> float:
    if isinstance(power, (bool, np.bool_)) or not isinstance(power, (numbers.Real, np.integer, np.floating)):
        raise QuantizationTypeError(f"power must be a real number > 0, got {V.describe(power)}")
    p = V.as_real_scalar(power, "power", finite=False)
    if not (np.isfinite(p) and p > 0):
        raise QuantizationValueError(f"power must be finite and > 0, got {p}")
    return p


class PolynomialDecay:
    """``tfmot.sparsity.keras.PolynomialDecay``, eq. (2), with TFMOT's float32 arithmetic.

    ``schedule(step)`` returns ``(should_prune, sparsity)`` like TFMOT's; the sparsity is a
    ``numpy.float32`` computed op by op as TFMOT does (``q`` in float32, ``pow`` in float32, then
    ``(s_i - s_f) * (1 - q)^p + s_f``), so it equals TFMOT's bit for bit (tested against TFMOT 0.8.1).
    One difference: when ``end_step == begin_step`` TFMOT divides 0 by 0 at that step and returns
    NaN; here ``q = 1`` there (the final sparsity).

    Args:
        initial_sparsity: $s_i$ in [0, 1).
        final_sparsity: $s_f$ in [0, 1).
        begin_step: $t_b$, integer >= 0.
        end_step: $t_e$, integer >= ``begin_step`` (TFMOT's ``-1`` is not accepted: the decay needs an end).
        power: $p$, real > 0 (3 is AGP).
        frequency: $f$, integer >= 1: steps between mask updates.

    Raises:
        QuantizationTypeError / QuantizationValueError: a sparsity outside [0, 1), a negative
            ``begin_step``, ``end_step < begin_step``, ``frequency <= 0``, ``power <= 0``.
    """

    def __init__(self, initial_sparsity, final_sparsity, begin_step: int, end_step: int, power=3,
                 frequency: int = 100):
        self.initial_sparsity = as_sparsity(initial_sparsity, "initial_sparsity")
        self.final_sparsity = as_sparsity(final_sparsity, "final_sparsity")
        self.begin_step = V.as_int_scalar(begin_step, "begin_step", lo=0)
        self.end_step = V.as_int_scalar(end_step, "end_step")
        if self.end_step < self.begin_step:
            raise QuantizationValueError(f"end_step must be >= begin_step = {self.begin_step}, got {self.end_step}")
        self.power = _as_power(power)
        self.frequency = V.as_positive_int(frequency, "frequency")

    def should_prune(self, step: int) -> bool:
        """$t_b \\le t \\le t_e$ and $(t - t_b) \\bmod f = 0$ (TFMOT's ``_should_prune_in_step``)."""
        t = _as_step(step)
        return self.begin_step <= t <= self.end_step and (t - self.begin_step) % self.frequency == 0

    def sparsity(self, step: int) -> np.float32:
        """Eq. (2) at ``step``, in float32 as TFMOT computes it."""
        t = _as_step(step)
        f32 = np.float32
        span = self.end_step - self.begin_step
        if span == 0:  # TFMOT: 0/0 = NaN at t == t_b (and -inf -> 0, +inf -> 1 elsewhere)
            q = f32(0.0) if t < self.begin_step else f32(1.0)
        else:
            q = f32(t - self.begin_step) / f32(span)  # tf.cast(step - begin, float32) / (end - begin)
            q = min(f32(1.0), max(f32(0.0), q))
        # tf.math.pow(1 - q, power) on a float32 scalar: C's powf, which glibc computes in double and
        # rounds once to float32. np.power on float32 can differ in the last bit; this does not.
        decay = f32(math.pow(float(f32(1.0) - q), float(f32(self.power))))
        return f32(f32(self.initial_sparsity - self.final_sparsity) * decay) + f32(self.final_sparsity)

    def __call__(self, step: int) -> tuple[bool, np.float32]:
        return self.should_prune(step), self.sparsity(step)

    def get_config(self) -> dict:
        return {"initial_sparsity": self.initial_sparsity, "final_sparsity": self.final_sparsity,
                "begin_step": self.begin_step, "end_step": self.end_step, "power": self.power,
                "frequency": self.frequency}

    def __repr__(self) -> str:
        return "PolynomialDecay(" + ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()) + ")"


def agp_sparsity(t, s_i, s_f, t0, n, dt) -> float:
    """Zhu & Gupta's automated gradual pruning, eq. (1), in float64.

    $t$ is clamped to $[t_0, t_0 + n\\Delta t]$ (before $t_0$: $s_i$; after the last step: $s_f$).

    Args:
        t: training step (integer).
        s_i: initial sparsity in [0, 1).
        s_f: final sparsity in [0, 1).
        t0: first pruning step, integer >= 0.
        n: number of pruning steps, integer >= 1.
        dt: $\\Delta t$, steps between pruning steps, integer >= 1.

    Returns:
        $s_t$ as a Python float.

    Example:
        >>> agp_sparsity(0, 0.0, 0.8, 0, 10, 100), agp_sparsity(1000, 0.0, 0.8, 0, 10, 100)
        (0.0, 0.8)
    """
    t = V.as_int_scalar(t, "t")
    s_i, s_f = as_sparsity(s_i, "s_i"), as_sparsity(s_f, "s_f")
    t0 = V.as_int_scalar(t0, "t0", lo=0)
    n, dt = V.as_positive_int(n, "n"), V.as_positive_int(dt, "dt")
    span = n * dt
    frac = min(max(t - t0, 0), span) / span
    return s_f + (s_i - s_f) * (1.0 - frac) ** 3
