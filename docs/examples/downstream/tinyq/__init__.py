"""tinyq: a hand-written int8 matmul (ONNX QLinearMatMul, int8 x int8 -> int8) in plain NumPy."""
