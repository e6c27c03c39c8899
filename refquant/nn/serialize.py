"""Save and load models (architecture + weights) and weights alone, as ``.npz``.

File layout (``np.savez_compressed``, read with ``allow_pickle=False``):

| key | content |
|---|---|
| ``__magic__`` | ``"refquant.nn"`` |
| ``__format_version__`` | int, currently ``FORMAT_VERSION = 1`` |
| ``__kind__`` | ``"model"`` (architecture + weights) or ``"weights"`` |
| ``__architecture__`` | JSON of the module tree (``"model"`` files only) |
| ``state/<dotted name>`` | every parameter and buffer, e.g. ``state/0.weight`` |

The architecture is ``{"type": class name, "config": get_config(), "children": {name: ...}}``;
:func:`load` rebuilds it through the registry of Module subclasses (every subclass
registers itself when defined, so a custom layer must be imported before loading and must
implement ``get_config``/``from_config``). A file of another version, a missing key or an
unknown layer type raises a :mod:`refquant.errors` exception naming it.

Not saved: hooks, ``weight_transform`` callables and ``requires_grad`` flags (runtime
state, re-attached by the flow that uses them), and optimizer state.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import OrderedDict

import numpy as np

from .._validate import describe
from ..errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, UnsupportedError
from ._checks import as_flag
from .module import Module, module_registry

__all__ = ["FORMAT_VERSION", "MAGIC", "save", "load", "save_weights", "load_weights", "architecture",
           "build"]

MAGIC = "refquant.nn"
FORMAT_VERSION = 1
_PREFIX = "state/"


def _check_model(model) -> None:
    if not isinstance(model, Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {type(model).__name__}")


def _path(path, *, reading: bool):
    """A file object (kept), or a ``str``/``os.PathLike`` path (as a str; it must exist when ``reading``)."""
    if hasattr(path, "read" if reading else "write"):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise QuantizationTypeError(f"path must be a str, an os.PathLike or a file object, got {describe(path)}")
    name = os.fspath(path)
    if not isinstance(name, str) or "\x00" in name:
        raise QuantizationValueError(f"path must be a file name (a str without NUL bytes), got {name!r}")
    if reading and not os.path.isfile(name):
        raise FileNotFoundError(f"path must name an existing .npz file, got {name!r}")
    return name


def architecture(model: Module) -> dict:
    """The JSON-serialisable description of ``model``'s module tree."""
    _check_model(model)
    return {"type": type(model).__name__, "config": model.get_config(),
            "children": {name: architecture(m) for name, m in model.named_children()}}


def build(spec: dict, where: str = "model") -> Module:
    """Rebuild a module tree from :func:`architecture` output (weights freshly initialised)."""
    if not isinstance(spec, dict):
        raise QuantizationTypeError(f"spec must be a dict from architecture(), got {describe(spec)} at {where!r}")
    if not isinstance(where, str):
        raise QuantizationTypeError(f"where must be a str (the entry's name in messages), got {describe(where)}")
    try:
        kind, config, children = spec["type"], spec.get("config", {}), spec.get("children", {})
    except (TypeError, KeyError) as e:
        raise FormatVersionError(f"spec: architecture entry {where!r} is missing key 'type'") from e
    registry = module_registry()
    if kind not in registry:
        raise UnsupportedError(f"unknown layer type {kind!r} at {where!r}; known types: {sorted(registry)}. "
                               f"Import the module defining it before loading.")
    built = OrderedDict((name, build(c, f"{where}.{name}")) for name, c in children.items())
    try:
        return registry[kind].from_config(config, built)
    except (TypeError, KeyError) as e:
        raise FormatVersionError(f"cannot rebuild {kind} at {where!r} from config {config}: {e}") from e


def _savez_reproducible(path, arrays: dict) -> None:
    """``np.savez_compressed`` with a fixed member timestamp (1980-01-01), so saving the same
    model twice gives the same bytes (NumPy's own writer stamps the current time)."""
    if not hasattr(path, "write"):
        path = os.fspath(path)
        if not path.endswith(".npz"):  # as np.savez does
            path += ".npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fid:
                np.lib.format.write_array(fid, np.asanyarray(value), allow_pickle=False)


def _write(path, kind: str, model: Module, extra: dict) -> None:
    arrays = {_PREFIX + k: v for k, v in model.state_dict().items()}
    _savez_reproducible(path, {"__magic__": np.array(MAGIC), "__format_version__": np.array(FORMAT_VERSION),
                               "__kind__": np.array(kind), **extra, **arrays})


def _open(path, kind: str) -> dict:
    path = _path(path, reading=True)
    name = _name(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (ValueError, zipfile.BadZipFile, EOFError, OSError, AttributeError) as e:
        raise FormatVersionError(f"{name} is not a refquant.nn .npz file: {e}") from e
    if not isinstance(data, dict):  # pragma: no cover - np.load returned a plain array
        raise FormatVersionError(f"{name} is not a refquant.nn .npz file")
    if "__magic__" not in data or str(data["__magic__"]) != MAGIC:
        raise FormatVersionError(f"{name} is not a refquant.nn file (key '__magic__' must be {MAGIC!r})")
    if "__format_version__" not in data:
        raise FormatVersionError(f"{name} is missing key '__format_version__'")
    version = int(data["__format_version__"])
    if version != FORMAT_VERSION:
        raise FormatVersionError(f"{name} has format version {version}; this refquant reads version "
                                 f"{FORMAT_VERSION}. Re-save it with the refquant that wrote it.")
    found = str(data.get("__kind__", ""))
    if found != kind:
        raise FormatVersionError(f"{name} holds {found!r}, expected {kind!r} "
                                 f"({'use load_weights' if found == 'weights' else 'use load'})")
    return data


def _state(data: dict) -> dict:
    return {k[len(_PREFIX):]: v for k, v in data.items() if k.startswith(_PREFIX)}


def save(model: Module, path) -> None:
    """Write ``model``'s architecture and weights to ``path`` (``.npz``)."""
    _check_model(model)
    path = _path(path, reading=False)
    arch = json.dumps(architecture(model))
    _write(path, "model", model, {"__architecture__": np.array(arch)})


def load(path) -> Module:
    """Rebuild the model saved by :func:`save` (in evaluation mode).

    Raises:
        FormatVersionError: not a refquant.nn file, another format version, or a missing key.
        UnsupportedError: an unknown layer type.
        ShapeError: a weight whose shape does not fit the architecture.
    """
    data = _open(path, "model")
    path = _path(path, reading=True)
    if "__architecture__" not in data:
        raise FormatVersionError(f"{_name(path)} is missing key '__architecture__'")
    model = build(json.loads(str(data["__architecture__"])))
    try:
        model.load_state_dict(_state(data))
    except FormatVersionError as e:
        raise FormatVersionError(f"{_name(path)}: {e}") from e
    return model.eval()


def save_weights(model: Module, path) -> None:
    """Write only the parameters and buffers of ``model`` to ``path`` (``.npz``)."""
    _check_model(model)
    _write(_path(path, reading=False), "weights", model, {})


def load_weights(model: Module, path, strict: bool = True) -> Module:
    """Load weights saved by :func:`save_weights` into ``model`` in place; return it."""
    _check_model(model)
    strict = as_flag(strict, "strict")
    data = _open(path, "weights")
    try:
        model.load_state_dict(_state(data), strict=strict)
    except FormatVersionError as e:
        raise FormatVersionError(f"{_name(path)}: {e}") from e
    return model


def _name(path) -> str:
    """The path in messages (``path <file>``)."""
    return f"path {os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)}"
