"""Fuzz of the whole public API: bad and edge arguments give a refquant error that names them.

Every public callable (the ``__all__`` of the namespaces in ``MODULES``, modules named there
included, plus layer calls and losses in ``_nn_pseudo``, and observer updates, ``QuantizedModel``
methods and QAT's three flows in ``_flow_pseudo``, a profile's 16x8 layer lookup in
``_profile_pseudo``, kernels of two modules sharing a name in ``_shadowed_pseudo``) has a *baseline*: one valid call, in ``_baselines()``. The flows' baselines
use a two-layer model on an ``(8, 1, 2, 2)`` batch, so that each call takes milliseconds. A test
replaces one argument of that call, or two, with a value from ``KINDS``
(wrong types, NaN/Inf/zero/negative scales, huge integers as Python ints and NumPy uint64, float
zero points, wrong dtypes, empty, 0-d and byte-swapped arrays, huge block sizes and axes) or a
variant of the baseline's own value (``DERIVED_KINDS``), and asserts:

* the call returns, or raises a :mod:`refquant.errors` exception; anything else fails
  (``MemoryError``, ``OverflowError``, ``ZeroDivisionError``, NumPy's "truth value of an array is
  ambiguous"...). The one builtin allowed is ``FileNotFoundError`` for a ``path`` naming no file;
* a refquant error names the replaced argument (a whole word; ``ALSO_NAMED`` lists the few
  arguments whose bad value is rightly reported under another one's name);
* the call ends within ``CALL_SECONDS`` and reserves less than ``MEMORY_LIMIT`` more bytes
  (``RLIMIT_AS`` where the platform has it);
* the same values in another layout (byte-swapped, non-contiguous) give the baseline's result.

The layer, pointwise, reduce and requantize ops of ``refquant.ops`` take arguments their callers
validated: only the names they check (profile, activation, layer family) get bad values; their
other arguments are in ``TRUSTED`` and get the same-value kinds only. ``refquant.ops.dynamic``
checks all of its own.

``test_fuzz`` draws the replacements with hypothesis (``EXAMPLES`` per callable, deterministic);
``test_sweep`` tries every (argument, kind) pair. ``MUST_RAISE`` lists invalid input that used to
return a result, ``MUST_COMPUTE`` edge input that used to be refused or broken. Callables in files
owned elsewhere that still fail are ``xfail(strict=True)`` in ``KNOWN_FAILURES``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import math
import os
import re
import shutil
import tempfile
import time
import warnings
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refquant
from refquant import errors

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

MODULES = [
    "refquant", "refquant.kernels", "refquant.nn", "refquant.data", "refquant.fixedpoint",
    "refquant.qparams", "refquant.dtypes", "refquant.rounding",
    "refquant.backends.onnx", "refquant.backends.onnxruntime", "refquant.backends.tflite",
    "refquant.backends.pytorch",
    # beyond the namespaces: the fixed-point math and the model zoo (a module named in an
    # ``__all__``, as refquant.kernels names its kernel modules, is enumerated too)
    "refquant.fixedpoint_math", "refquant.models",
    # the ops under a profile, the specs and profiles they read, the CPU detection
    "refquant.ops.layers", "refquant.ops.pointwise", "refquant.ops.reduce", "refquant.ops.requantize",
    "refquant.specs", "refquant.profiles", "refquant.cpu",
    "refquant.evaluate",
    # float model to integer model: observers, graph passes, the PTQ flows and their tools, the
    # integer model, dynamic range (QAT: its three flows only, in _flow_pseudo)
    "refquant.calibration", "refquant.passes", "refquant.ptq", "refquant.ptq.flows", "refquant.ptq.recipes",
    "refquant.ptq.debug", "refquant.qmodel", "refquant.ops.dynamic", "refquant.kernels.dynamic",
    # compression: advanced weight rounding, pruning
    "refquant.ptq.advanced", "refquant.prune", "refquant.distill", "refquant.finetune", "refquant.finetune.ste",
    "refquant.finetune.trainable",
    # the golden-reference toolkit
    "refquant.testing", "refquant.testing.golden_ops", "refquant.testing.golden_models", "refquant.testing.strategies",
    "refquant.testing.plugin", "refquant.testing.explain",
    # model files: .tflite import and export
    "refquant.interop.tflite", "refquant.interop.onnx",
]

CALL_SECONDS = 10.0        # per call; generous for a cold Numba cache
EXAMPLES = int(os.environ.get("REFQUANT_FUZZ_EXAMPLES", "20"))  # hypothesis examples per callable
MEMORY_LIMIT = 3 << 30     # extra address space a call may reserve

I8, U8, I16, I32, F32, F64 = np.int8, np.uint8, np.int16, np.int32, np.float32, np.float64


def i8(*shape, lo=-5):
    return (np.arange(int(np.prod(shape)), dtype=np.int64) % 11 + lo).astype(I8).reshape(shape)


def i16(*shape, step=4099):
    """int16 codes spread over the whole range (zero point 0, as TFLite's 16x8 mode has them)."""
    return ((np.arange(int(np.prod(shape)), dtype=np.int64) * step) % 65536 - 32768).astype(I16).reshape(shape)


def u8(*shape):
    return (np.arange(int(np.prod(shape)), dtype=np.int64) * 7 % 251).astype(U8).reshape(shape)


def f32(*shape, scale=0.25):
    n = int(np.prod(shape))
    return ((np.arange(n, dtype=F32) - n / 2) * F32(scale)).astype(F32).reshape(shape)


# ------------------------------------------------------------------------------------------
# Baselines: one valid call per public callable (a function returning the keyword arguments)
# ------------------------------------------------------------------------------------------

_SCRATCH = Path(tempfile.mkdtemp(prefix="refquant_fuzz_"))  # the files the baselines read and write
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def _qp():
    return refquant.make_qparams(0.1, 3, "int8")


def _tiny_model():
    from refquant import nn
    return nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(0)))


def _opt():
    from refquant import nn
    return nn.SGD(_tiny_model(), lr=0.1)


def _npz_path():
    path = _SCRATCH / "data.npz"
    if not path.exists():
        np.savez(path, x=f32(4, 3), y=np.array([0, 1, 2, 1]))
    return str(path)


def _model_path():
    from refquant import nn
    path = _SCRATCH / "model.npz"
    if not path.exists():
        nn.save(_tiny_model(), path)
    return str(path)


def _weights_path():
    from refquant import nn
    path = _SCRATCH / "weights.npz"
    if not path.exists():
        nn.save_weights(_tiny_model(), path)
    return str(path)


def _fp_add_params():
    from refquant.kernels.elementwise import fixed_point_add_params
    return fixed_point_add_params(0.1, 0.2, 0.15)


def _rescale_params():
    from refquant.kernels.elementwise import rescale_add_params
    return rescale_add_params(0.1, 0.2, 0.15)


def _softmax_params():
    from refquant.kernels.softmax import softmax_fixed_point_params
    return softmax_fixed_point_params(0.1)


def _logistic_table():
    from refquant.kernels.lut import logistic_lut
    return logistic_lut(0.1, 0)


def _add16_params():
    from refquant.kernels.elementwise import fixed_point_add_params
    return fixed_point_add_params(0.001, 0.002, 0.002, left_shift=15)


def _sigmoid16(op="logistic"):
    from refquant.kernels.sigmoid16 import sigmoid16_params
    return dict(zip(("input_multiplier", "input_left_shift"), sigmoid16_params(0.001, op=op)))


def _softmax16():
    from refquant.kernels.softmax16 import softmax16_params
    return dict(zip(("input_multiplier", "input_left_shift"), softmax16_params(0.001)))


def _requant_codes():
    from refquant.kernels.requant_codes import fixed_point_requantize_params
    return dict(zip(("multiplier", "shift"), fixed_point_requantize_params(0.1, 0.2)))


def _lut16():
    from refquant.kernels.lut16 import populate_lut16
    return populate_lut16(math.tanh, 3 / 32768, 0, 1 / 32768, 0)


def _add8_params():
    from refquant.kernels.elementwise import fixed_point_add_params
    return fixed_point_add_params(0.02, 0.03, 0.04)


def _ort_softmax_table():
    from refquant.kernels.qlinear_lut import softmax_exp_table
    return softmax_exp_table(0.05, 5, dtype="uint8")


def _softmax_table():
    from refquant.kernels.softmax import softmax_exp_table
    return softmax_exp_table(0.1)


TFL_CONV = lambda: dict(x=i8(1, 4, 4, 2), x_scale=0.1, x_zero_point=1, w=i8(3, 2, 2, 2), w_scale=0.05,  # noqa: E731
                        b=np.array([1, -2, 3], I32), y_scale=0.2, y_zero_point=-1)
ORT_CONV = lambda: dict(x=u8(1, 2, 4, 4), x_scale=0.1, x_zero_point=U8(3), w=i8(3, 2, 2, 2), w_scale=0.05,  # noqa: E731
                        w_zero_point=I8(0), y_scale=0.2, y_zero_point=U8(100), B=np.array([1, -2, 3], I32))
ORT_MM = lambda: dict(a=u8(2, 3), a_scale=0.1, a_zero_point=U8(3), b=i8(3, 4), b_scale=0.05,  # noqa: E731
                      b_zero_point=I8(0), y_scale=0.2, y_zero_point=U8(100))
ROUND_X = lambda: dict(x=np.array([-2.5, -0.5, 0.5, 1.5, 2.4], F32))  # noqa: E731
POOL_X = lambda: dict(x=i8(1, 4, 4, 2), filter_size=2)  # noqa: E731
ADD8 = lambda: dict(a=i8(2, 3), a_zero_point=I8(0), b=i8(2, 3, lo=-3), b_zero_point=I8(1),  # noqa: E731
                    y_zero_point=I8(-2))
FLOAT_ADD = lambda: dict(a=u8(2, 3), a_scale=0.1, a_zero_point=U8(3), b=u8(2, 3), b_scale=0.2,  # noqa: E731
                         b_zero_point=U8(5), y_scale=0.15, y_zero_point=U8(1))
TFL_ADD = lambda: dict(a=i8(2, 3), a_scale=0.1, a_zero_point=0, b=i8(2, 3, lo=-3), b_scale=0.2,  # noqa: E731
                       b_zero_point=1, y_scale=0.15, y_zero_point=-2)
PT_FQ = lambda: dict(x=f32(2, 3), scale=0.1, zero_point=3, quant_min=-128, quant_max=127)  # noqa: E731
PT_FQC = lambda: dict(x=f32(2, 3), scale=np.array([0.1, 0.2, 0.3], F32),  # noqa: E731
                      zero_point=np.array([0, 1, 2], I32), axis=1, quant_min=-128, quant_max=127)
FP_SCALAR = lambda: dict(x=np.array([1 << 20, -(1 << 20), 3], I32), q=1 << 30, shift=-2)  # noqa: E731
Q31 = lambda: dict(a=np.array([-(1 << 28), -(1 << 20), 0], I32))  # noqa: E731


def _case():
    from refquant.specs import Case
    return Case(refquant.QuantizeSpec(precision="float64"), formats=("int16",))


def _layer_spec():
    from refquant.specs import LayerSpec
    return LayerSpec("fixed_double", "f64_ab_div_c")


def _pointwise_spec():
    from refquant.specs import PointwiseSpec
    return PointwiseSpec()


def _op_add():
    return dict(a=i8(2, 3), a_scale=F32(0.1), a_zero_point=0, b=i8(2, 3, lo=-3), b_scale=F32(0.2), b_zero_point=1,
                y_scale=F32(0.15), y_zero_point=-2, profile="tflite_reference")


def _fn_forward(layer_factory, nin=1):
    """A named-argument wrapper that builds a layer and calls it on ``x`` (or ``a``, ``b``)."""
    if nin == 1:
        def call(x):
            return layer_factory()(x)
    else:
        def call(a, b):
            return layer_factory()(a, b)
    return call


def _fn_backward(layer_factory, x_shape):
    def call(grad_out):
        layer = layer_factory()
        layer(f32(*x_shape))
        return layer.backward(grad_out)
    return call


def _fn_loss(loss_factory, names):
    """``loss(first, second)`` and its gradient, under the argument names of the loss's ``forward``."""
    def call(**kw):
        loss = loss_factory()
        value = loss(*(kw[n] for n in names))
        return value, loss.backward()
    call.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return call


def _nn_pseudo():
    """Layer calls and losses, which ``__all__`` reaches only through classes."""
    from refquant import nn
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    table = {
        "nn.Linear()(x)": (_fn_forward(lambda: nn.Linear(4, 3, rng=rng())), lambda: dict(x=f32(2, 4))),
        "nn.Conv2d()(x)": (_fn_forward(lambda: nn.Conv2d(2, 3, 3, padding=1, rng=rng())),
                           lambda: dict(x=f32(2, 2, 5, 5))),
        "nn.BatchNorm1d()(x)": (_fn_forward(lambda: nn.BatchNorm1d(3)), lambda: dict(x=f32(4, 3))),
        "nn.BatchNorm2d()(x)": (_fn_forward(lambda: nn.BatchNorm2d(2)), lambda: dict(x=f32(2, 2, 3, 3))),
        "nn.ReLU()(x)": (_fn_forward(nn.ReLU), lambda: dict(x=f32(2, 3))),
        "nn.ReLU6()(x)": (_fn_forward(nn.ReLU6), lambda: dict(x=f32(2, 3))),
        "nn.Hardtanh()(x)": (_fn_forward(nn.Hardtanh), lambda: dict(x=f32(2, 3))),
        "nn.Sigmoid()(x)": (_fn_forward(nn.Sigmoid), lambda: dict(x=f32(2, 3))),
        "nn.Tanh()(x)": (_fn_forward(nn.Tanh), lambda: dict(x=f32(2, 3))),
        "nn.MaxPool2d()(x)": (_fn_forward(lambda: nn.MaxPool2d(2)), lambda: dict(x=f32(1, 2, 4, 4))),
        "nn.AvgPool2d()(x)": (_fn_forward(lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False)),
                              lambda: dict(x=f32(1, 2, 4, 4))),
        "nn.GlobalAvgPool2d()(x)": (_fn_forward(nn.GlobalAvgPool2d), lambda: dict(x=f32(1, 2, 4, 4))),
        "nn.Flatten()(x)": (_fn_forward(nn.Flatten), lambda: dict(x=f32(2, 2, 2))),
        "nn.Dropout()(x)": (_fn_forward(lambda: nn.Dropout(0.5, rng=rng())), lambda: dict(x=f32(2, 3))),
        "nn.Identity()(x)": (_fn_forward(nn.Identity), lambda: dict(x=f32(2, 3))),
        "nn.Softmax()(x)": (_fn_forward(lambda: nn.Softmax(1)), lambda: dict(x=f32(2, 3, 2))),
        "nn.Add()(a, b)": (_fn_forward(nn.Add, 2), lambda: dict(a=f32(2, 3), b=f32(2, 3))),
        "nn.Sequential()(x)": (_fn_forward(_tiny_model), lambda: dict(x=f32(2, 4))),
        "nn.Residual()(x)": (_fn_forward(lambda: nn.Residual(nn.Linear(4, 4, rng=rng()))), lambda: dict(x=f32(2, 4))),
        "nn.Linear().backward": (_fn_backward(lambda: nn.Linear(4, 3, rng=rng()), (2, 4)),
                                 lambda: dict(grad_out=f32(2, 3))),
        "nn.Conv2d().backward": (_fn_backward(lambda: nn.Conv2d(2, 3, 3, padding=1, rng=rng()), (2, 2, 5, 5)),
                                 lambda: dict(grad_out=f32(2, 3, 5, 5))),
        "nn.MaxPool2d().backward": (_fn_backward(lambda: nn.MaxPool2d(2), (1, 2, 4, 4)),
                                    lambda: dict(grad_out=f32(1, 2, 2, 2))),
        "nn.BatchNorm2d().backward": (_fn_backward(lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
                                      lambda: dict(grad_out=f32(2, 2, 3, 3))),
        "nn.Softmax().backward": (_fn_backward(lambda: nn.Softmax(), (2, 3)), lambda: dict(grad_out=f32(2, 3))),
        "nn.CrossEntropyLoss()(logits, labels)": (_fn_loss(nn.CrossEntropyLoss, ("logits", "labels")),
                                                  lambda: dict(logits=f32(3, 4), labels=np.array([0, 3, 1]))),
        "nn.MSELoss()(output, target)": (_fn_loss(nn.MSELoss, ("output", "target")),
                                         lambda: dict(output=f32(3, 4), target=f32(3, 4) + 1)),
        "nn.DistillationKLLoss()(student_logits, teacher_logits)": (
            _fn_loss(nn.DistillationKLLoss, ("student_logits", "teacher_logits")),
            lambda: dict(student_logits=f32(3, 4), teacher_logits=f32(3, 4) * 2)),
    }
    return table


