"""AdaRound: learn, per weight, whether to round down or up.

Nagel, Amjad, van Baalen, Louizos, Blankevoort, "Up or Down? Adaptive Rounding for Post-Training
Quantization" (ICML 2020, arXiv:2004.10568), eqs. (21)–(25). On the layer's grid
(:mod:`~refquant.ptq.advanced.grid`; zero points kept) each weight becomes

$$ \\tilde w = s\\,\\big(\\mathrm{clamp}(\\lfloor w / s \\rfloor + z + h(v),\\ q_{min},\\ q_{max}) - z\\big), \\qquad
   h(v) = \\mathrm{clamp}\\big(\\sigma(v)(\\zeta - \\gamma) + \\gamma,\\ 0,\\ 1\\big),
   \\ \\zeta = 1.1,\\ \\gamma = -0.1, \\tag{1} $$

with one continuous $v$ per weight, learned by Adam on

$$ L(v) = R(\\tilde W) + \\lambda \\sum_{ok} \\big(1 - |2 h(v_{ok}) - 1|^{\\beta}\\big), \\tag{2} $$

where $R$ is the layer's output error on the calibration data, eq. (2) of
:mod:`~refquant.ptq.advanced.moments`: $\\tilde W$ applied to the *quantized* model's input
$\\hat x$, compared with $W$ applied to the *float* model's $x$ (the paper's "asymmetric"
reconstruction, eq. (25); the output is compared before the activation function, as in its eq. (20)).
$\\beta$ stays at 20 for the first ``warmup`` share of the iterations, where $\\lambda$ is 0 (as in
BRECQ and AIMET), then decays linearly to 2; finally $q = \\lfloor w/s \\rfloor + z + [v \\ge 0]$
($h \\ge 0.5$), clamped. $v$ starts where $h(v)$ is the fractional part of $w/s$, i.e. at $\\tilde W = W$.

Gradients (checked against finite differences in the tests), with $c = \\lfloor w/s \\rfloor + z + h$:

$$ \\frac{\\partial R}{\\partial \\tilde W}
   = 2\\,(\\tilde W \\Sigma_{\\hat x \\hat x} - W \\Sigma_{\\hat x x}^\\top), \\quad
   \\frac{\\partial \\tilde w}{\\partial h} = s\\,[q_{min} \\le c \\le q_{max}], \\quad
   \\frac{\\partial}{\\partial h}\\big(1 - |2h-1|^\\beta\\big) = -2\\beta\\,|2h-1|^{\\beta-1}\\mathrm{sign}(2h-1), $$
$$ \\frac{\\partial h}{\\partial v} = (\\zeta - \\gamma)\\,\\sigma(v)(1 - \\sigma(v))
   \\,[0 < \\sigma(v)(\\zeta-\\gamma)+\\gamma < 1]. \\tag{3} $$

Because $R$ is a trace over the moments, every iteration uses all the calibration data
(full-batch Adam; the paper samples mini-batches) at the cost of one ``(O, K) @ (K, K)`` product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _validate as V
from ...errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._layerwise import Session, replace_params
from .grid import WeightGrid, check_qmodel
from .moments import LayerMoments

__all__ = ["ZETA", "GAMMA", "adaround_objective", "adaround_codes", "adaround"]

ZETA, GAMMA = 1.1, -0.1
_F32, _F64 = np.float32, np.float64


@dataclass
class _Problem:
    """Eq. (2)'s constants for one ``(O, K)`` weight matrix, or for a stack ``(G, O_g, K)`` of independent
    ones (the groups of a convolution, learned together: Adam is elementwise, so this is exactly G
    separate runs). ``xx`` is ``(K, K)`` or ``(G, K, K)``; ``target`` $= W \\Sigma_{\\hat x x}^\\top$,
    ``const`` $= \\mathrm{tr}(W \\Sigma_{x x} W^\\top)$; ``base`` $= \\lfloor w/s \\rfloor + z$ (int64) and
    ``frac`` the fractional part of $w/s$."""

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    xx: np.ndarray
    target: np.ndarray
    const: float
    base: np.ndarray
    frac: np.ndarray


def _problem(w, scale, zero_point, qmin, qmax, xx, xf, ff) -> _Problem:
    ratio = (w.astype(_F32) / scale).astype(_F64)  # float32 division, as RTN
    floor = np.floor(ratio)
    return _Problem(scale, zero_point, qmin, qmax, xx, w @ np.swapaxes(xf, -1, -2), float(np.sum((w @ ff) * w)),
                    floor.astype(np.int64) + zero_point, ratio - floor)


def _h(v: np.ndarray):
    """Eq. (1)'s rectified sigmoid $h(v)$ and $\\partial h / \\partial v$."""
    sig = 1.0 / (1.0 + np.exp(-v))
    raw = sig * (ZETA - GAMMA) + GAMMA
    dh = np.where((raw > 0) & (raw < 1), (ZETA - GAMMA) * sig * (1 - sig), 0.0)
    return np.clip(raw, 0.0, 1.0), dh


