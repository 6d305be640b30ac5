"""Gateway API objects translated end to end: the gateway Istio would deploy for a Gateway
(`NAME-istio`), its listeners, route configurations and credentials (a Secret of its namespace,
and one another namespace grants), judged by real Envoy; and routes whose parent is a Service
(GAMMA) on sidecars, with Istio's precedence against VirtualServices."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from consistent import assert_consistent
from meshctl.config.loader import load
from meshctl.envoybin import validate_bootstrap
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from testsupport import vhost

PLACEHOLDER = base64.b64encode(b"placeholder").decode()

GATEWAY = f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: istio-system}}
spec:
  gatewayClassName: istio
  listeners:
  - {{name: http, hostname: "*.example.com", port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
  - name: https
    hostname: web.example.com
    port: 443
    protocol: HTTPS
    allowedRoutes: {{namespaces: {{from: All}}}}
    tls: {{mode: Terminate, certificateRefs: [{{name: web-cert}}, {{name: other-cert, namespace: certs}}]}}
  - {{name: tls, port: 8443, protocol: TLS, tls: {{mode: Passthrough}}, allowedRoutes: {{namespaces: {{from: All}}}}}}
  - {{name: tcp, port: 9000, protocol: TCP, allowedRoutes: {{namespaces: {{from: All}}}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-cert, namespace: istio-system}}
type: kubernetes.io/tls
data: {{tls.crt: {PLACEHOLDER}, tls.key: {PLACEHOLDER}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: other-cert, namespace: certs}}
type: kubernetes.io/tls
data: {{tls.crt: {PLACEHOLDER}, tls.key: {PLACEHOLDER}}}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: web-certs, namespace: certs}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: Gateway, namespace: istio-system}}]
  to: [{{group: "", kind: Secret, name: other-cert}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: web, namespace: istio-system}}]
  hostnames: [web.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /api}}}}]
    backendRefs: [{{name: reviews, port: 9080}}]
  - backendRefs: [{{name: productpage, port: 9080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: grpc, namespace: default}}
spec:
  parentRefs: [{{name: web, namespace: istio-system, sectionName: http}}]
  hostnames: [grpc.example.com]
  rules: [{{matches: [{{method: {{service: echo.Echo}}}}], backendRefs: [{{name: reviews, port: 9080}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: pass, namespace: default}}
spec:
  parentRefs: [{{name: web, namespace: istio-system}}]
  hostnames: [pass.example.com]
  rules: [{{backendRefs: [{{name: productpage, port: 9443}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: db, namespace: default}}
spec:
  parentRefs: [{{name: web, namespace: istio-system}}]
  rules: [{{backendRefs: [{{name: reviews, port: 9080}}]}}]
"""

