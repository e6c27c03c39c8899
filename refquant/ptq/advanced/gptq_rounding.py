"""GPTQ: round one column at a time and push each column's error onto the columns not yet rounded.

Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers" (ICLR 2023, arXiv:2210.17323), Algorithm 1, as its reference code
(``gptq.py`` of IST-DASLab/gptq) runs it. For one output row $w$ of a layer whose inputs have the
second moment $H = 2\\,\\Sigma_{\\hat x \\hat x}$ (:mod:`~refquant.ptq.advanced.moments`; the scale of
$H$ does not change the result), the output error $\\delta w\\, H\\, \\delta w^\\top / 2$ is minimised
greedily: column $i$ is rounded to the grid, $q_i = \\mathrm{RTN}(w_i)$, and the remaining
columns $F$ absorb its error optimally (Optimal Brain Surgeon):

$$ \\delta_F = -\\frac{w_i - q_i}{[H_F^{-1}]_{ii}}\\,(H_F^{-1})_{i,F}. \\tag{1} $$

With $U$ the upper Cholesky factor of $H^{-1}$ ($H^{-1} = U^\\top U$), row $i$ of $U$ *is*
$(H_F^{-1})_{i,F} / \\sqrt{[H_F^{-1}]_{ii}}$ for $F = \\{i, i{+}1, \\ldots\\}$, so (1) becomes
$W_{:, i:} \\mathrel{-}= e\\, U_{i, i:}$ with $e = (w_i - q_i) / U_{ii}$ for all rows at once. Columns
go in blocks of ``block_size``: inside a block the updates are applied at once; to the columns after
it, once per block (``Err @ U[block, rest]``: the same sums, "lazy batch updates").

Options as in the reference: damping $H + \\lambda\\,\\mathrm{mean}(\\mathrm{diag}\\,H)\\, I$ ($\\lambda$ =
``damp``, 1 %); ``act_order`` visits columns by decreasing $H_{ii}$. A column whose input is always 0
($H_{ii} = 0$) gets $H_{ii} = 1$ and is rounded to nearest; the reference sets its weights to 0 instead
(either is exact on the calibration data; nearest also keeps the layer's other inputs).

Where refquant differs from the reference on purpose: the grid is the one the flow already chose
(:mod:`~refquant.ptq.advanced.grid`), per channel or per group, so the result is a drop-in
replacement of the RTN model; the reference recomputes each group's scale from the *updated*
weights as it reaches the group.
"""

from __future__ import annotations

import numpy as np

from ... import _validate as V
from ...errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._layerwise import Session, replace_params
from .grid import WeightGrid, check_qmodel

__all__ = ["gptq_codes", "gptq"]

_F64 = np.float64


def _upper_cholesky_of_inverse(h: np.ndarray) -> np.ndarray:
    """$U$ with $H^{-1} = U^\\top U$, $U$ upper triangular (``torch.linalg.cholesky(H^{-1}, upper=True)``)."""
    try:
        h_inv = np.linalg.inv(np.linalg.cholesky(h))  # L^{-1}: H^{-1} = L^{-T} L^{-1}
        h_inv = h_inv.T @ h_inv
        return np.linalg.cholesky((h_inv + h_inv.T) / 2).T
    except np.linalg.LinAlgError:
        raise QuantizationValueError("hessian must be positive definite after damping: raise damp, or pass "
                                     "calibration data that varies") from None


def _check(w, hessian, grid, block_size, damp):
    if not isinstance(grid, WeightGrid):
        raise QuantizationTypeError(f"grid must be a WeightGrid, got {V.describe(grid)}")
    w = grid.check_weight(w)
    h = V.as_float_array(hessian, "hessian").astype(_F64)
    k = w.shape[1]
    if h.shape != (k, k):
        raise ShapeError(f"hessian must have shape (K, K) = ({k}, {k}) for w of shape {w.shape}, got {h.shape}")
    if not np.all(np.isfinite(h)):
        raise QuantizationValueError("hessian must be finite, got NaN or Inf")
    if not np.allclose(h, h.T, rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(h).max()))):
        raise QuantizationValueError("hessian must be symmetric (2 X X^T)")
    if np.any(np.diag(h) < 0):
        raise QuantizationValueError(f"hessian must have a diagonal >= 0, got {float(np.diag(h).min())!r}")
    return (w, h) + _options(block_size, damp)


def _options(block_size, damp) -> tuple[int, float]:
    block_size = V.as_positive_int(block_size, "block_size")
    damp = V.as_real_scalar(damp, "damp")
    if not 0 <= damp <= 1:
        raise QuantizationValueError(f"damp must be in [0, 1] (a share of the mean diagonal), got {damp!r}")
    return block_size, damp


