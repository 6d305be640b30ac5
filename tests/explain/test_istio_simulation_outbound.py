"""Istio's outbound simulation cases (`pilot/pkg/networking/core/sidecar_simulation_test.go`:
TestPassthroughTraffic, TestLoop, TestHeadlessServices, TestExternalNameServices and
TestSidecarRoutes), written again against meshctl's translation and answered by `explain`.

Istio's calls go to address 1.3.3.7 unless they name one; `REGISTRY_ONLY` comes from a
Sidecar's outboundTrafficPolicy here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from explain_support import Result, Transport, result, run, subject

CLIENT = """apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: app, image: app}]}
status: {podIP: 10.0.0.1}
"""
SIMULATION_ADDRESS = "1.3.3.7"


def _expect(got: Result, cluster: str = "", vhost: str = "", error: str = "") -> None:
    assert got.error == error, got
    if cluster:
        assert got.cluster == cluster, got
    if vhost:
        assert got.vhost == vhost, got


# --- TestPassthroughTraffic ------------------------------------------------------------------

PORTS = """
  ports:
  - {name: http, number: 80, protocol: HTTP}
  - {name: auto, number: 81}
  - {name: tcp, number: 82, protocol: TCP}
  - {name: tls, number: 83, protocol: TLS}
  - {name: https, number: 84, protocol: HTTPS}
  - {name: grpc, number: 85, protocol: GRPC}
  - {name: h2, number: 86, protocol: HTTP2}
"""
REGISTRY_ONLY = """---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""
# (name, protocol, transport, alpn) of TestPassthroughTraffic's calls, all with Host "foo".
CALLS = [
    ("http-plaintext", "http", Transport.plaintext, ()),
    ("http-tls", "http", Transport.tls, ()),
    ("http-tls-http/1.1", "http", Transport.tls, ("http/1.1",)),
    ("tcp-plaintext", "tcp", Transport.plaintext, ()),
    ("http2-tls", "http2", Transport.tls, ()),
]
HTTP_PORTS = {80, 85, 86}


@pytest.fixture(scope="module")
def passthrough(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], object]:
    directory = tmp_path_factory.mktemp("passthrough")
    found = {}
    for policy in ("ALLOW_ANY", "REGISTRY_ONLY"):
        for vip in (True, False):
            text = ("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: default}\n"
                    "spec:\n  hosts: [istio.io]\n" + ("  addresses: [1.2.3.4]\n" if vip else "")
                    + "  location: MESH_EXTERNAL\n  resolution: DNS" + PORTS + "---\n" + CLIENT
                    + (REGISTRY_ONLY if policy == "REGISTRY_ONLY" else ""))
            found[(policy, vip)] = subject(directory, text, "client", f"{policy}-{vip}.yaml")
    return found


@pytest.mark.parametrize("policy", ["ALLOW_ANY", "REGISTRY_ONLY"])
@pytest.mark.parametrize("vip", [True, False], ids=["with VIP", "without VIP"])
@pytest.mark.parametrize("port", range(80, 87))
@pytest.mark.parametrize("call", CALLS, ids=[call[0] for call in CALLS])
def test_passthrough_traffic(passthrough: dict, policy: str, vip: bool, port: int, call: tuple) -> None:
    _name, protocol, transport, alpn = call
    scheme = "tcp" if protocol == "tcp" else "http"
    explanation = run(passthrough[(policy, vip)], f"{scheme}://foo:{port}/", address=SIMULATION_ADDRESS,
                      transport=transport, alpn=alpn, http2=protocol == "http2")
    got = result(explanation)
    expected = "BlackHoleCluster" if policy == "REGISTRY_ONLY" else "PassthroughCluster"
    plain_http = protocol != "tcp" and transport is Transport.plaintext
    if not vip and (port == 82 or (port == 81 and not plain_http)):
        # Istio: TCP without a VIP captures everything on the port; no cluster is asserted.
        assert not got.error, got
        return
    if expected == "BlackHoleCluster" and plain_http and (port in HTTP_PORTS or (not vip and port == 81)):
        _expect(got, vhost="block_all")
        assert explanation.outcome is not None and explanation.outcome.status == 502
        return
    _expect(got, cluster=expected)


