"""Post-training quantization: full-integer static, dynamic range, and weight-only.

* :func:`quantize_static` — fold batch norm, drop identities, trace, calibrate every activation
  tensor on the calibration data, choose parameters as the profile's tool does, lower to integer
  nodes. Activations, weights and arithmetic are integer from the input ``quantize`` to the
  output ``dequantize``.
* :func:`quantize_dynamic` — int8 weights for every Linear; each call quantizes the Linear's
  input from its own min and max (PyTorch's ``quantize_dynamic``): float in, float out, no
  calibration. Other layers stay float.
* :func:`quantize_weights` — weight-only: every Linear and Conv2d stores ``bits``-bit weights
  (per channel, or per group of input channels) and computes in float32 with the dequantized
  weights. Only the model's size changes, and its accuracy by the weights' rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from .. import nn
from .. import passes
from ..calibration import ALL_CALIBRATORS, make_observer
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..profiles import get_profile, list_profiles
from ..qmodel import Node, QuantizedModel, TensorInfo
from .lower import _padding, lower
from .recipes import recipe_for
from .tool_ranges import tool_ranges
from .trace import INPUT, Step, observe, trace

__all__ = ["quantize_static", "quantize_dynamic", "quantize_weights", "calibrate", "calibrate_model", "Calibrated",
           "iter_batches"]

_F32 = np.float32


def _model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {V.describe(model)}")
    return model


def _profile(profile, isa="auto"):
    name = V.as_choice(profile, "profile", tuple(list_profiles()))
    return get_profile(name, isa=isa)


def iter_batches(data, batch_size: int = 256):
    """Batches of float32 from an ``(N, ...)`` array or an iterable of arrays, each checked
    (finite, non-empty, float) as it is read; ``batch_size`` and an array are checked at the call."""
    return _batches(data, batch_size, "data")


def _batches(data, batch_size, name: str):
    """:func:`iter_batches`, whose messages call the data ``name`` (the caller's argument)."""
    batch_size = V.as_positive_int(batch_size, "batch_size")
    if isinstance(data, np.ndarray) or not hasattr(data, "__iter__"):
        arr = V.as_float_array(data, name)
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise QuantizationValueError(f"{name} must hold at least one sample, got shape {arr.shape}")
        chunks = (arr[i:i + batch_size] for i in range(0, arr.shape[0], batch_size))
    else:
        chunks = iter(data)
    return _checked_batches(chunks, name)


def _checked_batches(chunks, name: str):
    n = 0
    for chunk in chunks:
        a = V.as_float_array(chunk, f"{name} batch").astype(_F32, copy=False)
        if a.ndim == 0 or a.size == 0:
            raise QuantizationValueError(f"{name} batch {n} must be a non-empty (N, ...) array, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise QuantizationValueError(f"{name} batch {n} must be finite (in float32), got NaN or Inf")
        n += 1
        yield a
    if n == 0:
        raise QuantizationValueError(f"{name} must hold at least one batch, got none")


def calibrate(model, steps, calibration_data, calibrator: str = "minmax", **options) -> dict:
    """``{tensor name: (lo, hi)}`` for the model input and every step output, observed by
    ``calibrator`` (:data:`refquant.calibration.CALIBRATORS`) over the calibration data.
    ``steps`` is :func:`~refquant.ptq.trace.trace` of ``model``."""
    model = _model(model)
    if not isinstance(steps, (list, tuple)) or not all(isinstance(s, Step) for s in steps):
        raise QuantizationTypeError(f"steps must be the list of Step records trace(model) returns, "
                                    f"got {V.describe(steps)}")
    calibrator = V.as_choice(calibrator, "calibrator", tuple(ALL_CALIBRATORS))
    try:
        observers = observe(model, steps, _batches(calibration_data, 256, "calibration_data"),
                            lambda name: make_observer(calibrator, **options))
    except (ValueError, IndexError) as err:
        if isinstance(err, QuantizationValueError) and "calibration_data" in str(err):
            raise
        raise ShapeError(f"calibration_data batches must have the shape the model takes: {err}") from None
    return {name: tuple(_F32(v) for v in obs.range()) for name, obs in observers.items()}


def _step_names(steps, layers, arg: str) -> set:
    """The step names ``layers`` (a tuple, list or set of layer names) stands for, checked."""
    if isinstance(layers, (list, set, frozenset)):
        layers = tuple(layers)
    layers = V.as_tuple(layers, arg, "layer names")
    if not all(isinstance(n, str) for n in layers):
        raise QuantizationTypeError(f"{arg} must hold layer names (str), got {V.describe(layers)}")
    names = set(layers)
    known = {s.name for s in steps}
    unknown = sorted(names - known)
    if unknown:
        raise QuantizationValueError(f"{arg} must name layers of the traced model ({sorted(known)}), got {unknown}")
    return names


def _float_step_names(model, steps, float_layers) -> set:
    return _step_names(steps, float_layers, "float_layers")


def _int16_step_names(steps, int16_layers, profile, float_steps: set) -> set:
    """``int16_layers`` as step names: ``"all"`` is every step; a profile without 16x8 layers refuses."""
    if isinstance(int16_layers, str):
        if int16_layers != "all":
            raise QuantizationValueError(f"int16_layers must be 'all' or a sequence of layer names, "
                                         f"got {int16_layers!r}")
        names = {s.name for s in steps} - float_steps
    else:
        names = _step_names(steps, int16_layers, "int16_layers")
    both = sorted(names & float_steps)
    if both and not isinstance(int16_layers, str):
        raise QuantizationValueError(f"a layer cannot be both in float_layers and in int16_layers, got {both}")
    if names and not profile.layers_16x8:
        raise UnsupportedError(f"int16_layers: profile {profile.name!r} has no int16-activation (16x8) kernels; "
                               f"profiles with them: {[p for p in list_profiles() if get_profile(p).layers_16x8]}")
    return names


def _probe(qm_factory, float_steps: set, probe_batch, allow_float: bool):
    """Build, then run once: a node the profile cannot run raises, naming it, or (``allow_float``)
    stays float and the model is rebuilt."""
    while True:
        qm = qm_factory(float_steps)
        try:
            qm.run(probe_batch)
            return qm, float_steps
        except UnsupportedError as err:
            node = getattr(err, "node", None)
            if not allow_float or node is None or node in float_steps:
                raise
            float_steps = float_steps | {node}


@dataclass
class Calibrated:
    """A float model ready to lower: folded and traced, every tensor's range observed.

    Attributes:
        model: The prepared float model (batch norm folded, identities removed).
        steps: Its :func:`~refquant.ptq.trace.trace`.
        ranges: ``{tensor name: (lo, hi)}``.
        profile: The resolved profile. recipe: Its tool's :class:`~refquant.ptq.recipes.Recipe`.
        calibrator: The calibrator's name. probe: A few calibration samples (to test-run a model).
    """

    model: nn.Module
    steps: list
    ranges: dict
    profile: object
    recipe: object
    calibrator: str
    probe: np.ndarray

    def __post_init__(self):
        self.probe = V.as_float_array(self.probe, "probe").astype(_F32, copy=False)  # native byte order

    def lower(self, *, per_channel: bool = True, float_layers=(), int16_layers=(),
              allow_float: bool = False) -> QuantizedModel:
        """The integer model of these ranges (see :func:`quantize_static`)."""
        per_channel = V.as_flag(per_channel, "per_channel")
        allow_float = V.as_flag(allow_float, "allow_float")
        float_steps = _float_step_names(self.model, self.steps, float_layers)
        int16_steps = _int16_step_names(self.steps, int16_layers, self.profile, float_steps)
        meta = {"flow": "static", "calibrator": self.calibrator, "per_channel": per_channel,
                "recipe": self.recipe.name, "input_shape": list(self.probe.shape[1:])}
        if int16_steps:
            meta["int16_layers"] = sorted(int16_steps)

        def build(fs):
            return lower(self.steps, self.ranges, profile=self.profile, recipe=self.recipe, per_channel=per_channel,
                         float_steps=fs, int16_steps=int16_steps - fs,
                         metadata=meta | {"float_layers": sorted(fs)})

        qm, _ = _probe(build, float_steps, self.probe, allow_float)
        return qm


def calibrate_model(model, calibration_data, *, profile, calibrator: str = "minmax", isa: str = "auto",
                    **calibrator_options) -> Calibrated:
    """Fold, trace and calibrate ``model`` once; :meth:`Calibrated.lower` then builds integer
    models (several, for a sensitivity analysis) without calibrating again."""
    model = _model(model)
    prof = _profile(profile, isa)
    recipe = recipe_for(prof)
    prepared = passes.prepare_for_quantization(model, keep_names=True)
    steps = trace(prepared, fuse=recipe.fuse)
    first = []

    def batches():  # one pass over the data (an iterator may not be re-read); keep a probe
        for b in _batches(calibration_data, 256, "calibration_data"):
            if not first:
                first.append(b[:8].copy())
            yield b

    ranges = calibrate(prepared, steps, batches(), calibrator, **calibrator_options)
    if calibrator == "minmax":  # what the tools' min-max calibrators record (the TFLite converter's in-place ADD)
        ranges = tool_ranges(recipe, steps, ranges)
    return Calibrated(prepared, steps, ranges, prof, recipe, calibrator, first[0])


def quantize_static(model, calibration_data, *, profile, per_channel: bool = True, calibrator: str = "minmax",
                    isa: str = "auto", float_layers=(), int16_layers=(), allow_float: bool = False,
                    **calibrator_options):
    """Full-integer post-training quantization.

    Args:
        model: A float :class:`refquant.nn.Module` (left unchanged).
        calibration_data: ``(N, ...)`` float32 array or an iterable of batches.
        profile: Profile name: the runtime the model is for; its tool's recipe chooses the
            parameters (:mod:`refquant.ptq.recipes`).
        per_channel: Per-output-channel weights (else per tensor). The tools' defaults differ:
            ONNX Runtime's ``quantize_static`` and PyTorch's qnnpack qconfig use per-tensor
            weights, the TFLite converter and PyTorch's fbgemm/x86 qconfigs per-channel.
        calibrator: ``"minmax"``, ``"moving_average"``, ``"percentile"``, ``"mse"``, ``"entropy"``
            or ``"entropy_tensorrt"`` (:mod:`refquant.calibration`). The default is min-max under
            every profile; the tools' own defaults differ (PyTorch's default qconfig observes
            activations with a ``HistogramObserver``: pass ``"mse"``; ONNX Runtime's
            ``quantize_static`` uses min-max).
        isa: ISA the profile's accumulation is resolved for (``"auto"``: this CPU).
        float_layers: Layer names to keep in float32.
        int16_layers: Layer names whose inputs and output are int16 (TFLite's 16x8 mode: int16
            activations with zero point 0, int8 weights, int64 bias), or ``"all"`` for a whole 16x8
            model. Where an int16 layer meets an int8 one, a ``requantize`` node converts (TFLite's
            QUANTIZE between integer tensors). Only profiles with 16x8 kernels take it
            (``Profile.layers_16x8``: the TFLite profiles).
        allow_float: Keep a layer the profile cannot run in float32 (else raise, naming it).
        **calibrator_options: Passed to :func:`refquant.calibration.make_observer`.

    Returns:
        A :class:`~refquant.qmodel.QuantizedModel` for ``profile``.

    Raises:
        UnsupportedError: A layer the profile cannot run (naming it), unless ``allow_float``; int16
            layers under a profile without 16x8 kernels.
        QuantizationValueError: Empty or non-finite calibration data, unknown names, a layer named in
            both ``float_layers`` and ``int16_layers``.
        ShapeError: Calibration batches the model cannot take.
    """
    per_channel = V.as_flag(per_channel, "per_channel")
    allow_float = V.as_flag(allow_float, "allow_float")
    cal = calibrate_model(model, calibration_data, profile=profile, calibrator=calibrator, isa=isa,
                          **calibrator_options)
    return cal.lower(per_channel=per_channel, float_layers=float_layers, int16_layers=int16_layers,
                     allow_float=allow_float)


def _linear_steps(steps):
    return [s for s in steps if s.op == "linear"]


def quantize_dynamic(model, *, profile, isa: str = "auto") -> QuantizedModel:
    """Dynamic-range quantization: int8 weights for every Linear, activations quantized per call.

    The weights are chosen as the profile's tool chooses them for dynamic range
    (:mod:`refquant.ptq.dynamic_weights`): PyTorch's ``quantize_dynamic`` (per-tensor symmetric
    qint8), ONNX Runtime's ``quantize_dynamic`` defaults (per-tensor symmetric int8), the TFLite
    converter's dynamic-range quantizer (per-channel symmetric int8; a Linear with fewer than
    1024 weights stays float). Each Linear then runs as a ``dynamic_linear`` node,
    :func:`refquant.ops.dynamic.dynamic_linear` under the profile, bit for bit what the runtime
    computes (``quantized::linear_dynamic`` with ``reduce_range=True``, ``DynamicQuantizeMatMul``,
    hybrid FULLY_CONNECTED). Every other layer, convolutions included, runs in float32.

    Raises:
        UnsupportedError: The profile's tool has no dynamic quantization, or its runtime no dynamic
            kernel refquant models.
    """
    from .dynamic_weights import dynamic_weight

    model = _model(model)
    prof = _profile(profile, isa)
    recipe = recipe_for(prof)
    if not (recipe.dynamic and prof.layer("linear").dynamic_input is not None):
        modelled = [p for p in list_profiles() if recipe_for(p).dynamic and get_profile(p).layer("linear").dynamic_input]
        raise UnsupportedError(f"quantize_dynamic: refquant does not model dynamic-range kernels for profile "
                               f"{prof.name!r}; profiles with them: {modelled}")
    prepared = passes.prepare_for_quantization(model, keep_names=True)
    steps = trace(prepared, fuse=())  # float ReLUs after the dynamic Linears, as torch leaves them
    nodes, tensors = [], {INPUT: TensorInfo(INPUT, "float32")}
    for s in steps:
        attrs = {"activation": s.activation} if s.activation else {}
        params = {}
        op = s.op
        if s.op in ("linear", "conv2d"):
            w = s.layer.weight.value.astype(_F32)
            b = None if s.layer.bias is None else s.layer.bias.value.astype(_F32)
            quantized = dynamic_weight(recipe, w, profile=prof) if s.op == "linear" else None
            if quantized is not None:
                q, ws, wz = quantized
                params = {"weight": q, "weight_scale": ws, "weight_zero_point": wz}
                attrs["reduce_range"] = True
                op = "dynamic_linear"
            else:
                params = {"weight": w}
            if s.op == "conv2d":
                c = s.layer
                attrs.update(stride=list(c.stride), padding=_padding(c), dilation=list(c.dilation), groups=c.groups)
            if b is not None:
                params["bias"] = b
        elif s.op in ("max_pool2d", "average_pool2d"):
            attrs.update(kernel=list(s.layer.kernel_size), stride=list(s.layer.stride))
        nodes.append(Node(s.name, op, tuple(s.inputs), s.output, attrs, params))
        tensors[s.output] = TensorInfo(s.output, "float32")
    out = steps[-1].output if steps else INPUT
    return QuantizedModel(nodes, tensors, [INPUT], [out], profile=prof.name, isa=prof.isa,
                          metadata={"flow": "dynamic", "recipe": recipe.name})


def _group_quantize(w: np.ndarray, bits: int, group_size):
    """Symmetric ``bits``-bit codes: $S = \\max|w| / (2^{b-1} - 1)$ per output channel, or per group of
    ``group_size`` input channels; $q = \\mathrm{RNE}(w / S)$ in $[-(2^{b-1}-1), 2^{b-1}-1]$."""
    qmax = 2 ** (bits - 1) - 1
    o, cin = w.shape[0], w.shape[1]
    if group_size is None or cin <= group_size:  # one group spans the layer's inputs: per channel
        amax = np.abs(w.reshape(o, -1)).max(axis=1).astype(_F32)
        scale = np.where(amax > 0, amax / _F32(qmax), _F32(1)).astype(_F32)
        sb = scale.reshape((o,) + (1,) * (w.ndim - 1))
        q = np.clip(np.rint((w / sb).astype(_F32)), -qmax, qmax).astype(np.int8)  # RNE
        return q, scale
    if cin % group_size:
        raise QuantizationValueError(f"group_size must divide every layer's input channels, got {group_size} for a "
                                     f"layer with {cin}")
    wg = w.reshape((o, cin // group_size, group_size) + w.shape[2:])
    amax = np.abs(wg.reshape(o, cin // group_size, -1)).max(axis=2).astype(_F32)
    scale = np.where(amax > 0, amax / _F32(qmax), _F32(1)).astype(_F32)
    sb = scale.reshape(scale.shape + (1,) * (wg.ndim - 2))
    q = np.clip(np.rint((wg / sb).astype(_F32)), -qmax, qmax).astype(np.int8).reshape(w.shape)  # RNE
    return q, scale


def quantize_weights(model, *, bits: int = 4, group_size=None, profile: str = "onnx") -> QuantizedModel:
    """Weight-only quantization (see :func:`_group_quantize` for the rule); int4 and narrower
    weights are stored packed two per byte.

    Args:
        model: A float :class:`refquant.nn.Module`.
        bits: 2 to 8.
        group_size: ``None`` (per output channel) or the number of input channels per scale. A
            layer with no more input channels than that (per group of a grouped convolution:
            one for a depthwise layer) gets one scale per output channel.
        profile: Recorded in the model (the weight-only nodes compute in float32).

    Raises:
        QuantizationValueError: ``bits`` outside 2-8, or a group size that does not divide a layer's
            input channels.
    """
    model = _model(model)
    bits = V.as_int_scalar(bits, "bits")
    if not 2 <= bits <= 8:
        raise QuantizationValueError(f"bits must be in [2, 8], got {bits}")
    if group_size is not None:
        group_size = V.as_int_scalar(group_size, "group_size", lo=1)
    prof = _profile(profile)
    prepared = passes.prepare_for_quantization(model, keep_names=True)
    steps = trace(prepared, fuse=("RELU", "RELU6"))
    nodes, tensors = [], {INPUT: TensorInfo(INPUT, "float32")}
    for s in steps:
        attrs = {"activation": s.activation} if s.activation else {}
        params = {}
        if s.op in ("linear", "conv2d"):
            w = s.layer.weight.value.astype(_F32)
            q, scale = _group_quantize(w, bits, group_size)
            params = {"weight": q, "weight_scale": scale}
            attrs["bits"] = 4 if bits <= 4 else 8  # storage width: int4 packed, else int8
            attrs["weight_bits"] = bits
            if scale.ndim == 2:
                attrs["group_size"] = group_size
            if s.layer.bias is not None:
                params["bias"] = s.layer.bias.value.astype(_F32)
            if s.op == "conv2d":
                c = s.layer
                attrs.update(stride=list(c.stride), padding=_padding(c), dilation=list(c.dilation), groups=c.groups)
        elif s.op in ("max_pool2d", "average_pool2d"):
            attrs.update(kernel=list(s.layer.kernel_size), stride=list(s.layer.stride))
        nodes.append(Node(s.name, s.op, tuple(s.inputs), s.output, attrs, params))
        tensors[s.output] = TensorInfo(s.output, "float32")
    out = steps[-1].output if steps else INPUT
    return QuantizedModel(nodes, tensors, [INPUT], [out], profile=prof.name, isa=prof.isa,
                          metadata={"flow": "weight_only", "bits": bits, "group_size": group_size})
