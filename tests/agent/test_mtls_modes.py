"""PeerAuthentication and DestinationRule TLS between real sidecars run by `meshctl agent`.

The mesh (agent_mesh.py): reviews' sidecar binds its inbound port on its own loopback address in
front of an app that answers with the `x-forwarded-client-cert` header its sidecar set;
productpage's sidecar calls it. Each test writes its policies into serve's config directory,
waits until reviews' Envoy holds the chains they make, and sends real traffic: through
productpage's sidecar (auto mTLS, or what a DestinationRule says), and from a plain client
sent straight at reviews' inbound port, as a workload without a sidecar would. DestinationRule
SIMPLE and MUTUAL originate TLS from productpage's sidecar to an HTTPS server outside the mesh,
with certificates from files the agent serves.
"""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_mesh import ACCOUNTS, SERVICE_PORT, AgentMesh, Answering
from status.fake_istiod import Authority
from testsupport import peer_authentication

from meshctl.loopback import Processes, Sidecar, http_get, wait_until
from meshctl.security.spiffe import spiffe_id

PRODUCTPAGE, REVIEWS = "productpage-v1", "reviews-v1"
REVIEWS_HOST = "reviews.default.svc.cluster.local"


def identity(pod: str) -> str:
    return spiffe_id("cluster.local", "default", ACCOUNTS[pod])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentMesh]:
    with Processes() as processes:
        running = AgentMesh(tmp_path_factory.mktemp("mtls"), processes)
        try:
            yield running.start().with_reviews_and_productpage()
        finally:
            running.stop()


def _write(mesh: AgentMesh, name: str, text: str) -> None:
    """Replace a config file at once, as kubectl or an editor would."""
    temporary = mesh.config_dir / f".{name}.tmp"
    temporary.write_text(text)
    os.replace(temporary, mesh.config_dir / name)


@pytest.fixture
def policies(mesh: AgentMesh) -> Iterator[Path]:
    """Where a test writes its policies (removed afterwards, back to the default PERMISSIVE)."""
    path = mesh.config_dir / "policies.yaml"
    yield path
    path.unlink(missing_ok=True)
    wait_for_chains(mesh, ["tls", "raw_buffer"])


def apply(mesh: AgentMesh, text: str, chains: list[str]) -> None:
    _write(mesh, "policies.yaml", text)
    wait_for_chains(mesh, chains)


def inbound_listener(mesh: AgentMesh) -> str:
    return f"{mesh.addresses[REVIEWS]}_{mesh.ports['inbound']}"


def chains(sidecar: Sidecar, listener: str) -> list[str]:
    """The transport each filter chain of `listener` matches, as the Envoy holds them now."""
    for entry in sidecar.config_dump()["configs"][2].get("dynamic_listeners", []):
        if entry["name"] == listener and "active_state" in entry:
            return [chain["filter_chain_match"].get("transport_protocol", "")
                    for chain in entry["active_state"]["listener"]["filter_chains"]]
    return []


def wait_for_chains(mesh: AgentMesh, expected: list[str]) -> None:
    reviews = mesh.sidecars[REVIEWS]
    wait_until(lambda: chains(reviews, inbound_listener(mesh)) == expected, 30,
               what=f"reviews' inbound chains to become {expected}")


def stat(sidecar: Sidecar, name: str) -> int:
    return int(sidecar.stats(name).get(name, "0"))


def direct(mesh: AgentMesh) -> tuple[int, str]:
    """A plaintext request straight at reviews' inbound port: a caller without a sidecar."""
    return http_get(f"http://{mesh.addresses[REVIEWS]}:{mesh.ports['inbound']}/", timeout=5)


STRICT = peer_authentication("  mtls: {mode: STRICT}")
PERMISSIVE = peer_authentication("  mtls: {mode: PERMISSIVE}")


def test_strict_productpage_reaches_reviews_over_mtls(mesh: AgentMesh, policies: Path) -> None:
    """Both Envoys do a TLS handshake for each request (one connection per request), and the
    app behind reviews sees productpage's SPIFFE ID, forwarded by its sidecar."""
    apply(mesh, STRICT, ["tls"])
    client, server = mesh.sidecars[PRODUCTPAGE], mesh.sidecars[REVIEWS]
    client_stat = f"cluster.outbound|9080||{REVIEWS_HOST};.ssl.handshake"  # alt_stat_name ends in ;
    server_stat = f"listener.{inbound_listener(mesh)}.ssl.handshake"
    before = stat(client, client_stat), stat(server, server_stat)
    answers = [mesh.call(PRODUCTPAGE) for _ in range(10)]
    assert {status for status, _ in answers} == {200}, answers
    for _, xfcc in answers:
        assert f"By={identity(REVIEWS)};" in xfcc and xfcc.endswith(f";URI={identity(PRODUCTPAGE)}"), xfcc
    after = wait_until(lambda: (lambda now: now[0] >= before[0] + 10 and now[1] >= before[1] + 10 and now)(
        (stat(client, client_stat), stat(server, server_stat))), 10, what="both Envoys to count the handshakes")
    assert after[0] - before[0] >= 10 and after[1] - before[1] >= 10, (before, after)


