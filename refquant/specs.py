"""Specifications: every step on which backends differ, as data.

A backend profile (:mod:`refquant.profiles`) is built from these records; the core functions
(:mod:`refquant.quantization`) and the ops layer (:mod:`refquant.ops`) read them. Nothing here
names a backend: a record says *what* the arithmetic does.

* :class:`QuantizeSpec` / :class:`DequantizeSpec` — float to codes and back, step by step.
* :class:`Case` / :class:`Cases` — which spec applies to which tensor (format, granularity,
  emptiness, rank, input dtype): backends run different kernels for, say, per-channel or
  16-bit tensors. The first case whose conditions all hold wins.
* :class:`SimdSplit` — a position-dependent kernel: elements in whole SIMD blocks (C order)
  take one spec, the remaining tail another.
* :class:`LayerSpec` — linear and convolution layers: accumulation, bias, multiplier,
  requantization, fused-activation bounds and the backend's limits.
* :class:`ConvDispatch` — convolutions a backend sends to another kernel library on some CPUs.
* :class:`PointwiseSpec` — the weight-free ops: add, pooling, softmax, sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as V
from .errors import QuantizationTypeError, QuantizationValueError
from .modes import (ACCUMULATIONS, ACTIVATION_BOUNDS, ADD_KERNELS, BIAS_MODES, CONV_GEOMETRIES, DERIVATIONS, ISAS,
                    DYNAMIC_INPUTS, DYNAMIC_OUTPUTS,
                    LOGISTIC_KERNELS, GLOBAL_POOL_KERNELS, MEAN_KERNELS, MUL_KERNELS, REQUANTIZE_KERNELS, POOL_BOUNDS_WHEN, REQUANT_MODES, SOFTMAX_KERNELS, TANH_KERNELS,
                    INT16_SIGMOID_KERNELS,
                    check_name)
from .qparams import QParams
from .rounding import as_rounding_mode

__all__ = ["QuantizeSpec", "DequantizeSpec", "Case", "Cases", "SimdSplit", "LayerSpec", "ConvDispatch", "PointwiseSpec",
           "select_spec"]

_CHOICES = {
    "division": ("divide", "multiply_reciprocal"),
    "reciprocal": ("same_precision", "double_then_float", "float32"),
    "zero_point": ("after_round", "before_round", "before_round_fma", "after_round_float"),
    "clamp": ("after_round", "before_round"),
    "nan": ("qmin", "qmax", "zero_point", "int_cast", "int_cast_truncate"),
    "overflow": ("saturate", "int_cast", "int64_cast"),
    "mask_compare": ("int", "float"),
    "denormals": ("keep", "flush"),
    "subnormal_scale": ("allow", "refuse"),
}
_PRECISIONS = ("float16", "float32", "float64", "input", "scale")


@dataclass(frozen=True)
class QuantizeSpec:
    """How one backend maps float to integer codes (see the module docstring).

    Attributes:
        division: ``"divide"`` ($x/S$) or ``"multiply_reciprocal"`` ($x \\cdot (1/S)$).
        precision: ``"float32"``, ``"float64"``, ``"input"`` (the input's float dtype) or
            ``"scale"`` (the scale's float dtype: ONNX QuantizeLinear divides in the type of
            ``y_scale``, float16 included).
        reciprocal: how $1/S$ is formed: ``"same_precision"`` (``1.0f / s``),
            ``"double_then_float"`` (``(float)(1.0 / (double)s)``) or ``"float32"``
            (``1.0f / s`` in float32 even when the product is in float64: PyTorch
            fake-quantize of a double tensor multiplies by a float ``inv_scale``).
        zero_point: ``"after_round"``, ``"before_round"`` (two float roundings),
            ``"before_round_fma"`` (``fma(x, inv, Z)``, one rounding) or
            ``"after_round_float"`` (``Z + round(v)`` added in the float precision, so
            rounded when $|Z + \\mathrm{round}(v)| > 2^{24}$ in float32: PyTorch
            fake-quantize, whose ``int64 + float`` is a float sum).
        rounding: a :class:`refquant.rounding.RoundingMode` value.
        clamp: ``"after_round"`` or ``"before_round"``.
        nan: where NaN goes: ``"qmin"``, ``"qmax"``, ``"zero_point"``,
            ``"int_cast"`` (C cast: INT32_MIN, plus Z with int32 wrap, then clamp) or
            ``"int_cast_truncate"`` (C ``(T)(double)NaN``: ``cvttsd2si`` gives INT32_MIN,
            truncated to the format's width: 0 for 8- and 16-bit, INT32_MIN for int32;
            PyTorch's scalar ``quantize_val``).
        overflow: ``"saturate"``, ``"int_cast"`` for $|v| \\ge 2^{31}$ and $\\pm\\infty$,
            or ``"int64_cast"`` (``static_cast<int64_t>``: $|v| \\ge 2^{63}$ and
            $\\pm\\infty$ become INT64_MIN, hence $q_{min}$; PyTorch per-channel fake-quantize).
        mask_compare: how :func:`fake_quantize_with_mask` tests $q_{min} \\le q_u \\le q_{max}$:
            ``"int"`` (exact) or ``"float"`` (the bounds rounded to the compute precision,
            as C++ ``quant_min <= qval_f`` does with a float ``qval_f``: in float32,
            ``2^31 <= float(2^31 - 1)`` is true).
        denormals: ``"keep"`` (IEEE subnormals) or ``"flush"``: subnormal operands of the
            scaling step count as zero and a subnormal result becomes zero (x86 MXCSR
            FTZ + DAZ, which XNNPACK's thread pool sets while its kernels run: with it,
            ``1e-39 / 1.2e-38`` quantizes to 0, not 1, and a scale above $2^{126}$ has a
            reciprocal of 0, so $\\pm\\infty \\cdot 0$ = NaN; measured on LiteRT 2.3.0).
        subnormal_scale: ``"allow"`` or ``"refuse"``: the backend rejects a subnormal float32
            scale (:class:`~refquant.errors.UnsupportedError`).
    """

    division: str = "divide"
    precision: str = "float32"
    reciprocal: str = "same_precision"
    zero_point: str = "after_round"
    rounding: str = "half_to_even"
    clamp: str = "after_round"
    nan: str = "qmin"
    overflow: str = "saturate"
    mask_compare: str = "int"
    denormals: str = "keep"
    subnormal_scale: str = "allow"

    def __post_init__(self):
        for field, allowed in _CHOICES.items():
            V.as_choice(getattr(self, field), field, allowed)
        V.as_choice(self.precision, "precision", _PRECISIONS)
        if self.zero_point == "after_round_float" and self.clamp == "before_round":
            raise QuantizationValueError("zero_point='after_round_float' needs clamp='after_round'")
        object.__setattr__(self, "rounding", as_rounding_mode(self.rounding).value)


@dataclass(frozen=True)
class DequantizeSpec:
    """How one backend maps codes back to float: $r = S (q - Z)$.

    Attributes:
        subtract: ``"int"`` (exact integer $q - Z$, then to float), ``"int32_wrap"``
            ($q - Z$ wrapped to int32 first), ``"float"`` (float(q) - float(Z) in the
            output precision) or ``"mul_then_sub"`` ($qS - ZS$, each product rounded).
        precision: output dtype, ``"float32"``, ``"float64"``, ``"float16"``, ``"input"`` (the
            float dtype of the input that was fake-quantized; float32 when there is none) or
            ``"scale"`` (the scale's float dtype: ONNX DequantizeLinear's output type).
        scale_precision: ``None`` (multiply in ``precision``) or ``"float64"``: the
            difference is converted to float64, multiplied by the float64 scale and the
            product rounded once to ``precision`` (PyTorch per-channel dequantize, whose
            scales are a float64 tensor, and per-channel fake-quantize's ``double`` math).
        subnormal_scale: ``"allow"`` or ``"refuse"`` (as in :class:`QuantizeSpec`).
    """

    subtract: str = "int"
    precision: str = "float32"
    scale_precision: str | None = None
    subnormal_scale: str = "allow"

    def __post_init__(self):
        V.as_choice(self.subtract, "subtract", ("int", "int32_wrap", "float", "mul_then_sub"))
        V.as_choice(self.precision, "precision", _PRECISIONS)
        V.as_choice(self.subnormal_scale, "subnormal_scale", _CHOICES["subnormal_scale"])
        V.as_choice(self.scale_precision, "scale_precision", (None, "float64"))


GRANULARITIES = ("per_tensor", "per_axis", "per_block")
# operand dtypes -> the pair-saturation accumulation model that sums their products
_PAIRS = {("uint8", "int8"): "pairwise_sat16_u8s8", ("int8", "uint8"): "pairwise_sat16_s8u8"}


@dataclass(frozen=True)
class SimdSplit:
    """A position-dependent kernel: whole blocks of ``block`` elements (C order) use ``body``,
    the last ``n % block`` elements use ``tail`` (a vector loop, then its scalar remainder).

    Attributes:
        block: Elements per SIMD block (>= 1).
        body: The spec of the elements ``0 .. block * floor(n / block) - 1``.
        tail: The spec of the remaining elements.
    """

    block: int
    body: object
    tail: object

    def __post_init__(self):
        V.as_positive_int(self.block, "block")
        for name in ("body", "tail"):
            _check_spec(getattr(self, name), name, (QuantizeSpec, DequantizeSpec))


@dataclass(frozen=True)
class Case:
    """``spec`` applies to a tensor when every condition that is set holds.

    Attributes:
        spec: A :class:`QuantizeSpec`, :class:`DequantizeSpec` or :class:`SimdSplit`.
        formats: Format names (``"int8"``, ``"uint8"``, ...) the case covers; ``None``: any.
        granularity: ``"per_tensor"``, ``"per_axis"`` or ``"per_block"``; ``None``: any.
        nonempty: Only tensors with at least one element.
        max_rank: Only tensors of at most this rank.
        input_dtypes: Float input dtype names (``"float64"``, ...); ``None``: any.
    """

    spec: object
    formats: tuple | None = None
    granularity: str | None = None
    nonempty: bool = False
    max_rank: int | None = None
    input_dtypes: tuple | None = None

    def __post_init__(self):
        _check_spec(self.spec, "spec", (QuantizeSpec, DequantizeSpec, SimdSplit))
        for name in ("formats", "input_dtypes"):
            v = getattr(self, name)
            if v is not None and not all(isinstance(n, str) for n in V.as_tuple(v, name, "names")):
                raise QuantizationTypeError(f"{name} must be None or a tuple of names, got {V.describe(v)}")
        if self.granularity is not None:
            check_name(self.granularity, "granularity", GRANULARITIES)
        V.as_flag(self.nonempty, "nonempty")
        if self.max_rank is not None:
            V.as_int_scalar(self.max_rank, "max_rank", lo=0)

    def matches(self, fmt_name: str, granularity: str, shape: tuple, input_dtype) -> bool:
        """Whether this case covers a tensor of that format, granularity, shape and input dtype."""
        return ((self.formats is None or fmt_name in self.formats)
                and (self.granularity is None or granularity == self.granularity)
                and (not self.nonempty or int(np.prod(shape)) > 0)
                and (self.max_rank is None or len(shape) <= self.max_rank)
                and (self.input_dtypes is None or (input_dtype is not None
                                                   and np.dtype(input_dtype).name in self.input_dtypes)))


@dataclass(frozen=True)
class Cases:
    """An ordered list of :class:`Case`; the first that matches gives the spec, else ``default``."""

    cases: tuple
    default: object

    def __post_init__(self):
        if not all(isinstance(c, Case) for c in V.as_tuple(self.cases, "cases", "Case")):
            raise QuantizationTypeError(f"cases must be a tuple of Case, got {V.describe(self.cases)}")
        _check_spec(self.default, "default", (QuantizeSpec, DequantizeSpec, SimdSplit))


def _check_spec(v, name: str, types) -> None:
    if not isinstance(v, types):
        raise QuantizationTypeError(f"{name} must be a {' or '.join(t.__name__ for t in types)}, got {V.describe(v)}")


def select_spec(entry, qparams, shape, input_dtype=None):
    """The spec of ``entry`` (a spec, :class:`SimdSplit` or :class:`Cases`) for one tensor.

    Args:
        entry: What a profile holds for a step.
        qparams: The tensor's :class:`~refquant.qparams.QParams` (its format and granularity).
        shape: The tensor's shape.
        input_dtype: The float input's dtype (quantize, fake-quantize), or ``None``.

    Returns:
        A :class:`QuantizeSpec`, :class:`DequantizeSpec` or :class:`SimdSplit`.
    """
    _check_spec(entry, "entry", (QuantizeSpec, DequantizeSpec, SimdSplit, Cases))
    if not isinstance(qparams, QParams):
        raise QuantizationTypeError(f"qparams must be a refquant.QParams, got {V.describe(qparams)}")
    shape = V.as_int_sequence(shape, "shape", minimum=0)
    if input_dtype is not None:
        try:
            input_dtype = np.dtype(input_dtype)
        except TypeError:
            raise QuantizationTypeError(f"input_dtype must be None or a NumPy dtype, got {V.describe(input_dtype)}") \
                from None
    if not isinstance(entry, Cases):
        return entry
    granularity = ("per_tensor" if qparams.axis is None
                   else "per_block" if qparams.block_size else "per_axis")
    for case in entry.cases:
        if case.matches(qparams.fmt.name, granularity, tuple(shape), input_dtype):
            return case.spec
    return entry.default


@dataclass(frozen=True)
class LayerSpec:
    """How one backend computes a quantized linear or convolution layer.

    $y_c = \\mathrm{clamp}(\\mathrm{requant}(\\mathrm{acc}_c + \\mathrm{bias}_c, M_c) + Z_y, lo, hi)$, where
    each step is a field:

    Attributes:
        requant: A key of :data:`refquant.modes.REQUANT_MODES`.
        multiplier: A :data:`refquant.modes.DERIVATIONS` name for $M_c = S_x S_w[c] / S_y$.
        multiplier_per_tensor: Another derivation used when the weights are per-tensor
            (``None``: the same as ``multiplier``).
        single_rounding: Quantize fixed-point multipliers for single-rounding builds.
        bias: A :data:`refquant.modes.BIAS_MODES` name.
        bias_reciprocal_per_tensor: With a float bias, per-tensor weights divide the bias by
            multiplying with the float32 reciprocal of $S_x S_w$ (per-channel: a true division).
        accumulation: A :data:`refquant.modes.ACCUMULATIONS` name (u8×s8 products on an ISA
            outside ``pair_saturation_isas``, and every other operand pair).
        pair_saturation_isas: ISA classes (:data:`refquant.modes.ISAS`) on which the products
            of ``pair_operands`` are summed in saturating int16 pairs (x86 ``vpmaddubsw``).
        pair_operands: The (activation dtype, weight dtype) name pairs that take that path:
            ``("uint8", "int8")`` and/or ``("int8", "uint8")``.
        activation_bounds: A :data:`refquant.modes.ACTIVATION_BOUNDS` name.
        tail_block: Output channels come in vector blocks of this many; the last
            ``O % tail_block`` channels use ``tail_requant`` (0: no split).
        tail_requant: The requantization mode of those tail channels.
        max_requant_scale: The backend refuses a float32 $\\mathrm{fl}(\\mathrm{fl}(S_x S_w)/S_y)$ at or
            above this (``None``: no limit).
        require_normal_multiplier: The backend refuses a multiplier that is not a positive
            normal float32.
        overflow_to_zero: ``float32_rne``: a product $|\\mathrm{acc}\\cdot M| \\ge 2^{31}$ converts to
            INT32_MIN (x86 ``cvtps2dq``), which the int16/uint8 packing then saturates to 0.
        dynamic_output: Dynamic quantization (float out), a :data:`refquant.modes.DYNAMIC_OUTPUTS`
            name: $y = \\mathrm{fma}(\\mathrm{fl}(\\mathrm{acc}), \\mathrm{fl}(S_x S_w[c]), b_c)$ (``"fma"``, one
            rounding), the product and the sum rounded separately (``"mul_then_add"``), or
            $\\mathrm{fma}(\\mathrm{fl}(\\mathrm{acc} \\cdot S_x), S_w[c], b_c)$ (``"scale_then_fma"``).
        dynamic_input: Dynamic quantization: how the float input becomes codes at run time and
            how they are accumulated, a :data:`refquant.modes.DYNAMIC_INPUTS` name
            (:mod:`refquant.ops.dynamic`); ``None``: the backend has no dynamic kernel refquant models.
        dynamic_reduce_range: Dynamic quantization honours ``reduce_range`` (activations in
            $[0, 127]$); ``False``: the backend ignores it.
        k_order: The order of a convolution's reduction index in the pair-saturation model
            (``"chw"``: channel-major, as an NCHW im2col; ``"hwc"``: channel-minor, as an NHWC
            im2col). It only changes results where pairs saturate.
    """

    requant: str = "exact_rne"
    multiplier: str = "exact"
    multiplier_per_tensor: str | None = None
    single_rounding: bool = False
    bias: str = "int32"
    bias_reciprocal_per_tensor: bool = False
    accumulation: str = "exact_int32"
    pair_saturation_isas: tuple = ()
    pair_operands: tuple = (("uint8", "int8"),)
    activation_bounds: str = "round_then_add_zero_point"
    tail_block: int = 0
    tail_requant: str | None = None
    max_requant_scale: float | None = None
    require_normal_multiplier: bool = False
    overflow_to_zero: bool = False
    dynamic_output: str = "fma"
    dynamic_input: str | None = None
    dynamic_reduce_range: bool = True
    k_order: str = "chw"

    def __post_init__(self):
        check_name(self.requant, "requant", REQUANT_MODES)
        check_name(self.multiplier, "multiplier", DERIVATIONS)
        if self.multiplier_per_tensor is not None:
            check_name(self.multiplier_per_tensor, "multiplier_per_tensor", DERIVATIONS)
        check_name(self.bias, "bias", BIAS_MODES)
        check_name(self.accumulation, "accumulation", ACCUMULATIONS)
        for isa in V.as_tuple(self.pair_saturation_isas, "pair_saturation_isas", "ISA names"):
            check_name(isa, "pair_saturation_isas", ISAS)
        for pair in V.as_tuple(self.pair_operands, "pair_operands", "(activation dtype, weight dtype) pairs",
                               item_len=2):
            check_name(pair, "pair_operands", _PAIRS)
        check_name(self.activation_bounds, "activation_bounds", ACTIVATION_BOUNDS)
        check_name(self.dynamic_output, "dynamic_output", DYNAMIC_OUTPUTS)
        if self.dynamic_input is not None:
            check_name(self.dynamic_input, "dynamic_input", DYNAMIC_INPUTS)
        check_name(self.k_order, "k_order", ("chw", "hwc"))
        for name in ("single_rounding", "bias_reciprocal_per_tensor", "require_normal_multiplier",
                     "overflow_to_zero", "dynamic_reduce_range"):
            V.as_flag(getattr(self, name), name)
        if V.as_int_scalar(self.tail_block, "tail_block", lo=0):
            check_name(self.tail_requant, "tail_requant", REQUANT_MODES)
        if self.max_requant_scale is not None and not V.as_real_scalar(self.max_requant_scale,
                                                                       "max_requant_scale") > 0:
            raise QuantizationValueError(f"max_requant_scale must be None or > 0, got {self.max_requant_scale!r}")

    def derivation(self, per_channel: bool) -> str:
        """The multiplier derivation for per-channel or per-tensor weights."""
        if per_channel or self.multiplier_per_tensor is None:
            return self.multiplier
        return self.multiplier_per_tensor

    def accumulation_for(self, isa: str, x_dtype, w_dtype) -> str:
        """The accumulation model on ISA class ``isa`` for activations and weights of these dtypes."""
        pair = (np.dtype(x_dtype).name, np.dtype(w_dtype).name)
        if isa in self.pair_saturation_isas and pair in self.pair_operands:
            return _PAIRS[pair]
        return self.accumulation


@dataclass(frozen=True)
class ConvDispatch:
    """Convolutions a backend sends to another kernel on some CPUs, and how that kernel computes.

    The rule applies when the profile's ISA class is in ``isas``, the convolution has at most
    ``max_groups`` groups and, with ``symmetric_weights``, every weight zero point is 0.

    Attributes:
        spec: The :class:`LayerSpec` of that kernel.
        isas: ISA classes (:data:`refquant.modes.ISAS`) on which the rule applies.
        max_groups: The largest group count the other kernel takes.
        symmetric_weights: Only weights whose zero points are all 0.
        refused: :data:`refquant.modes.CONV_GEOMETRIES` on which that kernel's results are not
            reproducible (they change from run to run, or the process crashes): refused with
            :class:`~refquant.errors.UnsupportedError`.
        zero_accumulator: Geometries on which that kernel (measured, deterministic) returns the
            output of a zero accumulator: the bias alone, requantized.
    """

    spec: LayerSpec
    isas: tuple
    max_groups: int
    symmetric_weights: bool = True
    refused: tuple = ()
    zero_accumulator: tuple = ()

    def __post_init__(self):
        if not isinstance(self.spec, LayerSpec):
            raise QuantizationValueError(f"spec must be a LayerSpec, got {type(self.spec).__name__}")
        for isa in V.as_tuple(self.isas, "isas", "ISA names"):
            check_name(isa, "isas", ISAS)
        V.as_positive_int(self.max_groups, "max_groups")
        V.as_flag(self.symmetric_weights, "symmetric_weights")
        for name in ("refused", "zero_accumulator"):
            for g in V.as_tuple(getattr(self, name), name, "geometry names"):
                check_name(g, name, CONV_GEOMETRIES)

    def applies(self, isa: str, groups: int, w_zero_point) -> bool:
        """Whether a convolution with these groups and weight zero points runs this kernel on ``isa``."""
        return (isa in self.isas and groups <= self.max_groups
                and (not self.symmetric_weights or not np.any(np.asarray(w_zero_point))))


@dataclass(frozen=True)
class PointwiseSpec:
    """How one backend computes the weight-free quantized ops.

    Attributes:
        add: ``(dtype name, kernel)`` pairs: the :data:`refquant.modes.ADD_KERNELS` name of the
            add for each operand dtype (``"int8"``, ``"uint8"``, ``"int16"``).
        add_max_rank: The highest rank the ``rescale`` kernel takes (``None``: any).
        mul: ``(dtype name, kernel)`` pairs: the :data:`refquant.modes.MUL_KERNELS` name of the
            element-wise multiply for each operand dtype.
        activation_bounds: How a fused activation's float range becomes integer bounds
            (:data:`refquant.modes.ACTIVATION_BOUNDS`), for add and pooling.
        average_pool: Whether this spec's kernels take average pooling (else the fallback's do).
        max_pool_when: When this spec's kernels take a max pool
            (:data:`refquant.modes.POOL_BOUNDS_WHEN`); otherwise the fallback's bounds apply.
        softmax: A :data:`refquant.modes.SOFTMAX_KERNELS` name.
        logistic: A :data:`refquant.modes.LOGISTIC_KERNELS` name.
        tanh: A :data:`refquant.modes.TANH_KERNELS` name.
        int16_sigmoid: A :data:`refquant.modes.INT16_SIGMOID_KERNELS` name: int16 (16x8)
            LOGISTIC and TANH. (int16 SOFTMAX is one kernel everywhere: no field.)
        global_average_pool: A :data:`refquant.modes.GLOBAL_POOL_KERNELS` name.
        pool_dtypes: The code dtypes (names) this spec's pooling and global average pool take;
            another dtype goes to the fallback, or is refused.
        mean: ``(dtype name, kernel)`` pairs: the :data:`refquant.modes.MEAN_KERNELS` name of
            a MEAN for each dtype (``()``: no MEAN; an unlisted dtype goes to the fallback).
        requantize: ``(input dtype, output dtype, kernel)`` triples: the
            :data:`refquant.modes.REQUANTIZE_KERNELS` name that rescales codes between those
            dtypes (``shift8`` also needs a scale ratio in $[2^{-8}, 128]$, else the fallback runs).
        fallback: The spec of the kernels that run what this one declines: a dtype ``add`` does
            not list, scales or ranks ``rescale`` refuses, a max pool outside ``max_pool_when``
            (a delegate hands such nodes back to the builtin kernels). ``None``: refused.
    """

    add: tuple = (("int8", "fixed_point_shift20"), ("uint8", "fixed_point_shift20"))
    add_max_rank: int | None = None
    mul: tuple = (("int8", "fixed_point"), ("uint8", "fixed_point"))
    activation_bounds: str = "round_then_add_zero_point"
    average_pool: bool = True
    max_pool_when: str = "always"
    softmax: str = "fixed_point"
    logistic: str = "float_table_rhaz"
    tanh: str = "float_table_rhaz"
    int16_sigmoid: str = "table_interpolation"
    global_average_pool: str = "mean_fixed_point"
    pool_dtypes: tuple = ("int8", "uint8")
    mean: tuple = ()
    requantize: tuple = ()
    fallback: "PointwiseSpec | None" = None

    def __post_init__(self):
        for dtype, kernel in V.as_tuple(self.add, "add", "(dtype, kernel) pairs", item_len=2):
            check_name(dtype, "add dtype", ("int8", "uint8", "int16"))
            check_name(kernel, "add", ADD_KERNELS)
        for dtype, kernel in V.as_tuple(self.mul, "mul", "(dtype, kernel) pairs", item_len=2):
            check_name(dtype, "mul dtype", ("int8", "uint8", "int16"))
            check_name(kernel, "mul", MUL_KERNELS)
        if self.add_max_rank is not None:
            V.as_int_scalar(self.add_max_rank, "add_max_rank", lo=0)
        for dtype in V.as_tuple(self.pool_dtypes, "pool_dtypes", "dtype names"):
            check_name(dtype, "pool_dtypes item", ("int8", "uint8", "int16"))
        for dtype, kernel in V.as_tuple(self.mean, "mean", "(dtype, kernel) pairs", item_len=2):
            check_name(dtype, "mean dtype", ("int8", "uint8", "int16"))
            check_name(kernel, "mean", MEAN_KERNELS)
        for x_dtype, y_dtype, kernel in V.as_tuple(self.requantize, "requantize", "(dtype, dtype, kernel) triples",
                                                   item_len=3):
            check_name(x_dtype, "requantize input dtype", ("int8", "uint8", "int16"))
            check_name(y_dtype, "requantize output dtype", ("int8", "uint8", "int16"))
            check_name(kernel, "requantize", REQUANTIZE_KERNELS)
        V.as_flag(self.average_pool, "average_pool")
        check_name(self.tanh, "tanh", TANH_KERNELS)
        check_name(self.int16_sigmoid, "int16_sigmoid", INT16_SIGMOID_KERNELS)
        check_name(self.activation_bounds, "activation_bounds", ACTIVATION_BOUNDS)
        check_name(self.max_pool_when, "max_pool_when", POOL_BOUNDS_WHEN)
        check_name(self.softmax, "softmax", SOFTMAX_KERNELS)
        check_name(self.logistic, "logistic", LOGISTIC_KERNELS)
        check_name(self.global_average_pool, "global_average_pool", GLOBAL_POOL_KERNELS)
        if self.fallback is not None and not isinstance(self.fallback, PointwiseSpec):
            raise QuantizationValueError(f"fallback must be a PointwiseSpec or None, got {type(self.fallback).__name__}")

    def add_kernel(self, dtype) -> str | None:
        """This spec's add kernel for operands of ``dtype`` (``None``: not listed)."""
        return dict(self.add).get(np.dtype(dtype).name)
