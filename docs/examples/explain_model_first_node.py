"""A whole model: find the first node whose output differs, and explain it (how-to, §4).

``other`` stands for another runtime's per-tensor dump: the same integer graph run with TFLite's
optimized kernels (what LiteRT runs without a delegate). refquant's model is the reference kernels.
"""
from refquant import models, ptq
from refquant.data import load_digits
from refquant.qmodel import QuantizedModel
from refquant.testing.explain import explain_model

x, _ = load_digits("test")
qm = ptq.quantize_static(models.load_reference_model("mlp"), x[:64], profile="tflite_reference")
other = QuantizedModel(qm.nodes, qm.tensors, qm.inputs, qm.outputs, profile="tflite_optimized")
dump = other.trace(x[:100])  # tensor name -> array, as a runtime's intermediate outputs

e = explain_model(qm, x[:100], dump)
print(e)
assert e.node == "1" and [name for name, n_diff, _ in e.compared if n_diff] == ["1"]
assert e.explanation.best.label == "tflite_optimized"

out_only = explain_model(qm, x[:100], other.run(x[:100]))  # only the outputs: whole-model candidates
print(out_only.explanation.verdict())
assert out_only.node is None and out_only.explanation.best.label == "tflite_optimized"