# ------------------------------------------------------------------------------------------
# The float-to-integer flows: a tiny float model and data, the objects the flows pass on
# (a traced model, a Calibrated one, an integer model, a QAT model), and the method calls
# ``__all__`` reaches only through classes (observers, QuantizedModel)
# ------------------------------------------------------------------------------------------

FLOW_X = lambda: f32(8, 1, 2, 2)  # noqa: E731 - the tiny model's input batch
FLOW_Y = lambda: np.array([0, 1, 2, 0, 1, 2, 0, 1])  # noqa: E731 - its labels


def _flow_model():
    """Flatten + Linear(4, 3): the smallest model every flow quantizes."""
    from refquant import nn
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))


def _bn_model():
    from refquant import nn
    return nn.Sequential(nn.Linear(4, 3, rng=np.random.default_rng(0)), nn.Dropout(0.5), nn.BatchNorm1d(3))


def _cle_model():
    from refquant import nn
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(4, 3, rng=rng), nn.ReLU6(), nn.Linear(3, 2, rng=rng))


def _traced():
    """The prepared tiny model and its steps, as quantize_static hands them to ptq.calibrate."""
    from refquant import passes
    from refquant.ptq.trace import trace
    prepared = passes.prepare_for_quantization(_flow_model(), keep_names=True)
    return prepared, trace(prepared)


def _calibrated():
    from refquant.ptq.flows import calibrate_model
    return calibrate_model(_flow_model(), FLOW_X(), profile="tflite_reference")


def _qmodel(profile="tflite_reference"):
    """float x (2, 4) -> quantize -> linear (int8, per channel, RELU) -> dequantize, built node by node."""
    from refquant.qmodel import Node, QuantizedModel, TensorInfo
    tensors = [TensorInfo("x", "float32"), TensorInfo("xq", "int8", 0.01, -3), TensorInfo("yq", "int8", 0.02, -128),
               TensorInfo("y", "float32")]
    params = dict(weight=i8(3, 4), weight_scale=np.array([0.01, 0.02, 0.03], F32), weight_zero_point=np.zeros(3, I8),
                  bias=np.array([10, -20, 30], I32))
    nodes = [Node("q", "quantize", ("x",), "xq"), Node("fc", "linear", ("xq",), "yq", {"activation": "RELU"}, params),
             Node("dq", "dequantize", ("yq",), "y")]
    return QuantizedModel(nodes, tensors, ["x"], ["y"], profile=profile)


def _qmodel_path():
    path = _SCRATCH / "qmodel.npz"
    if not path.exists():
        _qmodel().save(path)
    return str(path)


def _tflite_bytes():
    """The tiny integer model exported once to ``.tflite`` (read back by import_quantized)."""
    from refquant.interop import tflite
    path = _SCRATCH / "qmodel.tflite"
    if not path.exists():
        tflite.export(_qmodel("tflite_reference"), str(path), input_shape=(4,))
    return path.read_bytes()


def _onnx_qmodel():
    """The flow model quantized for ONNX Runtime (what refquant.interop.onnx.export writes)."""
    from refquant import ptq
    return ptq.quantize_static(_flow_model(), FLOW_X(), profile="onnxruntime")


def _onnx_bytes():
    """The flow model exported as a QOperator ONNX model (read back by onnx.import_quantized)."""
    from refquant.interop import onnx
    path = _SCRATCH / "qmodel_in.onnx"
    if not path.exists():
        onnx.export(_onnx_qmodel(), str(path), format="qoperator", input_shape=(1, 2, 2))
    return path.read_bytes()


