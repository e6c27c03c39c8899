"""Bias correction: shift each layer's bias by the mean error its rounded weights add to its output.

Nagel, van Baalen, Blankevoort, Welling, "Data-Free Quantization Through Weight Equalization and
Bias Correction" (ICCV 2019, arXiv:1906.04721), section 4.2. Rounding the weights,
$\\hat W = W + \\epsilon$, shifts the mean of the layer's output by

$$ \\mathbb{E}[\\hat W \\hat x] - \\mathbb{E}[W x] \\ \\ \\text{(per output channel)}, \\tag{1} $$

which the next layers see as a bias error. Subtracting it from the bias, $b' = b - (1)$, makes the
layer's output right on average. Two ways to know (1):

* **empirical**: averaged over calibration data, with $\\hat x$ the input of the integer model (the
  earlier layers already rounded and corrected, visited in graph order) and $x$ the float model's:
  $\\hat W \\mu_{\\hat x} - W \\mu_x$ (:class:`~refquant.ptq.advanced.moments.LayerMoments`; a
  convolution's mean runs over every output position, zero padding included);
* **analytical** (data-free): $\\epsilon\\, \\mathbb{E}[x]$, where $\\mathbb{E}[x]$ comes from the
  BatchNorm that produced the layer's input in the *unfolded* model: its output is taken as
  $\\mathcal{N}(\\beta_c, \\gamma_c^2)$ per channel, through the activation fused after it (ReLU or
  ReLU6: a clipped normal, :func:`clipped_normal_mean`) and any average pools. The paper's
  assumption; zero padding is ignored (every kernel tap sees $\\mathbb{E}[x_c]$). A layer whose input
  is not a BatchNorm's output that way (the first layer, a layer after a residual add, a max pool or
  a flatten) is left as it is; ``metadata["bias_corrected_layers"]`` lists the corrected ones.

The new float bias is lowered as the node takes biases: float32 (weight-only models, PyTorch's
layers) or int32/int64 by the profile's tool rule, $\\mathrm{round}(b' / (S_x S_w))$
(:func:`refquant.ptq.recipes.quantize_bias`). Weights, scales and every other node are kept.
"""

from __future__ import annotations

import math

import numpy as np

from ... import _validate as V
from ... import nn
from ...errors import QuantizationValueError, ShapeError
from ._layerwise import Layer, Session, lowered_bias, replace_params
from .grid import check_qmodel

__all__ = ["clipped_normal_mean", "bias_correction"]

_F64 = np.float64
_LIMITS = {None: (-math.inf, math.inf), "RELU": (0.0, math.inf), "RELU6": (0.0, 6.0)}
_MEAN_KEEPING = ("global_average_pool", "average_pool2d")


def clipped_normal_mean(mean, std, lo: float = -math.inf, hi: float = math.inf) -> np.ndarray:
    """$\\mathbb{E}[\\mathrm{clamp}(x, lo, hi)]$ for $x \\sim \\mathcal{N}(\\mu, \\sigma^2)$, elementwise:

    $$ \\mu\\,(\\Phi(b) - \\Phi(a)) + \\sigma\\,(\\varphi(a) - \\varphi(b)) + lo\\,\\Phi(a) + hi\\,(1 - \\Phi(b)),
       \\quad a = \\tfrac{lo - \\mu}{\\sigma},\\ b = \\tfrac{hi - \\mu}{\\sigma} $$

    (an infinite bound's term is 0; $\\sigma = 0$ gives $\\mathrm{clamp}(\\mu, lo, hi)$). With $lo = 0$,
    $hi = \\infty$: DFQ's $\\mathbb{E}[\\mathrm{ReLU}(x)] = \\sigma\\varphi(\\mu/\\sigma) + \\mu\\,\\Phi(\\mu/\\sigma)$.

    Args:
        mean, std: Broadcastable float arrays, finite, ``std >= 0``.
        lo, hi: Bounds, ``lo < hi``, each finite or infinite (not NaN).

    Returns:
        float64 array of the broadcast shape.
    """
    mu = V.as_float_array(mean, "mean", allow_int=True).astype(_F64)
    sd = V.as_float_array(std, "std", allow_int=True).astype(_F64)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd))):
        raise QuantizationValueError("mean and std must be finite, got NaN or Inf")
    if np.any(sd < 0):
        raise QuantizationValueError(f"std must be >= 0, got {float(sd.min())!r}")
    lo, hi = V.as_real_scalar(lo, "lo", finite=False), V.as_real_scalar(hi, "hi", finite=False)
    if not lo < hi:  # NaN fails too
        raise QuantizationValueError(f"lo must be < hi, got lo={lo!r}, hi={hi!r}")
    try:
        mu, sd = np.broadcast_arrays(mu, sd)
    except ValueError:
        raise ShapeError(f"mean and std must broadcast together, got shapes {mu.shape} and {sd.shape}") from None
    out = np.array(np.clip(mu, lo, hi), dtype=_F64)  # an array even for 0-d inputs
    live = sd > 0
    m, s = mu[live], sd[live]
    a, b = (lo - m) / s, (hi - m) / s  # -inf / +inf for an infinite bound
    cdf_a, sf_b = 0.5 * _erfc(-a / math.sqrt(2)), 0.5 * _erfc(b / math.sqrt(2))  # Phi(a), 1 - Phi(b)
    e = m * (1 - sf_b - cdf_a) + s * (_pdf(a) - _pdf(b))
    if lo > -math.inf:
        e = e + lo * cdf_a
    if hi < math.inf:
        e = e + hi * sf_b
    out[live] = e
    return out


