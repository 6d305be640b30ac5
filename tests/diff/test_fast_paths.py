"""`meshctl diff` reports, after any edit, exactly what translating both sides cold and whole and
comparing every proxy gives (`wholediff`).

diff translates only what a change can reach: route configurations once per view, clusters
alone for a DestinationRule's connection pools, inbound sides only where their inputs differ,
policy filters before listeners. A shortcut that misses a proxy, or a resource, would be a
wrong answer that looks like a right one. So the property draws a mesh (the kitchen sink after
a few random edits, as the old side) and a change of it (one or two more edits, as the new
side), from edits chosen to land on every shortcut and on the whole path around them.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, examples
from wholediff import reported, whole_diff

from meshctl.config.loader import load_data
from meshctl.diff.compare import diff_meshes
from meshctl.diff.inputs import InputFile, Side, load_sides
from meshctl.generate.impact import clusters_only

KITCHEN_SINK = Path(__file__).resolve().parents[1] / "generate" / "data" / "kitchen-sink.yaml"
Key = tuple[str, str, str]
Objects = dict[Key, dict[str, Any]]
Edit = Callable[[random.Random, Objects], None]


def _key(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]


ORIGINAL: Objects = {_key(o): o for o in yaml.safe_load_all(KITCHEN_SINK.read_text()) if o}
WEB_RULE = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"host": "web", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}}}
SELECTED_RULE = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                 "metadata": {"name": "api-from-web", "namespace": "shop"},
                 "spec": {"host": "api", "workloadSelector": {"matchLabels": {"app": "web"}},
                          "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 11}}}}}
WILDCARD_RULE = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                 "metadata": {"name": "everything", "namespace": "shop"},
                 "spec": {"host": "*.shop.svc.cluster.local", "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 3}}}}
SCOPED = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "web", "namespace": "shop"},
          "spec": {"workloadSelector": {"labels": {"app": "web"}}, "egress": [{"hosts": ["./api.shop.svc.cluster.local"]}]}}
POLICY = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "api", "namespace": "shop"},
          "spec": {"selector": {"matchLabels": {"app": "api"}},
                   "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]}]}}


def _pick(rnd: random.Random, objects: Objects, kind: str) -> dict[str, Any] | None:
    found = [o for k, o in sorted(objects.items()) if k[0] == kind]
    return rnd.choice(found) if found else None


def _policies(rule: dict[str, Any]) -> list[dict[str, Any]]:
    """Every traffic policy of a rule, created where missing (`_pruned` drops those left empty):
    the rule's, its ports', its subsets'."""
    spec = rule["spec"]
    top = spec.setdefault("trafficPolicy", {})
    return [top, *top.get("portLevelSettings", []),
            *(subset.setdefault("trafficPolicy", {}) for subset in spec.get("subsets", []))]


def _policy_with(rnd: random.Random, objects: Objects, field: str) -> dict[str, Any] | None:
    """A traffic policy holding `field`, if some rule has one."""
    found = [p for k, o in sorted(objects.items()) if k[0] == "DestinationRule"
             for p in _policies(o) if field in p]
    return rnd.choice(found) if found else None


def _pool_value(rnd: random.Random, objects: Objects) -> None:
    """A connection pool's numbers (a change clusters alone read)."""
    policy = _policy_with(rnd, objects, "connectionPool")
    if policy is not None:
        policy["connectionPool"] = {"tcp": {"maxConnections": rnd.randrange(1, 500)},
                                    "http": {"http2MaxRequests": rnd.randrange(1, 500)}}


def _outlier_value(rnd: random.Random, objects: Objects) -> None:
    policy = _policy_with(rnd, objects, "outlierDetection")
    if policy is not None:
        policy["outlierDetection"] = {"consecutive5xxErrors": rnd.randrange(1, 20), "interval": f"{rnd.randrange(1, 9)}s"}


def _toggle_field(field: str, value: Callable[[random.Random], dict[str, Any]]) -> Edit:
    """Add the field to, or take it from, a random traffic policy (of a rule's, a port's, a subset's)."""

    def toggle(rnd: random.Random, objects: Objects) -> None:
        rule = _pick(rnd, objects, "DestinationRule")
        if rule is not None:
            policy = rnd.choice(_policies(rule))
            if policy.pop(field, None) is None:
                policy[field] = value(rnd)

    return toggle


