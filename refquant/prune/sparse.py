r"""Sparse storage of a pruned 2-D weight, every byte counted: CSR, bitmask and N:M (NVIDIA 2:4).

A pruning mask zeroes weights but saves no memory; a weight shrinks only when its zeros are not
stored. ``.nbytes`` of each format counts what is stored — values, indices, pointers and metadata,
each at its real dtype — and nothing else: scale and zero point are stored once for dense and sparse
alike and are not counted. Weights are 2-D ``(O, K)``: a Linear weight, or a Conv2d weight
``(O, C, kh, kw)`` flattened per output channel, ``w.reshape(O, C * kh * kw)`` (rows are output channels).

**What is not stored.** A float32 weight omits its zeros ($\pm 0.0$; they come back as $+0.0$, equal
under ``==``). Integer codes $q$ mean $r = S(q - Z)$, so a pruned weight is the code $Z$ (real value
0), **not** the code 0: the formats omit the codes equal to ``zero_point`` (shape ``()`` or ``(O,)``)
and ``to_dense`` fills with it. Values: ``"float32"`` (4 bytes), ``"int8"`` (1 byte) or ``"int4"`` (codes
in $[-8, 7]$ held in an int8 array, stored two per byte by :func:`refquant.dtypes.pack_int4` over
the value array in storage order, first value in the low nibble: $\lceil n/2 \rceil$ bytes).

**Bytes** ($v$ bytes per value, $nnz$ stored values, int4: $\lceil nnz/2 \rceil$ value bytes):

| format | arrays | bytes |
|---|---|---|
| dense | ``(O, K)`` values | $OKv$ |
| CSR | values, ``col_idx`` $(nnz)$ of $c$ bytes, ``row_ptr`` $(O+1)$ of $p$ bytes | $nnz(v + c) + (O+1)p$ (1) |
| bitmask | values, ``mask`` $(O, \lceil K/8 \rceil)$ uint8 | $nnz\,v + O \lceil K/8 \rceil$ (2) |
| N:M | values $(O, Gn)$, $OGn$ positions of $b = \lceil \log_2 m \rceil$ bits | $OGnv + \lceil OGnb/8 \rceil$ (3) |

($G = \lceil K/m \rceil$ groups per row.)

* **CSR** as TFLite stores a sparse FULLY_CONNECTED weight (dimension 0 DENSE, dimension 1 SPARSE_CSR:
  ``array_segments`` = ``row_ptr``, ``array_indices`` = ``col_idx``), index dtypes chosen as TFLite's
  converter does (``flatbuffer_export.cc``): the smallest of uint8, uint16 that holds the largest entry,
  else 32 bits (uint32 here, int32 there: same bytes). ``col_idx`` is sized for the largest possible
  column $K - 1$ (TFLite looks at the largest column stored: the same unless the last columns of every
  row are pruned), ``row_ptr`` for $nnz$. ``index_dtype="int32"`` gives SciPy's choice.
* **Bitmask** as compressed-tensors' ``sparse-bitmask``: bit $k \bmod 8$ of byte $\lfloor k/8 \rfloor$ of
  mask row $o$ (``np.packbits(..., axis=1, bitorder="little")``) is set when $w_{ok}$ is stored; values
  in row-major order. compressed-tensors also stores int64 row offsets ($8O$ bytes) that one popcount
  pass recomputes: not stored here.
* **N:M**: each group of $m$ consecutive columns of a row stores exactly $n$ values and their
  positions in the group (increasing, $b$ bits each). The positions of all groups form one bit stream,
  row-major, position $j$ in bits $[jb, (j+1)b)$, least significant bit first. For 2:4 this is
  NVIDIA's layout as PTX ``mma.sp`` reads its metadata: a group's two 2-bit positions form a nibble,
  the first in the low bits, two groups per byte: $K/8$ bytes of metadata per row beside $K/2$ values
  (int8: 62.5 % of dense, float32: 53.1 %). cuSPARSELt and CUTLASS reorder the nibbles for the tensor
  cores' register fragments (same bytes, another order; not reproduced). A group with fewer than $n$
  values other than the zero point is padded with the zero point at its lowest free positions.
  **K not a multiple of m is padded** with zero-point columns up to $Gm$ (bytes counted;
  ``to_dense`` drops them).

**Break-even sparsity** $s^* = 1 - nnz^*/(OK)$, $nnz^*$ the largest count at which the format is no
larger than dense (:func:`break_even_sparsity`, exact). From (1), with density $d = nnz/(OK)$:
$d(v + c) + (O+1)p/(OK) \le v$, so
$s^*_{CSR} = \frac{c}{v + c} + \frac{(O+1)p}{OK(v + c)} \approx \frac{c}{v + c}$: int8 values with
uint16 columns $2/3$ (67 %), uint8 columns ($K \le 256$) 50 %, int32 columns 80 %; float32 33 %, 20 %,
50 %. From (2): $s^*_{bitmask} = \lceil K/8 \rceil / (Kv) \approx 1/(8v)$: int8 12.5 %, float32 3.1 %,
int4 25 %. N:M bytes do not depend on the sparsity, only on the pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..dtypes import get_format, pack_int4, unpack_int4
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..kernels.sparse import _check_csr  # the kernel's CSR checks, messages naming shape

__all__ = ["CSRMatrix", "BitmaskMatrix", "NMMatrix", "to_csr", "to_bitmask", "to_nm", "break_even_sparsity",
           "storage_table"]

VALUE_FORMATS = ("float32", "int8", "int4")
INDEX_DTYPES = ("uint8", "uint16", "uint32", "int32", "int64")
_STORED = {"float32": np.dtype(np.float32), "int8": np.dtype(np.int8), "int4": np.dtype(np.uint8)}


def _value_bytes(count: int, fmt: str) -> int:
    return -(-count // 2) if fmt == "int4" else count * _STORED[fmt].itemsize


def _index_dtype(choice, largest: int) -> np.dtype:
    """``choice`` (a name) or, for None, the smallest of uint8/uint16/uint32/uint64 holding ``largest``."""
    if choice is not None:
        return np.dtype(choice)
    return next(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64) if largest <= np.iinfo(t).max)


def _store(values: np.ndarray, fmt: str) -> np.ndarray:
    return pack_int4(values.reshape(-1)) if fmt == "int4" else values.copy()


def _load(stored: np.ndarray, count: int, fmt: str) -> np.ndarray:
    return unpack_int4(stored, count, signed=True) if fmt == "int4" else stored.reshape(-1)


def _dense_dtype(fmt: str) -> np.dtype:
    return np.dtype(np.float32) if fmt == "float32" else np.dtype(np.int8)


def _prepare(w, value_format, zero_point):
    """(w, fmt, stored zero point, fill (O,), present (O, K) bool) of a weight to store."""
    w = V.asarray(w, "w", kinds=None, what="a 2-D float32 or int8 array")
    if w.ndim != 2:
        raise ShapeError(f"w must be 2-D (O, K) (flatten a Conv2d weight with w.reshape(O, -1)), got shape {w.shape}")
    if value_format is None and w.dtype not in (np.float32, np.int8):
        raise QuantizationTypeError(f"w must have dtype float32 or int8 (int4 codes: int8 with value_format='int4'), "
                                    f"got {w.dtype}")
    fmt = V.as_choice(w.dtype.name if value_format is None else value_format, "value_format", VALUE_FORMATS)
    if w.dtype != _dense_dtype(fmt):
        raise QuantizationTypeError(f"w must have dtype {_dense_dtype(fmt)} for value_format={fmt!r}, got {w.dtype}")
    if fmt == "float32" and not np.isfinite(w).all():
        o, k = np.argwhere(~np.isfinite(w))[0]
        raise QuantizationValueError(f"w must be finite, got {w[o, k]} at w[{o}, {k}]")
    if fmt == "int4" and (bad := V.first_outside(w, -8, 7)) is not None:
        raise QuantizationValueError(f"w must hold int4 codes in [-8, 7] for value_format='int4', got {bad}")
    O = w.shape[0]
    zp = V.as_zero_point(zero_point, get_format("int8" if fmt == "float32" else fmt))  # int64, checked range
    if fmt == "float32" and np.any(zp != 0):
        raise QuantizationValueError(f"zero_point must be 0 or None for float32 values (0.0 is not stored), "
                                     f"got {V.describe(zero_point)}")
    if zp.ndim > 1 or (zp.ndim == 1 and zp.shape[0] != O):
        raise ShapeError(f"zero_point must be a scalar or have O = {O} elements (one per row), got shape {zp.shape}")
    zp = np.zeros((), np.float32) if fmt == "float32" else zp.astype(np.int8)
    fill = np.broadcast_to(zp, (O,)).astype(w.dtype)  # (O,) the code each row does not store
    return w, fmt, zp, fill, w != fill[:, None]


@dataclass(frozen=True, eq=False)
class _SparseWeight:
    """Fields and checks shared by the formats (a hand-built one fails in its constructor, not later)."""
    shape: tuple
    value_format: str
    zero_point: np.ndarray
    values: np.ndarray

    def __post_init__(self):
        O, K = V.as_int_sequence(self.shape, "shape", length=2, minimum=0)
        object.__setattr__(self, "shape", (O, K))
        fmt = V.as_choice(self.value_format, "value_format", VALUE_FORMATS)
        zp = V.as_typed_array(self.zero_point, "zero_point", [_dense_dtype(fmt)], array_only=True)
        if zp.ndim > 1 or (zp.ndim == 1 and zp.shape[0] != O) or (fmt == "float32" and (zp.ndim or zp != 0)):
            raise QuantizationValueError(f"zero_point must be a {_dense_dtype(fmt)} scalar" + (
                " equal to 0" if fmt == "float32" else f" or ({O},) array") + f", got {V.describe(self.zero_point)}")
        V.as_typed_array(self.values, "values", [_STORED[fmt]], array_only=True)
        count = self._check(O, K)  # the format's own arrays; returns how many values it stores
        want = _value_bytes(count, fmt) // _STORED[fmt].itemsize
        if self.values.size != want:
            raise ShapeError(f"values must hold {want} elements for {count} {fmt} values, got {self.values.size}")

    @property
    def nbytes(self) -> int:
        """Bytes as stored: the format's arrays at their dtypes (module docstring, eqs. (1)-(3))."""
        return sum(getattr(self, name).nbytes for name in self._ARRAYS)

    def _filled(self, K: int) -> np.ndarray:
        """(O, K) array of the format's dense dtype holding each row's zero point."""
        zp = self.zero_point.astype(_dense_dtype(self.value_format))
        return np.broadcast_to(zp.reshape(-1, 1) if zp.ndim else zp, (self.shape[0], K)).copy()


