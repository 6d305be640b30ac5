"""The status Istio writes on Gateway API objects, computed from the conversion.

Conditions, reasons and messages are those of Istio's status goldens
(pilot/pkg/config/kube/gateway/testdata/*.status.yaml.golden: `invalid`, `grpc`), with the
inputs reduced to what each case needs; the `lastTransitionTime` Istio's tests write as `fake`
is the clock given here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from meshctl.config.kinds import gatewayapi as api
from meshctl.config.resource import Resource
from meshctl.model.gatewayapi import convert, listener_conflicts
from meshctl.model.gatewaystatus import ObjectStatus, changed_statuses, gateway_api_statuses
from tests.model.conftest import Resources

DOMAIN = "domain.suffix"
NOW = "2026-12-02T05:00:00Z"
LATER = "2026-12-02T06:00:00Z"

CLASS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
"""
OTHER_CLASS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}, {name: https, port: 443}]
status:
  loadBalancer: {ingress: [{ip: 1.2.3.4}]}
"""
GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gateway, namespace: istio-system, generation: 3}
spec:
  addresses: [{value: istio-ingressgateway, type: Hostname}]
  gatewayClassName: istio
  listeners:
  - name: default
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}
  - name: tls
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: nonexistent}]}
  - name: udp
    port: 5353
    protocol: UDP
"""
BACKEND = """\
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec: {ports: [{name: http, port: 80}]}
"""


