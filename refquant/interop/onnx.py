"""ONNX models: run ONNX Runtime-quantized models as ONNX Runtime runs them, read float ONNX
models into :mod:`refquant.nn`, and export refquant's integer models for ONNX Runtime.

:func:`import_quantized` reads a QDQ or QOperator model (for example one written by ONNX
Runtime's ``onnxruntime.quantization.quantize_static``) and first rewrites it as ONNX Runtime's CPU
execution provider does at its default optimization level (ONNX Runtime 1.32): each
DequantizeLinear gets one reader, int8 QuantizeLinear → DequantizeLinear pairs read by one node
become uint8, and DQ → op → Q groups are fused into ``QLinearConv``, ``QLinearMatMul``,
``QGemm``, ``QLinearAdd``, ``QLinearMul``, ``QLinearConcat``, ``QLinearAveragePool``,
``QLinearGlobalAveragePool``, ``QLinearLeakyRelu``, ``QLinearSigmoid`` and ``QLinearSoftmax``
(a Relu or Clip before the Q dropped when the Q's range lies inside it), where ONNX Runtime's
selectors allow it. On x86-64 they refuse int8 activations into QLinearConv and QLinearMatMul, so an
int8 ("s8s8") group whose Q is read by several nodes stays DequantizeLinear → float Conv →
QuantizeLinear. Every kernel then runs as the ``onnxruntime`` face computes it. A group left in
float whose result depends on summation order (Conv, Gemm, MatMul, pooling averages, Softmax,
Sigmoid, ...) is refused with an ``UnsupportedError`` naming the node and op; order-free float ops
(Add, Sub, Mul, Max, Min, Relu, Clip) and data movement run.

:func:`import_float` reads a float ONNX model into a :mod:`refquant.nn` model, to quantize with
refquant's flows.

:func:`export` writes a :class:`~refquant.qmodel.QuantizedModel` made with the ``onnxruntime``
profile (``refquant.ptq.quantize_static(model, x, profile="onnxruntime")``) as an ONNX model
that ONNX Runtime's CPU execution provider, at its default graph optimization level, runs to
``qmodel.run(x)``'s result, bit for bit. Two formats:

| integer-model node | ``format="qoperator"`` | ``format="qdq"`` (fused by ORT into) |
|---|---|---|
| ``quantize`` / ``dequantize`` | QuantizeLinear / DequantizeLinear | the same |
| ``conv2d`` (int32 bias) | QLinearConv | DQ → Conv → Q (QLinearConv) |
| ``linear`` (int32 bias) | com.microsoft.QGemm, ``transB=1`` | DQ → Gemm → Q (QGemm) |
| ``add`` | com.microsoft.QLinearAdd | DQ, DQ → Add → Q (QLinearAdd) |
| ``max_pool2d`` | MaxPool on the 8-bit codes | DQ → MaxPool → Q (MaxPool on codes) |
| ``global_average_pool`` | com.microsoft.QLinearGlobalAveragePool, Flatten | DQ → GlobalAveragePool → Q, Flatten |
| ``flatten`` | Flatten on the codes | DQ → Flatten → Q (Flatten on codes) |

Weights are int8 codes, per output channel (axis 0) or per tensor; a QDQ bias is the int32
bias dequantized with $S_x S_w$ (ORT's fusion takes the int32 values). A ``linear`` node is
``QGemm`` because that is the op ORT's optimizer makes of a QDQ ``Gemm``, and its arithmetic
is the node's under the ``onnxruntime`` profile: the int32 accumulator plus the int32 bias,
times $\\mathrm{fl}(\\mathrm{fl}(S_x S_w) / S_y)$ in float32, round half to even, $+ Z_y$. The
onnxruntime recipe puts no ReLU / ReLU6 in the integer model (ORT's quantizer removes an
activation its output range covers); a node with a fused activation is refused.

The file declares opset :data:`OPSET` of the default domain and version
:data:`MS_DOMAIN_VERSION` of ``com.microsoft``, and records the profile and format in its
metadata. It needs the optional package ``onnx`` (``pip install onnx``), imported on first use.

Measured with ONNX Runtime 1.32 (CPU execution provider, one intra-op thread, default
optimization level ``ORT_ENABLE_ALL``) on an AVX-512 VNNI x86-64 CPU, for refquant's four
bundled models, both formats, batch 1 and 359: outputs equal ``qmodel.run`` bit for bit.

Added in 0.1.0.
"""

