"""The pitfalls of measuring a model, each shown on the bundled models (Learn 15, §1-5)."""
import json
import subprocess
import sys
import time

import numpy as np

from refquant import ptq
from refquant.data import load_digits
from refquant.evaluate import latency, memory, throughput, top_k_accuracy
from refquant.models import load_reference_model

x, y = load_digits("test")
mlp, cnn = load_reference_model("mlp"), load_reference_model("cnn")

# 1. Ties in top-k: the lower class index ranks first (eq. (1)), as np.argmax does.
logits = np.array([[1.0, 3.0, 3.0, 0.0]])           # ranks: class 1, class 2, class 0, class 3
same = lambda batch: np.repeat(logits, len(batch), axis=0)  # noqa: E731 - a function of x works too
print("label 1 in top-1:", top_k_accuracy(same, x[:1], [1], k=1), "| label 2 in top-1:",
      top_k_accuracy(same, x[:1], [2], k=1), "| label 2 in top-2:", top_k_accuracy(same, x[:1], [2], k=2))
assert top_k_accuracy(same, x[:1], [2], k=1) == 0.0 and top_k_accuracy(same, x[:1], [2], k=2) == 1.0

# 2. The first call pays one-off costs. Measured in a fresh process (this one has run the kernels already):
COLD = """
import json
from refquant import ptq
from refquant.data import load_digits
from refquant.evaluate import latency
from refquant.models import load_reference_model
x = load_digits("test")[0]
static = ptq.quantize_static(load_reference_model("mlp"), load_digits("train")[0][:512], profile="tflite_reference")
print(json.dumps(latency(static, x, repeats=50).as_dict()))
"""
cold = json.loads(subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True).stdout)
print(f"static int8 MLP in a fresh process: first call {cold['first_call_ms']:.1f} ms, then median "
      f"{cold['median_ms']:.2f} ms, p90 {cold['p90_ms']:.2f} ms, p99 {cold['p99_ms']:.2f} ms")
assert cold["first_call_ms"] > cold["median_ms"]

# 3. Run-to-run noise: the same measurement three times; the median moves less than the tail.
static = ptq.quantize_static(mlp, load_digits("train")[0][:512], profile="tflite_reference")
static.run(x[:1])                                    # the first call, out of the way
runs = [latency(static, x, repeats=100) for _ in range(3)]
print("static int8 MLP, three runs: median", [f"{r.median_ms:.3f}" for r in runs], "ms; p99",
      [f"{r.p99_ms:.3f}" for r in runs], "ms")
print(f"perf_counter resolution: {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns")
assert all(r.median_ms <= r.p99_ms for r in runs)

# 4. Batch effects: throughput grows with the batch; a dynamic model's logits depend on the batch.
rates = throughput(static, x, batch_sizes=(1, 32, 256), min_seconds=0.1)
print("static int8 MLP, inferences/s:", {b: round(r) for b, r in rates.items()})
dynamic = ptq.quantize_dynamic(mlp, profile="pytorch_fbgemm")
one_by_one = np.concatenate([dynamic.run(x[i:i + 1]) for i in range(len(x))])
all_at_once = dynamic.run(x)
print(f"dynamic int8 MLP: logits differ between batch 1 and batch {len(x)} in "
      f"{np.mean(one_by_one != all_at_once):.0%} of the values (max {np.max(np.abs(one_by_one - all_at_once)):.3f}); "
      f"top-1 {top_k_accuracy(dynamic, x, y, batch_size=1):.2%} vs {top_k_accuracy(dynamic, x, y, batch_size=256):.2%}")
assert rates[256] > rates[1] and np.any(one_by_one != all_at_once)

# 5. Stored bytes, loaded bytes, traced peak, resident peak: four different numbers.
for name, model in (("float CNN", cnn), ("int4-weight CNN", ptq.quantize_weights(cnn, bits=4))):
    m = memory(model, x)
    print(f"{name}: stored {m.model_bytes:,} B, loaded {m.loaded_bytes:,} B, traced peak of one batch of "
          f"{len(x)} {m.peak_python_bytes:,} B, process peak RSS {m.peak_rss_bytes / 2**20:.0f} MiB")
    assert m.model_bytes <= m.loaded_bytes < m.peak_python_bytes < (m.peak_rss_bytes or np.inf)

# 6. Threads: NumPy's BLAS starts one thread per core; on a machine busy with other work they wait for each other.
try:
    from threadpoolctl import threadpool_limits
except ImportError:                                  # not installed: nothing to compare
    threadpool_limits = None
if threadpool_limits is not None:
    default = throughput(mlp, x, batch_sizes=256, min_seconds=0.2)[256]
    with threadpool_limits(limits=1, user_api="blas"):
        single = throughput(mlp, x, batch_sizes=256, min_seconds=0.2)[256]
    print(f"float MLP at batch 256: {default:,.0f} inferences/s with the default BLAS threads, "
          f"{single:,.0f} with one")
    assert default > 0 and single > 0
