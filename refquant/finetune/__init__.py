"""On-device fine-tuning of a quantized model: adapt the integer model to a device's own data.

::

    from refquant import finetune, ptq
    qm = ptq.quantize_static(model, x_cal, profile="tflite_reference")
    qm2, report = finetune.finetune(qm, x_new, y_new, update="bias", epochs=5, lr=1e-3)
    report.accuracy_before, report.accuracy_after, report.changed_bytes

The forward pass is the integer model; gradients reach the chosen parameters through the
straight-through estimator, evaluated at the integer model's own values; only those parameters
change, re-quantized into a new integer model with the same graph.

* :mod:`refquant.finetune.ste` — the backward pass through the integer graph (and why it uses
  float twins of the layers);
* :mod:`refquant.finetune.trainable` — ``update="bias" | "last" | "scales"``: what is trained, its
  float masters, the re-quantization;
* :mod:`refquant.finetune.flow` — :func:`~refquant.finetune.flow.finetune` and
  :class:`~refquant.finetune.flow.FinetuneReport`.

Measured on shifted digits: ``benchmarks/finetune_results.py``.
"""

from __future__ import annotations

from .flow import FinetuneReport, accuracy, finetune
from .ste import SUPPORTED_OPS
from .trainable import UPDATES

__all__ = ["finetune", "FinetuneReport", "accuracy", "UPDATES", "SUPPORTED_OPS"]
