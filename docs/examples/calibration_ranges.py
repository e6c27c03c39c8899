"""Each calibrator's range for one activation tensor, the error it costs (Learn 8, eqs. (2)-(4)), and the figure.

The numbers are checked on every run. The figure is drawn when matplotlib is installed:
into ``$REFQUANT_FIGURE_DIR`` when that is set (regenerate the committed figure with
``REFQUANT_FIGURE_DIR=docs/assets python docs/examples/calibration_ranges.py``), else into a
temporary directory that is deleted afterwards.
"""
import os
import tempfile

import numpy as np

from refquant import choose_qparams, fake_quantize, nn
from refquant.backends.tflite import activation_qparams
from refquant.calibration import make_observer
from refquant.data import load_digits
from refquant.models import load_reference_model
from refquant.passes import prepare_for_quantization

x_train, _ = load_digits("train")                                    # (1079, 1, 8, 8) float32
model = prepare_for_quantization(load_reference_model("cnn"))        # BatchNorm folded into the convs
relu = [m for m in model.modules() if isinstance(m, nn.ReLU)][1]     # output of the second convolution

# 1. Stream the training split through the model in batches of 256, as a calibration pass does.
observers = {
    "min-max": make_observer("minmax"),
    "moving average": make_observer("moving_average"),               # PyTorch's EMA, c = 0.01
    "percentile 99.999": make_observer("percentile"),                # ONNX Runtime's defaults
    "histogram MSE": make_observer("mse"),                           # PyTorch's HistogramObserver
    "entropy, 128 bins": make_observer("entropy"),                   # ONNX Runtime's defaults
    "entropy, 2048 bins": make_observer("entropy", num_bins=2048),
    "entropy, TensorRT": make_observer("entropy_tensorrt"),          # pytorch-quantization's defaults
}
seen = []


def calibrate(module, inputs, output):
    for observer in observers.values():
        observer.update(output)                                       # (256, 32, 8, 8) float32
    seen.append(output.reshape(-1).copy())


handle = relu.register_forward_hook(calibrate)
for i in range(0, len(x_train), 256):
    model(x_train[i:i + 256])
handle.remove()
x = np.concatenate(seen)                                              # every value of the tensor
x64 = x.astype(np.float64)
print(f"{x.size} values in [{x.min():.3f}, {x.max():.3f}], {np.mean(x == 0):.1%} exactly 0, "
      f"99.99th percentile {np.percentile(x, 99.99):.3f}")


# 2. Eq. (4): rounding error S^2/12 for the values inside the range that are not exactly 0 (zero is a
#    code, so a ReLU's zeros cost nothing), plus the clipping error of the values outside it.
def predicted_mse(lo, hi, scale):
    inside = (x64 >= lo) & (x64 <= hi) & (x64 != 0)
    clipped = np.clip(x64, lo, hi)
    return scale**2 / 12 * inside.mean() + np.mean((x64 - clipped) ** 2)


print(f"{'calibrator':>18s}  {'lo':>7s}  {'hi':>6s}  {'S (int8)':>9s}  {'clipped':>8s}  {'MSE':>8s}  {'eq. (4)':>8s}")
results = {}
for name, observer in observers.items():
    lo, hi = observer.range()                                         # float32 scalars
    qp = activation_qparams(lo, hi)                                   # TFLite's int8 rule (Learn 2)
    mse = float(np.mean((fake_quantize(x, qp, "tflite_reference").astype(np.float64) - x64) ** 2))
    scale = float(qp.scale)
    results[name] = (float(lo), float(hi), scale, mse)
    clipped = float(np.mean(x > hi))
    print(f"{name:>18s}  {lo:7.3f}  {hi:6.3f}  {scale:9.5f}  {clipped:8.4%}  {mse:8.2e}  "
          f"{predicted_mse(lo, hi, scale):8.2e}")
    assert abs(predicted_mse(lo, hi, scale) - mse) <= 0.05 * mse      # eq. (4) within 5%
worst = max(abs(predicted_mse(lo, hi, s) - mse) / mse for lo, hi, s, mse in results.values())
print(f"eq. (4) against the measured MSE: largest relative difference {worst:.1%}")

