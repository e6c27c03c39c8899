"""What the report adds to the table: each calibrator's range on one activation tensor, and the
share of zero weights per layer.

Both are computed from the public pieces a user would use (:func:`refquant.calibration.make_observer`,
:func:`refquant.passes.prepare_for_quantization`), on the same model and calibration data as the run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CALIBRATION_OBSERVERS", "calibration_ranges", "weight_sparsity"]

#: The calibrators of the static rows, in the table's order.
CALIBRATION_OBSERVERS = ("minmax", "percentile", "entropy", "mse")
_MAX_SAMPLES = 200_000  # values kept for the histogram


def _first_activation(model):
    """``(name, module)``: the first ReLU/ReLU6 (the first layer's output as the integer model stores it,
    its activation fused), else the first Linear/Conv2d."""
    from .. import nn

    named = list(model.named_modules())
    for kinds in ((nn.ReLU, nn.ReLU6), (nn.Linear, nn.Conv2d)):
        for name, m in named:
            if isinstance(m, kinds):
                return name, m
    return None, None


def calibration_ranges(model, x_calibration: np.ndarray, *, batch_size: int = 256) -> dict | None:
    """Each static calibrator's ``(lo, hi)`` for the first layer's output on the calibration data.

    The float model is prepared as the flows prepare it (BatchNorm folded), and every observer sees the
    same batches. Returns ``{"tensor", "ranges": {calibrator: [lo, hi]}, "values": (K,) float32 sample}``,
    or None for a model without such a layer.
    """
    from ..calibration import make_observer
    from ..passes import prepare_for_quantization

    prepared = prepare_for_quantization(model, keep_names=True)
    name, layer = _first_activation(prepared)
    if layer is None:
        return None
    observers = {c: make_observer(c) for c in CALIBRATION_OBSERVERS}
    seen = []

    def observe(module, inputs, output):
        for obs in observers.values():
            obs.update(output)
        seen.append(np.asarray(output, np.float32).reshape(-1))

    handle = layer.register_forward_hook(observe)
    try:
        for i in range(0, len(x_calibration), batch_size):
            prepared(x_calibration[i:i + batch_size])
    finally:
        handle.remove()
    values = np.concatenate(seen)  # (M * features,) float32
    if values.size > _MAX_SAMPLES:  # an even subsample: the histogram's shape, not every value
        values = values[:: values.size // _MAX_SAMPLES + 1]
    ranges = {c: [float(v) for v in obs.range()] for c, obs in observers.items()}
    return {"tensor": f"the output of layer {name} ({type(layer).__name__}), BatchNorm folded", "ranges": ranges,
            "values": values}


def _zero_share(w: np.ndarray, zero_point) -> float:
    """Share of weights equal to their zero point (per output channel: axis 0)."""
    zp = 0 if zero_point is None else np.asarray(zero_point).reshape((-1,) + (1,) * (w.ndim - 1))
    return float(np.mean(w == zp))


def weight_sparsity(float_model, models: dict) -> dict:
    """Zero-weight shares per layer: the float weights (exact zeros) and each integer model's weight codes
    (codes equal to the zero point: the weight rounded to 0).

    Args:
        float_model: The float model.
        models: ``{technique: model}``; the QuantizedModels among them get a column.

    Returns:
        ``{"columns": ["float32", technique, ...], "rows": [[layer, share or None, ...], ...]}``.
    """
    from .. import nn
    from ..qmodel import QuantizedModel

    layers = {name: m for name, m in float_model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    q = {t: {n.name: _zero_share(n.params["weight"], n.params.get("weight_zero_point"))
             for n in m.nodes if "weight" in n.params}
         for t, m in models.items() if isinstance(m, QuantizedModel)}
    rows = [[f"{name} ({type(m).__name__})", float(np.mean(m.weight.value == 0))] + [q[t].get(name) for t in q]
            for name, m in layers.items()]
    return {"columns": ["float32", *q], "rows": rows}