# --- TestLoop ------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", [15001, 15006], ids=["outbound port", "inbound port"])
def test_direct_request_to_a_capture_port_is_blackholed(tmp_path: Path, port: int) -> None:
    found = subject(tmp_path, CLIENT, "client")
    _expect(result(run(found, f"tcp://{SIMULATION_ADDRESS}:{port}")), cluster="BlackHoleCluster")


# --- TestHeadlessServices and TestExternalNameServices ---------------------------------------------

SERVICE_PORTS = """
  - {name: http, port: 80}
  - {name: auto, port: 81}
  - {name: tcp, port: 82}
  - {name: tls, port: 83}
  - {name: https, port: 84}"""
# (protocol, port, transport, host)
SERVICE_CALLS = [
    ("http", 80, Transport.plaintext, "{svc}.default.svc.cluster.local"),
    ("http", 81, Transport.plaintext, "{svc}.default.svc.cluster.local"),
    ("http", 81, Transport.tls, "{svc}.default.svc.cluster.local"),
    ("tcp", 81, Transport.plaintext, "{svc}.default.svc.cluster.local"),
    ("tcp", 82, Transport.plaintext, "{svc}.default.svc.cluster.local"),
    ("tcp", 83, Transport.tls, "{svc}.default"),
    ("http", 84, Transport.tls, "{svc}.default"),
]


def _calls() -> list:
    return [pytest.param(*call, id=f"{call[0]}-{call[1]}-{call[2].value}") for call in SERVICE_CALLS]


@pytest.mark.parametrize(("protocol", "port", "transport", "host"), _calls())
def test_headless_service(tmp_path: Path, protocol: str, port: int, transport: Transport, host: str) -> None:
    text = ("apiVersion: v1\nkind: Service\nmetadata: {name: headless, namespace: default}\nspec:\n"
            "  clusterIP: None\n  selector: {app: headless}\n  ports:" + SERVICE_PORTS + "\n---\n"
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: headless\n  namespace: default\n"
            "  labels: {kubernetes.io/service-name: headless}\naddressType: IPv4\nendpoints:\n- addresses: [1.2.3.4]\n"
            "ports:\n" + "\n".join(f"- {{name: {n}, port: {p}}}" for n, p in
                                   (("http", 80), ("auto", 81), ("tcp", 82), ("tls", 83), ("https", 84)))
            + "\n---\n" + CLIENT)
    found = subject(tmp_path, text, "client")
    explanation = run(found, f"{'tcp' if protocol == 'tcp' else 'http'}://{host.format(svc='headless')}:{port}/",
                      address="1.2.3.4", transport=transport)
    _expect(result(explanation), cluster=f"outbound|{port}||headless.default.svc.cluster.local")


EXTERNAL_NAME = """apiVersion: v1
kind: Service
metadata: {name: alias, namespace: default}
spec:
  type: ExternalName
  externalName: concrete.default.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata: {name: concrete, namespace: default}
spec:
  clusterIP: 1.2.3.4
  ports:""" + SERVICE_PORTS + "\n---\n" + CLIENT


@pytest.mark.parametrize(("protocol", "port", "transport", "host"), _calls())
def test_external_name_service(tmp_path: Path, protocol: str, port: int, transport: Transport, host: str) -> None:
    found = subject(tmp_path, EXTERNAL_NAME, "client")
    explanation = run(found, f"{'tcp' if protocol == 'tcp' else 'http'}://{host.format(svc='alias')}:{port}/",
                      address="1.2.3.4", transport=transport)
    _expect(result(explanation), cluster=f"outbound|{port}||concrete.default.svc.cluster.local")


ALIAS_ROUTE = """---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: alias, namespace: default}
spec:
  hosts: [alias.default.svc.cluster.local]
  http:
  - name: route1
    match: [{uri: {prefix: /one}}]
    route: [{destination: {host: concrete.default.svc.cluster.local}}]
"""


