"""refquant: a readable, bit-exact NumPy reference for quantized neural-network inference.

The arithmetic core (this namespace) knows nothing of models:

* :mod:`refquant.dtypes` — integer formats and ranges,
* :mod:`refquant.rounding` — every rounding mode,
* :mod:`refquant.qparams` / :mod:`refquant.choose_qparams` — scales and zero points,
* :mod:`refquant.quantize` — quantize, dequantize, fake-quantize,
* :mod:`refquant.fixedpoint` / :mod:`refquant.fixedpoint_math` — gemmlowp/TFLite fixed-point
  primitives, with the offline multiplier choice in :mod:`refquant.fixedpoint_multiplier`,
* :mod:`refquant.profiles` — each backend's choices, by name.

This namespace holds what the textbook flow needs — choose parameters, quantize, dequantize,
fake-quantize, under a named profile::

    qp = refquant.choose_qparams(-1.0, 3.0, "uint8")          # textbook affine (S, Z)
    q = refquant.quantize(x, qp, "tflite_reference")           # that backend's arithmetic
    x_hat = refquant.dequantize(q, qp)

Each backend's own parameter formula (``tflite_activation_qparams``, ``onnxruntime_qparams``,
...) is in :mod:`refquant.choose_qparams`; the fixed-point and kernel functions are one import
away (``from refquant.fixedpoint import multiply_by_quantized_multiplier``), which keeps
``import refquant`` free of Numba. Note that ``refquant.quantize`` and ``refquant.choose_qparams``
here are the *functions*; import their modules' other names with ``from refquant.quantize import ...``.
The pinned backend faces live in :mod:`refquant.backends`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
from .choose_qparams import choose_qparams
from .dtypes import FORMATS, IntFormat, get_format, pack_int4, quant_range, unpack_int4
from .profiles import PROFILES, Profile, get_profile, list_profiles
from .qparams import QParams, make_qparams
from .quantize import (
    DequantizeSpec,
    QuantizeSpec,
    dequantize,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_with_mask,
    quantize,
)
from .rounding import RoundingMode, round_by_mode

__all__ = [
    "__version__",
    "errors",
    "FORMATS",
    "IntFormat",
    "get_format",
    "quant_range",
    "pack_int4",
    "unpack_int4",
    "QParams",
    "make_qparams",
    "choose_qparams",
    "QuantizeSpec",
    "DequantizeSpec",
    "quantize",
    "dequantize",
    "fake_quantize",
    "fake_quantize_with_mask",
    "fake_quantize_backward",
    "RoundingMode",
    "round_by_mode",
    "Profile",
    "PROFILES",
    "get_profile",
    "list_profiles",
]
