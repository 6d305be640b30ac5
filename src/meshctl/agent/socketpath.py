"""The SDS socket's path: short enough for a Unix socket, in a directory only the agent's user
can enter, and never the socket of another agent that is still alive.

It is claimed before Envoy is started, so an agent that could not serve SDS starts nothing,
and with the standard library only: the agent imports grpc while Envoy boots, not before.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from meshctl.errors import MeshctlError

__all__ = ["MAX_SOCKET_PATH", "checked", "claim"]

log = logging.getLogger("meshctl.agent")

# sockaddr_un's sun_path holds 108 bytes, the terminating NUL included.
MAX_SOCKET_PATH = 107


def checked(path: str | Path) -> Path:
    """`path` made absolute; MeshctlError when it is too long to bind."""
    absolute = Path(path).absolute()
    if len(str(absolute).encode()) > MAX_SOCKET_PATH:
        raise MeshctlError(f"--sds-socket {absolute} is {len(str(absolute).encode())} bytes long; a Unix socket "
                           f"path holds at most {MAX_SOCKET_PATH}: choose a shorter one")
    return absolute


def claim(path: Path) -> None:
    """Make the socket's directory 0700 and remove a socket nobody answers on (its agent died);
    refuse to take a live one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    if not path.exists() and not path.is_symlink():
        return
    import socket  # only for a socket left behind: the agent loads it after Envoy's fork otherwise

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            raise MeshctlError(f"cannot use {path}: {exc.strerror}") from None
        log.info("removing the socket of an agent that is gone", extra={"socket": str(path)})
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise MeshctlError(f"another process serves SDS on {path}: is another agent running for this Envoy?")
