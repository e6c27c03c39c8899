"""The ONNX operator specification, op by op: ``QuantizeLinear``, ``DequantizeLinear``,
``DynamicQuantizeLinear`` (pinned face).

Each function is a thin binding of the arithmetic core (:func:`refquant.quantization.quantize`,
:func:`refquant.quantization.dequantize`, :func:`dynamic_qparams`)
to ONNX's argument conventions: inputs positional in ONNX order, attributes keyword-only
with their ONNX names, and the ``onnx`` profile (divide, round half to even, add the zero
point, saturate). It follows the **specification text** (opset 21-25). Where
``onnx.reference.ReferenceEvaluator`` departs from that text, this face does not copy it:

| case | spec (this face) | ``onnx.reference`` (onnx 1.23) |
|---|---|---|
| QuantizeLinear: $\\pm\\infty$, $x/S$ or $x/S + Z$ past int32 | saturate | int32 cast (INT32_MIN), $+Z$ wraps |
| QuantizeLinear: NaN (undefined in the spec) | $q_{min}$, as ONNX Runtime | INT32_MIN $+ Z$, wrapped, clipped |
| QuantizeLinear: float32 ``x``, float16 scale | divide in float16 | NumPy promotion: float32 |
| QuantizeLinear: int32 ``x`` | to the scale's type, then divide | float64 division |
| DequantizeLinear: float16 scale | $x - Z$ and product in float16 | float32, then cast to float16 |
| DequantizeLinear: int32 ``x`` | exact; zero point must be 0 | ``float32(x) - Z`` |
| DynamicQuantizeLinear: all-zero ``x`` | $0/0$; refquant: $S = 1$, $Z = 0$ | $S = 1/255$ |
| QLinearMatMul, QLinearConv: $\\mathrm{acc} \\cdot M$ | exact rational $S_a S_b / S_y$, one rounding | $M$ rounded to float32, product in float64 |
| QLinearMatMul, QLinearConv: $Z_y$ | added **after** rounding (ties to even) | added before rounding: off by one on an exact .5 tie with an odd $Z_y$ |
| MatMulInteger, QLinearMatMul: per-row ``a`` zero point / scale | per row | a 1-D ``(M,)`` one broadcasts along $K$ (an error, or per column of ``a`` when $M = K$); QLinearMatMul with an ``(M, 1)`` scale and a 1-D ``b`` returns shape ``(M, M)`` |
| ConvInteger: per-channel ``w_zero_point`` of a 1-D convolution | per output channel | raises (expands to 4-D) |
| MatMulInteger, ConvInteger, QLinear*: accumulator past int32 | warns, wraps (kernels' overflow rule) | wraps silently (NumPy int32) |

The integer matmul and convolution ops (:func:`matmul_integer`, :func:`qlinear_matmul`,
:func:`conv_integer`, :func:`qlinear_conv`) live in :mod:`refquant.backends._onnx_ops` and are
re-exported here. The two QLinear departures make ``onnx.reference`` differ from the spec only on
outputs whose exact $\\mathrm{acc} \\cdot M$ lies within float rounding of a .5 tie (tested:
``tests/test_conformance_onnx_ops.py`` checks every other output with ``==``).

Integer formats: uint8, int8, uint16, int16, uint4, int4, uint2, int2. 4- and 2-bit results
come back **unpacked**, one value per element, in ``np.int8`` (int4, int2) or ``np.uint8``
(uint4, uint2); :func:`refquant.dtypes.pack_int4` packs them two per byte as ONNX stores them.
float8/float4 outputs are not implemented (:class:`refquant.errors.UnsupportedError`).

See the Conventions page for $r = S(q - Z)$ and the rounding names.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as V
from ..dtypes import FORMATS, IntFormat
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..qparams import QParams, make_qparams
from ..quantization import dequantize, quantize
from ._onnx_op_args import is_python_int
from ._onnx_params import dynamic_qparams

__all__ = ["quantize_linear", "dequantize_linear", "dynamic_quantize_linear", "dynamic_qparams", "matmul_integer", "qlinear_matmul",
           "conv_integer", "qlinear_conv", "ONNX_INTEGER_TYPES"]

ONNX_INTEGER_TYPES = ("uint8", "int8", "uint16", "int16", "uint4", "int4", "uint2", "int2")
_SUB_BYTE = ("uint4", "int4", "uint2", "int2")
_FLOAT_OUTPUTS = ("float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "float4e2m1",
                  "float4e2m1fn", "float6e2m3", "float6e3m2")
# ONNX TensorProto element types, so that output_dtype=TensorProto.INT4 works too.
_TENSOR_PROTO = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 21: "uint4", 22: "int4", 25: "uint2",
                 26: "int2", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
                 23: "float4e2m1"}


# ----------------------------------------------------------------------------------------
# Argument conventions shared with refquant.backends.onnxruntime


def _type_name(dtype_or_name) -> str:
    """Lower-case ONNX-style name of a NumPy / ml_dtypes dtype or a name (``float8_e4m3fn`` -> ``float8e4m3fn``)."""
    name = dtype_or_name if isinstance(dtype_or_name, str) else np.dtype(dtype_or_name).name
    return name.lower().replace("_", "")


def _onnx_format(spec, name: str) -> IntFormat:
    """The integer format named by ``output_dtype`` (a name, NumPy dtype or TensorProto int)."""
    if isinstance(spec, (numbers.Integral, np.integer)) and not isinstance(spec, bool):
        if int(spec) not in _TENSOR_PROTO:
            raise QuantizationValueError(f"{name} must be one of {list(ONNX_INTEGER_TYPES)}, got TensorProto {spec}")
        spec = _TENSOR_PROTO[int(spec)]
    try:
        key = _type_name(spec)
    except TypeError:
        raise QuantizationTypeError(f"{name} must be a NumPy dtype or a type name, got {spec!r}") from None
    if key in _FLOAT_OUTPUTS:
        raise UnsupportedError(f"{name}={key}: float8/float4 QuantizeLinear outputs are not implemented in refquant; "
                               f"integer types are {list(ONNX_INTEGER_TYPES)}")
    if key not in ONNX_INTEGER_TYPES:
        raise QuantizationValueError(f"{name} must be one of {list(ONNX_INTEGER_TYPES)}, got {spec!r}")
    return FORMATS[key]


def _output_format(zero_point, output_dtype, zp_name: str = "y_zero_point") -> IntFormat:
    """ONNX rule: the zero point's type is the output type; else ``output_dtype``; else uint8."""
    fmt = None if output_dtype is None else _onnx_format(output_dtype, "output_dtype")
    if zero_point is None:
        return fmt if fmt is not None else FORMATS["uint8"]
    if is_python_int(zero_point):
        if fmt is None:
            raise QuantizationTypeError(
                f"{zp_name} is a Python int, which does not say the output type: pass a NumPy integer (its dtype "
                f"is the output type, as in ONNX) or output_dtype=, got {zero_point!r}")
        return fmt
    dt = V.asarray(zero_point, zp_name, kinds=None, what="an integer array").dtype
    key = _type_name(dt) if dt.kind in "iuV" else ""
    if key in _FLOAT_OUTPUTS:
        _onnx_format(key, f"{zp_name} dtype")  # raises UnsupportedError
    if key not in ONNX_INTEGER_TYPES:
        raise QuantizationTypeError(f"{zp_name} must be an integer array whose dtype is the output type, one of "
                                    f"{list(ONNX_INTEGER_TYPES)}, got dtype {dt}")
    zfmt = FORMATS[key]
    if fmt is None or fmt is zfmt:
        return zfmt
    if fmt.name in _SUB_BYTE and dt == fmt.dtype:  # int4 values held unpacked in int8
        return fmt
    raise QuantizationTypeError(
        f"{zp_name} dtype {dt} disagrees with output_dtype {fmt.name}: in ONNX the zero point's type is the "
        f"output type (for {fmt.name}, pass a {fmt.dtype} array or a Python int)")


