"""Whole models with hypothesis (how-to "Use refquant as the golden reference", §5): fuzz a runtime
against refquant. ``small_models(quantized=True)`` draws a small float model (MLP or CNN: strides,
padding, depthwise, pooling, ReLU/ReLU6), quantizes it with ``refquant.ptq.quantize_static`` under the
profile, and returns it with its input batch. Here the runtime is LiteRT 2.3 (``ai-edge-litert``)
running each model exported to ``.tflite``; put your runtime in its place."""
import os
import tempfile

from ai_edge_litert.interpreter import Interpreter, OpResolverType
from hypothesis import HealthCheck, given, settings

from refquant.interop import tflite
from refquant.testing import assert_bit_exact
from refquant.testing.strategies import small_models

tmp = tempfile.TemporaryDirectory()
seen = []


def litert_run(path, x):
    """The runtime under test: LiteRT's reference kernels (BUILTIN_REF), batch resized to x's."""
    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], x.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(m=small_models(quantized=True, profile="tflite_reference"))
def test_litert_runs_drawn_models_as_refquant_does(m):
    path = os.path.join(tmp.name, "m.tflite")
    tflite.export(m.model, path, input_shape=m.x.shape[1:])
    assert_bit_exact(litert_run(path, m.x), m.model.run(m.x))       # float32 outputs, by bits
    seen.append(len(m.model.nodes))


if __name__ == "__main__":
    test_litert_runs_drawn_models_as_refquant_does()
    tmp.cleanup()
    print(f"LiteRT (reference kernels) == refquant on {len(seen)} drawn models of {min(seen)} to {max(seen)} nodes")
    assert len(seen) == 25
