"""A 1,210-parameter student from labels, from the cnn teacher's soft targets, and from soft targets alone (Learn 18, §4)."""
import numpy as np

from refquant import models, nn
from refquant.data import load_digits
from refquant.distill import distill

x, y = load_digits("train")
x_test, y_test = load_digits("test")
teacher = models.load_reference_model("cnn")                       # 14,458 parameters, never updated
teacher_says = nn.predict(teacher, x_test).argmax(axis=1)
before = {k: v.copy() for k, v in teacher.state_dict().items()}


def student(seed=0):
    g = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16, rng=g), nn.ReLU(), nn.Linear(16, 10, rng=g))


runs = {}
for name, alpha in (("labels only", None), ("distilled, alpha=0.9", 0.9), ("soft targets only", 1.0)):
    s = student()                                                   # same initial weights and batch order
    common = dict(epochs=10, batch_size=32, optimizer=nn.Adam(s, lr=3e-3), seed=0)
    if alpha is None:
        nn.fit(s, x, y, progress=False, **common)
    else:                                                           # alpha = 1: the labels are never read
        distill(s, teacher, x, y, temperature=2.0, alpha=alpha, **common)
    pred = nn.predict(s, x_test).argmax(axis=1)
    runs[name] = (float(np.mean(pred == y_test)), float(np.mean(pred == teacher_says)))
    print(f"{name:22s} test top-1 {runs[name][0]:.4f}, agrees with the teacher on {runs[name][1]:.4f}")

assert all(top1 > 0.9 for top1, _ in runs.values())                # every student learns the digits
assert runs["soft targets only"][1] > 0.9                           # ... even one that never saw a label
for k, v in teacher.state_dict().items():
    np.testing.assert_array_equal(v, before[k])                     # the teacher is not trained