def test_plaintext_client_is_refused_under_strict_and_served_under_permissive(mesh: AgentMesh,
                                                                              policies: Path) -> None:
    apply(mesh, STRICT, ["tls"])
    server = mesh.sidecars[REVIEWS]
    unmatched = f"listener.{inbound_listener(mesh)}.no_filter_chain_match"
    refused = stat(server, unmatched)
    assert direct(mesh) == (0, "")  # the connection is closed: no chain takes plaintext
    wait_until(lambda: stat(server, unmatched) == refused + 1, 10, what="reviews to count the refusal")
    assert mesh.call(PRODUCTPAGE)[0] == 200  # mTLS from a sidecar still gets through
    apply(mesh, PERMISSIVE, ["tls", "raw_buffer"])
    assert direct(mesh) == (200, "none")  # served in plaintext: no client certificate to forward
    status, xfcc = mesh.call(PRODUCTPAGE)
    assert status == 200 and xfcc.endswith(f";URI={identity(PRODUCTPAGE)}")  # sidecars still talk mTLS


def test_port_level_disable_takes_plaintext_even_from_sidecars(mesh: AgentMesh, policies: Path) -> None:
    """STRICT for the mesh but DISABLE on reviews' port: plaintext from anyone, productpage's
    sidecar included (its endpoints lose `tlsMode: istio`), and a TLS client there is handed to
    the plaintext chain as opaque bytes (no TLS detection on that port) instead of matching
    no chain at all."""
    port_disabled = peer_authentication(
        f"  selector: {{matchLabels: {{app: reviews}}}}\n  portLevelMtls: {{{mesh.ports['inbound']}: {{mode: DISABLE}}}}",
        "default", "reviews")
    apply(mesh, STRICT + "---\n" + port_disabled, ["raw_buffer"])
    assert direct(mesh) == (200, "none")
    wait_until(lambda: mesh.call(PRODUCTPAGE) == (200, "none"), 30, what="productpage to call reviews in plaintext")
    server = mesh.sidecars[REVIEWS]
    listener = inbound_listener(mesh)
    unmatched, errors = stat(server, f"listener.{listener}.no_filter_chain_match"), _protocol_errors(server)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((mesh.addresses[REVIEWS], mesh.ports["inbound"]), timeout=5) as raw, \
            pytest.raises((ssl.SSLError, OSError)):
        context.wrap_socket(raw, server_hostname="reviews")
    wait_until(lambda: _protocol_errors(server) > errors, 10, what="the HTTP chain to take the ClientHello")
    assert stat(server, f"listener.{listener}.no_filter_chain_match") == unmatched


def _protocol_errors(sidecar: Sidecar) -> int:
    """HTTP protocol errors on reviews' inbound connection managers (what a ClientHello is to them)."""
    return sum(int(value) for name, value in sidecar.stats("downstream_cx_protocol_error").items()
               if name.startswith("http.inbound_"))


POOL = "trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}"


@pytest.mark.parametrize(("mode", "peer", "status", "caller"), [
    pytest.param("DISABLE", PERMISSIVE, 200, "none", id="DISABLE: plaintext, a PERMISSIVE server takes it"),
    pytest.param("DISABLE", STRICT, 503, "", id="DISABLE: plaintext, a STRICT server refuses it"),
    pytest.param("ISTIO_MUTUAL", STRICT, 200, PRODUCTPAGE, id="ISTIO_MUTUAL: the workload certificate"),
])
def test_destination_rule_tls_modes(mesh: AgentMesh, policies: Path, mode: str, peer: str, status: int,
                                    caller: str) -> None:
    """reviews' DestinationRule (one connection per request) with `tls.mode` set, as the
    client side sees it: what productpage's sidecar gets back, and who the app saw calling."""
    path = mesh.config_dir / "mesh.yaml"
    original = path.read_text()
    assert POOL in original
    try:
        apply(mesh, peer, ["tls"] if peer == STRICT else ["tls", "raw_buffer"])
        _write(mesh, "mesh.yaml", original.replace(POOL, POOL[:-1] + f", tls: {{mode: {mode}}}}}"))

        def settled() -> bool:
            got, body = mesh.call(PRODUCTPAGE)
            if got != status:
                return False
            if caller == "none":
                return body == "none"
            return not caller or body.endswith(f";URI={identity(caller)}")

        wait_until(settled, 30, what=f"productpage's answer with DestinationRule tls {mode} ({status})")
    finally:
        _write(mesh, "mesh.yaml", original)