def _route(name: str, parent: str, backend: str = "httpbin", namespace: str = "default") -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}, generation: 2}}
spec:
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{{name: {backend}, port: 80}}]}}]
"""


def _statuses(resources: list[Resource], now: str = NOW) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s.resource.kind, s.resource.name): dict(s.status)
            for s in gateway_api_statuses(resources, DOMAIN, now)}


def _condition(kind: str, status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {"lastTransitionTime": NOW, "message": message, "observedGeneration": generation, "reason": reason,
            "status": status, "type": kind}


def _ok_listener(generation: int, problems: dict[str, tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    problems = problems or {}
    out = []
    for kind, reason, status in (("Accepted", "Accepted", "True"), ("Conflicted", "NoConflicts", "False"),
                                 ("Programmed", "Programmed", "True"), ("ResolvedRefs", "ResolvedRefs", "True")):
        if kind in problems:
            bad_reason, message = problems[kind]
            out.append(_condition(kind, "False", bad_reason, message, generation))
        else:
            out.append(_condition(kind, status, reason, "No errors found", generation))
    return out


def test_gateway_class_and_gateway(resources: Resources) -> None:
    statuses = _statuses(resources(CLASS, OTHER_CLASS, SERVICE, GATEWAY, BACKEND,
                                   _route("ok", "{name: gateway, namespace: istio-system}")))
    assert ("GatewayClass", "other") not in statuses
    assert statuses[("GatewayClass", "istio")] == {"conditions": [
        {"lastTransitionTime": NOW, "message": "Handled by Istio controller", "reason": "Accepted", "status": "True",
         "type": "Accepted"}]}
    gateway = statuses[("KubernetesGateway", "gateway")]
    assert gateway["addresses"] == [{"type": "IPAddress", "value": "1.2.3.4"}]
    assert gateway["conditions"] == [
        _condition("Accepted", "True", "Accepted", "Resource accepted", 3),
        _condition("Programmed", "True", "Programmed", "Resource programmed, assigned to service(s) "
                   "istio-ingressgateway.istio-system.svc.domain.suffix:80 and "
                   "istio-ingressgateway.istio-system.svc.domain.suffix:443", 3)]
    http, tls, udp = gateway["listeners"]
    assert http == {"attachedRoutes": 1, "conditions": _ok_listener(3), "name": "default",
                    "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                                       {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]}
    assert tls["conditions"] == _ok_listener(3, {
        "Programmed": ("Invalid", "Bad TLS configuration"),
        "ResolvedRefs": ("InvalidCertificateRef", "invalid certificate reference /Secret/nonexistent., "
                         "secret istio-system/nonexistent not found")})
    assert udp["conditions"] == _ok_listener(3, {"Accepted": ("UnsupportedProtocol", 'protocol "UDP" is unsupported')})
    assert udp["supportedKinds"] == [] and udp["attachedRoutes"] == 0


def test_a_gateway_whose_service_is_missing_is_not_programmed(resources: Resources) -> None:
    managed = GATEWAY.replace("  addresses: [{value: istio-ingressgateway, type: Hostname}]\n", "")
    gateway = _statuses(resources(managed))[("KubernetesGateway", "gateway")]
    assert "addresses" not in gateway
    assert gateway["conditions"][1] == _condition(
        "Programmed", "False", "AddressNotUsable",
        'Failed to assign to any requested addresses: hostname "gateway-istio.istio-system.svc.domain.suffix" '
        "not found", 3)


def test_route_parents(resources: Resources) -> None:
    ref = "{name: gateway, namespace: istio-system}"
    statuses = _statuses(resources(CLASS, SERVICE, GATEWAY, BACKEND,
                                   _route("ok", ref), _route("missing-backend", ref, backend="nonexistent"),
                                   _route("bad-port", "{name: gateway, namespace: istio-system, port: 1234}"),
                                   _route("bad-section", "{name: gateway, namespace: istio-system, sectionName: fake}"),
                                   _route("mesh", "{group: '', kind: Service, name: httpbin}"),
                                   _route("no-service", "{group: '', kind: Service, name: not-found}"),
                                   _route("elsewhere", "{name: gateway, namespace: istio-system, sectionName: tls}",
                                          namespace="other"),
                                   _route("not-ours", "{name: gateway, namespace: somewhere-else}")))

    def parent(name: str, accepted: tuple[str, str, str], resolved: tuple[str, str, str]) -> dict[str, Any]:
        (entry,) = statuses[("HTTPRoute", name)]["parents"]
        assert entry["controllerName"] == "istio.io/gateway-controller"
        assert entry["conditions"] == [_condition("Accepted", *accepted, 2), _condition("ResolvedRefs", *resolved, 2)]
        return dict(entry["parentRef"])

    valid = ("True", "Accepted", "Route was valid")
    resolved = ("True", "ResolvedRefs", "All references resolved")
    assert parent("ok", valid, resolved) == {"name": "gateway", "namespace": "istio-system"}
    parent("missing-backend", valid, ("False", "BackendNotFound", "backend(nonexistent.default.svc.domain.suffix) not found"))
    assert parent("bad-port", ("False", "NoMatchingParent", "port 1234 not found"), resolved)["port"] == 1234
    parent("bad-section", ("False", "NoMatchingParent", 'sectionName "fake" not found'), resolved)
    assert parent("mesh", valid, resolved) == {"group": "", "kind": "Service", "name": "httpbin"}
    parent("no-service", ("False", "NoMatchingParent", 'parent service: "not-found" not found'), resolved)
    parent("elsewhere", ("False", "NotAllowedByListeners",
                         'hostnames matched parent hostname "", but namespace "other" is not allowed by the parent'),
           ("False", "BackendNotFound", "backend(httpbin.other.svc.domain.suffix) not found"))
    # a Gateway meshctl does not know (nor Istio): another controller's to report on
    assert ("HTTPRoute", "not-ours") not in statuses
    # the listener counts the routes that attached to it
    assert statuses[("KubernetesGateway", "gateway")]["listeners"][0]["attachedRoutes"] == 2


def test_unchanged_input_changes_nothing_and_keeps_the_transition_times(resources: Resources) -> None:
    """A status recomputed later from the same input equals the stored one; when a condition
    flips, only it gets the new time. Other controllers' route parents are kept."""
    ref = "{name: gateway, namespace: istio-system}"
    inputs = resources(CLASS, SERVICE, GATEWAY, _route("web", ref, backend="httpbin"))
    first = gateway_api_statuses(inputs, DOMAIN, NOW)
    assert len(changed_statuses(first)) == 3  # nothing stored yet
    theirs = {"controllerName": "example.com/other", "parentRef": {"name": "theirs"}, "conditions": []}
    written = {s.resource.key: s.status for s in first}
    written[("HTTPRoute", "default", "web")] = dict(written[("HTTPRoute", "default", "web")],
                                                   parents=[theirs, *written[("HTTPRoute", "default", "web")]["parents"]])
    stored = [dataclasses.replace(r, status=written.get(r.key, r.status)) for r in inputs]
    again = gateway_api_statuses(stored, DOMAIN, LATER)
    changed = changed_statuses(again)
    assert [s.resource.kind for s in changed] == []
    # the backend appears: ResolvedRefs flips, with the new time; Accepted keeps the old one
    fixed = [*stored, *resources(BACKEND)]
    (route,) = [s for s in changed_statuses(gateway_api_statuses(fixed, DOMAIN, LATER)) if s.resource.kind == "HTTPRoute"]
    other, ours = route.status["parents"]
    assert other == theirs
    accepted, refs = ours["conditions"]
    assert (accepted["lastTransitionTime"], accepted["status"]) == (NOW, "True")
    assert (refs["lastTransitionTime"], refs["status"], refs["reason"]) == (LATER, "True", "ResolvedRefs")


