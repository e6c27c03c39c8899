"""TFMOT's PolynomialDecay and Zhu & Gupta's AGP, step by step (Learn 17, §1-2)."""
import numpy as np

from refquant import prune

# 1. PolynomialDecay(0 -> 0.8, steps 0 to 1000, power 3, every 100 steps): eq. (2) at each step TFMOT asks.
decay = prune.PolynomialDecay(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=1000, power=3,
                              frequency=100)
print("| step t | q | (1 - q)^3 | sparsity s(t) | masks updated? |")
print("|---:|---:|---:|---:|---|")
table = {}
for t in (1, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100):
    should, s = decay(t)
    q = min(1.0, max(0.0, t / 1000))
    table[t] = (should, float(s))
    print(f"| {t} | {q:.2f} | {(1 - q) ** 3:.3f} | {float(s):.4f} | {'yes' if should else 'no'} |")
    assert isinstance(s, np.float32) and abs(float(s) - (0.8 - 0.8 * (1 - q) ** 3)) < 1e-6   # eq. (2), float32
assert [t for t in range(1, 1201) if decay.should_prune(t)] == list(range(100, 1001, 100))  # step 0 never comes
assert table[100][1] > 0.21 and table[500][1] > 0.69 and table[1000][1] == np.float32(0.8)   # fast, then slow
assert not table[1100][0] and table[1100][1] == np.float32(0.8)       # after end_step: no more updates

# 2. AGP (t0 = 0, n = 10 pruning steps, every dt = 100) is the same curve in float64 at the pruning steps.
print("| pruning step | t | AGP s_t | PolynomialDecay (float32) | pruned since the last step |")
print("|---:|---:|---:|---:|---:|")
previous = 0.0
for i in range(11):
    t = 100 * i
    s_agp = prune.agp_sparsity(t, 0.0, 0.8, 0, 10, 100)
    s_tfmot = float(decay.sparsity(t))
    print(f"| {i} | {t} | {s_agp:.4f} | {s_tfmot:.4f} | {s_agp - previous:+.4f} |")
    assert abs(s_agp - s_tfmot) < 1e-6
    previous = s_agp
assert prune.agp_sparsity(100, 0.0, 0.8, 0, 10, 100) == 0.8 - 0.8 * 0.9 ** 3   # 0.2168: a quarter of it at once

# 3. begin_step > 0: train dense first. 2,000 steps, pruning from step 500 to 1,500 every 250.
late = prune.PolynomialDecay(0.0, 0.9, begin_step=500, end_step=1500, power=3, frequency=250)
steps = [(t, float(late.sparsity(t))) for t in range(1, 2001) if late.should_prune(t)]
print("begin_step 500:", [(t, round(s, 4)) for t, s in steps])
assert [t for t, _ in steps] == [500, 750, 1000, 1250, 1500] and steps[0][1] == 0.0   # the first update prunes 0
