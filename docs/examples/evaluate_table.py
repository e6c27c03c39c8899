"""Evaluating float, static int8, dynamic int8 and int4-weight models with one call each (Learn 15, §6)."""
import contextlib
import platform

from refquant import ptq
from refquant.data import load_digits
from refquant.evaluate import evaluate
from refquant.models import load_reference_model


def one_blas_thread():
    """NumPy's BLAS on one thread for the ``with`` block (§5: threads on a shared machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                              # not installed: the BLAS default
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


x_test, y_test = load_digits("test")                 # 359 images
x_calibration = load_digits("train")[0][:512]


def variants(model):
    """The four models of one float network, each as evaluate() takes it."""
    return {"float": model,
            "static int8": ptq.quantize_static(model, x_calibration, profile="tflite_reference"),
            "dynamic int8": ptq.quantize_dynamic(model, profile="pytorch_fbgemm"),
            "int4 weights": ptq.quantize_weights(model, bits=4)}


print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
print("| model | technique | top-1 | first call ms | median ms | p99 ms | inf/s @1 | inf/s @256 "
      "| stored B | loaded B | peak traced B |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
results = {}
for name in ("mlp", "cnn"):
    float_model = load_reference_model(name)
    for technique, model in variants(float_model).items():
        with one_blas_thread():
            ev = evaluate(model, x_test, y_test, float_model=float_model, batch_sizes=(1, 256), repeats=50,
                          min_seconds=0.1)
        results[name, technique] = ev
        lat, mem = ev.latency, ev.memory
        print(f"| {name} | {technique} | {100 * ev.top1:.2f}% | {lat.first_call_ms:.1f} | {lat.median_ms:.2f} | "
              f"{lat.p99_ms:.2f} | {ev.throughput[1]:,.0f} | {ev.throughput[256]:,.0f} | {mem.model_bytes:,} | "
              f"{mem.loaded_bytes:,} | {mem.peak_python_bytes:,} |")

for name in ("mlp", "cnn"):
    f, s, d, w4 = (results[name, t] for t in ("float", "static int8", "dynamic int8", "int4 weights"))
    assert abs(s.top1 - f.top1) <= 0.01 and abs(d.top1 - f.top1) <= 0.01          # within one point of float
    assert w4.memory.model_bytes < s.memory.model_bytes < f.memory.model_bytes    # int4 < int8 < float32, stored
    assert w4.memory.loaded_bytes > w4.memory.model_bytes                          # unpacked and dequantized in RAM
    assert s.layers and s.layers[0]["tensor"] == "input:q" and f.layers is None and w4.layers == []
    assert all(r.latency.median_ms <= r.latency.p90_ms <= r.latency.p99_ms for r in (f, s, d, w4))
