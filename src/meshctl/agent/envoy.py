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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from meshctl.agent import signals
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

    def __init__(self, pid: int, pidfd: int, *, child: bool, report: int | None = None) -> None:
        self.pid = pid
        self.adopted = not child
        self._pidfd: int | None = pidfd
        self._report = report
        self._exited: asyncio.Event | None = None
        self.returncode: int | None = None
        self.failure = ""
        """Why the child never became Envoy (its bootstrap could not be written, or Envoy not run)."""

    @classmethod
    def start(cls, settings: EnvoySettings, workdir: Path, prepare: Callable[[], None] | None = None
              ) -> EnvoyProcess:
        """Envoy as our child, in a session of its own, on `workdir`'s bootstrap.

        With `prepare`, which writes that bootstrap, the child is forked first, calls it and
        becomes Envoy by exec: what `prepare` costs (the bootstrap's protobuf messages, ~45 ms)
        runs on another core while this process goes on starting the agent. Only while this
        process has a single thread (before grpc and asyncio): the child runs Python. A child
        that cannot write the bootstrap or run Envoy says why over a pipe (`failure`) and exits
        127. Without `prepare` the bootstrap is written already and Envoy is spawned at once
        (posix_spawn: no Python runs in the child), failing here if it cannot be.

        Either way Envoy starts with the signals the agent holds (meshctl.agent.signals)
        unblocked: they are its to handle."""
        report = None
        if prepare is None:
            try:
                pid = os.posix_spawnp(settings.binary, settings.argv(workdir / BOOTSTRAP_FILE), os.environ,
                                      setsid=True, setsigmask=signals.unheld_mask(),
                                      file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])
            except OSError as exc:
                raise MeshctlError(f"cannot start Envoy ({settings.binary}): {exc.strerror or exc}") from None
            log.info("started Envoy", extra={"pid": pid, "bootstrap": str(workdir / BOOTSTRAP_FILE)})
        else:
            # (Nothing buffered is written twice: the child never flushes, it execs or _exits.)
            report, write_end = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                _become_envoy(settings, workdir / BOOTSTRAP_FILE, prepare, write_end)
            os.close(write_end)
        _write_pid(workdir, pid)
        return cls(pid, os.pidfd_open(pid), child=True, report=report)

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
        return cls(pid, pidfd, child=False)

    def watch(self) -> None:
        """From the running event loop on, notice when Envoy exits (`wait`, `running`)."""
        import asyncio

        assert self._pidfd is not None, "watched once, when started or taken over"
        self._exited = asyncio.Event()
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        import asyncio

        assert self._pidfd is not None and self._exited is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        if not self.adopted:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            self._read_report()
        self._exited.set()

    def _read_report(self) -> None:
        """The child's word on its start, read once it has exited: nothing if it became Envoy
        (the pipe closed on exec), else why it did not."""
        if self._report is None:
            return
        self.failure = os.read(self._report, 4096).decode(errors="replace")
        os.close(self._report)
        self._report = None

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


def _become_envoy(settings: EnvoySettings, bootstrap: Path, prepare: Callable[[], None], report: int) -> NoReturn:
    """The forked child: write the bootstrap, then exec Envoy (`report` closes on exec); on any
    failure, say why on `report` and exit 127. Never returns, never runs the agent's code."""
    try:
        signals.release()
        os.setsid()
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        prepare()
        log.info("started Envoy", extra={"pid": os.getpid(), "bootstrap": str(bootstrap)})
        argv = settings.argv(bootstrap)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            message = f"cannot start Envoy ({settings.binary}): {exc.strerror or exc}"
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the agent is told, and this child ends
        message = f"cannot write Envoy's bootstrap: {exc}"
    try:
        os.write(report, message.encode())
    finally:
        os._exit(127)


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
