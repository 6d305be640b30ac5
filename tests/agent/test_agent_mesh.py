"""`meshctl agent` for real: Envoys it runs get their certificates over SDS, talk mTLS to each
other, rotate without a failed request or a restart, survive their agent's kill -9, drain on
SIGTERM; nothing any process prints or serves contains a private key.

The mesh (agent_mesh.py): reviews' sidecar in front of an app echoing the forwarded client
certificate, productpage's sidecar calling it (one mTLS handshake per request), serve and its
CA. Client certificates live 10 s and reviews' 20 s, so rotations happen during every test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from agent_mesh import ACCOUNTS, AgentMesh
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from envoy_harness import RequestLoop
from leaks import findings, texts
from testsupport import run_cli

from meshctl.loopback import Processes, Sidecar, http_get, mint_token, wait_until
from meshctl.resources import SECRET
from meshctl.security.cadir import read_token_key
from meshctl.security.spiffe import spiffe_id
from meshctl.security.tokens import TokenSigner

PRODUCTPAGE, REVIEWS, RATINGS = "productpage-v1", "reviews-v1", "ratings-v1"
_SERIAL_ROW = re.compile(r"^default\s+Cert Chain\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s", re.MULTILINE)


def identity(pod: str) -> str:
    return spiffe_id("cluster.local", "default", ACCOUNTS[pod])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentMesh]:
    with Processes() as processes:
        running = AgentMesh(tmp_path_factory.mktemp("agents"), processes, secret_ttl="10s")
        try:
            yield running.start().with_reviews_and_productpage(secret_ttl="20s")
        finally:
            running.stop()


@pytest.fixture
def ratings(mesh: AgentMesh) -> Iterator[Sidecar]:
    """A third sidecar for one test, started fresh (10 s certificates), stopped afterwards."""
    sidecar = mesh.sidecar(RATINGS)
    try:
        yield sidecar
    finally:
        sidecar.stop()
        del mesh.sidecars[RATINGS]


def secret_row(capsys: pytest.CaptureFixture[str], sidecar: Sidecar) -> tuple[str, str, str]:
    """(STATUS, VALID CERT, SERIAL NUMBER) of `default` in `meshctl proxy-config secret`."""
    code, out, err = run_cli(capsys, "proxy-config", "secret", "--admin", sidecar.admin_url)
    assert code == 0, err
    found = _SERIAL_ROW.search(out)
    assert found, out
    return found.group(1), found.group(2), found.group(3)


def active_secrets(sidecar: Sidecar) -> dict[str, Any]:
    dump = json.loads(sidecar.admin("config_dump?resource=dynamic_active_secrets"))
    return {entry["name"]: entry["secret"] for entry in dump["configs"]}


def uptime(sidecar: Sidecar) -> int:
    return int(sidecar.stats("server.uptime")["server.uptime"])


def test_agent_start_to_first_certificate_in_envoy(mesh: AgentMesh, ratings: Sidecar,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    secrets = wait_until(lambda: len(active_secrets(ratings)) == 2 and active_secrets(ratings), 60,
                         what="ratings' Envoy to hold default and ROOTCA")
    took = time.monotonic() - started
    held = secrets["default"]["tls_certificate"]
    chain = x509.load_pem_x509_certificates(base64.b64decode(held["certificate_chain"]["inline_bytes"]))
    root = x509.load_pem_x509_certificate((mesh.ca_dir / "root-cert.pem").read_bytes())
    assert chain[-1] == root
    chain[0].verify_directly_issued_by(root)
    sans = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [identity(RATINGS)]
    assert base64.b64decode(held["private_key"]["inline_bytes"]) == b"[redacted]"
    trusted = base64.b64decode(secrets["ROOTCA"]["validation_context"]["trusted_ca"]["inline_bytes"])
    assert x509.load_pem_x509_certificates(trusted) == [root]
    issued = re.findall(r'msg="certificate issued" identity=\S+ serial=([0-9a-f]+)', ratings.log.read_text())
    status, valid, serial = secret_row(capsys, ratings)
    # Compared as numbers: proxy-config shows Envoy's serial (whole bytes, so a leading 0 when the
    # top byte is under 0x10), the agent's log the number's hex.
    assert (status, valid) == ("ACTIVE", "true") and int(serial, 16) == chain[0].serial_number
    assert int(serial, 16) in {int(number, 16) for number in issued}
    ratings.wait_ready(30)
    assert http_get(f"http://127.0.0.1:{ratings.status_port}/healthz/ready")[1] == "ready\n"
    code, xfcc = wait_until(lambda: (lambda answer: answer[0] == 200 and answer)(mesh.call(RATINGS)), 30,
                            what="ratings to reach reviews")
    assert f"URI={identity(RATINGS)}" in xfcc and f"By={identity(REVIEWS)}" in xfcc
    print(f"\nagent start to both secrets in Envoy (polled, loaded machine): {took * 1000:.0f} ms")


def test_rotation_pushes_new_certificates_without_a_failed_request_or_a_restart(
        mesh: AgentMesh, capsys: pytest.CaptureFixture[str]) -> None:
    client, server = mesh.sidecars[PRODUCTPAGE], mesh.sidecars[REVIEWS]
    pids = (client.envoy_pid, server.envoy_pid)
    uptimes = (uptime(client), uptime(server))
    serials: dict[str, set[str]] = {PRODUCTPAGE: set(), REVIEWS: set()}
    with RequestLoop(mesh.url(PRODUCTPAGE), interval=0.02, headers={"Host": "reviews"}) as loop:
        deadline = time.monotonic() + 13
        while time.monotonic() < deadline:
            for pod, sidecar in ((PRODUCTPAGE, client), (REVIEWS, server)):
                status, valid, serial = secret_row(capsys, sidecar)
                assert (status, valid) == ("ACTIVE", "true")
                serials[pod].add(serial)
            time.sleep(0.4)
    assert not loop.failures, loop.failures[:5]
    assert len(loop.results) > 100
    assert len(serials[PRODUCTPAGE]) >= 3, serials  # changed at least twice
    assert len(serials[REVIEWS]) >= 2, serials
    # Every request was a new handshake: reviews' sidecar saw productpage's identity, with the
    # client certificate of the moment (its hash changes with each rotation).
    hashes = {re.search(r"Hash=([0-9a-f]+)", body).group(1) for _, body in loop.results}  # type: ignore[union-attr]
    assert len(hashes) >= 3, hashes
    assert all(f"URI={identity(PRODUCTPAGE)}" in body for _, body in loop.results)
    assert (client.envoy_pid, server.envoy_pid) == pids  # no restart...
    # ...nor hot restart: uptime (a stat refreshed every 5 s) went on counting from where it was
    assert uptime(client) >= uptimes[0] + 5 and uptime(server) >= uptimes[1] + 5
    pushes = re.findall(r"msg=ACK .*type=SDS .*convergence_ms=([0-9.]+)", client.log.read_text())
    print(f"\nrotation push to Envoy's ACK (ms, productpage): {sorted(float(ms) for ms in pushes)}")


def test_kill_9_leaves_envoy_serving_and_a_new_agent_takes_over(mesh: AgentMesh,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    server = mesh.sidecars[REVIEWS]
    envoy = server.envoy_pid
    with RequestLoop(mesh.url(PRODUCTPAGE), interval=0.02, headers={"Host": "reviews"}) as loop:
        time.sleep(0.3)
        server.kill_agent()
        _, _, held = secret_row(capsys, server)
        time.sleep(1.0)
        served = len(loop.results)
        time.sleep(0.5)
        assert len(loop.results) > served  # requests go on, through an Envoy without its agent
        assert secret_row(capsys, server) == ("ACTIVE", "true", held)
        assert not server.ready()
        server.restart()
        server.wait_ready(30)
        wait_until(lambda: secret_row(capsys, server)[2] != held, 30, what="the new agent's certificate in Envoy")
        time.sleep(0.5)
    assert not loop.failures, loop.failures[:5]
    assert server.envoy_pid == envoy
    log = server.log.read_text()
    assert "took over the Envoy a previous agent started" in log and f"pid={envoy}" in log
    assert "removing the socket of an agent that is gone" in log


def test_a_second_agent_never_takes_a_live_socket(mesh: AgentMesh) -> None:
    sidecar = mesh.sidecars[PRODUCTPAGE]
    socket = sidecar.socket_dir / "socket"
    assert oct(socket.stat().st_mode & 0o777) == "0o600" and oct(sidecar.socket_dir.stat().st_mode & 0o777) == "0o700"
    done = subprocess.run(sidecar.argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"another process serves SDS on {socket}: is another agent running for this Envoy?" in done.stderr
    assert mesh.call(PRODUCTPAGE)[0] == 200 and sidecar.ready()


def test_sigterm_drains_envoy_and_exits_with_its_status(ratings: Sidecar) -> None:
    ratings.wait_ready(60)
    envoy = ratings.envoy_pid
    ratings.process.send_signal(signal.SIGUSR1)  # Envoy's "reopen your logs": passed on, nothing stops
    wait_until(lambda: "signal=SIGUSR1" in ratings.log.read_text(), 10, what="SIGUSR1 passed on")
    assert ratings.alive() and Path(f"/proc/{envoy}").exists() and ratings.ready()
    ratings.process.send_signal(signal.SIGTERM)
    assert ratings.process.wait(30) == 0
    assert not Path(f"/proc/{envoy}").exists() or b"zombie" in Path(f"/proc/{envoy}/status").read_bytes().lower()
    assert not (ratings.socket_dir / "socket").exists()
    assert not (ratings.workdir / ratings.name / "envoy.pid").exists()
    log = ratings.log.read_text()
    assert 'msg="draining Envoy"' in log and 'msg="Envoy stopped"' in log and "status=0" in log


def test_envoy_exiting_ends_its_agent_with_envoys_status(ratings: Sidecar) -> None:
    ratings.wait_ready(60)
    os.kill(ratings.envoy_pid, signal.SIGKILL)
    assert ratings.process.wait(30) == 128 + signal.SIGKILL
    assert 'msg="Envoy exited"' in ratings.log.read_text()


def test_the_token_file_is_read_again_for_every_csr(mesh: AgentMesh, ratings: Sidecar) -> None:
    """A renewal presents the token file as it is then: an expired token there is refused (and
    Envoy keeps its certificate meanwhile), a fresh one written later is accepted."""
    ratings.wait_ready(60)
    token_file = ratings.argv[ratings.argv.index("--token-file") + 1]
    issued = ratings.log.read_text().count('msg="certificate issued"')
    expired = TokenSigner(read_token_key(mesh.ca_dir)).mint("default", ACCOUNTS[RATINGS], ttl=1, now=time.time() - 60)
    Path(token_file).write_text(expired)
    wait_until(lambda: "UNAUTHENTICATED: request authenticate failure" in ratings.log.read_text(), 30,
               what="the renewal with the expired token refused")
    assert "token expired" in mesh.serve_log.read_text()
    assert mesh.call(RATINGS)[0] == 200
    mint_token(mesh.ca_dir, "default", ACCOUNTS[RATINGS], Path(token_file), pod=RATINGS)
    wait_until(lambda: ratings.log.read_text().count('msg="certificate issued"') > issued, 30,
               what="a renewal with the fresh token")
    ratings.wait_ready(30)


def test_refused_agents_are_not_ready_and_say_why(mesh: AgentMesh) -> None:
    foreign = TokenSigner(ec.generate_private_key(ec.SECP256R1())).mint("default", ACCOUNTS[RATINGS])
    (mesh.workdir / "foreign.token").write_text(foreign)
    wrong_account = mint_token(mesh.ca_dir, "default", ACCOUNTS[REVIEWS], mesh.workdir / "wrong.token")
    for token, reason in ((mesh.workdir / "foreign.token", "UNAUTHENTICATED: request authenticate failure"),
                          (wrong_account, f"INVALID_ARGUMENT: CSR signing error (the CSR asks for {identity(RATINGS)}, "
                                          f"but the caller was authenticated as {identity(REVIEWS)})")):
        sidecar = mesh.sidecar(RATINGS, token=token)
        try:
            wait_until(lambda: reason in sidecar.log.read_text(), 60, what="the CA's refusal in the agent's log")
            # The first CSR goes out before the readiness endpoint listens: its refusal may come first.
            url = f"http://127.0.0.1:{sidecar.status_port}/healthz/ready"
            answer = wait_until(lambda: (reply := http_get(url))[0] and reply, 10, what="the readiness endpoint")
            assert answer == (503, "not ready: no certificate from the CA yet\n")
            assert "retry_in_s=" in sidecar.log.read_text()
        finally:
            sidecar.stop()
            del mesh.sidecars[RATINGS]


def _workload_key(sidecar: Sidecar) -> ec.EllipticCurvePrivateKey:
    """The key the agent serves its Envoy right now, asked for the way Envoy asks (the test
    runs as the agent's user, so the socket lets it in)."""
    request = discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id="leak-test"), type_url=SECRET,
                                             resource_names=["default"])
    with grpc.insecure_channel(f"unix:{sidecar.socket_dir / 'socket'}") as channel:
        answer = next(sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(iter([request]), timeout=10))
    secret = secret_pb2.Secret()
    answer.resources[0].Unpack(secret)
    key = serialization.load_pem_private_key(secret.tls_certificate.private_key.inline_bytes, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


ENVOY_READ_ONLY = ("certs", "clusters", "clusters?format=json", "config_dump", "config_dump?include_eds",
                   "config_dump?include_eds&resource=dynamic_active_secrets", "listeners", "listeners?format=json",
                   "memory", "ready", "runtime", "server_info", "stats", "stats?format=json", "stats/prometheus",
                   "contention", "hot_restart_version", "init_dump")


def test_no_output_holds_a_private_key(mesh: AgentMesh, capsys: pytest.CaptureFixture[str]) -> None:
    keys = {"CA root": _ca_key(mesh.ca_dir), "token": read_token_key(mesh.ca_dir)}
    for pod, sidecar in mesh.sidecars.items():
        keys[f"{pod} workload"] = _workload_key(sidecar)
    # The scanner sees a key where one is: the SDS answer the agent gave us holds it.
    assert findings(texts([("control", keys[f"{PRODUCTPAGE} workload"].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))]),
        {PRODUCTPAGE: keys[f"{PRODUCTPAGE} workload"]})
    debug = f"http://127.0.0.1:{mesh.ports['debug']}"
    outputs: list[tuple[str, bytes | str]] = [
        ("serve log", mesh.serve_log.read_bytes()),
        *[(f"{path}", http_get(f"{debug}{path}")[1]) for path in
          ("/metrics", "/debug/syncz", "/debug/configz", "/ready",
           *(f"/debug/config_dump?proxyID={pod}.default" for pod in mesh.sidecars))],
    ]
    for pod, sidecar in mesh.sidecars.items():
        outputs.append((f"{pod} agent and Envoy log", sidecar.log.read_bytes()))
        outputs.append((f"{pod} bootstrap", (sidecar.workdir / sidecar.name / "envoy-rev.json").read_bytes()))
        outputs.append((f"{pod} /healthz/ready", http_get(f"http://127.0.0.1:{sidecar.status_port}/healthz/ready")[1]))
        for path in ENVOY_READ_ONLY:
            outputs.append((f"{pod} Envoy /{path}", sidecar.admin(path)))
        for argv in (("proxy-config", "secret"), ("proxy-config", "secret", "-o", "json"), ("proxy-config", "all"),
                     ("proxy-config", "all", "-o", "yaml"), ("proxy-config", "bootstrap", "-o", "json")):
            code, out, err = run_cli(capsys, *argv, "--admin", sidecar.admin_url)
            assert code == 0, err
            outputs.append((f"{pod} meshctl {' '.join(argv)}", out + err))
    code, out, err = run_cli(capsys, "proxy-status", "--xds-address", f"127.0.0.1:{mesh.ports['xds']}", "--plaintext")
    outputs.append(("meshctl proxy-status", out + err))
    scanned = texts(outputs)
    assert sum(len(data) for data in scanned.values()) > 100_000  # the scan covered real content
    assert not findings(scanned, keys)


def _ca_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key
