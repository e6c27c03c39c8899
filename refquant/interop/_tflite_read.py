"""Reading a ``.tflite`` flatbuffer into plain records (internal to :mod:`refquant.interop.tflite`).

The schema is the one ``ai-edge-litert`` ships (``ai_edge_litert.schema_py_generated``, object
API, ``flatbuffers`` underneath); both packages are imported when a function needs them
(:func:`schema`), with a :class:`~refquant.errors.UnsupportedError` naming the install command
when they are missing. No TensorFlow.

:func:`read_model` checks the file identifier (``TFL3``), reads the first subgraph and returns a
:class:`TflModel`: operators in execution order (:class:`TflOp`: builtin name, inputs, outputs,
options as a dict with snake-case keys) and tensors (:class:`TflTensor`: name, shape, shape
signature, NumPy dtype, scales, zero points, quantized dimension, constant data).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from ..errors import FormatVersionError, UnsupportedError

__all__ = ["schema", "TflTensor", "TflOp", "TflModel", "read_model", "TENSOR_DTYPES"]

_INSTALL = "pip install ai-edge-litert flatbuffers"


def schema():
    """The ``ai_edge_litert.schema_py_generated`` module (imported on first use)."""
    try:
        import flatbuffers  # noqa: F401  (the schema module needs it)
        from ai_edge_litert import schema_py_generated as sch
    except ImportError as err:
        raise UnsupportedError(f"reading and writing .tflite files needs the optional packages ai-edge-litert and "
                               f"flatbuffers ({err}); install them with `{_INSTALL}`") from None
    return sch


#: TFLite ``TensorType`` name -> NumPy dtype name (the types refquant reads).
TENSOR_DTYPES = {"FLOAT32": "float32", "INT8": "int8", "UINT8": "uint8", "INT16": "int16", "INT32": "int32",
                 "INT64": "int64", "FLOAT16": "float16", "BOOL": "bool"}


@dataclasses.dataclass
class TflTensor:
    """One tensor of the subgraph, as the flatbuffer holds it."""

    index: int
    name: str
    type_name: str  # "INT8", "FLOAT32", ...
    shape: tuple
    signature: tuple  # shape_signature (-1: a dimension fixed at run time), else the shape
    scale: np.ndarray | None  # float32 (1,) or (C,); None: not quantized
    zero_point: np.ndarray | None  # int64
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, shaped; None for a tensor computed at run time

    @property
    def dtype(self) -> str | None:
        return TENSOR_DTYPES.get(self.type_name)


@dataclasses.dataclass
class TflOp:
    """One operator: builtin name (``"CONV_2D"``), tensor indices (-1: an absent optional input), options."""

    index: int
    op: str
    inputs: list
    outputs: list
    options: dict
    version: int


@dataclasses.dataclass
class TflModel:
    ops: list
    tensors: list
    inputs: list
    outputs: list


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(sch, opts) -> dict:
    """An ``*OptionsT`` object as a dict: snake-case keys, enums by name, vectors as tuples."""
    if opts is None:
        return {}
    act = {v: k for k, v in vars(sch.ActivationFunctionType).items() if not k.startswith("_")}
    pad = {v: k for k, v in vars(sch.Padding).items() if not k.startswith("_")}
    out = {}
    for name, value in vars(opts).items():
        if name == "fusedActivationFunction":
            out["activation"] = act.get(value, str(value))
        elif name == "padding" and isinstance(value, int):
            out["padding"] = pad.get(value, str(value))
        elif isinstance(value, (list, tuple, np.ndarray)):
            out[_snake(name)] = tuple(np.asarray(value).tolist())
        else:
            out[_snake(name)] = value
    return out


def _tensor(sch, m, i: int, t, type_names) -> TflTensor:
    name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else (t.name or "")
    type_name = type_names.get(t.type, str(t.type))
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    signature = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
    data = None
    raw = m.buffers[t.buffer].data if 0 <= t.buffer < len(m.buffers) else None
    if raw is not None and len(raw):
        if type_name not in TENSOR_DTYPES:
            raise UnsupportedError(f"tensor {i} {name!r}: constant of type {type_name} is not read")
        dt = np.dtype(TENSOR_DTYPES[type_name]).newbyteorder("<")
        data = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dt).astype(dt.newbyteorder("="))
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise FormatVersionError(f"tensor {i} {name!r}: its buffer holds {data.size} values, its shape "
                                     f"{list(shape)} needs {int(np.prod(shape, dtype=np.int64))}")
        data = data.reshape(shape)
    q = t.quantization
    has_q = q is not None and q.scale is not None and len(q.scale) > 0
    return TflTensor(i, name, type_name, shape, signature,
                     np.asarray(q.scale, np.float32) if has_q else None,
                     np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.int64) if has_q else None,
                     int(q.quantizedDimension) if has_q else 0, data)


def read_model(content: bytes) -> TflModel:
    """The first subgraph of the ``.tflite`` flatbuffer ``content``.

    Raises:
        FormatVersionError: Not a TFLite flatbuffer (no ``TFL3`` identifier), truncated or malformed.
        UnsupportedError: Several subgraphs, custom operators, or missing optional packages.
    """
    sch = schema()
    if len(content) < 8 or not sch.Model.ModelBufferHasIdentifier(content, 0):
        raise FormatVersionError(f"path_or_bytes must be a .tflite flatbuffer (file identifier 'TFL3' at byte 4), "
                                 f"got {len(content)} bytes starting {bytes(content[:8])!r}")
    try:
        m = sch.ModelT.InitFromObj(sch.Model.GetRootAsModel(content, 0))
        op_names = {v: k for k, v in vars(sch.BuiltinOperator).items() if not k.startswith("_")}
        type_names = {v: k for k, v in vars(sch.TensorType).items() if not k.startswith("_")}
        if not m.subgraphs:
            raise FormatVersionError("path_or_bytes: the model has no subgraph")
        if len(m.subgraphs) > 1:
            raise UnsupportedError(f"the model has {len(m.subgraphs)} subgraphs (control flow); only one is modelled")
        sg = m.subgraphs[0]
        tensors = [_tensor(sch, m, i, t, type_names) for i, t in enumerate(sg.tensors or [])]
        ops = []
        for k, op in enumerate(sg.operators or []):
            code = m.operatorCodes[op.opcodeIndex]
            name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
            if name == "CUSTOM":
                custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
                name = f"CUSTOM({custom})"
            ops.append(TflOp(k, name, [int(i) for i in (op.inputs if op.inputs is not None else [])],
                             [int(i) for i in (op.outputs if op.outputs is not None else [])],
                             _options(sch, op.builtinOptions), int(code.version)))
        return TflModel(ops, tensors, [int(i) for i in sg.inputs], [int(i) for i in sg.outputs])
    except (FormatVersionError, UnsupportedError):
        raise
    except Exception as err:  # noqa: BLE001 - a truncated or corrupt flatbuffer raises anything while decoding
        raise FormatVersionError(f"path_or_bytes is not a readable .tflite flatbuffer (truncated or corrupt: "
                                 f"{type(err).__name__}: {err})") from None
