"""Every Istio kind is read into its typed view: the loader builds it once, after validation.

Each case loads one document and compares the whole view with one built from the message
classes, so a field the view drops, renames or fails to convert (durations to nanoseconds,
base64 bodies to bytes, port keys to numbers) shows up as a difference.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshctl.config.kinds import KINDS
from meshctl.config.kinds.common import (
    NetworkWorkloadSelector,
    Percent,
    PolicyTargetReference,
    PortSelector,
    WorkloadSelector,
)
from meshctl.config.kinds.networking.destination_rule import ConnectionPoolSettings, TCPSettings
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.gateway import Gateway, Port, Server, ServerTLSSettings
from meshctl.config.kinds.networking.http import HeaderOperations, Headers, HTTPMatchRequest, StringMatch
from meshctl.config.kinds.networking.service_entry import ServiceEntry, ServicePort
from meshctl.config.kinds.networking.sidecar import (
    IstioEgressListener,
    IstioIngressListener,
    OutboundTrafficPolicy,
    Sidecar,
    SidecarPort,
)
from meshctl.config.kinds.networking.virtual_service import (
    Abort,
    HTTPBody,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRetry,
    HTTPRoute,
    HTTPRouteDestination,
    L4MatchAttributes,
    RouteDestination,
    TCPRoute,
    VirtualService,
)
from meshctl.config.kinds.networking.workload_entry import WorkloadEntry
from meshctl.config.kinds.security.authorization_policy import (
    AuthorizationPolicy,
    Condition,
    From,
    Operation,
    Rule,
    Source,
    To,
)
from meshctl.config.kinds.security.peer_authentication import MutualTLS, PeerAuthentication
from meshctl.config.kinds.security.request_authentication import JWTHeader, JWTRule, RequestAuthentication
from meshctl.config.loader import load
from meshctl.config.messages import Message

MS = 1_000_000
S = 1_000_000_000

CASES: list[tuple[str, str, Message]] = [
    ("networking.istio.io/v1", """
kind: VirtualService
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers: {end-user: {exact: ""}}
      uri: {prefix: /api}
      method: {}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      headers: {request: {set: {x-b: "1"}}}
    timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 250ms, retryIgnorePreviousHosts: false}
    fault: {abort: {httpStatus: 503, percentage: {value: 0.5}}}
  - directResponse: {status: 200, body: {bytes: aGk=}}
  tcp:
  - match: [{port: 27017}]
    route: [{destination: {host: mongo}, weight: 100}]
""", VirtualService(
        hosts=("reviews",),
        http=(
            HTTPRoute(
                name="jason",
                match=(HTTPMatchRequest(headers={"end-user": StringMatch(exact="")}, uri=StringMatch(prefix="/api"),
                                        method=StringMatch()),),
                route=(HTTPRouteDestination(
                    destination=Destination(host="reviews", subset="v2", port=PortSelector(number=9080)),
                    headers=Headers(request=HeaderOperations(set={"x-b": "1"}))),),
                timeout=1500 * MS,
                retries=HTTPRetry(attempts=3, per_try_timeout=250 * MS, retry_ignore_previous_hosts=False),
                fault=HTTPFaultInjection(abort=Abort(http_status=503, percentage=Percent(value=0.5))),
            ),
            HTTPRoute(direct_response=HTTPDirectResponse(status=200, body=HTTPBody(bytes_=b"hi"))),
        ),
        tcp=(TCPRoute(match=(L4MatchAttributes(port=27017),),
                      route=(RouteDestination(destination=Destination(host="mongo"), weight=100),)),),
    )),
    ("networking.istio.io/v1", """
kind: Gateway
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*/bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
""", Gateway(
        selector={"istio": "ingressgateway"},
        servers=(Server(port=Port(number=443, name="https", protocol="HTTPS"), hosts=("*/bookinfo.example.com",),
                        tls=ServerTLSSettings(mode="SIMPLE", credential_name="bookinfo-cert")),),
    )),
    ("networking.istio.io/v1", """
kind: ServiceEntry
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
  endpoints: [{address: 10.0.0.1, ports: {https: 8443}, weight: 2}]
