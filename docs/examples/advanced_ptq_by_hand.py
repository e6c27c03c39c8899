"""Two weights, one grid, three codes: RTN, bias correction, GPTQ and AdaRound by hand (Learn 20, §1-4)."""
import numpy as np

from refquant.ptq.advanced import LayerMoments, WeightGrid, adaround_codes, gptq_codes

# One output, two inputs that are always equal (x_1 = x_2 = t, t in {0.5, 1, 1.5}), weights 0.45 and
# 0.35 on a grid of step s = 1 (codes -7..7, zero point 0). The output is y = 0.8 t.
w = np.array([[0.45, 0.35]])
t = np.array([0.5, 1.0, 1.5])
cols = np.vstack([t, t])                                          # (K, M) = (2, 3) input columns
moments = LayerMoments.from_columns(cols)                         # E[x x^T] = 7/6 [[1, 1], [1, 1]], E[x] = (1, 1)
grid = WeightGrid(np.ones((1, 2), np.float32), np.zeros((1, 2), np.int64), -7, 7)


def output_error(q):
    """R of eq. (2): E[(q x - w x)^2] on the three inputs (the grid step is 1, so w_hat = q)."""
    return moments.output_error(q, w)


rtn = grid.rtn(w)                                                 # each weight alone: 0.45 -> 0, 0.35 -> 0
# Bias correction (eq. 3): the rounding error e = q - w = (-0.45, -0.35) shifts the output mean by
# e E[x] = -0.8; adding 0.8 to the bias leaves only the error's variance, 0.64 Var(t) = 0.64 / 6.
shift = float(((rtn - w) @ moments.mean_q)[0])
corrected = float(np.mean(((rtn - w) @ cols - shift) ** 2))              # the error once the bias absorbs the mean
gptq = gptq_codes(w, 2 * moments.xx, grid)                        # 0.45 -> 0, its error pushed onto w_2: 0.8 -> 1
ada = adaround_codes(w, moments, grid, iters=500)                 # learns: round w_1 up, w_2 down

rows = {"RTN": (rtn, output_error(rtn)), "RTN + bias correction": (rtn, corrected),
        "GPTQ": (gptq, output_error(gptq)), "AdaRound": (ada, output_error(ada))}
for name, (q, err) in rows.items():
    print(f"{name:22s} codes {q[0].tolist()}  output error E[(y_hat - y)^2] = {err:.4f}")
print(f"bias correction adds {-shift:.2f} to the bias")

np.testing.assert_array_equal(rtn, [[0, 0]])
assert abs(shift + 0.8) < 1e-12 and abs(output_error(rtn) - 0.64 * 7 / 6) < 1e-12
assert abs(corrected - 0.64 * np.var(t)) < 1e-12
np.testing.assert_array_equal(gptq, [[0, 1]])
np.testing.assert_array_equal(ada, [[1, 0]])                      # another code, the same error: 0.2 t
assert abs(output_error(gptq) - 0.04 * 7 / 6) < 1e-12 and abs(output_error(ada) - 0.04 * 7 / 6) < 1e-12

# Where AdaRound cannot help: weights (0.4, 0.4) get the same gradient at every step, so both round
# the same way (down); GPTQ visits them in order and rounds the second up.
tie = np.array([[0.4, 0.4]])
print("weights (0.4, 0.4): AdaRound", adaround_codes(tie, moments, grid, iters=500)[0].tolist(),
      "GPTQ", gptq_codes(tie, 2 * moments.xx, grid)[0].tolist())
np.testing.assert_array_equal(adaround_codes(tie, moments, grid, iters=500), [[0, 0]])
np.testing.assert_array_equal(gptq_codes(tie, 2 * moments.xx, grid), [[0, 1]])
