"""RBAC decisions and forks, on a hand-written Envoy config dump: what meshctl does not translate
yet (AuthorizationPolicy) is still explained when a proxy holds it, and whatever the config
cannot decide (a random fraction, a JWT claim, a peer identity not given) forks instead of
being guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testsupport import run_cli

TYPE = "type.googleapis.com/"
PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/productpage"


def _rbac(action: str, name: str, permissions: list[dict[str, Any]], principals: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": TYPE + "envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": action, "policies": {name: {"permissions": permissions, "principals": principals}}}}}


def _route(name: str, match: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "match": match, "route": {"cluster": "inbound|8080||"}}


LISTENER = {
    "name": "0.0.0.0_8080",
    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
    "traffic_direction": "INBOUND",
    "listener_filters": [{"name": "envoy.filters.listener.tls_inspector",
                          "typed_config": {"@type": TYPE + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
    "filter_chains": [{
        "filter_chain_match": {"transport_protocol": "tls"},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": TYPE + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {"tls_certificate_sds_secret_configs": [{"name": "default"}]}}},
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "inbound_0.0.0.0_8080",
            "route_config": {"name": "inbound|8080||", "virtual_hosts": [{
                "name": "inbound|http|8080", "domains": ["*"],
                "routes": [
                    _route("canary", {"prefix": "/canary", "runtime_fraction": {
                        "default_value": {"numerator": 25, "denominator": "HUNDRED"}}}),
                    _route("vip", {"prefix": "/vip", "dynamic_metadata": [{
                        "filter": "envoy.filters.http.jwt_authn",
                        "path": [{"key": "payload"}, {"key": "group"}], "value": {"string_match": {"exact": "vip"}}}]}),
                    _route("default", {"prefix": "/"}),
                ]}]},
            "http_filters": [
                _rbac("DENY", "ns[default]-policy[deny-delete]-rule[0]",
                      [{"header": {"name": ":method", "string_match": {"exact": "DELETE"}}}], [{"any": True}]),
                _rbac("ALLOW", "ns[default]-policy[allow-productpage]-rule[0]", [{"any": True}],
                      [{"authenticated": {"principal_name": {"exact": PRODUCTPAGE}}}]),
                {"name": "envoy.filters.http.router",
                 "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.router.v3.Router"}},
            ]}}]}],
}
CLUSTER = {"name": "inbound|8080||", "type": "STATIC", "connect_timeout": "1s",
           "load_assignment": {"cluster_name": "inbound|8080||", "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}}}}]}]}}
DUMP = {"configs": [
    {"@type": TYPE + "envoy.admin.v3.BootstrapConfigDump", "bootstrap": {"node": {
        "id": "sidecar~10.1.0.7~ratings-0.default~default.svc.cluster.local", "metadata": {"NAMESPACE": "default"}}}},
    {"@type": TYPE + "envoy.admin.v3.ListenersConfigDump", "static_listeners": [{"listener": LISTENER}]},
    {"@type": TYPE + "envoy.admin.v3.ClustersConfigDump", "static_clusters": [{"cluster": CLUSTER}]},
]}
POLICIES = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: default}
spec:
  action: DENY
  rules:
  - to:
    - operation: {methods: [DELETE]}
"""


@pytest.fixture
def dump(tmp_path: Path) -> str:
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(DUMP))
    return str(path)


def explain(capsys: pytest.CaptureFixture[str], dump: str, *argv: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "explain", "--file", dump, "--inbound", *argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def rbac_steps(data: dict[str, Any]) -> list[str]:
    return [step["name"] for step in data["steps"] if step["stage"] == "rbac"]


def test_allowed_peer(capsys: pytest.CaptureFixture[str], dump: str) -> None:
    data = explain(capsys, dump, "--url", "http://ratings:8080/ratings/1", "--from-principal", PRODUCTPAGE)
    assert data["request"]["destination"] == {"address": "10.1.0.7", "port": 8080}
    assert rbac_steps(data) == ["envoy.filters.http.rbac: DENY allowed", "envoy.filters.http.rbac: ALLOW allowed"]
    assert data["outcome"]["verdict"] == "forwarded"


def test_denied_with_the_policy_and_its_file(capsys: pytest.CaptureFixture[str], dump: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(POLICIES)
    data = explain(capsys, dump, "-f", str(policies), "-X", "DELETE", "--url", "http://ratings:8080/ratings/1",
                   "--from-principal", PRODUCTPAGE)
    [deny] = [step for step in data["steps"] if step["stage"] == "rbac"]
    assert deny["facts"] == ["DENY policy matched: ns[default]-policy[deny-delete]-rule[0]"]
    assert deny["sources"] == [{"resource": "AuthorizationPolicy default/deny-delete", "location": f"{policies}:7",
                                "field": "spec.rules[0]"}]
    assert data["outcome"] == {"verdict": "denied", "summary": "denied by RBAC: 403", "status": 403, "code": "rbac"}


def test_other_peer_is_denied_and_an_unknown_peer_forks(capsys: pytest.CaptureFixture[str], dump: str) -> None:
    other = explain(capsys, dump, "--url", "http://ratings:8080/", "--from-principal",
                    "spiffe://cluster.local/ns/default/sa/reviews")
    assert other["outcome"]["code"] == "rbac"
    assert rbac_steps(other)[-1] == "envoy.filters.http.rbac: ALLOW denied"
    unknown = explain(capsys, dump, "--url", "http://ratings:8080/")
    assert rbac_steps(unknown)[-1] == "envoy.filters.http.rbac: ALLOW undecided"
    assert [(b["condition"], b["outcome"]["verdict"]) for b in unknown["branches"]] == [
        ("if RBAC allows it", "forwarded"), ("if RBAC denies it", "denied")]


def test_plain_tls_without_client_certificate_fails_the_handshake(capsys: pytest.CaptureFixture[str], dump: str) -> None:
    data = explain(capsys, dump, "--tls", "--url", "http://ratings:8080/")
    assert data["outcome"]["code"] == "tls-handshake"


def test_random_fraction_forks(capsys: pytest.CaptureFixture[str], dump: str) -> None:
    data = explain(capsys, dump, "--url", "http://ratings:8080/canary/x", "--from-principal", PRODUCTPAGE)
    [maybe, otherwise] = data["branches"]
    assert maybe["condition"] == "if canary matches: matches 25% of requests at random (runtime_fraction)"
    assert [s["name"] for s in maybe["steps"] if s["stage"] == "route"] == ["canary"]
    assert otherwise["condition"] == "otherwise"
    route = [s for s in otherwise["steps"] if s["stage"] == "route"][0]
    assert route["name"] == "default"
    assert route["rejected"][0]["reasons"] == [
        "assumed not to match: matches 25% of requests at random (runtime_fraction)"]


def test_jwt_claim_forks(capsys: pytest.CaptureFixture[str], dump: str) -> None:
    data = explain(capsys, dump, "--url", "http://ratings:8080/vip", "--from-principal", PRODUCTPAGE)
    conditions = [branch["condition"] for branch in data["branches"]]
    assert conditions[0].startswith("if vip matches: depends on dynamic metadata of envoy.filters.http.jwt_authn")
    assert conditions[1] == "otherwise"
