"""A real Envoy gateway, configured by `meshctl serve` and run by `meshctl agent` as a router:
plain HTTP routed by host and path, TLS terminated with a certificate served over SDS (the
client checks it and reaches the backend), TLS passed through by SNI (the client sees the
backend's own certificate); the same for a Gateway API Gateway and HTTPRoute on the same
pods, and `proxy-config` reads the live gateway by Istio's names. The certificate's key reaches the gateway's Envoy and nothing else:
not a gateway that has not proved its identity, not serve's logs or debug answers.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from gateway_mesh import API_HOST, GATEWAY_POD, NAMESPACE, PASS_HOST, SECURE_HOST, SPARE_POD, WEB_HOST, GatewayMesh, key_pem
from leaks import findings, texts

from meshctl.agent.certificate import certificate_request, new_key
from meshctl.loopback import Processes, http_get, wait_until
from meshctl.resources import SECRET
from meshctl.security.ca import CertificateAuthority
from meshctl.security.cadir import open_ca_directory
from meshctl.security.spiffe import spiffe_id
from meshctl.peer import PEER_IDENTITY

SECRET_NAME = "kubernetes://secure-cert"
API_SECRET = "kubernetes-gateway://istio-system/api-cert"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayMesh]:
    with Processes() as processes:
        mesh = GatewayMesh(tmp_path_factory.mktemp("gateway"), processes)
        try:
            mesh.start()
            mesh.gateway.wait_ready(60)
            wait_until(lambda: get(mesh, "/", WEB_HOST)[0] == 200, 30, what="the gateway to route web.example.com")
            yield mesh
        finally:
            mesh.stop()


def get(mesh: GatewayMesh, path: str, host: str) -> tuple[int, str]:
    return http_get(f"http://127.0.0.1:{mesh.ports['http']}{path}", headers={"Host": host})


def tls_get(port: int, sni: str, roots: bytes, path: str = "/") -> tuple[x509.Certificate, str]:
    """One HTTPS request to 127.0.0.1:`port` with SNI `sni`, the server's certificate checked
    against `roots` for that name: (the certificate, the response body)."""
    context = ssl.create_default_context(cadata=roots.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=sni) as conn:
        peer = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))  # type: ignore[arg-type]
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return peer, body.decode()


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def test_plain_http_is_routed_by_host_and_path(gateway: GatewayMesh) -> None:
    assert get(gateway, "/", WEB_HOST) == (200, "web-a")
    assert get(gateway, "/b/items", WEB_HOST) == (200, "web-b")
    assert get(gateway, "/bx", WEB_HOST) == (200, "web-a")  # a prefix `/b/`, not `/b`
    assert get(gateway, "/", "other.example.com")[0] == 404  # no virtual host: Envoy's NR
    assert get(gateway, "/", SECURE_HOST)[0] == 404  # that host is served on 443 only


def test_tls_is_terminated_with_the_certificate_served_over_sds(gateway: GatewayMesh) -> None:
    peer, body = tls_get(gateway.ports["https"], SECURE_HOST, gateway.ca.pem)
    assert common_name(peer) == SECURE_HOST and body == "web-a"
    assert tls_get(gateway.ports["https"], SECURE_HOST, gateway.ca.pem, "/b/1")[1] == "web-b"
    secrets = json.loads(gateway.gateway.admin("config_dump?resource=dynamic_active_secrets"))["configs"]
    held = {entry["name"]: entry["secret"] for entry in secrets}
    assert set(held) == {"default", "ROOTCA", SECRET_NAME, API_SECRET}  # the workload's own, and the servers'
    chain = base64.b64decode(held[SECRET_NAME]["tls_certificate"]["certificate_chain"]["inline_bytes"])
    assert x509.load_pem_x509_certificate(chain) == peer
    with pytest.raises((ssl.SSLError, ConnectionError)):  # a name the gateway serves no TLS for: no chain matches
        tls_get(gateway.ports["https"], "other.example.com", gateway.ca.pem)


def test_gateway_api_routes_by_hostname_and_path_prefix(gateway: GatewayMesh) -> None:
    assert get(gateway, "/v2/items", API_HOST) == (200, "web-b")
    assert get(gateway, "/v2", API_HOST) == (200, "web-b")
    assert get(gateway, "/v2x", API_HOST) == (200, "web-a")  # PathPrefix matches whole segments
    assert get(gateway, "/", API_HOST) == (200, "web-a")
    assert get(gateway, "/b/items", WEB_HOST) == (200, "web-b")  # the Istio Gateway's routes, on the same port


def test_gateway_api_tls_is_terminated_with_its_certificate_ref(gateway: GatewayMesh) -> None:
    peer, body = tls_get(gateway.ports["https"], API_HOST, gateway.ca.pem, "/v2/1")
    assert common_name(peer) == API_HOST and body == "web-b"
    peer, body = tls_get(gateway.ports["https"], SECURE_HOST, gateway.ca.pem)  # the other chain of the same listener
    assert common_name(peer) == SECURE_HOST and body == "web-a"


def test_proxy_config_reads_the_live_gateway_by_istios_names(gateway: GatewayMesh,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from testsupport import run_cli

    admin = gateway.gateway.admin_url
    http, https = gateway.ports["http"], gateway.ports["https"]
    code, listeners, err = run_cli(capsys, "proxy-config", "listeners", "--admin", admin)
    assert code == 0, err
    rows = {" ".join(line.split()) for line in listeners.splitlines()}
    assert f"0.0.0.0 {http} ALL Route: http.{http}" in rows
    assert f"0.0.0.0 {https} SNI: {SECURE_HOST} Route: https.443.https.public.istio-system" in rows
    assert f"0.0.0.0 {https} SNI: {API_HOST} Route: https.443.default.api~istio-autogenerated-k8s-gateway~https.istio-system" in rows
    code, routes, err = run_cli(capsys, "proxy-config", "routes", "--admin", admin, "--name", f"http.{http}")
    assert code == 0, err
    assert f"{WEB_HOST}:80" in routes and f"{API_HOST}:80" in routes
    code, secrets, err = run_cli(capsys, "proxy-config", "secret", "--admin", admin, "-o", "json")
    assert code == 0, err
    assert SECRET_NAME in secrets and API_SECRET in secrets
    assert findings(texts([("proxy-config secret", secrets + err)]),
                    {"gateway": gateway.keys["secure"], "Gateway API gateway": gateway.keys["api"]}) == []


def test_tls_is_passed_through_by_sni(gateway: GatewayMesh) -> None:
    peer, body = tls_get(gateway.ports["passthrough"], PASS_HOST, gateway.ca.pem)
    assert common_name(peer) == PASS_HOST and body == "tls-backend"  # the backend's certificate, not the gateway's
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_get(gateway.ports["passthrough"], "unknown.example.com", gateway.ca.pem)


def _ads_secret(channel: grpc.Channel, pod: str) -> secret_pb2.Secret | None:
    """Ask serve over ADS, as gateway `pod` would, for the certificate; None if none comes."""
    node = base_pb2.Node(id=f"router~127.0.0.1~{pod}.{NAMESPACE}~{NAMESPACE}.svc.cluster.local")
    node.metadata.update({"NAMESPACE": NAMESPACE, "ISTIO_VERSION": "1.30.0", PEER_IDENTITY: "spiffe://forged"})
    request = discovery_pb2.DiscoveryRequest(node=node, type_url=SECRET, resource_names=[SECRET_NAME])
    responses = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(iter([request]),
                                                                                               timeout=3)
    try:
        for response in responses:
            for resource in response.resources:
                secret = secret_pb2.Secret()
                resource.Unpack(secret)
                if secret.name == SECRET_NAME:
                    return secret
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
    return None


def _client_certificate(gateway: GatewayMesh, namespace: str, account: str) -> tuple[bytes, bytes]:
    """A workload certificate from serve's CA for `namespace/account` (key PEM, chain PEM)."""
    authority = CertificateAuthority(open_ca_directory(gateway.ca_dir, "cluster.local").bundle)
    key = new_key()
    identity = spiffe_id("cluster.local", namespace, account)
    chain = authority.sign_csr(certificate_request(key, identity), [identity])
    return key_pem(key), "".join(chain).encode()


