"""refquant: a readable, bit-exact NumPy reference for quantized neural-network inference.

The arithmetic core (this namespace) knows nothing of models:

* :mod:`refquant.dtypes` — integer formats and ranges,
* :mod:`refquant.rounding` — every rounding mode,
* :mod:`refquant.qparams` / :mod:`refquant.choose_qparams` — scales and zero points,
* :mod:`refquant.quantize` — quantize, dequantize, fake-quantize,
* :mod:`refquant.fixedpoint` — gemmlowp/TFLite fixed-point primitives,
* :mod:`refquant.profiles` — each backend's choices, by name.

The pinned backend faces live in :mod:`refquant.backends`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
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