from __future__ import annotations

import os

from .. import _validate as V
from ..errors import FormatVersionError, QuantizationTypeError, UnsupportedError
from ..qmodel import QuantizedModel, storage
from ._onnx_export import (
    EXPORTED_OPS,
    IR_VERSION,
    MS_DOMAIN_VERSION,
    OPSET,
    build_proto,
    write_atomic,
    require_onnx,
)
from ._onnx_import import SUPPORTED_OPS as IMPORTED_OPS

__all__ = ["EXPORTED_OPS", "FORMATS", "IR_VERSION", "MS_DOMAIN_VERSION", "OPSET", "export", "import_quantized",
           "import_float", "IMPORTED_OPS"]

#: The ``format`` choices of :func:`export`.
FORMATS = ("qdq", "qoperator")
#: The per-sample input shape :func:`export` assumes when none is given: refquant's bundled digits models.
DIGITS_INPUT_SHAPE = (1, 8, 8)


def export(qmodel, path, *, format: str = "qdq", input_shape=None) -> None:
    """Write ``qmodel`` as an ONNX model that ONNX Runtime runs to ``qmodel.run``'s result, bit for bit.

    The file is written to a temporary name beside ``path`` and renamed, so a failure leaves
    nothing at ``path``. The input keeps the model's name and layout (NCHW float32), with a free
    batch dimension ``"N"``; the output is the model's float32 output.

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel` with profile ``onnxruntime``.
        path: The ``.onnx`` file to write (str or os.PathLike).
        format: ``"qdq"`` (float ops between QuantizeLinear / DequantizeLinear, fused by ORT) or
            ``"qoperator"`` (QLinearConv, QGemm, ... directly); module table.
        input_shape: The shape of one sample, without the batch. ``None``:
            ``qmodel.metadata["input_shape"]`` if recorded, else ``(1, 8, 8)`` (the bundled models).

    Raises:
        UnsupportedError: A model made with another profile (its arithmetic is not ORT's), a
            node ``export`` cannot express (named, with its op), or ``onnx`` missing.
        QuantizationTypeError, QuantizationValueError: Bad arguments (named).

    Example:
        >>> from refquant.interop import onnx
        >>> onnx.export(qm, "model.onnx", format="qoperator")  # doctest: +SKIP
    """
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a QuantizedModel, got {V.describe(qmodel)}")
    if qmodel.profile != "onnxruntime":
        raise UnsupportedError(f"qmodel.profile must be 'onnxruntime' to be exported to ONNX (another profile's "
                               f"arithmetic is not ONNX Runtime's), got {qmodel.profile!r}")
    fmt = V.as_choice(format, "format", FORMATS)
    storage.check_path(path)  # before any work
    if input_shape is None:
        input_shape = qmodel.metadata.get("input_shape", DIGITS_INPUT_SHAPE)
    shape = tuple(V.as_int_sequence(input_shape, "input_shape", minimum=1))
    meta = {"refquant_profile": qmodel.profile, "refquant_format": fmt, "opset": OPSET,
            "com.microsoft": MS_DOMAIN_VERSION}
    proto = build_proto(qmodel, fmt, shape, meta)
    write_atomic(proto.SerializeToString(), path)


def _load(path_or_bytes):
    """The ``onnx.ModelProto`` of a file name or of the model's bytes."""
    onnx = require_onnx()
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        name = os.fspath(path_or_bytes)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"path_or_bytes must name an existing .onnx file, got {name!r}")
        with open(name, "rb") as f:
            data = f.read()
    else:
        raise QuantizationTypeError(f"path_or_bytes must be a file name (str or os.PathLike) or the model's bytes, "
                                    f"got {V.describe(path_or_bytes)}")
    try:
        proto = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise FormatVersionError(f"path_or_bytes is not an ONNX model (it does not parse as a ModelProto: "
                                 f"{type(err).__name__}: {err})") from None
    if not proto.graph.node or not proto.graph.output:
        raise FormatVersionError("path_or_bytes is not an ONNX model (its graph has no nodes or no outputs; a "
                                 "truncated or non-ONNX file?)")
    return proto


