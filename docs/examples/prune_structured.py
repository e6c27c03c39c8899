"""Structured pruning with real removal: fewer filters, fewer bytes, less time (Learn 16, §4)."""
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from refquant import nn, prune
from refquant.data import load_digits
from refquant.evaluate import model_bytes
from refquant.models import load_reference_model
from refquant.ptq import quantize_static

x_test, y_test = load_digits("test")
x_calibration = load_digits("train")[0][:512]
cnn = load_reference_model("cnn")
print("thinnable layers:", prune.thinnable_layers(cnn))              # the last Linear is the output: kept

# 1. What removal computes: the thinned model equals the full one with the next layer's input weights
#    for the removed channels set to 0 (eq. (5)), up to float32 summation order.
keep = prune.select_channels(cnn, 0.3)                               # {layer: kept output channels}
small = prune.remove_channels(cnn, keep)
zeroed = load_reference_model("cnn")
for producer, consumer in (("0", "3"), ("3", "7"), ("7", "11")):
    removed = np.setdiff1d(np.arange(dict(cnn.named_modules())[producer].weight.shape[0]), keep[producer])
    dict(zeroed.named_modules())[consumer].weight.value[:, removed] = 0
np.testing.assert_allclose(nn.predict(small, x_test), nn.predict(zeroed, x_test), rtol=1e-4, atol=1e-4)
print({name: f"{cnn_w} -> {small_w}" for (name, cnn_w), small_w in zip(
    [(n, m.weight.shape) for n, m in cnn.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))],
    [m.weight.shape for _, m in small.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))])})

# 2. Parameters, bytes, time and accuracy before fine-tuning, at 30 % and 50 % of the filters removed.
CLOCK = time.process_time                                             # this process's CPU time, one thread


def best_ms(fs, repeats=9):
    """Best ms per call of each function over `repeats` calls, the functions interleaved (a warm-up call first)."""
    for f in fs:
        f()
    runs = [[] for _ in fs]
    for _ in range(repeats):
        for f, r in zip(fs, runs):
            t0 = CLOCK()
            f()
            r.append(CLOCK() - t0)
    return [1e3 * min(r) for r in runs]


def macs(model):
    """Multiply-adds of one image through the Conv2d and Linear layers (shapes recorded by forward hooks)."""
    total = []

    def count(module, inputs, output):                                # output (1, O, H, W) or (1, O)
        w = module.weight.value
        total.append(int(np.prod(w.shape)) * int(np.prod(output.shape[2:])))

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(count) for m in layers]
    nn.predict(model, x_test[:1])
    for h in handles:
        h.remove()
    return sum(total)


models = {"full": cnn, "30 % of filters removed": prune.prune_channels(cnn, 0.3),
          "50 % of filters removed": prune.prune_channels(cnn, 0.5)}
int8 = {k: quantize_static(m, x_calibration, profile="tflite_reference") for k, m in models.items()}
threads = numba.get_num_threads()
numba.set_num_threads(1)
try:
    with threadpool_limits(limits=1, user_api="blas"):
        float_ms = best_ms([lambda m=m: nn.predict(m, x_test) for m in models.values()])
        int8_ms = best_ms([lambda q=q: q.run(x_test) for q in int8.values()])
finally:
    numba.set_num_threads(threads)
print("| model | parameters | multiply-adds per image | float32 bytes | int8 bytes | top-1 before fine-tuning | "
      "float32, 359 images | int8, 359 images |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
rows = {}
for (label, m), q, tf, tq in zip(models.items(), int8.values(), float_ms, int8_ms):
    rows[label] = (m.num_parameters(), q.nbytes, nn.evaluate(m, x_test, y_test), tf, tq, macs(m))
    print(f"| {label} | {m.num_parameters():,} | {rows[label][5]:,} | {model_bytes(m):,} | {q.nbytes:,} | "
          f"{100 * rows[label][2]:.2f} % | {tf:.1f} ms | {tq:.1f} ms |")
full, p30, p50 = rows.values()
assert (full[0], p30[0]) == (14458, 6973) and p50[0] < p30[0]        # real removal: fewer parameters
assert full[1] > p30[1] > p50[1]                                      # ... fewer stored bytes, int8 too
assert full[5] > 2 * p30[5] > 2 * p50[5]                               # half the multiply-adds at 30 %
assert full[3] > 1.3 * p30[3] > 1.3 * p50[3] and full[4] > 1.3 * p30[4]   # ... and less time, float and int8
