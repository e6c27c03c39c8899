"""The techniques ``refquant compare`` measures: a name for ``--techniques``, a label for the
table, and how each turns the float model into the model that is measured.

Each builder calls one public flow (:mod:`refquant.ptq`, :mod:`refquant.qat`) the way a user
would; nothing here is specific to the command line except the names. Two groups: ``all`` (the
default) is the quantization techniques, ``compression`` the pruning, distillation, on-device
fine-tuning and advanced int4 rows of :mod:`refquant.cli.techniques_compress`, which train and take
longer; ``all+compression`` is both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import techniques_compress as _compress
from .errors import UsageError
from .results import Extras

__all__ = ["Setup", "Technique", "TECHNIQUES", "GROUPS", "NotApplicable", "parse_techniques", "label", "build",
           "not_integer_reason"]


@dataclass(frozen=True)
class Setup:
    """What every builder gets: the float model, the profile and the data (see :class:`~refquant.cli.inputs.Data`)."""
    model: object            # refquant.nn.Module, trained, float32
    profile: str             # a refquant profile name
    x_calibration: np.ndarray  # (M, ...) float32
    x_train: np.ndarray | None  # (T, ...) float32, for QAT
    y_train: np.ndarray | None  # (T,) int64
    seed: int = 0
    qat_epochs: int = 1


class NotApplicable(Exception):
    """The technique cannot run on this model, profile or data; the row says why (not a failure)."""


def _float(s: Setup):
    return s.model


def _dynamic(s: Setup):
    from ..ptq import quantize_dynamic
    return quantize_dynamic(s.model, profile=s.profile)


def _static(per_channel: bool, calibrator: str) -> Callable:
    def build_static(s: Setup):
        from ..ptq import quantize_static
        return quantize_static(s.model, s.x_calibration, profile=s.profile, per_channel=per_channel,
                               calibrator=calibrator)
    return build_static


def _qat(s: Setup):
    """Short QAT from the trained weights: ranges from the calibration data, ``qat_epochs`` of Adam at
    1e-4 (the recipe of ``benchmarks/ptq_table.py``), then the integer model."""
    from .. import nn, qat
    if s.x_train is None:
        raise NotApplicable("needs labelled training rows besides the scored ones (x_val/y_val in --data)")
    fq = qat.calibrate(qat.prepare_qat(s.model, profile=s.profile), s.x_calibration)
    nn.fit(fq, s.x_train, s.y_train, epochs=s.qat_epochs, optimizer=nn.Adam(fq, lr=1e-4), progress=False,
           seed=s.seed)
    return qat.convert(fq), qat.float_model(fq)  # the integer model, and the fine-tuned float one it matches


def _int4_weights(s: Setup):
    from ..ptq import quantize_weights
    return quantize_weights(s.model, bits=4, profile=s.profile)


@dataclass(frozen=True)
class Technique:
    name: str    # for --techniques
    label: str   # the table's first column
    build: Callable  # Setup -> model, or (model, the float model its layers match when not Setup.model[, Extras])
    help: str
    integer: bool = False  # a fully integer model: the runtime columns export and run it
    group: str = "all"     # the --techniques group it belongs to: "all" or "compression"


TECHNIQUES = {t.name: t for t in (
    Technique("float", "float32", _float, "the float model as given (the baseline)"),
    Technique("dynamic", "dynamic int8", _dynamic,
              "dynamic-range int8: int8 weights, activations quantized per batch at run time; the layers "
              "the profile's tool picks (Linear layers only)"),
    Technique("static-per-tensor", "static int8, per-tensor, min-max", _static(False, "minmax"),
              "full-integer int8, one weight scale per tensor, min-max calibration", integer=True),
    Technique("static-minmax", "static int8, per-channel, min-max", _static(True, "minmax"),
              "full-integer int8, one weight scale per output channel, min-max calibration", integer=True),
    Technique("static-percentile", "static int8, per-channel, percentile", _static(True, "percentile"),
              "as static-minmax, activation ranges at the 99.999th percentile", integer=True),
    Technique("static-entropy", "static int8, per-channel, entropy", _static(True, "entropy"),
              "as static-minmax, activation ranges minimising the KL divergence", integer=True),
    Technique("static-mse", "static int8, per-channel, MSE", _static(True, "mse"),
              "as static-minmax, activation ranges minimising the quantization MSE", integer=True),
    Technique("qat", "QAT int8", _qat, "quantization-aware training from the trained weights (--qat-epochs)",
              integer=True),
    Technique("int4-weights", "int4 weights (weight-only)", _int4_weights,
              "weight-only int4, one scale per output channel, float32 compute"),
)}
TECHNIQUES.update((name, Technique(name, text, make, about, integer, group="compression"))
                  for name, text, make, about, integer in _compress.TECHNIQUES)

#: ``--techniques`` group names -> the techniques they select (in table order).
GROUPS = {"all": [n for n, t in TECHNIQUES.items() if t.group == "all"],
          "compression": [n for n, t in TECHNIQUES.items() if t.group == "compression"],
          "all+compression": list(TECHNIQUES)}


def parse_techniques(text: str) -> list[str]:
    """``--techniques``: comma-separated names and group names (:data:`GROUPS`); returned in the table's order."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TECHNIQUES and n not in GROUPS]
    if unknown or not names:
        raise UsageError(f"--techniques must be a comma-separated list of {', '.join(TECHNIQUES)} or the groups "
                         f"{', '.join(GROUPS)}, got {text!r}"
                         + (f": unknown {', '.join(map(repr, unknown))}" if unknown else ""))
    chosen = {m for n in names for m in GROUPS.get(n, [n])}
    return [n for n in TECHNIQUES if n in chosen]


def label(name: str, setup: Setup) -> str:
    """The table's label for technique ``name`` (QAT's and the training rows' name their epochs)."""
    epochs = f"{setup.qat_epochs} epoch{'s' if setup.qat_epochs != 1 else ''}"
    if name == "qat":
        return f"QAT int8, {epochs}"
    return TECHNIQUES[name].label.replace("{epochs}", epochs)


def not_integer_reason(name: str) -> str | None:
    """Why technique ``name``'s model gets no runtime columns (None: it is fully integer, it does)."""
    if TECHNIQUES[name].integer:
        return None
    if name == "float":
        return "the float model: the runtime columns run the integer models"
    if name == "dynamic":
        return ("dynamic-range int8 quantizes activations at run time and keeps float layers: the exporters "
                "write fully integer models")
    if name == "int4-weights":
        return "weight-only int4 computes in float32: the exporters write fully integer models"
    if name in _compress.NOT_INTEGER:
        return _compress.NOT_INTEGER[name]
    return "not a fully integer model: the exporters write fully integer models"


def build(name: str, setup: Setup) -> tuple:
    """``(model, reference, extras)``: the model technique ``name`` makes, the float model its per-layer
    errors are measured against (``setup.model``, or QAT's fine-tuned weights), and what it adds to its
    row (:class:`~refquant.cli.results.Extras`). NotApplicable when it cannot run here: the builder raised
    UnsupportedError (the profile has no kernels for it, no training rows, nothing to thin)."""
    from ..errors import UnsupportedError
    try:
        out = TECHNIQUES[name].build(setup)
    except UnsupportedError as exc:
        raise NotApplicable(str(exc).splitlines()[0]) from None
    out = out if isinstance(out, tuple) else (out,)
    return out + (setup.model, Extras())[len(out) - 1:]