def _check_moments(moments, k: int) -> LayerMoments:
    if not isinstance(moments, LayerMoments) or moments.xx is None:
        raise QuantizationTypeError(f"moments must be LayerMoments with second moments "
                                    f"(LayerMoments.from_columns), got {V.describe(moments)}")
    if moments.xx.shape != (k, k):
        raise ShapeError(f"moments must be of K = {k} inputs (w's columns), got {moments.xx.shape[0]}")
    return moments


def _layer_problem(w, grid, moments) -> _Problem:
    if not isinstance(grid, WeightGrid):
        raise QuantizationTypeError(f"grid must be a WeightGrid, got {V.describe(grid)}")
    w = grid.check_weight(w)
    m = _check_moments(moments, w.shape[1])
    return _problem(w, grid.scale, grid.zero_point, grid.qmin, grid.qmax, m.xx, m.xf, m.ff)


def adaround_objective(v, w, grid: WeightGrid, moments: LayerMoments, *, beta: float = 2.0,
                       reg_weight: float = 0.01) -> tuple[float, np.ndarray]:
    """Eq. (2) and its gradient eq. (3) at ``v``.

    Args:
        v: ``(O, K)`` float, the rounding variables.
        w: ``(O, K)`` float weights (the float model's), finite.
        grid: Their :class:`~refquant.ptq.advanced.grid.WeightGrid`.
        moments: The layer's :class:`~refquant.ptq.advanced.moments.LayerMoments` (second order).
        beta: $\\beta \\ge 1$. reg_weight: $\\lambda \\ge 0$.

    Returns:
        ``(loss, grad)``: a Python float and ``(O, K)`` float64 $\\partial L / \\partial v$.
    """
    p = _layer_problem(w, grid, moments)
    v = grid.check_weight(v, "v")
    return _loss_and_grad(v, p, _beta(beta, "beta"), _nonnegative(reg_weight, "reg_weight"))


def _loss_and_grad(v, p: _Problem, beta, reg_weight):
    """Eqs. (2)-(3) (any leading group axes)."""
    h, dh = _h(v)
    c = p.base + h
    inside = (c >= p.qmin) & (c <= p.qmax)
    w_tilde = p.scale * (np.clip(c, p.qmin, p.qmax) - p.zero_point)  # eq. (1)
    wx = w_tilde @ p.xx
    recon = float(np.sum(wx * w_tilde) - 2 * np.sum(w_tilde * p.target)) + p.const  # moments eq. (2)
    d_recon = 2 * (wx - p.target)  # dR / dW~
    t = 2 * h - 1
    reg = reg_weight * float(np.sum(1 - np.abs(t) ** beta))
    d_reg = -2 * reg_weight * beta * np.abs(t) ** (beta - 1) * np.sign(t)
    grad = (d_recon * p.scale * inside + d_reg) * dh
    return recon + reg, grad


def _beta(v, name):
    b = V.as_real_scalar(v, name)
    if b < 1:
        raise QuantizationValueError(f"{name} must be >= 1, got {b!r}")
    return b


def _nonnegative(v, name):
    f = V.as_real_scalar(v, name)
    if f < 0:
        raise QuantizationValueError(f"{name} must be >= 0, got {f!r}")
    return f


def _options(iters, lr, reg_weight, beta, warmup):
    iters = V.as_positive_int(iters, "iters", maximum=10 ** 6)
    lr = V.as_real_scalar(lr, "lr")
    if lr <= 0:
        raise QuantizationValueError(f"lr must be > 0, got {lr!r}")
    reg_weight = _nonnegative(reg_weight, "reg_weight")
    b = V.as_tuple(beta, "beta", "(start, end) exponents", item_len=None)
    if len(b) != 2:
        raise QuantizationValueError(f"beta must be a (start, end) pair, got {V.describe(beta)}")
    start, end = _beta(b[0], "beta"), _beta(b[1], "beta")
    if end > start:
        raise QuantizationValueError(f"beta must decay: (start, end) with start >= end, got {b}")
    warmup = V.as_real_scalar(warmup, "warmup")
    if not 0 <= warmup < 1:
        raise QuantizationValueError(f"warmup must be in [0, 1), got {warmup!r}")
    return iters, lr, reg_weight, (start, end), warmup


