r"""Per-layer error of an integer model against the float model it was made from.

For every integer tensor $q$ of the integer model, with parameters $(S, Z)$, and the float
model's value $r$ of the same tensor on the same input (docs "Learn 13", eqs. (1)–(2)):

$$ \mathrm{SQNR} = 10 \log_{10} \frac{\sum r^2}{\sum (r - S(q - Z))^2}\ \mathrm{dB}, \qquad
   \text{max error} = \max |r - S(q - Z)| / S\ \text{LSB}, $$

and the share of $r$ outside $[S(q_{min} - Z), S(q_{max} - Z)]$ (saturated). These are the rows of
:func:`refquant.ptq.debug.layer_report`, which needs the :class:`~refquant.ptq.flows.Calibrated`
model; :func:`layer_errors` needs only the float model: it prepares it as the flows do (BatchNorm
folded, layer names kept), traces it with the fusion of the integer model's profile, and records
every step's float output. Float tensors (the inputs of a dynamic-range layer, a weight-only
model's activations) have no LSB and get no row.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import nn
from ..errors import QuantizationTypeError
from ..passes import prepare_for_quantization
from ..ptq.debug import tensor_error_rows
from ..ptq.recipes import recipe_for
from ..ptq.trace import float_outputs, trace
from ..qmodel import QuantizedModel
from ._inputs import call, check_x

__all__ = ["layer_errors"]


def layer_errors(qmodel, float_model, x) -> list[dict]:
    """One row per integer tensor of ``qmodel`` that the float model also computes, in graph order.

    Args:
        qmodel: The integer model.
        float_model: The float :class:`refquant.nn.Module` ``qmodel`` was made from (unchanged).
        x: Float input batch, ``(N, ...)`` with N >= 1.

    Returns:
        Rows ``{"tensor", "op", "sqnr_db", "max_error_lsb", "saturated"}`` (str, str, float, float,
        float in [0, 1]); for a :func:`~refquant.ptq.quantize_static` model, equal to
        :func:`~refquant.ptq.debug.layer_report`'s. Empty for a model without integer tensors.

    Raises:
        QuantizationTypeError: ``qmodel`` or ``float_model`` of the wrong type.
        ShapeError: ``x`` empty or not what the models take; a float tensor whose size differs from the
            integer one of the same name (``float_model`` is another model).
        UnsupportedError: A float layer that has no integer node (naming it).
    """
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a QuantizedModel, got {V.describe(qmodel)}")
    if not isinstance(float_model, nn.Module):
        raise QuantizationTypeError(f"float_model must be a refquant.nn Module, got {V.describe(float_model)}")
    x = check_x(x)
    prepared = prepare_for_quantization(float_model, keep_names=True)
    steps = trace(prepared, fuse=recipe_for(qmodel.profile).fuse)
    reference = call(lambda b: float_outputs(prepared, steps, b), x, "float_model")
    traced = call(qmodel.trace, x, "qmodel")
    return tensor_error_rows(qmodel, {k: np.asarray(v) for k, v in reference.items()}, traced)
