"""Top-1 and logit SQNR of the bundled models under each calibrator, int8 TFLite recipe (Learn 8, §5)."""
import numpy as np

from refquant.data import load_digits
from refquant.models import REFERENCE_MODELS, load_reference_model
from refquant.ptq import quantize_static

x_calibration = load_digits("train")[0][:512]   # calibration data: 512 training images
x_test, y_test = load_digits("test")              # 359 images: one image is 0.28 points of top-1
CALIBRATORS = [("minmax", {}), ("moving_average", {}), ("percentile", {}), ("mse", {}), ("entropy", {}),
               ("entropy", {"num_bins": 2048})]


def sqnr_db(reference, approximation):
    r, e = reference.astype(np.float64), reference.astype(np.float64) - approximation
    return 10 * np.log10(np.sum(r * r) / np.sum(e * e))


print(f"{'model':>9s}  {'calibrator':>19s}  {'top-1':>7s}  {'vs float':>8s}  {'logit SQNR':>10s}")
table = {}
for name in REFERENCE_MODELS:
    model = load_reference_model(name)
    logits = model(x_test)
    float_right = int(np.sum(logits.argmax(axis=1) == y_test))
    print(f"{name:>9s}  {'(float)':>19s}  {float_right / y_test.size:7.2%}")
    for calibrator, options in CALIBRATORS:
        qmodel = quantize_static(model, x_calibration, profile="tflite_reference", calibrator=calibrator, **options)
        out = qmodel.run(x_test)                                    # (359, 10) float32 logits
        right = int(np.sum(out.argmax(axis=1) == y_test))
        label = calibrator + (f", {options['num_bins']} bins" if options else "")
        table[name, label] = (right - float_right, sqnr_db(logits, out))
        print(f"{'':>9s}  {label:>19s}  {right / y_test.size:7.2%}  {right - float_right:+8d}  "
              f"{table[name, label][1]:8.1f} dB")

p = 0.98                                                           # the models' top-1, roughly
print(f"one image is {1 / y_test.size:.2%} of top-1; the standard error of a {p:.0%} top-1 measured on "
      f"{y_test.size} images is {np.sqrt(p * (1 - p) / y_test.size):.2%}")
defaults = ["minmax", "moving_average", "percentile", "mse", "entropy"]
spread = max(max(table[n, c][1] for c in defaults) - min(table[n, c][1] for c in defaults) for n in REFERENCE_MODELS)
loss = [table[n, "minmax"][1] - table[n, "entropy, 2048 bins"][1] for n in REFERENCE_MODELS]
print(f"logit SQNR: the five calibrators at their defaults differ by at most {spread:.1f} dB per model; "
      f"entropy with 2048 bins is {min(loss):.1f} to {max(loss):.1f} dB below min-max")
changes = [d for d, _ in table.values()]
print(f"top-1 changes against float, in images: {min(changes)} to {max(changes):+d}")
assert all(abs(d) <= 3 for d in changes)                           # int8 on clean digits: a few images at most
for name in REFERENCE_MODELS:                                      # ... but the clipping calibrator costs SQNR
    assert table[name, "entropy, 2048 bins"][1] < table[name, "minmax"][1] - 4
