"""Quantization-aware training: train a float model through the rounding of its integer model.

::

    from refquant import nn, qat
    qmodel_float = qat.prepare_qat(model, profile="tflite_reference")   # a new refquant.nn model
    nn.fit(qmodel_float, x_train, y_train, epochs=2)
    qm = qat.convert(qmodel_float)                                     # a QuantizedModel

* :mod:`refquant.qat.fake_quant` — :class:`~refquant.qat.fake_quant.FakeQuantize`: moving-average
  range, the recipe's parameters, the straight-through estimator with the clamp mask;
* :mod:`refquant.qat.weights` — weight fake quantization (8-bit by the recipe, or fewer bits);
* :mod:`refquant.qat.bn` — Conv2d/Linear + BatchNorm trained with the folded weight;
* :mod:`refquant.qat.lsq` — learned activation scales (LSQ);
* :mod:`refquant.qat.prepare` — :func:`~refquant.qat.prepare.prepare_qat`,
  :func:`~refquant.qat.prepare.calibrate`;
* :mod:`refquant.qat.conversion` — :func:`~refquant.qat.conversion.convert`.

See [Learn: quantization-aware training](../learn/qat.md).
"""

from __future__ import annotations

from .bn import LayerBatchNorm
from .conversion import convert, float_model
from .fake_quant import FakeQuantize, SharedFakeQuantize
from .lsq import LearnedScaleFakeQuantize
from .prepare import QATConfig, QATModel, WithFakeQuantize, calibrate, prepare_qat
from .weights import WeightFakeQuantize

__all__ = ["prepare_qat", "convert", "calibrate", "float_model", "QATModel", "QATConfig", "FakeQuantize",
           "SharedFakeQuantize", "LearnedScaleFakeQuantize", "WeightFakeQuantize", "LayerBatchNorm",
           "WithFakeQuantize"]
