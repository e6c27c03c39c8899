"""The reference models: four small float networks for the embedded 8×8 digits, and their
bundled trained weights.

Every model takes ``(N, 1, 8, 8)`` float32 images in $[0, 1]$ (what
:func:`refquant.data.load_digits` returns) and gives ``(N, 10)`` logits. The four cover
the layer patterns that quantization treats differently:

| name | pattern | layers |
|---|---|---|
| ``"mlp"`` | fully connected | Flatten, Linear–ReLU ×2, Linear |
| ``"cnn"`` | Conv–BN–ReLU blocks | 3 convolutions, max pool, global average pool, Linear |
| ``"resnet"`` | residual ``Add`` | ResNet basic blocks, one with a strided 1×1 shortcut |
| ``"mobilenet"`` | depthwise-separable, ReLU6 | MobileNetV2 inverted residuals (linear bottleneck) |

``build_<name>(rng=...)`` returns a freshly initialised model;
:func:`load_reference_model` returns the trained one shipped in the package
(``refquant/data/models/<name>.npz``, read with :mod:`importlib.resources`: no network).
The weights were trained from a fixed seed by ``benchmarks/train_reference_models.py``,
which also wrote ``refquant/data/models/reference_models.json`` (the recipe and the
accuracies, read by :func:`reference_model_info`) and the table in
``refquant/data/README.md``.

This module sits beside :mod:`refquant.nn` rather than inside :mod:`refquant.data`:
the builders are model code written with ``refquant.nn`` layers, while
:mod:`refquant.data` holds plain arrays and knows nothing of layers. The weight files
are data, so they live under ``refquant/data/models/``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Callable

import numpy as np

from . import nn
from ._validate import describe
from .errors import FormatVersionError, QuantizationValueError
from .nn.init import as_rng

__all__ = ["REFERENCE_MODELS", "build_mlp", "build_cnn", "build_resnet", "build_mobilenet",
           "build_reference_model", "list_reference_models", "reference_model_info", "load_reference_model"]

#: Names of the reference models, in the order of the docs and the tables.
REFERENCE_MODELS = ("mlp", "cnn", "resnet", "mobilenet")

_INDEX = "reference_models.json"
_INDEX_VERSION = 1


def _conv_bn(cin: int, cout: int, kernel: int, rng: np.random.Generator, *, stride: int = 1,
             groups: int = 1, act: type[nn.Module] | None = nn.ReLU) -> list[nn.Module]:
    """Conv2d (no bias: the BatchNorm's shift replaces it) → BatchNorm2d → activation (or none)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                                         bias=False, rng=rng),
                               nn.BatchNorm2d(cout)]
    return layers + ([act()] if act is not None else [])


def build_mlp(*, rng=0) -> nn.Sequential:
    """Fully connected: (N, 1, 8, 8) → Flatten → 128 → ReLU → 64 → ReLU → 10 logits (17,226 parameters).

    Args:
        rng: seed or ``numpy.random.Generator`` for the initial weights.
    """
    g = as_rng(rng)
    return nn.Sequential(nn.Flatten(),
                         nn.Linear(64, 128, rng=g), nn.ReLU(),
                         nn.Linear(128, 64, rng=g), nn.ReLU(),
                         nn.Linear(64, 10, rng=g))


def build_cnn(*, rng=0) -> nn.Sequential:
    """Conv–BN–ReLU blocks (14,458 parameters).

    ``3×3 conv 1→16`` (8×8) → ``3×3 conv 16→32`` → 2×2 max pool (4×4) → ``3×3 conv 32→32``
    → global average pool → ``Linear 32→10``; every convolution is followed by
    BatchNorm2d and ReLU.

    Args:
        rng: seed or ``numpy.random.Generator`` for the initial weights.
    """
    g = as_rng(rng)
    return nn.Sequential(*_conv_bn(1, 16, 3, g), *_conv_bn(16, 32, 3, g), nn.MaxPool2d(2),
                         *_conv_bn(32, 32, 3, g), nn.GlobalAvgPool2d(), nn.Linear(32, 10, rng=g))


def _basic_block(cin: int, cout: int, stride: int, g: np.random.Generator) -> nn.Residual:
    """ResNet basic block: $y = \\mathrm{ReLU}(B(x) + s(x))$ with
    $B$ = conv–BN–ReLU–conv–BN and $s$ the identity, or a strided 1×1 conv + BN when the shape changes."""
    body = nn.Sequential(*_conv_bn(cin, cout, 3, g, stride=stride), *_conv_bn(cout, cout, 3, g, act=None))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(*_conv_bn(cin, cout, 1, g, stride=stride, act=None))
    return nn.Residual(body, shortcut, activation=nn.ReLU())


def build_resnet(*, rng=0) -> nn.Sequential:
    """A small ResNet (38,266 parameters): residual ``Add`` with identity and projection shortcuts.

    Stem ``3×3 conv 1→16``–BN–ReLU (8×8) → basic block 16 → basic block 16→32, stride 2
    (4×4; 1×1 strided conv + BN on the shortcut) → basic block 32 → global average pool
    → ``Linear 32→10``.

    Args:
        rng: seed or ``numpy.random.Generator`` for the initial weights.
    """
    g = as_rng(rng)
    return nn.Sequential(*_conv_bn(1, 16, 3, g), _basic_block(16, 16, 1, g), _basic_block(16, 32, 2, g),
                         _basic_block(32, 32, 1, g), nn.GlobalAvgPool2d(), nn.Linear(32, 10, rng=g))


