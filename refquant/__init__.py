"""refquant: a readable, bit-exact NumPy reference for quantized neural-network inference.

The arithmetic core (this namespace) knows nothing of models:

* :mod:`refquant.dtypes` — integer formats and ranges,
* :mod:`refquant.rounding` — every rounding mode,
* :mod:`refquant.qparams` — scales and zero points, and the textbook rule that chooses them,
* :mod:`refquant.quantization` — quantize, dequantize, fake-quantize,
* :mod:`refquant.fixedpoint` / :mod:`refquant.fixedpoint_math` — gemmlowp/TFLite fixed-point
  primitives, with the offline multiplier choice in :mod:`refquant.fixedpoint_multiplier`,
* :mod:`refquant.specs`, :mod:`refquant.modes`, :mod:`refquant.profiles` — each backend's
  choices, by name.

This namespace holds what the textbook flow needs — choose parameters, quantize, dequantize,
fake-quantize, under a named profile::

    qp = refquant.choose_qparams(-1.0, 3.0, "uint8")          # textbook affine (S, Z)
    q = refquant.quantize(x, qp, "tflite_reference")           # that backend's arithmetic
    x_hat = refquant.dequantize(q, qp)

Each backend's own parameter formula is in its face (``refquant.backends.tflite.activation_qparams``,
``refquant.backends.onnxruntime.tool_qparams``, ``refquant.backends.pytorch.choose_qparams``);
the fixed-point and kernel functions are one import away
(``from refquant.fixedpoint import multiply_by_quantized_multiplier``), which keeps
``import refquant`` free of Numba. The pinned backend faces live in :mod:`refquant.backends`.

Changed in 0.1.0: the modules ``refquant.quantize`` and ``refquant.choose_qparams`` are now
:mod:`refquant.quantization` and :mod:`refquant.qparams` (the backend formulas moved to the faces),
so that ``refquant.quantize`` and ``refquant.choose_qparams`` name only the functions.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
from .dtypes import FORMATS, IntFormat, get_format, pack_int4, quant_range, unpack_int4
from .profiles import PROFILES, Profile, get_profile, list_profiles
from .qparams import QParams, choose_qparams, make_qparams
from .quantization import (
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