@pytest.mark.parametrize("kind", ["TCPRoute", "TLSRoute"])
def test_l4_routes(resources: Resources, kind: str) -> None:
    listener = "{name: tcp, port: 9000, protocol: TCP}" if kind == "TCPRoute" else \
        "{name: tls, port: 9443, protocol: TLS, tls: {mode: Passthrough}}"
    gateway = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: l4, namespace: default}}
spec: {{gatewayClassName: istio, listeners: [{listener}]}}
"""
    route = f"""\
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: {kind}
metadata: {{name: db, namespace: default}}
spec:
  parentRefs: [{{name: l4}}]
  rules: [{{backendRefs: [{{name: db, port: 5432}}]}}]
"""
    statuses: list[ObjectStatus] = gateway_api_statuses(resources(gateway, route), DOMAIN, NOW)
    (status,) = [s.status for s in statuses if s.resource.kind == kind]
    (entry,) = status["parents"]
    assert [(c["type"], c["status"], c["reason"]) for c in entry["conditions"]] == [
        ("Accepted", "True", "Accepted"), ("ResolvedRefs", "False", "BackendNotFound")]
    (listener_status,) = next(s.status for s in statuses if s.resource.kind == "KubernetesGateway")["listeners"]
    assert listener_status["attachedRoutes"] == 1
    assert listener_status["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": kind}]


def _listeners(*specs: str) -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gateway, namespace: istio-system, generation: 3}}
spec:
  addresses: [{{value: istio-ingressgateway, type: Hostname}}]
  gatewayClassName: istio
  listeners: [{", ".join(specs)}]
"""


