"""Integer formats: names, bit widths, ranges, and 4-/2-bit packing.

A quantized tensor holds integers of one *format*: ``int8`` holds $q \\in [-128, 127]$,
``uint4`` holds $q \\in [0, 15]$. refquant keeps sub-byte values unpacked in the
smallest NumPy integer dtype that holds them (``int4`` in ``np.int8``, ``uint4`` in
``np.uint8``) and packs them two per byte only on request (:func:`pack_int4`), the
way ONNX stores them: first element in the low nibble.

Three range variants exist besides the full range (see the Conventions page):

* **narrow**: drop the lowest code, $[q_{min}+1, q_{max}]$; TFLite int8 weights
  are $[-127, 127]$.
* **reduced** (``reduce_range``): 7-bit ranges that keep the AVX2 ``vpmaddubsw``
  int16 pair sums from saturating: both ends halved with floor division,
  $[\\lfloor q_{min}/2 \\rfloor, \\lfloor q_{max}/2 \\rfloor]$ (int8 $[-64, 63]$, uint8 $[0, 127]$),
  as PyTorch's observers do (``torch/ao/quantization/utils.py``). ONNX Runtime's quantization
  tool reads its own table instead (int8 $[-64, 64]$):
  :func:`refquant.backends.onnxruntime.reduced_range`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import QuantizationTypeError, QuantizationValueError

__all__ = [
    "IntFormat",
    "FORMATS",
    "INT32_MIN",
    "INT32_MAX",
    "wrap_int32",
    "get_format",
    "quant_range",
    "pack_int4",
    "unpack_int4",
    "pack_int2",
    "unpack_int2",
]


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _flag(v, name: str) -> bool:
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and int(v) in (0, 1)):
        return bool(v)
    raise QuantizationTypeError(f"{name} must be a bool, got {_short(v)}")


@dataclass(frozen=True)
class IntFormat:
    """An integer format.

    Attributes:
        name: Canonical name, e.g. ``"int8"``.
        bits: Bit width (2, 4, 8, 16 or 32).
        signed: Two's complement if True.
        qmin: Smallest code, $-2^{b-1}$ or 0.
        qmax: Largest code, $2^{b-1}-1$ or $2^b-1$.
        dtype: NumPy dtype that holds one unpacked value.
    """

    name: str
    bits: int
    signed: bool
    qmin: int
    qmax: int
    dtype: np.dtype

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise QuantizationTypeError(f"name must be a str, got {_short(self.name)}")
        for field in ("bits", "qmin", "qmax"):
            v = getattr(self, field)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise QuantizationTypeError(f"{field} must be an integer, got {_short(v)}")
        if not 1 <= self.bits <= 64:
            raise QuantizationValueError(f"bits must be in [1, 64], got {self.bits}")
        signed = _flag(self.signed, "signed")
        lo, hi = (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if signed else (0, (1 << self.bits) - 1)
        if (self.qmin, self.qmax) != (lo, hi):
            raise QuantizationValueError(
                f"qmin, qmax must be the range of {self.bits} bits with signed={signed}, [{lo}, {hi}], "
                f"got [{self.qmin}, {self.qmax}]")
        try:
            dt = np.dtype(self.dtype)
        except (TypeError, ValueError, SyntaxError):
            dt = None
        if dt is None or dt.kind not in "iu" or not (np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max):
            raise QuantizationTypeError(f"dtype must be a NumPy integer dtype holding [{lo}, {hi}], "
                                        f"got {_short(self.dtype)}")
        for field, v in (("bits", int(self.bits)), ("signed", signed), ("qmin", int(self.qmin)),
                         ("qmax", int(self.qmax)), ("dtype", dt.newbyteorder("="))):
            object.__setattr__(self, field, v)

    @property
    def packed(self) -> bool:
        """True for sub-byte formats that ONNX stores several to a byte."""
        return self.bits < 8

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.name


def _make(name: str, bits: int, signed: bool, dtype) -> IntFormat:
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return IntFormat(name, bits, signed, lo, hi, np.dtype(dtype))


FORMATS: dict[str, IntFormat] = {
    f.name: f
    for f in (
        _make("int2", 2, True, np.int8),
        _make("uint2", 2, False, np.uint8),
        _make("int4", 4, True, np.int8),
        _make("uint4", 4, False, np.uint8),
        _make("int8", 8, True, np.int8),
        _make("uint8", 8, False, np.uint8),
        _make("int16", 16, True, np.int16),
        _make("uint16", 16, False, np.uint16),
        _make("int32", 32, True, np.int32),
    )
}

# The int32 accumulator range, used by the fixed-point primitives and the integer kernels.
INT32_MIN: int = FORMATS["int32"].qmin  # -2^31
INT32_MAX: int = FORMATS["int32"].qmax  # 2^31 - 1

_ALIASES = {
    "qint8": "int8",
    "quint8": "uint8",
    "qint32": "int32",
    "s8": "int8",
    "u8": "uint8",
    "s16": "int16",
    "u16": "uint16",
    "s4": "int4",
    "u4": "uint4",
}

_BY_DTYPE = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8",
             np.dtype(np.int16): "int16", np.dtype(np.uint16): "uint16",
             np.dtype(np.int32): "int32"}


def get_format(fmt, *, name: str = "dtype") -> IntFormat:
    """Return the :class:`IntFormat` for a name, a NumPy dtype or a format.

    Args:
        fmt: ``"int8"``, ``"uint4"``, ``"quint8"`` (PyTorch alias), ``np.int8``,
            ``np.dtype("uint8")`` or an :class:`IntFormat`.
        name: Argument name used in error messages.

    Raises:
        QuantizationValueError: Unknown name or a dtype with no integer format.
    """
    if isinstance(fmt, IntFormat):
        return fmt
    if not isinstance(name, str):
        raise QuantizationTypeError(f"name must be a string (the argument name for messages), got {name!r}")
    if isinstance(fmt, str):
        key = _ALIASES.get(fmt.lower(), fmt.lower())
        if key in FORMATS:
            return FORMATS[key]
        raise QuantizationValueError(
            f"{name} must be one of {sorted(FORMATS) + sorted(_ALIASES)}, got {fmt!r}")
    try:
        if fmt is None:  # np.dtype(None) is float64, which would give a misleading message
            raise TypeError
        dt = np.dtype(fmt)
    except (TypeError, ValueError, SyntaxError):  # np.dtype parses some objects (dicts, lists) as specs
        raise QuantizationTypeError(
            f"{name} must be a format name, a NumPy integer dtype or an IntFormat, "
            f"got {type(fmt).__name__} {_short(fmt)}") from None
    if not dt.isnative:  # a byte-swapped integer dtype names the same format
        dt = dt.newbyteorder("=")
    if dt in _BY_DTYPE:
        return FORMATS[_BY_DTYPE[dt]]
    raise QuantizationValueError(
        f"{name} must be an integer format ({', '.join(FORMATS)}), got dtype {dt}")


def _integers(values, name: str) -> np.ndarray:
    """``values`` as a native-byte-order integer ndarray (named errors for anything else)."""
    try:
        v = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        raise QuantizationTypeError(f"{name} must be an integer array, got {_short(values)}") from None
    if v.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer array, got dtype {v.dtype}")
    return v if v.dtype.isnative else v.astype(v.dtype.newbyteorder("="))


def wrap_int32(v):
    """Two's-complement wrap to int32, as a C ``(int32_t)`` cast or an int32 addition does in practice.

    $$ \\mathrm{wrap}_{32}(v) = ((v + 2^{31}) \\bmod 2^{32}) - 2^{31} \\in [-2^{31}, 2^{31}) $$

    Args:
        v: A Python int (any size), a NumPy integer, or an integer array (any integer dtype).

    Returns:
        A Python int for a Python int, else int64 (scalar or array of ``v``'s shape), every
        value in the int32 range. The Numba scalar twin is ``refquant.fixedpoint._wrap32_scalar``.
    """
    if isinstance(v, int) and not isinstance(v, bool):
        return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    scalar = isinstance(v, np.integer)
    a = _integers(v, "v")
    if a.dtype.kind == "b" or isinstance(v, (bool, np.bool_)):  # pragma: no cover - rejected by _integers
        raise QuantizationTypeError(f"v must be an integer or integer array, got {_short(v)}")
    low = (a.astype(np.uint64 if a.dtype.kind == "u" else np.int64) & 0xFFFFFFFF).astype(np.int64)  # low 32 bits
    out = ((low + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return out[()] if scalar else out


def quant_range(fmt, *, narrow: bool = False, reduce_range=None) -> tuple[int, int]:
    """Return ``(qmin, qmax)`` of a format under a range variant.

    Args:
        fmt: Anything :func:`get_format` accepts.
        narrow: Drop the lowest code: $[q_{min}+1, q_{max}]$ (TFLite int8 weights,
            ORT symmetric int8).
        reduce_range: ``None``/``False`` (full) or ``True`` (both ends halved with floor
            division, ``qmin // 2, qmax // 2``).

    Returns:
        Two Python ints.

    Raises:
        QuantizationValueError: Unknown format or reduce_range, or narrow and
            reduce_range both requested.
    """
    f = get_format(fmt, name="fmt")
    lo, hi = f.qmin, f.qmax
    narrow = _flag(narrow, "narrow")
    if reduce_range is not None:
        reduce_range = _flag(reduce_range, "reduce_range")
    if reduce_range and narrow:
        raise QuantizationValueError("narrow and reduce_range cannot both be set")
    if reduce_range:
        lo, hi = lo // 2, hi // 2
    if narrow:
        lo += 1
    return int(lo), int(hi)


def _pack(values, fmt_name: str, per_byte: int) -> np.ndarray:
    f = FORMATS[fmt_name]
    v = _integers(values, "values")
    if v.size and (int(v.min()) < f.qmin or int(v.max()) > f.qmax):  # exact for uint64 too
        bad = next(x for x in v.reshape(-1).tolist() if not f.qmin <= x <= f.qmax)
        raise QuantizationValueError(
            f"values must be in [{f.qmin}, {f.qmax}] for {f.name}, got {bad}")
    flat = v.reshape(-1).astype(np.int64)
    pad = (-flat.size) % per_byte
    flat = np.concatenate([flat, np.zeros(pad, np.int64)]).reshape(-1, per_byte)
    mask = (1 << f.bits) - 1
    out = np.zeros(flat.shape[0], np.int64)
    for i in range(per_byte):  # element i goes to bits [i*b, (i+1)*b): first element lowest
        out |= (flat[:, i] & mask) << (i * f.bits)
    return out.astype(np.uint8)


def _unpack(packed, count: int, fmt_name: str, per_byte: int) -> np.ndarray:
    f = FORMATS[fmt_name]
    p = _integers(packed, "packed")
    if p.dtype != np.uint8:
        raise QuantizationTypeError(f"packed must be a uint8 array, got dtype {p.dtype}")
    if isinstance(count, (bool, np.bool_)) or not isinstance(count, (int, np.integer)):
        raise QuantizationTypeError(f"count must be an integer, got {_short(count)}")
    count = int(count)
    if count < 0 or count > p.size * per_byte:
        raise QuantizationValueError(
            f"count must be in [0, {p.size * per_byte}] for {p.size} packed bytes, got {count}")
    b = p.reshape(-1).astype(np.int64)
    mask = (1 << f.bits) - 1
    vals = np.stack([(b >> (i * f.bits)) & mask for i in range(per_byte)], axis=1).reshape(-1)[:count]
    if f.signed:  # sign-extend
        vals = np.where(vals > f.qmax, vals - (1 << f.bits), vals)
    return vals.astype(f.dtype)


def pack_int4(values, *, signed: bool | None = None) -> np.ndarray:
    """Pack 4-bit values two per byte, the first element in the low nibble (ONNX).

    ``pack(x, y) = (y << 4) | (x & 0x0F)``; an odd count is padded with a zero nibble.

    Args:
        values: Integer array of int4 values in [-8, 7] or uint4 values in [0, 15]
            (flattened in C order).
        signed: Format of the values; default: signed if the dtype is signed.

    Returns:
        1-D uint8 array of ``ceil(n / 2)`` bytes.

    Raises:
        QuantizationTypeError: ``values`` is not an integer array.
        QuantizationValueError: a value outside the format's range (no saturation).
    """
    v = _integers(values, "values")
    signed = bool(np.issubdtype(v.dtype, np.signedinteger)) if signed is None else _flag(signed, "signed")
    return _pack(v, "int4" if signed else "uint4", 2)


def unpack_int4(packed, count: int, *, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_int4`: byte $k$ holds elements $2k$ (low nibble) and $2k+1$ (high).

    Signed nibbles are sign-extended: $v = n - 16$ for $n \\ge 8$.

    Args:
        packed: uint8 array (any shape, read in C order).
        count: Number of values to return, in ``[0, 2 * packed.size]`` (drops the pad nibble).
        signed: int4 (``np.int8`` out) or uint4 (``np.uint8`` out).

    Returns:
        1-D array of ``count`` values.

    Raises:
        QuantizationTypeError: ``packed`` is not uint8.
        QuantizationValueError: ``count`` out of range.
    """
    return _unpack(packed, count, "int4" if _flag(signed, "signed") else "uint4", 2)


def pack_int2(values, *, signed: bool | None = None) -> np.ndarray:
    """Pack 2-bit values four per byte, the first element in the lowest two bits (ONNX).

    $\\mathrm{byte}_k = \\sum_{i=0}^{3} (v_{4k+i} \\mathbin{\\&} 3) \\cdot 4^{i}$; a count that is
    not a multiple of 4 is padded with zeros. Values: int2 in [-2, 1], uint2 in [0, 3] (checked,
    no saturation); ``signed`` defaults to the dtype's signedness. Returns 1-D uint8, ``ceil(n / 4)`` bytes.
    """
    v = _integers(values, "values")
    signed = bool(np.issubdtype(v.dtype, np.signedinteger)) if signed is None else _flag(signed, "signed")
    return _pack(v, "int2" if signed else "uint2", 4)


def unpack_int2(packed, count: int, *, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_int2`: ``count`` values (``np.int8`` sign-extended if ``signed``, else ``np.uint8``).

    Raises :class:`QuantizationTypeError` for a non-uint8 ``packed`` and
    :class:`QuantizationValueError` for ``count`` outside ``[0, 4 * packed.size]``.
    """
    return _unpack(packed, count, "int2" if _flag(signed, "signed") else "uint2", 4)
