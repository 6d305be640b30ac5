"""Real Envoy judges every gateway shape (envoy --mode validate on a static bootstrap, what
`translate --validate` runs): plain HTTP and gRPC, HTTPS SIMPLE, MUTUAL and OPTIONAL_MUTUAL
with credentialName (and several credentials), with certificate files, ISTIO_MUTUAL, TLS
terminated to TCP, PASSTHROUGH and AUTO_PASSTHROUGH by SNI, opaque TCP, httpsRedirect, servers
with a bind address, and an egress gateway originating TLS with a credential."""

from __future__ import annotations

import base64
import datetime
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consistent import assert_consistent
from meshctl.config.loader import load
from meshctl.envoybin import validate_bootstrap
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.generate.proxy import generate
from meshctl.model.snapshot import MeshSnapshot, build_snapshot

SHAPES = """
apiVersion: v1
kind: Pod
metadata: {name: gw, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {serviceAccountName: gw, containers: [{name: istio-proxy, image: proxyv2}]}
status: {podIP: 10.1.0.9}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
---
apiVersion: v1
kind: Secret
metadata: {name: web-cert, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: CERT, tls.key: KEY, ca.crt: CERT}
---
apiVersion: v1
kind: Secret
metadata: {name: second-cert, namespace: istio-system}
data: {cert: CERT, key: KEY}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shapes, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [web.example.com], tls: {httpsRedirect: true}}
  - {port: {number: 80, name: http-more, protocol: HTTP}, hosts: [plain.example.com]}
  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [web.example.com], tls: {mode: SIMPLE, credentialName: web-cert}}
  - {port: {number: 443, name: https-mutual, protocol: HTTPS}, hosts: [mutual.example.com],
     tls: {mode: MUTUAL, credentialName: web-cert, subjectAltNames: [client.example.com]}}
  - {port: {number: 443, name: https-optional, protocol: HTTPS}, hosts: [optional.example.com],
     tls: {mode: OPTIONAL_MUTUAL, credentialNames: [web-cert, second-cert], minProtocolVersion: TLSV1_2}}
  - {port: {number: 443, name: https-files, protocol: HTTPS}, hosts: [files.example.com],
     tls: {mode: SIMPLE, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key}}
  - {port: {number: 443, name: passthrough, protocol: TLS}, hosts: [pass.example.com], tls: {mode: PASSTHROUGH}}
  - {port: {number: 9000, name: grpc, protocol: GRPC}, hosts: ["*"]}
  - {port: {number: 9100, name: tcp, protocol: TCP}, hosts: ["*"]}
  - {port: {number: 9200, name: tls-terminate, protocol: TLS}, hosts: [db.example.com],
     tls: {mode: SIMPLE, credentialName: web-cert}}
  - {port: {number: 9300, name: mtls, protocol: TLS}, hosts: [mesh.example.com], tls: {mode: ISTIO_MUTUAL}}
  - {port: {number: 15443, name: tls-auto, protocol: TLS}, hosts: ["*.local"], tls: {mode: AUTO_PASSTHROUGH}}
  - {port: {number: 9400, name: bound, protocol: HTTP}, hosts: ["*"], bind: 127.0.0.1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/shapes]
  http:
  - match: [{uri: {prefix: /api}, port: 443}]
    route: [{destination: {host: api, subset: v1}}]
  - route: [{destination: {host: web}}]
  tcp:
  - match: [{port: 9100}]
    route: [{destination: {host: db, port: {number: 5432}}, weight: 50}, {destination: {host: db2, port: {number: 5432}}, weight: 50}]
  - match: [{port: 9200}, {port: 9300}]
    route: [{destination: {host: db, port: {number: 5432}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pass, namespace: default}
spec:
  hosts: [pass.example.com]
  gateways: [istio-system/shapes]
  tls:
  - match: [{port: 443, sniHosts: [pass.example.com]}]
    route: [{destination: {host: web, port: {number: 8443}}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{name: http, port: 8080}, {name: https, port: 8443}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {selector: {app: api}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: db2, namespace: default}
spec: {clusterIP: None, selector: {app: db2}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-v1, namespace: default}
spec:
  selector: {matchLabels: {app: api, version: v1}}
  template:
    metadata: {labels: {app: api, version: v1}}
    spec: {containers: [{name: api, image: api}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db2-0, namespace: default, labels: {app: db2}}
spec: {containers: [{name: db, image: db}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: egress
  namespace: istio-system
  labels: {istio: egressgateway}
spec: {serviceAccountName: egress, containers: [{name: istio-proxy, image: proxyv2}]}
---
apiVersion: v1
kind: Secret
metadata: {name: client-cert, namespace: istio-system}
data: {tls.crt: CERT, tls.key: KEY, ca.crt: CERT}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.external.com]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [api.external.com]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate, namespace: istio-system}
spec:
  host: api.external.com
  exportTo: ["."]
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: MUTUAL, credentialName: client-cert, sni: api.external.com}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: egress, namespace: istio-system}
spec:
  hosts: [api.external.com]
  gateways: [egress]
  http:
  - route: [{destination: {host: api.external.com, port: {number: 443}}}]
"""