@pytest.mark.parametrize(("port", "host", "route"), [
    (80, "alias.default.svc.cluster.local", "route1"),  # HTTP: the host is an opaque name, matched exactly
    (80, "alias.default", "default"),  # no expansion of the alias's short names
    (80, "concrete.default.svc.cluster.local", "default"),  # the alias's VirtualService is not the concrete's
    (81, "alias.default.svc.cluster.local", "default"),  # auto port: no opaque host match
    (81, "alias.default", "default"),
    (81, "concrete.default.svc.cluster.local", "default"),
])
def test_external_name_http_routes(tmp_path: Path, port: int, host: str, route: str) -> None:
    found = subject(tmp_path, EXTERNAL_NAME + ALIAS_ROUTE, "client")
    got = result(run(found, f"http://{host}:{port}/one", address="1.2.3.4"))
    assert (got.route, got.cluster) == (route, f"outbound|{port}||concrete.default.svc.cluster.local"), got


# --- TestSidecarRoutes (as calls rather than route dumps) ---------------------------------------------

KNOWN = """apiVersion: v1
kind: Service
metadata: {name: known, namespace: default}
spec:
  clusterIP: 2.0.0.0
  ports: [{port: 80, name: http}, {port: 8080, name: http2}]
---
apiVersion: v1
kind: Service
metadata: {name: alt-known, namespace: default}
spec:
  clusterIP: 2.0.0.1
  ports: [{port: 80, name: http}, {port: 8080, name: http2}]
---
"""


def _vs(namespace: str, host: str, dest: str, created: str) -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {namespace}-{dest.split('.')[0]}\n"
            f"  namespace: {namespace}\n  creationTimestamp: '{created}'\nspec:\n  hosts: ['{host}']\n"
            f"  http:\n  - route: [{{destination: {{host: {dest}}}}}]\n---\n")


@pytest.mark.parametrize(("name", "configs", "port", "host", "cluster"), [
    ("simple port 80", [("default", "known.default.svc.cluster.local", "alt-known.default.svc.cluster.local", "2020")],
     80, "known.default.svc.cluster.local", "outbound|80||alt-known.default.svc.cluster.local"),
    ("simple port 8080", [("default", "known.default.svc.cluster.local", "alt-known.default.svc.cluster.local", "2020")],
     8080, "known.default.svc.cluster.local", "outbound|8080||alt-known.default.svc.cluster.local"),
    ("consumer rule port 80", [("not-default", "known.default.svc.cluster.local", "alt-known.default.svc.cluster.local", "2020")],
     80, "known.default.svc.cluster.local", "outbound|80||alt-known.default.svc.cluster.local"),
    ("multiple rules 80: oldest wins", [
        ("arbitrary", "known.default.svc.cluster.local", "arbitrary.example.com", "2019"),
        ("default", "known.default.svc.cluster.local", "default.example.com", "2020"),
        ("not-default", "known.default.svc.cluster.local", "not-default.example.com", "2021")],
     80, "known.default.svc.cluster.local", "outbound|80||arbitrary.example.com"),
    ("wildcard first then explicit", [
        ("default", "*.cluster.local", "wild.example.com", "2019"),
        ("default", "known.default.svc.cluster.local", "explicit.example.com", "2021")],
     80, "alt-known.default.svc.cluster.local", "outbound|80||wild.example.com"),
    pytest.param("wildcard first then explicit: explicit", [
        ("default", "*.cluster.local", "wild.example.com", "2019"),
        ("default", "known.default.svc.cluster.local", "explicit.example.com", "2021")],
     80, "known.default.svc.cluster.local", "outbound|80||explicit.example.com"),
])
def test_sidecar_routes(tmp_path: Path, name: str, configs: list, port: int, host: str, cluster: str) -> None:
    text = KNOWN + "".join(_vs(ns, h, d, f"{year}-01-01T00:00:00Z") for ns, h, d, year in configs) + CLIENT
    found = subject(tmp_path, text, "client")
    explanation = run(found, f"http://{host}:{port}/")
    assert result(explanation).cluster == cluster, explanation.data()