def adaround_codes(w, moments: LayerMoments, grid: WeightGrid, *, iters: int = 1000, lr: float = 0.01,
                   reg_weight: float = 0.01, beta=(20.0, 2.0), warmup: float = 0.2) -> np.ndarray:
    """AdaRound codes of one weight matrix on ``grid`` (module docstring).

    Args:
        w: ``(O, K)`` float weights, finite.
        moments: The layer's :class:`~refquant.ptq.advanced.moments.LayerMoments` (second order).
        grid: The :class:`~refquant.ptq.advanced.grid.WeightGrid`.
        iters: Adam steps (1 to 10^6). lr: Adam's step size, > 0 (β₁ = 0.9, β₂ = 0.999, ε = 1e-8).
        reg_weight: $\\lambda \\ge 0$ of eq. (2). beta: ``(start, end)``, start >= end >= 1.
        warmup: Share of ``iters`` in [0, 1) without the regularizer.

    Returns:
        ``(O, K)`` int64 codes in ``[grid.qmin, grid.qmax]``, each $\\lfloor w/s \\rfloor + z$ or one more.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: A bad argument, named.
    """
    p = _layer_problem(w, grid, moments)
    return _learn(p, *_options(iters, lr, reg_weight, beta, warmup))


def _learn(p: _Problem, iters, lr, reg_weight, beta, warmup) -> np.ndarray:
    """Adam on eq. (2) from $h(v) = $ ``frac``, then hard rounding: int64 codes of ``p.base``'s shape."""
    (b0, b1), warm = beta, int(warmup * iters)
    v = -np.log((ZETA - GAMMA) / (p.frac - GAMMA) - 1)  # h(v) = frac: start at W~ = W
    m1, m2 = np.zeros_like(v), np.zeros_like(v)
    for t in range(iters):
        if t < warm:
            b, lam = b0, 0.0
        else:
            rel = (t - warm) / max(iters - warm, 1)
            b, lam = b1 + (b0 - b1) * max(0.0, 1.0 - rel), reg_weight
        _, g = _loss_and_grad(v, p, b, lam)
        m1 = 0.9 * m1 + 0.1 * g
        m2 = 0.999 * m2 + 0.001 * g * g
        v -= lr * (m1 / (1 - 0.9 ** (t + 1))) / (np.sqrt(m2 / (1 - 0.999 ** (t + 1))) + 1e-8)
    return np.clip(p.base + (v >= 0), p.qmin, p.qmax)


def adaround(qmodel, model, calibration_data, *, iters: int = 1000, lr: float = 0.01, reg_weight: float = 0.01,
             beta=(20.0, 2.0), warmup: float = 0.2):
    """AdaRound codes for every ``linear`` and ``conv2d`` node of an integer model, on its own grid.

    Layers are visited in graph order; each one learns from the calibration data run through the
    integer model with the earlier layers already rounded ($\\hat x$) and through the float model
    ($x$), per group of a grouped convolution. Scales, zero points, biases and every other node are
    kept.

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel` from a refquant flow (RTN codes).
        model: The float :class:`refquant.nn.Module` it was made from (for a QAT model,
            :func:`refquant.qat.float_model` of the trained model).
        calibration_data: ``(N, ...)`` float array, N >= 1, finite.
        iters, lr, reg_weight, beta, warmup: As in :func:`adaround_codes`.

    Returns:
        A new :class:`~refquant.qmodel.QuantizedModel` (``metadata["weight_rounding"] = "adaround"``).

    Raises:
        QuantizationTypeError: ``qmodel`` or ``model`` of the wrong type.
        QuantizationValueError: Empty or non-finite ``calibration_data``; ``model`` is not the one
            ``qmodel`` was made from; a non-finite weight; a bad option.
        ShapeError: ``calibration_data`` not what the model takes.
    """
    check_qmodel(qmodel)
    options = _options(iters, lr, reg_weight, beta, warmup)
    session = Session(qmodel, model, calibration_data)
    qm = qmodel
    for layer in session.layers:
        moments = session.moments(qm, layer)
        w, s, z = (a.reshape(layer.groups, -1, a.shape[1]) for a in (layer.weight, layer.grid.scale,
                                                                     layer.grid.zero_point))  # (G, O_g, K)
        xx, xf, ff = (np.stack([getattr(m, k) for m in moments]) for k in ("xx", "xf", "ff"))  # (G, K, K)
        q = _learn(_problem(w, s, z, layer.grid.qmin, layer.grid.qmax, xx, xf, ff), *options)
        q = q.reshape(layer.weight.shape)
        old = qm.node(layer.name).params["weight"]
        qm = replace_params(qm, {layer.name: {"weight": q.reshape(old.shape).astype(old.dtype)}})
    return replace_params(qm, {}, {"weight_rounding": "adaround"})