class _WhoCalled(Answering):
    """An HTTPS service outside the mesh: answers with the common name of the client
    certificate the TLS handshake presented, or `none`."""

    def answer(self) -> str:
        presented = self.connection.getpeercert()  # type: ignore[attr-defined]
        names = [value for field in (presented or {}).get("subject", ()) for key, value in field if key == "commonName"]
        return str(names[0]) if names else "none"


@pytest.fixture(scope="module")
def external(mesh: AgentMesh) -> Iterator[tuple[Path, int]]:
    """An HTTPS server on 127.0.0.1 with a certificate for `secure.example.com` from a CA of
    its own, which also trusts (but does not require) client certificates from that CA; the CA
    and a client certificate for `productpage-client` in files, as an operator would mount them."""
    authority = Authority.create("external-ca")
    files = mesh.workdir / "external"
    files.mkdir()
    (files / "ca.pem").write_bytes(authority.pem)
    (files / "other-ca.pem").write_bytes(Authority.create("another-ca").pem)
    for name, dns in (("server", "secure.example.com"), ("client", "productpage-client")):
        key, certificate = authority.issue(dns)
        (files / f"{name}-key.pem").write_bytes(key)
        (files / f"{name}.pem").write_bytes(certificate)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files / "server.pem", files / "server-key.pem")
    context.load_verify_locations(files / "ca.pem")
    context.verify_mode = ssl.CERT_OPTIONAL
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WhoCalled)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield files, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("mode", "roots", "client_files", "sans", "expected"), [
    pytest.param("SIMPLE", "ca.pem", False, "", (200, "none"),
                 id="SIMPLE: the server verified against caCertificates, no client certificate"),
    pytest.param("SIMPLE", "other-ca.pem", False, "", (503, None), id="SIMPLE: a server the CA did not sign is refused"),
    pytest.param("MUTUAL", "ca.pem", True, "", (200, "productpage-client"), id="MUTUAL: the client certificate from files"),
    pytest.param("SIMPLE", "ca.pem", False, "secure.example.com", (200, "none"),
                 id="SIMPLE: subjectAltNames matches the server's DNS SAN"),
    pytest.param("SIMPLE", "ca.pem", False, "other.example.com", (503, None),
                 id="SIMPLE: a server without the SAN named is refused"),
])
def test_destination_rule_tls_origination_to_an_external_service(
        mesh: AgentMesh, external: tuple[Path, int], mode: str, roots: str, client_files: bool, sans: str,
        expected: tuple[int, str | None]) -> None:
    """productpage's sidecar originates TLS to an HTTPS service outside the mesh, with the CA
    (and client certificate) files a DestinationRule names, which the agent serves over SDS,
    and the server's certificate checked for the `subjectAltNames` given (a DNS name here, as
    for most services outside the mesh)."""
    files, port = external
    client = (f"\n      clientCertificate: {files / 'client.pem'}\n      privateKey: {files / 'client-key.pem'}"
              if client_files else "")
    if sans:
        client += f"\n      subjectAltNames: [{sans}]"
    _write(mesh, "external.yaml", f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {SERVICE_PORT}, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: default}}
spec:
  host: secure.example.com
  trafficPolicy:
    tls:
      mode: {mode}
      sni: secure.example.com
      caCertificates: {files / roots}{client}
""")

    def answered() -> bool:
        status, body = http_get(mesh.url(PRODUCTPAGE), headers={"Host": "secure.example.com"})
        return status == expected[0] and expected[1] in (None, body)

    try:
        wait_until(answered, 30, what=f"productpage's answer {expected} from the external service with tls {mode}")
        if expected[0] != 200:  # refused by the handshake: the server's certificate (or its SAN) did not verify
            refusal = "fail_verify_san" if sans else "fail_verify_error"
            refusals = f"cluster.outbound|{SERVICE_PORT}||secure.example.com;.ssl.{refusal}"
            assert stat(mesh.sidecars[PRODUCTPAGE], refusals) > 0
    finally:
        (mesh.config_dir / "external.yaml").unlink()