@pytest.mark.parametrize(("listeners", "expected"), [
    # the same port, protocol and hostname (none is `*`): the later one conflicts
    (["{name: a, port: 80, protocol: HTTP}", "{name: b, port: 80, protocol: HTTP}"], {"b": "HostnameConflict"}),
    (["{name: a, port: 80, protocol: HTTP, hostname: x.example.com}",
      "{name: b, port: 80, protocol: HTTP, hostname: x.example.com}"], {"b": "HostnameConflict"}),
    # HTTP-like listeners on one port are told apart by hostname, whatever their protocols
    (["{name: a, port: 80, protocol: HTTP, hostname: x.example.com}",
      "{name: b, port: 80, protocol: HTTP, hostname: '*.example.com'}"], {}),
    (["{name: a, port: 443, protocol: HTTPS, hostname: x.example.com, tls: {certificateRefs: [{name: c}]}}",
      "{name: b, port: 443, protocol: TLS, hostname: y.example.com, tls: {mode: Passthrough}}"], {}),
    (["{name: a, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: c}]}}",
      "{name: b, port: 443, protocol: TLS, tls: {mode: Passthrough}}"], {"b": "ProtocolConflict"}),
    # a TCP (or UDP) listener owns its port: against HTTP-like listeners, and against each other
    (["{name: a, port: 80, protocol: HTTP, hostname: x.example.com}", "{name: b, port: 80, protocol: TCP}"],
     {"b": "ProtocolConflict"}),
    (["{name: a, port: 9000, protocol: TCP}", "{name: b, port: 9000, protocol: TCP}"], {"b": "ProtocolConflict"}),
    (["{name: a, port: 9000, protocol: TCP}", "{name: b, port: 9000, protocol: UDP}"], {"b": "ProtocolConflict"}),
    # the first listener wins, even one Istio cannot serve; others on other ports are untouched
    (["{name: a, port: 80, protocol: UDP}", "{name: b, port: 80, protocol: HTTP}",
      "{name: c, port: 81, protocol: HTTP}", "{name: d, port: 80, protocol: TCP}"],
     {"b": "ProtocolConflict", "d": "ProtocolConflict"}),
])
def test_listener_conflicts(resources: Resources, listeners: list[str], expected: dict[str, str]) -> None:
    (gateway,) = resources(_listeners(*listeners))
    assert listener_conflicts(gateway.view_as(api.Gateway).listeners) == expected


