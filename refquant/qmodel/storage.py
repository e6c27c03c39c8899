"""Saving and loading a :class:`~refquant.qmodel.model.QuantizedModel`, and its size as stored.

The file is an ``.npz`` archive: one array per node constant (``p0``, ``p1``, ...) and an
array ``header`` holding UTF-8 JSON::

    {"format": "refquant.QuantizedModel", "format_version": 1, "profile": ..., "isa": ...,
     "inputs": [...], "outputs": [...], "metadata": {...},
     "tensors": [{"name", "dtype", "scale", "zero_point"}, ...],
     "nodes": [{"name", "op", "inputs", "output", "attrs",
                "params": {name: {"key", "dtype", "shape", "packed"}}}, ...]}

A weight whose node says ``attrs["bits"] == 4`` is stored packed, two codes per byte, first in
the low nibble (:func:`refquant.dtypes.pack_int4`). Loading reads with ``allow_pickle=False`` and
checks every array against the header (name, dtype, shape); the file is written to a temporary
name beside ``path`` and renamed, so a failed save leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .._validate import describe
from ..dtypes import pack_int4, unpack_int4
from ..errors import FormatVersionError, QuantizationTypeError, QuantizationValueError
from .graph import Node, TensorInfo

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load", "stored_nbytes", "param_nbytes", "check_path", "write_atomic"]

FORMAT = "refquant.QuantizedModel"
FORMAT_VERSION = 1
_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32")


def _packed(node: Node, key: str) -> bool:
    return key == "weight" and node.attrs.get("bits") == 4


def param_nbytes(node: Node, key: str, a: np.ndarray) -> int:
    """Bytes of one node constant as stored (int4 weights two codes per byte)."""
    return (a.size + 1) // 2 if _packed(node, key) else np.asarray(a).nbytes


def stored_nbytes(model) -> int:
    """Model bytes as stored (see :attr:`QuantizedModel.nbytes`)."""
    total = 0
    for n in model.nodes:
        for k, a in n.params.items():
            total += param_nbytes(n, k, a)
    for t in model.tensors.values():
        if t.is_integer:
            total += 4 + np.dtype(t.dtype).itemsize
    return total


def _header(model) -> tuple[dict, dict]:
    arrays, nodes = {}, []
    for n in model.nodes:
        params = {}
        for k, a in n.params.items():
            key = f"p{len(arrays)}"
            a = np.asarray(a)
            if a.dtype.name not in _DTYPES:
                raise QuantizationValueError(f"node {n.name!r} param {k!r}: dtype must be one of {list(_DTYPES)}, "
                                             f"got {a.dtype}")
            packed = _packed(n, k)
            arrays[key] = pack_int4(a.reshape(-1)) if packed else a
            params[k] = {"key": key, "dtype": a.dtype.name, "shape": list(a.shape), "packed": "int4" if packed else None}
        nodes.append({"name": n.name, "op": n.op, "inputs": list(n.inputs), "output": n.output,
                      "attrs": n.attrs, "params": params})
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "profile": model.profile, "isa": model.isa,
              "inputs": list(model.inputs), "outputs": list(model.outputs), "metadata": model.metadata,
              "tensors": [t.to_json() for t in model.tensors.values()], "nodes": nodes}
    return header, arrays


def _path(path, *, reading: bool) -> Path:
    """A ``str`` or ``os.PathLike`` file name; when ``reading`` it must name an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise QuantizationTypeError(f"path must be a str or an os.PathLike, got {describe(path)}")
    name = os.fspath(path)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise QuantizationValueError(f"path must be a file name (a non-empty str without NUL bytes), got {name!r}")
    if reading and not os.path.isfile(name):
        raise FileNotFoundError(f"path must name an existing .npz file, got {name!r}")
    if not reading and os.path.isdir(name):
        raise QuantizationValueError(f"path must name a file, got {name!r}, a directory")
    return Path(name)


