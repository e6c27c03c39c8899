"""The ``refquant`` command line.

* ``refquant info`` (:mod:`refquant.cli.sysinfo`): what a bug report needs;
* ``refquant compare`` (:mod:`refquant.cli.compare`): every quantization technique on one model,
  in one table, with a JSON document and a report on request;
* ``refquant golden`` (:mod:`refquant.cli.golden`): golden files (inputs, parameters, expected
  outputs) of a face op or a model file, for another project's test suite;
* ``refquant explain`` (:mod:`refquant.cli.explain`): which arithmetic reproduces the outputs you got
  for a golden file's inputs.

Exit codes: 0 success, 1 failure, 2 usage error (:mod:`refquant.cli.errors`); an error is one
line on stderr, after its traceback with ``--debug`` (the exit code is the same).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import compare, explain, golden, sysinfo
from .errors import EXIT_FAILURE, EXIT_USAGE, UsageError
from .sysinfo import info

__all__ = ["main", "info"]


def build_parser() -> argparse.ArgumentParser:
    """The ``refquant`` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="refquant", description="Bit-exact reference for quantized inference.",
        epilog="Run 'refquant COMMAND --help' for a command's options. Exit codes: 0 success, 1 failure, 2 usage.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sysinfo.add_parser(sub, [common])
    compare.add_parser(sub, [common])
    golden.add_parser(sub, [common])
    explain.add_parser(sub, [common])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``refquant`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # exits 2 with the usage on a bad option value
    if extra:  # reported by the subcommand's parser, with its own usage line
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv
    try:
        return args.run(args)
    except UsageError as exc:
        _traceback(args)
        print(f"refquant {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"refquant {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure while working: one line (after the traceback with --debug)
        _traceback(args)
        first = str(exc).splitlines()[0] if str(exc) else ""
        hint = "" if args.debug else " (run again with --debug for the traceback)"
        print(f"refquant {args.command}: {type(exc).__name__}: {first}{hint}", file=sys.stderr)
        return EXIT_FAILURE


def _traceback(args) -> None:
    if args.debug:
        traceback.print_exc(file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
