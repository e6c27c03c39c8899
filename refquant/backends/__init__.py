"""The pinned backend faces: each backend's own op names and arguments, bit for bit.

* :mod:`refquant.backends.onnx` — the ONNX operator specification.
* :mod:`refquant.backends.onnxruntime` — ONNX Runtime's CPU execution provider.
* :mod:`refquant.backends.tflite` — TFLite/LiteRT builtin int8 ops.
* :mod:`refquant.backends.pytorch` — PyTorch quantized CPU ops.

Import the submodule you need: ``from refquant.backends import onnx``.
"""

__all__ = ["onnx", "onnxruntime", "tflite", "pytorch"]
