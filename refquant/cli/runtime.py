"""``refquant compare``'s runtime columns: the profile's own runtime runs the same integer model.

Under the ``onnxruntime`` profile and the three TFLite profiles, each fully integer row (static
int8, QAT int8) is written to a model file by :mod:`refquant.interop` (``.onnx``, QDQ format;
``.tflite``) and run by the runtime the profile matches:

| profile | runtime | how it runs the file |
|---|---|---|
| ``onnxruntime`` | ONNX Runtime | CPU execution provider, default graph optimization, ``intra_op_num_threads=1`` |
| ``tflite_xnnpack`` | LiteRT | the default interpreter (the XNNPACK delegate), ``num_threads=1`` |
| ``tflite_reference`` | LiteRT | the ``BUILTIN_REF`` op resolver (reference kernels), ``num_threads=1`` |
| ``tflite_optimized`` | LiteRT | ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (builtin optimized kernels), ``num_threads=1`` |

Two numbers come back: the runtime's batch-1 latency, measured by
:func:`refquant.evaluate.latency` exactly as refquant's own (first call apart, warm-up, the
median of ``--repeats`` calls), and whether its outputs on every scored sample equal
``qmodel.run``'s bit for bit (float32 bits, ``0.0`` and ``-0.0`` told apart). The runtimes are
optional packages, imported here on first use only: without them the columns are left out.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass

import numpy as np

__all__ = ["Runtime", "RUNTIMES", "probe", "measure"]


@dataclass(frozen=True)
class Runtime:
    """The runtime a profile matches, and how ``refquant compare`` runs it."""
    profile: str    # the refquant profile
    name: str       # "ONNX Runtime", "LiteRT"
    short: str      # the column titles' prefix
    install: str    # the pip command that brings it (with the exporter's own dependency)
    settings: str   # how the file is run, for the footer and the JSON
    resolver: str | None = None  # LiteRT's OpResolverType name (None: the default interpreter)


_ORT = "CPU execution provider, default graph optimization (ORT_ENABLE_ALL), intra_op_num_threads=1"
RUNTIMES = {r.profile: r for r in (
    Runtime("onnxruntime", "ONNX Runtime", "ORT", "pip install onnxruntime onnx", _ORT),
    Runtime("tflite_xnnpack", "LiteRT", "LiteRT", "pip install ai-edge-litert flatbuffers",
            "the default interpreter (XNNPACK delegate), num_threads=1"),
    Runtime("tflite_reference", "LiteRT", "LiteRT", "pip install ai-edge-litert flatbuffers",
            "op resolver BUILTIN_REF (reference kernels), num_threads=1", "BUILTIN_REF"),
    Runtime("tflite_optimized", "LiteRT", "LiteRT", "pip install ai-edge-litert flatbuffers",
            "op resolver BUILTIN_WITHOUT_DEFAULT_DELEGATES (builtin optimized kernels), num_threads=1",
            "BUILTIN_WITHOUT_DEFAULT_DELEGATES"),
)}


def _version(runtime: Runtime) -> str:
    """The runtime's version; ImportError when it (or the exporter's dependency) is missing."""
    if runtime.profile == "onnxruntime":
        import onnx  # noqa: F401  (the exporter's)
        import onnxruntime
        return onnxruntime.__version__
    import ai_edge_litert
    import flatbuffers  # noqa: F401  (the exporter's)
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    return getattr(ai_edge_litert, "__version__", "unknown")


def probe(profile: str) -> dict | None:
    """The JSON's ``runtime`` object for ``profile`` (None: no runtime column for it).

    ``available`` says whether the runtime imported; when not, ``note`` says how to get it."""
    runtime = RUNTIMES.get(profile)
    if runtime is None:
        return None
    out = {"name": runtime.name, "short": runtime.short, "settings": runtime.settings, "install": runtime.install,
           "format": "onnx (QDQ)" if profile == "onnxruntime" else "tflite"}
    try:
        out.update(available=True, version=_version(runtime), note=None)
    except ImportError as exc:
        out.update(available=False, version=None,
                   note=f"{runtime.name} is not installed ({exc.name or exc}): `{runtime.install}` adds its columns")
    return out


@contextlib.contextmanager
def _quiet_fd2():
    """fd 2 silenced: the XNNPACK delegate prints an INFO line from C++ when it is created."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _ort_runner(path: str):
    """``(run(x) -> y, details)``: an ONNX Runtime session on the file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x):
        return sess.run(None, {name: x})[0]
    return run, {}


def _litert_runner(path: str, runtime: Runtime):
    """``(run(x) -> y, details)``: a LiteRT interpreter on the file, resized to each new batch size."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {} if runtime.resolver is None else {"experimental_op_resolver_type": getattr(OpResolverType,
                                                                                        runtime.resolver)}
    with _quiet_fd2():
        interp = Interpreter(model_path=path, num_threads=1, **kw)
        interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    shape = [tuple(inp["shape"])]

    def run(x):
        if x.shape != shape[0]:
            interp.resize_tensor_input(inp["index"], x.shape)
            interp.allocate_tensors()
            shape[0] = x.shape
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out["index"])
    delegated = any(d.get("op_name") == "DELEGATE" for d in interp._get_ops_details())
    return run, {"delegated": delegated}


def measure(profile: str, qmodel, x: np.ndarray, repeats: int) -> dict:
    """The row's runtime measurement: export ``qmodel``, run the file, time it and compare its outputs.

    Returns ``{"format", "file_bytes", "latency": Latency.as_dict(), "compared", "mismatches",
    "bit_exact"}`` (LiteRT adds ``delegated``: whether XNNPACK took the graph). Raises the
    exporter's RefquantError when the model cannot be written; a runtime's own error propagates."""
    from ..evaluate import latency
    from ..interop import onnx as onnx_export
    from ..interop import tflite as tflite_export

    runtime = RUNTIMES[profile]
    x = np.ascontiguousarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="refquant-compare-") as tmp:
        if profile == "onnxruntime":
            path = os.path.join(tmp, "model.onnx")
            onnx_export.export(qmodel, path, format="qdq", input_shape=x.shape[1:])
            run, details = _ort_runner(path)
        else:
            path = os.path.join(tmp, "model.tflite")
            tflite_export.export(qmodel, path, input_shape=x.shape[1:])
            run, details = _litert_runner(path, runtime)
        size = os.path.getsize(path)
        want = np.ascontiguousarray(qmodel.run(x), dtype=np.float32)
        got = np.array(run(x), copy=True)
        if got.shape == want.shape and got.dtype == np.float32:
            mismatches = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
        else:
            mismatches = int(want.size)
        lat = latency(run, x, repeats=repeats)
    return {"format": "onnx-qdq" if profile == "onnxruntime" else "tflite", "file_bytes": size,
            "latency": lat.as_dict(), "compared": int(want.size), "mismatches": mismatches,
            "bit_exact": mismatches == 0, **details}
