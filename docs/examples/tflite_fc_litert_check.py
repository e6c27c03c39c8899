"""Read a FULLY_CONNECTED's stored parameters from .tflite bytes, run LiteRT's three kernels and
compare with refquant (how-to, §5). Needs ai-edge-litert and flatbuffers and a repository
checkout (tests/support builds the one-op model); without them only refquant's values are checked."""
import sys
from pathlib import Path

import numpy as np

from refquant.backends.tflite import fully_connected

try:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # tests/support: the LiteRT harness
    from ai_edge_litert import schema_py_generated as sch
    from support import tflite_builder as tfl
except ImportError:
    tfl = None

RESOLVERS = {"reference": "ref", "optimized": "builtin", "xnnpack": "xnnpack"}  # tflite_builder's names
ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}  # ActivationFunctionType


def fully_connected_params(model: bytes, op_index: int = 0) -> dict:
    """The parameters a .tflite stores for one FULLY_CONNECTED (subgraph 0), as refquant takes them."""
    m = sch.ModelT.InitFromPackedBuf(model, 0)
    g = m.subgraphs[0]
    op = g.operators[op_index]
    assert m.operatorCodes[op.opcodeIndex].builtinCode == sch.BuiltinOperator.FULLY_CONNECTED
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]

    def const(t, dtype):
        return np.asarray(m.buffers[t.buffer].data, np.uint8).view(dtype).reshape(t.shape)  # little-endian

    scale = lambda t: np.asarray(t.quantization.scale, np.float32)  # noqa: E731 - float32, as stored
    bias = const(g.tensors[op.inputs[2]], np.int32) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    return dict(x_scale=scale(x)[0], x_zero_point=int(x.quantization.zeroPoint[0]),
                w=const(w, np.int8), w_scale=scale(w),  # one scale per output channel, or one for all
                b=bias, y_scale=scale(y)[0], y_zero_point=int(y.quantization.zeroPoint[0]),
                activation=ACTIVATIONS[op.builtinOptions.fusedActivationFunction])


def one_op_model(x_scale, x_zp, w, w_scale, b, y_scale, y_zp, activation, n_rows):
    """A one-op int8 model as the converter writes it (tests/support/tflite_builder.py)."""
    g = tfl.Graph()
    n, k = w.shape
    xi = g.tensor("x", (n_rows, k), np.int8, x_scale, x_zp)
    wi = g.tensor("w", w.shape, np.int8, w_scale, 0, data=w, quantized_dimension=0)
    bi = g.tensor("b", b.shape, np.int32, np.float32(x_scale) * w_scale, 0, data=b)
    yi = g.tensor("y", (n_rows, n), np.int8, y_scale, y_zp)
    opts = sch.FullyConnectedOptionsT()
    opts.fusedActivationFunction = {v: k for k, v in ACTIVATIONS.items()}[activation]
    return tfl.build_model(g, sch.BuiltinOperator.FULLY_CONNECTED, sch.BuiltinOptions.FullyConnectedOptions,
                           opts, [xi, wi, bi], [yi])


rng = np.random.default_rng(5)
x = rng.integers(-128, 128, (500, 24)).astype(np.int8)
w = rng.integers(-127, 128, (6, 24)).astype(np.int8)
w_scale = rng.uniform(0.001, 0.004, 6).astype(np.float32)          # per output channel
b = rng.integers(-4000, 4000, 6).astype(np.int32)
stored = dict(x_scale=np.float32(0.0235294122), x_zero_point=-128, w=w, w_scale=w_scale, b=b,
              y_scale=np.float32(0.0313725509), y_zero_point=-3, activation="RELU")
ours = {k: fully_connected(x, **stored, kernel=k) for k in RESOLVERS}
assert all(v.shape == (500, 6) and v.dtype == np.int8 for v in ours.values())

if tfl is None:
    print("ai-edge-litert (or tests/support) is not available: refquant values only")
else:
    model = one_op_model(stored["x_scale"], -128, w, w_scale, b, stored["y_scale"], -3, "RELU", x.shape[0])
    params = fully_connected_params(model)            # with a real file: open("model.tflite", "rb").read()
    assert params["activation"] == "RELU" and np.array_equal(params["w"], w) and np.array_equal(params["b"], b)
    for kernel, resolver in RESOLVERS.items():
        theirs, delegated = tfl.run_model(model, [x], resolver, return_delegated=True)
        mine = fully_connected(x, **params, kernel=kernel)
        np.testing.assert_array_equal(mine, theirs)                       # bit for bit
        np.testing.assert_array_equal(mine, ours[kernel])
        print(f"{kernel:9s} LiteRT == refquant on {mine.size} outputs  (XNNPACK took the node: {delegated})")
        assert delegated == (kernel == "xnnpack")
    # The worked example of §4, on the real kernels: near ties, then acc = 2^24 with M = 200.
    one = np.array([[-128]], np.int8)
    for (xs, ws, ys, zy), bias, want in (
            ((0.0235294122, 0.00392156886, 0.0470588244, 0), [100, 255, -255, -765],
             {"reference": [0, 1, -1, -2], "optimized": [0, 1, 0, -1], "xnnpack": [0, 0, 0, -2]}),
            ((1.0, 1.0, 1 / 200, 5), [2**24], {"reference": [-128], "optimized": [5], "xnnpack": [127]})):
        bias = np.array(bias, np.int32)
        for kernel, resolver in RESOLVERS.items():
            theirs = tfl.run_fully_connected(one, xs, -128, np.ones((bias.size, 1), np.int8), ws, bias, ys, zy,
                                             resolver=resolver)
            assert theirs.ravel().tolist() == want[kernel], (kernel, theirs)
    print("the worked example's accumulators give the same answers on LiteRT")
