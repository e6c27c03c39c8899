"""Where single and double rounding differ (Learn 4, §4, eqs. (11)-(12)), and the figure that shows it.

The numbers are checked on every run. The figure is drawn when matplotlib is installed:
into ``$REFQUANT_FIGURE_DIR`` when that is set (regenerate the committed figure with
``REFQUANT_FIGURE_DIR=docs/assets python docs/examples/requant_histogram.py``), else into a
temporary directory that is deleted afterwards.
"""
import os
import tempfile

import numpy as np

from refquant.fixedpoint import multiply_by_quantized_multiplier
from refquant.fixedpoint_multiplier import quantize_multiplier_array

rng = np.random.default_rng(25087)
n = 160_000
m = 2.0 ** rng.uniform(-9, -1, n)                       # real multipliers, right shifts r = 1..8
x = rng.integers(-(2**20), 2**20, n, dtype=np.int64)    # accumulators
q, shift = quantize_multiplier_array(m)                 # (n,) int32 each
double = multiply_by_quantized_multiplier(x, q, shift).astype(np.int64)
single = multiply_by_quantized_multiplier(x, q, shift, variant="single").astype(np.int64)
r = -shift.astype(np.int64)                             # the right shift of eq. (9)

# 1. They never differ by more than one.
diff = double != single
assert set(np.unique(double - single).tolist()) <= {-1, 0, 1}

# 2. Where: d = distance of the exact value v = x q / 2^(31+r) from its nearest half-integer,
#    in units of the first rounding's step 2^-r, computed exactly in integers (eq. (11)).
prod = x * q.astype(np.int64)                           # |x q| < 2^51: exact in int64
d_scaled = prod - (2 * (prod >> (31 + r)) + 1) * (np.int64(1) << (30 + r))
d = d_scaled / 2.0**31                                  # for the plot only
window = np.where(x > 0, (d_scaled >= -(2**30)) & (d_scaled < 0), (d_scaled >= 0) & (d_scaled < 2**30))
np.testing.assert_array_equal(diff, window & (x != 0))  # they differ exactly inside that window

# 3. How often: the window is 2^-(r+1) wide per unit, so about 2^-(r+1) of all values (eq. (12)).
print(" r  samples  differ  measured  2^-(r+1)")
rates = []
for k in range(1, 9):
    sel = r == k
    count, total, p = int(diff[sel].sum()), int(sel.sum()), 2.0 ** -(k + 1)
    rates.append(count / total)
    print(f"{k:2d}  {total:7d}  {count:6d}  {count / total:8.4f}  {p:8.4f}")
    assert abs(count - total * p) <= 5 * np.sqrt(total * p) + 1
print(f"overall: {diff.mean():.2%} of {n} products differ")

# 4. The figure.
try:
    import matplotlib
except ImportError:
    matplotlib = None
    print("matplotlib is not installed: no figure")
if matplotlib is not None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    ks = np.arange(1, 9)
    ax1.bar(ks, rates, color="#5c8fbf", label="measured")
    ax1.plot(ks, 2.0 ** -(ks + 1), "k.--", label=r"$2^{-(r+1)}$")
    ax1.set_yscale("log")
    ax1.set_xlabel("right shift r")
    ax1.set_ylabel("fraction where double ≠ single")
    ax1.set_title("how often")
    ax1.legend()
    bins = np.linspace(-1, 1, 33)
    ax2.hist([d[diff & (x > 0)], d[diff & (x < 0)]], bins=bins, stacked=True,
             color=["#d9822b", "#5c8fbf"], label=["x > 0: double rounds up", "x < 0: double rounds down"])
    ax2.axvline(0, color="k", lw=0.8)
    ax2.set_xlabel(r"distance of $x\cdot M$ from the nearest half-integer, in units of $2^{-r}$")
    ax2.set_ylabel("count")
    ax2.set_title("where")
    ax2.set_ylim(0, 1.45 * ax2.get_ylim()[1])
    ax2.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    out_dir = os.environ.get("REFQUANT_FIGURE_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(out_dir or tmp, "single_vs_double_rounding.png")
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        assert os.path.getsize(path) > 1000
        print("figure written:", path if out_dir else "(temporary directory)")