r = results
assert r["min-max"][:2] == (0.0, float(x.max()))                     # the exact extremes
assert r["entropy, 128 bins"][:2] == r["min-max"][:2]                # one candidate window: nothing clipped
assert r["entropy, TensorRT"][0] == -r["entropy, TensorRT"][1]       # symmetric: half the codes unused here
assert r["percentile 99.999"][1] < r["min-max"][1] and r["histogram MSE"][1] < r["percentile 99.999"][1]
assert r["percentile 99.999"][3] < r["min-max"][3] and r["histogram MSE"][3] < r["min-max"][3]
assert r["entropy, 2048 bins"][3] > 20 * r["min-max"][3]             # clips far into the tail

# 3. The trade-off curve of eq. (4) for the ranges [0, t], from the sorted values (cumulative sums),
#    for int8 and int4 codes; its minimum checked against a real fake-quantization.
v = np.sort(x64[x64 > 0])                                             # the non-zero values, ascending
tail = np.concatenate([np.cumsum(v[::-1])[::-1], [0.0]])             # sum of v[i:]
tail2 = np.concatenate([np.cumsum((v * v)[::-1])[::-1], [0.0]])      # sum of v[i:]^2
thresholds = np.linspace(0.05, float(x.max()), 400)
curves, best = {}, {}
for fmt, levels in (("int8", 255), ("int4", 15)):
    k = np.searchsorted(v, thresholds, side="right")                  # values <= t
    outside = tail2[k] - 2 * thresholds * tail[k] + (v.size - k) * thresholds**2   # sum (v - t)^2 over v > t
    curves[fmt] = ((thresholds / levels) ** 2 / 12 * k + outside) / x.size          # eq. (4)
    t = float(thresholds[int(np.argmin(curves[fmt]))])
    measured = float(np.mean((fake_quantize(x, choose_qparams(0.0, t, fmt)).astype(np.float64) - x64) ** 2))
    at_max = float(np.mean((fake_quantize(x, choose_qparams(0.0, x.max(), fmt)).astype(np.float64) - x64) ** 2))
    best[fmt] = t
    print(f"{fmt}: eq. (4) is lowest at t = {t:.2f} ({t / x.max():.0%} of the maximum); measured MSE there "
          f"{measured:.2e}, against {at_max:.2e} at t = max")
    assert measured < at_max
assert best["int4"] < best["int8"] < x.max()                          # fewer bits: clip more

# 4. The figure.
try:
    import matplotlib
except ImportError:
    matplotlib = None
    print("matplotlib is not installed: no figure")
if matplotlib is not None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ["#000000", "#7f7f7f", "#d9822b", "#2ca02c", "#5c8fbf", "#9467bd", "#d62728"]
    styles = ["-", ":", "--", "-", "-.", "--", ":"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    ax1.hist(x[x > 0], bins=200, color="#c7d6e8", log=True)
    for (name, (lo, hi, _, _)), c, ls in zip(results.items(), colors, styles):
        ax1.axvline(hi, color=c, ls=ls, lw=1.6, label=f"{name}: {hi:.2f}")
    ax1.set_xlabel("activation value (the exact zeros are not drawn)")
    ax1.set_ylabel("count (log scale)")
    ax1.set_title("output of the CNN's second Conv-ReLU: each calibrator's hi")
    ax1.legend(fontsize=7.5, loc="upper right")
    ax2.plot(thresholds, curves["int8"], color="#5c8fbf", label="eq. (4), int8, [0, t]")
    ax2.plot(thresholds, curves["int4"], color="#d9822b", label="eq. (4), int4, [0, t]")
    for (name, (lo, hi, _, mse)), c in zip(results.items(), colors):
        if lo == 0.0:
            ax2.plot([hi], [mse], "o", color=c, ms=5)
    ax2.set_yscale("log")
    ax2.set_xlabel("clipping threshold t")
    ax2.set_ylabel("mean squared error")
    ax2.set_title("eq. (4) for [0, t]; dots: calibrators (int8, measured)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out_dir = os.environ.get("REFQUANT_FIGURE_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(out_dir or tmp, "calibration_ranges.png")
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        assert os.path.getsize(path) > 1000
        print("figure written:", path if out_dir else "(temporary directory)")
