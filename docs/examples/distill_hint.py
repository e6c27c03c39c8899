"""FitNets: a hint on the student's last feature map through a learned 1x1 adapter (Learn 18, §5)."""
import numpy as np

from refquant import models, nn
from refquant.data import load_digits
from refquant.distill import hint_distill

x, y = load_digits("train")
teacher = models.load_reference_model("cnn")                        # its layer "9": ReLU, (N, 32, 4, 4)
g = np.random.default_rng(0)


def block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=g), nn.BatchNorm2d(c_out), nn.ReLU()]


# The cnn's architecture at a quarter of its channels: layer "9" is a ReLU with (N, 8, 4, 4).
student = nn.Sequential(*block(1, 4), *block(4, 8), nn.MaxPool2d(2), *block(8, 8), nn.GlobalAvgPool2d(),
                        nn.Linear(8, 10, rng=g))
print(f"student {student.num_parameters():,} parameters, teacher {teacher.num_parameters():,}")
hist, adapter = hint_distill(student, teacher, x, y, student_layer="9", teacher_layer="9", hint_weight=0.1,
                             temperature=2.0, alpha=0.9, epochs=2, batch_size=32, seed=0)
print("adapter:", adapter)
print("loss per epoch (KD + 0.1 * hint):", [round(v, 3) for v in hist.train_loss])

assert isinstance(adapter, nn.Conv2d) and adapter.weight.value.shape == (32, 8, 1, 1)   # 8 -> 32 channels
assert hist.train_loss[1] < hist.train_loss[0]
assert "backward" not in vars(student[9])      # the hint's gradient hook is gone: the student runs alone
assert nn.predict(student, x[:2]).shape == (2, 10)