def _as_scale(scale, name: str, dtype=None) -> np.ndarray:
    """A scale as float16 (if given as float16) or float32 (Python floats, float32, float64), > 0 and finite."""
    if scale is None or isinstance(scale, (str, bytes)):
        raise QuantizationTypeError(f"{name} must be a positive float or float array, got {scale!r}")
    a = V.asarray(scale, name, kinds=None, what="a float16/float32 scalar or array")
    if dtype is None:
        dtype = np.float16 if a.dtype == np.float16 else np.float32
    if a.dtype.kind not in "fiu":
        raise QuantizationTypeError(f"{name} must be a float16/float32 scalar or array, got dtype {a.dtype}")
    return V.as_scale(a, name, dtype=dtype)


def _granularity(shape, scale_shape, axis, block_size, scale_name: str):
    """Return ``(axis, block_size)`` for make_qparams: ``(None, None)`` per-tensor, ``(a, None)``
    per-axis, ``(a, B)`` blocked; raise with ONNX's rule when the shapes do not fit."""
    axis = V.as_int(axis, "axis")
    block_size = V.as_int(block_size, "block_size")
    ndim = len(shape)
    if block_size < 0:
        raise QuantizationValueError(f"block_size must be >= 0 (0: not blocked), got {block_size}")
    if block_size == 0:
        if len(scale_shape) == 0 or scale_shape == (1,):  # a one-element 1-D scale is per-tensor (ORT, onnx.reference)
            return None, None
        if len(scale_shape) != 1:
            raise ShapeError(f"{scale_name} of shape {scale_shape} means blocked quantization, which needs "
                             f"block_size > 0, got block_size=0")
        if ndim == 0:
            raise ShapeError(f"a 1-D {scale_name} (per-axis) needs an input of rank >= 1, got a scalar")
        a = V.normalize_axis(axis, ndim)
        if scale_shape[0] != shape[a]:
            raise ShapeError(f"{scale_name} must have shape ({shape[a]},) to match x.shape[{axis}] = {shape[a]}, "
                             f"got {scale_shape}")
        return a, None
    if len(scale_shape) != ndim or ndim == 0:
        raise ShapeError(f"blocked quantization needs {scale_name} of x's rank {ndim}, got shape {scale_shape}")
    a = V.normalize_axis(axis, ndim)
    for i, (d, s) in enumerate(zip(shape, scale_shape)):
        if i != a and d != s:
            raise ShapeError(f"{scale_name} must match x's shape {tuple(shape)} except on axis {a}, "
                             f"got {scale_shape}")
    d, s = shape[a], scale_shape[a]
    lo = -(-d // s)
    hi = -(-d // (s - 1)) - 1 if s > 1 else None  # ONNX: B in [ceil(Di/Si), ceil(Di/(Si-1)) - 1]
    if hi is not None and hi < lo:
        raise ShapeError(f"no block_size splits x.shape[{a}] = {d} into {scale_name}.shape[{a}] = {s} blocks "
                         f"(ONNX: block_size in [ceil(Di/Si), ceil(Di/(Si-1))-1] = [{lo}, {hi}]), got {block_size}")
    if block_size < lo or (hi is not None and block_size > hi):
        span = f"[{lo}, {hi}]" if hi is not None else f"[{lo}, inf)"
        raise ShapeError(f"block_size must be in {span} = [ceil(Di/Si), ceil(Di/(Si-1))-1] for x.shape[{a}] = {d} "
                         f"and {scale_name}.shape[{a}] = {s}, got {block_size}")
    return a, block_size


def _qparams(shape, scale, zero_point, fmt, axis, block_size, scale_name: str, zp_name: str) -> QParams:
    """Validate (with ONNX's argument names) and build the core's :class:`QParams`."""
    g_axis, g_block = _granularity(tuple(shape), scale.shape, axis, block_size, scale_name)
    zp = None
    if zero_point is not None:
        raw = V.asarray(zero_point, zp_name, kinds=None, what="an integer or integer array")
        if raw.dtype.kind == "V":  # ml_dtypes int4 / uint4 / int2 / uint2
            raw = raw.astype(np.int64)
        zp = V.as_zero_point(raw, fmt, zp_name)
        if zp.shape != scale.shape and not (zp.size == 1 and scale.size == 1):
            raise ShapeError(f"{zp_name} must have {scale_name}'s shape {scale.shape}, got {zp.shape}")
        zp = zp.reshape(scale.shape)
    return make_qparams(scale, zp, fmt, axis=g_axis, block_size=g_block, scale_dtype=scale.dtype)


def _check_saturate(saturate):
    if isinstance(saturate, (bool, np.bool_)):
        return
    if not isinstance(saturate, (numbers.Integral, np.integer)) or int(saturate) not in (0, 1):
        raise QuantizationValueError(f"saturate must be 0 or 1, got {saturate!r}")


def _int_input(x, name: str = "x"):
    """DequantizeLinear input: an integer array; returns ``(int array, IntFormat)``."""
    a = V.asarray(x, name, kinds=None, what="an integer array")
    key = _type_name(a.dtype) if a.dtype.kind in "iuV" else ""
    if key in _SUB_BYTE:  # ml_dtypes int4 / uint4 / int2 / uint2
        fmt = FORMATS[key]
        return a.astype(fmt.dtype), fmt
    if a.dtype.kind not in "iu" or key not in ONNX_INTEGER_TYPES + ("int32",):
        raise QuantizationTypeError(
            f"{name} must be an integer array of {list(ONNX_INTEGER_TYPES) + ['int32']}, got dtype {a.dtype}")
    return a, FORMATS[key]


def _dequantize_zero_point(zero_point, x_dtype, fmt, name: str = "x_zero_point"):
    """ONNX: the zero point has x's type; a Python int takes x's type."""
    if zero_point is None or is_python_int(zero_point):
        return zero_point
    dt = V.asarray(zero_point, name, kinds=None, what="an integer or integer array").dtype
    key = _type_name(dt) if dt.kind in "iuV" else ""
    if key != fmt.name and not (fmt.name in _SUB_BYTE and dt == fmt.dtype) and dt != x_dtype:
        raise QuantizationTypeError(f"{name} must have x's type {fmt.name} (ONNX), got dtype {dt}")
    return zero_point


def _float_input(x, name: str = "x") -> np.ndarray:
    a = V.asarray(x, name, kinds=None, what="a float array")
    if a.dtype.kind != "f":
        raise QuantizationTypeError(f"{name} must be a float array (float16/float32), got dtype {a.dtype}")
    return a


# ----------------------------------------------------------------------------------------
# The face


def quantize_linear(x, y_scale, y_zero_point=None, *, axis=1, block_size=0, saturate=1, output_dtype=None):
    """ONNX ``QuantizeLinear`` (opset 21-25) as the specification states it.

    $$ y = \\operatorname{saturate}\\big(\\mathrm{RNE}(x / S) + Z\\big) $$

    The division runs in ``y_scale``'s type (float32, or float16 for a float16 scale), one
    rounding, then ties to even, then the zero point is added and the result saturates to
    the output type's range. NaN (undefined in the spec) maps to $q_{min}$, as in ONNX Runtime.

    Granularity follows the shape of ``y_scale``: a scalar (or one-element 1-D array) is
    per-tensor; a 1-D array of length ``x.shape[axis]`` is per-axis; an array of ``x``'s rank
    with $\\lceil D_{axis}/B \\rceil$ on ``axis`` is blocked with ``block_size`` $B$ in
    $[\\lceil D_i/S_i \\rceil, \\lceil D_i/(S_i - 1) \\rceil - 1]$; the last block may be partial.

    Args:
        x: float16/float32 array (float64 and int32 are converted to the scale's type first,
            as the spec's division does); NaN and $\\pm\\infty$ are data.
        y_scale: Positive finite float, or float array (per-axis 1-D, blocked N-D); Python
            floats and float64 become float32, float16 stays float16.
        y_zero_point: NumPy integer scalar/array of the scale's shape; **its dtype is the output
            type** (``np.int8`` -> int8). For int4/uint4/int2/uint2 pass an int8/uint8 array (or
            an ``ml_dtypes`` int4 array) with ``output_dtype``. A Python int needs ``output_dtype``.
            ``None``: zero point 0.
        axis: Quantization axis (per-axis, blocked); negative counts from the end.
        block_size: 0 (not blocked) or the block length $B$.
        saturate: 0 or 1; only float8 outputs use it (not implemented), ignored for integers.
        output_dtype: NumPy dtype, name (``"int8"``, ``"uint4"``, ``"int2"``, ...) or ONNX
            TensorProto value. Default: ``y_zero_point``'s type, else uint8.

    Returns:
        Integer array of ``x``'s shape: the format's dtype; int4/int2 unpacked in ``np.int8``,
        uint4/uint2 in ``np.uint8``.

    Raises:
        QuantizationTypeError: Non-float ``x``, a non-integer zero point, or a zero point whose
            dtype disagrees with ``output_dtype``.
        QuantizationValueError: Scale <= 0, NaN or Inf; zero point out of range; unknown type.
        ShapeError: Scale/zero-point shapes that do not fit ``axis`` / ``block_size``.
        UnsupportedError: float8/float4 output types.
    """
    fmt = _output_format(y_zero_point, output_dtype)
    _check_saturate(saturate)
    scale = _as_scale(y_scale, "y_scale")
    a = V.asarray(x, "x", kinds=None, what="a float array")
    if a.dtype == np.int32:  # opset 25+: int32 x, divided in the scale's type
        a = a.astype(scale.dtype)
    a = _float_input(a)
    qp = _qparams(a.shape, scale, y_zero_point, fmt, axis, block_size, "y_scale", "y_zero_point")
    with np.errstate(over="ignore"):  # x/S overflowing to inf is data: it saturates
        return quantize(a, qp, "onnx")  # divides in the scale's type


def dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1, block_size=0):
    """ONNX ``DequantizeLinear`` (opset 21-25): $y = (x - Z)\\,S$.

    $x - Z$ is exact (integers); it is converted to the scale's type and multiplied in that
    type (float32, or float16 for a float16 scale: the spec's "the output type determines the
    precision of the multiplication"), one rounding each, ties to even.

    Args:
        x: Integer array: int8, uint8, int16, uint16, int32, or int4/uint4/int2/uint2 as
            ``ml_dtypes`` arrays (int4 values held unpacked in int8 dequantize identically as int8).
        x_scale: Positive finite float or float array (granularity as in :func:`quantize_linear`).
        x_zero_point: Integer scalar/array of the scale's shape with ``x``'s dtype (a Python int
            takes ``x``'s type); must be 0 for int32 ``x``. ``None``: 0.
        axis, block_size: As in :func:`quantize_linear`.

    Returns:
        float32 array of ``x``'s shape (float16 if ``x_scale`` is float16).

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: As for :func:`quantize_linear`.
    """
    q, fmt = _int_input(x)
    scale = _as_scale(x_scale, "x_scale")
    zp = _dequantize_zero_point(x_zero_point, q.dtype, fmt)
    qp = _qparams(q.shape, scale, zp, fmt, axis, block_size, "x_scale", "x_zero_point")
    if fmt.name == "int32" and np.any(qp.zero_point != 0):
        raise QuantizationValueError(f"x_zero_point must be 0 for int32 x (ONNX DequantizeLinear), "
                                     f"got {int(qp.zero_point[qp.zero_point != 0].flat[0])}")
    with np.errstate(over="ignore"):  # float16: |x - Z| > 65519 becomes inf, as the spec's float16 arithmetic
        return dequantize(q, qp, "onnx")  # computed in the scale's type


def dynamic_quantize_linear(x):
    """ONNX ``DynamicQuantizeLinear`` (opset 11), the spec's function body, all in float32.

    $$ x_{min} = \\min(\\min x, 0),\\quad x_{max} = \\max(\\max x, 0),\\quad
       S = \\frac{x_{max} - x_{min}}{255},\\quad Z = \\mathrm{RNE}(\\operatorname{clip}(-x_{min}/S, 0, 255)) $$

    then $y$ = :func:`quantize_linear` $(x, S, Z)$ (uint8). For an all-zero (or empty) ``x`` the
    spec computes $0/0$; refquant returns $S = 1$, $Z = 0$, $y = 0$ (as ONNX Runtime;
    ``onnx.reference`` returns $S = 1/255$; onnx/onnx#8437).

    Args:
        x: float array (float16/float64 are converted to float32, the op's only input type).
            Must be finite: NaN or $\\pm\\infty$ make the spec's $S$ or $Z$ undefined.

    Returns:
        ``(y, y_scale, y_zero_point)``: uint8 array of ``x``'s shape, 0-d float32, 0-d uint8.

    Raises:
        QuantizationTypeError: ``x`` is not a float array.
        UnsupportedError: Non-finite ``x``, or a range so small that $S$ underflows to 0.
    """
    a = _float_input(x).astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise UnsupportedError("x must be finite: the ONNX specification leaves DynamicQuantizeLinear undefined for "
                               "NaN/Inf (refquant.backends.onnxruntime.dynamic_quantize_linear gives ORT's answer)")
    with np.errstate(over="ignore"):  # a range past FLT_MAX gives y_scale = inf, as in the spec
        scale, zp = dynamic_qparams(a, variant="spec")
    if scale == 0:
        raise UnsupportedError(f"the range of x ({float(a.min())!r}, {float(a.max())!r}) makes y_scale underflow "
                               f"to 0 in float32, where the spec's zero point is 0/0")
    # Not make_qparams: the spec allows y_scale = inf (a range that overflows float32).
    qp = QParams(np.asarray(scale, np.float32), np.asarray(zp, np.int64), FORMATS["uint8"], qmin=0, qmax=255)
    with np.errstate(over="ignore", invalid="ignore"):
        y = quantize(a, qp, "onnx")
    return y, np.asarray(scale, np.float32), np.asarray(zp, np.uint8)


# The integer matmul / convolution ops, re-exported (refquant/backends/_onnx_ops.py does not import this module).
from ._onnx_ops import conv_integer, matmul_integer, qlinear_conv, qlinear_matmul  # noqa: E402