def _float_onnx_bytes():
    """A float Flatten -> Gemm -> Relu ONNX model built with onnx.helper (read by onnx.import_float)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "w")
    b = numpy_helper.from_array(np.zeros(3, np.float32), "b")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
             helper.make_node("Relu", ["g"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _adv_qmodel():
    from refquant import ptq
    return ptq.quantize_weights(_flow_model(), bits=4)


def _adv_grid():
    from refquant.ptq import advanced
    return advanced.symmetric_grid(f32(3, 4), bits=4)


def _adv_moments():
    from refquant.ptq import advanced
    return advanced.LayerMoments.from_columns(f32(4, 6) + 1.0, f32(4, 6))


def _match():
    from refquant.testing.explain import Match
    return Match("tflite_reference", "profile", "d", {}, 0, 6, 0.0, ())


def _ft_qmodel():
    from refquant import ptq
    return ptq.quantize_static(_flow_model(), FLOW_X(), profile="tflite_reference")


def _golden_path():
    p = _SCRATCH / "golden_in.npz"
    if not p.exists():
        from refquant.testing import write_golden
        write_golden(p, op="tflite.add", cases=2, seed=0)
    return str(p)


def _tflite_path():
    p = _SCRATCH / "qmodel_for_golden.tflite"
    if not p.exists():
        p.write_bytes(_tflite_bytes())
    return str(p)


def _qat_model(calibrated=False):
    from refquant import qat
    model = qat.prepare_qat(_flow_model(), profile="tflite_reference")
    return qat.calibrate(model, FLOW_X()) if calibrated else model


def _fn_method(factory, method, name):
    """``factory().<method>(<name>)``, under the argument's own name."""
    def call(**kw):
        return getattr(factory(), method)(kw[name])
    call.__signature__ = inspect.Signature([inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    return call


def _fn_observe(observer_factory):
    """One batch into a fresh observer, then its range."""
    def call(x):
        obs = observer_factory()
        obs.update(x)
        return obs.range()
    return call


def _flow_pseudo():
    """Observer updates, QuantizedModel methods, one consumed generator, and QAT's three flows
    (only those: the QAT classes are fuzzed by their owner's tests)."""
    from refquant import calibration as cal
    from refquant import qat
    from refquant.ptq.flows import iter_batches
    from refquant.qmodel import QuantizedModel
    observers = {
        "MinMaxObserver(axis=1)": lambda: cal.MinMaxObserver(axis=1, symmetric=True),
        "MovingAverageMinMaxObserver()": lambda: cal.MovingAverageMinMaxObserver(averaging_constant=0.5),
        "MovingAverageMinMaxObserver(axis=-1)": lambda: cal.MovingAverageMinMaxObserver(axis=-1, variant="onnxruntime"),
        "PercentileObserver()": lambda: cal.PercentileObserver(num_bins=64, percentile=99.0),
        "HistogramMSEObserver()": lambda: cal.HistogramMSEObserver(num_bins=64),
        "EntropyObserver()": lambda: cal.EntropyObserver(num_bins=64, num_quantized_bins=16),
        "TensorRTEntropyObserver()": lambda: cal.TensorRTEntropyObserver(num_bins=64, start_bin=16),
    }
    table = {f"calibration.{name}.update(x)": (_fn_observe(make), lambda: dict(x=f32(2, 3, 4)))
             for name, make in observers.items()}
    table.update({
        "qmodel.QuantizedModel().run(x)": (_fn_method(_qmodel, "run", "x"), lambda: dict(x=f32(2, 4))),
        "qmodel.QuantizedModel().trace(x)": (_fn_method(_qmodel, "trace", "x"), lambda: dict(x=f32(2, 4))),
        "qmodel.QuantizedModel().run_codes(q)": (_fn_method(_qmodel, "run_codes", "q"), lambda: dict(q=i8(2, 4))),
        "qmodel.QuantizedModel().save(path)": (_fn_method(_qmodel, "save", "path"),
                                               lambda: dict(path=str(_SCRATCH / "saved_qmodel.npz"))),
        "qmodel.QuantizedModel.load(path)": (QuantizedModel.load, lambda: dict(path=_qmodel_path())),
        "list(ptq.iter_batches())": (lambda data, batch_size=256: list(iter_batches(data, batch_size)),
                                     lambda: dict(data=FLOW_X(), batch_size=3)),
        "qat.prepare_qat": (qat.prepare_qat, lambda: dict(model=_flow_model(), profile="tflite_reference",
                                                          per_channel=True, freeze_bn_after=1, learn_scales=False,
                                                          weight_bits=8, isa="auto")),
        "qat.calibrate": (qat.calibrate, lambda: dict(model=_qat_model(), data=FLOW_X(), batch_size=4)),
        "qat.convert": (qat.convert, lambda: dict(model=_qat_model(calibrated=True))),
    })
    return table


def _profile_pseudo():
    """The 16x8 layer lookup of a profile, which ``__all__`` reaches only through the class."""
    def layer_16x8(family, bias):
        return refquant.get_profile("tflite_reference").layer_16x8(family, bias)
    def qlinear_concat(y_scale, y_zero_point, x0, x0_scale, x0_zero_point, x1, x1_scale, x1_zero_point, axis):
        """ONNX Runtime's QLinearConcat with two inputs (the face takes them variadically, in ONNX order)."""
        from refquant.backends import onnxruntime
        return onnxruntime.qlinear_concat(y_scale, y_zero_point, x0, x0_scale, x0_zero_point, x1, x1_scale,
                                          x1_zero_point, axis=axis)
    return {"profiles.Profile().layer_16x8(family, bias)": (layer_16x8, lambda: dict(family="grouped_conv",
                                                                                     bias="int64")),
            "onnxruntime.qlinear_concat": (qlinear_concat, lambda: dict(
                y_scale=0.2, y_zero_point=U8(4), x0=u8(2, 3), x0_scale=0.1, x0_zero_point=U8(3), x1=u8(2, 2),
                x1_scale=0.3, x1_zero_point=U8(5), axis=1))}


def _shadowed_pseudo():
    """Kernels of two modules under one name (the first found would shadow the other): each under its module."""
    from refquant.kernels import qlinear_lut, softmax
    return {"softmax_exp_table": (softmax.softmax_exp_table, lambda: dict(x_scale=0.1, beta=1.0)),
            "qlinear_lut.softmax_exp_table": (qlinear_lut.softmax_exp_table,
                                              lambda: dict(x_scale=0.05, reduce_len=5, dtype="int8"))}


def _baselines():
    """name -> function returning the keyword arguments of one valid call."""
    from refquant import evaluate, nn, ptq
    from refquant.ptq import debug  # noqa: F401 - ptq.debug below
    tflite_fc = lambda: dict(x=i8(2, 4), x_scale=0.1, x_zero_point=1, w=i8(3, 4), w_scale=0.05,  # noqa: E731
                             b=np.array([1, -2, 3], I32), y_scale=0.2, y_zero_point=-1)
    b = {
        # ---- refquant (top level) / dtypes / qparams
        "IntFormat": lambda: dict(name="int8", bits=8, signed=True, qmin=-128, qmax=127, dtype=np.dtype(I8)),
        "get_format": lambda: dict(fmt="int8"),
        "quant_range": lambda: dict(fmt="int8", narrow=True),
        "pack_int4": lambda: dict(values=np.array([1, -2, 7], I8)),
        "unpack_int4": lambda: dict(packed=np.array([0x21, 0x07], U8), count=3, signed=True),
        "pack_int2": lambda: dict(values=np.array([1, -2, 0, 1, -1], I8)),
        "unpack_int2": lambda: dict(packed=np.array([0x1B, 0x02], U8), count=5, signed=True),
        "wrap_int32": lambda: dict(v=np.array([2 ** 31, -1], np.int64)),
        "QParams": lambda: dict(scale=np.array(0.1, F32), zero_point=np.array(3, np.int64),
                                fmt=refquant.get_format("int8"), axis=None, block_size=None, qmin=-128, qmax=127),
        "make_qparams": lambda: dict(scale=0.1, zero_point=3, fmt="int8", qmin=-100, qmax=100),
        "choose_qparams": lambda: dict(min_val=-1.0, max_val=3.0, fmt="uint8"),
        "QuantizeSpec": lambda: dict(division="divide", precision="float32"),
        "DequantizeSpec": lambda: dict(subtract="int", precision="float32"),
        "quantize": lambda: dict(x=f32(2, 3), qparams=_qp(), profile="tflite_reference"),
        "dequantize": lambda: dict(q=i8(2, 3), qparams=_qp(), profile="tflite_reference"),
        "fake_quantize": lambda: dict(x=f32(2, 3), qparams=_qp(), profile="pytorch_fbgemm"),
        "fake_quantize_with_mask": lambda: dict(x=f32(2, 3), qparams=_qp(), profile="pytorch_fbgemm"),
        "fake_quantize_backward": lambda: dict(grad_output=f32(2, 3), mask=np.ones((2, 3), bool), multiply=True),
        "RoundingMode": lambda: dict(value="half_up"),
        "round_by_mode": lambda: dict(x=np.array([0.5, 1.5, -2.5], F32), mode="half_to_even"),
        "Profile": lambda: dict(name="mine", description="fuzz",
                                layers_16x8=refquant.get_profile("tflite_reference").layers_16x8),
        "get_profile": lambda: dict(name="onnxruntime", isa="exact"),
        "list_profiles": lambda: dict(),
        # ---- specs, cpu
        "Case": lambda: dict(spec=refquant.QuantizeSpec(), formats=("int8",), granularity="per_tensor", nonempty=True,
                             max_rank=4, input_dtypes=("float32",)),
        "Cases": lambda: dict(cases=(_case(),), default=refquant.QuantizeSpec()),
        "SimdSplit": lambda: dict(block=8, body=refquant.QuantizeSpec(),
                                  tail=refquant.QuantizeSpec(precision="float64")),
        "LayerSpec": lambda: dict(requant="fixed_double", multiplier="f64_ab_div_c", tail_block=8,
                                  tail_requant="fixed_double", max_requant_scale=256.0),
        "ConvDispatch": lambda: dict(spec=_layer_spec(), isas=("avx512_vnni",), max_groups=100,
                                     refused=("one_channel_groups",)),
        "PointwiseSpec": lambda: dict(add=(("int8", "rescale"),), add_max_rank=6, softmax="float_table",
                                      fallback=_pointwise_spec()),
        "select_spec": lambda: dict(entry=refquant.get_profile("tflite_xnnpack").quantize, qparams=_qp(), shape=(2, 3),
                                    input_dtype=np.dtype(F32)),
        "cpu_features": lambda: dict(), "detect_isa": lambda: dict(), "detect_isa_class": lambda: dict(),
        "resolve_isa": lambda: dict(isa="avx2"),
        "resolve_isa_class": lambda: dict(isa="vnni"),
        # ---- ops (arguments in the ops' internal convention: float32 scales, int zero points)
        "ops.layers.output_stage": lambda: dict(acc=np.array([[100, -200], [3000, 7]], I32), spec=_layer_spec(),
                                                x_scale=F32(0.1), w_scale=np.array([0.05, 0.02], F32),
                                                y_scale=F32(0.2), y_zero_point=-1, activation="RELU"),
        "ops.layers.linear": lambda: dict(x=i8(2, 4), x_scale=F32(0.1), x_zero_point=1, w=i8(3, 4), w_scale=F32(0.05),
                                          w_zero_point=0, bias=np.array([1, -2, 3], I32), y_scale=F32(0.2),
                                          y_zero_point=-1, profile="tflite_reference", activation="RELU6"),
        "ops.layers.conv2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=F32(0.1), x_zero_point=1, w=i8(3, 2, 2, 2),
                                          w_scale=np.array([0.05, 0.02, 0.04], F32), w_zero_point=0,
                                          bias=np.array([1, -2, 3], I32), y_scale=F32(0.2), y_zero_point=-1,
                                          profile="tflite_reference", strides=(1, 1), dilations=(1, 1), pads="VALID",
                                          layout="NHWC", w_layout="OHWI", family="conv", activation="RELU"),
        "ops.layers.conv_family": lambda: dict(profile="pytorch_fbgemm", x_shape=(1, 16, 8, 8), w_shape=(16, 1, 3, 3),
                                               stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=16,
                                               x_zero_point=3, w_zero_point=np.zeros((), np.int64)),
        "ops.layers.requantize_tensor": lambda: dict(q=i8(2, 3), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.2),
                                                     y_zero_point=-1, profile="tflite_reference", out_dtype=I8),
        "ops.pointwise.add": lambda: dict(_op_add(), activation="RELU"),
        "ops.pointwise.mul": lambda: dict(_op_add(), activation="RELU"),
        "ops.pointwise.average_pool2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=F32(0.1), x_zero_point=1,
                                                     filter_size=(2, 2), profile="tflite_reference", stride=(2, 2),
                                                     padding="VALID", activation="RELU"),
        "ops.pointwise.max_pool2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=F32(0.1), x_zero_point=1,
                                                 filter_size=(2, 2), profile="tflite_xnnpack", stride=(1, 1),
                                                 padding="SAME", activation="RELU"),
        "ops.pointwise.global_average_pool": lambda: dict(x=u8(1, 2, 3, 3), x_scale=F32(0.1), x_zero_point=3,
                                                          y_scale=F32(0.05), y_zero_point=2, profile="onnxruntime",
                                                          channels_last=False),
        "ops.pointwise.softmax": lambda: dict(x=i8(2, 5), x_scale=F32(0.1), beta=F32(1.0), profile="tflite_reference"),
        "ops.pointwise.logistic": lambda: dict(x=i8(2, 5), x_scale=F32(0.1), x_zero_point=1,
                                               profile="tflite_reference"),
        "ops.pointwise.tanh": lambda: dict(x=i8(2, 5), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(1 / 128),
                                           y_zero_point=0, profile="tflite_reference"),
        "ops.pointwise.mean": lambda: dict(x=i8(1, 3, 3, 2), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.05),
                                           y_zero_point=-2, axis=(1, 2), profile="tflite_reference", keep_dims=True),
        "ops.pointwise.requantize": lambda: dict(x=i8(2, 3), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.2),
                                                 y_zero_point=-2, profile="tflite_optimized", out_dtype=I16),
        # the ops on int16 codes (TFLite's 16x8 mode: zero points 0, int8 weights, int64 bias)
        "ops.layers.linear[16x8]": lambda: dict(x=i16(2, 4), x_scale=F32(0.001), x_zero_point=0, w=i8(3, 4),
                                                w_scale=np.array([0.05, 0.02, 0.04], F32), w_zero_point=0,
                                                bias=np.array([1, -2, 3], np.int64), y_scale=F32(0.002),
                                                y_zero_point=0, profile="tflite_optimized", activation="RELU",
                                                out_dtype=I16),
        "ops.layers.conv2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=F32(0.001), x_zero_point=0,
                                                w=i8(3, 2, 2, 2), w_scale=np.array([0.05, 0.02, 0.04], F32),
                                                w_zero_point=0, bias=np.array([1, -2, 3], np.int64),
                                                y_scale=F32(0.002), y_zero_point=0, profile="tflite_reference",
                                                strides=(1, 1), dilations=(1, 1), pads="VALID", layout="NHWC",
                                                w_layout="OHWI", family="conv", activation="RELU", out_dtype=I16),
        "ops.pointwise.add[16x8]": lambda: dict(a=i16(2, 20), a_scale=F32(0.001), a_zero_point=0,
                                                b=i16(2, 20, step=977), b_scale=F32(0.002), b_zero_point=0,
                                                y_scale=F32(0.002), y_zero_point=0, profile="tflite_optimized",
                                                activation="RELU"),
        "ops.pointwise.mul[16x8]": lambda: dict(a=i16(2, 3), a_scale=F32(0.001), a_zero_point=0, b=i16(3, step=977),
                                                b_scale=F32(0.002), b_zero_point=0, y_scale=F32(0.05), y_zero_point=0,
                                                profile="tflite_reference", activation="RELU6"),
        "ops.pointwise.mean[16x8]": lambda: dict(x=i16(1, 3, 3, 2), x_scale=F32(0.001), x_zero_point=0,
                                                 y_scale=F32(0.0005), y_zero_point=0, axis=(1, 2),
                                                 profile="tflite_optimized", keep_dims=True),
        "ops.pointwise.requantize[16x8]": lambda: dict(x=i16(2, 3), x_scale=F32(0.001), x_zero_point=0,
                                                       y_scale=F32(0.2), y_zero_point=-2, profile="tflite_reference",
                                                       out_dtype=I8),
        "ops.pointwise.average_pool2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=F32(0.001), x_zero_point=0,
                                                           filter_size=(2, 2), profile="tflite_optimized",
                                                           stride=(2, 2), padding="VALID", activation="RELU"),
        "ops.pointwise.max_pool2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=F32(0.001), x_zero_point=0,
                                                       filter_size=(2, 2), profile="tflite_xnnpack", stride=(1, 1),
                                                       padding="SAME", activation="RELU"),
        "ops.pointwise.softmax[16x8]": lambda: dict(x=i16(2, 5), x_scale=F32(0.001), beta=F32(1.0),
                                                    profile="tflite_optimized"),
        "ops.pointwise.logistic[16x8]": lambda: dict(x=i16(2, 5), x_scale=F32(0.001), x_zero_point=0,
                                                     y_scale=F32(2 ** -15), y_zero_point=0, profile="tflite_reference"),
        "ops.pointwise.tanh[16x8]": lambda: dict(x=i16(2, 5), x_scale=F32(1 / 4096), x_zero_point=0,
                                                 y_scale=F32(2 ** -15), y_zero_point=0, profile="tflite_optimized"),
        # ---- rounding
        "round_half_to_even": ROUND_X, "round_half_away_from_zero": ROUND_X, "round_half_up": ROUND_X,
        "round_half_down": ROUND_X, "round_half_toward_zero": ROUND_X, "round_floor": ROUND_X,
        "round_ceil": ROUND_X, "round_toward_zero": ROUND_X,
        "round_stochastic": lambda: dict(x=np.array([0.5, 1.25, -2.5], F32), seed=3),
        # ---- the faces' parameter formulas
        "tflite.activation_qparams": lambda: dict(min_val=-1.0, max_val=3.0, fmt="int8"),
        "tflite.symmetric_weight_quantize": lambda: dict(w=f32(3, 4), axis=0),
        "tflite.bias_quantize": lambda: dict(bias=np.array([0.5, -1.0, 2.0], F32), input_scale=0.1,
                                             weight_scale=np.array([0.05, 0.1, 0.2], F32)),
        "onnxruntime.tool_qparams": lambda: dict(rmin=-1.0, rmax=3.0, fmt="uint8", symmetric=False),
        "onnxruntime.reduced_range": lambda: dict(fmt="int8"),
        "onnx.dynamic_qparams": lambda: dict(x=f32(2, 3), variant="spec"),
        "onnxruntime.dynamic_qparams": lambda: dict(x=f32(2, 3), variant="onnxruntime"),
        # ---- fixedpoint (offline and runtime)
        "integer_frexp": lambda: dict(value=0.3),
        "quantize_multiplier": lambda: dict(real_multiplier=0.3),
        "quantize_multiplier_array": lambda: dict(reals=np.array([0.3, 1.5, 2e-3])),
        "quantize_multiplier_smaller_than_one_exp": lambda: dict(real_multiplier=0.3),
        "quantize_multiplier_greater_than_one": lambda: dict(real_multiplier=1.5),
        "preprocess_softmax_scaling": lambda: dict(beta=1.0, input_scale=0.1, input_integer_bits=5),
        "calculate_input_radius": lambda: dict(input_integer_bits=5, input_left_shift=20),
        "saturating_rounding_doubling_high_mul": lambda: dict(a=np.array([1 << 30, -5, 7], I32), b=1 << 29),
        "saturating_rounding_doubling_high_mul_int16": lambda: dict(a=np.array([1 << 14, -5, 7], I16), b=1 << 13),
        "rounding_divide_by_pot": lambda: dict(x=np.array([5, -5, 1 << 20], I32), exponent=2),
        "multiply_by_quantized_multiplier": lambda: dict(x=np.array([1 << 20, -(1 << 20), 3], I32),
                                                         quantized_multiplier=1 << 30, shift=-2, variant="double"),
        "mbqm_double_scalar": lambda: dict(x=1 << 20, q=1 << 30, shift=-2),
        "mbqm_single_scalar": lambda: dict(x=1 << 20, q=1 << 30, shift=-2),
        "mbqm_double_up_scalar": lambda: dict(x=1 << 20, q=1 << 30, shift=-2),
        "mbqm_int64_reduced16_scalar": lambda: dict(x=1 << 20, q=1 << 30, shift=-2),
        "mbqm_double_up_wrap_scalar": lambda: dict(x=1 << 20, q=1 << 30, shift=-2),
        # ---- fixedpoint_math
        "rounding_half_sum": lambda: dict(a=np.array([5, -7, 1 << 30], I32), b=np.array([3, 2, 1 << 30], I32)),
        "saturating_rounding_multiply_by_pot": lambda: dict(x=np.array([5, -7, 1 << 28], I32), exponent=2),
        "rescale": lambda: dict(x=np.array([5, -7, 1 << 20], I32), src_integer_bits=5, dst_integer_bits=3),
        "exp_on_interval_between_negative_one_quarter_and_0_excl": Q31,
        "exp_on_negative_values": lambda: dict(a=np.array([-(1 << 28), -(1 << 20), 0], I32), integer_bits=5),
        "one_over_one_plus_x_for_x_in_0_1": lambda: dict(a=np.array([0, 1 << 20, 1 << 30], I32)),
        "one_minus_x_over_one_plus_x_for_x_in_0_1": lambda: dict(a=np.array([0, 1 << 20, 1 << 30], I32)),
        "logistic": lambda: dict(a=np.array([-(1 << 28), 0, 1 << 27], I32), integer_bits=4),
        "tanh": lambda: dict(a=np.array([-(1 << 28), 0, 1 << 27], I32), integer_bits=4),
        "get_reciprocal": lambda: dict(x=np.array([1 << 19, 3 << 19], I32), x_integer_digits=12),
        "get_inv_sqrt_quantized_multiplier_exp": lambda: dict(input_value=1 << 20, reverse_shift=-1),
        # ---- kernels
        "activation_range": lambda: dict(activation="RELU6", output_scale=0.05, output_zero_point=-10,
                                         qmin=-128, qmax=127),
        "activation_range_rne": lambda: dict(activation="RELU6", output_scale=0.05, output_zero_point=-10,
                                             qmin=-128, qmax=127),
        "activation_bounds": lambda: dict(activation="RELU", output_scale=0.05, output_zero_point=-10,
                                          qmin=-128, qmax=127),
        "quantize_bound_rne": lambda: dict(value=6.0, output_scale=0.05, output_zero_point=-10, qmin=-128, qmax=127),
        "logistic_lut_double_rne": lambda: dict(x_scale=0.1, x_zero_point=0, dtype="int8"),
        "RequantParams": lambda: dict(mode="float32_rne", multiplier=np.array(0.5, F32), shift=None,
                                      real=np.array(0.5)),
        "real_multiplier": lambda: dict(input_scale=0.1, weight_scale=np.array([0.05, 0.02], F32),
                                        output_scale=0.2, derivation="f32_ab_div_c"),
        "requant_params": lambda: dict(input_scale=0.1, weight_scale=np.array([0.05, 0.02], F32),
                                       output_scale=0.2, mode="fixed_double",
                                       derivation="f64_ab_div_c"),
        "add_bias": lambda: dict(acc=np.array([[1, 2], [3, 4]], I32), bias=np.array([5, -6], I32), axis=-1),
        "add_bias_wrapping": lambda: dict(acc=np.array([[1, 2], [3, 4]], np.int64), bias=np.array([5, -6], np.int64),
                                          bits=64, axis=-1),
        "float_bias_accumulator": lambda: dict(acc=np.array([[1, 2], [3, 4]], I32), bias=np.array([0.5, -1.0], F32),
                                               act_times_w_scale=np.array([0.25, 0.5], F32), axis=-1),
        "quantize_bias_runtime": lambda: dict(bias=np.array([0.5, -1.0], F32), input_scale=0.1, weight_scale=0.05),
        "add_zero_point_sat16": lambda: dict(r=np.array([100, -300, 5], I32), output_zero_point=3, dtype="int8",
                                             qmin=-100, qmax=100),
        "apply_lut": lambda: dict(x=i8(2, 3), table=_logistic_table()),
        "apply_lut_reference": lambda: dict(x=i8(2, 3), table=_logistic_table()),
        "average_pool2d": POOL_X, "average_pool2d_reference": POOL_X,
        "max_pool2d": lambda: dict(x=i8(1, 4, 4, 2), filter_size=2, act_min=-3, act_max=100),
        "max_pool2d_reference": lambda: dict(x=i8(1, 4, 4, 2), filter_size=2, act_min=-3, act_max=100),
        "pool_geometry": lambda: dict(input_hw=(5, 5), filter_size=3, stride=2, padding="SAME"),
        "global_average_pool": lambda: dict(x=u8(1, 2, 3, 3), x_scale=0.1, x_zero_point=3, y_scale=0.05,
                                            y_zero_point=2),
        "global_average_pool_reference": lambda: dict(x=u8(1, 2, 3, 3), x_scale=0.1, x_zero_point=3,
                                                      y_scale=0.05, y_zero_point=2),
        "global_average_pool_params": lambda: dict(x_scale=0.1, y_scale=0.05, image_size=9),
        "conv2d": lambda: dict(x=u8(1, 2, 5, 5), w=i8(3, 2, 3, 3), x_zero_point=3, w_zero_point=0, strides=1,
                               pads=1),
        "conv2d_reference": lambda: dict(x=u8(1, 2, 5, 5), w=i8(3, 2, 3, 3), x_zero_point=3, w_zero_point=0,
                                         strides=1, pads=1),
        "im2col_reference": lambda: dict(x_img=u8(2, 4, 4), kernel=(2, 2), strides=(1, 1), dilations=(1, 1),
                                         pads=(0, 0, 0, 0), pad_value=3),
        "gemm": lambda: dict(a=u8(3, 4), b=i8(4, 2), a_zero_point=3, b_zero_point=np.array([0, 1], I8)),
        "gemm_reference": lambda: dict(a=u8(3, 4), b=i8(4, 2), a_zero_point=3, b_zero_point=np.array([0, 1], I8)),
        "matmul": lambda: dict(a=u8(2, 3, 4), b=i8(4, 2), a_zero_point=3, b_zero_point=1),
        "matmul_reference": lambda: dict(a=u8(2, 3, 4), b=i8(4, 2), a_zero_point=3, b_zero_point=1),
        "pairwise_sat16": lambda: dict(a=u8(3, 4), b=i8(4, 2)),
        "pairwise_sat16_reference": lambda: dict(a=u8(3, 4), b=i8(4, 2)),
        "requantize": lambda: dict(acc=np.array([[100, -200], [3000, 7]], I32), multiplier=1 << 30,
                                   output_zero_point=-3, qmin=-128, qmax=127, mode="fixed_double", shift=-2),
        "requantize_reference": lambda: dict(acc=np.array([[100, -200], [3000, 7]], I32), multiplier=1 << 30,
                                             output_zero_point=-3, qmin=-128, qmax=127, mode="fixed_double",
                                             shift=-2),
        "requantize[float32_rne]": lambda: dict(acc=np.array([[1.5, -2.5], [np.nan, 7e9]], F32), multiplier=0.5,
                                                output_zero_point=3, qmin=0, qmax=255, mode="float32_rne"),
        "fixed_point_add": lambda: dict(ADD8(), params=_fp_add_params()),
        "fixed_point_add_reference": lambda: dict(ADD8(), params=_fp_add_params()),
        "FixedPointAddParams": lambda: dict(left_shift=20, a_multiplier=1 << 30, a_shift=-1, b_multiplier=1 << 30,
                                            b_shift=0, output_multiplier=1 << 30, output_shift=-2),
        "fixed_point_add_params": lambda: dict(a_scale=0.1, b_scale=0.2, y_scale=0.15),
        "fixed_point_mul_params": lambda: dict(a_scale=0.1, b_scale=0.2, y_scale=0.15),
        "fixed_point_mul": lambda: dict(ADD8(), multiplier=1 << 30, shift=-3),
        "fixed_point_mul_reference": lambda: dict(ADD8(), multiplier=1 << 30, shift=-3),
        "RescaleAddParams": lambda: dict(a_multiplier=1 << 18, b_multiplier=1 << 19, shift=20),
        "rescale_add_params": lambda: dict(a_scale=0.1, b_scale=0.2, y_scale=0.15),
        "rescale_add": lambda: dict(ADD8(), params=_rescale_params()),
        "rescale_add_reference": lambda: dict(ADD8(), params=_rescale_params()),
        "clamp": lambda: dict(x=i8(2, 3), lo=-2, hi=3),
        "clamp_reference": lambda: dict(x=i8(2, 3), lo=-2, hi=3),
        "float_add": FLOAT_ADD, "float_add_reference": FLOAT_ADD, "float_mul": FLOAT_ADD,
        "float_mul_reference": FLOAT_ADD,
        "float_add_mode": lambda: dict(a_shape=(2, 3), b_shape=(3,)),
        "expf": lambda: dict(x=f32(5)),
        "tanhf": lambda: dict(x=f32(5)),
        "lut_inputs": lambda: dict(x_scale=0.1, x_zero_point=3, dtype="int8"),
        "populate_lut": lambda: dict(transformed=np.linspace(-1, 1, 256).astype(F32), y_scale=1 / 128,
                                     y_zero_point=0, dtype="int8"),
        "logistic_lut": lambda: dict(x_scale=0.1, x_zero_point=3, y_scale=1 / 256, y_zero_point=-128, dtype="int8"),
        "tanh_lut": lambda: dict(x_scale=0.1, x_zero_point=3, dtype="int8"),
        "rational_logistic": lambda: dict(x=f32(5)),
        "rational_logistic_lut": lambda: dict(x_scale=0.1, x_zero_point=3, y_scale=1 / 256, y_zero_point=-128),
        "softmax_lut": lambda: dict(x=i8(2, 5), table=_softmax_table(), y_scale=1 / 256, y_zero_point=-128),
        "softmax_lut_reference": lambda: dict(x=i8(2, 5), table=_softmax_table(), y_scale=1 / 256,
                                              y_zero_point=-128),
        "SoftmaxFixedPointParams": lambda: dict(input_multiplier=1 << 30, input_left_shift=20, diff_min=-100),
        "softmax_fixed_point_params": lambda: dict(x_scale=0.1, beta=1.0),
        "softmax_fixed_point": lambda: dict(x=i8(2, 5), params=_softmax_params()),
        "softmax_fixed_point_reference": lambda: dict(x=i8(2, 5), params=_softmax_params()),
        # ---- kernels of TFLite's 16x8 mode (int16 activations) and the 8-bit kernels added with it
        "gemm_int64": lambda: dict(a=i16(2, 3), b=i8(3, 2)),
        "gemm_int64_reference": lambda: dict(a=i16(2, 3), b=i8(3, 2)),
        "conv2d_int64": lambda: dict(x=i16(1, 4, 4, 2), w=i8(3, 2, 2, 2), strides=1, dilations=1, pads="SAME_UPPER",
                                     groups=1, layout="NHWC", w_layout="OHWI"),
        "conv2d_int64_reference": lambda: dict(x=i16(1, 4, 4, 2), w=i8(3, 2, 2, 2), strides=1, dilations=1,
                                               pads="SAME_UPPER", groups=1, layout="NHWC", w_layout="OHWI"),
        "mean_axes": lambda: dict(axis=(1, -2, 1), ndim=4),
        "mean_fixed_point": lambda: dict(x=i8(1, 3, 3, 2), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.05),
                                         y_zero_point=-2, axis=(1, 2)),
        "mean_fixed_point_4d": lambda: dict(x=i8(1, 3, 3, 2), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.05),
                                            y_zero_point=-2),
        "mean_float32": lambda: dict(x=i8(1, 3, 3, 2), x_scale=F32(0.1), x_zero_point=1, y_scale=F32(0.05),
                                     y_zero_point=-2, axis=(1, 2)),
        "fixed_point_requantize_params": lambda: dict(x_scale=0.1, y_scale=0.2),
        "fixed_point_requantize": lambda: dict(x=i8(2, 20), x_zero_point=1, y_zero_point=-2, out_dtype=I16,
                                               simd_block=16, **_requant_codes()),
        "shift8_requantize_params": lambda: dict(x_scale=0.1, y_scale=0.2),
        "shift8_requantize": lambda: dict(x=i8(2, 3), x_zero_point=1, multiplier=128, y_zero_point=-2, out_dtype=I8),
        "fixed_point_mul_blocks": lambda: dict(ADD8(), multiplier=1145324672, shift=-2, block=4, act_min=-100,
                                               act_max=100),
        "populate_lut16": lambda: dict(fn=math.tanh, input_scale=3 / 32768, input_zero_point=0,
                                       output_scale=1 / 32768, output_zero_point=0),
        "lut16_lookup": lambda: dict(x=i16(2, 5), lut=_lut16()),
        "lut16_lookup_reference": lambda: dict(x=i16(2, 5), lut=_lut16()),
        "softmax_exp_lut16": lambda: dict(),
        "softmax_reciprocal_lut16": lambda: dict(),
        "softmax16_params": lambda: dict(x_scale=0.001, beta=1.0),
        "softmax16": lambda: dict(x=i16(2, 5), **_softmax16()),
        "softmax16_reference": lambda: dict(x=i16(2, 5), **_softmax16()),
        "checked_log2": lambda: dict(x=1 / 4096),
        "sigmoid16_params": lambda: dict(x_scale=0.001, op="tanh"),
        "logistic16": lambda: dict(x=i16(2, 5), **_sigmoid16()),
        "logistic16_reference": lambda: dict(x=i16(2, 5), **_sigmoid16()),
        "tanh16": lambda: dict(x=i16(2, 5), **_sigmoid16("tanh")),
        "tanh16_reference": lambda: dict(x=i16(2, 5), **_sigmoid16("tanh")),
        "logistic_q3": lambda: dict(x=i16(2, 5), lanes=True),
        "logistic_q3_reference": lambda: dict(x=i16(2, 5), lanes=True),
        "tanh_q3": lambda: dict(x=i16(2, 5), lanes=True, double_input=True),
        "tanh_q3_reference": lambda: dict(x=i16(2, 5), lanes=True, double_input=True),
        "fixed_point_add16_blocks": lambda: dict(a=i16(2, 20), b=i16(2, 20, step=977), params=_add16_params(),
                                                 act_min=-30000, act_max=30000),
        "tanh_lut_rne": lambda: dict(x_scale=0.1, x_zero_point=3, y_scale=1 / 128, y_zero_point=0, dtype="int8",
                                     math="correctly_rounded"),
        # ---- kernels of ONNX Runtime's contrib ops (pools, tables) and TFLite's optimized int8 ADD
        "ort_pool_geometry": lambda: dict(spatial=(5, 5), kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 0, 1),
                                          dilations=(1, 1), ceil_mode=1, auto_pad="NOTSET"),
        "average_pool_float": lambda: dict(x=u8(1, 2, 5, 5), x_scale=0.1, x_zero_point=3, y_scale=0.05,
                                           y_zero_point=2, kernel=(3, 3), strides=(2, 2), head_pads=(1, 1),
                                           out_hw=(3, 3), count_include_pad=False),
        "average_pool_float_reference": lambda: dict(x=u8(1, 2, 5, 5), x_scale=0.1, x_zero_point=3, y_scale=0.05,
                                                     y_zero_point=2, kernel=(3, 3), strides=(2, 2), head_pads=(1, 1),
                                                     out_hw=(3, 3), count_include_pad=False),
        "max_pool": lambda: dict(x=i8(1, 2, 5, 5), kernel=(3, 3), strides=(2, 2), head_pads=(1, 1), out_hw=(3, 3),
                                 dilations=(1, 1)),
        "max_pool_reference": lambda: dict(x=i8(1, 2, 5, 5), kernel=(3, 3), strides=(2, 2), head_pads=(1, 1),
                                           out_hw=(3, 3), dilations=(1, 1)),
        "mlas_quantize_table": lambda: dict(t=np.linspace(-1, 1, 256).astype(F32), y_scale=1 / 128,
                                            y_zero_point=U8(128), dtype="uint8"),
        "requantize_lut": lambda: dict(x_scale=0.1, x_zero_point=3, y_scale=0.05, y_zero_point=2, dtype="uint8"),
        "leaky_relu_lut": lambda: dict(x_scale=0.05, x_zero_point=-3, y_scale=0.04, y_zero_point=10, alpha=0.1,
                                       dtype="int8"),
        "qlinear_softmax": lambda: dict(x=u8(2, 5), table=_ort_softmax_table(), y_scale=1 / 256, y_zero_point=0),
        "qlinear_softmax_reference": lambda: dict(x=u8(2, 5), table=_ort_softmax_table(), y_scale=1 / 256,
                                                  y_zero_point=0),
        "fixed_point_add8_simd": lambda: dict(a=i8(2, 20), a_zero_point=3, b=i8(1, 20, lo=-3), b_zero_point=-2,
                                              y_zero_point=1, params=_add8_params(), act_min=-100, act_max=100),
        "broadcast_runs": lambda: dict(a_shape=(2, 20), b_shape=(1, 20)),
        # ---- compression: advanced weight rounding (also bound in refquant.ptq)
        "ptq.advanced.clipped_normal_mean": lambda: dict(mean=f32(3), std=np.abs(f32(3)) + 0.5, lo=0.0, hi=6.0),
        "ptq.advanced.adaround_codes": lambda: dict(w=f32(3, 4), moments=_adv_moments(), grid=_adv_grid(), iters=20,
                                                    lr=0.01, reg_weight=0.01, beta=(20.0, 2.0), warmup=0.2),
        "ptq.advanced.adaround_objective": lambda: dict(v=f32(3, 4), w=f32(3, 4), grid=_adv_grid(),
                                                        moments=_adv_moments(), beta=2.0, reg_weight=0.01),
        "ptq.advanced.gptq_codes": lambda: dict(w=f32(3, 4), hessian=np.eye(4, dtype=np.float32) * 2 + 0.1,
                                                grid=_adv_grid(), block_size=2, damp=0.01, act_order=False),
        "ptq.advanced.WeightGrid": lambda: dict(scale=np.full((3, 4), 0.1, np.float32), zero_point=np.zeros((3, 4), np.int64),
                                                qmin=-7, qmax=7),
        "ptq.advanced.code_range": lambda: dict(qmodel=_adv_qmodel(), node=_adv_qmodel().node("1")),
        "ptq.advanced.grid_of_node": lambda: dict(qmodel=_adv_qmodel(), node=_adv_qmodel().node("1")),
        "ptq.advanced.symmetric_grid": lambda: dict(w=f32(3, 4), bits=4, group_size=2),
        "ptq.advanced.LayerMoments": lambda: dict(xx=np.eye(2), xf=np.eye(2), ff=np.eye(2), mean_q=np.zeros(2),
                                                  mean_f=np.zeros(2), count=3),
        "ptq.advanced.layer_columns": lambda: dict(node=_adv_qmodel().node("1"), x=f32(8, 4)),
        "ptq.advanced.quantize_weights_advanced": lambda: dict(model=_flow_model(), calibration_data=FLOW_X(), bits=4,
                                                               group_size=2, method="gptq", correct_bias="empirical",
                                                               profile="onnx"),
        # ---- compression: distillation, on-device fine-tuning
        "distill.distillation_loss": lambda: dict(student_logits=f32(4, 3), teacher_logits=f32(4, 3) * 0.5,
                                                  labels=np.array([0, 1, 2, 0]), temperature=4.0, alpha=0.9),
        "distill.DistillationLoss": lambda: dict(temperature=4.0, alpha=0.9),
        "distill.distill": lambda: dict(student=_flow_model(), teacher=_flow_model(), x=FLOW_X(), y=FLOW_Y(),
                                        temperature=4.0, alpha=0.9, epochs=1, batch_size=4, optimizer=None,
                                        scheduler=None, validation_data=None, seed=0, progress=False),
        "distill.teacher_logits": lambda: dict(teacher=_flow_model(), x=FLOW_X(), batch_size=4),
        "distill.hint_distill": lambda: dict(student=_flow_model(), teacher=_flow_model(), x=FLOW_X(), y=FLOW_Y(),
                                             student_layer="0", teacher_layer="0", hint_weight=1.0, temperature=4.0,
                                             alpha=0.9, adapter=None, epochs=1, batch_size=4, optimizer=None,
                                             scheduler=None, validation_data=None, seed=0, progress=False),
        "finetune.finetune": lambda: dict(qm=_ft_qmodel(), x=FLOW_X(), y=FLOW_Y(), update="bias", epochs=1, lr=1e-3,
                                          batch_size=4, seed=0, eval_data=None, optimizer="adam"),
        "finetune.FinetuneReport": lambda: dict(update=("bias",), accuracy_before=0.5, accuracy_after=0.75,
                                                evaluated_on="eval_data", changes={"1/bias": (3, 5)}, changed_values=3,
                                                changed_bytes=5, trainable_values=3, model_bytes=100, loss=[1.0],
                                                train_accuracy=[0.5], seconds=0.1),
        "finetune.accuracy": lambda: dict(qm=_ft_qmodel(), x=FLOW_X(), y=FLOW_Y(), batch_size=4),
        "finetune.GraphBackward": lambda: dict(qm=_ft_qmodel(), trainable=["1"]),
        "finetune.check_supported": lambda: dict(qm=_ft_qmodel()),
        "finetune.param_changes": lambda: dict(before=_ft_qmodel(), after=_ft_qmodel()),
        # ---- compression: pruning, sparse storage and the sparse int8 kernel
        "check_csr": lambda: dict(col_idx=np.array([0, 2], U8), row_ptr=np.array([0, 1, 2], U8), n_cols=3, n_rows=2),
        "sparse_matmul_int8_reference": lambda: dict(x=u8(2, 3), x_zero_point=U8(3), csr_values=np.array([5, -1], I8),
                                                     col_idx=np.array([0, 2], U8), row_ptr=np.array([0, 1, 2], U8),
                                                     w_zero_point=I8(0)),
        "sparse_matmul_int8": lambda: dict(x=u8(2, 3), x_zero_point=U8(3), csr_values=np.array([5, -1], I8),
                                           col_idx=np.array([0, 2], U8), row_ptr=np.array([0, 1, 2], U8),
                                           w_zero_point=np.array([0, 1], I8)),
        "prune.to_csr": lambda: dict(w=np.array([[0, 5, 0], [-2, 0, 0]], I8), zero_point=0),
        "prune.to_bitmask": lambda: dict(w=f32(2, 5), value_format="float32"),
        "prune.to_nm": lambda: dict(w=np.array([[0, 5, 0, 1, 3, 0, 0, 0]], I8), n=2, m=4, value_format="int4"),
        "prune.break_even_sparsity": lambda: dict(format="csr", shape=(16, 64), value_format="int8"),
        "prune.storage_table": lambda: dict(w=np.array([[0, 5, 0, 1], [0, 0, 0, -2]], I8)),
        "prune.CSRMatrix": lambda: dict(shape=(2, 3), value_format="int8", zero_point=np.array(0, I8),
                                        values=np.array([5, -2], I8), col_idx=np.array([1, 0], U8),
                                        row_ptr=np.array([0, 1, 2], U8)),
        "prune.BitmaskMatrix": lambda: dict(shape=(2, 3), value_format="int8", zero_point=np.array(0, I8),
                                            values=np.array([5, -2], I8), mask=np.array([[2], [1]], U8)),
        "prune.NMMatrix": lambda: dict(shape=(1, 4), value_format="int8", zero_point=np.array(0, I8),
                                       values=np.array([[5, 1]], I8), indices=np.array([1 | 3 << 2], U8), n=2, m=4),
        "prune.magnitude_masks": lambda: dict(model=_flow_model(), sparsity=0.5, scope="global", layers=["1"]),
        "prune.random_masks": lambda: dict(model=_flow_model(), sparsity=0.5, seed=1, scope="layer", layers=["1"]),
        "prune.sparsity": lambda: dict(model=_flow_model()),
        "prune.SparsityReport": lambda: dict(layers={"1": 0.5}, zeros=6, total=12, overall=0.5),
        "prune.kept_count": lambda: dict(n=12, sparsity=0.5),
        "prune.apply_masks": lambda: dict(model=_flow_model(), masks={"1": np.eye(3, 4, dtype=bool)}, optimizer=None),
        "prune.Pruning": lambda: dict(model=_flow_model(), masks={"1": np.eye(3, 4, dtype=bool)}),
        "prune.nm_masks": lambda: dict(model=_flow_model(), n=2, m=4, layers=["1"], pad=False),
        "prune.check_nm": lambda: dict(w=f32(3, 8), n=2, m=4, pad=False),
        "prune.nm_violations": lambda: dict(w=f32(3, 8), n=2, m=4, pad=True),
        "prune.PolynomialDecay": lambda: dict(initial_sparsity=0.1, final_sparsity=0.8, begin_step=2, end_step=20,
                                              power=3, frequency=4),
        "prune.agp_sparsity": lambda: dict(t=5, s_i=0.0, s_f=0.8, t0=0, n=10, dt=2),
        "prune.prune_gradually": lambda: dict(model=_flow_model(), x=FLOW_X(), y=FLOW_Y(),
                                              schedule=__import__("refquant.prune", fromlist=["x"]).PolynomialDecay(
                                                  0.0, 0.5, 0, 2, frequency=1),
                                              epochs=1, batch_size=4, optimizer=None, scope="layer", layers=None, seed=0,
                                              validation_data=(FLOW_X(), FLOW_Y()), progress=False),
        "prune.GradualHistory": lambda: dict(),
        "prune.thinnable_layers": lambda: dict(model=_cle_model()),
        "prune.select_channels": lambda: dict(model=_cle_model(), amount=0.5, norm="l2", layers=["0"]),
        "prune.remove_channels": lambda: dict(model=_cle_model(), keep={"0": np.array([0, 2])}),
        "prune.prune_channels": lambda: dict(model=_cle_model(), amount=0.5, norm="l1", layers=None),
        # ---- the golden-reference toolkit
        "testing.assert_bit_exact": lambda: dict(actual=i8(2, 3), expected=i8(2, 3), inputs={"x": f32(2, 3)}, max_report=3),
        "testing.mismatch_report": lambda: dict(actual=i8(2, 3), expected=i8(2, 3, lo=-4), inputs={"x": f32(2, 3)},
                                                max_report=3),
        "testing.write_golden": lambda: dict(path=str(_SCRATCH / "golden_out.npz"), op="tflite.add",
                                             profile="tflite_reference", cases=2, seed=0, model=None, isa="exact",
                                             input_shape=None, batch=1),
        "testing.load_golden": lambda: dict(path=_golden_path()),
        "testing.Golden": lambda: dict(header={"op": "tflite.add"}, cases=()),
        "testing.GoldenCase": lambda: dict(index=0, kind="random", inputs={"a": i8(2)}, params={}, attrs={},
                                           expected={"y": i8(2)}, order=("a",)),
        "testing.GoldenOp": lambda: dict(name="tflite.add", arguments=("a",), inputs=("a",),
                                         profiles={"tflite_reference": {}}, make_case=lambda rng, kind: ({}, {})),
        "testing.golden_ops.face_function": lambda: dict(face="tflite", name="add"),
        "testing.golden_ops.golden_op": lambda: dict(op="tflite.add"),
        "testing.golden_models.read_model": lambda: dict(model=_tflite_path(), profile="tflite_reference", isa="auto"),
        "testing.strategies.scales": lambda: dict(lo_exp=-12, hi_exp=2),
        "testing.strategies.qparams": lambda: dict(profile="tflite_reference", dtype="int8", per_channel=True,
                                                   kind="weight", channels=3, axis=0),
        "testing.strategies.tensors": lambda: dict(qp=refquant.make_qparams(0.25, 3, "int8"), shape=(2, 3), codes=False,
                                                   specials=True),
        "testing.strategies.conv_geometries": lambda: dict(padding="same_valid", max_channels=4, max_size=6,
                                                           max_kernel=3, groups=True),
        "testing.strategies.ConvGeometry": lambda: dict(batch=1, in_channels=2, out_channels=4, groups=2, height=5,
                                                        width=5, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                                                        pads=(1, 1, 1, 1), padding=None),
        "testing.strategies.small_models": lambda: dict(quantized=True, profile="tflite_reference"),
        "testing.strategies.SmallModel": lambda: dict(model=None, x=f32(2, 1, 2, 2), float_model=None),
        "testing.plugin.Oracle": lambda: dict(golden_dir=str(_SCRATCH)),
        "testing.explain_mismatch": lambda: dict(op="tflite.quantize", inputs=dict(x=f32(6), scale=0.25, zero_point=0),
                                                 actual=np.zeros(6, I8)),
        "testing.explain_model": lambda: dict(qmodel=_qmodel(), x=FLOW_X(), actual=_qmodel().run(FLOW_X())),
        "testing.explain.resolve_profile": lambda: dict(profile="onnxruntime@avx2"),
        "testing.explain.Match": lambda: dict(label="tflite_reference", origin="profile", description="d", facts={},
                                              n_diff=0, n_total=6, max_lsb=0.0, first=(), key=b""),
        "testing.explain.Explanation": lambda: dict(op="tflite.quantize", expected=_match(), ranking=[_match()],
                                                    skipped=[]),
        "testing.explain.ModelExplanation": lambda: dict(node=None, compared=[], explanation=None),
        # ---- interop: .tflite files
        "interop.tflite.import_quantized": lambda: dict(path_or_bytes=_tflite_bytes(), kernel="reference"),
        "interop.onnx.import_quantized": lambda: dict(path_or_bytes=_onnx_bytes(), profile="onnxruntime", isa="auto"),
        "interop.onnx.import_float": lambda: dict(path_or_bytes=_float_onnx_bytes()),
        "interop.onnx.export": lambda: dict(qmodel=_onnx_qmodel(), path=str(_SCRATCH / "m.onnx"), format="qoperator",
                                            input_shape=(1, 2, 2)),
        "interop.tflite.export": lambda: dict(qmodel=_qmodel("tflite_reference"), path=str(_SCRATCH / "m.tflite"),
                                              input_shape=(4,)),
        # ---- nn
        "Module": lambda: dict(),
        "Parameter": lambda: dict(value=f32(2, 3)),
        "HookHandle": lambda: dict(hooks={}, key=1),
        "module_registry": lambda: dict(),
        "manual_seed": lambda: dict(seed=0),
        "Sequential": lambda: dict(layers=(nn.ReLU(), nn.Identity())),
        "Residual": lambda: dict(body=nn.Linear(2, 2), shortcut=None, activation=nn.ReLU()),
        "Linear": lambda: dict(in_features=4, out_features=3, rng=np.random.default_rng(0)),
        "Conv2d": lambda: dict(in_channels=2, out_channels=4, kernel_size=3, stride=1, padding=1, groups=2,
                               rng=np.random.default_rng(0)),
        "BatchNorm1d": lambda: dict(num_features=3, eps=1e-5, momentum=0.1),
        "BatchNorm2d": lambda: dict(num_features=3, eps=1e-5, momentum=0.1),
        "ReLU": lambda: dict(), "ReLU6": lambda: dict(), "Sigmoid": lambda: dict(), "Tanh": lambda: dict(),
        "Hardtanh": lambda: dict(min_val=-2.0, max_val=2.0),
        "MaxPool2d": lambda: dict(kernel_size=3, stride=2, padding=1, dilation=1),
        "AvgPool2d": lambda: dict(kernel_size=3, stride=2, padding=1),
        "GlobalAvgPool2d": lambda: dict(keepdims=True),
        "Flatten": lambda: dict(), "Add": lambda: dict(), "Identity": lambda: dict(),
        "Softmax": lambda: dict(axis=-1),
        "Dropout": lambda: dict(p=0.25, rng=np.random.default_rng(0)),
        "straight_through": lambda: dict(fn=np.round),
        "mask_transform": lambda: dict(mask=np.ones((3, 4), bool)),
        "compose": lambda: dict(transforms=(np.round, np.abs)),
        "Loss": lambda: dict(),
        "CrossEntropyLoss": lambda: dict(reduction="sum", label_smoothing=0.1),
        "MSELoss": lambda: dict(reduction="mean"),
        "DistillationKLLoss": lambda: dict(temperature=2.0),
        "softmax": lambda: dict(z=f32(2, 3), axis=-1),
        "log_softmax": lambda: dict(z=f32(2, 3), axis=-1),
        "Optimizer": lambda: dict(params=_tiny_model(), lr=0.1),
        "SGD": lambda: dict(params=_tiny_model(), lr=0.1, momentum=0.9, nesterov=True),
        "Adam": lambda: dict(params=_tiny_model(), lr=0.1, betas=(0.9, 0.99)),
        "AdamW": lambda: dict(params=_tiny_model(), lr=0.1, betas=(0.9, 0.99)),
        "StepLR": lambda: dict(optimizer=_opt(), step_size=2, gamma=0.5),
        "CosineLR": lambda: dict(optimizer=_opt(), t_max=5, eta_min=0.0),
        "clip_grad_norm": lambda: dict(params=_tiny_model(), max_norm=1.0),
        "fit": lambda: dict(model=_tiny_model(), x=f32(6, 4), y=np.array([0, 1, 2, 0, 1, 2]), epochs=1,
                            batch_size=4, progress=False),
        "evaluate": lambda: dict(model=_tiny_model(), x=f32(6, 4), y=np.array([0, 1, 2, 0, 1, 2]), batch_size=4),
        "predict": lambda: dict(model=_tiny_model(), x=f32(6, 4), batch_size=4),
        "History": lambda: dict(),
        "save": lambda: dict(model=_tiny_model(), path=str(_SCRATCH / "saved.npz")),
        "load": lambda: dict(path=_model_path()),
        "save_weights": lambda: dict(model=_tiny_model(), path=str(_SCRATCH / "saved_weights.npz")),
        "load_weights": lambda: dict(model=_tiny_model(), path=_weights_path(), strict=True),
        "architecture": lambda: dict(model=_tiny_model()),
        "build": lambda: dict(spec=nn.architecture(_tiny_model()), where="model"),
        # ---- data and models
        "load_digits": lambda: dict(split="val", dtype=F32, flatten=True),
        "load_npz": lambda: dict(path=_npz_path(), x_key="x", y_key="y"),
        "synthetic_images": lambda: dict(n=3, shape=(1, 4, 4), num_classes=2, seed=1),
        "build_mlp": lambda: dict(rng=0), "build_cnn": lambda: dict(rng=0), "build_resnet": lambda: dict(rng=0),
        "build_mobilenet": lambda: dict(rng=0),
        "build_reference_model": lambda: dict(name="mlp", rng=0),
        "list_reference_models": lambda: dict(),
        "reference_model_info": lambda: dict(name="mlp"),
        "load_reference_model": lambda: dict(name="mlp"),
        # ---- calibration (observers' update and range: _flow_pseudo)
        "calibration.make_observer": lambda: dict(name="minmax", axis=1),
        "calibration.Observer": lambda: dict(axis=None),
        "calibration.MinMaxObserver": lambda: dict(axis=1, symmetric=True),
        "calibration.MovingAverageMinMaxObserver": lambda: dict(axis=None, averaging_constant=0.5, variant="pytorch",
                                                                symmetric=False),
        "calibration.PercentileObserver": lambda: dict(axis=None, num_bins=64, percentile=99.0, symmetric=True),
        "calibration.HistogramMSEObserver": lambda: dict(axis=None, num_bins=64, dtype="quint8", capability="auto"),
        "calibration.EntropyObserver": lambda: dict(axis=None, num_bins=64, num_quantized_bins=16),
        "calibration.TensorRTEntropyObserver": lambda: dict(axis=None, num_bins=64, num_bits=8, unsigned=False,
                                                            start_bin=16, stride=1, skip_zeros=False,
                                                            capability="auto"),
        # ---- passes
        "passes.fold_batch_norm": lambda: dict(model=_bn_model(), keep_names=True),
        "passes.fold_parameters": lambda: dict(weight=f32(3, 4), bias=np.array([0.5, -1.0, 0.25], F32),
                                               gamma=np.array([1.0, 2.0, 0.5], F32),
                                               beta=np.array([0.1, 0.0, -0.1], F32),
                                               mean=np.array([0.2, -0.3, 0.0], F32),
                                               var=np.array([1.0, 0.5, 2.0], F32), eps=1e-5),
        "passes.remove_identities": lambda: dict(model=_bn_model()),
        "passes.prepare_for_quantization": lambda: dict(model=_bn_model(), keep_names=False),
        "passes.cross_layer_equalization": lambda: dict(model=_cle_model(), iterations=3, tol=1e-3, relu6="replace"),
        "passes.equalization_scales": lambda: dict(range1=np.array([1.0, 2.0, 0.5]), range2=np.array([0.5, 1.0, 0.0])),
        "passes.output_channel_ranges": lambda: dict(layer=nn.Linear(4, 3, rng=np.random.default_rng(0))),
        "passes.input_channel_ranges": lambda: dict(layer=nn.Conv2d(2, 4, 3, groups=2, rng=np.random.default_rng(0))),
        # ---- ptq: flows, recipes, debug
        "ptq.quantize_static": lambda: dict(model=_flow_model(), calibration_data=FLOW_X(), profile="tflite_reference",
                                            per_channel=True, calibrator="minmax", isa="auto", float_layers=(),
                                            allow_float=False),
        "ptq.quantize_dynamic": lambda: dict(model=_flow_model(), profile="pytorch_fbgemm", isa="auto"),
        "ptq.quantize_weights": lambda: dict(model=_flow_model(), bits=4, group_size=2, profile="onnx"),
        "ptq.bias_correction": lambda: dict(qmodel=_adv_qmodel(), model=_flow_model(), calibration_data=FLOW_X(),
                                            mode="empirical"),
        "ptq.adaround": lambda: dict(qmodel=_adv_qmodel(), model=_flow_model(), calibration_data=FLOW_X(), iters=20,
                                     lr=0.01, reg_weight=0.01, beta=(20.0, 2.0), warmup=0.2),
        "ptq.gptq": lambda: dict(qmodel=_adv_qmodel(), model=_flow_model(), calibration_data=FLOW_X(), block_size=2,
                                 damp=0.01, act_order=True),
        "ptq.calibrate": lambda: dict(zip(("model", "steps"), _traced()), calibration_data=FLOW_X(),
                                      calibrator="moving_average"),
        "ptq.calibrate_model": lambda: dict(model=_flow_model(), calibration_data=FLOW_X(), profile="onnxruntime",
                                            calibrator="minmax", isa="auto"),
        "ptq.Calibrated": lambda: {f.name: getattr(c, f.name) for c in [_calibrated()] for f in dataclasses.fields(c)},
        "ptq.iter_batches": lambda: dict(data=FLOW_X(), batch_size=3),
        "ptq.Recipe": lambda: dict(name="tflite", activation_dtype="int8", activation_reduce_range=False,
                                   weight_reduce_range_isas=(), fuse=("RELU",), clamp_in_kernel=True, dynamic=True),
        "ptq.recipe_for": lambda: dict(profile="onnxruntime"),
        "ptq.activation_params": lambda: dict(recipe=ptq.recipe_for("pytorch_fbgemm"), lo=-1.0, hi=3.0),
        "ptq.quantize_weight": lambda: dict(recipe=ptq.recipe_for("onnxruntime"), w=f32(3, 4), per_channel=True,
                                            profile=refquant.get_profile("onnxruntime", isa="avx2")),
        "ptq.quantize_bias": lambda: dict(recipe=ptq.recipe_for("onnxruntime"),
                                          b=np.array([0.5, -1.0, 0.25], F32), x_scale=0.1,
                                          w_scale=np.array([0.05, 0.1, 0.2], F32), integer=True),
        "ptq.layer_report": lambda: dict(cal=_calibrated(), qmodel=_calibrated().lower(), x=FLOW_X()),
        "ptq.format_report": lambda: dict(rows=ptq.debug.layer_report(_calibrated(), _calibrated().lower(), FLOW_X())),
        "ptq.sensitivity": lambda: dict(cal=_calibrated(), x=FLOW_X(), y=FLOW_Y(), per_channel=False),
        "ptq.MixedPrecisionPlan": lambda: dict(float_layers=["1"], float_accuracy=0.5, trade_off=[], ranking=[],
                                               cal=_calibrated(), per_channel=True),
        "ptq.mixed_precision_plan": lambda: dict(model=_flow_model(), calibration_data=FLOW_X(), x=FLOW_X(), y=FLOW_Y(),
                                                 profile="tflite_reference", max_drop=0.0, per_channel=True,
                                                 calibrator="minmax", max_float_layers=1),
        "ptq.accuracy": lambda: dict(model_or_fn=_flow_model(), x=FLOW_X(), y=FLOW_Y()),
        # ---- evaluate: accuracy, timing, memory, per-layer error, the one-call record
        "evaluate.top_k_accuracy": lambda: dict(model=_flow_model(), x=FLOW_X(), y=FLOW_Y(), k=2, batch_size=3),
        "evaluate.latency": lambda: dict(model=_calibrated().lower(), x=FLOW_X(), repeats=3, warmup=1),
        "evaluate.throughput": lambda: dict(model=_flow_model(), x=FLOW_X(), batch_sizes=(1, 16), min_seconds=0.01),
        "evaluate.model_bytes": lambda: dict(model=_calibrated().lower()),
        "evaluate.memory": lambda: dict(model=_flow_model(), x=FLOW_X()),
        "evaluate.layer_errors": lambda: dict(qmodel=_calibrated().lower(), float_model=_flow_model(), x=FLOW_X()),
        "evaluate.evaluate": lambda: dict(model=_calibrated().lower(), x=FLOW_X(), y=FLOW_Y(), name="int8",
                                          float_model=_flow_model(), batch_sizes=(1, 4), repeats=3, warmup=1,
                                          top_k=(1, 2), min_seconds=0.01),
        "evaluate.Latency": lambda: dict(first_call_ms=2.0, median_ms=0.5, p90_ms=0.75, p99_ms=1.0, repeats=10),
        "evaluate.Memory": lambda: dict(model_bytes=100, loaded_bytes=120, peak_python_bytes=4096,
                                        peak_rss_bytes=None),
        "evaluate.Evaluation": lambda: dict(
            name="int8", top1=0.5, top5=None, latency=evaluate.Latency(2.0, 0.5, 0.75, 1.0, 10),
            throughput={1: 100.0, 4: 300.0}, memory=evaluate.Memory(100, 120, 4096, None),
            layers=[{"tensor": "input:q", "op": "quantize", "sqnr_db": 40.0, "max_error_lsb": 0.5, "saturated": 0.0}],
            top_k={1: 0.5, 2: 0.75}),
        # ---- qmodel (run, run_codes, trace, save, load: _flow_pseudo)
        "qmodel.QuantizedModel": lambda: dict(nodes=_qmodel().nodes, tensors=_qmodel().tensors, inputs=["x"],
                                              outputs=["y"], profile="tflite_reference", isa="auto",
                                              metadata={"flow": "fuzz"}),
        "qmodel.Node": lambda: dict(name="fc", op="linear", inputs=("xq",), output="yq", attrs={"activation": "RELU"},
                                    params=dict(_qmodel().node("fc").params)),
        "qmodel.TensorInfo": lambda: dict(name="xq", dtype="int8", scale=0.02, zero_point=-3),
        # ---- dynamic range: the op under a profile, the kernels
        "ops.dynamic.dynamic_linear": lambda: dict(x=f32(2, 4), w=i8(3, 4), w_scale=np.array([0.05, 0.1, 0.2], F32),
                                                   w_zero_point=np.zeros(3, I8), bias=np.array([0.5, -1.0, 0.25], F32),
                                                   profile="pytorch_fbgemm", reduce_range=True),
        "ops.dynamic.dynamic_linear[tflite_reference]": lambda: dict(
            x=f32(2, 20), w=i8(3, 20), w_scale=np.array([0.05, 0.1, 0.2], F32), w_zero_point=np.zeros(3, I8),
            bias=np.array([0.5, -1.0, 0.25], F32), profile="tflite_reference", reduce_range=False),
        "choose_u8_nudged": lambda: dict(x_min=-1.0, x_max=3.0, reduce_range=True),
        "choose_u8_dql": lambda: dict(x_min=-1.0, x_max=3.0),
        "quantize_rows_symmetric_s8": lambda: dict(x=f32(2, 10)),
        "quantize_rows_asymmetric_s8": lambda: dict(x=f32(2, 10)),
        "quantize_rows_qd8": lambda: dict(x=f32(2, 10)),
        "dot_s8_sign_transfer": lambda: dict(q=i8(2, 20), w=i8(3, 20)),
        "row_sums_int16_lanes": lambda: dict(w=i8(3, 20)),
        "dynamic_output": lambda: dict(acc=np.array([[100, -200, 3], [7, 8, 9]], I32),
                                       x_scale=np.array([0.1, 0.2], F32), w_scale=np.array([0.05, 0.1, 0.2], F32),
                                       bias=np.array([0.5, -1.0, 0.25], F32), mode="fma"),
        # ---- backends.onnx / onnxruntime (same names, same baselines where they agree)
        "onnx.quantize_linear": lambda: dict(x=f32(2, 3), y_scale=np.array([0.1, 0.2, 0.3], F32),
                                             y_zero_point=np.array([1, 2, 3], U8), axis=1),
        "onnx.dequantize_linear": lambda: dict(x=u8(2, 4), x_scale=np.array([[0.1, 0.2], [0.3, 0.4]], F32),
                                               x_zero_point=np.array([[1, 2], [3, 4]], U8), axis=1, block_size=2),
        "onnx.dynamic_quantize_linear": lambda: dict(x=f32(2, 3)),
        "onnx.matmul_integer": lambda: dict(a=u8(2, 3), b=i8(3, 4), a_zero_point=U8(3), b_zero_point=I8(1)),
        "onnx.qlinear_matmul": ORT_MM,
        "onnx.conv_integer": lambda: dict(x=u8(1, 2, 4, 4), w=i8(3, 2, 2, 2), x_zero_point=U8(3), w_zero_point=I8(0),
                                          pads=[1, 1, 0, 0], strides=[1, 2]),
        "onnx.qlinear_conv": ORT_CONV,
        "onnxruntime.qlinear_add": FLOAT_ADD,
        "onnxruntime.qgemm": lambda: dict(A=u8(2, 3), a_scale=0.1, a_zero_point=U8(3), B=i8(3, 4),
                                          b_scale=np.array([0.05, 0.1, 0.2, 0.3], F32), b_zero_point=np.zeros(4, I8),
                                          C=np.array([1, -2, 3, 4], I32), y_scale=0.5, y_zero_point=U8(7),
                                          alpha=1.0, transA=0, transB=0, isa="exact"),
        "onnxruntime.qlinear_mul": lambda: dict(a=u8(2, 3), a_scale=0.1, a_zero_point=U8(3), b=u8(2, 3), b_scale=0.2,
                                                b_zero_point=U8(5), c_scale=0.3, c_zero_point=U8(7)),
        "onnxruntime.qlinear_leaky_relu": lambda: dict(x=u8(2, 3), x_scale=0.05, x_zero_point=U8(128), y_scale=0.04,
                                                       y_zero_point=U8(100), alpha=0.1),
        "onnxruntime.qlinear_softmax": lambda: dict(x=u8(2, 3), x_scale=0.05, x_zero_point=U8(0), y_scale=1 / 256,
                                                    y_zero_point=U8(0), axis=-1, opset=13),
        "onnxruntime.qlinear_average_pool": lambda: dict(x=u8(1, 2, 4, 4), x_scale=0.1, x_zero_point=U8(3),
                                                         y_scale=0.05, y_zero_point=U8(2), kernel_shape=[2, 2],
                                                         strides=[2, 1], pads=[1, 0, 0, 1], ceil_mode=1,
                                                         count_include_pad=0, auto_pad="NOTSET", channels_last=0),
        "onnxruntime.max_pool": lambda: dict(x=i8(1, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                             dilations=[1, 1], ceil_mode=0, auto_pad="NOTSET", storage_order=0),
        "onnxruntime.qlinear_global_average_pool": lambda: dict(x=u8(1, 2, 3, 3), x_scale=0.1, x_zero_point=U8(3),
                                                                y_scale=0.05, y_zero_point=U8(2)),
        "onnxruntime.qlinear_sigmoid": lambda: dict(x=u8(2, 3), x_scale=0.05, x_zero_point=U8(128),
                                                    y_scale=1 / 256, y_zero_point=U8(0)),
        # ---- backends.tflite
        "tflite.quantize": lambda: dict(x=f32(2, 3), scale=0.1, zero_point=3, dtype="int8"),
        "tflite.dequantize": lambda: dict(q=i8(2, 3), scale=0.1, zero_point=3),
        "tflite.fully_connected": tflite_fc,
        "tflite.conv2d": TFL_CONV,
        "tflite.depthwise_conv2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=0.1, x_zero_point=1, w=i8(1, 2, 2, 4),
                                                w_scale=0.05, b=np.array([1, -2, 3, 4], I32), y_scale=0.2,
                                                y_zero_point=-1, depth_multiplier=2),
        "tflite.add": TFL_ADD,
        "tflite.average_pool2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=0.1, x_zero_point=1, filter_size=2),
        "tflite.max_pool2d": lambda: dict(x=i8(1, 4, 4, 2), x_scale=0.1, x_zero_point=1, filter_size=2),
        "tflite.softmax": lambda: dict(x=i8(2, 5), x_scale=0.1, x_zero_point=1, beta=1.0),
        "tflite.logistic": lambda: dict(x=i8(2, 5), x_scale=0.1, x_zero_point=1),
        "tflite.tanh": lambda: dict(x=i8(2, 5), x_scale=0.1, x_zero_point=1, kernel="xnnpack", y_scale=1 / 128,
                                    y_zero_point=0),
        "tflite.mul": lambda: dict(TFL_ADD(), activation="RELU", kernel="optimized"),
        "tflite.mean": lambda: dict(x=i8(1, 3, 3, 2), x_scale=0.1, x_zero_point=1, y_scale=0.05, y_zero_point=-2,
                                    axis=(1, 2), keep_dims=False, kernel="reference"),
        "tflite.requantize": lambda: dict(q=i8(2, 3), x_scale=0.1, x_zero_point=1, y_scale=0.2, y_zero_point=-2,
                                          dtype="int16", kernel="reference"),
        # the faces in 16x8 mode: int16 activations (zero point 0), int8 weights, int64 (or int32) bias
        "tflite.fully_connected[16x8]": lambda: dict(x=i16(2, 4), x_scale=0.001, x_zero_point=0, w=i8(3, 4),
                                                     w_scale=np.array([0.05, 0.02, 0.04], F32),
                                                     b=np.array([1, -2, 3], np.int64), y_scale=0.002, y_zero_point=0,
                                                     activation="RELU", kernel="optimized"),
        "tflite.conv2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=0.001, x_zero_point=0, w=i8(3, 2, 2, 2),
                                            w_scale=0.05, b=np.array([1, -2, 3], I32), y_scale=0.002, y_zero_point=0,
                                            padding="SAME", kernel="optimized"),
        "tflite.depthwise_conv2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=0.001, x_zero_point=0,
                                                      w=i8(1, 2, 2, 4), w_scale=0.05,
                                                      b=np.array([1, -2, 3, 4], np.int64), y_scale=0.002,
                                                      y_zero_point=0, depth_multiplier=2, kernel="reference"),
        "tflite.add[16x8]": lambda: dict(a=i16(2, 20), a_scale=0.001, a_zero_point=0, b=i16(2, 20, step=977),
                                         b_scale=0.002, b_zero_point=0, y_scale=0.002, y_zero_point=0,
                                         kernel="optimized"),
        "tflite.mul[16x8]": lambda: dict(a=i16(2, 3), a_scale=0.001, a_zero_point=0, b=i16(3, step=977),
                                         b_scale=0.002, b_zero_point=0, y_scale=0.05, y_zero_point=0,
                                         activation="RELU6", kernel="optimized"),
        "tflite.mean[16x8]": lambda: dict(x=i16(1, 3, 3, 2), x_scale=0.001, x_zero_point=0, y_scale=0.0005,
                                          y_zero_point=0, axis=(1, 2), keep_dims=True, kernel="optimized"),
        "tflite.requantize[16x8]": lambda: dict(q=i16(2, 3), x_scale=0.001, x_zero_point=0, y_scale=0.2,
                                                y_zero_point=-2, dtype="int8", kernel="optimized"),
        "tflite.average_pool2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=0.001, x_zero_point=0, filter_size=2,
                                                    kernel="optimized"),
        "tflite.max_pool2d[16x8]": lambda: dict(x=i16(1, 4, 4, 2), x_scale=0.001, x_zero_point=0, filter_size=2,
                                                padding="SAME", kernel="optimized"),
        "tflite.softmax[16x8]": lambda: dict(x=i16(2, 5), x_scale=0.001, x_zero_point=0, beta=1.0,
                                             kernel="optimized"),
        "tflite.logistic[16x8]": lambda: dict(x=i16(2, 5), x_scale=1 / 4096, x_zero_point=0, kernel="optimized"),
        "tflite.tanh[16x8]": lambda: dict(x=i16(2, 5), x_scale=0.001, x_zero_point=0, kernel="reference"),
        # ---- backends.pytorch
        "pytorch.quantize_per_tensor": lambda: dict(x=f32(2, 3), scale=0.1, zero_point=3, dtype="quint8"),
        "pytorch.quantize_per_channel": lambda: dict(x=f32(2, 3), scales=np.array([0.1, 0.2, 0.3]),
                                                     zero_points=np.array([0, 1, 2]), axis=1, dtype="qint8"),
        "pytorch.dequantize": lambda: dict(q=u8(2, 3), scale=0.1, zero_point=3),
        "pytorch.fake_quantize_per_tensor_affine": PT_FQ,
        "pytorch.fake_quantize_per_tensor_affine_cachemask": PT_FQ,
        "pytorch.fake_quantize_per_channel_affine": PT_FQC,
        "pytorch.fake_quantize_per_channel_affine_cachemask": PT_FQC,
        "pytorch.fake_quantize_per_tensor_affine_cachemask_backward": lambda: dict(
            grad_y=f32(2, 3), mask=np.ones((2, 3), bool)),
        "pytorch.fake_quantize_learnable_per_tensor_affine": lambda: dict(PT_FQ(), grad_factor=1.0),
        "pytorch.fake_quantize_learnable_per_tensor_affine_backward": lambda: dict(
            grad_y=f32(2, 3), x=f32(2, 3), scale=0.1, zero_point=3.0, quant_min=-128, quant_max=127),
        "pytorch.choose_qparams": lambda: dict(min_val=-1.0, max_val=3.0, dtype="quint8"),
        "pytorch.choose_qparams_dynamic": lambda: dict(min_val=-1.0, max_val=3.0, qmin=0, qmax=255),
        "pytorch.observer_qmin_qmax": lambda: dict(dtype="qint8", reduce_range=True),
        "pytorch.linear": lambda: dict(x=u8(2, 4), x_scale=0.1, x_zero_point=3, w=i8(3, 4), w_scale=0.05,
                                       w_zero_point=0, bias=np.array([0.5, -1.0, 0.25], F32), y_scale=0.2,
                                       y_zero_point=100, isa="exact"),
        "pytorch.conv2d": lambda: dict(x=u8(1, 2, 4, 4), x_scale=0.1, x_zero_point=3, w=i8(3, 2, 2, 2),
                                       w_scale=0.05, w_zero_point=0, bias=np.array([0.5, -1.0, 0.25], F32),
                                       y_scale=0.2, y_zero_point=100, padding=1, isa="exact"),
        "pytorch.add": lambda: dict(FLOAT_ADD(), relu=True),
        "pytorch.dynamic_linear": lambda: dict(x=f32(2, 4), w=i8(3, 4), w_scale=0.05, w_zero_point=0,
                                               bias=np.array([0.5, -1.0, 0.25], F32), isa="exact"),
        "pytorch.fbgemm_conv_path": lambda: dict(in_channels=16, out_channels=16, kernel=(3, 3), stride=(1, 1),
                                                 padding=(1, 1), dilation=(1, 1), groups=16),
    }
    for name in ("quantize_linear", "dequantize_linear", "dynamic_quantize_linear", "matmul_integer",
                 "qlinear_matmul", "conv_integer", "qlinear_conv"):
        b[f"onnxruntime.{name}"] = b[f"onnx.{name}"]
    b["onnxruntime.quantize_linear"] = lambda: dict(x=f32(2, 3), y_scale=np.float32(0.1), y_zero_point=U8(3))
    b["onnxruntime.dequantize_linear"] = lambda: dict(x=u8(2, 4), x_scale=np.array([0.1, 0.2, 0.3, 0.4], F32),
                                                      x_zero_point=np.array([1, 2, 3, 4], U8), axis=1)
    b["onnxruntime.qlinear_add"] = lambda: dict(a=u8(2, 3), a_scale=0.1, a_zero_point=U8(3), b=u8(2, 3), b_scale=0.2,
                                                b_zero_point=U8(5), c_scale=0.15, c_zero_point=U8(1))
    return b


