"""The demo mesh: Bookinfo's reviews service in three versions behind real Envoy sidecars.

By default everything runs on one machine without iptables: the reviews pods are small HTTP
servers on loopback addresses (127.0.0.21-23), and each client sidecar runs with interception
mode NONE, its Sidecar resource binding the outbound listener to an address of its own, so a
plain HTTP client can send traffic through it and several sidecars can run side by side.

With capture (`meshctl demo --capture`), each pod has a network namespace and an address of its
own, reviews and details have ClusterIPs that exist nowhere (as with kube-proxy), and the
sidecars capture traffic with iptables, as in a cluster: no Sidecar resources, no bound listeners.

Mutual TLS is STRICT mesh-wide: details runs behind a sidecar of its own, so the clients'
sidecars reach it over mTLS and it sees who called; the reviews pods have no sidecar and are
reached in plaintext, as workloads outside the mesh are.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BACKENDS",
    "CLUSTER_IPS",
    "Client",
    "Layout",
    "SERVICE_PORT",
    "STRICT",
    "Server",
    "VERSIONS",
    "authorization_yaml",
    "routing_yaml",
    "workloads_yaml",
]

VERSIONS = ("v1", "v2", "v3")
BACKENDS = tuple(f"reviews-{version}" for version in VERSIONS)  # what each backend answers
SERVICE_PORT = 9080
CLUSTER_IPS = {"reviews": "10.96.0.50", "details": "10.96.0.60"}  # with capture only


@dataclass(frozen=True, slots=True)
class Client:
    """A client workload with a sidecar: its pod name, and where its outbound listener binds."""

    name: str
    bind: str  # captured: the pod's address

    @property
    def pod(self) -> str:
        return f"{self.name}-v1"

    @property
    def service_account(self) -> str:
        return f"bookinfo-{self.name}"


@dataclass(frozen=True, slots=True)
class Server:
    """details: an app on 127.0.0.1 behind its own sidecar, which binds the pod's inbound port
    on an address of its own and enforces the pod's AuthorizationPolicies."""

    ip: str
    inbound_port: int
    app_port: int
    name: str = "details"

    @property
    def pod(self) -> str:
        return f"{self.name}-v1"

    @property
    def service_account(self) -> str:
        return f"bookinfo-{self.name}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything listens: backend addresses and port, the client sidecars, details."""

    backend_ips: tuple[str, ...]
    backend_port: int
    clients: tuple[Client, ...]
    server: Server
    captured: bool = False  # pods in network namespaces, traffic captured: see meshctl.demo.captured

    def backend(self, version: str) -> str:
        return self.backend_ips[VERSIONS.index(version)]

    @property
    def workloads(self) -> tuple[Client | Server, ...]:
        """The workloads with a sidecar, in the order their sidecars start: clients, then details."""
        return (*self.clients, self.server)


def _service(name: str, target_port: int | None = None, cluster_ip: str = "") -> str:
    target = f", targetPort: {target_port}" if target_port else ""
    address = f"\n  clusterIP: {cluster_ip}" if cluster_ip else ""
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:{address}
  ports: [{{name: http, port: {SERVICE_PORT}{target}}}]
  selector: {{app: {name}}}
"""


def _backend_pod(version: str, ip: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: reviews-{version}
  labels: {{app: reviews, version: {version}}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{{name: reviews, image: docker.io/istio/examples-bookinfo-reviews-{version}:1.20.2}}]
status: {{podIP: {ip}}}
"""


def _sidecar_pod(name: str, account: str, pod_ip: str, bind: str, *, inbound_port: int = 0, app_port: int = 0,
                 captured: bool = False) -> str:
    """An injected pod with interception mode NONE and its Sidecar: the outbound listener bound
    to `bind`, and, for a server, its inbound port bound there too in front of the app. A
    captured pod is just the pod: iptables brings its traffic to its sidecar."""
    ports = f", ports: [{{containerPort: {inbound_port}}}]" if inbound_port else ""
    if captured:
        return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}-v1
  labels: {{app: {name}, version: v1}}
spec:
  serviceAccountName: {account}
  containers: [{{name: {name}, image: {name}{ports}}}]
status: {{podIP: {pod_ip}}}
"""
    ingress = f"""  ingress:
  - port: {{number: {inbound_port}, protocol: HTTP, name: http}}
    bind: {bind}
    defaultEndpoint: 127.0.0.1:{app_port}
""" if inbound_port else ""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}-v1
  labels: {{app: {name}, version: v1}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec:
  serviceAccountName: {account}
  containers: [{{name: {name}, image: {name}{ports}}}]
status: {{podIP: {pod_ip}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: {name}
spec:
  workloadSelector:
    labels: {{app: {name}}}
{ingress}  egress:
  - port: {{number: {SERVICE_PORT}, protocol: HTTP, name: http}}
    bind: {bind}
    captureMode: NONE
    hosts: ["./*"]
"""


def authorization_yaml(server: Server, allowed: list[Client]) -> str:
    """details admits GET from these clients' identities only (an ALLOW policy)."""
    principals = ", ".join(f'"cluster.local/ns/default/sa/{client.service_account}"' for client in allowed)
    return f"""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {server.name}-callers
spec:
  selector: {{matchLabels: {{app: {server.name}}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{principals: [{principals}]}}}}]
    to: [{{operation: {{methods: ["GET"]}}}}]
"""


STRICT = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls: {mode: STRICT}
"""


def workloads_yaml(layout: Layout) -> str:
    """Services, pods, Sidecars and mTLS: the part of the mesh the demo never edits."""
    ips = CLUSTER_IPS if layout.captured else {}
    server = layout.server
    docs = [STRICT, _service("reviews", layout.backend_port, ips.get("reviews", "")),
            _service(server.name, server.inbound_port, ips.get(server.name, "")),
            _sidecar_pod(server.name, server.service_account, server.ip, server.ip, inbound_port=server.inbound_port,
                         app_port=server.app_port, captured=layout.captured)]
    docs += [_backend_pod(version, layout.backend(version)) for version in VERSIONS]
    for client in layout.clients:
        pod_ip = client.bind if layout.captured else "127.0.0.1"
        docs += [_service(client.name),
                 _sidecar_pod(client.name, client.service_account, pod_ip, client.bind, captured=layout.captured)]
    docs.append("""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
""")
    return "---\n".join(docs)


def routing_yaml(split: dict[str, int] | None = None) -> str:
    """The reviews VirtualService: `end-user: jason` goes to v2; everyone else to v1, or by
    `split` (version → weight) once the demo edits it."""
    if split:
        rest = "\n".join(
            f"    - destination: {{host: reviews, subset: {version}}}\n      weight: {weight}"
            for version, weight in split.items()
        )
    else:
        rest = "    - destination: {host: reviews, subset: v1}"
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: reviews, subset: v2}}
  - name: everyone-else
    route:
{rest}
"""
