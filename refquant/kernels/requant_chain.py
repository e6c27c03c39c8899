r"""Requantization as a chain of float32 scalings: source scale, weight scale, bias, output scale.

Some backends do not fold $S_x S_w / S_y$ into one multiplier: they convert the int32
accumulator to float and apply each scale with its own rounding, adding a float32 bias between,
then the output zero point *before* rounding:

$$ v = \mathrm{fl}(\mathrm{fl}(\mathrm{fl}(\mathrm{fl}(\mathrm{fl}(\mathrm{acc}) \cdot s_x) \cdot s_w[c]) + b_c) \cdot d) \tag{1} $$
$$ y = \mathrm{cvt}(\mathrm{clamp}(\mathrm{fl}(v + Z_y),\ q_{min},\ q_{max})) \tag{2} $$

Each $\mathrm{fl}$ is one float32 operation rounded to nearest even (no fused multiply-add);
$b_c$ is skipped without a bias and $Z_y$ when it is 0; a fused ReLU takes $\max(v, 0)$ right
after the bias. The clamp comes *before* the conversion, so no value overflows it; ``cvt`` is
x86 ``cvtps2dq`` (RNE), and NaN (e.g. $0 \cdot \infty$) converts to INT32_MIN, which the unsigned
saturating store turns into $q_{max}$. Mirrors oneDNN's int8 convolution output stage (as
PyTorch's ``x86`` engine runs it on AVX-512 VNNI CPUs).

The constants are formed offline (:func:`scale_chain_constants`) as the caller hands them over:
the source scale arrives as a reciprocal and is inverted again, and the output scale is
inverted three times, each in float32 (after the first division in float64).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["scale_chain_constants", "requantize_scale_chain_reference", "requantize_scale_chain"]

_F32 = np.float32


def scale_chain_constants(x_scale, w_scale, y_scale) -> tuple[np.float32, np.ndarray, np.float32]:
    """``(s_x, s_w, d)`` of eq. (1). Offline code (float allowed).

    $s_x = \\mathrm{fl}(1 / \\mathrm{fl}(1/S_x))$ (the reciprocal formed in float64, rounded to float32,
    inverted in float32; 1 ulp from $S_x$ for about one float32 value in six),
    $s_w = \\mathrm{fl}(S_w)$ (shape ``()`` or ``(O,)``),
    $d = \\mathrm{fl}(1 / \\mathrm{fl}(1 / \\mathrm{fl}(1/S_y)))$ (the same for $S_y$, inverted once more).
    """
    one = _F32(1.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s_x = _F32(one / _F32(1.0 / float(x_scale)))
        s_w = np.asarray(w_scale, np.float64).astype(_F32)
        s_dst = _F32(one / _F32(1.0 / float(y_scale)))
        d = _F32(one / s_dst)
    return s_x, s_w, d


def requantize_scale_chain_reference(acc, s_x, s_w, bias, d, y_zero_point: int, qmin: int, qmax: int, *,
                                     axis: int = -1, relu: bool = False, dtype=np.uint8) -> np.ndarray:
    """Eqs. (1)-(2), one element at a time (the spec).

    Args:
        acc: int32 accumulators, output channels along ``axis``.
        s_x, d: float32 scalars; s_w: float32 ``()`` or ``(O,)``; bias: float32 ``(O,)`` or ``None``.
        y_zero_point, qmin, qmax: ints.
        relu: Apply $\\max(v, 0)$ after the bias.
        dtype: The output dtype.

    Returns:
        Codes of ``acc``'s shape and ``dtype``.
    """
    acc = np.asarray(acc)
    ax = axis % acc.ndim
    out = np.empty(acc.shape, dtype)
    sw = np.broadcast_to(np.asarray(s_w, _F32), (acc.shape[ax],))
    with np.errstate(over="ignore", invalid="ignore"):
        for idx in np.ndindex(*acc.shape):
            c = idx[ax]
            v = _F32(acc[idx])                 # vcvtdq2ps
            v = _F32(v * _F32(s_x))            # source scale
            v = _F32(v * sw[c])                # weight scale
            if bias is not None:
                v = _F32(v + _F32(bias[c]))    # float32 bias
            if relu:
                v = max(v, _F32(0))
            v = _F32(v * _F32(d))              # output scale
            if y_zero_point != 0:
                v = _F32(v + _F32(y_zero_point))
            if np.isnan(v):
                out[idx] = qmax                # cvtps2dq(NaN) = INT32_MIN, saturated as unsigned
                continue
            v = min(max(v, _F32(qmin)), _F32(qmax))
            out[idx] = int(np.rint(v))         # cvtps2dq: RNE (half to even)
    return out


def requantize_scale_chain(acc, s_x, s_w, bias, d, y_zero_point: int, qmin: int, qmax: int, *, axis: int = -1,
                           relu: bool = False, dtype=np.uint8) -> np.ndarray:
    """Fast twin of :func:`requantize_scale_chain_reference` (vectorized float32 NumPy, each
    operation rounded once exactly as the scalar spec): same arguments, same codes bit for bit."""
    acc = np.asarray(acc)
    ax = axis % acc.ndim
    shape = [1] * acc.ndim
    shape[ax] = acc.shape[ax]
    sw = np.broadcast_to(np.asarray(s_w, _F32), (acc.shape[ax],)).reshape(shape)
    with np.errstate(over="ignore", invalid="ignore"):
        v = acc.astype(_F32)
        v = (v * _F32(s_x)).astype(_F32)
        v = (v * sw).astype(_F32)
        if bias is not None:
            v = (v + np.asarray(bias, _F32).reshape(shape)).astype(_F32)
        if relu:
            v = np.maximum(v, _F32(0))
        v = (v * _F32(d)).astype(_F32)
        if y_zero_point != 0:
            v = (v + _F32(y_zero_point)).astype(_F32)
        nan = np.isnan(v)
        v = np.minimum(np.maximum(v, _F32(qmin)), _F32(qmax))
        y = np.rint(v)  # RNE (half to even), as cvtps2dq
    y[nan] = qmax
    return y.astype(np.int64).astype(dtype)
