"""One call, one record: evaluate() on a static int8 CNN, as plain types for your own code (Learn 15, §6)."""
import json

from refquant import ptq
from refquant.data import load_digits
from refquant.evaluate import evaluate
from refquant.models import load_reference_model
from refquant.ptq.debug import format_report

x_test, y_test = load_digits("test")
float_model = load_reference_model("cnn")
qmodel = ptq.quantize_static(float_model, load_digits("train")[0][:512], profile="tflite_reference")

ev = evaluate(qmodel, x_test, y_test, float_model=float_model, batch_sizes=(1, 32), repeats=20, min_seconds=0.1)
record = ev.as_dict()                                # plain dicts, lists, floats and ints
print(json.dumps({k: record[k] for k in ("name", "top1", "top5", "latency", "memory")}, indent=1))
print(format_report(ev.layers))                      # the per-layer rows, as Learn 13's layer report prints them

assert record["memory"]["model_bytes"] == qmodel.nbytes and record["top_k"] == {1: ev.top1, 5: ev.top5}
assert json.loads(json.dumps(record))["latency"]["repeats"] == 20
assert ev.layers[0]["tensor"] == "input:q" and ev.layers[0]["max_error_lsb"] <= 0.5
