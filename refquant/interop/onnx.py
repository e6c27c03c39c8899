"""ONNX models: export refquant's integer models for ONNX Runtime.

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

from .. import _validate as V
from ..errors import QuantizationTypeError, UnsupportedError
from ..qmodel import QuantizedModel, storage
from ._onnx_export import (
    EXPORTED_OPS,
    IR_VERSION,
    MS_DOMAIN_VERSION,
    OPSET,
    build_proto,
    write_atomic,
)

__all__ = ["EXPORTED_OPS", "FORMATS", "IR_VERSION", "MS_DOMAIN_VERSION", "OPSET", "export"]

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
