"""Golden files: inputs, parameters and refquant's expected outputs, for any language to read.

:func:`write_golden` (and ``refquant golden``) writes the cases of one face op
(:data:`refquant.testing.golden_ops.GOLDEN_OPS`) or one model file under one profile; :func:`load_golden`
reads them back. The layout (``format_version`` 1) is plain on purpose, for C, C++ and Rust readers:

* one ``.npz`` file: a ZIP archive of ``.npy`` members, stored uncompressed; every array is
  little-endian, C-ordered, of a fixed-width bool, integer or float dtype (no pickles, no objects);
* member ``header.npy``: a uint8 array holding UTF-8 JSON with ``magic`` = ``"refquant-golden"``,
  ``format_version``, ``refquant_version``, ``op``, ``profile``, ``seed``, ``isa``, ``call`` (face,
  function, positional ``arguments`` in order, selecting ``keywords``), ``model`` (for a model
  file), ``regenerate`` (the command that rewrites the file) and ``cases``;
* each case: ``kind``, ``attrs`` (the keyword attributes: stride, padding, ...) and ``arrays``, a
  list of ``{"key", "role", "name", "dtype", "shape"}`` with ``role`` one of ``input``, ``param``,
  ``expected``; the member holding it is ``key + ".npy"``, and ``key`` is
  ``case{i}/{role}/{name}`` (``case0/input/x``, ``case0/param/w_scale``, ``case0/expected/y``).

Reading checks the magic, the version, every array's presence, dtype and shape against the header,
and that the archive holds nothing else; any departure is a
:class:`~refquant.errors.FormatVersionError`. A changed bit pattern in refquant is an API change:
:meth:`Golden.verify` recomputes a file's expected outputs with the running refquant.

Added in 0.1.0.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from .. import _validate as V
from ..errors import FormatVersionError, QuantizationTypeError, QuantizationValueError
from . import golden_models as M
from .asserts import MismatchError, assert_bit_exact
from .golden_ops import golden_op, op_cases

__all__ = ["MAGIC", "FORMAT_VERSION", "Golden", "GoldenCase", "write_golden", "load_golden"]

MAGIC = "refquant-golden"
FORMAT_VERSION = 1
_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32",
           "float64")
_ROLES = ("input", "param", "expected")


@dataclass(frozen=True)
class GoldenCase:
    """One case: the arrays by role (``inputs``, ``params``, ``expected``: dicts name → array), the keyword
    ``attrs`` (stride, padding, ...), its ``kind`` (``random``, ``ties``, ``saturating``) and the order
    of the face function's positional arguments."""

    index: int
    kind: str
    inputs: dict
    params: dict
    attrs: dict
    expected: dict
    order: tuple = ()

    @property
    def arguments(self) -> dict:
        """Inputs and parameters together, in the face function's positional order (the header's
        ``call.arguments``; an optional argument the case leaves out is absent)."""
        both = {**self.inputs, **self.params}
        return {k: both[k] for k in self.order if k in both} if self.order else both


@dataclass(frozen=True)
class Golden:
    """A golden file in memory: its JSON ``header`` and its ``cases`` (iterate, index, ``len``)."""

    header: dict
    cases: tuple = field(repr=False)

    op = property(lambda self: self.header["op"])
    profile = property(lambda self: self.header["profile"])
    seed = property(lambda self: self.header["seed"])

    def __repr__(self) -> str:
        h = self.header
        what = f"op={h.get('op')!r}" if h.get("op") else f"model={h.get('model')!r}"
        return (f"Golden({what}, profile={h.get('profile')!r}, cases={len(self.cases)}, seed={h.get('seed')}, "
                f"format_version={h.get('format_version')})")

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self):
        return iter(self.cases)

    def __getitem__(self, i) -> GoldenCase:
        return self.cases[i]

    def check(self, fn, *, max_report: int = 10) -> int:
        """Assert ``fn(case)`` equals each case's expected output bit for bit; returns the elements compared.

        ``fn`` returns one array (one expected output) or a dict name → array. On a mismatch the
        :class:`~refquant.testing.asserts.MismatchError` (an ``AssertionError``) names the case, its
        kind and attributes, and the command that regenerates the file.
        """
        n = 0
        for case in self.cases:
            got = fn(case)
            got = got if isinstance(got, dict) else {next(iter(case.expected)): got}
            if set(got) != set(case.expected):
                raise MismatchError(f"case {case.index}: fn returned outputs {sorted(got)}, the file has "
                                    f"{sorted(case.expected)}")
            for name, want in case.expected.items():
                try:
                    assert_bit_exact(got[name], want, inputs=_aligned(case.inputs, want), max_report=max_report)
                except MismatchError as err:
                    raise MismatchError(f"{self.op} ({self.profile}) case {case.index} ({case.kind}, attrs "
                                        f"{case.attrs}), output {name!r}:\n{err}\n(file written by: "
                                        f"{self.header['regenerate']})") from None
                n += want.size
        return n

    def verify(self, *, model=None, max_report: int = 10) -> int:
        """Recompute every expected output with this refquant and assert they equal the file's.

        Args:
            model: The model file, for a file written from one (its SHA-256 must match the header's).
        """
        if self.op == "model":
            if model is None:
                raise QuantizationValueError("model must name the file this golden file was written from, got None")
            qm, info = M.read_model(model, self.profile, self.header["isa"] or "auto")
            if info["sha256"] != self.header["model"]["sha256"]:
                raise QuantizationValueError(f"model must be the file the golden file was written from "
                                             f"(SHA-256 {self.header['model']['sha256']}), got {info['sha256']}")
            return self.check(lambda case: M.outputs(qm, qm.run(case.inputs)), max_report=max_report)
        op, keywords = golden_op(self.op), self.header["call"]["keywords"]
        return self.check(lambda case: op.call(case.arguments, case.attrs, keywords), max_report=max_report)


