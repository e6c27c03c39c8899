"""Check a fully integer .tflite model against refquant, kernel set by kernel set (how-to: "Check a
.tflite int8 model against refquant"). Needs ai-edge-litert and flatbuffers."""
import tempfile
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from refquant import models, ptq
from refquant.data import load_digits
from refquant.interop import tflite

x_test = load_digits("test")[0][:64]  # (64, 1, 8, 8) float32
# 1. A .tflite to check. Here refquant writes one; use your own file instead.
qm = ptq.quantize_static(models.load_reference_model("cnn"), load_digits("train")[0][:128],
                         profile="tflite_reference")
path = Path(tempfile.mkdtemp()) / "cnn_int8.tflite"
tflite.export(qm, path)

# 2. LiteRT's answer with each kernel set: resize the batch, allocate, invoke.
RESOLVERS = {"reference": OpResolverType.BUILTIN_REF,
             "optimized": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "xnnpack": OpResolverType.BUILTIN}


def litert(path, x, kernel):
    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=RESOLVERS[kernel], num_threads=1)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


# 3. refquant's answer: the same file, run as LiteRT runs it with that kernel set.
for kernel in ("reference", "optimized", "xnnpack"):
    ours = tflite.import_quantized(path, kernel=kernel).run(x_test)
    theirs = litert(path, x_test, kernel)
    assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape == (64, 10)
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)), kernel  # bit for bit
    print(f"{kernel:>9}: {ours.size} float32 outputs equal LiteRT's bit for bit")

# 4. Layer by layer: every tensor of one run, NHWC as LiteRT holds them.
trace = tflite.import_quantized(path, kernel="reference").trace(x_test[:1])
print(len(trace), "tensors traced")