# Face, op and flow functions share short names with core functions, kernels and each other
# (ptq.calibrate, qat.calibrate): they are keyed "<prefix>.<name>".
_FACES = {"refquant.distill": "distill", "refquant.finetune": "finetune", "refquant.finetune.ste": "finetune",
          "refquant.finetune.trainable": "finetune", "refquant.testing": "testing", "refquant.testing.golden_ops": "testing.golden_ops",
          "refquant.testing.golden_models": "testing.golden_models", "refquant.testing.strategies": "testing.strategies",
          "refquant.testing.plugin": "testing.plugin", "refquant.testing.explain": "testing.explain",
          "refquant.ptq.advanced": "ptq.advanced", "refquant.prune": "prune", "refquant.evaluate": "evaluate", "refquant.backends.onnx": "onnx", "refquant.backends.onnxruntime": "onnxruntime",
          "refquant.backends.tflite": "tflite", "refquant.backends.pytorch": "pytorch",
          "refquant.ops.layers": "ops.layers", "refquant.ops.pointwise": "ops.pointwise",
          "refquant.ops.reduce": "ops.reduce", "refquant.ops.requantize": "ops.requantize",
          "refquant.ops.dynamic": "ops.dynamic", "refquant.calibration": "calibration", "refquant.passes": "passes",
          "refquant.ptq": "ptq", "refquant.ptq.flows": "ptq", "refquant.ptq.recipes": "ptq",
          "refquant.ptq.debug": "ptq", "refquant.qmodel": "qmodel", "refquant.interop.tflite": "interop.tflite",
          "refquant.interop.onnx": "interop.onnx"}