def save(model, path) -> None:
    """Write ``model`` to ``path`` atomically (temporary file in the same directory, then rename)."""
    path = _path(path, reading=False)
    header, arrays = _header(model)
    try:
        text = json.dumps(header, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise QuantizationTypeError(f"the model's metadata and node attrs must be JSON-able to be saved "
                                    f"({err})") from None
    arrays["header"] = np.frombuffer(text.encode("utf-8"), np.uint8)
    write_atomic(path, lambda f: np.savez(f, **arrays))


def check_path(path, *, reading: bool = False) -> Path:
    """``path`` checked as a file name (``str`` or ``os.PathLike``, not a directory; when ``reading``,
    an existing file). Raises :class:`~refquant.errors.QuantizationTypeError` or
    :class:`~refquant.errors.QuantizationValueError` naming ``path``, or ``FileNotFoundError``."""
    return _path(path, reading=reading)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: set it straight back
    os.umask(mask)
    return mask


def write_atomic(path, write) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over ``path``
    (``os.replace``): a reader never sees a half-written file, and a failure leaves nothing behind.
    The file writers of the integer model and of :mod:`refquant.interop` all go through here."""
    path = _path(path, reading=False)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved model gets an ordinary file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_header(z) -> dict:
    if "header" not in z.files:
        raise FormatVersionError("file has no 'header' array: not a refquant QuantizedModel file")
    try:
        header = json.loads(bytes(z["header"]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatVersionError(f"file's header is not valid JSON ({err})") from None
    if header.get("format") != FORMAT:
        raise FormatVersionError(f"file format must be {FORMAT!r}, got {header.get('format')!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(f"file format_version must be {FORMAT_VERSION} (this refquant reads version "
                                 f"{FORMAT_VERSION}), got {header.get('format_version')!r}")
    return header


def _param(z, node: str, name: str, spec: dict) -> np.ndarray:
    key = spec["key"]
    if key not in z.files:
        raise FormatVersionError(f"node {node!r} param {name!r}: array {key!r} is missing from the file")
    try:
        a = z[key]
    except ValueError as err:  # object arrays (pickles) are refused: allow_pickle=False
        raise FormatVersionError(f"node {node!r} param {name!r}: array {key!r} cannot be read ({err})") from None
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    if spec.get("packed") == "int4":
        n = int(np.prod(shape, dtype=np.int64))
        if a.dtype != np.uint8 or a.size != (n + 1) // 2:
            raise FormatVersionError(f"node {node!r} param {name!r}: packed int4 array must be uint8 of "
                                     f"{(n + 1) // 2} bytes, got {a.dtype} of {a.size}")
        return unpack_int4(a, n, signed=dtype == np.int8).astype(dtype).reshape(shape)
    if a.dtype != dtype or a.shape != shape:
        raise FormatVersionError(f"node {node!r} param {name!r}: the header says {dtype} {list(shape)}, the array "
                                 f"is {a.dtype} {list(a.shape)}")
    return a


def load(path, cls):
    """Read a model written by :func:`save` as an instance of ``cls`` (``QuantizedModel``)."""
    path = _path(path, reading=True)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise FormatVersionError(f"path must be a refquant QuantizedModel .npz file, could not read it ({err})") from None
    with z:
        header = _read_header(z)
        try:
            tensors = [TensorInfo(**t) for t in header["tensors"]]
            nodes = [Node(d["name"], d["op"], tuple(d["inputs"]), d["output"], d["attrs"],
                          {k: _param(z, d["name"], k, spec) for k, spec in d["params"].items()})
                     for d in header["nodes"]]
            return cls(nodes, tensors, header["inputs"], header["outputs"], profile=header["profile"],
                                  isa=header["isa"], metadata=header["metadata"])
        except (KeyError, TypeError) as err:
            raise FormatVersionError(f"file's header is incomplete or malformed ({type(err).__name__}: {err})") from None