def _input_shape(g) -> tuple | None:
    for dt, shape in g.inputs.values():
        if len(shape) > 1 and all(isinstance(d, int) and d > 0 for d in shape[1:]):
            return tuple(int(d) for d in shape[1:])
    return None


def import_quantized(path_or_bytes, *, profile: str = "onnxruntime", isa: str = "auto") -> QuantizedModel:
    """Read a quantized ONNX model (QDQ or QOperator), to run as ONNX Runtime's CPU execution provider runs it.

    The graph is first rewritten as ONNX Runtime rewrites it at its default optimization level
    (module docstring); each resulting kernel becomes one node of the integer model: ``conv2d``,
    ``linear``, ``add``, ``mul``, ``logistic``, ``global_average_pool`` (their arithmetic under the
    ``onnxruntime`` profile is QLinearConv's, QGemm's, ...), and the ONNX nodes of
    :mod:`refquant.qmodel.nodes_onnx` for the other contrib ops, MaxPool, shape ops and the float
    ops left between DequantizeLinear and QuantizeLinear.

    Args:
        path_or_bytes: An ``.onnx`` file name, or its contents (``bytes``).
        profile: ``"onnxruntime"`` (the only runtime that runs these ops).
        isa: The CPU whose ONNX Runtime to reproduce: ``"auto"`` (this one), ``"avx2"`` (uint8 x
            int8 products summed in int16 pairs, which saturate), ``"vnni"`` or ``"exact"``.

    Returns:
        A :class:`~refquant.qmodel.QuantizedModel`; ``run(x)`` takes the model's float32 input and
        returns what ``InferenceSession.run`` returns for it, bit for bit.

    Raises:
        FormatVersionError: Not an ONNX model (truncated, corrupt, another format).
        UnsupportedError: An op outside :data:`IMPORTED_OPS` (named, with the list), a node ONNX
            Runtime runs in float32 with an order-dependent result (named with its op), a float
            model, per-channel activations, a missing initializer, or ``onnx`` not installed.
        QuantizationTypeError, QuantizationValueError: Bad arguments (named).
        FileNotFoundError: ``path_or_bytes`` names no file.

    Example:
        >>> from refquant.interop import onnx
        >>> qm = onnx.import_quantized("model.quant.onnx")  # doctest: +SKIP
        >>> y = qm.run(x)  # == onnxruntime.InferenceSession("model.quant.onnx").run(None, {"input": x})[0]  # doctest: +SKIP
    """
    from ._onnx_graph import ort_rewrite, read_graph
    from ._onnx_import import build_model

    V.as_choice(profile, "profile", ("onnxruntime",))
    isa = V.as_choice(isa, "isa", ("auto", "avx2", "vnni", "exact"))
    g = read_graph(_load(path_or_bytes))
    meta = {"source": "onnx", "opset": g.opset}
    shape = _input_shape(g)
    if shape is not None:
        meta["input_shape"] = list(shape)
    return build_model(ort_rewrite(g), profile=profile, isa=isa, metadata=meta)


def import_float(path_or_bytes):
    """Read a float ONNX model as a :mod:`refquant.nn` model (eval mode), to quantize with refquant's flows.

    Reads Gemm, MatMul, Conv (groups too), BatchNormalization, Relu, Clip, Sigmoid, MaxPool,
    AveragePool, GlobalAveragePool, Add (a residual join, or a MatMul's bias), Flatten, Reshape,
    Softmax, Identity and Dropout, for a chain of layers with residual blocks; anything else is an
    ``UnsupportedError`` naming the node and op.

    Args:
        path_or_bytes: An ``.onnx`` file name, or its contents (``bytes``).

    Returns:
        A :class:`refquant.nn.Module` whose ``forward`` computes the file's graph (NCHW input).

    Raises:
        FormatVersionError: Not an ONNX model. UnsupportedError: As above, a quantized model, or
        ``onnx`` not installed. FileNotFoundError: No such file.

    Example:
        >>> from refquant.interop import onnx
        >>> model = onnx.import_float("model.onnx")  # doctest: +SKIP
    """
    from ._onnx_float import build_float_model

    return build_float_model(_load(path_or_bytes))
