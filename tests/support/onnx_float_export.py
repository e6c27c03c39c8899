"""refquant's bundled float models as float ONNX files written by PyTorch's exporter.

:func:`bundled_float_onnx` loads a reference model (``refquant.models.load_reference_model``),
builds its PyTorch twin (:func:`tests.support.torch_models.torch_twin`: the same float32 weights
bit for bit) and exports it with torch's TorchScript-based exporter (``dynamo=False``: works with
torch 2.13 without onnxscript) at torch's default opset, input ``"input"`` of shape
``(N, 1, 8, 8)`` with a free batch dimension, output ``"output"``.

* ``fold=True``: ``refquant.passes.fold_batch_norm`` first, so the file holds Conv (with bias),
  Relu / Clip, MaxPool, Add, GlobalAveragePool, Flatten, Gemm.
* ``fold=False``: the BatchNorm2d layers are twinned as ``torch.nn.BatchNorm2d`` (eval mode, the
  refquant running statistics, weight and bias) and exported with
  ``training=TrainingMode.PRESERVE``, which keeps them as BatchNormalization nodes
  (``training_mode=0``); torch's default ``TrainingMode.EVAL`` would fuse each into the
  convolution before it. torch stores ``eps`` as a float32 attribute (1e-5 → 9.99999975e-06).

Imports torch and onnx at import time: import after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn as tnn

from refquant import nn, passes
from refquant.models import load_reference_model

from . import torch_models
from .torch_models import torch_twin

__all__ = ["bundled_float_onnx", "export_float_onnx"]


def _bn_twin(m) -> tnn.Module:
    t = tnn.BatchNorm2d(m.num_features, eps=m.eps) if isinstance(m, nn.BatchNorm2d) else \
        tnn.BatchNorm1d(m.num_features, eps=m.eps)
    with torch.no_grad():
        for name, v in (("weight", m.weight.value), ("bias", m.bias.value),
                        ("running_mean", m.running_mean), ("running_var", m.running_var)):
            getattr(t, name).copy_(torch.from_numpy(np.array(v, np.float32, copy=True)))
    return t


def _twin_with_bn(m) -> tnn.Module:
    """torch_models' twin, extended to BatchNorm layers (which it leaves to BN folding)."""
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _bn_twin(m)
    if isinstance(m, nn.Sequential):
        return tnn.Sequential(*[_twin_with_bn(c) for _, c in m.named_children()])
    if isinstance(m, nn.Residual):
        shortcut = None if m.shortcut is None else _twin_with_bn(m.shortcut)
        return torch_models.TwinResidual(_twin_with_bn(m.body), shortcut, m.activation is not None)
    return torch_models._twin(m)  # a leaf: Linear, Conv2d, activations, pools, Flatten


def export_float_onnx(twin: tnn.Module, *, sample_shape=(1, 1, 8, 8), keep_batch_norm: bool = False) -> bytes:
    """``twin`` (a float torch module in eval mode) as ONNX bytes, batch dimension ``"N"`` free."""
    buf = io.BytesIO()
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batch_norm else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        # PRESERVE on a model in eval mode: the advice to turn constant folding off concerns training mode
        warnings.filterwarnings("ignore", "It is recommended that constant folding be turned off", UserWarning)
        torch.onnx.export(twin.eval(), torch.zeros(sample_shape), buf, dynamo=False, training=mode,
                          input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "N"}})
    return buf.getvalue()


def bundled_float_onnx(name: str, *, fold: bool = True) -> bytes:
    """The bundled reference model ``name`` ("mlp", "cnn", "resnet", "mobilenet") as float ONNX bytes.

    ``fold=True``: BatchNorm folded by refquant first (Conv with bias in the file); ``fold=False``:
    BatchNormalization nodes in the file. Either way the file computes the refquant model's
    function (up to float summation order).
    """
    model = load_reference_model(name)
    if fold:
        return export_float_onnx(torch_twin(passes.fold_batch_norm(model)))
    return export_float_onnx(_twin_with_bn(model).eval(), keep_batch_norm=True)
