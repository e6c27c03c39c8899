"""Check the u8 x s8 behaviour of the ONNX Runtime on this machine (how-to, §3); skipped without ORT."""
import numpy as np

from refquant.cpu import detect_isa
from refquant.kernels.gemm import gemm_reference

try:
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError:
    ort = None


def matmul_integer(a, b, za, zb):
    """One MatMulInteger node (uint8 a; int8 or uint8 b), graph optimizations off, one thread."""
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    tb = TensorProto.INT8 if b.dtype == np.int8 else TensorProto.UINT8
    inputs = [helper.make_tensor_value_info(n, t, None) for n, t in
              (("a", TensorProto.UINT8), ("b", tb), ("za", TensorProto.UINT8), ("zb", tb))]
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.INT32, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"a": a, "b": b, "za": np.array(za, np.uint8), "zb": np.array(zb, b.dtype)})[0]


rng = np.random.default_rng(25)
a = rng.integers(0, 256, (16, 64)).astype(np.uint8)
b_full = rng.integers(-128, 128, (64, 8)).astype(np.int8)
b_7bit = rng.integers(-64, 64, (64, 8)).astype(np.int8)
b_u8 = (b_full.astype(np.int16) + 128).astype(np.uint8)     # the same real weights, zero point 128
isa = detect_isa()
if ort is None:
    print("onnxruntime is not installed: nothing to check")
else:
    exact_full = gemm_reference(a, b_full, 128, 0)
    avx2_full = gemm_reference(a, b_full, 128, 0, acc_model="pairwise_sat16_u8s8")
    got_full = matmul_integer(a, b_full, 128, 0)
    got_7bit = matmul_integer(a, b_7bit, 128, 0)
    print(f"CPU: {isa}; ONNX Runtime {ort.__version__}")
    print("full-range weights: ORT == exact:", np.array_equal(got_full, exact_full),
          "  ORT == AVX2 pair model:", np.array_equal(got_full, avx2_full))
    print("weights in [-64, 63]: ORT == exact:", np.array_equal(got_7bit, gemm_reference(a, b_7bit, 128, 0)))
    got_u8 = matmul_integer(a, b_u8, 128, 128)
    print("uint8 weights:        ORT == exact:", np.array_equal(got_u8, exact_full))
    np.testing.assert_array_equal(got_7bit, gemm_reference(a, b_7bit, 128, 0))   # no pair can saturate
    if isa == "avx2":                       # what was measured on an AVX2 CPU without VNNI
        np.testing.assert_array_equal(got_u8, exact_full)
        np.testing.assert_array_equal(got_full, avx2_full)
        assert not np.array_equal(got_full, exact_full)
assert isa in ("avx2", "vnni", "exact")
