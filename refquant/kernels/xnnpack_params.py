r"""XNNPACK's offline parameters for quantized ops: fused-activation bounds and the sigmoid table.

Two places where the XNNPACK delegate of TFLite/LiteRT derives a parameter differently from
TFLite's own kernels (measured on LiteRT 2.3.0, x86-64; ``tests/test_conformance_tflite_ops.py``).

**Fused-activation bounds** (``xnn_qs8_quantize`` / ``xnn_qu8_quantize``, applied by every
quantized XNNPACK operator the delegate creates: fully connected, convolution, depthwise,
add, max pooling). The delegate passes the activation as a float range $[f_{lo}, f_{hi}]$
(none: $[-\infty, +\infty]$; RELU: $[0, +\infty]$; RELU6: $[0, 6]$; RELU_N1_TO_1: $[-1, 1]$)
and XNNPACK quantizes each end in float32 with the zero point added **before** rounding,
ties to even:

$$ q(f) = \operatorname{RNE}\big(\operatorname{clamp}(\mathrm{fl}(\mathrm{fl}(f / S_y) + Z_y),\ q_{min},\ q_{max})\big) \tag{1} $$

TFLite's kernels use $Z_y + \mathrm{RHAZ}(\mathrm{fl}(f / S_y))$ instead
(:func:`refquant.kernels.multiplier.activation_range`). The two differ on ties, e.g.
RELU6 with $S_y = 4$, $Z_y = 1$: $6/4 + 1 = 2.5$ gives 2 here and $1 + \mathrm{RHAZ}(1.5) = 3$ in TFLite.

**Sigmoid table** (the LOGISTIC node under the delegate): for each code $v$,

$$ d = \mathrm{fl}(S_x (v - Z_x)), \quad
   t = \begin{cases} 1 & d > 100 \\ 0 & d < -100 \\
   \mathrm{fl}_{32}\big(e / (1 + e)\big),\ e = \exp(d) \text{ in float64} & \text{otherwise} \end{cases}, \quad
   T[v] = \operatorname{clamp}\big(\operatorname{RNE}(\mathrm{fl}(\mathrm{fl}(t \cdot 256) + Z_y))\big) \tag{2} $$

(XNNPACK's reference ``SigmoidOp`` evaluated in double, then the quantization of eq. (1)),
where TFLite's own table is $\mathrm{RHAZ}(\mathrm{fl}(1 / (1 + \mathrm{expf}(-d))) \cdot 256) + Z_y$
(:func:`refquant.kernels.lut.logistic_lut`). The two tables differ in about one entry in a
few hundred tables, on values within an ulp of a half-integer. ``exp`` is NumPy's float64
``exp``; it may differ from the C library's in the last bit of a double, which moves the
float32 $t$ only when that double lies within $2^{-29}$ relative of a float32 rounding
boundary (not seen in the conformance runs).

Both functions are offline code (float allowed). Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import get_format
from ..errors import QuantizationTypeError, QuantizationValueError
from .lut import lut_inputs
from .multiplier import ACTIVATION_FLOAT_RANGES

__all__ = ["ACTIVATION_FLOAT_RANGES", "xnnpack_quantize_bound", "xnnpack_activation_range", "xnnpack_logistic_lut"]

_F32 = np.float32
# The delegate's ConvertActivationToOutputRange gives each activation the float range TFLite's
# kernels use too: one table, re-exported here.


def xnnpack_quantize_bound(value, output_scale, output_zero_point, qmin: int, qmax: int) -> int:
    """``xnn_qs8_quantize(value, scale, zero_point)``: eq. (1) for one float bound.

    ``lrintf(fminf(fmaxf(value / scale + (float) zero_point, qmin), qmax))``: float32
    division and addition, clamp, round half to even.

    Args:
        value: The float bound ($\\pm\\infty$ allowed).
        output_scale: $S_y$ (float32).
        output_zero_point: $Z_y$ (int).
        qmin, qmax: The output format's range.

    Returns:
        The quantized bound as a Python int in ``[qmin, qmax]``.
    """
    s = V.as_scale(output_scale, "output_scale")
    if s.size != 1:
        raise QuantizationValueError(f"output_scale must be a scalar, got shape {s.shape}")
    s = _F32(s.reshape(()))
    z = np.asarray(output_zero_point)
    if z.shape != () or z.dtype.kind not in "iu" or isinstance(output_zero_point, (bool, np.bool_)):
        raise QuantizationTypeError(f"output_zero_point must be an integer scalar, got {output_zero_point!r}")
    zp = int(z)
    with np.errstate(over="ignore"):
        v = _F32(_F32(_F32(value) / s) + _F32(zp))  # float32 ops, one rounding each
    v = min(max(v, _F32(qmin)), _F32(qmax))
    return int(np.rint(v))  # RNE, as lrintf in the default rounding mode


def xnnpack_activation_range(activation, output_scale, output_zero_point, qmin: int, qmax: int) -> tuple[int, int]:
    """The fused-activation clamp of a quantized XNNPACK operator under the TFLite delegate, eq. (1).

    Same arguments and result type as :func:`refquant.kernels.multiplier.activation_range`
    (``None``, ``"NONE"``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"``); the bounds are
    $q(f_{lo})$ and $q(f_{hi})$ of eq. (1).

    Raises:
        QuantizationValueError: unknown activation or invalid scale / zero point.
    """
    if activation not in ACTIVATION_FLOAT_RANGES:
        raise QuantizationValueError(
            f"activation must be one of {tuple(ACTIVATION_FLOAT_RANGES)}, got {activation!r}")
    lo, hi = ACTIVATION_FLOAT_RANGES[activation]
    return (xnnpack_quantize_bound(lo, output_scale, output_zero_point, qmin, qmax),
            xnnpack_quantize_bound(hi, output_scale, output_zero_point, qmin, qmax))


def xnnpack_logistic_lut(x_scale, x_zero_point, *, dtype="int8") -> np.ndarray:
    """The XNNPACK delegate's LOGISTIC table, eq. (2): output scale 1/256, zero point -128
    (int8) or 0 (uint8). Returns a ``(256,)`` table of ``dtype`` indexed by the input byte
    (apply it with :func:`refquant.kernels.lut.apply_lut`)."""
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in ("int8", "uint8"):
        raise QuantizationTypeError(f"dtype must be 'int8' or 'uint8', got {fmt.name!r}")
    dt = fmt.dtype
    zy = -128 if dt == np.int8 else 0
    d = lut_inputs(x_scale, x_zero_point, dt)  # (256,) float32: fl(S_x (v - Z_x))
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(d.astype(np.float64))
        t = (e / (1.0 + e)).astype(_F32)  # double quotient, rounded once to float32 (RNE)
    t = np.where(d > 100, _F32(1.0), np.where(d < -100, _F32(0.0), t)).astype(_F32)
    v = ((t * _F32(256.0)).astype(_F32) + _F32(zy)).astype(_F32)  # 1/S_y = 256 exactly
    info = np.iinfo(dt)
    return np.clip(np.rint(v), info.min, info.max).astype(np.int64).astype(dt)  # RNE, then saturate
