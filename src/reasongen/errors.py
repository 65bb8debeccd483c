"""Errors of the user's making (a bad file, override, value or model path): the command line prints their message
as one line and exits 2, without a traceback (REASONGEN_DEBUG=1 shows it)."""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Something the user can fix; the message says what and, where it can, how."""


def at_line(path: str | Path, line: int, reason: str) -> UserError:
    """The `path:line: reason` error of a bad line in an input file."""
    return UserError(f"{path}:{line}: {reason}")
