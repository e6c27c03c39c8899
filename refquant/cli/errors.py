"""The two ways a command ends badly, and their exit codes.

``refquant`` exits 0 on success, 2 on a usage error (bad input the user can fix: an unknown
name, a missing file, data the model cannot take) and 1 on a failure while working. Both print
one line to stderr; ``--debug`` prints the traceback instead.
"""

from __future__ import annotations

__all__ = ["UsageError", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: the message names the option, what it expects and what it got (exit code 2)."""