def _load_balancer(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule is not None:
        rnd.choice(_policies(rule))["loadBalancer"] = rnd.choice(
            [{"simple": "LEAST_REQUEST"}, {"consistentHash": {"httpHeaderName": "x-user"}}, {"simple": "ROUND_ROBIN"}])


def _tls(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule is not None:
        rnd.choice(_policies(rule))["tls"] = {"mode": rnd.choice(["DISABLE", "ISTIO_MUTUAL"])}


def _subset_labels(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule is not None and rule["spec"].get("subsets"):
        rnd.choice(rule["spec"]["subsets"])["labels"] = {"version": rnd.choice(["v1", "v2", "primary", "a"])}


def _rule_export(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule is not None and "workloadSelector" not in rule["spec"]:  # exported to its namespace alone
        rule["spec"]["exportTo"] = rnd.choice([["."], ["*"], ["elsewhere"]])


def _route_subset(rnd: random.Random, objects: Objects) -> None:
    vs = _pick(rnd, objects, "VirtualService")
    routed = [rule for rule in (vs or {}).get("spec", {}).get("http", []) if rule.get("route")]
    if routed:
        destination = rnd.choice(routed)["route"][0]["destination"]
        destination["subset"] = rnd.choice(["v1", "v2", "a", "primary"])


def _replicas(rnd: random.Random, objects: Objects) -> None:
    """Scale a Deployment: proxies come and go."""
    deployment = _pick(rnd, objects, "Deployment")
    if deployment is not None:
        deployment["spec"]["replicas"] = rnd.randrange(1, 4)


def _tunnel(rnd: random.Random, objects: Objects) -> None:
    """Add a tunnel to, or take it from, a rule's or a subset's policy (ports have none): what
    tcp_proxy filters read of a rule, so a listener change from a DestinationRule edit."""
    rule = _pick(rnd, objects, "DestinationRule")
    if rule is not None:
        spec = rule["spec"]
        policy = rnd.choice([spec.setdefault("trafficPolicy", {}),
                             *(subset.setdefault("trafficPolicy", {}) for subset in spec.get("subsets", []))])
        if policy.pop("tunnel", None) is None:
            policy["tunnel"] = {"targetHost": "proxy.example.com", "targetPort": rnd.choice([3128, 8080]),
                                "protocol": rnd.choice(["CONNECT", "POST"])}


def _proxy_metadata(rnd: random.Random, objects: Objects) -> None:
    """Other node metadata for a Deployment's pods (its proxy.istio.io/config proxyMetadata)."""
    deployment = _pick(rnd, objects, "Deployment")
    if deployment is not None:
        metadata = {"ISTIO_META_IDLE_TIMEOUT": rnd.choice(["5s", "0s"])} if rnd.random() < 0.7 else {}
        deployment["spec"]["template"]["metadata"].setdefault("annotations", {})["proxy.istio.io/config"] = (
            yaml.safe_dump({"proxyMetadata": metadata}))


def _proxy_headers(rnd: random.Random, objects: Objects) -> None:
    """Other proxyHeaders for a Deployment's pods (its proxy.istio.io/config): what its virtual
    hosts (attempt counts), connection managers and routers read, which proxies of its view share."""
    deployment = _pick(rnd, objects, "Deployment")
    if deployment is not None:
        headers = rnd.choice([{}, {"attemptCount": {"disabled": True}}, {"server": {"disabled": True}},
                              {"requestId": {"disabled": True}, "envoyDebugHeaders": {"disabled": True}},
                              {"preserveHttp1HeaderCase": True}])
        deployment["spec"]["template"]["metadata"].setdefault("annotations", {})["proxy.istio.io/config"] = (
            yaml.safe_dump({"proxyHeaders": headers}))


def _policy_rule(rnd: random.Random, objects: Objects) -> None:
    policy = objects.get(_key(POLICY))
    if policy is not None:
        policy["spec"]["rules"] = [{"from": [{"source": {"namespaces": [rnd.choice(["shop", "other"])]}}]}]


def _toggle(extra: dict[str, Any]) -> Edit:
    def toggle(_rnd: random.Random, objects: Objects) -> None:
        if objects.pop(_key(extra), None) is None:
            objects[_key(extra)] = copy.deepcopy(extra)

    return toggle


EDITS: dict[str, Edit] = {
    "pool value": _pool_value,
    "outlier value": _outlier_value,
    "pool toggled": _toggle_field("connectionPool", lambda rnd: {"tcp": {"maxConnections": rnd.randrange(1, 99)}}),
    "outlier toggled": _toggle_field("outlierDetection", lambda rnd: {"consecutive5xxErrors": rnd.randrange(1, 9)}),
    "load balancer": _load_balancer,
    "tls": _tls,
    "subset labels": _subset_labels,
    "rule exported": _rule_export,
    "web rule": _toggle(WEB_RULE),
    "rule with a selector": _toggle(SELECTED_RULE),
    "wildcard rule": _toggle(WILDCARD_RULE),
    "route subset": _route_subset,
    "sidecar": _toggle(SCOPED),
    "authorization policy": _toggle(POLICY),
    "policy rule": _policy_rule,
    "replicas": _replicas,
    "tunnel": _tunnel,
    "proxy metadata": _proxy_metadata,
    "proxy headers": _proxy_headers,
}


def _side(label: str, objects: Objects) -> Side:
    text = yaml.safe_dump_all([objects[key] for key in sorted(objects)], sort_keys=False)
    return Side(label, (InputFile(f"{label}/mesh.yaml", text.encode()),))


def _edited(rnd: random.Random, objects: Objects, names: list[str]) -> Objects:
    edited = copy.deepcopy(objects)
    for name in names:
        EDITS[name](rnd, edited)
        _pruned(edited)
    return edited


def _pruned(objects: Objects) -> None:
    """Traffic policies left empty taken out (a rule may not hold an empty one)."""
    for key, rule in objects.items():
        if key[0] == "DestinationRule":
            for holder in (rule["spec"], *rule["spec"].get("subsets", [])):
                if holder.get("trafficPolicy") == {}:
                    del holder["trafficPolicy"]


@settings(FUZZ, max_examples=examples(40))
@given(seed=st.integers(0, 2**32 - 1), setup=st.lists(st.sampled_from(sorted(EDITS)), max_size=3),
       change=st.lists(st.sampled_from(sorted(EDITS)), min_size=1, max_size=2))
def test_diff_reports_what_translating_both_sides_whole_gives(seed: int, setup: list[str], change: list[str]) -> None:
    rnd = random.Random(seed)
    before = _edited(rnd, ORIGINAL, setup)
    after = _edited(rnd, before, change)
    old, new = load_sides(_side("old", before), _side("new", after), "default")
    assert reported(diff_meshes(old, new)) == whole_diff(old.resources, new.resources)


def _dr(spec: str) -> Any:
    text = f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r, namespace: shop}}\nspec:\n{spec}"
    (resource,) = load_data(text.encode(), "rule.yaml", "default").resources
    return resource


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}\n",
     "  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}}}\n", True),
    ("  host: a\n  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}\n",
     "  host: a\n  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2, interval: 3s}}\n", True),
    ("  host: a\n  trafficPolicy: {portLevelSettings: [{port: {number: 80}, connectionPool: {http: {maxRetries: 1}}}]}\n",
     "  host: a\n  trafficPolicy: {portLevelSettings: [{port: {number: 80}, connectionPool: {http: {maxRetries: 5}}}]}\n", True),
    ("  host: a\n  subsets: [{name: v1, labels: {v: '1'}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}}]\n",
     "  host: a\n  subsets: [{name: v1, labels: {v: '1'}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 4}}}}]\n", True),
    # A pool added where there was none: merged same-host rules keep the first policy present.
    ("  host: a\n  trafficPolicy: {tls: {mode: DISABLE}}\n",
     "  host: a\n  trafficPolicy: {tls: {mode: DISABLE}, connectionPool: {tcp: {maxConnections: 1}}}\n", False),
    ("  host: a\n", "  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}\n", False),
    ("  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}\n",
     "  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}}, loadBalancer: {simple: RANDOM}}\n", False),
    ("  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}\n",
     "  host: b\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 2}}}\n", False),
    ("  host: a\n  subsets: [{name: v1, labels: {v: '1'}}]\n", "  host: a\n  subsets: [{name: v1, labels: {v: '2'}}]\n", False),
])
def test_clusters_only_is_a_pool_or_outlier_edit_and_nothing_else(old: str, new: str, expected: bool) -> None:
    assert clusters_only(_dr(old), _dr(new)) is expected
    assert clusters_only(None, _dr(new)) is False and clusters_only(_dr(old), None) is False