def public_callables():
    """``{key: callable}`` over ``MODULES``, each object once (first name wins)."""
    out, seen = {}, set()
    todo = list(MODULES)
    while todo:
        modname = todo.pop(0)
        mod = importlib.import_module(modname)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if obj is None or inspect.ismodule(obj):
                if obj is None and importlib.util.find_spec(f"{modname}.{name}") is None:
                    raise AssertionError(f"{modname}.__all__ names {name!r}, which does not exist")
                todo.append(f"{modname}.{name}")
                continue
            if not callable(obj) or isinstance(obj, (dict, tuple)) or (
                    isinstance(obj, type) and issubclass(obj, BaseException)):
                continue
            key = f"{_FACES[modname]}.{name}" if modname in _FACES else name
            ident = (id(obj), key.split(".")[0] if modname in _FACES else "")
            if ident in seen:
                continue
            seen.add(ident)
            out.setdefault(key, obj)
    return out


# ------------------------------------------------------------------------------------------
# Kinds of bad and edge argument values
# ------------------------------------------------------------------------------------------

class _Unhashable:
    __hash__ = None


KINDS = {
    "str": lambda: "abc",
    "None": lambda: None,
    "ragged list": lambda: [[1, 2], [3]],
    "nested list": lambda: [[1, 2], [3, 4]],
    "dict": lambda: {"a": 1},
    "unhashable": _Unhashable,
    "bool": lambda: True,
    "complex": lambda: 1 + 2j,
    "bytes": lambda: b"\x00\x01",
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "-inf": lambda: float("-inf"),
    "zero": lambda: 0.0,
    "negative": lambda: -1.0,
    "tiny": lambda: 1e-45,
    "huge float": lambda: 1e300,
    "float 1.5": lambda: 1.5,
    "np.float64 1.5": lambda: np.float64(1.5),
    "int 2**63": lambda: 2 ** 63,
    "int 2**64-1": lambda: 2 ** 64 - 1,
    "int -2**63-1": lambda: -(2 ** 63) - 1,
    "int 2**100": lambda: 2 ** 100,
    "np.uint64 max": lambda: np.uint64(2 ** 64 - 1),
    "np.int64 min": lambda: np.int64(-(2 ** 63)),
    "block 2**36": lambda: 2 ** 36,
    "axis 2**40": lambda: 2 ** 40,
    "axis -2**40": lambda: -(2 ** 40),
    "int 0": lambda: 0,
    "int -1": lambda: -1,
    "int 300": lambda: 300,
    "empty float32": lambda: np.zeros((0,), F32),
    "empty int8 (0, 3)": lambda: np.zeros((0, 3), I8),
    "empty 4-D uint8": lambda: np.zeros((0, 2, 4, 4), U8),
    "0-d float32": lambda: np.array(0.5, F32),
    "0-d int8": lambda: np.array(1, I8),
    "0-d uint64 max": lambda: np.array(2 ** 64 - 1, np.uint64),
    "float16 array": lambda: np.ones((2, 3), np.float16),
    "int16 array": lambda: np.ones((2, 3), I16),
    "uint64 array max": lambda: np.full((2, 3), 2 ** 64 - 1, np.uint64),
    "bool array": lambda: np.ones((2, 3), bool),
    "object array": lambda: np.array([object(), 1], dtype=object),
    "str array": lambda: np.array(["a", "b"]),
    "complex array": lambda: np.ones(3, np.complex64),
    "datetime array": lambda: np.array(["2020-01-01"], dtype="datetime64[D]"),
    "nan float32 array": lambda: np.array([np.nan, 1.0], F32),
    "inf float32 array": lambda: np.array([np.inf, -np.inf], F32),
    "big int8 5-D": lambda: np.ones((1, 1, 1, 1, 1), I8),
    "wide int8": lambda: np.ones((1, 3000), I8),
    "float list": lambda: [0.1, 0.2],
    "int tuple 3": lambda: (1, 2, 3),
    "int tuple (2, 2)": lambda: (2, 2),
    "callable": lambda: (lambda *a, **k: None),
}

