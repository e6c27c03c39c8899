"""``refquant golden``: write a golden file (inputs, parameters, expected outputs) for a face op or a model file.

The file's layout is documented in :mod:`refquant.testing.golden` and on the how-to page "Use
refquant as the golden reference in your test suite"; ``--list`` shows the ops and their profiles.
"""

from __future__ import annotations

import argparse
import os

from .errors import EXIT_OK, UsageError

__all__ = ["add_parser", "run"]

_DESCRIPTION = """Write a golden file: seeded cases of one face op (or one model file) under one profile,
with refquant's expected outputs, in a versioned .npz that C, C++, Rust or Python can read
(refquant.testing.load_golden). The same options write the same file."""

_EPILOG = """examples:
  refquant golden --op tflite.fully_connected --cases 32 --seed 0 --out fc.npz
  refquant golden --op onnxruntime.qlinear_conv --isa avx2 --out qconv_avx2.npz
  refquant golden --model model.tflite --profile tflite_xnnpack --cases 8 --out model_golden.npz
  refquant golden --list"""


def add_parser(sub, parents) -> argparse.ArgumentParser:
    """Register ``golden`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("golden", parents=parents, help="write a golden file of a face op or a model for your tests",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--op", metavar="FACE.OP", help="a face op, e.g. tflite.conv2d (see --list)")
    what.add_argument("--model", metavar="FILE.tflite|FILE.onnx", help="a fully integer .tflite or quantized .onnx")
    what.add_argument("--list", action="store_true", help="list the ops and the profiles each can reproduce")
    p.add_argument("--profile", metavar="NAME", help="the backend arithmetic to reproduce (default: the op's first)")
    p.add_argument("--cases", type=_int_at_least("--cases", 1), default=16, metavar="N", help="cases (default 16)")
    p.add_argument("--seed", type=_int_at_least("--seed", 0), default=0, metavar="S", help="seed (default 0)")
    p.add_argument("--isa", default="auto", choices=("auto", "avx2", "vnni", "exact"),
                   help="accumulation model of CPU-dependent ops (default auto: this CPU; the file records it)")
    p.add_argument("--batch", type=_int_at_least("--batch", 1), default=1, metavar="N",
                   help="samples per case with --model (default 1)")
    p.add_argument("--input-shape", type=_shape, metavar="D,D,...",
                   help="one sample's shape with --model, where the file leaves it open")
    p.add_argument("--out", metavar="FILE.npz", help="the golden file to write")
    p.set_defaults(run=run, parser=p)
    return p


def _int_at_least(option: str, lo: int):
    """An argparse type: an integer >= ``lo``, else a message naming ``option``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= {lo}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{option} must be an integer >= {lo}, got {v}")
        return v
    return parse


def _shape(text: str) -> tuple:
    try:
        dims = tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-shape must be comma-separated integers, got {text!r}") from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"--input-shape must be integers >= 1, got {text!r}")
    return dims


def _list() -> str:
    from ..testing.golden_models import MODEL_PROFILES
    from ..testing.golden_ops import GOLDEN_OPS

    width = max(map(len, GOLDEN_OPS))
    lines = ["ops (--op) and their profiles (--profile; the first is the default):"]
    lines += [f"  {name:<{width}}  {', '.join(op.profiles)}" for name, op in GOLDEN_OPS.items()]
    lines.append("model files (--model):")
    lines += [f"  {'.' + fmt:<{width}}  {', '.join(p)}" for fmt, p in MODEL_PROFILES.items()]
    return "\n".join(lines)


def run(args) -> int:
    if args.list:
        print(_list())
        return EXIT_OK
    if not args.op and not args.model:
        raise UsageError("give --op FACE.OP or --model FILE (or --list)")
    if not args.out:
        raise UsageError("--out FILE.npz is required")
    from ..errors import FormatVersionError, QuantizationValueError, UnsupportedError
    from ..testing.golden import write_golden
    from ..testing.golden_ops import GOLDEN_OPS

    if args.op and args.op not in GOLDEN_OPS:
        raise UsageError(f"--op must be one of {', '.join(GOLDEN_OPS)}, got {args.op!r}")
    if args.model and not os.path.isfile(args.model):
        raise UsageError(f"--model: no such file {args.model!r}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out: directory {out_dir!r} does not exist")
    try:
        g = write_golden(args.out, op=args.op, model=args.model, profile=args.profile, cases=args.cases,
                         seed=args.seed, isa=args.isa, batch=args.batch, input_shape=args.input_shape)
    except (QuantizationValueError, UnsupportedError) as err:
        if isinstance(err, FormatVersionError):
            raise UsageError(f"--model: {err}") from None
        raise UsageError(str(err).replace("profile must", "--profile must").replace("input_shape must",
                                                                                    "--input-shape must")) from None
    n_arrays = sum(len(c.inputs) + len(c.params) + len(c.expected) for c in g)
    print(f"wrote {args.out}: {len(g)} cases of {g.op} under {g.profile} (seed {g.seed}"
          f"{', isa ' + g.header['isa'] if g.header['isa'] else ''}), {n_arrays} arrays, "
          f"{os.path.getsize(args.out)} bytes")
    print(f"regenerate with: {g.header['regenerate']}")
    return EXIT_OK
