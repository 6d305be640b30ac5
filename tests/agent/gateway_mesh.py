"""An ingress gateway for real: `meshctl serve` (its CA, xDS over mutual TLS) and the gateway's
Envoy run by `meshctl agent` as a router, in front of backends on loopback.

The gateway pod `istio-ingressgateway-0.istio-system` (its address one no backend shares: an
endpoint at a pod's address is that pod's, and a gateway pod would be reached over mTLS) is selected by the Gateway `public`:
port 80 (plain HTTP, routed by host and path to web-a and web-b), 443 (HTTPS for
secure.example.com, its certificate the Secret `secure-cert`, served over SDS by serve), and
8443 (TLS passed through by SNI to a backend holding its own certificate). The Gateway API
Gateway `api` is deployed on the same pods (its address the gateway Service, as Istio's manual
deployment): api.example.com on 80 and on 443 (its certificate the Secret `api-cert`), routed by
the HTTPRoute `api` of another namespace. The gateway Service maps those ports to free ports
of this machine, as the istio-ingress chart maps 80 to 8080.
Certificates come from a CA of the test's own (a public CA, not the mesh's).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshctl.loopback import ControlPlane, NameServer, Processes, Sidecar, free_port

GATEWAY_POD = "istio-ingressgateway-0"
SPARE_POD = "istio-ingressgateway-1"
NAMESPACE = "istio-system"
ACCOUNT = "istio-ingressgateway"
WEB_HOST, SECURE_HOST, PASS_HOST = "web.example.com", "secure.example.com", "pass.example.com"
API_HOST = "api.example.com"

MESH = """\
apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  namespace: istio-system
  labels: {{istio: ingressgateway, app: istio-ingressgateway}}
spec:
  serviceAccountName: istio-ingressgateway
  containers: [{{name: istio-proxy, image: proxyv2}}]
status: {{podIP: {ip}}}
---
"""

CONFIG = """\
apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: {http}}}
  - {{name: https, port: 443, targetPort: {https}}}
  - {{name: tls, port: 8443, targetPort: {passthrough}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: public, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ["{web}"]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: ["{secure}"]
    tls: {{mode: SIMPLE, credentialName: secure-cert}}
  - port: {{number: 8443, name: tls, protocol: TLS}}
    hosts: ["{passthrough_host}"]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: v1
kind: Secret
metadata: {{name: secure-cert, namespace: istio-system}}
type: kubernetes.io/tls
data:
  tls.crt: {cert}
  tls.key: {key}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: api, namespace: istio-system}}
spec:
  gatewayClassName: istio
  addresses: [{{type: Hostname, value: istio-ingressgateway}}]
  listeners:
  - {{name: http, port: 80, protocol: HTTP, hostname: "{api}", allowedRoutes: {{namespaces: {{from: All}}}}}}
  - name: https
    port: 443
    protocol: HTTPS
    hostname: "{api}"
    allowedRoutes: {{namespaces: {{from: All}}}}
    tls: {{mode: Terminate, certificateRefs: [{{name: api-cert}}]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: api-cert, namespace: istio-system}}
type: kubernetes.io/tls
data:
  tls.crt: {api_cert}
  tls.key: {api_key}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: api, namespace: default}}
