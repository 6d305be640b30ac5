"""The token the agent proves its workload's identity with, as a source read at each CSR.

As istio-agent does: a token file is read afresh for every call (a projected token is rotated
under the agent's feet), and a missing one is only a warning: the call goes out without a
token and the CA says why it refuses. Standard library only, so that `meshctl agent` can
check its flags before grpc is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

__all__ = ["TokenSource", "fixed_token", "token_file"]

log = logging.getLogger("meshctl.agent")

TokenSource = Callable[[], str]


def token_file(path: str | Path) -> TokenSource:
    """A token read from `path` on every call; empty (with a warning) when it cannot be read."""
    location = Path(path)

    def read() -> str:
        try:
            return location.read_text().strip()
        except OSError as exc:
            log.warning("cannot read the token file; asking the CA without a token",
                        extra={"file": str(location), "error": exc.strerror or str(exc)})
            return ""

    return read


def fixed_token(token: str) -> TokenSource:
    return lambda: token
