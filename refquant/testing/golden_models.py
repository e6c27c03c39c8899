"""Golden cases for a whole model file: a ``.tflite`` or a quantized ``.onnx``, read by :mod:`refquant.interop`.

The model is read as the runtime runs it (:func:`refquant.interop.tflite.import_quantized` with the
profile's LiteRT kernel set; :func:`refquant.interop.onnx.import_quantized`), and each case is a batch
of inputs drawn in the model's input range: for a float input, the range
$[S(q_{min} - Z),\\ S(q_{max} - Z)]$ of the quantize node that reads it (uniform values in
``random`` cases; exact ties, range ends and values just past them in the other kinds); for an
integer input, codes over the whole format with its extremes and zero point. The expected outputs
are :meth:`~refquant.qmodel.QuantizedModel.run`'s.

The per-sample input shape comes from the file (the ``.tflite`` input tensor; the ONNX importer's
``input_shape``), or from ``input_shape`` when the file leaves it open.

Added in 0.1.0.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, UnsupportedError
from . import _values as Q
from .golden_ops import KINDS

__all__ = ["MODEL_PROFILES", "read_model"]  # the rest serves refquant.testing.golden

#: The profiles a model file can be run under, by file type; the first is the default.
MODEL_PROFILES = {"tflite": ("tflite_reference", "tflite_xnnpack", "tflite_optimized"), "onnx": ("onnxruntime",)}


def _kind_of_file(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".tflite", ".onnx"):
        raise QuantizationValueError(f"model must be a .tflite or .onnx file, got {path!r}")
    return ext[1:]


def read_model(model, profile=None, isa: str = "auto"):
    """Read ``model`` (a ``.tflite`` or ``.onnx`` file name) under ``profile``.

    Returns:
        ``(qmodel, info)``: the :class:`~refquant.qmodel.QuantizedModel` and a JSON-able dict
        (file name, file type, SHA-256 of its bytes, profile, per-sample input shapes).
    """
    if not isinstance(model, (str, os.PathLike)):
        raise QuantizationTypeError(f"model must be a .tflite or .onnx file name, got {V.describe(model)}")
    path = os.fspath(model)
    fmt = _kind_of_file(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model must name an existing file, got {path!r}")
    profile = MODEL_PROFILES[fmt][0] if profile is None else V.as_choice(profile, "profile", MODEL_PROFILES[fmt])
    with open(path, "rb") as f:
        content = f.read()
    shapes = {}
    if fmt == "tflite":
        from ..backends.tflite import PROFILE_OF_KERNEL
        from ..interop import tflite
        from ..interop._tflite_read import read_model as read_flatbuffer  # the file's tensor shapes

        kernel = next(k for k, p in PROFILE_OF_KERNEL.items() if p == profile)
        qm = tflite.import_quantized(content, kernel=kernel)
        flat = read_flatbuffer(content)
        for i in flat.inputs:
            shapes[flat.tensors[i].name] = list(flat.tensors[i].shape[1:])
    else:
        from ..interop import onnx

        qm = onnx.import_quantized(content, profile=profile, isa=isa)
        if "input_shape" in qm.metadata and len(qm.inputs) == 1:
            shapes[qm.inputs[0]] = list(qm.metadata["input_shape"])
    info = {"file": os.path.basename(path), "format": fmt, "sha256": hashlib.sha256(content).hexdigest(),
            "profile": profile, "inputs": list(qm.inputs), "outputs": list(qm.outputs), "input_shapes": shapes}
    return qm, info


def _input_range(qm, name: str):
    """``(qmin, qmax, scale, zero_point)`` of the quantize node that reads float input ``name``."""
    for n in qm.nodes:
        if n.op == "quantize" and n.inputs and n.inputs[0] == name:
            qp = qm.qparams(n.output)
            return qp.qmin, qp.qmax, float(qp.scale), int(qp.zero_point)
    raise UnsupportedError(f"model input {name!r} is float32 but no quantize node reads it: its range is unknown")


def model_inputs(rng: np.random.Generator, qm, info: dict, kind: str, batch: int) -> dict:
    """One case's inputs: name → array of shape ``(batch, *input_shape)`` in the input's dtype."""
    feeds = {}
    for name in qm.inputs:
        shape = (batch, *info["input_shapes"][name])
        t = qm.tensors[name]
        if t.is_integer:
            qp = t.qparams
            feeds[name] = Q.codes(rng, qp.qmin, qp.qmax, shape, np.dtype(t.dtype), zero_point=int(qp.zero_point))
            continue
        qmin, qmax, s, z = _input_range(qm, name)
        if kind == "random":
            lo, hi = np.float32(s * (qmin - z)), np.float32(s * (qmax - z))
            feeds[name] = rng.uniform(lo, hi, size=shape).astype(np.float32)
        else:
            feeds[name] = Q.float_values(rng, s, z, qmin, qmax, shape)
    return feeds


def check_input_shapes(qm, info: dict, input_shape) -> None:
    """Fill ``info["input_shapes"]`` from ``input_shape`` (one sample, no batch) where the file leaves it open."""
    missing = [n for n in qm.inputs if n not in info["input_shapes"]]
    if input_shape is not None:
        shape = list(V.as_int_sequence(input_shape, "input_shape", minimum=1))
        if not shape:
            raise QuantizationValueError("input_shape must have at least one dimension (one sample's shape), got []")
        for name in qm.inputs:
            info["input_shapes"][name] = shape
    elif missing:
        raise QuantizationValueError(f"input_shape must be given (the shape of one sample, without the batch): the "
                                     f"file does not fix the shape of its inputs {missing}")


def model_cases(add, model, profile, cases: int, seed: int, isa: str, input_shape, batch) -> dict:
    """The cases of the model file ``model`` (each stored by ``add(i, kind, attrs, roles)``, which returns
    its header entry); returns the golden header's model-specific fields (as
    :func:`refquant.testing.golden_ops.op_cases` does)."""
    batch = V.as_positive_int(batch, "batch", maximum=4096)
    qm, info = read_model(model, profile, isa)
    check_input_shapes(qm, info, input_shape)
    rng, entries = np.random.default_rng(seed), []
    for i in range(cases):
        feeds = model_inputs(rng, qm, info, KINDS[i % 3], batch)
        roles = {"input": feeds, "param": {}, "expected": outputs(qm, qm.run(feeds))}
        entries.append(add(i, KINDS[i % 3], {}, roles))
    isa = isa if info["format"] == "onnx" else None
    shape = f" --input-shape {','.join(map(str, input_shape))}" if input_shape is not None else ""
    regenerate = (f"refquant golden --model {info['file']} --profile {info['profile']}" +
                  (f" --isa {isa}" if isa else "") + " --cases {cases} --seed {seed}" + f" --batch {batch}{shape}")
    return {"op": "model", "profile": info["profile"], "isa": isa, "model": info, "call": None, "cases": entries,
            "regenerate": regenerate + " --out {out}"}


def outputs(qm, y) -> dict:
    """A model's :meth:`run` result as a dict output name → array."""
    return y if isinstance(y, dict) else {qm.outputs[0]: y}