# Derived from the baseline value: the same numbers in another layout must give the same result.
SAME_VALUE_KINDS = ("byte-swapped", "non-contiguous")
# Derived from the baseline value: bad or edge variants of it.
DERIVED_KINDS = ("byte-swapped", "non-contiguous", "as nested list", "empty", "0-d", "other dtype", "float64",
                 "with nan", "plus one dim")


def derive(kind, value):
    """A variant of the baseline ``value``, or ``None`` when ``kind`` does not apply to it."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.number)) and kind == "0-d":
        return np.asarray(value)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        return None
    if kind == "byte-swapped":
        return value.astype(value.dtype.newbyteorder()) if value.dtype.itemsize > 1 else None
    if kind == "non-contiguous":
        if value.ndim == 0:
            return None
        big = np.repeat(value[..., None], 2, axis=-1)
        return big[..., 0]
    if kind == "as nested list":
        return value.tolist()
    if kind == "empty":
        return np.zeros((0,) + value.shape[1:], value.dtype) if value.ndim else None
    if kind == "0-d":
        return value.reshape(-1)[:1].reshape(()) if value.size else None
    if kind == "other dtype":
        other = {"i": U8, "u": I8, "f": I32, "b": F32}[value.dtype.kind]
        with np.errstate(invalid="ignore"):  # NaN to int: whatever the cast gives, it is a bad value anyway
            return value.astype(other)
    if kind == "float64":
        return value.astype(F64) if value.dtype != F64 else value.astype(F32)
    if kind == "with nan":
        if value.dtype.kind != "f" or not value.size:
            return None
        v = value.copy()
        v.reshape(-1)[0] = np.nan
        return v
    if kind == "plus one dim":
        return value[None]
    raise AssertionError(kind)


# ------------------------------------------------------------------------------------------
# Calling and judging
# ------------------------------------------------------------------------------------------

# Parameters whose bad value may legitimately be reported under another argument's name
# (e.g. ``fmt="int2"`` makes a baseline zero point 3 out of range).
ALSO_NAMED = {
    "fmt": ("zero_point", "qmin", "qmax", "min_val", "max_val", "rmin", "rmax"),
    "dtype": ("zero_point", "qmin", "qmax", "y_zero_point", "act_min", "act_max", "zero_points", "output_zero_point"),
    "output_dtype": ("y_zero_point",),
    "qmin": ("qmax",), "qmax": ("qmin",), "quant_min": ("quant_max", "zero_point"),
    "quant_max": ("quant_min", "zero_point"),
    "act_min": ("act_max",), "act_max": ("act_min",),
    "axis": ("scale", "scales", "zero_point", "x_scale", "y_scale", "x_zero_point", "y_zero_point", "bias",
             "multiplier", "acc", "zero_points"),
    "block_size": ("scale", "x_scale", "y_scale", "axis"),
    "mode": ("shift", "multiplier", "acc"),
    "shift": ("mode",),
    "narrow": ("reduce_range",), "reduce_range": ("narrow",),
    "layout": ("w", "x", "w_layout"), "w_layout": ("w", "x"),
    "groups": ("x", "w", "C"), "group": ("x", "w"),
    "symmetric": ("fmt",),
    "kernel": ("x", "w", "filter_size", "stride", "padding", "dilation", "kernel_size"),
    "engine": ("x", "w", "isa"), "isa": ("engine",),
    "profile": ("qparams", "mode", "derivation"),
    "derivation": ("mode", "profile"),
    "acc_model": ("a", "b", "x", "w"),
    "depth_multiplier": ("w", "x", "C"),
    "padding": ("kernel_size", "filter_size", "x"),
    "kernel_size": ("padding", "x"),
    "stride": ("padding", "x"), "strides": ("pads", "x"), "dilations": ("pads", "x", "w"), "dilation": ("padding", "x"),
    "pads": ("x", "w", "dilations", "strides"),
    "activation": ("output_scale",),
    "variant": ("x", "quantized_multiplier", "shift"),
    "k_order": ("acc_model",),
    "single_rounding": ("shift", "multiplier"),
    "reciprocal": ("act_times_w_scale",),
    "where": ("spec",),
    "x_key": ("x",), "y_key": ("y",),
    "y": ("labels", "target", "x"), "target": ("labels",),
    # an operand of another dtype makes the (valid) zero point or clamp of the baseline the misfit
    "x": ("input", "y", "w", "a", "b", "x_zero_point", "y_zero_point", "zero_point", "lo", "hi", "act_min",
          "act_max", "qparams"),
    "a": ("b", "a_zero_point", "b_zero_point", "y_zero_point"), "b": ("a", "a_zero_point", "b_zero_point"),
    "w": ("x", "w_zero_point", "b", "w_scale"), "q": ("zero_point", "qparams"),
    "output": ("logits", "student_logits", "target"),
    "strict": ("state",),
    "signed": ("values",),
    "student_logits": ("teacher_logits",), "teacher_logits": ("student_logits",),
}
# Per callable: get_format names its argument by its own ``name`` parameter (default "dtype", as
# its callers' arguments are called).
KEY_ALSO_NAMED = {("get_format", "fmt"): ("dtype",)}


# The one builtin exception allowed: FileNotFoundError for a path that names no file (documented by
# load_npz, nn.load, nn.load_weights, interop.tflite.import_quantized; refquant.errors has no class for
# it). Its message must name the path.
FILE_ARGUMENTS = ("path", "path_or_bytes")


def _resolve(key):
    pseudo = PSEUDO.get(key)
    if pseudo is not None:
        return pseudo[0]
    return CALLABLES[key.split("[", 1)[0]]  # "requantize[float32_rne]": a second baseline of requantize


def _params(fn):
    sig = inspect.signature(fn)
    return [p for p in sig.parameters.values() if p.name != "self"]


def _call(fn, kwargs):
    """Call with keyword arguments, spreading the one ``*args`` parameter if any."""
    pos, kw = [], {}
    for p in _params(fn):
        if p.name not in kwargs:
            continue
        v = kwargs[p.name]
        if p.kind is p.VAR_POSITIONAL:
            pos.extend(v if isinstance(v, tuple) else (v,))
        elif p.kind is p.POSITIONAL_ONLY:
            pos.append(v)
        else:
            kw[p.name] = v
    return fn(*pos, **kw)


@contextlib.contextmanager
def bounded_memory(extra=MEMORY_LIMIT):
    """Cap the address space at its current size plus ``extra`` bytes (Linux ``RLIMIT_AS``)."""
    if resource is None or not hasattr(resource, "RLIMIT_AS") or not Path("/proc/self/statm").exists():
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = used + extra if hard == resource.RLIM_INFINITY else min(used + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class CallTimeout(BaseException):
    """Raised by the SIGALRM handler when a call runs past ``CALL_SECONDS``."""


@contextlib.contextmanager
def bounded_time(seconds=CALL_SECONDS):
    """Interrupt the call after ``seconds`` (POSIX, main thread; Numba loops are not interruptible)."""
    import signal
    import threading
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise CallTimeout(f"call interrupted after {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Outcome:
    def __init__(self, result=None, error=None, seconds=0.0):
        self.result, self.error, self.seconds = result, error, seconds


def run(fn, kwargs):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with bounded_memory(), np.errstate(all="ignore"):
            try:
                with bounded_time():
                    r = _call(fn, kwargs)
            except BaseException as e:  # noqa: BLE001 - judged by the caller
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                return Outcome(error=e, seconds=time.perf_counter() - t0)
    return Outcome(result=r, seconds=time.perf_counter() - t0)


def _names_argument(msg, name):
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", msg) is not None


def judge(key, kwargs, changed, label):
    """Run one call; return a problem description or None."""
    fn = _resolve(key)
    out = run(fn, kwargs)
    where = f"{key}({', '.join(f'{k}=<{label[k]}>' for k in changed)})"
    if out.seconds > CALL_SECONDS or isinstance(out.error, CallTimeout):
        return f"{where}: took {out.seconds:.1f} s"
    e = out.error
    if e is None:
        return None
    documented = isinstance(e, FileNotFoundError) and any(n in FILE_ARGUMENTS for n in changed)
    if not isinstance(e, errors.RefquantError) and not documented:
        return f"{where}: {type(e).__name__}: {str(e)[:200]}"
    msg = str(e)
    for name in changed:
        alternatives = ALSO_NAMED.get(name, ()) + KEY_ALSO_NAMED.get((key, name), ())
        if _names_argument(msg, name) or any(_names_argument(msg, alt) for alt in alternatives):
            return None
    return f"{where}: {type(e).__name__} does not name {'/'.join(changed)}: {msg[:200]}"


def _same(a, b):
    """Equal results: arrays by dtype and values (NaN equal), containers recursively."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a)
                                          if f.name != "seconds" and not f.metadata.get("measured"))  # timings
    if isinstance(a, (int, float, str, np.generic)) or a is None:
        return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    return True  # objects (layers, optimizers): not compared