def _aligned(inputs: dict, out: np.ndarray) -> dict:
    """The inputs worth showing beside a mismatch: those with the output's shape or number of elements."""
    return {k: v for k, v in inputs.items() if v.shape == out.shape or v.size == out.size}


# ----------------------------------------------------------------------------- writing


def _key(i: int, role: str, name: str, j: int) -> str:
    """``case{i}/{role}/{name}``; a name outside ``[A-Za-z0-9_.-]`` becomes ``#{j}``, its position in the role."""
    safe = name if re.fullmatch(r"[A-Za-z0-9_.\-]+", name) else f"#{j}"
    return f"case{i}/{role}/{safe}"


def _little(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.name not in _DTYPES:
        raise QuantizationTypeError(f"golden arrays must have one of the dtypes {list(_DTYPES)}, got {a.dtype}")
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False)).reshape(a.shape)


def _adder(arrays: dict):
    """A function ``add(i, kind, attrs, roles) -> header entry`` that stores case ``i``'s arrays in
    ``arrays`` (``roles``: ``{"input": {...}, "param": {...}, "expected": {...}}``)."""
    def add(i: int, kind: str, attrs: dict, roles: dict) -> dict:
        entries = []
        for role in _ROLES:
            for j, (name, a) in enumerate(roles[role].items()):
                key = _key(i, role, name, j)
                arrays[key] = _little(a)
                entries.append({"key": key, "role": role, "name": name, "dtype": arrays[key].dtype.name,
                                "shape": list(arrays[key].shape)})
        return {"kind": kind, "attrs": attrs, "arrays": entries}
    return add


def write_golden(path, *, op=None, profile=None, cases: int = 16, seed: int = 0, model=None, isa: str = "auto",
                 input_shape=None, batch: int = 1) -> Golden:
    """Write a golden file for the face op ``op``, or for the model file ``model``.

    Args:
        path: The ``.npz`` file to write (replaced atomically).
        op: A key of :data:`~refquant.testing.golden_ops.GOLDEN_OPS` (``"tflite.conv2d"``); not with ``model``.
        profile: One of the op's profiles (default: its first), or for a model one of
            :data:`~refquant.testing.golden_models.MODEL_PROFILES`.
        cases: Number of cases, >= 1 (kinds cycle ``random``, ``ties``, ``saturating``).
        seed: Seed of the cases (an int >= 0): the same seed writes the same arrays.
        model: A ``.tflite`` or quantized ``.onnx`` file name.
        isa: For ops and models whose accumulation depends on the CPU: ``"auto"`` (this CPU; the
            resolved name is recorded) or ``"avx2"``, ``"vnni"``, ``"exact"``.
        input_shape: One model sample's shape, where the file leaves it open.
        batch: Samples per model case.

    Returns:
        The :class:`Golden` written, as :func:`load_golden` would read it.
    """
    from ..cpu import resolve_isa
    from ..qmodel.storage import check_path, write_atomic

    path = check_path(path)
    cases = V.as_positive_int(cases, "cases", maximum=100_000)
    seed = V.as_int_scalar(seed, "seed", lo=0, hi=2**63 - 1)
    isa = resolve_isa(V.as_choice(isa, "isa", ("auto", "avx2", "vnni", "exact")))
    if (op is None) == (model is None):
        raise QuantizationValueError(f"exactly one of op and model must be given, got op={op!r}, model={model!r}")
    arrays = {}
    if model is not None:
        header = M.model_cases(_adder(arrays), model, profile, cases, seed, isa, input_shape, batch)
    else:
        header = op_cases(_adder(arrays), op, profile, cases, seed, isa)
    header = {"magic": MAGIC, "format_version": FORMAT_VERSION, "refquant_version": __version__, "seed": seed,
              "byte_order": "little", **header}
    header["regenerate"] = header["regenerate"].format(cases=cases, seed=seed, out=path.name)
    arrays["header"] = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), np.uint8)
    write_atomic(path, lambda f: np.savez(f, **arrays))
    return load_golden(path)