""", ServiceEntry(
        hosts=("api.example.com",),
        ports=(ServicePort(number=443, name="https", protocol="TLS"),),
        resolution="DNS",
        endpoints=(WorkloadEntry(address="10.0.0.1", ports={"https": 8443}, weight=2),),
    )),
    ("networking.istio.io/v1", """
kind: Sidecar
spec:
  workloadSelector: {labels: {app: ratings}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
    connectionPool: {tcp: {connectTimeout: 2s}}
  egress:
  - hosts: ["./*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
""", Sidecar(
        workload_selector=NetworkWorkloadSelector(labels={"app": "ratings"}),
        ingress=(IstioIngressListener(port=SidecarPort(number=9080, protocol="HTTP", name="http"),
                                      default_endpoint="127.0.0.1:8080",
                                      connection_pool=ConnectionPoolSettings(tcp=TCPSettings(connect_timeout=2 * S))),),
        egress=(IstioEgressListener(hosts=("./*",)),),
        outbound_traffic_policy=OutboundTrafficPolicy(mode="REGISTRY_ONLY"),
    )),
    ("networking.istio.io/v1", """
kind: WorkloadEntry
spec:
  address: 10.1.0.9
  labels: {app: vm}
  serviceAccount: vm-sa
""", WorkloadEntry(address="10.1.0.9", labels={"app": "vm"}, service_account="vm-sa")),
    ("security.istio.io/v1", """
kind: PeerAuthentication
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
  portLevelMtls: {"8080": {mode: DISABLE}}
""", PeerAuthentication(selector=WorkloadSelector(match_labels={"app": "reviews"}), mtls=MutualTLS(mode="STRICT"),
                        port_level_mtls={8080: MutualTLS(mode="DISABLE")})),
    ("security.istio.io/v1", """
kind: AuthorizationPolicy
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: [foo]}}]
    to: [{operation: {methods: [POST], paths: [/admin]}}]
    when: [{key: "request.headers[x-token]", notValues: [secret]}]
""", AuthorizationPolicy(action="DENY", rules=(Rule(
        from_=(From(source=Source(namespaces=("foo",))),),
        to=(To(operation=Operation(methods=("POST",), paths=("/admin",))),),
        when=(Condition(key="request.headers[x-token]", not_values=("secret",)),),
    ),))),
    ("security.istio.io/v1", """
kind: RequestAuthentication
spec:
  targetRef: {kind: Service, name: reviews}
  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: https://issuer.example.com/jwks
    fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
    timeout: 5s
""", RequestAuthentication(
        target_ref=PolicyTargetReference(kind="Service", name="reviews"),
        jwt_rules=(JWTRule(issuer="https://issuer.example.com", jwks_uri="https://issuer.example.com/jwks",
                           from_headers=(JWTHeader(name="x-jwt", prefix="Bearer "),), timeout=5 * S),),
    )),
]


@pytest.mark.parametrize(("api_version", "text", "expected"), CASES, ids=[type(case[2]).__name__ for case in CASES])
def test_the_loader_builds_the_kinds_typed_view(tmp_path: Path, api_version: str, text: str,
                                                expected: Message) -> None:
    source = tmp_path / "config.yaml"
    source.write_text(f"apiVersion: {api_version}\nmetadata: {{name: example, namespace: default}}\n"
                      + textwrap.dedent(text).lstrip())
    result = load([str(source)])
    assert not result.problems
    (resource,) = result.resources
    assert resource.view_as(type(expected)) == expected


def test_every_istio_kind_reads_into_a_message() -> None:
    istio = [info for info in KINDS.values() if info.group.endswith(".istio.io")]
    assert len(istio) == 9
    for info in istio:
        assert isinstance(info.spec, type) and issubclass(info.spec, Message), info.kind
        assert info.spec.__name__ == info.kind


def test_a_required_sub_message_needs_no_none_check() -> None:
    route = HTTPRouteDestination.of({"destination": {"host": "reviews"}})
    assert route.destination.host == "reviews"
    with pytest.raises(TypeError, match="destination"):
        HTTPRouteDestination(weight=1)  # type: ignore[call-arg]
