"""Read a whole ``.tflite`` model and run it on LiteRT keeping every tensor.

No TensorFlow: the flatbuffer is read with the object API of ``ai_edge_litert/schema_py_generated.py``
(``flatbuffers`` underneath) and run by ``ai_edge_litert.interpreter.Interpreter``.

* :func:`read_graph` gives the first subgraph as a :class:`TfliteGraph`: its operators in execution order
  (:class:`TflOp`: builtin name, version, input/output tensor indices, options as a plain dict) and its
  tensors (:class:`TflTensor`: name, shape, NumPy dtype, scales, zero points, quantized dimension and,
  for a constant, its contents).
* :func:`run_graph` runs the model with ``experimental_preserve_all_tensors=True`` under a resolver of
  :data:`support.tflite_builder.RESOLVERS` (``"ref"``, ``"builtin"``, ``"xnnpack"``) and returns every
  non-constant tensor's value, so a test can feed each operator LiteRT's own inputs and compare with
  LiteRT's own output.

Options: the operator's ``*OptionsT`` fields in snake case, with these made readable:

| flatbuffer field(s) | key | value |
|---|---|---|
| ``fusedActivationFunction`` | ``activation`` | ``"NONE"``, ``"RELU"``, ``"RELU6"``, ``"RELU_N1_TO_1"``, ... |
| ``padding`` | ``padding`` | ``"SAME"`` or ``"VALID"`` |
| ``strideH``, ``strideW`` | ``stride`` | ``(h, w)`` |
| ``dilationHFactor``, ``dilationWFactor`` | ``dilation`` | ``(h, w)`` |
| ``filterHeight``, ``filterWidth`` | ``filter_size`` | ``(h, w)`` |
| ``keepDims`` / ``keepNumDims`` | ``keep_dims`` / ``keep_num_dims`` | bool |
| the constant second input of MEAN, SUM, REDUCE_MAX, ... | ``axis`` | tuple of ints |

Every other field keeps its value (``beta``, ``axis`` of PACK / CONCATENATION, ``depth_multiplier``,
``pot_scale_int16``, ...), vectors as tuples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

import numpy as np
from ai_edge_litert import schema_py_generated as sch
from ai_edge_litert.interpreter import Interpreter

from .tflite_builder import RESOLVERS, _quiet_stderr, is_delegated

__all__ = ["OP_NAMES", "TENSOR_DTYPES", "TflOp", "TflTensor", "TfliteGraph", "read_graph", "run_graph"]

#: ``BuiltinOperator`` code → name.
OP_NAMES = {v: k for k, v in vars(sch.BuiltinOperator).items() if not k.startswith("_")}
#: ``TensorType`` code → NumPy dtype (the types whose buffers are plain little-endian arrays).
TENSOR_DTYPES = {sch.TensorType.FLOAT32: np.float32, sch.TensorType.FLOAT16: np.float16,
                 sch.TensorType.FLOAT64: np.float64, sch.TensorType.INT8: np.int8, sch.TensorType.UINT8: np.uint8,
                 sch.TensorType.INT16: np.int16, sch.TensorType.UINT16: np.uint16, sch.TensorType.INT32: np.int32,
                 sch.TensorType.UINT32: np.uint32, sch.TensorType.INT64: np.int64, sch.TensorType.UINT64: np.uint64,
                 sch.TensorType.BOOL: np.bool_}
_TYPE_NAMES = {v: k for k, v in vars(sch.TensorType).items() if not k.startswith("_")}
_ACTIVATION_NAMES = {v: k for k, v in vars(sch.ActivationFunctionType).items() if not k.startswith("_")}
_PADDING_NAMES = {v: k for k, v in vars(sch.Padding).items() if not k.startswith("_")}
_PAIRS = {("strideH", "strideW"): "stride", ("dilationHFactor", "dilationWFactor"): "dilation",
          ("filterHeight", "filterWidth"): "filter_size"}
#: Reducers whose second input is the constant axis list.
_REDUCERS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL")


@dataclasses.dataclass
class TflTensor:
    """One tensor of the subgraph, as the flatbuffer holds it."""

    index: int
    name: str
    dtype: type  # NumPy scalar type
    shape: tuple
    scale: np.ndarray | None  # float32 (1,) per-tensor or (C,) per-channel; None: not quantized
    zero_point: np.ndarray | None  # int64, same length as scale
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, shaped; None for a tensor computed at run time

    @property
    def type_name(self) -> str:
        """``"INT16"``, ``"FLOAT32"``, ...: the flatbuffer's name for the dtype."""
        return next(_TYPE_NAMES[k] for k, v in TENSOR_DTYPES.items() if v is self.dtype)


@dataclasses.dataclass
class TflOp:
    """One operator: builtin name (``"CONV_2D"``), inputs and outputs (tensor indices, -1: absent optional)."""

    index: int
    op: str
    inputs: list
    outputs: list
    options: dict = dataclasses.field(default_factory=dict)
    version: int = 1


