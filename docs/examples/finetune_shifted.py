"""Fine-tune the biases of an int8 model on a device's shifted data, and count the bytes that changed (Learn 19, §3-5)."""
import numpy as np

from refquant import models, ptq
from refquant.data import load_digits
from refquant.finetune import accuracy, finetune

(x, y), (x_test, y_test) = load_digits("train"), load_digits("test")
factory = ptq.quantize_static(models.load_reference_model("cnn"), x[:256], profile="tflite_reference")


def sensor(images):
    """The device's camera: dimmer and washed out, x' = 0.6 x + 0.3 (still inside the input range [0, 1])."""
    return (0.6 * images + 0.3).astype(np.float32)


# A short run for the docs (256 images, one epoch: 8 steps); the table on the page trains longer.
tuned, report = finetune(factory, sensor(x[:256]), y[:256], update="bias", epochs=1, lr=1e-2, seed=0,
                         eval_data=(sensor(x_test), y_test))
print(f"shifted test top-1: {report.accuracy_before:.4f} -> {report.accuracy_after:.4f}")
print(f"trained {report.trainable_values} values; changed {report.changed_values} values, "
      f"{report.changed_bytes} of {report.model_bytes:,} stored bytes:")
for name, (values, nbytes) in report.changes.items():
    print(f"  {name:8s} {values:3d} values, {nbytes:3d} bytes")
before, after = accuracy(factory, x_test, y_test), accuracy(tuned, x_test, y_test)
print(f"unshifted test top-1: {before:.4f} -> {after:.4f} (what the adapted model forgot)")

assert report.accuracy_after > report.accuracy_before + 0.5          # 21% -> 86% on the shifted images
assert set(report.changes) <= {f"{n.name}/bias" for n in factory.nodes if "bias" in n.params}
assert report.changed_bytes <= 4 * report.trainable_values           # int32 biases: at most 4 bytes each
assert tuned.nbytes == factory.nbytes and [n.op for n in tuned.nodes] == [n.op for n in factory.nodes]
for old, new in zip(factory.nodes, tuned.nodes):                     # weights and scales untouched
    for key in ("weight", "weight_scale"):
        if key in old.params:
            np.testing.assert_array_equal(old.params[key], new.params[key])
assert after < before                                                # it adapted, and forgot some
