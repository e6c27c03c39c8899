"""Export a refquant integer model to ONNX and run it in ONNX Runtime, bit for bit (how-to: "Run a
refquant model in ONNX Runtime"). Needs onnx and onnxruntime."""
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from refquant import models, ptq
from refquant.data import load_digits
from refquant.interop import onnx as rq_onnx

x_train, x_test = load_digits("train")[0], load_digits("test")[0]  # (N, 1, 8, 8) float32
# 1. An integer model with ONNX Runtime's arithmetic: the onnxruntime profile.
qm = ptq.quantize_static(models.load_reference_model("cnn"), x_train, profile="onnxruntime")
out = Path(tempfile.mkdtemp())

for fmt in ("qoperator", "qdq"):
    path = out / f"cnn_{fmt}.onnx"
    rq_onnx.export(qm, path, format=fmt)  # written atomically: temporary file, then rename

    # 2. ONNX Runtime: CPU, one intra-op thread, default optimizations; keep the graph it ran.
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.optimized_model_filepath = str(out / f"cnn_{fmt}.optimized.onnx")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {qm.inputs[0]: x_test})[0]  # (359, 10) float32

    # 3. The same bits as refquant's run of the integer model.
    y_ref = qm.run(x_test)
    assert np.array_equal(y_ref.view(np.uint32), y_ort.view(np.uint32)), fmt
    ran = Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    print(f"{fmt:9s} {y_ort.shape} bit-exact; ORT ran {dict(ran)}")
