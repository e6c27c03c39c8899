r"""Dynamic-range ("hybrid") linear layer under a profile: float32 in, float32 out.

$$ y = \mathrm{out}\big(\textstyle\sum_k (q_{mk} - Z_x) w_{nk},\ S_x,\ S_w,\ b\big), \qquad
   (q, S_x, Z_x) = \mathrm{in}(x) $$

Two fields of the profile's ``linear`` :class:`~refquant.specs.LayerSpec` say how
(:mod:`refquant.kernels.dynamic` has the arithmetic):

| ``dynamic_input`` | parameters, per | codes | accumulator | backend |
|---|---|---|---|---|
| ``per_tensor_u8_nudged`` | call: ``ChooseQuantizationParams``, $[0, 255]$ ($[0, 127]$ with ``reduce_range`` where ``dynamic_reduce_range``) | the profile's QUANTIZE, uint8 | the profile's u8×s8 GEMM model | PyTorch ``quantized::linear_dynamic`` |
| ``per_tensor_u8_dql`` | call: ``DynamicQuantizeLinear`` | the profile's QUANTIZE, uint8 | the profile's u8×s8 GEMM model | ONNX Runtime ``DynamicQuantizeMatMul`` / ``MatMulInteger`` |
| ``per_row_symmetric_s8`` | row: $\max|x| / 127$ | int8, $[-127, 127]$ | SSSE3 sign-transfer dot | TFLite hybrid FULLY_CONNECTED |
| ``per_row_asymmetric_s8`` | row: $(M - m) / 255$, zero point | int8 | SSSE3 dot $- Z_x \cdot$ int16-lane row sums | TFLite hybrid FULLY_CONNECTED (``asymmetric_quantize_inputs``, the converter's default) |
| ``per_row_asymmetric_qd8`` | row: $255 / (M - m)$, float32 | int8 | exact | XNNPACK ``qd8-f32-qc8w`` (LiteRT's delegate) |

``dynamic_output`` (:func:`refquant.kernels.dynamic.dynamic_output`) rounds the float output.
The TFLite rules also return the bias unchanged when every input element is zero
(``EvalHybridDense``'s shortcut: a bias of $-0$ stays $-0$).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import FORMATS, wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..kernels import dynamic as kd
from ..kernels.gemm import gemm
from ..profiles import Profile, as_profile
from ..qparams import QParams
from ..quantization import quantize
from ..specs import LayerSpec

__all__ = ["dynamic_linear"]

_F32 = np.float32


def dynamic_linear(x, w, w_scale, w_zero_point, bias, *, profile, reduce_range: bool = False) -> np.ndarray:
    """A dynamic-range linear layer, $y = x W^\\top + b$ with run-time quantized activations.

    Args:
        x: float32 ``(M, K)``, finite (its range chooses the activation parameters).
        w: int8 ``(N, K)`` weights.
        w_scale: float32 ``()`` (per tensor) or ``(N,)`` (per output channel), positive.
        w_zero_point: integer ``()`` or ``(N,)`` in $[-128, 127]$; 0 for the per-row rules.
        bias: float32 ``(N,)`` or ``None``.
        profile: A profile name or :class:`~refquant.profiles.Profile`; its ``linear`` spec's
            ``dynamic_input`` and ``dynamic_output`` choose the arithmetic.
        reduce_range: Quantize activations to $[0, 127]$ (PyTorch's dynamic Linear passes it);
            read by ``per_tensor_u8_nudged`` where the spec's ``dynamic_reduce_range`` is set,
            ignored by the other rules (theirs have no reduced range).

    Returns:
        float32 ``(M, N)``; zeros when $M = 0$ or $K = 0$.

    Raises:
        UnsupportedError: The profile has no dynamic kernel (``dynamic_input`` is ``None``), or a
            per-row rule gets a nonzero weight zero point (those kernels ignore it).
    """
    prof = as_profile(profile)
    spec = prof.layer("linear")
    if spec.dynamic_input is None:
        raise UnsupportedError(f"profile {prof.name!r} has no dynamic-range kernel that refquant models "
                               f"(its linear spec's dynamic_input is None)")
    x, w, ws, wz, b = _arguments(x, w, w_scale, w_zero_point, bias)
    _check_zero_points(spec.dynamic_input, wz)
    reduce_range = V.as_flag(reduce_range, "reduce_range", ints=False)
    m, n = x.shape[0], w.shape[0]
    if x.size == 0:
        return np.zeros((m, n), _F32)
    rule, zero_input_gives_bias = _RULES[spec.dynamic_input]
    if zero_input_gives_bias and not np.any(x):
        return np.broadcast_to(np.zeros(n, _F32) if b is None else b, (m, n)).copy()
    acc, x_scale = rule(x, w, wz, prof, spec, reduce_range)  # (M, N) int32, () or (M,) float32
    return kd.dynamic_output(acc, x_scale, ws, b, mode=spec.dynamic_output)


# ---------------------------------------------------------------- input rules: (acc, S_x)

def _per_tensor(x, w, wz, prof: Profile, spec: LayerSpec, scale, zp):
    """The codes from the profile's QUANTIZE, the accumulator from its u8×s8 GEMM model."""
    # Not make_qparams for DQL: ORT goes on with a degenerate scale (0 by underflow).
    qp = QParams(scale, np.int64(zp), FORMATS["uint8"], qmin=0, qmax=255)
    with np.errstate(all="ignore"):
        xq = quantize(x, qp, prof)  # (M, K) uint8
    acc = gemm(xq, np.ascontiguousarray(w.T), xq.dtype.type(zp), np.asarray(wz).astype(np.int8),
               acc_model=spec.accumulation_for(prof.isa, xq.dtype, w.dtype))  # (M, N) int32
    return acc, scale


def _per_tensor_u8_nudged(x, w, wz, prof, spec, reduce_range):
    rr = reduce_range and spec.dynamic_reduce_range  # qnnpack ignores reduce_range (torch warns)
    scale, zp = kd.choose_u8_nudged(x.min(), x.max(), reduce_range=rr)
    return _per_tensor(x, w, wz, prof, spec, scale, zp)


def _per_tensor_u8_dql(x, w, wz, prof, spec, reduce_range):
    scale, zp = kd.choose_u8_dql(x.min(), x.max())
    return _per_tensor(x, w, wz, prof, spec, scale, zp)


def _per_row_symmetric_s8(x, w, wz, prof, spec, reduce_range):
    q, scale = kd.quantize_rows_symmetric_s8(x)
    return kd.dot_s8_sign_transfer(q, w), scale


def _per_row_asymmetric_s8(x, w, wz, prof, spec, reduce_range):
    q, scale, zp = kd.quantize_rows_asymmetric_s8(x)
    # dotprod -= row_sums[row] * batch_offset, in int32
    acc = kd.dot_s8_sign_transfer(q, w).astype(np.int64) - np.outer(zp, kd.row_sums_int16_lanes(w))
    return wrap_int32(acc).astype(np.int32), scale


def _per_row_asymmetric_qd8(x, w, wz, prof, spec, reduce_range):
    q, scale, zp = kd.quantize_rows_qd8(x)
    # vacc = ksum * Z + sum q w with ksum = -sum w (packed with the weights), all int32
    dot = gemm(q, np.ascontiguousarray(w.T), 0, 0, acc_model="wrap")  # (M, N)
    acc = dot.astype(np.int64) - np.outer(zp, w.astype(np.int64).sum(axis=1))
    return wrap_int32(acc).astype(np.int32), scale


# name -> (rule, whether an all-zero input returns the bias unchanged)
_RULES = {
    "per_tensor_u8_nudged": (_per_tensor_u8_nudged, False),
    "per_tensor_u8_dql": (_per_tensor_u8_dql, False),
    "per_row_symmetric_s8": (_per_row_symmetric_s8, True),
    "per_row_asymmetric_s8": (_per_row_asymmetric_s8, True),
    "per_row_asymmetric_qd8": (_per_row_asymmetric_qd8, False),
}
_PER_ROW = ("per_row_symmetric_s8", "per_row_asymmetric_s8", "per_row_asymmetric_qd8")


# ---------------------------------------------------------------- arguments

def _arguments(x, w, w_scale, w_zero_point, bias):
    xf = V.asarray(x, "x", kinds=None, what="a float32 array")
    if xf.dtype != np.float32:
        raise QuantizationTypeError(f"x must be a float32 array, got dtype {xf.dtype}")
    w = V.as_typed_array(w, "w", (np.int8,), ndim=2)
    n, k = w.shape
    if xf.ndim != 2 or xf.shape[1] != k:
        raise ShapeError(f"x must have shape (M, K) with K = w.shape[1] = {k}, got shape {xf.shape}")
    if not np.all(np.isfinite(xf)):
        raise QuantizationValueError("x must be finite: its range chooses the activation's quantization parameters")
    ws = V.asarray(w_scale, "w_scale", kinds="f", what="a float32 array")
    if ws.dtype != np.float32 or ws.shape not in ((), (n,)):
        raise ShapeError(f"w_scale must be float32 of shape () or ({n},), got {ws.dtype} {ws.shape} "
                         f"(one per row of w)")
    bad = ~(np.isfinite(ws) & (ws > 0))
    if np.any(bad):
        raise QuantizationValueError(f"w_scale must be positive and finite, got {float(ws[bad].ravel()[0])!r}")
    wz = V.asarray(w_zero_point, "w_zero_point", kinds="iu", what="an integer array")
    if wz.shape not in ((), (n,)) or np.any((wz < -128) | (wz > 127)):
        raise QuantizationValueError(f"w_zero_point must be int8 values of shape () or ({n},), got {wz!r}")
    b = None
    if bias is not None:
        b = V.asarray(bias, "bias", kinds="f", what="a float32 array")
        if b.dtype != np.float32 or b.shape != (n,):
            raise ShapeError(f"bias must be float32 of shape ({n},), got {b.dtype} {b.shape} (one per row of w)")
    return xf, w, ws, wz, b


def _check_zero_points(rule: str, wz) -> None:
    if rule in _PER_ROW and np.any(wz):
        raise UnsupportedError(f"w_zero_point must be 0 under dynamic_input {rule!r} (the backend's kernel ignores "
                               f"the weight zero point), got {wz.tolist()!r}")
