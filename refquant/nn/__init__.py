"""refquant.nn: a small, readable NumPy training library with layer-level backward passes.

Build a model from layers, train it with :func:`fit`, save it with :func:`save`::

    from refquant import nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.GlobalAvgPool2d(), nn.Linear(8, 10))
    hist = nn.fit(model, x_train, y_train, epochs=5, validation_data=(x_val, y_val))
    nn.save(model, "model.npz")

Every layer implements ``forward`` (caching what it needs) and ``backward(grad_out)``
(returning the input gradient and accumulating parameter gradients); see
:mod:`refquant.nn.module`. Hooks for calibration (``register_forward_hook``) and weight
transforms for fake quantization and pruning (``layer.weight_transform``) are described
in :mod:`refquant.nn.module` and :mod:`refquant.nn.transforms`.
"""

from .activations import Hardtanh, ReLU, ReLU6, Sigmoid, Tanh
from .container import Residual, Sequential
from .conv import Conv2d
from .init import manual_seed
from .layers import Add, Dropout, Flatten, Identity, Linear
from .losses import CrossEntropyLoss, DistillationKLLoss, Loss, MSELoss, log_softmax, softmax
from .module import HookHandle, Module, Parameter, module_registry
from .norm import BatchNorm1d, BatchNorm2d
from .optim import SGD, Adam, AdamW, CosineLR, Optimizer, StepLR, clip_grad_norm
from .pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .serialize import FORMAT_VERSION, architecture, build, load, load_weights, save, save_weights
from .softmax_layer import Softmax
from .train import History, evaluate, fit, predict
from .transforms import compose, mask_transform, straight_through

__all__ = [
    # base
    "Module", "Parameter", "HookHandle", "module_registry", "manual_seed",
    # containers
    "Sequential", "Residual",
    # layers
    "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "Hardtanh", "Sigmoid", "Tanh",
    "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Dropout", "Add", "Identity", "Softmax",
    # weight transforms
    "straight_through", "mask_transform", "compose",
    # losses
    "Loss", "CrossEntropyLoss", "MSELoss", "DistillationKLLoss", "softmax", "log_softmax",
    # optimizers and schedules
    "Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineLR", "clip_grad_norm",
    # training
    "fit", "evaluate", "predict", "History",
    # files
    "save", "load", "save_weights", "load_weights", "architecture", "build", "FORMAT_VERSION",
]