def _certificate() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("web.example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            base64.b64encode(key_pem).decode())


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> MeshSnapshot:
    cert, key = _certificate()
    path = tmp_path_factory.mktemp("shapes") / "shapes.yaml"
    path.write_text(SHAPES.replace("CERT", cert).replace("KEY", key))
    result = load([str(path)])
    assert not result.problems, "\n".join(map(str, result.problems))
    return build_snapshot(result.resources)


@pytest.mark.parametrize("target", ["gw.istio-system", "egress.istio-system"])
def test_every_gateway_shape_is_accepted_by_envoy(shapes: MeshSnapshot, target: str) -> None:
    proxy = shapes.proxy(target)
    assert proxy.is_router
    config = generate(shapes, proxy)
    assert_consistent(config.packed(), target)
    assert config.listeners and config.routes
    verdict = validate_bootstrap(static_bootstrap(proxy, config))
    assert verdict.ok, verdict.output


def test_the_shapes_are_all_there(shapes: MeshSnapshot) -> None:
    """The config judged above really holds every shape (a silently dropped server would pass)."""
    config = generate(shapes, shapes.proxy("gw.istio-system"))
    names = {listener.name for listener in config.listeners}
    assert names == {"0.0.0.0_8080", "0.0.0.0_8443", "0.0.0.0_9000", "0.0.0.0_9100", "0.0.0.0_9200",
                     "0.0.0.0_9300", "0.0.0.0_15443", "127.0.0.1_9400"}
    https = next(listener for listener in config.listeners if listener.name == "0.0.0.0_8443")
    assert [list(chain.filter_chain_match.server_names) for chain in https.filter_chains] == [
        ["web.example.com"], ["mutual.example.com"], ["optional.example.com"], ["files.example.com"],
        ["pass.example.com"]]
    auto = next(listener for listener in config.listeners if listener.name == "0.0.0.0_15443")
    assert {name for chain in auto.filter_chains for name in chain.filter_chain_match.server_names} >= {
        "outbound_.9080_._.api.default.svc.cluster.local", "outbound_.9080_.v1_.api.default.svc.cluster.local"}
    # the servers' credentials, and the client certificate of the DestinationRule of the gateway's
    # namespace (it applies to both gateways of istio-system)
    assert {secret.name for secret in config.secrets or []} == {
        "kubernetes://web-cert", "kubernetes://web-cert-cacert", "kubernetes://second-cert",
        "kubernetes://client-cert", "kubernetes://client-cert-cacert"}
    assert {route.name for route in config.routes} == {
        "http.8080", "http.9000", "http.9400.127.0.0.1", "https.443.https.shapes.istio-system",
        "https.443.https-mutual.shapes.istio-system", "https.443.https-optional.shapes.istio-system",
        "https.443.https-files.shapes.istio-system"}
    assert "outbound_.9080_.v1_.api.default.svc.cluster.local" in {cluster.name for cluster in config.clusters}
    egress = generate(shapes, shapes.proxy("egress.istio-system"))
    assert {secret.name for secret in egress.secrets or []} == {"kubernetes://client-cert",
                                                                 "kubernetes://client-cert-cacert"}


def test_validation_uses_stand_in_certificates(shapes: MeshSnapshot) -> None:
    """The bootstrap judged by Envoy carries no real key: each ADS secret is a throwaway."""
    proxy = shapes.proxy("gw.istio-system")
    config = generate(shapes, proxy)
    bootstrap = static_bootstrap(proxy, config)
    real = {secret.name: secret.tls_certificate.private_key.inline_bytes for secret in config.secrets or []}
    stand_ins = {secret.name: secret.tls_certificate.private_key.inline_bytes for secret in bootstrap.static_resources.secrets}
    assert set(stand_ins) == set(real)
    assert all(stand_ins[name] != real[name] for name in real if real[name])