_erfc = np.vectorize(math.erfc, otypes=[_F64])  # exact in the tails, unlike 1 - erf


def _pdf(z: np.ndarray) -> np.ndarray:
    """The standard normal density, 0 at +-inf."""
    finite = np.isfinite(z)
    return np.where(finite, np.exp(-0.5 * np.where(finite, z, 0.0) ** 2), 0.0) / math.sqrt(2 * math.pi)


def _bn_after(model: nn.Module, name: str):
    """The BatchNorm that followed layer ``name`` in the unfolded ``model`` (the last of a run), or None."""
    parent_name, _, key = name.rpartition(".")
    parent = dict(model.named_modules()).get(parent_name)
    if not isinstance(parent, nn.Sequential):
        return None
    children = list(parent.named_children())
    keys = [k for k, _ in children]
    if key not in keys:
        return None
    bn = None
    for _, m in children[keys.index(key) + 1:]:
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        if not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            break
        bn = m
    return bn


def _analytical_input_mean(session: Session, layer: Layer):
    """$\\mathbb{E}[x]$ ``(C,)`` of ``layer``'s input from the BatchNorm that made it, or None."""
    by_output = {s.output: s for s in session.steps}
    s, act = by_output.get(layer.step.inputs[0]), None
    while s is not None and s.op in _MEAN_KEEPING + ("clamp",):
        if s.op == "clamp":
            if act is not None:
                return None
            act = s.activation
        elif act is not None:  # a pool before the activation: the mean does not pass through
            return None
        s = by_output.get(s.inputs[0])
    if s is None or s.op not in ("linear", "conv2d"):
        return None
    if s.activation is not None:
        if act is not None:
            return None
        act = s.activation
    bn = _bn_after(session.model, s.name)
    if bn is None:
        return None
    gamma = np.ones(bn.num_features) if bn.weight is None else np.asarray(bn.weight.value, _F64)
    beta = np.zeros(bn.num_features) if bn.bias is None else np.asarray(bn.bias.value, _F64)
    return clipped_normal_mean(beta, np.abs(gamma), *_LIMITS[act])


def _columns_mean(layer: Layer, mean_c: np.ndarray) -> np.ndarray:
    """Per-channel means ``(C,)`` as ``(G, K)``: each kernel tap of channel $c$ sees $\\mathbb{E}[x_c]$."""
    taps = layer.weight.shape[1] * layer.groups // mean_c.shape[0]
    return np.repeat(mean_c.reshape(layer.groups, -1), taps, axis=1)


def bias_correction(qmodel, model, calibration_data=None, *, mode: str = "empirical"):
    """Correct the bias of every ``linear`` and ``conv2d`` node with integer weights (module docstring).

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel` from a refquant flow (its codes as they
            are: RTN, GPTQ or AdaRound).
        model: The float :class:`refquant.nn.Module` it was made from, *unfolded* (its BatchNorms
            are the analytical mode's statistics).
        calibration_data: ``(N, ...)`` float array (``mode="empirical"``), or ``None``
            (``mode="analytical"``: no data).
        mode: ``"empirical"`` or ``"analytical"``.

    Returns:
        A new :class:`~refquant.qmodel.QuantizedModel`; ``metadata["bias_correction"]`` is ``mode``
        and ``metadata["bias_corrected_layers"]`` the corrected nodes.

    Raises:
        QuantizationTypeError: ``qmodel`` or ``model`` of the wrong type.
        QuantizationValueError: ``mode`` unknown; data missing (empirical) or given (analytical);
            empty or non-finite data; ``model`` is not the one ``qmodel`` was made from.
        ShapeError: ``calibration_data`` not what the model takes.
    """
    check_qmodel(qmodel)
    mode = V.as_choice(mode, "mode", ("empirical", "analytical"))
    if mode == "empirical" and calibration_data is None:
        raise QuantizationValueError("calibration_data must be an (N, ...) float array for mode='empirical', "
                                     "got None")
    if mode == "analytical" and calibration_data is not None:
        raise QuantizationValueError(f"calibration_data must be None for mode='analytical' (data-free), "
                                     f"got {V.describe(calibration_data)}")
    session = Session(qmodel, model, calibration_data, needs_data=mode == "empirical")
    qm, corrected = qmodel, []
    for layer in session.layers:
        node = qm.node(layer.name)
        w_hat = layer.grid.dequantize(node.params["weight"].reshape(layer.weight.shape))  # (O, K)
        shift = np.zeros(layer.weight.shape[0])
        if mode == "empirical":
            for g, m in enumerate(session.moments(qm, layer, second_order=False)):
                rows = layer.rows(g)
                shift[rows] = w_hat[rows] @ m.mean_q - layer.weight[rows] @ m.mean_f  # eq. (1)
        else:
            mean_c = _analytical_input_mean(session, layer)
            if mean_c is None:
                continue
            mean = _columns_mean(layer, mean_c)  # (G, K)
            for g in range(layer.groups):
                rows = layer.rows(g)
                shift[rows] = (w_hat[rows] - layer.weight[rows]) @ mean[g]  # eps E[x]
        qm = replace_params(qm, {layer.name: {"bias": lowered_bias(qm, node, layer.bias - shift)}})
        corrected.append(layer.name)
    return replace_params(qm, {}, {"bias_correction": mode, "bias_corrected_layers": corrected})