@dataclasses.dataclass
class TfliteGraph:
    """The first subgraph of a model: ``ops`` in execution order, ``tensors`` by index, graph ``inputs``/``outputs``."""

    content: bytes
    ops: list
    tensors: list
    inputs: list
    outputs: list

    def consumers(self, tensor: int) -> list:
        """The operators reading ``tensor``, in order."""
        return [op for op in self.ops if tensor in op.inputs]

    def producer(self, tensor: int):
        """The operator writing ``tensor``, or None (a graph input or a constant)."""
        return next((op for op in self.ops if tensor in op.outputs), None)

    def types(self, op: TflOp) -> str:
        """``"INT16, INT8, INT64 -> INT16"``: the operator's tensor types (``-`` for an absent input)."""
        ins = ", ".join("-" if i < 0 else self.tensors[i].type_name for i in op.inputs)
        return f"{ins} -> {', '.join(self.tensors[i].type_name for i in op.outputs)}"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(opts) -> dict:
    """An ``*OptionsT`` object as a dict (see the module docstring)."""
    if opts is None:
        return {}
    fields = dict(vars(opts))
    out = {}
    for (h, w), key in _PAIRS.items():
        if h in fields and w in fields:
            out[key] = (int(fields.pop(h)), int(fields.pop(w)))
    for name, value in fields.items():
        if name == "fusedActivationFunction":
            out["activation"] = _ACTIVATION_NAMES[value]
        elif name == "padding" and isinstance(value, int):
            out["padding"] = _PADDING_NAMES[value]
        elif isinstance(value, (list, tuple, np.ndarray)):
            out[_snake(name)] = tuple(np.asarray(value).tolist())
        else:
            out[_snake(name)] = value
    return out


def read_graph(content: bytes) -> TfliteGraph:
    """The first subgraph of the ``.tflite`` flatbuffer ``content`` (see the module docstring)."""
    m = sch.ModelT.InitFromObj(sch.Model.GetRootAsModel(content, 0))
    sg = m.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors):
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        if t.type not in TENSOR_DTYPES:
            raise ValueError(f"tensor {i} {name!r}: type {_TYPE_NAMES.get(t.type, t.type)} is not read")
        dtype = TENSOR_DTYPES[t.type]
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        raw = m.buffers[t.buffer].data
        data = None
        if raw is not None:
            data = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), np.dtype(dtype).newbyteorder("<"))
            data = data.astype(dtype).reshape(shape)
        q = t.quantization
        has_q = q is not None and q.scale is not None
        tensors.append(TflTensor(i, name, dtype, shape,
                                 np.asarray(q.scale, np.float32) if has_q else None,
                                 np.asarray(q.zeroPoint, np.int64) if has_q else None,
                                 int(q.quantizedDimension) if has_q else 0, data))
    ops = []
    for k, op in enumerate(sg.operators):
        code = m.operatorCodes[op.opcodeIndex]
        name = OP_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]
        inputs = [int(i) for i in op.inputs] if op.inputs is not None else []
        outputs = [int(i) for i in op.outputs] if op.outputs is not None else []
        options = _options(op.builtinOptions)
        if name in _REDUCERS and len(inputs) > 1 and tensors[inputs[1]].data is not None:
            options["axis"] = tuple(int(a) for a in tensors[inputs[1]].data.ravel())
        ops.append(TflOp(k, name, inputs, outputs, options, int(code.version)))
    return TfliteGraph(content, ops, tensors, [int(i) for i in sg.inputs], [int(i) for i in sg.outputs])


def run_graph(content: bytes, inputs: list, resolver: str = "ref", *, every_tensor: bool = True,
              return_delegated: bool = False):
    """Run the model on ``inputs`` (arrays in graph-input order; a graph input's batch dimension is resized
    to the array's shape) under ``resolver``.

    Returns:
        ``{tensor index: array}`` (copies): every non-constant tensor with ``every_tensor``
        (``experimental_preserve_all_tensors``; XNNPACK then gets one partition per node, same values), else
        the graph outputs only; ``(values, delegated)`` with ``return_delegated`` (whether XNNPACK took any node).
    """
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver must be one of {sorted(RESOLVERS)}, got {resolver!r}")
    quiet = _quiet_stderr() if resolver == "xnnpack" else contextlib.nullcontext()
    with quiet:
        interp = Interpreter(model_content=content, experimental_op_resolver_type=RESOLVERS[resolver],
                             experimental_preserve_all_tensors=every_tensor, num_threads=1)
        details = interp.get_input_details()
        if len(details) != len(inputs):
            raise ValueError(f"the model has {len(details)} inputs, got {len(inputs)} arrays")
        for detail, value in zip(details, inputs):
            interp.resize_tensor_input(detail["index"], np.shape(value))
        interp.allocate_tensors()
    for detail, value in zip(details, inputs):
        interp.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"], order="C"))
    interp.invoke()
    if every_tensor:
        wanted = _variable_indices(content)
    else:
        wanted = [d["index"] for d in interp.get_output_details()]
    values = {i: np.array(interp.get_tensor(i), copy=True) for i in wanted}
    return (values, is_delegated(interp)) if return_delegated else values


def _variable_indices(content: bytes) -> list:
    """The indices of the first subgraph's tensors without constant data."""
    m = sch.Model.GetRootAsModel(content, 0)
    sg = m.Subgraphs(0)
    return [i for i in range(sg.TensorsLength()) if m.Buffers(sg.Tensors(i).Buffer()).DataLength() == 0]
