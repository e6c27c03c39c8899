"""Quantization-aware training of the bundled MLP for TFLite int8 (Learn: QAT)."""
import numpy as np

from refquant import nn, ptq, qat
from refquant.data import load_digits
from refquant.models import load_reference_model

x_train, y_train = load_digits("train")
x_test, y_test = load_digits("test")
model = load_reference_model("mlp")                             # trained float weights


def top1(run):
    return float((run(x_test).argmax(axis=1) == y_test).mean())


ptq_model = ptq.quantize_static(model, x_train, profile="tflite_reference")
qat_model = qat.prepare_qat(model, profile="tflite_reference")  # a new refquant.nn model
print(qat_model)
nn.fit(qat_model, x_train, y_train, epochs=2, optimizer=nn.Adam(qat_model, lr=1e-4), progress=False)
qm = qat.convert(qat_model)                                     # a QuantizedModel for tflite_reference
print(f"top-1: float {top1(model):.4f}, PTQ int8 {top1(ptq_model.run):.4f}, QAT int8 {top1(qm.run):.4f}")
assert top1(qm.run) >= top1(ptq_model.run) and top1(qm.run) >= top1(model) - 0.003

# The trained fake-quant model and its integer model: not equal everywhere (see the QAT page, section 4),
# a code or two apart where they differ (one here), and the same class for the images.
fake, integer = nn.predict(qat_model, x_test), qm.run(x_test)
lsb = np.abs(fake - integer) / qm.tensors[qm.nodes[-1].inputs[0]].scale
print(f"fake-quant == integer on {np.mean(fake == integer):.2%} of the logits; max difference "
      f"{lsb.max():.0f} LSB; same class on {np.mean(fake.argmax(1) == integer.argmax(1)):.0%} of the images")
assert lsb.max() <= 2 + 1e-3 and np.mean(fake.argmax(1) == integer.argmax(1)) >= 0.99
