"""``refquant golden`` on the command line (how-to "Use refquant as the golden reference", §4): the
cases of one face op under one profile, or of a model file, each a versioned .npz. Here the commands
run in-process (``refquant.cli.main``) on a model file this script writes first: the bundled MLP
quantized for LiteRT's reference kernels."""
import contextlib
import io
import tempfile

from refquant import models, ptq
from refquant.cli import main
from refquant.data import load_digits
from refquant.interop import tflite
from refquant.testing import load_golden

tmp = tempfile.TemporaryDirectory()
x, _ = load_digits("val")
qmodel = ptq.quantize_static(models.load_reference_model("mlp"), x[:128], profile="tflite_reference")
tflite.export(qmodel, f"{tmp.name}/mlp.tflite")         # stands for your .tflite

for command in ("golden --op tflite.conv2d --profile tflite_xnnpack --cases 8 --seed 0 --out conv.npz",
                "golden --model mlp.tflite --profile tflite_reference --cases 4 --batch 2 --out mlp_golden.npz"):
    argv = [a if not a.endswith((".npz", ".tflite")) else f"{tmp.name}/{a}" for a in command.split()]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    print("$ refquant", command)
    print(out.getvalue().replace(tmp.name + "/", ""))

conv, mlp = load_golden(f"{tmp.name}/conv.npz"), load_golden(f"{tmp.name}/mlp_golden.npz")
assert (conv.op, conv.profile, len(conv)) == ("tflite.conv2d", "tflite_xnnpack", 8)
assert (mlp.op, len(mlp), mlp[0].inputs["input"].shape) == ("model", 4, (2, 1, 8, 8))
assert mlp.verify(model=f"{tmp.name}/mlp.tflite") == 4 * 2 * 10
tmp.cleanup()