def judge_same_value(key, name, kind):
    """A byte-swapped / non-contiguous copy of a valid argument gives the baseline's result
    (each call on fresh baseline arguments: models and optimizers are changed in place)."""
    fn = _resolve(key)
    want = run(fn, BASELINES[key]())
    _, kwargs, _ = _apply(key, [(name, kind)])
    got = run(fn, kwargs)
    where = f"{key}({name}=<{kind}>)"
    if want.error is not None:
        return f"{key}: baseline call fails: {type(want.error).__name__}: {want.error}"
    if got.error is not None:
        return f"{where}: valid input refused: {type(got.error).__name__}: {str(got.error)[:200]}"
    if not _same(want.result, got.result):
        return f"{where}: result differs from the native, contiguous argument's"
    return None


# ------------------------------------------------------------------------------------------
# The tables, and what still fails in files owned elsewhere
# ------------------------------------------------------------------------------------------

CALLABLES = public_callables()
BASELINES = _baselines()
PSEUDO = _nn_pseudo() | _flow_pseudo() | _profile_pseudo() | _shadowed_pseudo()
for _k, (_fn, _b) in PSEUDO.items():
    BASELINES[_k] = _b
KEYS = sorted(set(CALLABLES) | set(PSEUDO) | {k for k in BASELINES if "[" in k})

# Callables in files owned elsewhere that still fail: key -> (argument, kind, where it fails: what).
# Reproduce one with ``check_case(key, [(argument, kind)])``; each is xfail(strict=True), so fixing the
# callable makes its tests XPASS and fail until its line here is removed.
KNOWN_FAILURES: dict = {  # key: (argument, kind, "file where it fails: what happens")
}


def _marks(key):
    if key in KNOWN_FAILURES:
        argument, kind, what = KNOWN_FAILURES[key]
        return [pytest.mark.xfail(strict=True, reason=f"{key}({argument}=<{kind}>) fails in {what}")]
    return []


# Parameters not fuzzed: the Enum functional API of RoundingMode; training length (a huge
# ``epochs`` is a valid request for a long run, bounded by the caller, not by refquant).
NOT_FUZZED = {"prune.prune_gradually": ("epochs",), "distill.distill": ("epochs",), "distill.hint_distill": ("epochs",),
              "finetune.finetune": ("epochs",), "RoundingMode": ("args", "names", "module", "qualname", "type", "start", "boundary"),
              "fit": ("epochs",)}


# The layer and pointwise ops (refquant.ops.layers, .pointwise, .reduce, .requantize) take arguments their
# callers validated (a face, the integer model; their module docstrings say so): each checks only the
# names that pick its arithmetic (profile, activation, layer family), so only those are fuzzed with bad
# values. Their other arguments get the same-value kinds only (byte-swapped, non-contiguous), which every
# function must accept. refquant.ops.dynamic checks every argument (it is called with user data by the integer
# model's dynamic_linear node): it is fuzzed like any public function.
_OP_CHECKED = ("profile", "activation", "family")
TRUSTED = {k: tuple(p.name for p in _params(fn) if p.name not in _OP_CHECKED)
           for k, fn in CALLABLES.items() if k.startswith(("ops.layers.", "ops.pointwise.", "ops.reduce.",
                                                           "ops.requantize."))}


