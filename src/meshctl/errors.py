"""Exit codes and the exceptions that carry them.

The library raises; only the CLI turns an exception into a message and an exit code. The codes
follow istioctl and sysexits(3) so that scripts written for istioctl keep working.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = [
    "BadInputError",
    "EnvoyNotFoundError",
    "ExitCode",
    "GenerationError",
    "MeshctlError",
    "UnknownProxyError",
    "UsageError",
]


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 64
    BAD_INPUT = 65
    FINDINGS = 79
    NOT_SYNCED = 80
    VALIDATION_FAILED = 126  # istio-iptables --run-validation
    INTERRUPTED = 130


class MeshctlError(Exception):
    """An error the user can act on; its message is printed as is, without a traceback."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(MeshctlError):
    exit_code = ExitCode.USAGE


class BadInputError(MeshctlError):
    """Input files that cannot be used. `problems` holds one line per problem, already formatted."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class EnvoyNotFoundError(MeshctlError):
    pass


class UnknownProxyError(MeshctlError):
    """The node names no workload in the registry, so there is nothing to send it yet."""


class GenerationError(MeshctlError):
    """Generating one proxy's config failed. `culprits` names the input objects being translated
    when it did (`FILE:LINE: Kind namespace/name`), when that is known; empty when it is not."""

    def __init__(self, message: str, culprits: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.culprits = tuple(culprits)
