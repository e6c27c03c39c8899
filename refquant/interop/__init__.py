"""Model files: run quantized ONNX and ``.tflite`` models exactly as their runtimes do, and export
refquant's integer models to both.

* :mod:`refquant.interop.tflite` — ``import_quantized`` (a fully integer ``.tflite``, run as LiteRT
  runs it with a kernel set) and ``export`` (needs ``ai-edge-litert`` and ``flatbuffers``).
* :mod:`refquant.interop.onnx` — ``import_quantized`` (a QDQ or QOperator model, e.g. written by
  ONNX Runtime's ``quantize_static``, run as ONNX Runtime's CPU execution provider runs it),
  ``import_float`` (a float ONNX model as a :mod:`refquant.nn` model) and ``export`` (QDQ or
  QOperator) of a model made with the ``onnxruntime`` profile, which ONNX Runtime runs to the same
  result bit for bit (needs ``onnx``).

The optional packages are imported when a function needs them, with a clear message when they are
missing; ``import refquant.interop`` itself needs nothing beyond refquant.
"""

__all__ = ["onnx", "tflite"]
