"""Writing a one-subgraph ``.tflite`` flatbuffer (internal to :mod:`refquant.interop.tflite`).

:class:`TfliteWriter` collects tensors (with their quantization and, for constants, 16-byte
aligned little-endian buffers), operators and operator codes, and :meth:`TfliteWriter.finish`
packs them with the schema's object API, file identifier ``TFL3``. Rules LiteRT imposes (buffer 0
the empty sentinel, ``deprecated_builtin_code`` clamped to 127, quantization on every integer
tensor) are kept here.
"""

from __future__ import annotations

import numpy as np

from ._tflite_read import schema

__all__ = ["TfliteWriter", "OP_VERSIONS"]

#: Operator versions written: registered by every LiteRT resolver for the int8 and int16 kernels used.
OP_VERSIONS = {"FULLY_CONNECTED": 4, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "QUANTIZE": 2, "DEQUANTIZE": 2, "RESHAPE": 1}
_TYPES = {"float32": "FLOAT32", "int8": "INT8", "uint8": "UINT8", "int16": "INT16", "int32": "INT32",
          "int64": "INT64"}


def _aligned_buffer_class(sch):
    class AlignedBufferT(sch.BufferT):
        """A BufferT whose data vector is 16-byte aligned."""

        def Pack(self, builder):  # noqa: N802 - flatbuffers naming
            data = None
            if self.data is not None:
                payload = bytes(self.data)
                builder.StartVector(1, len(payload), 16)
                builder.head = builder.head - len(payload)
                builder.Bytes[builder.head:builder.head + len(payload)] = payload
                builder.vectorNumElems = len(payload)
                data = builder.EndVector()
            sch.BufferStart(builder)
            if data is not None:
                sch.BufferAddData(builder, data)
            return sch.BufferEnd(builder)
    return AlignedBufferT


class TfliteWriter:
    """Tensors, buffers and operators of one subgraph."""

    def __init__(self):
        self.sch = schema()
        self._buffer = _aligned_buffer_class(self.sch)
        self.tensors, self.buffers, self.ops, self.codes = [], [self._buffer()], [], {}

    def tensor(self, name: str, shape, dtype: str, scale=None, zero_point=None, *, data=None, signature=None,
               quantized_dimension: int = 0) -> int:
        """Add a tensor (a constant with ``data``); returns its index."""
        sch = self.sch
        t = sch.TensorT()
        t.name, t.shape = name, [int(d) for d in shape]
        if signature is not None and any(d < 0 for d in signature):
            t.shapeSignature = [int(d) for d in signature]
        t.type = getattr(sch.TensorType, _TYPES[np.dtype(dtype).name])
        t.buffer = 0
        if data is not None:
            buf = self._buffer()
            buf.data = np.ascontiguousarray(data, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = sch.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(np.asarray(scale, np.float32))]
            zps = np.atleast_1d(np.asarray(zero_point, np.int64))
            if zps.size == 1 and len(q.scale) > 1:
                zps = np.repeat(zps, len(q.scale))
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = int(quantized_dimension)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def constant(self, name: str, value: np.ndarray) -> int:
        """An unquantized constant (axes, paddings, shapes)."""
        value = np.asarray(value)
        return self.tensor(name, value.shape, value.dtype.name, data=value)

    def op(self, name: str, inputs, outputs, options_name: str | None = None, **options) -> None:
        """Add operator ``name`` (``"CONV_2D"``) with its ``*Options`` fields (camelCase, enums by name)."""
        sch = self.sch
        if name not in self.codes:
            code = sch.OperatorCodeT()
            code.builtinCode = getattr(sch.BuiltinOperator, name)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = OP_VERSIONS.get(name, 2)
            self.codes[name] = (len(self.codes), code)
        op = sch.OperatorT()
        op.opcodeIndex = self.codes[name][0]
        op.inputs, op.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
        if options_name is not None:
            opts = getattr(sch, f"{options_name}T")()
            for key, value in options.items():
                if key == "fusedActivationFunction":
                    value = getattr(sch.ActivationFunctionType, value or "NONE")
                elif key == "padding":
                    value = getattr(sch.Padding, value)
                setattr(opts, key, value)
            op.builtinOptionsType = getattr(sch.BuiltinOptions, options_name)
            op.builtinOptions = opts
        self.ops.append(op)

    def finish(self, inputs, outputs, description: str) -> bytes:
        import flatbuffers

        sch = self.sch
        sub = sch.SubGraphT()
        sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = (self.tensors, list(inputs), list(outputs),
                                                                         self.ops, "main")
        model = sch.ModelT()
        model.version = 3
        model.operatorCodes = [code for _, code in sorted(self.codes.values(), key=lambda c: c[0])]
        model.subgraphs, model.buffers, model.description = [sub], self.buffers, description
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
