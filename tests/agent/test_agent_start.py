"""The order of the agent's start, which its speed rests on (benchmarks/identity.py times it):
Envoy is forked before the agent loads what only the agent needs, the CA's TLS channel
connects before the first call needs it, and SDS listens without waiting for the CA (an Envoy
that asks before the socket listens waits out a back-off of up to 500 ms). A regression in any
of them slows every sidecar's start and fails nothing else.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from meshctl.agent.caclient import CaClient
from meshctl.agent.tokens import fixed_token
from meshctl.loopback import Sidecar, free_port, wait_until
from meshctl.security.ca import self_signed_bundle

# Loaded by the agent after Envoy's fork, never before it: Envoy's process waits for none of them.
AFTER_THE_FORK = ("asyncio", "grpc", "cryptography", "ssl", "socket", "subprocess", "shutil", "typer",
                  "meshctl.config.resource", "meshctl.config.kinds", "meshctl.model.service", "meshctl.generate.bootstrap", "envoy.config.bootstrap.v3.bootstrap_pb2")


def test_envoy_is_forked_before_the_agent_loads_what_only_it_needs(tmp_path: Path) -> None:
    root = tmp_path / "root-cert.pem"
    root.write_bytes(self_signed_bundle("cluster.local").roots_pem)
    script = f"""
import sys
from meshctl.agent import envoy

def forked(*args, **kwargs):
    print(sorted(name for name in {AFTER_THE_FORK!r} if name in sys.modules))
    raise SystemExit(0)

envoy.EnvoyProcess.start = forked
from meshctl.cli import main
main(["agent", "web-0", "--service-account", "web", "--ca-root-cert", {str(root)!r}, "--token", "t",
      "--workdir", {str(tmp_path / "work")!r}, "--sds-socket", {str(tmp_path / "socket")!r}, "--envoy", "/bin/true"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr)


def test_the_ca_channel_connects_before_the_first_call() -> None:
    """Made, the client connects at once (the TCP and TLS handshakes then overlap the agent's
    loading cryptography): a connection arrives though no call is ever made."""
    async def scenario() -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        client = CaClient(f"127.0.0.1:{listener.getsockname()[1]}", self_signed_bundle("cluster.local").roots_pem,
                          fixed_token(""))
        try:
            connection, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(listener), 10)
            connection.close()
        finally:
            await client.close()
            listener.close()

    asyncio.run(scenario())


def test_sds_listens_while_the_ca_has_not_answered(tmp_path: Path) -> None:
    """The CA's address refuses connections: SDS listens all the same (Envoy's request then
    waits on its stream for the certificate, however late)."""
    root = tmp_path / "root-cert.pem"
    root.write_bytes(self_signed_bundle("cluster.local").roots_pem)
    token = tmp_path / "token"
    token.write_text("not-checked-by-anyone\n")
    sidecar = Sidecar.start("web-0.default", tmp_path, "web", xds_address=f"127.0.0.1:{free_port()}",
                            ca_address=f"127.0.0.1:{free_port()}", ca_root=root, token_file=token,
                            service_account="web")
    try:
        wait_until(lambda: "serving SDS" in sidecar.log.read_text(), 20, what="SDS listening")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(sidecar.socket_dir / "socket"))
        finally:
            probe.close()
        assert "certificate issued" not in sidecar.log.read_text()  # nothing answers at the CA's address
    finally:
        sidecar.stop()


def test_the_collector_is_off_while_the_agent_starts_and_back_once_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`meshctl agent` starts with Python's cyclic collector off (its imports would set off ~80
    collections for nothing), and the agent turns it back on once running, its start-up's
    objects frozen first; an agent run in a process that collects as usual is left alone."""
    import gc

    from meshctl.agent import runner
    from meshctl.cli import main

    monkeypatch.setattr(sys, "argv", ["meshctl", "agent", "--no-such-flag"])
    try:
        assert main() == 64 and not gc.isenabled()
        frozen = gc.get_freeze_count()
        runner._collect_from_now_on()
        assert gc.isenabled() and gc.get_freeze_count() > frozen
        frozen = gc.get_freeze_count()
        runner._collect_from_now_on()
        assert gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_sds_server_loads_neither_cryptography_nor_csds() -> None:
    """SDS listens before the agent loads cryptography (~18 ms, for the key and CSR), and CSDS's
    messages (~2 ms) are loaded only when serve is first asked for them: the SDS server, and
    the CA's client that connects before it, need neither."""
    script = ("import sys, meshctl.agent.sds, meshctl.agent.caclient; "
              "print(sorted(name for name in ('cryptography', 'envoy.service.status.v3.csds_pb2') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "[]", (done.stdout, done.stderr)

