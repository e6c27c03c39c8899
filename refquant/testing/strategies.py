"""Hypothesis strategies for fuzzing a kernel against refquant: parameters, tensors, geometries, models.

A downstream project draws quantization parameters valid for a profile, tensors rich in the values
where implementations disagree, convolution geometries with the awkward cases, or whole small
models, and compares its own kernel with the face op (or :meth:`QuantizedModel.run`) bit for bit::

    @given(qp=qparams("tflite_reference"), data=st.data())
    def test_my_quantize(qp, data):
        x = data.draw(tensors(qp, (4, 16)))
        assert_bit_exact(my_quantize(x, qp), tflite.quantize(x, qp.scale, qp.zero_point))

What the strategies favour (the ideas of the test suite's edge-value generator, gemmlowp's
``test_fixedpoint.cc``): scales with few significant bits ($m \\cdot 2^{-e}$), for which the exact tie
$x = (k + 1/2)\\,S$ exists in float32; values at the range ends and past them (saturation); the
zero point and its neighbours; float32 neighbours of ties. Needs the optional package hypothesis
(``pip install hypothesis``); ``import refquant.testing`` does not import this module.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError
from ..profiles import list_profiles
from ..qparams import QParams, make_qparams
from ._hypothesis import hnp, st
from .strategies_conv import ConvGeometry, conv_geometries
from .strategies_models import SmallModel, small_models

__all__ = ["scales", "qparams", "tensors", "ConvGeometry", "conv_geometries", "SmallModel", "small_models"]

_SPECIALS = (float("nan"), float("inf"), float("-inf"), 1e10, -1e10, -0.0)


def scales(*, lo_exp: int = -12, hi_exp: int = 2) -> st.SearchStrategy:
    """float32 scales in $[2^{lo\\_exp}, 2^{hi\\_exp+4}]$: half of them $m \\cdot 2^e$ with $m$ odd and < 16
    (exact ties are float32 values), half log-uniform (no special structure). Exponents in $[-120, 100]$."""
    lo_exp = V.as_int_scalar(lo_exp, "lo_exp", lo=-120, hi=100)
    hi_exp = V.as_int_scalar(hi_exp, "hi_exp", lo=lo_exp, hi=100)
    tie = st.builds(lambda m, e: float(np.float32(m * 2.0 ** e)), st.sampled_from([1, 3, 5, 7, 9, 11, 13, 15]),
                    st.integers(lo_exp, hi_exp))
    real = st.floats(float(lo_exp), float(hi_exp)).map(lambda e: float(np.float32(2.0 ** e)))
    return st.one_of(tie, real)


def _dtype_name(dtype) -> str:
    """A dtype's name from a name, a NumPy dtype or a NumPy type (anything else: a named error)."""
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise QuantizationTypeError(f"dtype must be a format name or a NumPy integer dtype, "
                                    f"got {V.describe(dtype)}") from None


def _kinds(profile: str):
    """(activation dtypes, weight range narrow?, activation zero-point qmax cap) for ``profile``'s tool."""
    from ..ptq.recipes import RECIPES

    r = RECIPES[profile]
    acts = ("int8", "int16") if r.name == "tflite" else ("uint8", "int8")
    return acts, r.name != "pytorch", 127 if r.activation_reduce_range else None


def qparams(profile, *, dtype=None, per_channel: bool = False, kind: str = "activation", channels=None,
            axis: int = 0) -> st.SearchStrategy:
    """Valid :class:`~refquant.qparams.QParams` for one tensor of a model run under ``profile``.

    Args:
        profile: A profile name (:func:`refquant.profiles.list_profiles`).
        dtype: The format; default the profile's tool's: activations int8 (TFLite) or uint8 (ONNX
            Runtime, PyTorch); weights int8. int16 activations (TFLite 16x8) have zero point 0.
        per_channel: Per-channel (``axis``) scales and zero points: a 1-D scale of ``channels`` entries.
        kind: ``"activation"`` (affine: any zero point in range; PyTorch fbgemm/x86 reduce the range
            to $[0, 127]$) or ``"weight"`` (symmetric, zero point 0; $[-127, 127]$ except PyTorch).
        channels: A strategy (or int) for the channel count; default 1 to 8.
        axis: The per-channel axis.
    """
    profile = V.as_choice(profile, "profile", tuple(list_profiles()))
    kind = V.as_choice(kind, "kind", ("activation", "weight"))
    V.as_flag(per_channel, "per_channel", ints=False)
    acts, narrow, reduced = _kinds(profile)
    allowed = acts if kind == "activation" else ("int8",)
    dtype = allowed[0] if dtype is None else V.as_choice(_dtype_name(dtype), "dtype", allowed)
    if channels is None:
        channels = st.integers(1, 8)
    elif not isinstance(channels, st.SearchStrategy):
        channels = st.just(V.as_positive_int(channels, "channels", maximum=4096))
    axis = V.as_int(axis, "axis")

    @st.composite
    def draw_qparams(draw) -> QParams:
        n = draw(channels) if per_channel else None
        shape = () if n is None else (n,)
        s = np.array([draw(scales(lo_exp=-12 if kind == "activation" else -14,
                                  hi_exp=0 if kind == "activation" else -4)) for _ in range(n or 1)],
                     np.float32).reshape(shape)
        if kind == "weight" or dtype == "int16":
            return make_qparams(s, np.zeros(shape, np.int64), dtype, axis=None if n is None else axis,
                                narrow=kind == "weight" and narrow)
        info = np.iinfo(dtype)
        hi = min(info.max, reduced) if reduced is not None and dtype == "uint8" else info.max
        edge = st.sampled_from(sorted(v for v in {int(info.min), int(info.min) + 1, 0 if info.min < 0 else 128, hi - 1,
                                                  hi} if v <= hi))
        z = np.array([draw(st.one_of(edge, st.integers(int(info.min), hi))) for _ in range(n or 1)],
                     np.int64).reshape(shape)
        return make_qparams(s, z, dtype, axis=None if n is None else axis)

    return draw_qparams()


