"""Test-support harness: run the REAL backends on one-op models.

Conformance tests of refquant's faces compare their results with ``==`` against:

* :mod:`support.tflite_builder`: one-op TFLite flatbuffers built in memory (no TensorFlow)
  and run by LiteRT with the ``"ref"``, ``"builtin"`` or ``"xnnpack"`` op resolver;
* :mod:`support.onnx_runner`: one-node ONNX models run on ONNX Runtime's CPU EP
  (``ORT_DISABLE_ALL``, one thread) or on ``onnx.reference.ReferenceEvaluator``;
* :mod:`support.torch_runner`: the PyTorch quantized-engine context manager;
* :mod:`support.edge_values`: the one deterministic edge-value generator;
* :mod:`support.exact_oracle`: exact ``fractions.Fraction`` rounding and quantization oracles
  (NumPy only, no backend);
* :mod:`support.torch_models`: torch twins of the bundled models, quantized by torch's own
  eager-mode flow (model-level conformance);
* :mod:`support.onnx_models`: the bundled mlp written as ONNX by hand, and ONNX Runtime's
  ``quantize_static`` on it;
* :mod:`support.node_faces`: one integer-model node run through the backend face of its profile
  (layouts converted).

The submodules import their backend at import time, so a test imports them only after
``pytest.importorskip`` (e.g. ``pytest.importorskip("onnxruntime")``). ``tests/`` is on
``sys.path`` (pyproject ``[tool.pytest.ini_options] pythonpath``), so write
``from support import onnx_runner``.
"""
