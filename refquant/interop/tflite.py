"""``.tflite`` models: run a fully integer LiteRT model exactly as LiteRT runs it, and export
refquant's integer models to ``.tflite``.

:func:`import_quantized` reads a fully integer ``.tflite`` (int8, or TFLite's 16x8 mode: int16
activations with int8 weights) into a :class:`~refquant.qmodel.QuantizedModel` whose nodes are
the operators of the file, NHWC as LiteRT holds tensors, each with the tensor parameters the
flatbuffer stores. The model runs under the profile of the chosen LiteRT kernel set:

| ``kernel`` | LiteRT op resolver | profile |
|---|---|---|
| ``"reference"`` | ``BUILTIN_REF`` | ``tflite_reference`` |
| ``"xnnpack"`` | ``BUILTIN`` (the default: the XNNPACK delegate takes what it supports, the builtin kernels the rest) | ``tflite_xnnpack`` |
| ``"optimized"`` | ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` | ``tflite_optimized`` |

so each operator computes what :mod:`refquant.backends.tflite` computes for it (the same ops of
:mod:`refquant.ops`), and ``run`` returns what LiteRT's interpreter returns: float32 for
a model with float input and output, integer codes for an integer-input model, a dict name →
array for several inputs or outputs. Operators read: CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, TRANSPOSE, SOFTMAX, LOGISTIC,
TANH, CONCATENATION, PAD, QUANTIZE (float to integer and integer to integer), DEQUANTIZE, and the
SHAPE, STRIDED_SLICE, PACK a Keras ``Flatten`` writes (resolved to a reshape with a free batch
dimension). The batch (axis 0) of an input may differ from the file's, as after LiteRT's
``resize_tensor_input``.

:func:`export` writes a model made with a TFLite profile (``tflite_reference``,
``tflite_xnnpack`` or ``tflite_optimized``) as a ``.tflite`` that LiteRT runs to the same
result, bit for bit, on its reference kernels and with XNNPACK.

Both need the optional packages ``ai-edge-litert`` (its flatbuffer schema) and ``flatbuffers``,
imported on first use; no TensorFlow.

Measured against LiteRT 2.3.0 (x86-64, AVX-512 VNNI host) on the TFLite converter's int8 and
16x8 models of refquant's bundled models and on multi-operator graphs.

Added in 0.1.0.
"""

from __future__ import annotations

import os

from .. import _validate as V
from ..backends.tflite import PROFILE_OF_KERNEL
from ..errors import QuantizationTypeError, QuantizationValueError
from ..qmodel import QuantizedModel
from ._tflite_export import export_model
from ._tflite_import import SUPPORTED_OPS, build_model
from ._tflite_read import read_model

__all__ = ["import_quantized", "export", "SUPPORTED_OPS", "KERNELS"]

#: The ``kernel`` choices (LiteRT kernel sets).
KERNELS = tuple(PROFILE_OF_KERNEL)
#: The per-sample input shape :func:`export` assumes when none is given: refquant's bundled digits models.
DIGITS_INPUT_SHAPE = (1, 8, 8)


def _content(path_or_bytes) -> bytes:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    if isinstance(path_or_bytes, (str, os.PathLike)):
        name = os.fspath(path_or_bytes)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"path_or_bytes must name an existing .tflite file, got {name!r}")
        with open(name, "rb") as f:
            return f.read()
    raise QuantizationTypeError(f"path_or_bytes must be a file name (str or os.PathLike) or the model's bytes, "
                                f"got {V.describe(path_or_bytes)}")


def import_quantized(path_or_bytes, *, kernel: str = "reference") -> QuantizedModel:
    """Read a fully integer ``.tflite`` model, to run as LiteRT runs it with the kernel set ``kernel``.

    Args:
        path_or_bytes: A ``.tflite`` file name, or its contents (``bytes``).
        kernel: ``"reference"``, ``"xnnpack"`` or ``"optimized"`` (module table).

    Returns:
        A :class:`~refquant.qmodel.QuantizedModel` with the file's operators as nodes, profile
        ``tflite_<kernel>``; ``run(x)`` equals LiteRT's interpreter output ``==``.

    Raises:
        FormatVersionError: Not a ``.tflite`` flatbuffer (wrong identifier, truncated, corrupt).
        UnsupportedError: An operator not read (the message lists the ones that are), float or
            dynamic-range weights, per-channel activations, a dynamic shape that cannot be
            resolved at import, or the optional packages missing (named with the install command).
        QuantizationValueError, QuantizationTypeError: Bad arguments (named).
        FileNotFoundError: ``path_or_bytes`` names no file.

    Example:
        >>> from refquant.interop import tflite
        >>> qm = tflite.import_quantized("model.tflite", kernel="xnnpack")  # doctest: +SKIP
        >>> y = qm.run(x)  # doctest: +SKIP
    """
    kernel = V.as_choice(kernel, "kernel", KERNELS)
    model = read_model(_content(path_or_bytes))
    return build_model(model, PROFILE_OF_KERNEL[kernel], {"source": "tflite", "kernel": kernel})


def export(qmodel, path, *, input_shape=None) -> None:
    """Write ``qmodel`` as a ``.tflite`` file that LiteRT runs to ``qmodel.run``'s result, bit for bit.

    The model must be made with a TFLite profile (``tflite_reference``, ``tflite_xnnpack``,
    ``tflite_optimized``), e.g. by ``refquant.ptq.quantize_static(model, x, profile="tflite_reference")``
    (int8, or int16 activations with ``int16_layers="all"``). Layers become CONV_2D,
    DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MUL, pools, MEAN, RESHAPE, ...; NCHW tensors are
    written NHWC (transposes are exact), the input keeps the model's layout through a leading
    TRANSPOSE. The file is written to a temporary name beside ``path`` and renamed, so a failure
    leaves nothing at ``path``.

    Args:
        qmodel: A :class:`~refquant.qmodel.QuantizedModel` with a TFLite profile.
        path: The ``.tflite`` file to write (str or os.PathLike).
        input_shape: The shape of one sample of the input, without the batch (``(1, 8, 8)`` for
            refquant's bundled digits models): LiteRT allocates the input tensor with it (the
            batch stays free). ``None``: ``qmodel.metadata["input_shape"]`` if the model records
            it, else ``(1, 8, 8)``, the bundled models' input.

    Raises:
        QuantizationValueError: A model made with another profile, or a node LiteRT cannot express.
        UnsupportedError: A node op ``export`` does not write (named), or missing optional packages.
    """
    if not isinstance(qmodel, QuantizedModel):
        raise QuantizationTypeError(f"qmodel must be a QuantizedModel, got {V.describe(qmodel)}")
    if qmodel.profile not in PROFILE_OF_KERNEL.values():
        raise QuantizationValueError(f"qmodel.profile must be one of {sorted(PROFILE_OF_KERNEL.values())} to be "
                                     f"written as .tflite (another profile's arithmetic is not LiteRT's), got "
                                     f"{qmodel.profile!r}")
    if input_shape is None:
        input_shape = qmodel.metadata.get("input_shape", DIGITS_INPUT_SHAPE)
    shape = V.as_int_sequence(input_shape, "input_shape", minimum=1)
    export_model(qmodel, path, tuple(shape))