def _broadcast(qp: QParams, v: np.ndarray, shape: tuple) -> np.ndarray:
    """A per-tensor or per-axis parameter broadcast to ``shape``."""
    if qp.axis is None or v.ndim == 0:
        return np.broadcast_to(v.reshape(()), shape)
    ax = V.normalize_axis(qp.axis, len(shape))
    if shape[ax] != v.size:
        raise ShapeError(f"shape must have {v.size} entries on axis {ax} for the per-channel qp, got {shape}")
    return np.broadcast_to(v.reshape([-1 if i == ax else 1 for i in range(len(shape))]), shape)


def tensors(qp: QParams, shape, *, codes: bool = False, specials: bool = False) -> st.SearchStrategy:
    """Arrays of ``shape`` (a tuple, or a strategy of tuples) for a tensor with parameters ``qp``.

    Float32 values (default) are $x = (c - Z)\\,S$ for codes $c$ drawn from: exact ties $k + 1/2$
    (the ones next to the zero point, $x = \\pm S/2$ and $\\pm 3S/2$, more often; with a float32
    neighbour now and then: $\\mathrm{floor}(v + 0.5)$ rounds $v = 0.49999997$ to 1), integers,
    the range ends $q_{min}$ and $q_{max}$, values past them (they saturate), and uniform values;
    with ``specials``, NaN, $\\pm\\infty$, $\\pm 10^{10}$ and $-0$ too. With ``codes``, integer codes of
    the format's dtype instead: the extremes, the zero point and its neighbours, and uniform codes.

    Raises:
        QuantizationTypeError: ``qp`` is not a :class:`~refquant.qparams.QParams`, or ``codes`` /
            ``specials`` is not a bool.
        QuantizationValueError: A fixed ``shape`` too large for this machine's memory.
        ShapeError: When an example is drawn: a per-channel ``qp`` whose axis does not fit ``shape``.
    """
    if not isinstance(qp, QParams):
        raise QuantizationTypeError(f"qp must be a QParams (refquant.make_qparams or qparams()), got {V.describe(qp)}")
    codes, specials = V.as_flag(codes, "codes", ints=False), V.as_flag(specials, "specials", ints=False)
    if isinstance(shape, st.SearchStrategy):
        shape_st = shape
    else:
        fixed = V.as_int_sequence(list(shape) if isinstance(shape, tuple) else shape, "shape", minimum=0)
        V.check_allocation(int(np.prod(fixed, dtype=object)), 8, "shape")
        shape_st = st.just(fixed)
    lo, hi = int(qp.qmin), int(qp.qmax)
    zs = sorted({int(z) for z in np.ravel(qp.zero_point)})
    near = sorted({min(max(z + d, lo), hi) for z in zs for d in (-1, 0, 1)})
    span = float(hi - lo)
    small_ties = sorted({z + d for z in zs for d in (-1.5, -0.5, 0.5, 1.5)})

    @st.composite
    def draw_tensor(draw) -> np.ndarray:
        shp = tuple(draw(shape_st))
        if codes:
            elems = st.one_of(st.sampled_from(sorted({lo, lo + 1, hi - 1, hi})), st.sampled_from(near),
                              st.integers(lo, hi))
            return draw(hnp.arrays(qp.fmt.dtype, shp, elements=elems))
        c = draw(hnp.arrays(np.float64, shp, elements=st.one_of(
            st.integers(lo - 2, hi + 1).map(lambda k: k + 0.5),          # exact ties
            st.sampled_from(small_ties),                                 # ties next to the zero point: ±0.5 S, ±1.5 S
            st.integers(lo, hi).map(float),                              # codes exactly
            st.sampled_from([float(lo), float(hi)] + [float(z) for z in zs]),   # ends and zero
            st.floats(lo, hi),                                           # uniform
            st.floats(1.0, 4.0 * span).map(lambda g: hi + g),            # past the top
            st.floats(1.0, 4.0 * span).map(lambda g: lo - g))))          # past the bottom
        s = _broadcast(qp, np.asarray(qp.scale, np.float64), shp)
        z = _broadcast(qp, np.asarray(qp.zero_point, np.float64), shp)
        x = ((c - z) * s).astype(np.float32)  # exact for the tie-friendly scales
        nudge = draw(hnp.arrays(np.int8, shp, elements=st.sampled_from([0, 0, 0, 0, -1, 1])))
        x = np.where(nudge > 0, np.nextafter(x, np.float32(np.inf)),
                     np.where(nudge < 0, np.nextafter(x, np.float32(-np.inf)), x))
        if specials:
            sp = draw(hnp.arrays(np.float32, shp, elements=st.sampled_from((0.0,) * 12 + _SPECIALS[:-1])))
            x = np.where(sp != 0, sp, x)
        return np.asarray(x, np.float32)

    return draw_tensor()

