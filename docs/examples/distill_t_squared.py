"""Why the T^2 factor: the soft-target gradient's norm across T, with and without it (Learn 18, §3)."""
import numpy as np

from refquant import models, nn
from refquant.data import load_digits
from refquant.distill import distillation_loss, teacher_logits

x, y = load_digits("train")                                                # 1078 images
z_t = teacher_logits(models.load_reference_model("cnn"), x).astype(np.float64)
students = {"untrained student": models.build_mlp(rng=0),                  # logits near 0: the start of training
            "trained mlp": models.load_reference_model("mlp")}             # confident logits of its own
z_s = {name: nn.predict(m, x).astype(np.float64) for name, m in students.items()}


def soft_grad_norm(zs, t):
    """||dL/dz_s|| of the soft term alone (alpha = 1), eq. (3): the loss carries T^2."""
    return float(np.linalg.norm(distillation_loss(zs, z_t, y, temperature=t, alpha=1.0)[1]))


def centred(z):
    return z - z.mean(axis=1, keepdims=True)


temps = (1.0, 2.0, 4.0, 8.0, 16.0, 64.0)
print("| T | " + " | ".join(f"{n}: with T^2 | without" for n in z_s) + " |")
print("|---:|" + "---:|---:|" * len(z_s))
table = {n: [soft_grad_norm(zs, t) for t in temps] for n, zs in z_s.items()}
for i, t in enumerate(temps):
    print(f"| {t:g} | " + " | ".join(f"{table[n][i]:.4f} | {table[n][i] / t**2:.6f}" for n in z_s) + " |")
n, k = z_t.shape
limit = {name: float(np.linalg.norm((centred(zs) - centred(z_t)) / (n * k))) for name, zs in z_s.items()}  # eq. (4)
hard = {name: float(np.linalg.norm(distillation_loss(zs, z_t, y, alpha=0.0)[1])) for name, zs in z_s.items()}
print("| limit, eq. (4) | " + " | ".join(f"{limit[name]:.4f} | 0" for name in z_s) + " |")
print("| hard labels (alpha = 0) | " + " | ".join(f"{hard[name]:.4f} | " for name in z_s) + " |")

for name in z_s:
    with_t2, without = np.array(table[name]), np.array(table[name]) / np.array(temps) ** 2
    assert abs(with_t2[-1] / limit[name] - 1) < 0.05            # with T^2: T -> infinity gives eq. (4), a constant
    assert without.max() / without[-1] > 100                    # without: 1/T^2 takes it to nothing
assert max(table["untrained student"]) / min(table["untrained student"]) < 2   # within 2x over T = 1 ... 64