def gptq_codes(w, hessian, grid: WeightGrid, *, block_size: int = 128, damp: float = 0.01,
               act_order: bool = False) -> np.ndarray:
    """GPTQ codes of one weight matrix on ``grid`` (module docstring, eq. (1)).

    Args:
        w: ``(O, K)`` float weights, finite.
        hessian: ``(K, K)`` symmetric positive semi-definite $H = 2\\,\\Sigma_{\\hat x \\hat x}$ of the layer's inputs.
        grid: The :class:`~refquant.ptq.advanced.grid.WeightGrid` (scales, zero points, range).
        block_size: Columns per lazy batch update (>= 1; the result does not depend on it up to
            float64 rounding).
        damp: $\\lambda$ in $[0, 1]$: $H + \\lambda\\,\\mathrm{mean}(\\mathrm{diag}\\,H)\\, I$.
        act_order: Visit columns by decreasing $H_{ii}$ (stable order) instead of left to right.

    Returns:
        ``(O, K)`` int64 codes in ``[grid.qmin, grid.qmax]``. With a diagonal $H$ they are RTN's.

    Raises:
        QuantizationValueError: Non-finite ``w`` or ``hessian``, a non-symmetric ``hessian`` or one
            with a negative diagonal, ``damp`` outside [0, 1], ``block_size`` < 1, $H$ not positive
            definite after damping.
        ShapeError: ``w`` not the grid's shape, ``hessian`` not ``(K, K)``.
    """
    w, h, block_size, damp = _check(w, hessian, grid, block_size, damp)
    act_order = V.as_flag(act_order, "act_order")
    k = w.shape[1]
    h = h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0  # an input that is always 0: no coupling, plain rounding
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    w, h = w[:, perm].copy(), h[np.ix_(perm, perm)]
    h[np.diag_indices(k)] += damp * float(np.mean(np.diag(h)))
    u = _upper_cholesky_of_inverse(h)  # (K, K)
    q = np.zeros(w.shape, np.int64)
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        err = np.zeros((w.shape[0], i2 - i1))  # (O, block) scaled errors e
        for i in range(i1, i2):
            cols = perm[i:i + 1]
            q[:, i:i + 1] = grid.rtn(w[:, i:i + 1], cols)
            e = (w[:, i] - grid.dequantize(q[:, i:i + 1], cols)[:, 0]) / u[i, i]
            w[:, i:i2] -= np.outer(e, u[i, i:i2])  # eq. (1) inside the block
            err[:, i - i1] = e
        w[:, i2:] -= err @ u[i1:i2, i2:]  # eq. (1) for the columns after the block, once
    out = np.empty_like(q)
    out[:, perm] = q
    return out


def gptq(qmodel, model, calibration_data, *, block_size: int = 128, damp: float = 0.01, act_order: bool = False):
    """GPTQ codes for every ``linear`` and ``conv2d`` node of an integer model, on its own grid.

    Layers are visited in graph order; each one's $H$ comes from the calibration data run through
    the integer model with the earlier layers already rewritten (GPTQ's sequential mode), and
    each group of a grouped convolution is one problem of its own. Scales, zero points, biases and
    every other node are kept: the result runs wherever ``qmodel`` does.

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel` from :func:`refquant.ptq.quantize_weights`,
            :func:`~refquant.ptq.quantize_static` or QAT (RTN codes).
        model: The float :class:`refquant.nn.Module` it was made from (for a QAT model,
            :func:`refquant.qat.float_model` of the trained model).
        calibration_data: ``(N, ...)`` float array, N >= 1, finite.
        block_size, damp, act_order: As in :func:`gptq_codes`.

    Returns:
        A new :class:`~refquant.qmodel.QuantizedModel` (``metadata["weight_rounding"] = "gptq"``).

    Raises:
        QuantizationTypeError: ``qmodel`` or ``model`` of the wrong type.
        QuantizationValueError: Empty or non-finite ``calibration_data``; ``model`` is not the one
            ``qmodel`` was made from; a non-finite weight; a bad option (as :func:`gptq_codes`).
        ShapeError: ``calibration_data`` not what the model takes.
    """
    check_qmodel(qmodel)
    block_size, damp = _options(block_size, damp)
    act_order = V.as_flag(act_order, "act_order")
    session = Session(qmodel, model, calibration_data)
    qm = qmodel
    for layer in session.layers:
        q = np.zeros(layer.weight.shape, np.int64)
        for g, m in enumerate(session.moments(qm, layer)):
            rows = layer.rows(g)
            q[rows] = gptq_codes(layer.weight[rows], 2 * m.xx, layer.grid.rows(rows), block_size=block_size,
                                 damp=damp, act_order=act_order)
        old = qm.node(layer.name).params["weight"]
        qm = replace_params(qm, {layer.name: {"weight": q.reshape(old.shape).astype(old.dtype)}})
    return replace_params(qm, {}, {"weight_rounding": "gptq"})