spec:
  parentRefs: [{{name: api, namespace: istio-system}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /v2}}}}]
    backendRefs: [{{name: web-b, port: 8080}}]
  - backendRefs: [{{name: web-a, port: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: ["{web}", "{secure}"]
  gateways: [istio-system/public]
  http:
  - match: [{{uri: {{prefix: /b/}}}}]
    route: [{{destination: {{host: web-b}}}}]
  - route: [{{destination: {{host: web-a}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: pass, namespace: default}}
spec:
  hosts: ["{passthrough_host}"]
  gateways: [istio-system/public]
  tls:
  - match: [{{port: 8443, sniHosts: ["{passthrough_host}"]}}]
    route: [{{destination: {{host: tls-backend, port: {{number: 443}}}}}}]
"""

BACKEND = """\
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: {port_name}, port: {service_port}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: default}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{name: {port_name}, port: {port}}}]
"""


@dataclass
class TestCA:
    """A public CA of the test's own, issuing server certificates by host name."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshctl test public CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, host: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return key, cert


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class _Named(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class TlsBackend:
    """An HTTPS server with its own certificate: what the gateway passes TLS through to."""

    def __init__(self, name: str, cert_file: Path, key_file: Path) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        self.server.daemon_threads = True
        self.server.name = name  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class GatewayMesh:
    workdir: Path
    processes: Processes
    ca: TestCA = field(default_factory=TestCA)
    ports: dict[str, int] = field(default_factory=dict)
    backends: list[Any] = field(default_factory=list)
    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    serve: ControlPlane = field(init=False)
    gateway: Sidecar = field(init=False)

    @property
    def config_dir(self) -> Path:
        return self.workdir / "mesh"

    @property
    def ca_dir(self) -> Path:
        return self.workdir / "ca"

    def start(self) -> GatewayMesh:
        self.ports = {"http": free_port(), "https": free_port(), "passthrough": free_port(), "mtls": free_port()}
        secure_key, secure_cert = self.ca.issue(SECURE_HOST)
        api_key, api_cert = self.ca.issue(API_HOST)
        pass_key, pass_cert = self.ca.issue(PASS_HOST)
        self.keys = {"secure": secure_key, "api": api_key, "passthrough backend": pass_key}
        (self.workdir / "pass.crt").write_bytes(pass_cert.public_bytes(serialization.Encoding.PEM))
        (self.workdir / "pass.key").write_bytes(key_pem(pass_key))
        web_a, web_b = NameServer("web-a"), NameServer("web-b")
        tls = TlsBackend("tls-backend", self.workdir / "pass.crt", self.workdir / "pass.key")
        self.backends = [web_a, web_b, tls]
        text = MESH.format(pod=GATEWAY_POD, ip="10.10.0.1") + MESH.format(pod=SPARE_POD, ip="10.10.0.2") + CONFIG.format(
            http=self.ports["http"], https=self.ports["https"], passthrough=self.ports["passthrough"], web=WEB_HOST,
            secure=SECURE_HOST, passthrough_host=PASS_HOST, api=API_HOST,
            cert=base64.b64encode(secure_cert.public_bytes(serialization.Encoding.PEM)).decode(),
            key=base64.b64encode(key_pem(secure_key)).decode(),
            api_cert=base64.b64encode(api_cert.public_bytes(serialization.Encoding.PEM)).decode(),
            api_key=base64.b64encode(key_pem(api_key)).decode())
        for name, port_name, service_port, port in (("web-a", "http", 8080, web_a.port), ("web-b", "http", 8080, web_b.port),
                                                    ("tls-backend", "tls", 443, tls.port)):
            text += BACKEND.format(name=name, port_name=port_name, service_port=service_port, port=port)
        self.config_dir.mkdir(parents=True)
        (self.config_dir / "mesh.yaml").write_text(text)
        self.serve = ControlPlane(self.processes.start, self.config_dir, self.ca_dir, self.workdir / "serve.log",
                                  extra=["--debounce-after", "10ms", "--log-level", "debug",
                                         "--xds-mtls-address", f"127.0.0.1:{self.ports['mtls']}"]).wait_ready()
        token = self.serve.token(NAMESPACE, ACCOUNT, self.workdir / "gateway.token", pod=GATEWAY_POD)
        self.gateway = Sidecar.start(
            f"{GATEWAY_POD}.{NAMESPACE}", self.workdir, "gateway", xds_address=f"127.0.0.1:{self.ports['mtls']}",
            ca_address=self.serve.ca_address, ca_root=self.ca_dir / "root-cert.pem", token_file=token,
            config_dir=self.config_dir, log_level="debug", extra=["--control-plane-auth-policy", "MUTUAL_TLS"])
        return self

    def stop(self) -> None:
        self.gateway.stop()
        self.processes.stop()
        for backend in self.backends:
            backend.stop()
