"""Multi-operator int8 ``.tflite`` graphs written through the schema (no TensorFlow, no refquant), for the
importer's tests: the operators the converter fixtures lack (MUL, CONCATENATION, SOFTMAX, LOGISTIC, TANH,
AVERAGE_POOL_2D, PAD, a broadcast ADD with a constant operand), two inputs (float32 and int8) and two outputs.

Built with :class:`support.tflite_builder.Graph` (tensors and aligned buffers); :func:`pack` writes several
operators where ``tflite_builder.build_model`` writes one.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as sch

from .tflite_builder import _ACTIVATIONS, Graph

__all__ = ["pack", "mixed_graph"]

_VERSIONS = {"FULLY_CONNECTED": 4, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "RESHAPE": 1}


def pack(graph: Graph, ops, inputs, outputs) -> bytes:
    """``ops``: ``(name, inputs, outputs, options_type_name or None, {field: value})`` in execution order."""
    codes, operators = {}, []
    for name, ins, outs, opt_name, fields in ops:
        if name not in codes:
            code = sch.OperatorCodeT()
            code.builtinCode = getattr(sch.BuiltinOperator, name)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = _VERSIONS.get(name, 2)
            codes[name] = (len(codes), code)
        op = sch.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = codes[name][0], list(ins), list(outs)
        if opt_name:
            opts = getattr(sch, opt_name + "T")()
            for k, v in fields.items():
                setattr(opts, k, _ACTIVATIONS[v] if k == "fusedActivationFunction" else v)
            op.builtinOptionsType, op.builtinOptions = getattr(sch.BuiltinOptions, opt_name), opts
        operators.append(op)
    sub = sch.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = graph.tensors, inputs, outputs, operators, "main"
    model = sch.ModelT()
    model.version, model.subgraphs, model.buffers = 3, [sub], graph.buffers
    model.operatorCodes = [c for _, c in sorted(codes.values(), key=lambda c: c[0])]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def mixed_graph(rng, *, h: int = 6, c: int = 4, scales=None) -> bytes:
    """float32 ``a (1, h, h, c)`` and int8 ``b (1, h, h, c)`` →

    ``qa = QUANTIZE(a)``; ``p = PAD(qa, 1)``; ``ap = AVERAGE_POOL_2D(p, 3x3, VALID)``; ``s = ADD(ap, const (1,1,1,c))``
    (broadcast, RELU); ``m = MUL(s, b)`` (output parameters = ``qa``'s); ``cat = CONCATENATION([m, qa], axis 3)``;
    ``lg = LOGISTIC(cat)``; ``th = TANH(cat)``; ``r = RESHAPE(lg, [-1, h*h*2c])``; ``fc = FULLY_CONNECTED(r)``;
    ``out1 = SOFTMAX(fc)`` (int8); ``mean = MEAN(th, axes (1, 2))``; ``out2 = DEQUANTIZE(mean)`` (float32).
    """
    s = scales or {}
    f32 = np.float32
    g = Graph()
    sa, za = f32(s.get("a", rng.uniform(0.01, 0.05))), int(rng.integers(-20, 20))
    sb, zb = f32(s.get("b", rng.uniform(0.005, 0.05))), int(rng.integers(-20, 20))
    ss, zs = f32(rng.uniform(0.01, 0.06)), int(rng.integers(-128, -100))
    shp, cat_shape = (1, h, h, c), (1, h, h, 2 * c)
    a = g.tensor("a", shp, np.float32)
    b = g.tensor("b", shp, np.int8, sb, zb)
    qa = g.tensor("qa", shp, np.int8, sa, za)
    pads = g.tensor("pads", (4, 2), np.int32, data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    p = g.tensor("p", (1, h + 2, h + 2, c), np.int8, sa, za)
    ap = g.tensor("ap", shp, np.int8, sa, za)
    k = g.tensor("k", (1, 1, 1, c), np.int8, f32(rng.uniform(0.01, 0.05)), int(rng.integers(-10, 10)),
                 data=rng.integers(-128, 128, (1, 1, 1, c), dtype=np.int8))
    sm = g.tensor("s", shp, np.int8, ss, zs)
    m = g.tensor("m", shp, np.int8, sa, za)
    cat = g.tensor("cat", cat_shape, np.int8, sa, za)
    lg = g.tensor("lg", cat_shape, np.int8, 1 / 256, -128)
    th = g.tensor("th", cat_shape, np.int8, 1 / 128, 0)
    shape = g.tensor("shape", (2,), np.int32, data=np.array([-1, h * h * 2 * c], np.int32))
    r = g.tensor("r", (1, h * h * 2 * c), np.int8, 1 / 256, -128)
    n_out = 10
    w_scale = rng.uniform(0.002, 0.01, n_out).astype(f32)
    w = g.tensor("w", (n_out, h * h * 2 * c), np.int8, w_scale, 0,
                 data=rng.integers(-127, 128, (n_out, h * h * 2 * c), dtype=np.int8))
    bias = g.tensor("bias", (n_out,), np.int32, (np.float64(1 / 256) * w_scale).astype(f32), 0,
                    data=rng.integers(-3000, 3000, n_out, dtype=np.int32))
    fc = g.tensor("fc", (1, n_out), np.int8, f32(rng.uniform(0.05, 0.2)), int(rng.integers(-10, 10)))
    out1 = g.tensor("probs", (1, n_out), np.int8, 1 / 256, -128)
    axes = g.tensor("axes", (2,), np.int32, data=np.array([1, 2], np.int32))
    mean = g.tensor("mean", (1, 2 * c), np.int8, f32(rng.uniform(0.003, 0.01)), int(rng.integers(-5, 5)))
    out2 = g.tensor("mean_f", (1, 2 * c), np.float32)
    ops = [("QUANTIZE", [a], [qa], None, {}),
           ("PAD", [qa, pads], [p], None, {}),
           ("AVERAGE_POOL_2D", [p], [ap], "Pool2DOptions", dict(padding=sch.Padding.VALID, strideW=1, strideH=1,
                                                                 filterWidth=3, filterHeight=3)),
           ("ADD", [ap, k], [sm], "AddOptions", dict(fusedActivationFunction="RELU")),
           ("MUL", [sm, b], [m], "MulOptions", {}),
           ("CONCATENATION", [m, qa], [cat], "ConcatenationOptions", dict(axis=3)),
           ("LOGISTIC", [cat], [lg], None, {}),
           ("TANH", [cat], [th], None, {}),
           ("RESHAPE", [lg, shape], [r], None, {}),
           ("FULLY_CONNECTED", [r, w, bias], [fc], "FullyConnectedOptions", {}),
           ("SOFTMAX", [fc], [out1], "SoftmaxOptions", dict(beta=1.0)),
           ("MEAN", [th, axes], [mean], "ReducerOptions", dict(keepDims=False)),
           ("DEQUANTIZE", [mean], [out2], None, {})]
    for t in (a, b, qa, p, ap, sm, m, cat, lg, th, r, fc, out1, mean, out2):  # a free batch
        g.tensors[t].shapeSignature = [-1] + list(g.tensors[t].shape[1:])
    return pack(g, ops, [a, b], [out1, out2])
