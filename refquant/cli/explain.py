"""``refquant explain``: why do my outputs differ from a golden file? One verdict per case.

Reads a golden file of a face op (``refquant golden --op ...``; :func:`refquant.testing.golden.load_golden`)
and the outputs your kernel, compiler or device produced for its cases, and runs
:func:`refquant.testing.explain.explain_mismatch` on every case: which backend arithmetic (or which
one change to the golden file's) reproduces your output, and what differs.

The outputs file is a ``.npz`` with one array per case, named ``case0``, ``case1``, ... (or ``0``,
``1``, ..., or the golden file's own ``case0/expected/y``; a case without an array is skipped), or a
``.npy`` holding the one case's output, or every case's output stacked along a new first axis.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from .errors import EXIT_OK, UsageError

__all__ = ["add_parser", "run"]

_DESCRIPTION = """Explain the mismatches between a golden file's expected outputs and yours: for each case,
the backend arithmetic (rounding, single or double rounding, float or fixed-point requantization,
pair saturation, bias handling, ...) that reproduces your output exactly, or the closest one."""

_EPILOG = """examples:
  refquant golden --op tflite.fully_connected --cases 8 --out fc.npz
  refquant explain fc.npz my_outputs.npz
  refquant explain fc.npz my_outputs.npz --full --profile tflite_xnnpack"""


def add_parser(sub, parents) -> argparse.ArgumentParser:
    """Register ``explain`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("explain", parents=parents, help="explain why your outputs differ from a golden file",
                       description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("golden", metavar="GOLDEN_FILE", help="a golden file of a face op (refquant golden --op ...)")
    p.add_argument("actual", metavar="ACTUAL_FILE", help="your outputs: .npz (one array per case) or .npy")
    p.add_argument("--profile", metavar="NAME",
                   help="the expectation (a profile, or NAME@avx2 / NAME@vnni); default: the golden file's")
    p.add_argument("--full", action="store_true", help="print the whole explanation of every mismatching case")
    p.set_defaults(run=run, parser=p)
    return p


def _load_golden(path: str):
    from ..errors import FormatVersionError
    from ..testing.golden import load_golden

    if not os.path.isfile(path):
        raise UsageError(f"GOLDEN_FILE {path!r} does not exist (write one with 'refquant golden --op OP --out FILE')")
    try:
        golden = load_golden(path)
    except FormatVersionError as err:
        raise UsageError(f"GOLDEN_FILE {path!r} is not a readable golden file: {err}") from None
    if golden.op == "model":
        raise UsageError(f"GOLDEN_FILE {path!r} was written from a model file: refquant explain takes golden files "
                         f"of a face op (for a model, use refquant.testing.explain.explain_model)")
    return golden


def _load_actual(path: str, golden) -> dict:
    """``{case index: array}`` from a ``.npz`` or ``.npy`` (module docstring)."""
    if not os.path.isfile(path):
        raise UsageError(f"ACTUAL_FILE {path!r} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"ACTUAL_FILE {path!r} is not a readable .npy or .npz file ({err})") from None
    n = len(golden)
    if isinstance(data, np.ndarray):
        if n == 1:
            return {0: data}
        if data.ndim >= 1 and data.shape[0] == n:
            return dict(enumerate(data))
        raise UsageError(f"ACTUAL_FILE {path!r} holds one array of shape {data.shape}: for a golden file of {n} "
                         f"cases it must stack them along its first axis, or be an .npz with case0..case{n - 1}")
    with data:
        found = {}
        for i in range(n):
            for key in (f"case{i}", str(i), f"case{i}/expected/y"):
                if key in data.files:
                    found[i] = data[key]
                    break
        if not found and n == 1 and len(data.files) == 1:
            found[0] = data[data.files[0]]
    if not found:
        raise UsageError(f"ACTUAL_FILE {path!r} has no array named case0..case{n - 1} (it has {sorted(data.files)[:5]})")
    return found


def _inputs(golden, case) -> dict:
    """The face call's keyword arguments for one case, as the golden file records the call."""
    call = golden.header["call"]
    args = {name: case.arguments.get(name) for name in call["arguments"]}
    return {**args, **case.attrs, **call["keywords"]}


def run(args: argparse.Namespace) -> int:
    """``refquant explain GOLDEN_FILE ACTUAL_FILE [--profile NAME] [--full]``."""
    from ..errors import RefquantError
    from ..testing.explain import explain_mismatch, resolve_profile

    if args.profile is not None:
        try:
            resolve_profile(args.profile, "--profile")
        except RefquantError as err:
            raise UsageError(str(err)) from None
    golden = _load_golden(args.golden)
    actual = _load_actual(args.actual, golden)
    print(f"{golden.op}, golden profile {golden.profile}: {len(actual)} of {len(golden)} cases given")
    verdicts: dict = {}
    for i, y in actual.items():
        case = golden[i]
        try:
            e = explain_mismatch(golden.op, _inputs(golden, case), y, profile=args.profile)
        except RefquantError as err:  # an output of the wrong shape or kind, a profile that cannot run the op
            raise UsageError(f"ACTUAL_FILE case {i}: {err}") from None
        if e.expected.exact:
            print(f"case {i} ({case.kind}): matches {e.expected.label} exactly")
            continue
        print(f"case {i} ({case.kind}): {e.expected.summary()}; {e.verdict()}")
        if args.full:
            print("\n".join("    " + line for line in str(e).splitlines()))
        verdicts.setdefault(e.best.label if e.best is not None and e.best.exact else None, []).append(i)
    mismatching = sum(len(v) for v in verdicts.values())
    print(f"{mismatching} of {len(actual)} cases differ from {golden.profile if args.profile is None else args.profile}"
          + "".join(f"; {len(v)} reproduced by {label}" for label, v in verdicts.items() if label is not None)
          + (f"; {len(verdicts[None])} by no candidate" if None in verdicts else ""))
    return EXIT_OK