@dataclass(frozen=True, eq=False)
class CSRMatrix(_SparseWeight):
    """Compressed sparse rows (eq. (1)); build with :func:`to_csr`.

    Fields: ``shape`` (O, K); ``value_format``; ``zero_point`` the code not stored (int8 () or (O,),
    float32 0.0); ``values`` (nnz,) float32/int8 or packed int4 uint8 (ceil(nnz/2),); ``col_idx`` (nnz,)
    and ``row_ptr`` (O + 1,) integers (row ``o``: entries ``row_ptr[o]`` to ``row_ptr[o+1] - 1``).
    """
    col_idx: np.ndarray
    row_ptr: np.ndarray
    _ARRAYS = ("values", "col_idx", "row_ptr")

    def _check(self, O, K):
        for name in ("col_idx", "row_ptr"):
            V.as_typed_array(getattr(self, name), name, INDEX_DTYPES + ("uint64",), array_only=True)
        _check_csr(self.col_idx, self.row_ptr, K, O, ("shape[0]", "shape[1]"))
        return self.col_idx.size

    nnz = property(lambda self: int(self.col_idx.size), doc="Number of stored values.")

    def unpacked_values(self) -> np.ndarray:
        """(nnz,) float32 or int8 values (int4 unpacked) in storage order: a kernel's ``csr_values``."""
        return _load(self.values, self.nnz, self.value_format)

    def to_dense(self) -> np.ndarray:
        """(O, K) float32 or int8: the values at their columns, the zero point elsewhere."""
        out = self._filled(self.shape[1])
        out[np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr.astype(np.int64))), self.col_idx] = \
            self.unpacked_values()
        return out


