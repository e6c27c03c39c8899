"""The compression rows of ``refquant compare`` (the ``compression`` group of ``--techniques``):
pruning, distillation, on-device fine-tuning and int4 rounding beyond round-to-nearest.

Each builder calls the public flows the way a user would (:mod:`refquant.prune`,
:mod:`refquant.distill`, :mod:`refquant.finetune`, :mod:`refquant.ptq.advanced`); the recipes
are those of ``benchmarks/prune_results.py``, ``distill_results.py``, ``finetune_results.py`` and
``advanced_ptq.py``, shortened to ``--qat-epochs`` epochs (batch 32, shuffled by ``--seed``):

| name | model | recipe |
|---|---|---|
| ``prune-50`` | float32 | ``prune.magnitude_masks(0.5)`` per layer; Adam 1e-3 with the masks kept |
| ``prune-2of4`` | float32 | ``prune.nm_masks(2, 4, pad=True)``; the same fine-tuning |
| ``thin-30`` | float32 | ``prune.prune_channels(0.3)`` ($\\ell_1$) where layers can be thinned; Adam 1e-3 |
| ``prune-50-int8`` | int8 | ``prune-50``'s model, ``quantize_static`` per-channel min-max |
| ``distill`` | float32 | the model thinned to half its channels, ``distill.distill`` (T 4, alpha 0.9, Adam 3e-3) |
| ``finetune-int8`` | int8 | ``static-minmax``'s model, ``finetune.finetune(update="bias")``, Adam 1e-3 |
| ``int4-bias-corr``, ``-adaround``, ``-gptq`` | int4 | ``quantize_weights_advanced`` on ``int4-weights``' grid |

**Bytes of a pruned model.** ``model bytes`` is the model as stored with each weight in the row's
sparse format (bitmask, or 2:4 values + metadata) where that format is smaller than dense, its
exact ``.nbytes`` (:mod:`refquant.prune.sparse`); the rest as the model stores it. Latency,
throughput and peak RAM are those of the dense model that runs (a runtime decodes the sparse
weights when it loads them, as TFLite's DENSIFY op does). The row's ``details`` in the JSON
hold the dense bytes, the zero fraction and each layer's format and bytes.
"""

from __future__ import annotations

import numpy as np

from .results import Extras

__all__ = ["TECHNIQUES", "NOT_INTEGER", "storage"]

BATCH_SIZE = 32
PRUNE_LR = 1e-3      # benchmarks/prune_results.py
DISTILL_LR = 3e-3    # benchmarks/distill_results.py; on the digits' val split it beat 1e-3 for cnn and mobilenet
FINETUNE_LR = 1e-3   # refquant.finetune's default
TEMPERATURE, ALPHA = 4.0, 0.9
_NO_TRAIN = "needs labelled training rows besides the scored ones (x_val/y_val in --data)"


def _training(s):
    """fit's keywords; UnsupportedError (an "n/a" row, :func:`refquant.cli.techniques.build`) without training rows."""
    from ..errors import UnsupportedError

    if s.x_train is None:
        raise UnsupportedError(_NO_TRAIN)
    return dict(epochs=s.qat_epochs, batch_size=BATCH_SIZE, seed=s.seed)


def _weights(model):
    """``[(name, (O, K) weight, zero point or None)]``: each Linear/Conv2d weight, or int8 node weight."""
    from .. import nn
    from ..qmodel import QuantizedModel

    if isinstance(model, QuantizedModel):
        return [(n.name, n.params["weight"].reshape(n.params["weight"].shape[0], -1), n.params.get("weight_zero_point"))
                for n in model.nodes if "weight" in n.params and n.params["weight"].dtype == np.int8]
    return [(name, m.weight.value.reshape(m.weight.shape[0], -1), None) for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.value.dtype == np.float32]


