"""What ``refquant compare`` runs on: the profile, the float model and the data, checked up front.

Everything here fails with a :class:`~refquant.cli.errors.UsageError` (exit code 2) naming the
option, before any quantization starts: a bad name, a missing file, data the model cannot take.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from .errors import UsageError

__all__ = ["PROFILE_ALIASES", "DEFAULT_PROFILE", "DEFAULT_MODEL", "CALIBRATION_ROWS", "Data", "resolve_profile",
           "load_model", "load_digits_data", "load_data_file", "check_data_fits"]

#: Friendly runtime names accepted by ``--profile`` besides the profile names themselves (and their
#: spellings with ``-`` for ``_``). ``tflite`` is LiteRT's default CPU path, the XNNPACK delegate.
PROFILE_ALIASES = {
    "tflite": "tflite_xnnpack", "litert": "tflite_xnnpack", "xnnpack": "tflite_xnnpack",
    "ort": "onnxruntime",
    "pytorch": "pytorch_fbgemm", "torch": "pytorch_fbgemm", "fbgemm": "pytorch_fbgemm", "x86": "pytorch_x86",
    "qnnpack": "pytorch_qnnpack",
}
DEFAULT_PROFILE = "tflite"
DEFAULT_MODEL = "resnet"
CALIBRATION_ROWS = 512  # calibration samples taken from the training rows when none are given


def resolve_profile(text: str) -> str:
    """``--profile``: a friendly name (``tflite``, ``onnxruntime``, ``pytorch-fbgemm``...) or a profile name."""
    from ..profiles import PROFILES

    key = text.strip().lower().replace("-", "_")
    name = PROFILE_ALIASES.get(key, key)
    if name not in PROFILES:
        aliases = ", ".join(f"{a} ({p})" for a, p in PROFILE_ALIASES.items())
        raise UsageError(f"--profile must be a profile name ({', '.join(sorted(PROFILES))}) or one of {aliases}; "
                         f"got {text!r}")
    return name


def load_model(text: str):
    """``--model``: a bundled reference model's name, or a float ``.onnx`` file. ``(name, refquant.nn.Module)``."""
    from ..models import list_reference_models, load_reference_model

    bundled = list_reference_models()
    if text in bundled:
        return text, load_reference_model(text)
    if text.lower().endswith(".onnx"):
        if not os.path.isfile(text):
            raise UsageError(f"--model: no such file {text!r} (a float ONNX model was expected)")
        return os.path.basename(text), _onnx_model(text)
    if os.sep in text or "/" in text or "." in text or os.path.exists(text):
        raise UsageError(f"--model takes a bundled model name ({', '.join(bundled)}) or a float .onnx file, got "
                         f"{text!r}")
    raise UsageError(f"--model must be one of the bundled models {', '.join(bundled)} or a float .onnx file, "
                     f"got {text!r}")


def _onnx_model(path: str):
    """The refquant.nn model of a float ONNX file (its import errors as usage errors, named)."""
    from ..errors import FormatVersionError, UnsupportedError
    from ..interop import onnx

    try:
        return onnx.import_float(path)
    except (UnsupportedError, FormatVersionError) as exc:
        raise UsageError(f"--model {path}: {exc}") from None


@dataclass(frozen=True)
class Data:
    """The arrays a comparison uses; ``x_train``/``y_train`` are None when there is nothing to fine-tune on."""
    source: str               # "digits" or the .npz path
    x: np.ndarray             # (N, ...) float32: every technique's accuracy and timing is measured on it
    y: np.ndarray             # (N,) int64 labels
    x_calibration: np.ndarray  # (M, ...) float32: static calibration and QAT's initial ranges
    x_train: np.ndarray | None  # (T, ...) float32: QAT fine-tuning
    y_train: np.ndarray | None  # (T,) int64
    notes: tuple = ()
    names: tuple = ("x", "y", "x_calibration", "x_train", "y_train")  # each array's name in the source

    def describe(self) -> dict:
        """Shapes and roles, for the JSON document and the report."""
        def shape(a):
            return None if a is None else list(a.shape)
        return {"source": self.source, "x": shape(self.x), "x_calibration": shape(self.x_calibration),
                "x_train": shape(self.x_train), "notes": list(self.notes)}