# ----------------------------------------------------------------------------- reading


def _fail(path, what: str) -> FormatVersionError:
    return FormatVersionError(f"path {os.fspath(path)!r}: {what}")


def _read_header(path, z) -> dict:
    if "header" not in z.files:
        raise _fail(path, "no 'header' array: not a refquant golden file")
    try:
        header = json.loads(bytes(z["header"]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise _fail(path, f"the header is not readable JSON ({err})") from None
    if not isinstance(header, dict) or header.get("magic") != MAGIC:
        got = header.get("magic") if isinstance(header, dict) else header
        raise _fail(path, f"magic must be {MAGIC!r}, got {V.describe(got)}: not a refquant golden file")
    if header.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"format_version must be {FORMAT_VERSION} (this refquant {__version__} reads version "
                          f"{FORMAT_VERSION}), got {header.get('format_version')!r}")
    return header


def _read_array(path, z, spec: dict) -> np.ndarray:
    key = spec["key"]
    if key not in z.files:
        raise _fail(path, f"array {key!r} is in the header but missing from the file")
    try:
        a = z[key]
    except (ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError) as err:  # pickles refused, truncation
        raise _fail(path, f"array {key!r} cannot be read ({err})") from None
    want_dtype, want_shape = spec["dtype"], tuple(spec["shape"])
    if want_dtype not in _DTYPES or a.dtype != np.dtype(want_dtype).newbyteorder("<") or a.shape != want_shape:
        raise _fail(path, f"array {key!r}: the header says {want_dtype} {list(want_shape)}, the file holds "
                          f"{a.dtype.str} {list(a.shape)}")
    return V.native(a)


def load_golden(path) -> Golden:
    """Read a golden file written by :func:`write_golden` (``allow_pickle=False``).

    Raises:
        FormatVersionError: Not an ``.npz`` (or truncated), a wrong magic, another ``format_version``,
            a malformed header, or arrays missing, extra, or of another dtype or shape than the header says.
        FileNotFoundError: ``path`` names no file.
    """
    from ..qmodel.storage import check_path

    path = check_path(path, reading=True)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise _fail(path, f"not a readable .npz file, truncated or of another format ({err})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _fail(path, "holds a single .npy array, not an .npz archive: not a refquant golden file")
    with z:
        header = _read_header(path, z)
        try:
            cases = []
            for i, entry in enumerate(header["cases"]):
                by_role = {r: {} for r in _ROLES}
                for spec in entry["arrays"]:
                    by_role[V.as_choice(spec["role"], "role", _ROLES)][spec["name"]] = _read_array(path, z, spec)
                order = tuple(header["call"]["arguments"]) if header.get("call") else ()
                cases.append(GoldenCase(i, entry["kind"], by_role["input"], by_role["param"], dict(entry["attrs"]),
                                        by_role["expected"], order))
            missing = [k for k in ("op", "profile", "seed", "isa", "call", "model", "regenerate") if k not in header]
            if missing:
                raise KeyError(", ".join(missing))
        except (KeyError, TypeError, QuantizationValueError) as err:
            raise _fail(path, f"the header is incomplete or malformed ({type(err).__name__}: {err})") from None
        described = {s["key"] for e in header["cases"] for s in e["arrays"]} | {"header"}
        extra = sorted(set(z.files) - described)
        if extra:
            raise _fail(path, f"arrays not described by the header: {extra[:5]}")
    return Golden(header, tuple(cases))