def storage(model, fmt: str) -> dict:
    """The model's bytes with each weight in ``fmt`` (``"bitmask"`` or ``"2:4"``) where that is smaller.

    Returns:
        ``{"storage", "dense_bytes", "stored_bytes", "zero_fraction", "layers": [{"layer", "shape",
        "zeros", "format", "dense_bytes", "stored_bytes"}]}``; zeros are weights equal to 0 (float)
        or to their zero point (int8), the values the formats do not store.
    """
    from ..errors import QuantizationValueError
    from ..evaluate import model_bytes
    from ..prune import to_bitmask, to_nm

    dense_total = model_bytes(model)
    stored, zeros, total, layers = dense_total, 0, 0, []
    for name, w, zp in _weights(model):  # w (O, K) float32 or int8
        zero = 0 if zp is None else np.reshape(zp, (-1, 1) if np.ndim(zp) else ())
        z = int(np.count_nonzero(w == zero))
        try:
            sparse = (to_bitmask(w, zero_point=zp) if fmt == "bitmask" else to_nm(w, 2, 4, zero_point=zp)).nbytes
        except QuantizationValueError:  # not 2:4 sparse: stored dense
            sparse = None
        kept = fmt if sparse is not None and sparse < w.nbytes else "dense"
        nbytes = sparse if kept != "dense" else w.nbytes
        stored += nbytes - w.nbytes
        zeros, total = zeros + z, total + w.size
        layers.append({"layer": name, "shape": list(w.shape), "zeros": z / w.size if w.size else 0.0,
                       "format": kept, "dense_bytes": int(w.nbytes), "stored_bytes": int(nbytes)})
    return {"storage": fmt, "dense_bytes": int(dense_total), "stored_bytes": int(stored),
            "zero_fraction": zeros / total if total else 0.0, "layers": layers,
            "note": "model bytes: the weights stored as listed; latency, throughput and peak RAM: the dense model"}


def _stored(model, fmt: str, **details) -> Extras:
    info = storage(model, fmt)
    return Extras(stored_bytes=info["stored_bytes"], details={**details, **info})


def _pruned(s, make_masks):
    """A copy of the model pruned by ``make_masks(model)`` and fine-tuned with its zeros kept."""
    from .. import nn, prune

    training = _training(s)
    model = s.model.copy()
    masks = make_masks(model)
    opt = nn.Adam(model, lr=PRUNE_LR)
    with prune.apply_masks(model, masks, optimizer=opt):
        nn.fit(model, s.x_train, s.y_train, optimizer=opt, progress=False, **training)
    return model, {"fine_tuning": {"optimizer": "Adam", "lr": PRUNE_LR, **training}}


def _magnitude_50(model) -> dict:
    from .. import prune

    return prune.magnitude_masks(model, 0.5, scope="layer")


def _prune_50(s):
    model, info = _pruned(s, _magnitude_50)
    return model, model, _stored(model, "bitmask", **info)


def _prune_2of4(s):
    from .. import prune

    model, info = _pruned(s, lambda m: prune.nm_masks(m, 2, 4, pad=True))
    return model, model, _stored(model, "2:4", **info)


def _prune_50_int8(s):
    from ..ptq import quantize_static

    pruned, info = _pruned(s, _magnitude_50)
    qm = quantize_static(pruned, s.x_calibration, profile=s.profile, per_channel=True, calibrator="minmax")
    return qm, pruned, _stored(qm, "bitmask", **info)