def _params_of(key):
    return [p for p in _params(_resolve(key))
            if p.kind is not p.VAR_KEYWORD and p.name not in NOT_FUZZED.get(key, ())]


def test_every_public_callable_has_a_baseline():
    missing = [k for k in KEYS if k not in BASELINES]
    assert not missing, f"add a valid call for these public callables to _baselines(): {missing}"
    stale = [k for k in BASELINES if k not in KEYS]
    assert not stale, f"remove these baselines (no such public callable any more): {stale}"


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(tmp_path_factory):
    """Fuzzed ``path`` arguments ("abc") are relative: write them to a scratch directory, one per
    test, so that a file one callable wrote ("abc") is not read by another's test."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz_cwd"))
    yield
    os.chdir(old)


@pytest.mark.parametrize("key", KEYS)
def test_baseline_is_valid(key):
    out = run(_resolve(key), BASELINES[key]())
    assert out.error is None, f"{key}: baseline call fails: {type(out.error).__name__}: {out.error}"


def _cases(key):
    """Every (argument, kind) pair of one callable."""
    base = BASELINES[key]()
    names = [p.name for p in _params_of(key)]
    trusted = TRUSTED.get(key.split("[", 1)[0], ())  # "ops.pointwise.add[16x8]": a second baseline
    cases = [(n, k) for n in names if n not in trusted for k in KINDS]
    cases += [(n, k) for n in names if n in base for k in DERIVED_KINDS
              if (n not in trusted or k in SAME_VALUE_KINDS) and derive(k, base[n]) is not None]
    return cases


def _apply(key, choices):
    base = BASELINES[key]()
    kwargs, labels = dict(base), {}
    for name, kind in choices:
        if kind in KINDS:
            kwargs[name] = KINDS[kind]()
        else:
            kwargs[name] = derive(kind, base[name])
        labels[name] = kind
    return base, kwargs, labels


def check_case(key, choices):
    if len(choices) == 1 and choices[0][1] in SAME_VALUE_KINDS:
        return judge_same_value(key, *choices[0])
    _, kwargs, labels = _apply(key, choices)
    return judge(key, kwargs, [n for n, _ in choices], labels)


FUZZ_KEYS = [k for k in KEYS if _params_of(k)]  # callables without arguments: test_baseline_is_valid only


def test_known_failures_are_public_callables():
    stale = [k for k in KNOWN_FAILURES if k not in KEYS]
    assert not stale, f"remove these from KNOWN_FAILURES (no such public callable any more): {stale}"


@pytest.mark.parametrize("key", [pytest.param(k, marks=_marks(k)) for k in FUZZ_KEYS])
def test_fuzz(key):
    """One or two arguments of the baseline replaced by hypothesis-drawn bad or edge values."""
    if key in KNOWN_FAILURES:  # fail on the known case first, so that xfail(strict=True) is exact
        argument, kind, _ = KNOWN_FAILURES[key]
        problem = check_case(key, [(argument, kind)])
        assert problem is None, problem
    cases = _cases(key)

    @settings(max_examples=EXAMPLES, deadline=timedelta(seconds=CALL_SECONDS), database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(first=st.sampled_from(cases), second=st.one_of(st.none(), st.sampled_from(cases)))
    def inner(first, second):
        choices = [first] if second is None or second[0] == first[0] else [first, second]
        problem = check_case(key, choices)
        assert problem is None, problem

    inner()


@pytest.mark.parametrize("key", [pytest.param(k, marks=_marks(k)) for k in FUZZ_KEYS])
def test_sweep(key):
    """Every (argument, kind) pair of one callable, deterministically."""
    problems = [p for c in _cases(key) if (p := check_case(key, [c])) is not None]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:20])


# ------------------------------------------------------------------------------------------
# Explicit cases: invalid input that returned a result (must raise, naming the argument), and
# edge input that was refused or broke (must compute the stated result)
# ------------------------------------------------------------------------------------------

def _npz_with_lying_header():
    """A 300-byte .npz whose x.npy header claims 2**31 float64 (16 GiB) over 64 bytes of data."""
    import io
    path = _SCRATCH / "lying_header.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2 ** 31,)})
    raw = header.getvalue()
    raw = raw if raw.startswith(b"\x93NUMPY") else np.lib.format.magic(1, 0) + raw
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", raw + bytes(64))
    return str(path)


def _conv_args():
    return dict(x=u8(1, 2, 4, 4), w=i8(3, 2, 2, 2), x_zero_point=U8(3), w_zero_point=I8(0))


def _pt_conv_args():
    return dict(x=u8(1, 2, 4, 4), x_scale=0.1, x_zero_point=3, w=i8(3, 2, 2, 2), w_scale=0.05, w_zero_point=0,
                bias=None, y_scale=0.2, y_zero_point=100, isa="exact")


def _must_raise():
    from refquant import kernels, nn  # noqa: F401 - kernels: the package, its modules below
    from refquant.backends import onnx, onnxruntime, pytorch, tflite
    from refquant.backends.tflite import symmetric_weight_quantize as tflite_symmetric_weight_quantize
    from refquant.data import load_npz
    from refquant import passes, ptq
    from refquant.kernels import gemm, softmax
    from refquant.kernels.dynamic import dynamic_output
    from refquant.ptq import debug  # noqa: F401 - ptq.debug below
    from refquant.qmodel import Node, TensorInfo
    x = f32(2, 3)
    return [  # (label, call, argument the message must name)
        ("uint64 zero point wraps to -1", lambda: refquant.make_qparams(0.1, np.uint64(2 ** 64 - 1), "int8"),
         "zero_point"),
        ("Python-int zero point 2**63", lambda: refquant.make_qparams(0.1, 2 ** 63, "int8"), "zero_point"),
        ("zero point outside [qmin, qmax]", lambda: refquant.make_qparams(0.1, 100, "int8", qmin=-5, qmax=5),
         "zero_point"),
        ("float qmin", lambda: refquant.make_qparams(0.1, 0, "int8", qmin=1.5), "qmin"),
        ("TFLite zero point 2**63", lambda: tflite.quantize(x, 0.1, 2 ** 63), "zero_point"),
        ("TFLite uint64 zero point", lambda: tflite.dequantize(i8(3), 0.1, np.uint64(2 ** 64 - 1)), "zero_point"),
        ("kernel zero point 2**63", lambda: gemm.gemm(u8(2, 3), i8(3, 2), a_zero_point=2 ** 63), "a_zero_point"),
        ("softmax table too short", lambda: softmax.softmax_lut(np.array([0, 100], np.int8), np.ones(10, F32)),
         "table"),
        ("NaN weights choose the scale", lambda: tflite_symmetric_weight_quantize(np.array([[np.nan, 1.0]], F32)),
         "w"),
        ("qparams not a QParams", lambda: refquant.quantize(x, 0.1), "qparams"),
        ("empty batch, mean loss", lambda: nn.CrossEntropyLoss()(np.zeros((0, 4), F32), np.zeros(0, np.int64)),
         "logits"),
        ("empty batch, mean MSE", lambda: nn.MSELoss()(np.zeros((0, 4), F32), np.zeros((0, 4), F32)), "output"),
        ("matmul: empty batch validates", lambda: gemm.matmul(np.zeros((0, 2, 3), U8), i8(3, 4), a_zero_point=300),
         "a_zero_point"),
        ("header claims 16 GiB", lambda: load_npz(_npz_with_lying_header(), y_key=None), "path"),
        ("negative block size", lambda: onnx.dequantize_linear(u8(1, 3), np.array([[0.5]], F32),
                                                                    np.array([[1]], U8), axis=1, block_size=-1),
         "block_size"),
        # the faces name their own arguments, not the op's or the kernel's
        ("ONNX zero point 2**63", lambda: onnx.conv_integer(**dict(_conv_args(), x_zero_point=2 ** 63)),
         "x_zero_point"),
        ("0-d dilations", lambda: onnx.conv_integer(**dict(_conv_args(), dilations=np.array(1))), "dilations"),
        ("scale ratio past the fixed-point multiplier", lambda: tflite.conv2d(**dict(TFL_CONV(), x_scale=2.0 ** 63)),
         "x_scale"),
        ("float32 multiplier underflows, matmul names", lambda: onnxruntime.qlinear_matmul(
            **dict(ORT_MM(), a_scale=1e-45, isa="exact")), "a_scale"),
        ("per-channel scales, PyTorch's name", lambda: pytorch.quantize_per_channel(
            x, np.array([np.nan, 0.1, 0.1]), np.zeros(3, np.int64), 1, "qint8"), "scales"),
        ("huge stride, PyTorch's name", lambda: pytorch.conv2d(**dict(_pt_conv_args(), stride=2 ** 40)), "stride"),
        ("int16 LOGISTIC with a nonzero zero point", lambda: tflite.logistic(np.zeros(3, I16), 0.1, 3),
         "x_zero_point"),
        # TFLite's 16x8 mode: the int16 parameters and bias types LiteRT's Prepare refuses (the sweep
        # accepts a result, so a refusal that returned one is caught only here)
        ("int16 MUL with a nonzero zero point", lambda: tflite.mul(**dict(BASELINES["tflite.mul[16x8]"](),
                                                                            a_zero_point=1)), "a_zero_point"),
        ("int16 ADD with a nonzero output zero point", lambda: tflite.add(**dict(BASELINES["tflite.add[16x8]"](),
                                                                                   y_zero_point=-1)), "y_zero_point"),
        ("int16 MEAN with a nonzero zero point", lambda: tflite.mean(**dict(BASELINES["tflite.mean[16x8]"](),
                                                                              x_zero_point=1)), "x_zero_point"),
        ("int16 conv with a nonzero zero point", lambda: tflite.conv2d(**dict(BASELINES["tflite.conv2d[16x8]"](),
                                                                                x_zero_point=1)), "x_zero_point"),
        ("16x8 fully connected with an int8 bias", lambda: tflite.fully_connected(
            **dict(BASELINES["tflite.fully_connected[16x8]"](), b=np.array([1, -2, 3], I8))), "b"),
        ("16x8 depthwise with an int32 bias", lambda: tflite.depthwise_conv2d(
            **dict(BASELINES["tflite.depthwise_conv2d[16x8]"](), b=np.array([1, -2, 3, 4], I32))), "b"),
        ("int16 to int16 requantization with a nonzero zero point", lambda: tflite.requantize(
            **dict(BASELINES["tflite.requantize[16x8]"](), dtype="int16", y_zero_point=1)), "y_zero_point"),
        ("int16 SOFTMAX with a nonzero zero point", lambda: tflite.softmax(
            **dict(BASELINES["tflite.softmax[16x8]"](), x_zero_point=2)), "x_zero_point"),
        ("int16 TANH with an output scale other than 2^-15", lambda: tflite.tanh(
            **dict(BASELINES["tflite.tanh[16x8]"](), y_scale=0.01, y_zero_point=0)), "y_scale"),
        ("an array is not a flag", lambda: refquant.fake_quantize_backward(x, np.ones(x.shape, bool),
                                                                          multiply=np.zeros(0)), "multiply"),
        ("unknown profile", lambda: refquant.get_profile("abc"), "name"),
        # the float-to-integer flows
        ("fractional zero point of a tensor (was truncated to 1)", lambda: TensorInfo("q", "int8", 0.1, 1.5),
         "zero_point"),
        ("a node's inputs as one string (iterated by character)", lambda: Node("q", "quantize", "x", "xq"),
         "inputs"),
        ("a linear node without weights (KeyError when run)", lambda: Node("fc", "linear", ("x",), "y"), "params"),
        ("a pool node without a kernel (KeyError when run)", lambda: Node("p", "max_pool2d", ("x",), "y"), "attrs"),
        ("unknown recipe (took PyTorch's rule)", lambda: ptq.Recipe("mine", "int8"), "name"),
        ("negative BatchNorm variance (NaN weights)", lambda: passes.fold_parameters(
            f32(3, 4), None, None, None, np.zeros(3), -np.ones(3), 1e-5), "var"),
        ("negative channel range (scale 1)", lambda: passes.equalization_scales([1.0, -2.0], [1.0, 1.0]), "range1"),
        ("one label for eight samples (broadcast)", lambda: ptq.debug.accuracy(_flow_model(), FLOW_X(), [0]), "y"),
        ("negative weight scale, dynamic output", lambda: dynamic_output(
            np.ones((1, 2), I32), F32(0.1), np.array([-0.5, 0.5], F32), None, mode="fma"), "w_scale"),
    ]


MUST_RAISE = _must_raise()


@pytest.mark.parametrize("label, call, argument", MUST_RAISE, ids=[c[0] for c in MUST_RAISE])
def test_invalid_input_raises(label, call, argument):
    with bounded_memory():
        with pytest.raises(errors.RefquantError) as info:
            call()
    assert _names_argument(str(info.value), argument), f"{label}: the message does not name {argument}: {info.value}"


def _must_compute():
    from refquant import nn
    from refquant.backends import onnx, onnxruntime, tflite
    from refquant.kernels import conv, requant
    from refquant.kernels.dynamic import row_sums_int16_lanes

    def softmax64(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    big = np.arange(182 * 182, dtype=F32).reshape(1, 1, 182, 182)
    swapped = f32(2, 3).astype(">f4")
    return [  # (label, call, check of the result)
        ("nn.softmax of int8 does not wrap", lambda: nn.softmax(np.array([-128, 127], np.int8)),
         lambda r: np.allclose(r, softmax64(np.array([-128.0, 127.0])))),
        ("NaN float accumulator gives qmin", lambda: requant.requantize(
            np.array([np.nan, 1.0], F32), 0.5, 0, -128, 127, mode="float32_rne"),
         lambda r: r.tolist() == [-128, 0]),
        ("conv2d with no input channel", lambda: conv.conv2d(np.zeros((1, 0, 5, 5), U8), np.zeros((3, 0, 3, 3), I8)),
         lambda r: r.shape == (1, 3, 3, 3) and not r.any()),
        ("MaxPool2d(182) on 182x182", lambda: nn.MaxPool2d(182)(big), lambda r: r.reshape(-1).tolist() == [big.max()]),
        ("block size 2**36 on a (1, 3) tensor", lambda: onnx.dequantize_linear(
            u8(1, 3), np.array([[0.5]], F32), np.array([[1]], U8), axis=1, block_size=2 ** 36),
         lambda r: r.shape == (1, 3)),
        ("byte-swapped x, TFLite", lambda: tflite.quantize(swapped, 0.1, 3),
         lambda r: np.array_equal(r, tflite.quantize(swapped.astype(F32), 0.1, 3))),
        ("byte-swapped x, ONNX Runtime", lambda: onnxruntime.quantize_linear(swapped, np.float32(0.1), np.uint8(3)),
         lambda r: np.array_equal(r, onnxruntime.quantize_linear(swapped.astype(F32), np.float32(0.1), np.uint8(3)))),
        ("byte-swapped x, quantize", lambda: refquant.quantize(swapped, refquant.make_qparams(0.1, 3)),
         lambda r: r.dtype.isnative and np.array_equal(r, refquant.quantize(swapped.astype(F32),
                                                                             refquant.make_qparams(0.1, 3)))),
        ("byte-swapped bias, TFLite", lambda: tflite.conv2d(**dict(TFL_CONV(), b=TFL_CONV()["b"].astype(">i4"))),
         lambda r: np.array_equal(r, tflite.conv2d(**TFL_CONV()))),
        ("byte-swapped B, ONNX", lambda: onnx.qlinear_conv(**dict(ORT_CONV(), B=ORT_CONV()["B"].astype(">i4"))),
         lambda r: np.array_equal(r, onnx.qlinear_conv(**ORT_CONV()))),
        ("row sums of a weight with no row", lambda: row_sums_int16_lanes(np.zeros((0, 20), I8)),
         lambda r: r.shape == (0,) and r.dtype == I32),
    ]


MUST_COMPUTE = _must_compute()
_COMPUTE_XFAIL = {  # label -> where it still fails (files owned elsewhere)
}


@pytest.mark.parametrize("label, call, check", [
    pytest.param(*c, marks=[pytest.mark.xfail(strict=True, reason=_COMPUTE_XFAIL[c[0]])] if c[0] in _COMPUTE_XFAIL
                 else []) for c in MUST_COMPUTE], ids=[c[0] for c in MUST_COMPUTE])
def test_edge_input_computes(label, call, check):
    with bounded_memory():
        result = call()
    assert check(result), f"{label}: got {result!r}"