def _inverted_residual(cin: int, cout: int, expand: int, stride: int, g: np.random.Generator) -> nn.Module:
    """MobileNetV2 block: 1×1 expand–BN–ReLU6 → 3×3 depthwise–BN–ReLU6 → 1×1 project–BN (linear
    bottleneck, no activation); wrapped in a Residual (identity ``Add``) when shapes allow."""
    hidden = cin * expand
    body = nn.Sequential(*_conv_bn(cin, hidden, 1, g, act=nn.ReLU6),
                         *_conv_bn(hidden, hidden, 3, g, stride=stride, groups=hidden, act=nn.ReLU6),
                         *_conv_bn(hidden, cout, 1, g, act=None))
    return nn.Residual(body) if stride == 1 and cin == cout else body


def build_mobilenet(*, rng=0) -> nn.Sequential:
    """A small MobileNetV2-style network (29,418 parameters): depthwise-separable convolutions, ReLU6,
    inverted residuals.

    Stem ``3×3 conv 1→16``–BN–ReLU6 (8×8) → depthwise-separable block (3×3 depthwise–BN–ReLU6,
    1×1 conv 16→16–BN) → inverted residuals with expansion 4: 16→24 stride 2 (4×4),
    24→24 (residual), 24→32, 32→32 (residual) → ``1×1 conv 32→64``–BN–ReLU6 → global average
    pool → ``Linear 64→10``.

    Args:
        rng: seed or ``numpy.random.Generator`` for the initial weights.
    """
    g = as_rng(rng)
    return nn.Sequential(*_conv_bn(1, 16, 3, g, act=nn.ReLU6),
                         *_conv_bn(16, 16, 3, g, groups=16, act=nn.ReLU6), *_conv_bn(16, 16, 1, g, act=None),
                         _inverted_residual(16, 24, 4, 2, g), _inverted_residual(24, 24, 4, 1, g),
                         _inverted_residual(24, 32, 4, 1, g), _inverted_residual(32, 32, 4, 1, g),
                         *_conv_bn(32, 64, 1, g, act=nn.ReLU6), nn.GlobalAvgPool2d(), nn.Linear(64, 10, rng=g))


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp, "cnn": build_cnn, "resnet": build_resnet, "mobilenet": build_mobilenet}


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in _BUILDERS:
        raise QuantizationValueError(f"name must be one of {list(REFERENCE_MODELS)}, got {describe(name)}")
    return name


def build_reference_model(name: str, *, rng=0) -> nn.Module:
    """A freshly initialised (untrained) reference model: ``build_<name>(rng=rng)``.

    Raises:
        QuantizationValueError: ``name`` is not one of :data:`REFERENCE_MODELS`.
    """
    return _BUILDERS[_check_name(name)](rng=rng)


def _models_dir():
    return resources.files("refquant.data").joinpath("models")


@functools.lru_cache(maxsize=1)
def _read_index() -> dict:
    resource = _models_dir().joinpath(_INDEX)
    if not resource.is_file():
        return {"format_version": _INDEX_VERSION, "models": {}}
    index = json.loads(resource.read_text(encoding="utf-8"))
    if index.get("format_version") != _INDEX_VERSION:
        raise FormatVersionError(f"packaged {_INDEX} format_version must be {_INDEX_VERSION}, "
                                 f"got {index.get('format_version')!r}; reinstall refquant")
    return index


def list_reference_models() -> list[str]:
    """Names of the reference models whose trained weights are bundled, in :data:`REFERENCE_MODELS` order."""
    d = _models_dir()
    return [name for name in REFERENCE_MODELS if d.joinpath(f"{name}.npz").is_file()]


def reference_model_info(name: str) -> dict:
    """What the training script recorded for a bundled model (a copy).

    Keys: ``file``, ``sha256`` (of the ``.npz``), ``num_parameters``, ``recipe`` (seed,
    optimizer, learning rate, schedule, batch size, epochs, early-stopping patience),
    ``epochs_run``, ``best_epoch``, ``val_accuracy``, ``test_accuracy``, ``test_correct``,
    ``test_total``, and ``numpy`` (the NumPy version that trained it).

    Raises:
        QuantizationValueError: unknown ``name``, or no weights bundled for it.
    """
    _check_name(name)
    models = _read_index()["models"]
    if name not in models:
        raise QuantizationValueError(f"no trained weights are bundled for {name!r}; bundled: "
                                     f"{list_reference_models()}. Run benchmarks/train_reference_models.py")
    return json.loads(json.dumps(models[name]))


def load_reference_model(name: str) -> nn.Module:
    """The trained reference model ``name``, in evaluation mode (no network access).

    Example:
        >>> from refquant.data import load_digits
        >>> model = load_reference_model("cnn")
        >>> x, y = load_digits("test")
        >>> model(x).shape
        (359, 10)

    Raises:
        QuantizationValueError: ``name`` is not one of :data:`REFERENCE_MODELS`, or its weights
            are not bundled.
        FormatVersionError: the bundled file is damaged or of another format version.
    """
    resource = _models_dir().joinpath(f"{_check_name(name)}.npz")
    if not resource.is_file():
        raise QuantizationValueError(f"no trained weights are bundled for {name!r} (missing {name}.npz); "
                                     f"bundled: {list_reference_models()}")
    with resources.as_file(resource) as path:
        return nn.load(path)
