"""The agent's Envoy: started as its child, or taken over from an agent that died.

istio-agent owns Envoy: it starts it, forwards signals to it, drains it on SIGTERM and exits
with its status. Envoy runs in a session of its own, so a Ctrl-C at the terminal reaches the
agent only, which then drains Envoy instead of letting it drop connections.

An agent killed outright (kill -9, an OOM kill) leaves its Envoy running, holding its current
certificate and config: nothing breaks until that certificate expires. The next agent started
with the same work directory finds it through the pid file, checks it is that Envoy (its
command line names this work directory's bootstrap), takes it over and serves it SDS on the
same socket, which Envoy reconnects to by itself. Such an Envoy is not the new agent's child:
its exit status is unknowable. Both are watched and signalled through a pidfd.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError

if TYPE_CHECKING:
    import asyncio

__all__ = ["BOOTSTRAP_FILE", "EnvoyProcess", "EnvoySettings", "PID_FILE", "clear_pid", "runs_bootstrap"]

log = logging.getLogger("meshctl.agent")

PID_FILE = "envoy.pid"
BOOTSTRAP_FILE = "envoy-rev.json"


@dataclass(frozen=True, slots=True)
class EnvoySettings:
    """How Envoy is run (Istio's pilot-agent passes the same flags)."""

    binary: str
    concurrency: int = 2
    log_level: str = "warning"
    component_log_level: str = "misc:error"
    drain_time: float = 45.0
    extra_args: tuple[str, ...] = ()

    def argv(self, bootstrap: Path) -> list[str]:
        return [
            self.binary, "-c", str(bootstrap), "--drain-time-s", str(max(1, round(self.drain_time))),
            "--drain-strategy", "immediate", "--local-address-ip-version", "v4", "--disable-hot-restart",
            "--allow-unknown-static-fields", "-l", self.log_level, "--component-log-level", self.component_log_level,
            "--concurrency", str(self.concurrency),
            *self.extra_args,
        ]  # fmt: skip


class EnvoyProcess:
    """One Envoy: `start` makes it our child, `adopt` takes over a running one. Either is
    watched through a pidfd (`watch`, once the event loop runs): Envoy is started before the
    agent imports asyncio."""

    def __init__(self, pid: int, child: subprocess.Popen[bytes] | None, pidfd: int) -> None:
        self.pid = pid
        self.adopted = child is None
        self._child = child
        self._pidfd: int | None = pidfd
        self._exited: asyncio.Event | None = None
        self.returncode: int | None = None

    @classmethod
    def start(cls, settings: EnvoySettings, workdir: Path) -> EnvoyProcess:
        bootstrap = workdir / BOOTSTRAP_FILE
        try:
            child = subprocess.Popen(settings.argv(bootstrap), stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise MeshctlError(f"cannot start Envoy ({settings.binary}): {exc.strerror or exc}") from None
        _write_pid(workdir, child.pid)
        log.info("started Envoy", extra={"pid": child.pid, "bootstrap": str(bootstrap)})
        return cls(child.pid, child, os.pidfd_open(child.pid))

    @classmethod
    def adopt(cls, workdir: Path) -> EnvoyProcess | None:
        """The Envoy a previous agent started from `workdir`, if it still runs; else None."""
        pid = _read_pid(workdir)
        if pid is None or not runs_bootstrap(pid, workdir / BOOTSTRAP_FILE):
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        log.info("took over the Envoy a previous agent started; its bootstrap is left as it is",
                 extra={"pid": pid})
        return cls(pid, None, pidfd)

    def watch(self) -> None:
        """From the running event loop on, notice when Envoy exits (`wait`, `running`)."""
        import asyncio

        self._exited = asyncio.Event()
        if self._pidfd is None:
            self._exited.set()
        else:
            asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        import asyncio

        assert self._pidfd is not None and self._exited is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        if self._child is not None:
            self.returncode = self._child.wait()
        self._exited.set()

    @property
    def running(self) -> bool:
        return self._pidfd is not None

    async def wait(self) -> int | None:
        """Until Envoy exits; its status (None for an adopted Envoy: not ours to know)."""
        assert self._exited is not None, "watch() first"
        await self._exited.wait()
        return self.returncode

    def signal(self, signum: int) -> None:
        """Deliver `signum` to Envoy (through its pidfd: never to a process that reused its pid)."""
        if self._pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signum)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if Envoy has not exited within `timeout`."""
        import asyncio

        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.wait(), timeout)
        except TimeoutError:
            log.warning("Envoy did not stop in time; killing it", extra={"pid": self.pid})
            self.signal(signal.SIGKILL)
            return await self.wait()


def _write_pid(workdir: Path, pid: int) -> None:
    temporary = workdir / f".{PID_FILE}.tmp"
    temporary.write_text(f"{pid}\n")
    os.replace(temporary, workdir / PID_FILE)


def _read_pid(workdir: Path) -> int | None:
    try:
        text = (workdir / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def runs_bootstrap(pid: int, bootstrap: Path) -> bool:
    """Whether process `pid` is an Envoy started on `bootstrap` (so not a stranger that reused
    the pid of one that exited)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(bootstrap).encode() in argv and b"-c" in argv


def clear_pid(workdir: Path) -> None:
    with contextlib.suppress(OSError):
        (workdir / PID_FILE).unlink()