def load_digits_data() -> Data:
    """The embedded digits: accuracy on the test split, calibration and QAT on the training split."""
    from ..data import load_digits

    x_train, y_train = load_digits("train")   # (1079, 1, 8, 8) float32, (1079,) int64
    x_test, y_test = load_digits("test")      # (359, 1, 8, 8)
    return Data("digits", x_test, y_test, x_train[:CALIBRATION_ROWS], x_train, y_train,
                (f"embedded 8x8 digits: {len(x_test)} test images scored, the first {CALIBRATION_ROWS} of "
                 f"{len(x_train)} training images calibrate, all of them fine-tune QAT",))


def _keys(path: str) -> set:
    with zipfile.ZipFile(path) as zf:
        return {n[:-4] for n in zf.namelist() if n.endswith(".npy")}


def load_data_file(path: str) -> Data:
    """``--data file.npz``: ``x``, ``y``; optionally ``x_val``/``y_val`` and ``x_calibration``.

    With ``x_val`` and ``y_val`` the accuracy is measured on them and ``x``/``y`` fine-tune QAT;
    without them it is measured on ``x``/``y`` and QAT is not run (it would be scored on the rows
    it trained on). Calibration uses ``x_calibration``, else the first 512 rows of ``x``.
    """
    from ..data import load_npz
    from ..errors import RefquantError

    if not os.path.isfile(path):
        raise UsageError(f"--data must name an existing .npz file, got {path!r}"
                         + (" (a directory)" if os.path.isdir(path) else ""))
    try:
        keys = _keys(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"--data must be a .npz archive written by np.savez, got {path!r}: {exc}") from None
    if "x_val" in keys and "y_val" not in keys:
        raise UsageError(f"--data {path!r} has x_val but no y_val: the held-out labels are needed to score it")
    try:
        x, y = load_npz(path, x_key="x", y_key="y")
        x_val, y_val = load_npz(path, x_key="x_val", y_key="y_val") if "x_val" in keys else (None, None)
        x_cal = load_npz(path, x_key="x_calibration", y_key=None)[0] if "x_calibration" in keys else None
    except (RefquantError, OSError) as exc:
        raise UsageError(f"--data {path!r}: {exc}") from None
    x, x_val, x_cal = (None if a is None else np.ascontiguousarray(a, dtype=np.float32)  # as the model takes them
                       for a in (x, x_val, x_cal))
    notes = []
    if x_cal is None:
        x_cal = x[:CALIBRATION_ROWS]
        notes.append(f"no x_calibration: the first {len(x_cal)} rows of x calibrate")
    if x_val is None:
        notes.append("no x_val/y_val: accuracy measured on x/y; QAT needs them and is skipped")
        return Data(path, x, y, x_cal, None, None, tuple(notes))
    notes.append(f"accuracy measured on x_val ({len(x_val)} rows); x/y ({len(x)} rows) fine-tune QAT")
    return Data(path, x_val, y_val, x_cal, x, y, tuple(notes),
                ("x_val", "y_val", "x_calibration" if "x_calibration" in keys else "x", "x", "y"))


def check_data_fits(model, data: Data) -> int:
    """Run one sample of each array through the float model; return the number of classes.

    Raises UsageError naming the array whose shape the model refuses, or labels beyond its outputs.
    """
    from ..errors import RefquantError

    classes = None
    x_name, y_name, cal_name, train_name, ytrain_name = data.names
    for name, a in ((x_name, data.x), (cal_name, data.x_calibration), (train_name, data.x_train)):
        if a is None:
            continue
        try:
            out = np.asarray(model(a[:1]))  # (1, classes) logits
        except (RefquantError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"--data: the model cannot take {name} of shape {a.shape} "
                             f"(samples shaped {a.shape[1:]}): {first}") from None
        if out.ndim != 2:
            raise UsageError(f"--data: the model gives outputs of shape {out.shape} for {name}; "
                             "refquant compare scores classifiers, which give (N, classes) logits")
        classes = out.shape[1]
    for name, y in ((y_name, data.y), (ytrain_name, data.y_train)):
        if y is not None and y.size and int(y.max()) >= classes:
            raise UsageError(f"--data: labels must be in [0, {classes - 1}] (the model has {classes} outputs), "
                             f"got {name} up to {int(y.max())}")
    return classes
