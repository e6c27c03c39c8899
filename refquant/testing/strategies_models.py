"""Small models for fuzzing a whole runtime against refquant: a float ``refquant.nn`` model and its data,
or the integer model :func:`refquant.ptq.quantize_static` makes of it.

Architectures: an MLP (Flatten, Linear, activation, Linear) or a small CNN (Conv2d with drawn
stride, padding and groups, activation, optional pooling, Flatten, Linear); activations ReLU,
ReLU6 or none; weights and data from a drawn seed. Each model takes ``(N, C, H, W)`` float32
inputs with $C \\le 3$ and $H, W \\le 8$. Needs hypothesis (``pip install hypothesis``).

Added in 0.1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, UnsupportedError
from ..profiles import list_profiles
from ._hypothesis import reject, st

__all__ = ["SmallModel", "small_models"]


@dataclass(frozen=True)
class SmallModel:
    """A drawn model: ``model`` (a ``refquant.nn`` model, or a
    :class:`~refquant.qmodel.QuantizedModel` when quantized), ``x`` (``(N, C, H, W)`` float32:
    calibration data and inputs to run) and ``float_model`` (the float model it came from)."""

    model: object
    x: np.ndarray
    float_model: object

    def __post_init__(self):
        object.__setattr__(self, "x", V.as_float_array(self.x, "x").astype(np.float32, copy=False))


def _activation(nn, name):
    return {"relu": nn.ReLU, "relu6": nn.ReLU6}[name]() if name else None


@st.composite
def _float_model(draw):
    from .. import nn

    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(3, 8)), draw(st.integers(3, 8))
    shape = (c, h, w)  # one sample
    act = draw(st.sampled_from([None, "relu", "relu6"]))
    layers = []
    if draw(st.sampled_from(["mlp", "cnn"])) == "cnn":
        groups = draw(st.sampled_from([1, 1, c]))
        out = groups * draw(st.integers(1, 3))
        k, s, p = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        layers.append(nn.Conv2d(c, out, k, stride=s, padding=p, groups=groups, rng=rng))
        h, w, c = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, out
        if _activation(nn, act):
            layers.append(_activation(nn, act))
        if h >= 2 and w >= 2 and draw(st.booleans()):
            layers.append(draw(st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]))(2))
            h, w = h // 2, w // 2
    hidden, classes = draw(st.integers(2, 8)), draw(st.integers(2, 6))
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden, rng=rng)]
    if _activation(nn, act):
        layers.append(_activation(nn, act))
    layers.append(nn.Linear(hidden, classes, rng=rng))
    n = draw(st.integers(4, 16))
    x = rng.standard_normal((n, *shape)) * draw(st.sampled_from([0.5, 1.0, 3.0]))  # (N, C, H, W) float64
    return nn.Sequential(*layers), x.astype(np.float32)


def small_models(*, quantized: bool = False, profile=None) -> st.SearchStrategy:
    """:class:`SmallModel` records.

    Args:
        quantized: Return the integer model :func:`refquant.ptq.quantize_static` makes (per-channel
            weights, min/max calibration on ``x``) instead of the float model.
        profile: With ``quantized``: a profile name, or ``None`` to draw one of every profile.
            A drawn model that cannot be quantized or run under the profile (an activation that is
            zero on all of ``x`` has no valid scale; a PyTorch x86 convolution geometry this CPU
            runs irreproducibly) is rejected and another is drawn.
    """
    quantized = V.as_flag(quantized, "quantized", ints=False)
    names = tuple(list_profiles())
    profiles = st.sampled_from(names) if profile is None else st.just(V.as_choice(profile, "profile", names))

    @st.composite
    def draw(draw) -> SmallModel:
        model, x = draw(_float_model())
        if not quantized:
            return SmallModel(model, x, model)
        from ..ptq import quantize_static

        try:
            qm = quantize_static(model, x, profile=draw(profiles))
            qm.run(x[:1])
        except (UnsupportedError, QuantizationValueError):  # e.g. a ReLU that is zero on all of x: scale 0
            reject()
        return SmallModel(qm, x, model)

    return draw()