@dataclass(frozen=True, eq=False)
class BitmaskMatrix(_SparseWeight):
    """One bit per weight plus the stored values (eq. (2)); build with :func:`to_bitmask`. Fields as
    :class:`CSRMatrix`, and ``mask`` (O, ceil(K/8)) uint8, LSB first per row, padding bits clear.
    """
    mask: np.ndarray
    _ARRAYS = ("values", "mask")

    def _check(self, O, K):
        m = V.as_typed_array(self.mask, "mask", [np.uint8], ndim=2, array_only=True)
        if m.shape != (O, -(-K // 8)):
            raise ShapeError(f"mask must have shape (O, ceil(K/8)) = {(O, -(-K // 8))}, got {m.shape}")
        if K % 8 and O and (m[:, -1] >> (K % 8)).any():
            raise QuantizationValueError(f"mask must have its padding bits (columns >= K = {K}) clear")
        return self.nnz

    nnz = property(lambda self: int(np.unpackbits(self.mask).sum()), doc="Number of stored values (set bits).")

    def to_dense(self) -> np.ndarray:
        """(O, K) float32 or int8: values where the mask bit is set, the zero point elsewhere."""
        out = self._filled(self.shape[1])
        out[np.unpackbits(self.mask, axis=1, count=self.shape[1], bitorder="little").astype(bool)] = \
            _load(self.values, self.nnz, self.value_format)
        return out


def _nm_geometry(shape, n, m):
    G = -(-shape[1] // m)
    return G, shape[0] * G * n, (m - 1).bit_length()  # groups per row, stored values, bits per position


@dataclass(frozen=True, eq=False)
class NMMatrix(_SparseWeight):
    """n values of every m consecutive columns and their positions (eq. (3)); build with :func:`to_nm`.
    Fields as :class:`CSRMatrix` (``values`` (O, G·n)), ``indices`` the packed positions (uint8), ``n``, ``m``.
    """
    indices: np.ndarray
    n: int
    m: int
    _ARRAYS = ("values", "indices")

    def _check(self, O, K):
        n, m = _check_nm(self.n, self.m)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "m", m)
        _, L, b = _nm_geometry((O, K), n, m)
        V.as_typed_array(self.indices, "indices", [np.uint8], ndim=1, array_only=True)
        if self.indices.size != -(-L * b // 8):
            raise ShapeError(f"indices must have ceil(O·G·n·b / 8) = {-(-L * b // 8)} bytes for shape {(O, K)}, "
                             f"n = {n}, m = {m}, got {self.indices.size}")
        pos = self._positions()
        if L and ((pos >= m).any() or (np.diff(pos, axis=-1) <= 0).any()):
            raise QuantizationValueError(f"indices must hold increasing positions in [0, m) = [0, {m}) within each "
                                         f"group of a shape {(O, K)} weight")
        return L

    def _positions(self) -> np.ndarray:
        G, L, b = _nm_geometry(self.shape, self.n, self.m)
        bits = np.unpackbits(self.indices, count=L * b, bitorder="little").reshape(L, b).astype(np.int64)
        return (bits << np.arange(b)).sum(axis=1).reshape(self.shape[0], G, self.n)  # (O, G, n)

    def _grouped(self) -> np.ndarray:
        G, L, _ = _nm_geometry(self.shape, self.n, self.m)
        return _load(self.values, L, self.value_format).reshape(self.shape[0], G, self.n)  # (O, G, n)

    @property
    def nnz(self) -> int:
        """Number of stored values other than the zero point (padding slots excluded)."""
        return int(np.count_nonzero(self._grouped() != self._filled(1)[:, :, None]))

    def to_dense(self) -> np.ndarray:
        """(O, K) float32 or int8; the padding columns beyond K are dropped."""
        (O, K), G = self.shape, -(-self.shape[1] // self.m)
        out = self._filled(G * self.m).reshape(O, G, self.m)
        np.put_along_axis(out, self._positions(), self._grouped(), axis=-1)
        return np.ascontiguousarray(out.reshape(O, G * self.m)[:, :K])


def _check_nm(n, m):
    m = V.as_positive_int(m, "m", minimum=2, maximum=2**16)
    n = V.as_positive_int(n, "n", minimum=1)
    if n > m:
        raise QuantizationValueError(f"n must be <= m = {m} (n values kept of every m), got n = {n}")
    return n, m


def to_csr(w, *, value_format=None, zero_point=None, index_dtype=None) -> CSRMatrix:
    """Store the entries of ``w`` that are not ``zero_point`` as CSR (module docstring, eq. (1)).

    Args:
        w: (O, K) float32, or int8 codes (int4 codes in an int8 array with ``value_format="int4"``).
        value_format: ``"float32"``, ``"int8"``, ``"int4"``; default from ``w.dtype``.
        zero_point: the code not stored, scalar or (O,) (integer formats); None or 0 for float32.
        index_dtype: None (TFLite's choice, smallest unsigned) or one of ``INDEX_DTYPES``
            for both index arrays; it must hold ``K - 1`` and ``nnz``.

    Returns:
        :class:`CSRMatrix` with ``to_dense() == w``.
    """
    w, fmt, zp, _, present = _prepare(w, value_format, zero_point)
    choice = V.as_choice(index_dtype, "index_dtype", (None,) + INDEX_DTYPES)
    (O, K), nnz = w.shape, int(present.sum())
    cdt, pdt = _index_dtype(choice, max(K - 1, 0)), _index_dtype(choice, nnz)
    if choice is not None and max(K - 1, nnz) > np.iinfo(cdt).max:
        raise QuantizationValueError(f"index_dtype {choice} cannot hold K - 1 = {K - 1} and nnz = {nnz}")
    rows, cols = np.nonzero(present)  # row-major: columns increase within each row
    row_ptr = np.zeros(O + 1, pdt)
    row_ptr[1:] = np.cumsum(present.sum(axis=1))
    return CSRMatrix((O, K), fmt, zp, _store(w[rows, cols], fmt), cols.astype(cdt), row_ptr)


def to_bitmask(w, *, value_format=None, zero_point=None) -> BitmaskMatrix:
    """Store ``w`` as a bitmask plus the values that are not ``zero_point`` (eq. (2); arguments as :func:`to_csr`)."""
    w, fmt, zp, _, present = _prepare(w, value_format, zero_point)
    return BitmaskMatrix(w.shape, fmt, zp, _store(w[present], fmt), np.packbits(present, axis=1, bitorder="little"))


def to_nm(w, n=2, m=4, *, value_format=None, zero_point=None) -> NMMatrix:
    """Store an N:M-sparse ``w`` (at most n values other than ``zero_point`` in every group of m
    consecutive columns of a row; eq. (3)). ``n = 2, m = 4``: NVIDIA's 2:4 layout.

    Raises:
        QuantizationValueError: ``n > m``, or a group with more than n values (the first one is named).
    """
    n, m = _check_nm(n, m)
    w, fmt, zp, fill, present = _prepare(w, value_format, zero_point)
    (O, K), (G, _, b) = w.shape, _nm_geometry(w.shape, n, m)
    pad = G * m - K  # K not a multiple of m: zero-point columns up to G·m
    present = np.pad(present, ((0, 0), (0, pad))).reshape(O, G, m)
    counts = present.sum(axis=-1)
    if (counts > n).any():
        o, g = (int(i) for i in np.argwhere(counts > n)[0])
        raise QuantizationValueError(
            f"w is not n:m = {n}:{m} sparse: row {o}, group {g} (columns {g * m} to {min(g * m + m, K) - 1}) holds "
            f"{counts[o, g]} values other than zero_point = {fill[o]}, more than n = {n}")
    pos = np.sort(np.argsort(~present, axis=-1, kind="stable")[..., :n], axis=-1)  # (O, G, n): stored first
    wp = np.concatenate([w, np.broadcast_to(fill[:, None], (O, pad))], axis=1).reshape(O, G, m)
    vals = np.where(np.take_along_axis(present, pos, -1), np.take_along_axis(wp, pos, -1), fill[:, None, None])
    bits = (pos.reshape(-1, 1) >> np.arange(b)) & 1  # (L, b): position j in bits [j·b, (j+1)·b), LSB first
    return NMMatrix((O, K), fmt, zp, _store(vals.reshape(O, G * n), fmt),
                    np.packbits(bits.reshape(-1).astype(np.uint8), bitorder="little"), n, m)


def break_even_sparsity(format, shape, value_format="int8", *, index_dtype=None):
    """Lowest sparsity at which ``format`` (``"csr"`` or ``"bitmask"``) is no larger than dense.

    Exact: $1 - nnz^*/(OK)$ for the largest $nnz^*$ with bytes (eq. (1) or (2), int4 ceilings and the
    ``row_ptr`` dtype's steps included) $\\le$ dense bytes; see the module docstring for the formula.

    Args:
        format: ``"csr"`` or ``"bitmask"``. shape: ``(O, K)``. value_format: as in :func:`to_csr`.
        index_dtype: CSR index dtype as in :func:`to_csr` (None: TFLite's choice).

    Returns:
        A float in [0, 1], or None when even an all-zero matrix is larger than dense (or ``O·K = 0``).
    """
    fmt_name = V.as_choice(format, "format", ("csr", "bitmask"))
    O, K = V.as_int_sequence(shape, "shape", length=2, minimum=0)
    vf = V.as_choice(value_format, "value_format", VALUE_FORMATS)
    choice = V.as_choice(index_dtype, "index_dtype", (None,) + INDEX_DTYPES)

    def nbytes(nnz):
        if fmt_name == "bitmask":
            return _value_bytes(nnz, vf) + O * -(-K // 8)  # eq. (2)
        c, p = _index_dtype(choice, max(K - 1, 0)).itemsize, _index_dtype(choice, nnz).itemsize
        return _value_bytes(nnz, vf) + nnz * c + (O + 1) * p  # eq. (1)

    dense = _value_bytes(O * K, vf)
    if O * K == 0 or nbytes(0) > dense:
        return None
    lo, hi = 0, O * K  # bytes never decrease with nnz: bisect for the largest nnz that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if nbytes(mid) <= dense else (lo, mid - 1)
    return 1.0 - lo / (O * K)


def storage_table(w, *, value_format=None, zero_point=None, index_dtype=None) -> dict:
    """Dense vs sparse bytes of ``w`` and the break-even sparsities (arguments as :func:`to_csr`).

    Returns:
        ``{"shape", "value_format", "nnz", "sparsity", "bytes": {"dense", "csr", "bitmask", "2:4"},
        "break_even": {"csr/float32", "csr/int8", "csr/int4", "bitmask/float32", "bitmask/int8",
        "bitmask/int4"}}``; ``"2:4"`` is None when ``w`` is not 2:4 sparse.
    """
    csr = to_csr(w, value_format=value_format, zero_point=zero_point, index_dtype=index_dtype)
    bitmask = to_bitmask(w, value_format=value_format, zero_point=zero_point)
    (O, K), fmt = csr.shape, csr.value_format
    try:
        nm = to_nm(w, 2, 4, value_format=value_format, zero_point=zero_point).nbytes
    except QuantizationValueError:  # the input already passed to_csr's checks: only the pattern can fail
        nm = None
    return {"shape": (O, K), "value_format": fmt, "nnz": csr.nnz,
            "sparsity": 1.0 - csr.nnz / (O * K) if O * K else 0.0,
            "bytes": {"dense": _value_bytes(O * K, fmt), "csr": csr.nbytes, "bitmask": bitmask.nbytes, "2:4": nm},
            "break_even": {f"{f}/{vf}": break_even_sparsity(f, (O, K), vf, index_dtype=index_dtype)
                           for f in ("csr", "bitmask") for vf in VALUE_FORMATS}}
