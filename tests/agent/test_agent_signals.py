"""`meshctl agent` told to stop while it starts: Envoy is forked before the agent's event loop
and its signal handlers exist, and a SIGTERM (or SIGINT) in that window must still stop Envoy
and end the agent with Envoy's status, never leave an Envoy running without its agent.

Real agents and Envoys, signalled at points from their very spawn to well after start-up. The
control plane's addresses answer nothing (the agent keeps asking the CA, Envoy keeps asking
for config): start-up does not wait for either, so the window is the same as in a mesh.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl.agent.envoy import BOOTSTRAP_FILE, runs_bootstrap
from meshctl.loopback import Sidecar, free_port, stop_process, wait_until
from meshctl.security.ca import self_signed_bundle

# When to signal the agent, in seconds after its spawn: before its interpreter has even
# started, while it reads its flags, around Envoy's fork and bootstrap, while it starts SDS.
DELAYS = (0.0, 0.005, 0.02, 0.05, 0.08, 0.12, 0.18, 0.25, 0.4)
ENVOY_STATUSES = (0, 128 + signal.SIGTERM)
"""0: Envoy shut down on the agent's SIGTERM; 143: it was ended by it while still booting,
before it handles SIGTERM itself (the agent's documented status either way)."""


def processes_of(workdir: Path) -> list[int]:
    """Every live process whose command line names `workdir`: the agent, its forked child
    before it execs Envoy, Envoy (its bootstrap is in there). Zombies have no command line."""
    found = []
    needle = str(workdir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    """Starts an agent in a work directory of its own; kills whatever any left behind."""
    root = tmp_path / "root-cert.pem"
    root.write_bytes(self_signed_bundle("cluster.local").roots_pem)
    token = tmp_path / "token"
    token.write_text("not-checked-by-anyone\n")
    started: list[Sidecar] = []

    def agent(name: str, *extra: str) -> Sidecar:
        sidecar = Sidecar.start(f"{name}.default", tmp_path, name, xds_address=f"127.0.0.1:{free_port()}",
                                ca_address=f"127.0.0.1:{free_port()}", ca_root=root, token_file=token,
                                service_account=name, extra=extra)
        started.append(sidecar)
        return sidecar

    try:
        yield agent
    finally:
        for sidecar in started:
            stop_process(sidecar.process)
            for pid in processes_of(sidecar.workdir / sidecar.name):
                os.kill(pid, signal.SIGKILL)


def stopped(sidecar: Sidecar, signum: int, delay: float) -> int:
    """Signal the agent `delay` seconds after its spawn; its exit status. Fails if anything
    of it (Envoy above all) is still running once the agent has exited."""
    time.sleep(delay)
    sidecar.process.send_signal(signum)
    status = sidecar.process.wait(30)
    left = processes_of(sidecar.workdir / sidecar.name)
    assert not left, f"signalled {delay}s after its spawn, the agent left {left} running:\n{sidecar.log.read_text()}"
    return status


@pytest.mark.parametrize("delay", DELAYS)
def test_sigterm_during_start_up_stops_envoy(start: object, delay: float) -> None:
    sidecar = start(f"early-{round(delay * 1000)}")  # type: ignore[operator]
    status = stopped(sidecar, signal.SIGTERM, delay)
    log = sidecar.log.read_text()
    if status == -signal.SIGTERM:  # signalled while Python itself started: nothing forked yet
        assert "started Envoy" not in log and not (sidecar.workdir / sidecar.name / "envoy.pid").exists(), log
        return
    assert status in ENVOY_STATUSES, log
    envoy_status = 0 if status == 0 else -signal.SIGTERM  # as Python reports a child's end
    assert re.search(rf'msg="Envoy stopped" pid=\d+ status={envoy_status}\n', log), log
    assert not (sidecar.workdir / sidecar.name / "envoy.pid").exists()


def test_sigint_during_start_up_stops_envoy_too(start: object) -> None:
    sidecar = start("interrupted")  # type: ignore[operator]
    wait_until((sidecar.workdir / sidecar.name / "envoy.pid").exists, 10, what="Envoy forked")
    status = stopped(sidecar, signal.SIGINT, 0)
    assert status in ENVOY_STATUSES and 'msg="Envoy stopped"' in sidecar.log.read_text()


def test_sigterm_once_envoy_serves_admin_drains_it_first(start: object) -> None:
    """Past the window, the same path: Envoy's admin answers, so it is drained (for the drain
    period), then stopped, and its clean exit is the agent's."""
    sidecar = start("drained", "--termination-drain-duration", "300ms")  # type: ignore[operator]
    wait_until(lambda: "agent running" in sidecar.log.read_text(), 20, what="the agent running")
    wait_until(lambda: sidecar.admin("/server_info"), 20, what="Envoy's admin")
    started = time.monotonic()
    status = stopped(sidecar, signal.SIGTERM, 0)
    assert status == 0 and time.monotonic() - started >= 0.3
    log = sidecar.log.read_text()
    assert 'msg="draining Envoy"' in log and "nothing to drain" not in log


def test_an_envoy_whose_admin_never_opened_is_stopped_without_a_drain(start: object, tmp_path: Path) -> None:
    """An Envoy that has not opened its admin port holds no listener: nothing to drain, so the
    agent does not wait out its (here long) drain period. (A stand-in that never opens one, so
    the case is certain: a real Envoy opens its admin within a few hundred milliseconds.)"""
    stand_in = tmp_path / "booting-envoy"
    stand_in.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import time; time.sleep(600)' \"$@\"\n")
    stand_in.chmod(0o755)
    sidecar = start("undrained", "--envoy", str(stand_in), "--termination-drain-duration", "30s")  # type: ignore[operator]
    wait_until(lambda: "agent running" in sidecar.log.read_text(), 20, what="the agent running")
    started = time.monotonic()
    status = stopped(sidecar, signal.SIGTERM, 0)
    log = sidecar.log.read_text()
    assert status == 128 + signal.SIGTERM and time.monotonic() - started < 10, log
    assert "nothing to drain" in log and 'msg="draining Envoy"' not in log


@pytest.mark.parametrize("auth", ["NONE", "MUTUAL_TLS"])
def test_envoy_starts_with_the_signals_the_agent_held_unblocked(start: object, auth: str) -> None:
    """Forked before the agent's loop (NONE), or spawned once SDS listens (MUTUAL_TLS: it needs
    its certificate to reach the control plane), Envoy handles its own signals: none of those
    the agent holds is blocked in it, and it stops on SIGTERM at once rather than being killed."""
    sidecar = start(f"mask-{auth.lower().replace('_', '-')}", "--control-plane-auth-policy", auth)  # type: ignore[operator]
    wait_until(lambda: "agent running" in sidecar.log.read_text(), 20, what="the agent running")
    # The agent may run before its forked child has become Envoy (the child writes the bootstrap
    # first, and on a busy machine may not even have been scheduled): Envoy's mask, not its.
    pid = sidecar.envoy_pid
    wait_until(lambda: runs_bootstrap(pid, sidecar.workdir / sidecar.name / BOOTSTRAP_FILE), 20, what="Envoy's exec")
    status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    blocked = int(next(line for line in status_lines if line.startswith("SigBlk:")).split()[1], 16)
    assert not [signum for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
                if blocked & (1 << (signum - 1))]
    wait_until(lambda: sidecar.admin("/server_info"), 20, what="Envoy's admin")
    started = time.monotonic()
    assert stopped(sidecar, signal.SIGTERM, 0) == 0 and time.monotonic() - started < 5
