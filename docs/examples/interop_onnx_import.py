"""Run an ONNX Runtime-quantized model bit-exactly in refquant (how-to: "Run an ONNX
Runtime-quantized model in refquant"). Needs onnx and onnxruntime."""
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization as oq

from refquant.errors import UnsupportedError
from refquant.interop import onnx as rq_onnx

rng = np.random.default_rng(0)
out = Path(tempfile.mkdtemp())


# 1. A float model: conv -> relu -> conv (+ the block's input) -> relu -> global average -> gemm.
def param(name, *shape, scale=0.3):
    return numpy_helper.from_array((rng.normal(0, scale, shape)).astype(np.float32), name)


nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
         helper.make_node("Add", ["c2", "r1"], ["s"]),
         helper.make_node("Relu", ["s"], ["r2"]),
         helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
         helper.make_node("Flatten", ["g"], ["f"]),
         helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1)]
inits = [param("w1", 8, 3, 3, 3), param("b1", 8), param("w2", 8, 8, 3, 3), param("b2", 8),
         param("w3", 10, 8), param("b3", 10)]
graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 12, 12])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], initializer=inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(model, out / "float.onnx")
x_cal = rng.normal(0, 1, (64, 3, 12, 12)).astype(np.float32)
x_test = rng.normal(0, 1, (200, 3, 12, 12)).astype(np.float32)


class Calibration(oq.CalibrationDataReader):
    def __init__(self):
        self.batches = iter([{"x": x_cal[i:i + 16]} for i in range(0, 64, 16)])

    def get_next(self):
        return next(self.batches, None)


def ort_run(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # default graph optimization level: ORT fuses the QDQ groups
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


# 2. ONNX Runtime quantizes it (QDQ, uint8 activations, int8 weights per channel) ...
oq.quantize_static(out / "float.onnx", out / "u8s8.onnx", Calibration(), quant_format=oq.QuantFormat.QDQ,
                   activation_type=oq.QuantType.QUInt8, weight_type=oq.QuantType.QInt8, per_channel=True)
# 3. ... and refquant runs the file as ONNX Runtime does.
qm = rq_onnx.import_quantized(out / "u8s8.onnx")
print("refquant's nodes:", [n.op for n in qm])
for what, x in (("in range", x_test), ("4x past the range", 4 * x_test), ("batch 1", x_test[:1])):
    y_ref, y_ort = qm.run(x), ort_run(out / "u8s8.onnx", x)
    assert np.array_equal(y_ref.view(np.uint32), y_ort.view(np.uint32))
    print(f"uint8 activations, {what:17s}: {y_ref.size:5d} logits, bit-exact")

# 4. int8 activations ("s8s8"): the block's input is read by the second conv and by the Add, so
#    ONNX Runtime keeps its first convolution in float32 on x86-64, and refquant says which node.
oq.quantize_static(out / "float.onnx", out / "s8s8.onnx", Calibration(), quant_format=oq.QuantFormat.QDQ,
                   activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8, per_channel=True)
try:
    rq_onnx.import_quantized(out / "s8s8.onnx")
    raise AssertionError("expected a refusal")
except UnsupportedError as err:
    print("int8 activations:", str(err).split(",")[0])
    assert "(Conv)" in str(err) and "float32" in str(err)
