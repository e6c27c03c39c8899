"""Optimizers (`SGD`, `Adam`, `AdamW`) and learning-rate schedules (`StepLR`, `CosineLR`).

Each follows PyTorch's update rule (``torch.optim``) so results can be compared step by
step. Parameters are updated in place; those with ``requires_grad=False`` are skipped.
Usage per batch: ``model.zero_grad()``, forward, ``model.backward(loss.backward())``,
``opt.step()``; per epoch: ``schedule.step()``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import describe
from ..errors import QuantizationTypeError, QuantizationValueError
from ._checks import as_flag, as_int, as_positive_float, as_probability
from .module import Module, Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineLR", "clip_grad_norm"]


def _as_params(params) -> list[Parameter]:
    if isinstance(params, Module):
        return params.parameters()
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, (str, bytes, dict, np.ndarray)):
        raise QuantizationTypeError(f"params must be a Module or an iterable of Parameters, got {describe(params)}")
    try:
        out = list(params)
    except TypeError:
        raise QuantizationTypeError(
            f"params must be a Module or an iterable of Parameters, got {describe(params)}") from None
    for p in out:
        if not isinstance(p, Parameter):
            raise QuantizationTypeError(f"params must be a Module or Parameters, got an element {type(p).__name__}")
    return out


class Optimizer:
    """Base class. ``lr`` may be changed between steps (schedules do so)."""

    def __init__(self, params, lr: float):
        self.params = _as_params(params)
        self.lr = as_positive_float(lr, "lr")
        self.state: dict[int, dict] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.requires_grad:
                self._update(p, self.state.setdefault(i, {}))

    def _update(self, p: Parameter, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD``).

    With $g = \\nabla + \\lambda\\theta$ (weight decay $\\lambda$), momentum $\\mu$ and dampening $\\tau$:

    $$ b_t = \\mu b_{t-1} + (1-\\tau) g \\ (b_1 = g), \\qquad
       \\theta \\leftarrow \\theta - \\eta\\,(g + \\mu b_t \\ \\text{if Nesterov else}\\ b_t). $$
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        self.momentum = as_probability(momentum, "momentum")
        self.dampening = as_probability(dampening, "dampening", upper_open=False)
        self.weight_decay = as_positive_float(weight_decay, "weight_decay", allow_zero=True)
        self.nesterov = as_flag(nesterov, "nesterov")
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise QuantizationValueError("nesterov=True needs momentum > 0 and dampening = 0, "
                                        f"got momentum={self.momentum}, dampening={self.dampening}")

    def _update(self, p, state):
        g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad
        if self.momentum:
            if "buf" not in state:
                state["buf"] = g.copy()
            else:
                state["buf"] *= self.momentum
                state["buf"] += (1 - self.dampening) * g
            g = g + self.momentum * state["buf"] if self.nesterov else state["buf"]
        p.value -= self.lr * g


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``), weight decay added to the gradient (L2).

    $$ m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g, \\quad v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g^2, $$
    $$ \\theta \\leftarrow \\theta - \\frac{\\eta}{1-\\beta_1^t}\\,
       \\frac{m_t}{\\sqrt{v_t}/\\sqrt{1-\\beta_2^t} + \\epsilon}. $$
    """

    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise QuantizationTypeError(
                f"betas must be a pair (beta1, beta2) of floats in [0, 1), got {describe(betas)}")
        self.betas = (as_probability(betas[0], "betas[0]"), as_probability(betas[1], "betas[1]"))
        self.eps = as_positive_float(eps, "eps")
        self.weight_decay = as_positive_float(weight_decay, "weight_decay", allow_zero=True)

    def _update(self, p, state):
        b1, b2 = self.betas
        if not state:
            state.update(t=0, m=np.zeros_like(p.value), v=np.zeros_like(p.value))
        state["t"] += 1
        t = state["t"]
        g = p.grad
        if self.weight_decay:
            if self._decoupled:
                p.value *= 1 - self.lr * self.weight_decay  # AdamW: decay the weight itself
            else:
                g = g + self.weight_decay * p.value
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        step_size = self.lr / (1 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + self.eps
        p.value -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``, Loshchilov & Hutter):
    $\\theta \\leftarrow \\theta(1 - \\eta\\lambda)$ before the Adam step. Default $\\lambda = 0.01$."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm before."""
    ps = _as_params(params)
    max_norm = as_positive_float(max_norm, "max_norm")
    total = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in ps))
    if total > max_norm:
        for p in ps:
            p.grad *= max_norm / (total + 1e-6)
    return total


class _Schedule:
    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise QuantizationTypeError(f"optimizer must be a refquant.nn Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self) -> float:
        """Advance one epoch and set the optimizer's ``lr``; return it."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)
        return self.optimizer.lr

    def lr_at(self, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class StepLR(_Schedule):
    """$\\eta_e = \\eta_0\\, \\gamma^{\\lfloor e / s \\rfloor}$ (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = as_int(step_size, "step_size")
        self.gamma = as_positive_float(gamma, "gamma")

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineLR(_Schedule):
    """$\\eta_e = \\eta_{min} + (\\eta_0 - \\eta_{min})\\,\\frac{1 + \\cos(\\pi e / T)}{2}$ for $e \\le T$,
    then $\\eta_{min}$ (closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``)."""

    def __init__(self, optimizer: Optimizer, t_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.t_max = as_int(t_max, "t_max")
        self.eta_min = as_positive_float(eta_min, "eta_min", allow_zero=True)

    def lr_at(self, epoch: int) -> float:
        e = min(epoch, self.t_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * e / self.t_max)) / 2