MESH = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec: {selector: {app: productpage}, ports: [{name: http, port: 9080}, {name: tls, port: 9443}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec: {containers: [{name: r, image: r}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}
spec: {containers: [{name: r, image: r}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2, namespace: default}
spec: {selector: {app: reviews, version: v2}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: productpage, namespace: default, labels: {app: productpage}}
spec: {containers: [{name: p, image: p}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other, labels: {app: client}}
spec: {containers: [{name: c, image: c}]}
"""


def snapshot_of(tmp_path: Path, *texts: str) -> MeshSnapshot:
    path = tmp_path / "mesh.yaml"
    path.write_text("\n---\n".join(texts))
    result = load([str(path)])
    assert not result.problems, "\n".join(map(str, result.problems))
    return build_snapshot(result.resources)


@pytest.fixture
def gateway_config(tmp_path: Path) -> tuple[MeshSnapshot, ProxyConfig]:
    snapshot = snapshot_of(tmp_path, GATEWAY, MESH)
    assert snapshot.warnings == ()
    proxy = snapshot.proxy("deploy/web-istio.istio-system")
    assert proxy.is_router
    return snapshot, generate(snapshot, proxy)


def test_the_deployed_gateway_serves_every_listener(gateway_config: tuple[MeshSnapshot, ProxyConfig]) -> None:
    snapshot, config = gateway_config
    assert sorted(listener.name for listener in config.listeners) == [
        "0.0.0.0_443", "0.0.0.0_80", "0.0.0.0_8443", "0.0.0.0_9000"]
    assert sorted(route.name for route in config.routes) == [
        "http.80", "https.443.default.web~istio-autogenerated-k8s-gateway~https.istio-system"]
    https = vhost(config, "https.443.default.web~istio-autogenerated-k8s-gateway~https.istio-system",
                  "web.example.com:443")
    assert [(r.match.path_separated_prefix or r.match.prefix, r.route.cluster) for r in https.routes] == [
        ("/api", "outbound|9080||reviews.default.svc.cluster.local"),
        ("/", "outbound|9080||productpage.default.svc.cluster.local")]
    grpc = vhost(config, "http.80", "grpc.example.com:80")
    assert [r.match.path_separated_prefix for r in grpc.routes] == ["/echo.Echo"]
    # The two certificates: the gateway's namespace's, and the one another namespace grants.
    assert sorted(secret.name for secret in config.secrets or []) == [
        "kubernetes-gateway://certs/other-cert", "kubernetes-gateway://istio-system/web-cert"]
    assert_consistent(config.packed(), "web-istio")


def test_a_listener_whose_secret_no_grant_opens_is_not_served(tmp_path: Path) -> None:
    ungranted = GATEWAY.replace("kind: Gateway, namespace: istio-system}", "kind: Gateway, namespace: elsewhere}")
    assert ungranted != GATEWAY
    snapshot = snapshot_of(tmp_path, ungranted, MESH)
    assert snapshot.warnings == ("Gateway istio-system/web: listener https: Secret certs/other-cert is in another "
                                 "namespace and no ReferenceGrant allows it",)
    config = generate(snapshot, snapshot.proxy("deploy/web-istio.istio-system"))
    assert "0.0.0.0_443" not in {listener.name for listener in config.listeners}
    assert not config.secrets


def test_a_deployed_gateway_running_as_another_account_gets_no_secrets(tmp_path: Path) -> None:
    """Istio deploys the gateway with the service account `NAME-CLASS`; a pod of that Gateway
    running as anything else is not given its certificates (Istio's check of the Gateway's
    service-account annotation against the proxy's identity)."""
    pod = """
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: istio-system, labels: {gateway.networking.k8s.io/gateway-name: web}}
spec: {serviceAccountName: intruder, containers: [{name: istio-proxy, image: proxyv2}]}
"""
    snapshot = snapshot_of(tmp_path, GATEWAY, MESH, pod)
    proxy = snapshot.proxy("web-0.istio-system")
    assert proxy.is_router
    config = generate(snapshot, proxy)
    assert "0.0.0.0_443" in {listener.name for listener in config.listeners}
    assert not config.secrets
    assert any("served by the service account web-istio" in warning for warning in config.warnings)


def test_the_deployed_gateway_is_accepted_by_envoy(gateway_config: tuple[MeshSnapshot, ProxyConfig]) -> None:
    snapshot, config = gateway_config
    proxy = snapshot.proxy("deploy/web-istio.istio-system")
    verdict = validate_bootstrap(static_bootstrap(proxy, config))
    assert verdict.ok, verdict.output


CLASH = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: clash, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: web, hostname: web.example.com, port: 80, protocol: HTTP}
  - {name: again, hostname: web.example.com, port: 80, protocol: HTTP}
  - {name: tcp, port: 9000, protocol: TCP}
  - {name: http, port: 9000, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: clash, sectionName: web}]
  hostnames: [web.example.com]
  rules: [{backendRefs: [{name: productpage, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: again, namespace: default}
spec:
  parentRefs: [{name: clash, sectionName: again}]
  hostnames: [web.example.com]
  rules: [{matches: [{path: {value: /again}}], backendRefs: [{name: reviews, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http, namespace: default}
spec:
  parentRefs: [{name: clash, sectionName: http}]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: db, namespace: default}
spec:
  parentRefs: [{name: clash, sectionName: tcp}]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
"""


def test_a_conflicted_listener_is_not_translated(tmp_path: Path) -> None:
    """The listener that loses a conflict (the second with web.example.com on port 80; the
    HTTP one on the TCP listener's port 9000) yields no Envoy config and no route attaches to
    it: port 80 routes only the winner's route, port 9000 stays plain TCP (were the HTTP
    listener translated, its server would come first and take the port)."""
    snapshot = snapshot_of(tmp_path, CLASH, MESH)
    assert snapshot.warnings == (
        "Gateway default/clash: listener again: HostnameConflict with an earlier listener on port 80: not translated",
        "Gateway default/clash: listener http: ProtocolConflict with an earlier listener on port 9000: not translated",
        "HTTPRoute default/again: attached to no parent (no Gateway listener or Service allows it)",
        "HTTPRoute default/http: attached to no parent (no Gateway listener or Service allows it)")
    config = generate(snapshot, snapshot.proxy("deploy/clash-istio.default"))
    assert sorted(listener.name for listener in config.listeners) == ["0.0.0.0_80", "0.0.0.0_9000"]
    assert [route.name for route in config.routes] == ["http.80"]
    web = vhost(config, "http.80", "web.example.com:80")
    assert [r.route.cluster for r in web.routes] == ["outbound|9080||productpage.default.svc.cluster.local"]
    (tcp,) = [listener for listener in config.listeners if listener.name == "0.0.0.0_9000"]
    assert [f.name for chain in tcp.filter_chains for f in chain.filters] == ["envoy.filters.network.tcp_proxy"]
    assert_consistent(config.packed(), "clash-istio")


# --- GAMMA: routes whose parent is a Service, on sidecars --------------------------------------

def gamma(name: str, namespace: str, backend: str, created: str = "") -> str:
    stamp = f", creationTimestamp: \"{created}\"" if created else ""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}{stamp}}}
spec:
  parentRefs: [{{group: "", kind: Service, name: reviews, namespace: default}}]
  rules: [{{backendRefs: [{{name: {backend}, namespace: default, port: 9080}}]}}]
"""


def virtual_service(created: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default, creationTimestamp: "{created}"}}
spec:
  hosts: [reviews]
  http: [{{route: [{{destination: {{host: reviews, subset: v1}}}}]}}]
"""


def reviews_cluster(snapshot: MeshSnapshot, client: str) -> str:
    config = generate(snapshot, snapshot.proxy(client))
    (route,) = vhost(config, "9080", "reviews.default.svc.cluster.local:9080").routes
    return str(route.route.cluster)


def test_a_producer_route_applies_to_every_client(tmp_path: Path) -> None:
    snapshot = snapshot_of(tmp_path, MESH, gamma("split", "default", "reviews-v2"))
    assert reviews_cluster(snapshot, "productpage.default") == "outbound|9080||reviews-v2.default.svc.cluster.local"
    assert reviews_cluster(snapshot, "client.other") == "outbound|9080||reviews-v2.default.svc.cluster.local"


def test_a_consumer_route_applies_to_its_own_namespace_only(tmp_path: Path) -> None:
    snapshot = snapshot_of(tmp_path, MESH, gamma("mine", "other", "reviews-v2"))
    assert reviews_cluster(snapshot, "client.other") == "outbound|9080||reviews-v2.default.svc.cluster.local"
    assert reviews_cluster(snapshot, "productpage.default") == "outbound|9080||reviews.default.svc.cluster.local"


def test_a_consumer_route_beats_a_virtual_service(tmp_path: Path) -> None:
    """In the client's namespace, routes of the Gateway API come before any VirtualService for
    the same host, however old."""
    snapshot = snapshot_of(tmp_path, MESH, virtual_service("2020-01-01T00:00:00Z"),
                           gamma("mine", "other", "reviews-v2", "2024-01-01T00:00:00Z"))
    assert reviews_cluster(snapshot, "client.other") == "outbound|9080||reviews-v2.default.svc.cluster.local"
    assert reviews_cluster(snapshot, "productpage.default") == "outbound|9080|v1|reviews.default.svc.cluster.local"


@pytest.mark.parametrize(("route_created", "vs_created", "winner"), [
    ("2020-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "outbound|9080||reviews-v2.default.svc.cluster.local"),
    ("2024-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "outbound|9080|v1|reviews.default.svc.cluster.local"),
])
def test_between_a_producer_route_and_a_virtual_service_the_older_wins(
        tmp_path: Path, route_created: str, vs_created: str, winner: str) -> None:
    """Seen from another namespace (where neither is local), one VirtualService per host, oldest
    first."""
    snapshot = snapshot_of(tmp_path, MESH, virtual_service(vs_created),
                           gamma("split", "default", "reviews-v2", route_created))
    assert reviews_cluster(snapshot, "client.other") == winner