def _thin_report(model, small) -> dict:
    """Which Linear/Conv2d layers were thinned, which could not be and why."""
    from .. import nn, prune
    from ..errors import UnsupportedError

    thinned, kept = prune.thinnable_layers(model), {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and name not in thinned:
            try:
                prune.select_channels(model, 0.3, layers=[name])
            except UnsupportedError as exc:
                kept[name] = str(exc).splitlines()[0]
    return {"parameters_before": model.num_parameters(), "parameters_after": small.num_parameters(),
            "thinned_layers": thinned, "not_thinned": kept}


def _thin_30(s):
    from .. import nn, prune

    training = _training(s)
    small = prune.prune_channels(s.model, 0.3)
    nn.fit(small, s.x_train, s.y_train, optimizer=nn.Adam(small, lr=PRUNE_LR), progress=False, **training)
    details = {**_thin_report(s.model, small), "fine_tuning": {"optimizer": "Adam", "lr": PRUNE_LR, **training}}
    return small, small, Extras(details=details)


def _distill(s):
    from .. import nn, prune
    from ..distill import distill
    from ..errors import UnsupportedError

    training = _training(s)
    try:
        student = prune.prune_channels(s.model, 0.5)
    except UnsupportedError as exc:  # an "n/a" row
        raise UnsupportedError(f"no smaller student of this model's family: {str(exc).splitlines()[0]}") from None
    distill(student, s.model, s.x_train, s.y_train, temperature=TEMPERATURE, alpha=ALPHA,
            optimizer=nn.Adam(student, lr=DISTILL_LR), **training)
    thin = _thin_report(s.model, student)
    details = {"teacher": "the float model compared", "teacher_parameters": thin.pop("parameters_before"),
               "student_parameters": thin.pop("parameters_after"), **thin,
               "student": "the teacher thinned to half the channels of each layer that can be thinned (l1 filter "
                          "norms), then trained on the teacher's soft targets and the labels",
               "distillation": {"temperature": TEMPERATURE, "alpha": ALPHA, "optimizer": "Adam", "lr": DISTILL_LR,
                                **training}}
    return student, student, Extras(details=details)


def _finetune_int8(s):
    from ..finetune import finetune
    from ..ptq import quantize_static

    training = _training(s)
    qm = quantize_static(s.model, s.x_calibration, profile=s.profile, per_channel=True, calibrator="minmax")
    tuned, report = finetune(qm, s.x_train, s.y_train, update="bias", lr=FINETUNE_LR, **training)
    details = {"update": "bias", "optimizer": "Adam", "lr": FINETUNE_LR, **training,
               "changed_bytes": report.changed_bytes, "changed_values": report.changed_values,
               "trainable_values": report.trainable_values, "model_bytes": report.model_bytes,
               "train_top1_before": report.accuracy_before, "train_top1_after": report.accuracy_after,
               "note": "fine-tuned on the training rows the float model learned from (no shift): what it costs "
                       "and which bytes an update would ship, not an accuracy gain"}
    return tuned, s.model, Extras(details=details)


def _int4(method: str, correct_bias=None):
    def build_int4(s):
        from ..ptq.advanced import quantize_weights_advanced

        qm = quantize_weights_advanced(s.model, s.x_calibration, bits=4, method=method, correct_bias=correct_bias,
                                       profile=s.profile)
        details = {"method": method, "correct_bias": correct_bias,
                   "bias_corrected_layers": qm.metadata.get("bias_corrected_layers")}
        return qm, s.model, Extras(details=details)
    return build_int4


_FLOAT = "a float32 model: the runtime columns run the integer models"
_INT4 = "weight-only int4 computes in float32: the exporters write fully integer models"

#: ``(name, label, builder, help, fully integer)`` in table order; ``{epochs}`` in a label is ``--qat-epochs``.
TECHNIQUES = (
    ("int4-bias-corr", "int4 weights + bias correction", _int4("rtn", "empirical"),
     "int4-weights, then each layer's bias shifted by its mean output error on the calibration data "
     "(Nagel et al. 2019, empirical)", False),
    ("int4-adaround", "int4 weights, AdaRound", _int4("adaround"),
     "int4-weights' grid, each weight rounded up or down as AdaRound learns per layer (Nagel et al. 2020; "
     "1000 steps per layer)", False),
    ("int4-gptq", "int4 weights, GPTQ", _int4("gptq"),
     "int4-weights' grid, codes chosen column by column with GPTQ's error feedback (Frantar et al. 2022)", False),
    ("prune-50", "pruned 50 %, FT {epochs}, bitmask-stored", _prune_50,
     "50 % of each layer's weights with the smallest magnitude set to 0, fine-tuned --qat-epochs with the "
     "zeros kept; bytes with the weights stored as bitmask + values, run dense", False),
    ("prune-2of4", "pruned 2:4, FT {epochs}, 2:4-stored", _prune_2of4,
     "2 of every 4 weights kept (NVIDIA 2:4), fine-tuned --qat-epochs; bytes with the weights stored as 2:4 "
     "values + metadata, run dense", False),
    ("thin-30", "thinned 30 %, FT {epochs}", _thin_30,
     "30 % of the filters removed (l1 norms) from each layer that can be thinned (not those feeding a "
     "residual add or the output), fine-tuned --qat-epochs: a smaller dense model", False),
    ("prune-50-int8", "pruned 50 % + static int8, bitmask-stored", _prune_50_int8,
     "prune-50's model, then static int8 as static-minmax; bytes with the weights stored as bitmask", True),
    ("distill", "distilled student (½ channels), {epochs}", _distill,
     "a student of the model's own family at half the channels (the model thinned), trained --qat-epochs on "
     "the model's soft targets (Hinton et al. 2015, T = 4, alpha = 0.9)", False),
    ("finetune-int8", "static int8 + on-device FT, {epochs}", _finetune_int8,
     "static-minmax's integer model fine-tuned on the device's data (here the training rows) through its "
     "integer forward pass, biases only; the JSON lists the bytes that changed", True),
)

#: Why a row of this module gets no runtime columns.
NOT_INTEGER = {name: (_INT4 if name.startswith("int4-") else _FLOAT) for name, *_, integer in TECHNIQUES
               if not integer}
