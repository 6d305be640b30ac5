"""Where the CLI writes: data to stdout, progress, notes and warnings to stderr."""

from __future__ import annotations

import sys


def out(text: str) -> None:
    """Data for the user or the next program in the pipe."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(text: str) -> None:
    """Errors, warnings, notes and progress: never mixed into the data on stdout."""
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def warn(text: str) -> None:
    err(f"warning: {text}")