def test_a_conflicted_listener_is_neither_accepted_nor_programmed_and_takes_no_route(resources: Resources) -> None:
    """Istio's status for the listener that loses: Accepted and Programmed False and Conflicted
    True, with the conflict's reason; no route attaches to it (a route naming it finds no such
    section), and the Gateway itself stays accepted and programmed on the winner's port."""
    gateway = _listeners("{name: http, port: 80, protocol: HTTP, hostname: web.example.com}",
                         "{name: again, port: 80, protocol: HTTP, hostname: web.example.com}",
                         "{name: tcp, port: 80, protocol: TCP}")
    statuses = _statuses(resources(CLASS, SERVICE, gateway, BACKEND,
                                   _route("web", "{name: gateway, namespace: istio-system}", namespace="istio-system"),
                                   _route("again", "{name: gateway, namespace: istio-system, sectionName: again}",
                                          namespace="istio-system")))
    status = statuses[("KubernetesGateway", "gateway")]
    assert status["conditions"] == [
        _condition("Accepted", "True", "Accepted", "Resource accepted", 3),
        _condition("Programmed", "True", "Programmed", "Resource programmed, assigned to service(s) "
                   "istio-ingressgateway.istio-system.svc.domain.suffix:80", 3)]
    message = "Listener has a conflict with another listener attached to the same Gateway"

    def conflicted(reason: str) -> list[dict[str, Any]]:
        return [_condition("Accepted", "False", reason, message, 3), _condition("Conflicted", "True", reason, message, 3),
                _condition("Programmed", "False", reason, message, 3)]

    http, again, tcp = status["listeners"]
    assert (http["name"], http["attachedRoutes"], http["conditions"]) == ("http", 1, _ok_listener(3))
    assert again == {"attachedRoutes": 0, "conditions": conflicted("HostnameConflict"), "name": "again",
                     "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                                        {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}]}
    assert tcp == {"attachedRoutes": 0, "conditions": conflicted("ProtocolConflict"), "name": "tcp",
                   "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "TCPRoute"}]}
    (parent,) = statuses[("HTTPRoute", "again")]["parents"]
    assert parent["conditions"][0] == _condition("Accepted", "False", "NoMatchingParent",
                                                 'sectionName "again" not found', 2)


def test_a_listener_that_comes_to_conflict_keeps_its_resolved_refs(resources: Resources) -> None:
    """Istio rewrites Accepted, Conflicted and Programmed of a listener that loses a conflict
    and leaves the ResolvedRefs it had; the transition times follow the statuses that flip."""
    alone = resources(CLASS, SERVICE, _listeners("{name: a, port: 80, protocol: HTTP}",
                                                 "{name: b, port: 81, protocol: HTTP}"))
    written = {s.resource.key: s.status for s in gateway_api_statuses(alone, DOMAIN, NOW)}
    clash = resources(CLASS, SERVICE, _listeners("{name: a, port: 80, protocol: HTTP}",
                                                 "{name: b, port: 80, protocol: HTTP}"))
    stored = [dataclasses.replace(r, status=written.get(r.key, r.status)) for r in clash]
    (_, b) = {s.resource.kind: s for s in gateway_api_statuses(stored, DOMAIN, LATER)}["KubernetesGateway"].status[
        "listeners"]
    assert [(c["type"], c["status"], c["reason"], c["lastTransitionTime"]) for c in b["conditions"]] == [
        ("Accepted", "False", "HostnameConflict", LATER), ("Conflicted", "True", "HostnameConflict", LATER),
        ("Programmed", "False", "HostnameConflict", LATER), ("ResolvedRefs", "True", "ResolvedRefs", NOW)]


def _addressed(addresses: str) -> str:
    return GATEWAY.replace("  addresses: [{value: istio-ingressgateway, type: Hostname}]\n", f"  addresses: {addresses}\n")


NONE_USABLE = _condition("Programmed", "False", "UnsupportedAddress", "Failed to assign to any requested addresses", 3)


@pytest.mark.parametrize(("addresses", "accepted", "programmed"), [
    # Istio's `invalid-gateway-address`: an address of a type it does not know
    ("[{value: 1.2.3.4, type: istio.io/FakeType}]",
     _condition("Accepted", "False", "UnsupportedAddress", "only Hostname is supported, ignoring [1.2.3.4]", 3),
     NONE_USABLE),
    ("[{value: my-address, type: NamedAddress}]",
     _condition("Accepted", "False", "UnsupportedAddress", "only Hostname is supported, ignoring [my-address]", 3),
     NONE_USABLE),
    # more than one IP: not a gateway Istio deploys, and no Service named
    ("[{value: 1.2.3.4}, {value: 5.6.7.8, type: IPAddress}]",
     _condition("Accepted", "False", "UnsupportedAddress", "only Hostname is supported, ignoring [1.2.3.4 5.6.7.8]",
                3), NONE_USABLE),
])
def test_addresses_istio_cannot_use_translate_nothing(resources: Resources, addresses: str,
                                                      accepted: dict[str, Any], programmed: dict[str, Any]) -> None:
    inputs = resources(CLASS, SERVICE, _addressed(addresses), BACKEND, _route("web", "{name: gateway, "
                                                                                     "namespace: istio-system}"))
    assert _statuses(inputs)[("KubernetesGateway", "gateway")] == {"conditions": [accepted, programmed]}
    converted = convert(inputs, DOMAIN)
    assert [r.kind for r in converted.resources] == []
    assert converted.warnings[0].startswith("Gateway istio-system/gateway: addresses: only Hostname addresses")


def test_a_hostname_beside_an_unusable_address_is_used(resources: Resources) -> None:
    """A Hostname address still names the Service, so the gateway is translated and programmed,
    but the Gateway is not accepted: Istio ignored part of it."""
    inputs = resources(CLASS, SERVICE, _addressed("[{value: istio-ingressgateway, type: Hostname}, {value: 1.2.3.4}]"))
    status = _statuses(inputs)[("KubernetesGateway", "gateway")]
    assert status["conditions"] == [
        _condition("Accepted", "False", "UnsupportedAddress", "only Hostname is supported, ignoring [1.2.3.4]", 3),
        _condition("Programmed", "True", "Programmed", "Resource programmed, assigned to service(s) "
                   "istio-ingressgateway.istio-system.svc.domain.suffix:80 and "
                   "istio-ingressgateway.istio-system.svc.domain.suffix:443", 3)]
    assert [listener["name"] for listener in status["listeners"]] == ["default", "tls", "udp"]


def test_the_service_type_annotation_is_deprecated_on_a_gateway_deployed_by_hand(resources: Resources) -> None:
    """Istio still reads `networking.istio.io/service-type` on a Gateway naming its Service,
    and says it is deprecated (the Gateway is translated all the same)."""
    annotated = GATEWAY.replace("generation: 3}", "generation: 3, annotations: {networking.istio.io/service-type: "
                                                  "ClusterIP}}")
    status = _statuses(resources(CLASS, SERVICE, annotated))[("KubernetesGateway", "gateway")]
    assert status["conditions"][0] == _condition(
        "Accepted", "False", "DeprecatedField",
        "annotation networking.istio.io/service-type is deprecated, use Spec.Infrastructure.Routeability", 3)
    assert status["conditions"][1]["reason"] == "Programmed"


def test_a_single_ip_is_a_gateway_istio_deploys(resources: Resources) -> None:
    status = _statuses(resources(CLASS, _addressed("[{value: 1.2.3.4, type: IPAddress}]")))[
        ("KubernetesGateway", "gateway")]
    assert status["conditions"][0] == _condition("Accepted", "True", "Accepted", "Resource accepted", 3)
    # (the Service Istio would deploy, `<name>-<class>`, is not among the inputs)
    assert status["conditions"][1]["message"] == ('Failed to assign to any requested addresses: hostname '
                                                  '"gateway-istio.istio-system.svc.domain.suffix" not found')


def test_listeners_of_a_gateway_that_lost_its_addresses_keep_their_conditions(resources: Resources) -> None:
    good = resources(CLASS, SERVICE, GATEWAY)
    written = {s.resource.key: s.status for s in gateway_api_statuses(good, DOMAIN, NOW)}
    bad = resources(CLASS, SERVICE, _addressed("[{value: 1.2.3.4, type: istio.io/FakeType}]").replace(
        "  - name: udp\n    port: 5353\n    protocol: UDP\n", ""))
    stored = [dataclasses.replace(r, status=written.get(r.key, r.status)) for r in bad]
    status = _statuses(stored, LATER)[("KubernetesGateway", "gateway")]
    before = written[("KubernetesGateway", "istio-system", "gateway")]["listeners"]
    assert status["listeners"] == before[:2]  # the removed listener's entry goes
    assert "addresses" not in status


REMOTE_CLASS = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio-remote, generation: 1}
spec: {controllerName: istio.io/unmanaged-gateway}
"""
REMOTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: east, namespace: istio-system, generation: 2}
spec:
  gatewayClassName: istio-remote
  addresses: [{type: Hostname, value: east.other-cluster.example}]
  listeners: [{name: cross, port: 15443, protocol: TLS, tls: {mode: Passthrough}}]
"""


@pytest.mark.parametrize("with_class", [True, False])
def test_a_remote_gateway_is_acknowledged_and_left_alone(resources: Resources, with_class: bool) -> None:
    """Istio's `istio-remote` class (its object, or the built-in class when there is none):
    the class is accepted, the Gateway accepted and "programmed" as a remote one with its
    addresses as written, no listeners; nothing is translated and no route attaches."""
    inputs = resources(*([REMOTE_CLASS] if with_class else []), REMOTE, BACKEND,
                       _route("cross", "{name: east, namespace: istio-system}"))
    statuses = _statuses(inputs)
    assert statuses[("KubernetesGateway", "east")] == {
        "addresses": [{"type": "Hostname", "value": "east.other-cluster.example"}],
        "conditions": [_condition("Accepted", "True", "Accepted", "Resource accepted", 2),
                       _condition("Programmed", "True", "Programmed",
                                  "This Gateway is remote; Istio will not program it", 2)]}
    if with_class:
        assert statuses[("GatewayClass", "istio-remote")]["conditions"][0]["message"] == "Handled by Istio controller"
    assert ("HTTPRoute", "cross") not in statuses
    converted = convert(inputs, DOMAIN)
    assert converted.resources == []
    assert converted.warnings[0] == ("Gateway istio-system/east: class 'istio-remote' is for gateways of another "
                                     "cluster (istio.io/unmanaged-gateway): not translated")


def test_a_builtin_class_name_taken_by_another_controller_keeps_istio_s_meaning(resources: Resources) -> None:
    """A GatewayClass whose controller is not Istio's is not Istio's to accept; Istio holds no
    class of that name then, and falls back to its built-in class: Gateways of `istio` are
    still Istio's."""
    theirs = CLASS.replace("istio.io/gateway-controller", "example.com/other")
    statuses = _statuses(resources(theirs, SERVICE, GATEWAY))
    assert ("GatewayClass", "istio") not in statuses
    assert statuses[("KubernetesGateway", "gateway")]["conditions"][0]["reason"] == "Accepted"


CERT = """\
apiVersion: v1
kind: Secret
metadata: {name: my-cert-http, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: cGxhY2Vob2xkZXI=, tls.key: cGxhY2Vob2xkZXI=}
"""
GRANT = """\
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: certs, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: istio-system}]
  to: [{group: "", kind: Secret}]
"""
RESOLVED = _condition("ResolvedRefs", "True", "ResolvedRefs", "All references resolved", 3)


@pytest.mark.parametrize(("ref", "extra", "expected"), [
    # Istio's backend-tls-client-cert and backend-tls-client-cert-refgrant goldens
    ('{group: "", kind: Secret, name: my-cert-http}', [], RESOLVED),
    ('{group: "", kind: Secret, name: does-not-exist}', [],
     _condition("ResolvedRefs", "False", "InvalidClientCertificateRef", "invalid clientCertificateRef "
                "/Secret/does-not-exist., secret istio-system/does-not-exist not found", 3)),
    ('{group: "", kind: ConfigMap, name: my-cert-http}', [],
     _condition("ResolvedRefs", "False", "InvalidClientCertificateRef", "invalid clientCertificateRef "
                "/ConfigMap/my-cert-http., only secret is allowed", 3)),
    ("{name: existing-cert, namespace: certs}", [CERT.replace("my-cert-http, namespace: istio-system",
                                                              "existing-cert, namespace: certs")],
     _condition("ResolvedRefs", "False", "RefNotPermitted", 'clientCertificateRef existing-cert/certs not accessible '
                'to a Gateway in namespace "istio-system" (missing a ReferenceGrant?)', 3)),
    ("{name: existing-cert, namespace: certs}", [GRANT, CERT.replace("my-cert-http, namespace: istio-system",
                                                                     "existing-cert, namespace: certs")], RESOLVED),
])
def test_the_certificate_a_gateway_shows_backends(resources: Resources, ref: str, extra: list[str],
                                                  expected: dict[str, Any]) -> None:
    """A Gateway naming a client certificate for its backends (`spec.tls.backend`) gets a
    ResolvedRefs condition of its own; one that names none gets none."""
    gateway = GATEWAY.replace("  gatewayClassName: istio\n",
                              f"  gatewayClassName: istio\n  tls: {{backend: {{clientCertificateRef: {ref}}}}}\n")
    conditions = _statuses(resources(CLASS, SERVICE, CERT, gateway, *extra))[("KubernetesGateway", "gateway")][
        "conditions"]
    assert [c["type"] for c in conditions] == ["Accepted", "Programmed", "ResolvedRefs"]
    assert conditions[2] == expected
    plain = _statuses(resources(CLASS, SERVICE, CERT, GATEWAY))[("KubernetesGateway", "gateway")]["conditions"]
    assert [c["type"] for c in plain] == ["Accepted", "Programmed"]
