"""Debugging a quantized model layer by layer: report, sensitivity, mixed precision (Learn 13)."""
import numpy as np

from refquant.data import load_digits
from refquant.models import load_reference_model
from refquant.ptq.debug import (
    accuracy,
    format_report,
    layer_report,
    mixed_precision_plan,
    sensitivity,
)
from refquant.ptq.flows import calibrate_model

x_calibration = load_digits("train")[0][:512]
x_val, y_val = load_digits("val")                 # 359 images: debug on val, report on test
model = load_reference_model("cnn")
PROFILE = "tflite_reference"


def sqnr_db(reference, approximation):
    r = reference.astype(np.float64)
    return 10 * np.log10(np.sum(r * r) / np.sum((r - approximation) ** 2))


# 1. A healthy model: calibrated on the training images, per-channel int8.
cal = calibrate_model(model, x_calibration, profile=PROFILE)
qmodel = cal.lower()
rows = layer_report(cal, qmodel, x_val)
print(f"float top-1 {accuracy(cal.model, x_val, y_val):.2%}, int8 top-1 {accuracy(qmodel, x_val, y_val):.2%}")
print(format_report(rows))
sqnr = [r["sqnr_db"] for r in rows]
assert sqnr[0] > 50 and min(sqnr) > 25 and max(r["saturated"] for r in rows) < 0.01

# 2. A bug: the calibration images were preprocessed differently (pixels in [0, 0.5] instead of [0, 1]).
bad_cal = calibrate_model(model, 0.5 * x_calibration, profile=PROFILE)
bad = bad_cal.lower()
bad_rows = layer_report(bad_cal, bad, x_val)
print(f"miscalibrated int8 top-1 {accuracy(bad, x_val, y_val):.2%}")
print(format_report(bad_rows[:3]))
assert bad_rows[0]["tensor"] == "input:q" and bad_rows[0]["saturated"] > 0.2 and bad_rows[0]["sqnr_db"] < 10
assert accuracy(bad, x_val, y_val) < accuracy(qmodel, x_val, y_val) - 0.05

# 3. Sensitivity of the miscalibrated model: only one layer quantized at a time, most sensitive first.
ranking = sensitivity(bad_cal, x_val, y_val)
for r in ranking:
    print(f"only {r['layer']:>3s} quantized: top-1 {r['accuracy']:.2%} (drop {100 * r['drop']:+.2f} points)")
assert ranking[0]["layer"] == cal.steps[0].name and ranking[0]["drop"] > 0.05

# 4. The mixed-precision plan keeps that layer in float ... but recalibrating fixes the cause at int8 size.
plan = mixed_precision_plan(model, 0.5 * x_calibration, x_val, y_val, profile=PROFILE, max_drop=0.005)
print(plan.table())
print(f"recalibrated with the right preprocessing: top-1 {accuracy(qmodel, x_val, y_val):.2%}, {qmodel.nbytes} bytes")
assert plan.float_layers == [cal.steps[0].name] and plan.trade_off[-1]["nbytes"] > qmodel.nbytes

# 5. The healthy model again: top-1 cannot rank its layers (every drop is 0 images here), the logits' SQNR can.
healthy = sensitivity(cal, x_val, y_val)
print("top-1 drops, healthy model:", [round(100 * r["drop"], 2) for r in healthy])
reference = cal.model(x_val)                                             # float logits (359, 10)
names = [s.name for s in cal.steps]
one_at_a_time = {}
for r in healthy:
    single = cal.lower(float_layers=[n for n in names if n != r["layer"]], allow_float=True)
    one_at_a_time[r["layer"]] = sqnr_db(reference, single.run(x_val))
for layer, db in sorted(one_at_a_time.items(), key=lambda kv: kv[1]):
    print(f"only {layer:>3s} quantized: logit SQNR {db:5.1f} dB")
all_db = sqnr_db(reference, qmodel.run(x_val))
summed_db = -10 * np.log10(sum(10 ** (-db / 10) for db in one_at_a_time.values()))   # eq. (3): noise powers add
print(f"all quantized: logit SQNR {all_db:.1f} dB; eq. (3) from the single-layer SQNRs: {summed_db:.1f} dB")
assert all(r["drop"] == 0 for r in healthy) and abs(all_db - summed_db) < 1.0
