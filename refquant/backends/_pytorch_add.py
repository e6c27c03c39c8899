r"""PyTorch ``quantized::add`` / ``quantized::add_relu`` (torch 2.13, x86-64): two kernels.

Re-exported by :mod:`refquant.backends.pytorch` as :func:`add`. Which kernel runs
(``BinaryOps.cpp::qadd``) is profile data (the ``add`` of each profile's pointwise spec):

* engine ``qnnpack`` with quint8 inputs of one shape: QNNPACK's fixed-point ``q8vadd``
  (:func:`qnnpack_add`, kernel ``pot_shift``: :mod:`refquant.kernels.elementwise_pot`);
* everything else (``fbgemm``, ``x86``; qnnpack with qint8, whose ``xnnp_add`` branch needs
  ``USE_XNNPACK``, absent from the 2.13 x86-64 CPU wheel's build flags, ``torch.__config__.show()``;
  measured): ATen's ``qadd_kernel`` in float32 (:func:`aten_add`, kernel ``float32_blocks``:
  :mod:`refquant.kernels.elementwise_blocks`).

**ATen** (``QuantizedOpKernels.cpp``, AVX2 build). ``cpu_kernel_vec`` runs the vector lambda on
blocks of $2 \times 32$ elements and the scalar lambda on the rest of each thread's range. With
$p = \mathrm{fl}(S \cdot (-Z))$ per input and $r = \mathrm{fl}(1/S_y)$:

$$ \text{vector: } c = \mathrm{fl}(\mathrm{fma}(S_a, a, p_a) + \mathrm{fma}(S_b, b, p_b)),\quad
   y = \mathrm{clamp}(\mathrm{wrap}_{32}(\mathrm{cvt}(\min(\mathrm{fl}(c\,r), 2^{31} - 128)) + Z_y)) $$
$$ \text{scalar: } c = \mathrm{fl}(\mathrm{fl}(S_a (a - Z_a)) + \mathrm{fl}(S_b (b - Z_b))),\quad
   y = \mathrm{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(c\,r) + Z_y))) $$

``cvt`` is ``cvtps2dq`` (RNE; below $-2^{31}$ INT32_MIN); ``relu`` takes $\max(c, 0)$ first. So
the vector lanes add $Z_y$ *after* rounding and the tail *before*: on ties the two differ.
For more than 32768 elements ``at::parallel_for`` splits the range into ``num_threads``
chunks of $\lceil n / T \rceil$ (at most $\lceil n / 32768 \rceil$ of them), each with its own tail:
pass ``torch.get_num_threads()`` as ``num_threads`` (default 1).

**QNNPACK** (``requantization.h::pytorch_qnnp_compute_add_quantization_params``, ``q8vadd/sse2.c``):
$\rho_a = \mathrm{fl}(S_a/S_y)$, $\rho_b$ likewise, each in $[2^{-14}, 2^{8})$ (else the operator
is not created); $e$ = exponent of $\max(\rho_a, \rho_b)$, ``shift`` $= 21 - e$,
$m = \mathrm{RNE}(\rho \cdot 2^{\text{shift}})$; then in int32

$$ y = \mathrm{clamp}\big(\mathrm{RDBPOT}(m_a (a - Z_a) + m_b (b - Z_b),\ \text{shift}) + Z_y,\ q_{lo}, 255\big) $$

(round half away from zero), $q_{lo} = Z_y$ with ``relu`` (an empty range $Z_y = 255$ is refused).

Both measured bit-exact (``tests/test_conformance_pytorch_ops.py``), with and without ReLU,
random, tie-heavy and saturating parameters, 1 to 200 elements, and 32769 and 100001 elements on
1 and 2 threads.

Added in 0.1.0.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..ops import pointwise
from ..profiles import get_profile
from ._pytorch_ops import ENGINE_PROFILES, _engine, _zero_point

__all__ = ["add", "aten_add", "qnnpack_add"]


def aten_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False,
             num_threads=1):
    """ATen ``qadd_kernel`` (module docstring): arguments as :func:`add`; returns ``a.dtype``."""
    a, b, (sa, za), (sb, zb), (sy, zy) = _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                               y_zero_point, relu)
    return pointwise.add(a, sa, za, b, sb, zb, sy, zy, profile="pytorch_fbgemm",
                         activation="RELU" if relu else None, num_threads=_threads(num_threads))


def qnnpack_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False):
    """QNNPACK ``q8vadd`` (module docstring): quint8 only; arguments as :func:`add`.

    Raises:
        UnsupportedError: a scale ratio outside $[2^{-14}, 2^8)$, a 0-d input, or ``relu``
            with $Z_y = 255$ (QNNPACK refuses to create the operator; torch raises).
    """
    a, b, (sa, za), (sb, zb), (sy, zy) = _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                               y_zero_point, relu)
    if a.dtype != np.uint8:
        raise QuantizationTypeError(f"qnnpack's add takes quint8 (uint8) inputs, got {a.dtype}")
    return _qnnpack(a, sa, za, b, sb, zb, sy, zy, relu)


def _qnnpack(a, sa, za, b, sb, zb, sy, zy, relu):
    if a.ndim == 0:
        raise UnsupportedError("qnnpack_add() needs inputs of rank >= 1 (torch: 'Got empty input tensor')")
    if relu and zy >= 255:  # activationLimits<uint8_t>(RELU) = (zero_point, 255)
        raise UnsupportedError(f"qnnpack's add needs output_min < output_max, got [{zy}, 255] (relu with "
                               f"y_zero_point = {zy})")
    try:
        return pointwise.add(a, sa, za, b, sb, zb, sy, zy, profile="pytorch_qnnpack",
                             activation="RELU" if relu else None)
    except UnsupportedError as err:
        raise UnsupportedError(f"qnnpack's add: {err}") from None


def add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, relu=False, engine="fbgemm",
        num_threads=1):
    """``torch.ops.quantized.add`` (``add_relu`` with ``relu=True``): quantized element-wise sum.

    $y \\approx \\mathrm{clamp}(\\mathrm{round}((S_a (a - Z_a) + S_b (b - Z_b)) / S_y) + Z_y)$, computed as
    the kernel the engine's profile names (module docstring: ATen float32 or QNNPACK fixed point).

    Args:
        a, b: uint8 (quint8) or int8 (qint8) arrays of one dtype and one shape.
        a_scale, b_scale, y_scale: positive floats (float32).
        a_zero_point, b_zero_point, y_zero_point: ints in the dtype's range.
        relu: fuse a ReLU (``quantized::add_relu``).
        engine: ``"fbgemm"``, ``"x86"`` or ``"qnnpack"``.
        num_threads: ATen's intra-op thread count (``torch.get_num_threads()``); it changes
            results only above 32768 elements, where each thread's range has its own tail.

    Returns:
        Array of ``a``'s dtype and shape.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad arguments (named).
        UnsupportedError: qnnpack refuses the scales or the output range (:func:`qnnpack_add`).
    """
    profile = ENGINE_PROFILES[_engine(engine)]
    threads = _threads(num_threads)
    a, b, (sa, za), (sb, zb), (sy, zy) = _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                                               y_zero_point, relu)
    if get_profile(profile).pointwise.add_kernel(a.dtype) == "pot_shift":
        return _qnnpack(a, sa, za, b, sb, zb, sy, zy, relu)
    return pointwise.add(a, sa, za, b, sb, zb, sy, zy, profile=profile, activation="RELU" if relu else None,
                         num_threads=threads)


def _threads(num_threads) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"num_threads must be an int, got {num_threads!r}")
    if num_threads < 1:
        raise QuantizationValueError(f"num_threads must be >= 1, got {num_threads}")
    return int(num_threads)


def _args(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, relu):
    a, b = (V.as_typed_array(v, n, (np.uint8, np.int8), array_only=True, labels="uint8 (quint8) or int8 (qint8)")
            for v, n in ((a, "a"), (b, "b")))
    if b.dtype != a.dtype:
        raise QuantizationTypeError(f"b must have a's dtype {a.dtype} (PyTorch adds one quantized type), got {b.dtype}")
    if a.shape != b.shape:
        raise ShapeError(f"b must have a's shape {a.shape} (refquant models same-shape add only), got {b.shape}")
    V.as_flag(relu, "relu", ints=False)
    params = [(V.as_scalar_scale(s, sn, max_ndim=1), int(_zero_point(z, a.dtype, zn)))
              for s, sn, z, zn in ((a_scale, "a_scale", a_zero_point, "a_zero_point"),
                                   (b_scale, "b_scale", b_zero_point, "b_zero_point"),
                                   (y_scale, "y_scale", y_zero_point, "y_zero_point"))]
    return (a, b, *params)