def _mtls_channel(gateway: GatewayMesh, namespace: str, account: str) -> grpc.Channel:
    key, chain = _client_certificate(gateway, namespace, account)
    credentials = grpc.ssl_channel_credentials((gateway.ca_dir / "root-cert.pem").read_bytes(), key, chain)
    return grpc.secure_channel(f"127.0.0.1:{gateway.ports['mtls']}", credentials,
                               options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")])


def test_only_a_gateway_proving_its_namespace_is_sent_the_secret(gateway: GatewayMesh) -> None:
    with grpc.insecure_channel(gateway.serve.xds_address) as plaintext:
        assert _ads_secret(plaintext, SPARE_POD) is None  # a node id, even with forged metadata, proves nothing
    with _mtls_channel(gateway, "default", "attacker") as elsewhere:
        assert _ads_secret(elsewhere, SPARE_POD) is None  # proven, but not as a service account of istio-system
    with _mtls_channel(gateway, NAMESPACE, "istio-ingressgateway") as proven:
        secret = _ads_secret(proven, SPARE_POD)
    assert secret is not None
    assert secret.tls_certificate.private_key.inline_bytes == key_pem(gateway.keys["secure"])
    log = (gateway.workdir / "serve.log").read_text()
    assert f"secret {SECRET_NAME} not sent: the gateway has not proved its identity" in log
    assert f"secret {SECRET_NAME} not sent: a gateway is only given Secrets of its own namespace" in log


def test_no_output_holds_the_gateways_key(gateway: GatewayMesh, capsys: pytest.CaptureFixture[str]) -> None:
    from testsupport import run_cli

    debug = http_get(f"{gateway.serve.debug_url}/debug/config_dump?proxyID={GATEWAY_POD}.{NAMESPACE}")
    assert debug[0] == 200 and SECRET_NAME in debug[1]
    dumped = _secret_in_dump(json.loads(debug[1]))["tls_certificate"]["private_key"]
    assert base64.b64decode(dumped.get("inline_bytes") or dumped["inlineBytes"]) == b"[redacted]"
    code, translated, err = run_cli(capsys, "translate", "-f", str(gateway.config_dir), "-o", "json",
                                    "--proxy", f"{GATEWAY_POD}.{NAMESPACE}")
    assert code == 0, err
    assert base64.b64decode(_secret_in_dump(json.loads(translated))["tls_certificate"]["private_key"]
                            ["inline_bytes"]) == b"[redacted]"
    code, status, err = run_cli(capsys, "proxy-status", f"{GATEWAY_POD}.{NAMESPACE}", "--xds-address",
                                gateway.serve.xds_address, "--plaintext", "--admin", gateway.gateway.admin_url)
    assert code == 0 and "Listeners Match" in status and "Routes Match" in status, status + err
    outputs = texts([
        ("serve log", (gateway.workdir / "serve.log").read_bytes()),
        ("agent log", gateway.gateway.log.read_bytes()),
        ("serve /debug/config_dump", debug[1]),
        ("serve /debug/configz", http_get(f"{gateway.serve.debug_url}/debug/configz")[1]),
        ("Envoy /config_dump", gateway.gateway.admin("config_dump?include_eds")),
        ("translate -o json", translated),
        ("proxy-status", status + err),
    ])
    assert findings(outputs, {"gateway": gateway.keys["secure"], "Gateway API gateway": gateway.keys["api"]}) == []


def _secret_in_dump(dump: dict[str, Any]) -> dict[str, Any]:
    """The certificate's entry in a config dump (Envoy's snake_case, or istiod's camelCase as
    serve's debug endpoint prints it), its keys in snake_case."""
    for section in dump["configs"]:
        if section["@type"].endswith("SecretsConfigDump"):
            for entry in section.get("dynamic_active_secrets", section.get("dynamicActiveSecrets", [])):
                if entry["name"] == SECRET_NAME:
                    certificate = entry["secret"].get("tls_certificate") or entry["secret"]["tlsCertificate"]
                    return {"tls_certificate": {"private_key": certificate.get("private_key")
                                                or certificate["privateKey"]}}
    raise AssertionError(f"{SECRET_NAME} not in the dump")
