"""serve's cached generation gives, after any sequence of edits, exactly what a cold translation gives.

`meshctl serve` keeps one GenerationCache across config generations and reuses every piece whose
cache key did not change; `meshctl translate` starts from nothing. A key that misses an input
the piece reads would leave a proxy with stale config after an edit, silently, and only in
serve. So this property edits the kitchen-sink mesh step by step (subsets, load balancing, TLS,
routes, weights, mirrors, ports, labels, node metadata, deletions and restorations, exportTo,
PeerAuthentication, Sidecar scoping and egress proxies, an ExternalName alias) and after every step compares, for every workload, the serialized resources
and the warnings of both paths (the cold one from a snapshot built from nothing: snapshots
carry lookups over from the one before, which must be as right as the cache).
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, examples

from consistent import assert_consistent
from testsupport import vhost

from following import Follower

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.config.loader import load_file
from meshctl.generate.bootstrap import ads_bootstrap
from meshctl.model.meshconfig import mesh_resource
from meshctl.model.node import ISTIO_NODES
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from meshctl.resources import CLUSTER, ENDPOINT
from meshctl.sources.base import SourceUpdate
from meshctl.xds.cache import SnapshotCache
from meshctl.generate.cache import GenerationCache
from meshctl.generate.translator import MeshGeneration, Translator
from meshctl.generate.proxy import generate, inbound_clusters, inbound_listeners

KITCHEN_SINK = Path(__file__).parent / "data" / "kitchen-sink.yaml"
Key = tuple[str, str, str]
Objects = dict[Key, dict[str, Any]]
SUBSET_NAMES = ["v1", "v2", "v3", "primary", "a", "b"]
HOSTS = ["api", "web", "db", "legacy.shop.svc.cluster.local", "httpbin.org", "api.shop.svc.cluster.local", "alias"]
STRICT = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "strict", "namespace": "shop"}, "spec": {"mtls": {"mode": "STRICT"}}}
SCOPED_API = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "api", "namespace": "shop"},
              "spec": {"workloadSelector": {"labels": {"app": "api"}}, "egress": [{"hosts": ["./api.shop.svc.cluster.local"]}]}}
ALIAS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias", "namespace": "shop"},
         "spec": {"type": "ExternalName", "externalName": "legacy.shop.svc.cluster.local", "ports": [{"name": "http", "port": 9090}]}}
SCOPED = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "web", "namespace": "shop"},
          "spec": {"workloadSelector": {"labels": {"app": "web"}}, "egress": [{"hosts": ["./api.shop.svc.cluster.local"]}]}}


def _key(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]


ORIGINAL: Objects = {_key(o): o for o in yaml.safe_load_all(KITCHEN_SINK.read_text()) if o}


def _pick(rnd: random.Random, objects: Objects, kind: str, has: Callable[[dict], bool] = lambda o: True) -> dict | None:
    found = [o for k, o in sorted(objects.items()) if k[0] == kind and has(o)]
    return rnd.choice(found) if found else None


def _http_rules_with_routes(vs: dict) -> list[dict]:
    return [rule for rule in vs["spec"].get("http") or [] if rule.get("route")]


def _subset_labels(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule", lambda o: o["spec"].get("subsets"))
    if rule:
        rnd.choice(rule["spec"]["subsets"])["labels"] = {"version": rnd.choice(SUBSET_NAMES)}


def _drop_subset(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule", lambda o: o["spec"].get("subsets"))
    if rule:
        subsets = rule["spec"]["subsets"]
        subsets.pop(rnd.randrange(len(subsets)))
        if not subsets:
            del rule["spec"]["subsets"]


def _load_balancer(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule:
        policy = rule["spec"].setdefault("trafficPolicy", {})
        policy["loadBalancer"] = rnd.choice([{"simple": "LEAST_REQUEST"}, {"consistentHash": {"httpHeaderName": "x-user"}},
                                             {"consistentHash": {"useSourceIp": True}}])


def _tls(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule:
        rule["spec"].setdefault("trafficPolicy", {})["tls"] = {"mode": rnd.choice(["DISABLE", "ISTIO_MUTUAL"])}


POOLS = [None, {"tcp": {"maxConnections": 7}}, {"tcp": {"maxConnections": 9, "idleTimeout": "5s"}},
         {"tcp": {"maxConnectionDuration": "1h"}}, {"http": {"http1MaxPendingRequests": 3, "idleTimeout": "9s"}}]


def _policy_level(rnd: random.Random, rule: dict) -> dict:
    """The rule's traffic policy, one of its subsets', or a port-level entry of either (made
    when missing): a connection pool or outlier detection reaches clusters only, unless it is
    the rule's own TCP idle timeout or connection duration (tcp_proxy), or the very presence of
    a policy decides what else applies (same-host merging, port-level overrides)."""
    spec = rule["spec"]
    owners = [spec, *(spec.get("subsets") or [])]
    policy = rnd.choice(owners).setdefault("trafficPolicy", {})
    if rnd.random() < 0.3:
        ports = policy.setdefault("portLevelSettings", [{"port": {"number": rnd.choice([80, 8080, 9090, 5432])}}])
        return rnd.choice(ports)
    return policy


def _connection_pool(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule:
        level, pool = _policy_level(rnd, rule), copy.deepcopy(rnd.choice(POOLS))
        if pool is None:
            level.pop("connectionPool", None)
        else:
            level["connectionPool"] = pool


def _outlier_detection(rnd: random.Random, objects: Objects) -> None:
    rule = _pick(rnd, objects, "DestinationRule")
    if rule:
        level = _policy_level(rnd, rule)
        if level.pop("outlierDetection", None) is None:
            level["outlierDetection"] = {"consecutive5xxErrors": rnd.choice([3, 5]), "interval": "10s"}


def _route_subset(rnd: random.Random, objects: Objects) -> None:
    vs = _pick(rnd, objects, "VirtualService", _http_rules_with_routes)
    if vs:
        destination = rnd.choice(_http_rules_with_routes(vs))["route"][0]["destination"]
        subset = rnd.choice([*SUBSET_NAMES, None])
        if subset is None:
            destination.pop("subset", None)
        else:
            destination["subset"] = subset


def _weights(rnd: random.Random, objects: Objects) -> None:
    vs = _pick(rnd, objects, "VirtualService", _http_rules_with_routes)
    if vs:
        routes = rnd.choice(_http_rules_with_routes(vs))["route"]
        if len(routes) > 1:
            first = rnd.randrange(101)
            routes[0]["weight"], routes[1]["weight"] = first, 100 - first
            del routes[2:]


def _retarget(rnd: random.Random, objects: Objects) -> None:
    """Route or mirror to another host (the routes now depend on that host's rule)."""
    vs = _pick(rnd, objects, "VirtualService", _http_rules_with_routes)
    if vs:
        rule = rnd.choice(_http_rules_with_routes(vs))
        if rnd.random() < 0.5:
            rule["mirror"] = {"host": rnd.choice(HOSTS)}
            rule.pop("mirrors", None)
        else:
            rule["route"] = [{"destination": {"host": rnd.choice(HOSTS)}}]


def _service_port(rnd: random.Random, objects: Objects) -> None:
    service = _pick(rnd, objects, "Service")
    if service:
        port = rnd.choice(service["spec"]["ports"])
        port["name"] = rnd.choice(["http", "tcp", "grpc", "web"]) + "-" + str(rnd.randrange(3))
        port["targetPort"] = rnd.choice([port["port"], 9000, 8081])


def _pod_labels(rnd: random.Random, objects: Objects) -> None:
    deployment = _pick(rnd, objects, "Deployment")
    if deployment:
        deployment["spec"]["template"]["metadata"]["labels"]["version"] = rnd.choice(SUBSET_NAMES)


def _proxy_metadata(rnd: random.Random, objects: Objects) -> None:
    """Give a Deployment's pods other node metadata (proxy.istio.io/config proxyMetadata): the
    idle timeout and HTTP/1.0 their listeners take, which no view or route reads."""
    deployment = _pick(rnd, objects, "Deployment")
    if deployment:
        annotations = deployment["spec"]["template"]["metadata"].setdefault("annotations", {})
        metadata = {key: value for key, value in (("ISTIO_META_IDLE_TIMEOUT", rnd.choice(["5s", "0s", None])),
                                                  ("ISTIO_META_HTTP10", rnd.choice(["1", None]))) if value}
        annotations["proxy.istio.io/config"] = yaml.safe_dump({"proxyMetadata": metadata})


def _replicas(rnd: random.Random, objects: Objects) -> None:
    """Scale a Deployment: endpoints come and go, and so do proxies."""
    deployment = _pick(rnd, objects, "Deployment")
    if deployment:
        deployment["spec"]["replicas"] = rnd.randrange(1, 4)


def _endpoint_address(rnd: random.Random, objects: Objects) -> None:
    """Move a ServiceEntry endpoint: only endpoints change (an EDS-only push)."""
    entry = _pick(rnd, objects, "ServiceEntry", lambda o: o["spec"].get("endpoints"))
    if entry:
        rnd.choice(entry["spec"]["endpoints"])["address"] = f"10.9.{rnd.randrange(4)}.{rnd.randrange(1, 255)}"


def _delete(rnd: random.Random, objects: Objects) -> None:
    removable = sorted(k for k in objects if k[0] not in ("Deployment", "Namespace"))
    if removable:
        del objects[rnd.choice(removable)]


def _restore(rnd: random.Random, objects: Objects) -> None:
    key = rnd.choice(sorted(ORIGINAL))
    objects[key] = copy.deepcopy(ORIGINAL[key])


def _export_to(rnd: random.Random, objects: Objects) -> None:
    item = _pick(rnd, objects, rnd.choice(["VirtualService", "DestinationRule", "ServiceEntry"]))
    if item:
        item["spec"]["exportTo"] = rnd.choice([["."], ["*"], ["elsewhere"]])


def _sidecar_hosts(rnd: random.Random, objects: Objects) -> None:
    """Give one or both Sidecars egress hosts (the same ones, often: then they share routes),
    sometimes as a bound HTTP port listener plus a catch-all."""
    hosts = rnd.choice([["./*"], ["*/*"], ["shop/api.shop.svc.cluster.local"],
                        ["./alias.shop.svc.cluster.local", "./api.shop.svc.cluster.local"],
                        ["*/httpbin.org", "./db.shop.svc.cluster.local"]])
    for template in rnd.choice([[SCOPED], [SCOPED_API], [SCOPED, SCOPED_API]]):
        sidecar = objects.setdefault(_key(template), copy.deepcopy(template))
        if rnd.random() < 0.5:
            sidecar["spec"]["egress"] = [{"hosts": list(hosts)}]
        else:
            bound = {"port": {"number": 9090, "protocol": "HTTP", "name": "http"},
                     "bind": rnd.choice(["127.0.0.2", "127.0.0.3"]), "hosts": list(hosts)}
            sidecar["spec"]["egress"] = [bound, {"hosts": ["*/*"]}]


def _egress_proxy(rnd: random.Random, objects: Objects) -> None:
    """Send one Sidecar's unknown traffic to an egress proxy, or back out directly: its proxies'
    catch-alls (and allow_any routes) change, though what it imports does not."""
    template = rnd.choice([SCOPED, SCOPED_API])
    sidecar = objects.setdefault(_key(template), copy.deepcopy(template))
    if sidecar["spec"].pop("outboundTrafficPolicy", None) is None:
        sidecar["spec"]["outboundTrafficPolicy"] = {
            "mode": "ALLOW_ANY", "egressProxy": {"host": "egress.example.com", "port": {"number": rnd.choice([3128, 8080])}}}


def _toggle(extra: dict[str, Any]) -> Callable[[random.Random, Objects], None]:
    def toggle(rnd: random.Random, objects: Objects) -> None:
        if objects.pop(_key(extra), None) is None:
            objects[_key(extra)] = copy.deepcopy(extra)

    return toggle



MESH = ("ConfigMap", "istio-system", "istio")
"""Where the edits keep the mesh config (`mesh` text): handed to the translator as the
Kubernetes source does, as a resource of kind MeshConfig."""


def _resources(scratch: Path, objects: Objects) -> list[Any]:
    """The objects as serve's sources would hand them over, the mesh config among them."""
    scratch.write_text(yaml.safe_dump_all([o for k, o in objects.items() if k != MESH]))
    resources = list(load_file(str(scratch)).resources)
    if MESH in objects:
        resources.append(mesh_resource(objects[MESH], "test"))
    return resources


def _move_host(rnd: random.Random, objects: Objects) -> None:
    """Move (or copy, when it is the last) a host from one VirtualService to another: the
    virtual host changes owner, and with it its routes and the domains it claims."""
    source = _pick(rnd, objects, "VirtualService")
    target = _pick(rnd, objects, "VirtualService", lambda o: bool(o["spec"].get("http")))
    if source and target and source is not target:
        host = rnd.choice(source["spec"]["hosts"])
        if len(source["spec"]["hosts"]) > 1:
            source["spec"]["hosts"].remove(host)
        if host not in target["spec"]["hosts"]:
            target["spec"]["hosts"].append(host)


def _vs_external_host(rnd: random.Random, objects: Objects) -> None:
    """Name a host no service has yet (a ServiceEntry may add it: see EXTRA_ENTRY)."""
    vs = _pick(rnd, objects, "VirtualService", lambda o: bool(o["spec"].get("http")))
    if vs and "extra.example.com" not in vs["spec"]["hosts"]:
        vs["spec"]["hosts"].append("extra.example.com")


def _precedence(rnd: random.Random, objects: Objects) -> None:
    """Make a VirtualService the oldest or the newest: the first to claim a domain wins it."""
    vs = _pick(rnd, objects, "VirtualService")
    if vs:
        vs["metadata"]["creationTimestamp"] = rnd.choice(["2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])


def _match_port(rnd: random.Random, objects: Objects) -> None:
    """Restrict an HTTP rule to a port or lift the restriction: a VirtualService's routes on a
    port become empty or come back, and with them the virtual hosts it fills."""
    vs = _pick(rnd, objects, "VirtualService", _http_rules_with_routes)
    if vs:
        rule = rnd.choice(_http_rules_with_routes(vs))
        if rule.get("match") and rnd.random() < 0.5:
            del rule["match"]
        else:
            rule["match"] = [{"port": rnd.choice([80, 8080, 9090, 9999])}]


def _source_labels(rnd: random.Random, objects: Objects) -> None:
    """Match HTTP rules on the client's labels (routes then differ by proxy), or stop."""
    vs = _pick(rnd, objects, "VirtualService", _http_rules_with_routes)
    if vs:
        rule = rnd.choice(_http_rules_with_routes(vs))
        if any("sourceLabels" in match for match in rule.get("match") or []):
            del rule["match"]
        else:
            rule["match"] = [{"sourceLabels": {"app": rnd.choice(["web", "api"])}}]


def _mesh_config(rnd: random.Random, objects: Objects) -> None:
    """Change the mesh config: the catch-all virtual host, and which VirtualServices a
    namespace sees by default."""
    text = rnd.choice(["outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n", 'defaultVirtualServiceExportTo: ["."]\n',
                       "outboundTrafficPolicy: {mode: ALLOW_ANY}\n", None])
    if text is None:
        objects.pop(MESH, None)
    else:
        objects[MESH] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                         "data": {"mesh": text}}


EXTRA_ENTRY = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "extra", "namespace": "shop"},
               "spec": {"hosts": ["extra.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]}}


EDITS = [_subset_labels, _drop_subset, _load_balancer, _tls, _connection_pool, _outlier_detection, _route_subset, _weights, _retarget, _service_port,
         _pod_labels, _proxy_metadata, _egress_proxy, _replicas, _endpoint_address, _delete, _restore, _export_to, _sidecar_hosts, _toggle(STRICT), _toggle(SCOPED), _toggle(SCOPED_API), _toggle(ALIAS),
         _move_host, _vs_external_host, _precedence, _match_port, _source_labels, _mesh_config, _toggle(EXTRA_ENTRY)]


def _rendered(config: Any) -> tuple[dict[str, dict[str, tuple[str, bytes]]], list[str]]:
    """The config's resources as (version, bytes) and its warnings, checked to be consistent
    first: a resource updated in place must carry the version a cold build gives it, or a
    restarted serve would push again what a proxy holds (or, worse, skip a change)."""
    packed = config.packed()
    assert_consistent(packed)
    return {t: {n: (p.version, p.value) for n, p in items.items()} for t, items in packed.items()}, sorted(config.warnings)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generation-cache") / "mesh.yaml"


def _assert_cached_equals_cold(scratch: Path, edits: list[Callable[[Objects], None]], what: str) -> None:
    """Apply the edits one by one to the kitchen sink, checking every workload after each."""
    objects = copy.deepcopy(ORIGINAL)
    translator = Translator()
    for step, edit in enumerate([lambda objects: None, *edits]):
        edit(objects)
        resources = _resources(scratch, objects)
        generation = translator(resources)
        snapshot, fresh = generation.snapshot, build_snapshot(resources)
        for workload in snapshot.registry.workloads:
            proxy = snapshot.proxy(workload.proxy_id)
            cached = _rendered(generate(snapshot, proxy, generation.cache))
            cold = _rendered(generate(fresh, fresh.proxy(workload.proxy_id)))
            assert cached == cold, f"{workload.proxy_id} differs after step {step} ({what})"


def _publish(scratch: Path, objects: Objects, cache: SnapshotCache, translator: Translator) -> tuple[MeshSnapshot, list[Any]]:
    """Hand the objects to serve's cache as a source update would; the snapshot it accepted,
    and the resources it was built from."""
    resources = _resources(scratch, objects)
    cache.apply(SourceUpdate(tuple(resources)), translator)
    assert translator.previous is not None
    return translator.previous, resources


def _assert_served_equals_cold(scratch: Path, edits: list[Callable[[Objects], None]], what: str) -> None:
    """Serve the kitchen sink to a SotW and a Delta client per workload, editing it step by
    step: after every step, what each client holds must be what a cold translation gives.
    A dependency the server's push filters miss leaves some client with stale resources."""
    objects = copy.deepcopy(ORIGINAL)
    cache = SnapshotCache(ISTIO_NODES)
    translator = Translator()
    followers: dict[str, list[Follower]] = {}
    nodes: dict[str, Any] = {}
    for step, edit in enumerate([lambda objects: None, *edits]):
        edit(objects)
        snapshot, resources = _publish(scratch, objects, cache, translator)
        fresh = build_snapshot(resources)
        for workload in snapshot.registry.workloads:
            proxy = snapshot.proxy(workload.proxy_id)
            node = ads_bootstrap(proxy, "127.0.0.1", 0, admin_port=0).node
            # A pod given other node metadata is a new pod: its proxy connects anew.
            if nodes.get(workload.proxy_id) != node:
                nodes[workload.proxy_id] = node
                followers[workload.proxy_id] = [Follower(cache, node), Follower(cache, node, delta=True)]
                for follower in followers[workload.proxy_id]:
                    follower.start()
            else:
                for follower in followers[workload.proxy_id]:
                    follower.wake()
            cold = {t: {n: p.value for n, p in items.items()}
                    for t, items in generate(fresh, fresh.proxy(workload.proxy_id)).packed().items()}
            for follower in followers[workload.proxy_id]:
                mode = "delta" if follower.delta else "sotw"
                assert follower.held == cold, f"{workload.proxy_id} ({mode}) holds stale config after step {step} ({what})"


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
@settings(FUZZ, max_examples=examples(10))
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 6))
def test_serve_equals_a_cold_translation_after_every_edit(scratch: Path, check: Callable[..., None], seed: int,
                                                         steps: int) -> None:
    """What serve generates with its cache, and what its streams push (and so what each proxy
    holds), after random edits."""
    rnd = random.Random(seed)
    edits = [rnd.choice(EDITS) for _ in range(steps)]
    check(scratch, [lambda objects, edit=edit: edit(rnd, objects) for edit in edits], f"seed {seed}")


def test_an_alias_leaving_the_proxys_scope_changes_its_routes(scratch: Path) -> None:
    """A route to an ExternalName service goes to the service it names while the proxy sees the
    alias; a Sidecar hiding the alias changes the route even though no route input changed."""

    def route_to_alias(objects: Objects) -> None:
        objects[("VirtualService", "shop", "api")]["spec"]["http"][-1]["route"] = [{"destination": {"host": "alias"}}]

    scope = _toggle(ALIAS), _toggle(SCOPED)
    _assert_cached_equals_cold(scratch, [lambda o: scope[0](random.Random(), o), route_to_alias,
                                         lambda o: scope[1](random.Random(), o)], "alias hidden by a Sidecar")


MEMCACHE_POOL = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                 "metadata": {"name": "memcache", "namespace": "shop"},
                 "spec": {"host": "memcache.shop.internal",
                          "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}}}


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
def test_a_rule_for_a_service_entry_the_proxy_serves_changes_its_inbound_cluster(scratch: Path,
                                                                                  check: Callable[..., None]) -> None:
    """cache serves memcache.shop.internal's port because the ServiceEntry selects it, not a
    Kubernetes Service: that entry's DestinationRule is one of its own services' rules, whose
    connection pool its inbound cluster takes, and whose edits its inbound side must follow
    (served, also when the proxy itself is kept: nothing of its own changed)."""

    def pool(connections: int) -> Callable[[Objects], None]:
        def edit(objects: Objects) -> None:
            rule = copy.deepcopy(MEMCACHE_POOL)
            rule["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"] = connections
            objects[_key(rule)] = rule
        return edit

    check(scratch, [pool(7), pool(9)], "the memcache rule's connection pool")


def _db_policy(where: str, value: dict[str, Any] | None) -> Callable[[Objects], None]:
    """Set (None: remove) the db rule's connection pool (`where` "rule") or its subset's whole
    traffic policy (`where` "subset")."""

    def edit(objects: Objects) -> None:
        spec = objects[("DestinationRule", "shop", "db")]["spec"]
        owner, field = (spec["trafficPolicy"], "connectionPool") if where == "rule" else (spec["subsets"][0], "trafficPolicy")
        if value is None:
            owner.pop(field, None)
        else:
            owner[field] = copy.deepcopy(value)

    return edit


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
def test_a_rules_connection_pool_reaches_listeners_only_by_what_tcp_proxy_reads(scratch: Path,
                                                                              check: Callable[..., None]) -> None:
    """db is served over TCP: its rule's own TCP idle timeout and connection duration go into
    every client's tcp_proxy, its connection limits and its subset's pool into clusters alone
    (listeners and endpoints are keyed by the rules as they read them: impact.rules_beyond_clusters)."""
    check(scratch, [
        _db_policy("rule", {"tcp": {"maxConnections": 7}}),
        _db_policy("rule", {"tcp": {"maxConnections": 7, "idleTimeout": "5s"}}),
        _db_policy("rule", {"tcp": {"maxConnections": 9, "idleTimeout": "5s"}}),
        _db_policy("rule", {"tcp": {"maxConnections": 9, "idleTimeout": "5s", "maxConnectionDuration": "1h"}}),
        _db_policy("subset", {"connectionPool": {"tcp": {"maxConnections": 3, "idleTimeout": "7s"}}}),
        _db_policy("subset", {"connectionPool": {"tcp": {"maxConnections": 3}}, "tls": {"mode": "ISTIO_MUTUAL"}}),
        _db_policy("subset", None),
        _db_policy("rule", None),
    ], "the db rule's connection pools")


TEAM = """
apiVersion: v1
kind: Service
metadata: {name: blue, namespace: team}
spec: {ports: [{name: http, port: 80}], selector: {app: blue}}
---
apiVersion: v1
kind: Service
metadata: {name: green, namespace: team}
spec: {ports: [{name: http, port: 80}], selector: {app: green}}
---
apiVersion: v1
kind: Pod
metadata: {name: client-a, namespace: team, labels: {app: a}}
spec: {containers: [{name: c, image: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client-b, namespace: team, labels: {app: b}}
spec: {containers: [{name: c, image: c}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: a, namespace: team}
spec: {workloadSelector: {labels: {app: a}}, egress: [{hosts: ["./blue.team.svc.cluster.local"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: b, namespace: team}
spec: {workloadSelector: {labels: {app: b}}, egress: [{hosts: ["./HOST.team.svc.cluster.local"]}]}
"""


@pytest.mark.parametrize("host", ["blue", "green"])
def test_proxies_share_routes_exactly_when_their_sidecars_import_the_same(scratch: Path, host: str) -> None:
    """Two Sidecars, one route name (`80`): routes are built once for both when they import the
    same service, and never shared when they import different ones."""
    scratch.write_text(TEAM.replace("HOST", host))
    generation = Translator()(load_file(str(scratch)).resources)
    snapshot = generation.snapshot
    a, b = (generate(snapshot, snapshot.proxy(f"client-{x}.team"), generation.cache) for x in "ab")
    assert [r.name for r in a.routes] == [r.name for r in b.routes] == ["80"]
    assert (a.assembled is b.assembled) == (host == "blue")
    for config, name in ((a, "client-a.team"), (b, "client-b.team")):
        assert _rendered(config) == _rendered(generate(snapshot, snapshot.proxy(name)))


@pytest.mark.parametrize("host", ["blue", "green"])
def test_proxies_share_clusters_and_endpoints_exactly_when_their_sidecars_import_the_same(scratch: Path, host: str) -> None:
    """Clusters and endpoints read a Sidecar only for the services it imports: two Sidecars
    differing in their selector alone share the very same outbound clusters and assignments,
    and Sidecars importing different services never do."""
    scratch.write_text(TEAM.replace("HOST", host))
    generation = Translator()(load_file(str(scratch)).resources)
    snapshot = generation.snapshot
    a, b = (generate(snapshot, snapshot.proxy(f"client-{x}.team"), generation.cache) for x in "ab")
    outbound_a, outbound_b = a.segments[CLUSTER][0], b.segments[CLUSTER][0]
    assert any("blue.team" in c.name for c in outbound_a)
    assert (outbound_a is outbound_b) == (a.endpoints is b.endpoints) == (host == "blue")
    for config, name in ((a, "client-a.team"), (b, "client-b.team")):
        assert _rendered(config) == _rendered(generate(snapshot, snapshot.proxy(name)))


BLUE_SLICE = """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: blue-x1, namespace: team, labels: {kubernetes.io/service-name: blue}}
addressType: IPv4
endpoints: [{addresses: [ADDRESS], conditions: {ready: true}}]
ports: [{name: http, port: 80, protocol: TCP}]
"""


def test_an_endpointslice_change_keeps_every_route_and_moves_the_endpoint(scratch: Path) -> None:
    """Routes name services, never endpoints: after an EndpointSlice change a proxy keeps its
    very route configurations, while its assignment follows the new address (as cold)."""
    translator = Translator()
    configs = []
    for address in ("10.1.0.7", "10.1.0.8"):
        scratch.write_text(TEAM.replace("HOST", "blue") + BLUE_SLICE.replace("ADDRESS", address))
        generation = translator(load_file(str(scratch)).resources)
        snapshot = generation.snapshot
        configs.append(generate(snapshot, snapshot.proxy("client-a.team"), generation.cache))
        assert _rendered(configs[-1]) == _rendered(generate(snapshot, snapshot.proxy("client-a.team")))
    before, after = configs
    assert after.assembled is before.assembled
    addresses = [[lb.endpoint.address.socket_address.address for e in c.endpoints if "blue.team" in e.cluster_name
                  for locality in e.endpoints for lb in locality.lb_endpoints] for c in configs]
    assert addresses == [["10.1.0.7"], ["10.1.0.8"]]


def test_an_endpoint_change_pushes_endpoints_only_to_their_subscribers(scratch: Path) -> None:
    """Moving a ServiceEntry endpoint pushes one EDS response to each proxy subscribed to its
    clusters, and nothing else to anyone (the translator hands every other watch the mapping it
    was given before, and the stream passes it over)."""
    objects = copy.deepcopy(ORIGINAL)
    objects[_key(SCOPED)] = copy.deepcopy(SCOPED)  # web's proxies see only api
    cache = SnapshotCache(ISTIO_NODES)
    translator = Translator()
    snapshot, _ = _publish(scratch, objects, cache, translator)
    followers = []
    for workload in snapshot.registry.workloads:
        node = ads_bootstrap(snapshot.proxy(workload.proxy_id), "127.0.0.1", 0, admin_port=0).node
        followers += [Follower(cache, node), Follower(cache, node, delta=True)]
    for follower in followers:
        follower.start()
        follower.pushed.clear()
    objects[("ServiceEntry", "shop", "inventory")]["spec"]["endpoints"][0]["address"] = "10.9.3.3"
    _publish(scratch, objects, cache, translator)
    for follower in followers:
        follower.wake()
    subscribers = [f for f in followers if any("inventory.internal" in name for name in f.subscribed[ENDPOINT])]
    assert subscribers and len(subscribers) < len(followers)
    for follower in followers:
        assert follower.pushed == ([ENDPOINT] if follower in subscribers else []), follower.stream.proxy_id


SOURCES = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: front}
spec: {ports: [{name: http, port: 80}], selector: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: front, labels: {app: web}}
spec: {containers: [{name: c, image: c}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: front}
spec: {host: web, subsets: [{name: v1, labels: {app: web}}, {name: v2, labels: {app: web}}]}
"""
ROUTES = {
    "plain": "[{route: [{destination: {host: web.front.svc.cluster.local, subset: v1}}]}]",
    "by-source": """
  - {match: [{sourceNamespace: back}], route: [{destination: {host: web.front.svc.cluster.local, subset: v2}}]}
  - {match: [{sourceLabels: {tier: gold}}], route: [{destination: {host: web.front.svc.cluster.local, subset: v2}}]}
  - {route: [{destination: {host: web.front.svc.cluster.local, subset: v1}}]}""",
}
CLIENTS = [("front", "plain"), ("back", "plain"), ("front", "gold"), ("back", "gold")]


@pytest.mark.parametrize("routes", sorted(ROUTES))
def test_routes_of_a_virtual_service_are_shared_unless_they_read_the_source(scratch: Path, routes: str) -> None:
    """Clients in two namespaces, with and without a label: one VirtualService's routes are built
    once for all of them unless a match reads the client's namespace or labels, and every client
    gets what a cold translation gives it, whichever client was translated first."""
    vs = ("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: front}\n"
          f"spec:\n  hosts: [web.front.svc.cluster.local]\n  http: {ROUTES[routes]}\n")
    pods = "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: c-{tier}, namespace: {ns}, labels: {{tier: {tier}}}}}\n"
                   f"spec: {{containers: [{{name: c, image: c}}]}}\n" for ns, tier in CLIENTS)
    scratch.write_text(SOURCES + vs + pods)
    generation = Translator()(load_file(str(scratch)).resources)
    snapshot = generation.snapshot
    subsets = []
    for namespace, tier in CLIENTS:
        proxy = snapshot.proxy(f"c-{tier}.{namespace}")
        config = generate(snapshot, proxy, generation.cache)
        assert _rendered(config) == _rendered(generate(snapshot, proxy))
        (route,) = [r for r in vhost(config, "80", "web.front.svc.cluster.local:80").routes if r.name != "allow_any"][:1]
        subsets.append(route.route.cluster.split("|")[2])
    assert subsets == {"plain": ["v1"] * 4, "by-source": ["v1", "v2", "v2", "v2"]}[routes]


def _timeout(seconds: int) -> Callable[[Objects], None]:
    """An edit of httpbin's VirtualService in place (its rules alone): the route table of the
    snapshot before is updated rather than rebuilt, so the edit after it is checked against
    an updated table."""
    def edit(objects: Objects) -> None:
        vs = objects.get(("VirtualService", "shop", "httpbin"))
        if vs is not None:
            vs["spec"]["http"][0]["timeout"] = f"{seconds}s"
    return edit


def _seeded(edit: Callable[[random.Random, Objects], None], seed: int) -> Callable[[Objects], None]:
    return lambda objects: edit(random.Random(seed), objects)


def _moved_host(objects: Objects) -> None:
    objects[("VirtualService", "shop", "api")]["spec"]["hosts"].remove("api.shop")
    objects[("VirtualService", "shop", "httpbin")]["spec"]["hosts"].append("api.shop")


def _subsets(objects: Objects) -> None:
    objects[("DestinationRule", "shop", "api")]["spec"]["subsets"] = [{"name": "v1", "labels": {"version": "v2"}}]
    objects[("VirtualService", "shop", "httpbin")]["spec"]["http"][0]["route"] = [
        {"destination": {"host": "api.shop.svc.cluster.local", "subset": "v1"}}]


def _extra_host(objects: Objects) -> None:
    objects[("VirtualService", "shop", "httpbin")]["spec"]["hosts"].append("extra.example.com")


def _mesh(text: str) -> Callable[[Objects], None]:
    def edit(objects: Objects) -> None:
        objects[MESH] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
                         "data": {"mesh": text}}
    return edit


def _without(key: Key) -> Callable[[Objects], None]:
    return lambda objects: objects.pop(key, None) and None


def _with(obj: dict[str, Any]) -> Callable[[Objects], None]:
    return lambda objects: objects.__setitem__(_key(obj), copy.deepcopy(obj))


def _egress(hosts: list[str]) -> Callable[[Objects], None]:
    def edit(objects: Objects) -> None:
        sidecar = objects.setdefault(_key(SCOPED), copy.deepcopy(SCOPED))
        sidecar["spec"]["egress"] = [{"hosts": hosts}]
    return edit


def _port_only(port: int | None) -> Callable[[Objects], None]:
    """httpbin's only rule for one port (its routes on port 80 become empty), or for all."""
    def edit(objects: Objects) -> None:
        rule = objects[("VirtualService", "shop", "httpbin")]["spec"]["http"][0]
        if port is None:
            rule.pop("match", None)
        else:
            rule["match"] = [{"port": port}]
    return edit


def _shared_host(objects: Objects) -> None:
    """api's VirtualService claims httpbin.org too: the older of the two gets its virtual host."""
    objects[("VirtualService", "shop", "api")]["spec"]["hosts"].append("httpbin.org")


def _oldest(objects: Objects) -> None:
    """httpbin's VirtualService becomes older than api's (objects without a creation time are
    the oldest)."""
    objects[("VirtualService", "shop", "api")]["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"


REUSE_TRAPS: dict[str, list[Callable[[Objects], None]]] = {
    "a VirtualService becomes the oldest claiming a host": [_timeout(1), _shared_host, _timeout(2), _oldest, _timeout(3)],
    "a host moves to another VirtualService": [_timeout(1), _moved_host, _timeout(2), _with(ORIGINAL[("VirtualService", "shop", "api")]),
                                               _timeout(3)],
    "a VirtualService is deleted": [_timeout(1), _without(("VirtualService", "shop", "api")), _timeout(2),
                                    _with(ORIGINAL[("VirtualService", "shop", "api")]), _timeout(3)],
    "a Sidecar's egress changes": [_timeout(1), _egress(["./*"]), _timeout(2), _egress(["./api.shop.svc.cluster.local"]),
                                   _timeout(3), _egress(["*/httpbin.org"]), _timeout(4)],
    "a DestinationRule's subsets change": [_timeout(1), _subsets, _timeout(2), _seeded(_drop_subset, 1),
                                           _timeout(3)],
    "a ServiceEntry adds a VirtualService's host": [_timeout(1), _extra_host, _timeout(2), _with(EXTRA_ENTRY), _timeout(3),
                                                    _without(_key(EXTRA_ENTRY)), _timeout(4)],
    "the mesh config changes": [_timeout(1), _mesh("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"), _timeout(2),
                                _mesh('defaultVirtualServiceExportTo: ["."]\n'), _timeout(3), _without(MESH), _timeout(4)],
    "an edit empties a VirtualService's routes on its port": [_timeout(1), _port_only(9999), _timeout(2), _port_only(None),
                                                              _timeout(3)],
    "an edit makes routes read the client's labels": [_timeout(1), _seeded(_source_labels, 5), _timeout(2),
                                                      _seeded(_source_labels, 5), _timeout(3)],
}


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
@pytest.mark.parametrize("trap", sorted(REUSE_TRAPS))
def test_a_virtual_host_is_rebuilt_whenever_what_it_reads_changes(scratch: Path, check: Callable[..., None], trap: str) -> None:
    """Changes that reach further than the VirtualService edited in place, each between such
    edits (whose route tables are updated, not rebuilt): a virtual host or route table kept
    where it should have been rebuilt shows as a difference from a cold translation."""
    check(scratch, REUSE_TRAPS[trap], trap)


def _many(count: int, subset: str = "v1") -> str:
    docs = []
    for i in range(count):
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: n{i % 2}}}
spec: {{ports: [{{name: http, port: 80}}], selector: {{app: s{i}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: s{i}, namespace: n{i % 2}}}
spec:
  hosts: [s{i}]
  http: [{{route: [{{destination: {{host: s{i}, subset: {subset if i == 3 else 'v1'}}}}}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: s{i}, namespace: n{i % 2}}}
spec: {{host: s{i}, subsets: [{{name: v1, labels: {{v: "1"}}}}, {{name: v2, labels: {{v: "2"}}}}]}}
""")
    docs.append("apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: n0}\nspec: {containers: [{name: c, image: c}]}\n")
    return "---\n".join(docs)


@pytest.mark.parametrize("count", [12, 300])
def test_a_virtual_service_edited_in_place_rebuilds_its_virtual_host_alone(scratch: Path, count: int) -> None:
    """One VirtualService's rules edited: the next snapshot records the edit as in place, the
    client's route configuration keeps every other virtual host's very bytes and differs only
    in the edited one, and it is byte for byte, and version for version, the cold translation
    (with 300 services, the edited host sits in the second block of hosts: routebytes.BLOCK)."""
    translator = Translator()
    configs = []
    for subset in ("v1", "v2"):
        scratch.write_text(_many(count, subset))
        generation = translator(load_file(str(scratch)).resources)
        snapshot = generation.snapshot
        configs.append(generate(snapshot, snapshot.proxy("client.n0"), generation.cache))
        assert _rendered(configs[-1]) == _rendered(generate(snapshot, snapshot.proxy("client.n0")))
    assert snapshot.routing_changes is not None
    assert [new.resource.key for _, new in snapshot.routing_changes.edited] == [("VirtualService", "n1", "s3")]
    (before,), (after,) = (config.assembled for config in configs)
    changed = [a.name for a, b in zip(before.hosts, after.hosts, strict=True) if a is not b]
    assert changed == ["s3.n1.svc.cluster.local:80"]
    assert after.message.virtual_hosts[[v.name for v in after.message.virtual_hosts].index(changed[0])].routes[0].route.cluster \
        == "outbound|80|v2|s3.n1.svc.cluster.local"


def test_a_table_built_again_after_updates_reuses_what_the_change_does_not_reach(scratch: Path) -> None:
    """Updates in place read only the edited VirtualServices' cache entries, which the cache
    would forget for the others after two versions: a change that needs the table built whole
    (a VirtualService added) after three such updates still rebuilds only the host it adds."""
    translator = Translator()
    text = _many(12)
    edits = [text.replace("{name: s4, namespace: n0}\nspec:\n  hosts: [s4]\n  http: [{route: [{destination: {host: s4, subset: v1",
                          "{name: s4, namespace: n0}\nspec:\n  hosts: [s4]\n  http: [{route: [{destination: {host: s4, subset: v" + v)
             for v in "2121"]
    added = edits[-1] + ("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: extra, namespace: n0}\n"
                         "spec: {hosts: [extra.example.com], http: [{route: [{destination: {host: s5}}]}]}\n")
    hosts = []
    for step in [text, *edits, added]:
        scratch.write_text(step)
        generation = translator(load_file(str(scratch)).resources)
        snapshot = generation.snapshot
        config = generate(snapshot, snapshot.proxy("client.n0"), generation.cache)
        fresh = build_snapshot(load_file(str(scratch)).resources)
        assert _rendered(config) == _rendered(generate(fresh, fresh.proxy("client.n0")))
        hosts.append({host.name: host for host in config.assembled[0].hosts})
    assert snapshot.routing_changes is None
    before, after = hosts[-2], hosts[-1]
    rebuilt = sorted(name for name in after if before.get(name) is not after[name])
    assert rebuilt == ["extra.example.com:80"]


OWN_POD = """\
apiVersion: v1
kind: Service
metadata: {name: blue, namespace: team}
spec: {ports: [{name: http, port: 80, targetPort: 8080}], selector: {app: blue}}
---
apiVersion: v1
kind: Service
metadata: {name: green, namespace: team}
spec: {ports: [{name: http, port: 80}], selector: {app: green}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: blue, namespace: team}
spec:
  workloadSelector: {labels: {app: blue}}
  ingress: [{port: {number: 8080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:8080"}]
  egress: [{hosts: ["./green.team.svc.cluster.local"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: team, labels: {app: blue}, annotations: {ANNOTATIONS}}
spec: {containers: [{name: c, image: c, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.1.0.7, phase: Running}
"""
"""A pod whose labels (the Sidecar selecting it, the service it serves), address and
annotations (its interception mode, which its node does not state) each shape its own config:
the Sidecar's ingress listener binds to the pod's address."""


@pytest.mark.parametrize("edit", [
    pytest.param(lambda text: text.replace("labels: {app: blue}, annotations", "labels: {app: green}, annotations"), id="labels"),
    pytest.param(lambda text: text.replace("10.1.0.7", "10.1.0.8"), id="ip"),
    pytest.param(lambda text: text.replace("annotations: {}", "annotations: {sidecar.istio.io/interceptionMode: TPROXY}"),
                 id="annotations"),
])
def test_a_proxy_is_made_again_when_its_own_pod_changes(scratch: Path, edit: Callable[[str], str]) -> None:
    """serve keeps a proxy across snapshots while its pod's content is unchanged: an edit of the
    pod itself must reach its config, as a cold translation of the edited mesh shows. A second
    pod moving keeps the proxy (the point of keeping it)."""
    before = OWN_POD.replace("{ANNOTATIONS}", "{}")
    other = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: team, labels: {app: green}}\n" \
            "spec: {containers: [{name: c, image: c}]}\nstatus: {podIP: IP, phase: Running}\n"
    translator = Translator()
    scratch.write_text(before + other.replace("IP", "10.1.0.20"))
    first = translator(list(load_file(str(scratch)).resources))
    node = ads_bootstrap(first.snapshot.proxy("client.team"), "127.0.0.1", 0, admin_port=0).node
    node.metadata.fields.pop("INTERCEPTION_MODE")  # as a bootstrap that leaves it to the pod
    held = first.resources_for(node)
    scratch.write_text(before + other.replace("IP", "10.1.0.21"))
    unchanged = translator(list(load_file(str(scratch)).resources))
    assert unchanged.proxy_for(node) is first.proxy_for(node)
    assert unchanged.resources_for(node)[CLUSTER] is held[CLUSTER]

    scratch.write_text(edit(before) + other.replace("IP", "10.1.0.21"))
    resources = list(load_file(str(scratch)).resources)
    served = translator(resources).resources_for(node)
    fresh = build_snapshot(resources)
    cold = generate(fresh, fresh.proxy("client.team")).packed()
    assert _bytes(served) != _bytes(held), "the edit changes nothing"
    assert _bytes(served) == _bytes(cold)


def test_proxies_share_their_own_side_exactly_when_it_comes_out_equal(scratch: Path) -> None:
    """Each proxy's own side is built under a key holding its name and address, and then
    shared with any proxy whose own side serializes to the very same bytes (`same_content`):
    two replicas of one pod share theirs, a pod whose Sidecar binds an ingress listener to its
    address does not, and each is what a cold translation gives it."""
    pod = OWN_POD.replace("{ANNOTATIONS}", "{}")
    green = pod.split("---\n")[-1].replace("name: client,", "name: green,").replace("app: blue", "app: green")
    replica = green.replace("name: green,", "name: replica,").replace("10.1.0.7", "10.1.0.9")
    scratch.write_text("---\n".join([pod, green.replace("10.1.0.7", "10.1.0.8"), replica]))
    snapshot = build_snapshot(list(load_file(str(scratch)).resources))
    cache = GenerationCache()
    names = ["green.team", "replica.team", "client.team"]
    for build in (inbound_listeners, inbound_clusters):
        cached = [build(snapshot, snapshot.proxy(name), cache) for name in names]
        cold = [[m.SerializeToString(deterministic=True) for m in build(snapshot, snapshot.proxy(name))] for name in names]
        assert [[m.SerializeToString(deterministic=True) for m in items] for items in cached] == cold
        shared = {(a, b): cached[a] is cached[b] for a in range(3) for b in range(a + 1, 3)}
        assert shared == {(a, b): cold[a] == cold[b] for a, b in shared}
        assert shared[0, 1] and not shared[0, 2], "the replicas share, the pod with an ingress listener does not"


def _bytes(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, bytes]]:
    """Serialized resources by type URL and name."""
    return {t: {n: p.value for n, p in items.items()} for t, items in resources.items()}


def test_a_workloads_content_key_reads_every_field() -> None:
    """A field added to Workload and left out of its content key would let serve keep a proxy
    whose workload changed in that field alone."""
    workload = build_snapshot(list(load_file(str(KITCHEN_SINK)).resources)).registry.workloads[0]
    assert len(workload.content_key()) == len(dataclasses.fields(workload))


TUNED_SCOPE = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "tuned"},
               "spec": {"egress": [{"hosts": ["./*"]}]}}


def _tuned_pod(name: str, ip: str, metadata: dict[str, str], field: str = "proxyMetadata") -> dict[str, Any]:
    """A pod of the `tuned` namespace whose `proxy.istio.io/config` sets `field` to `metadata`."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "tuned", "labels": {"app": "tuned"},
                         "annotations": {"proxy.istio.io/config": yaml.safe_dump({field: metadata})}},
            "spec": {"containers": [{"name": "c", "image": "c"}]}, "status": {"podIP": ip}}


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
def test_proxies_differing_in_node_metadata_alone_get_their_own_listeners(scratch: Path, check: Callable[..., None]) -> None:
    """Two proxies of one view (same namespace, Sidecar, labels and flavor) whose node metadata
    differs: the outbound listeners they would share (the virtualOutbound catch-all at least)
    read the idle timeout and HTTP/1.0 of each, so their key must hold them, or one gets the
    other's."""

    def pods(first: dict[str, str], second: dict[str, str]) -> Callable[[Objects], None]:
        def edit(objects: Objects) -> None:
            objects[_key(TUNED_SCOPE)] = copy.deepcopy(TUNED_SCOPE)
            for pod in (_tuned_pod("a", "10.250.0.1", first), _tuned_pod("b", "10.250.0.2", second)):
                objects[_key(pod)] = pod
        return edit

    idle = {"ISTIO_META_IDLE_TIMEOUT": "5s", "ISTIO_META_HTTP10": "1"}
    check(scratch, [pods(idle, {}), pods({}, idle), pods(idle, {"ISTIO_META_IDLE_TIMEOUT": "0s"})],
          "node metadata of one proxy of a view")


# No headless service among the imports: proxies of a view importing one are told apart by address.
TUNED_CLIENTS = {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                 "metadata": {"name": "default", "namespace": "tuned"},
                 "spec": {"egress": [{"hosts": ["shop/web.shop.svc.cluster.local", "shop/api.shop.svc.cluster.local", "./*"]}]}}
TUNED_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tuned", "namespace": "tuned"},
                 "spec": {"ports": [{"name": "http", "port": 8000}], "selector": {"app": "tuned"}}}


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
def test_proxies_differing_in_proxy_headers_alone_get_their_own_config(scratch: Path, check: Callable[..., None]) -> None:
    """Two proxies of one view (same namespace, Sidecar, labels and flavor) whose pods'
    `proxy.istio.io/config` set other proxyHeaders: their routes (virtual hosts count attempts
    or not), outbound listeners (server name, request ids, router and metadata exchange) and
    inbound side read them, so every key of what they would share must hold them, or one gets
    the other's."""

    def pods(first: dict[str, Any], second: dict[str, Any]) -> Callable[[Objects], None]:
        def edit(objects: Objects) -> None:
            for extra in (TUNED_CLIENTS, TUNED_SERVICE):
                objects[_key(extra)] = copy.deepcopy(extra)
            for pod in (_tuned_pod("a", "10.250.0.1", first, "proxyHeaders"),
                        _tuned_pod("b", "10.250.0.2", second, "proxyHeaders")):
                objects[_key(pod)] = pod
        return edit

    quiet = {"attemptCount": {"disabled": True}, "server": {"disabled": True}, "requestId": {"disabled": True},
             "envoyDebugHeaders": {"disabled": True}, "metadataExchangeHeaders": {"mode": "IN_MESH"},
             "forwardedClientCert": "SANITIZE", "preserveHttp1HeaderCase": True}
    check(scratch, [pods(quiet, {}), pods({}, quiet), pods(quiet, {"attemptCount": {"disabled": True}}),
                    pods({"server": {"value": "edge"}}, {"attemptCount": {"disabled": True}})],
          "proxyHeaders of one proxy of a view")


@pytest.mark.parametrize("check", [_assert_cached_equals_cold, _assert_served_equals_cold], ids=["generated", "served"])
def test_proxies_differing_in_tracing_alone_get_their_own_listeners(scratch: Path, check: Callable[..., None]) -> None:
    """Two proxies of one view whose pods' `proxy.istio.io/config` sample traces otherwise:
    every connection manager of theirs, outbound and inbound, reads it."""

    def pods(first: dict[str, Any], second: dict[str, Any]) -> Callable[[Objects], None]:
        def edit(objects: Objects) -> None:
            for extra in (TUNED_CLIENTS, TUNED_SERVICE):
                objects[_key(extra)] = copy.deepcopy(extra)
            for pod in (_tuned_pod("a", "10.250.0.1", first, "tracing"), _tuned_pod("b", "10.250.0.2", second, "tracing")):
                objects[_key(pod)] = pod
        return edit

    check(scratch, [pods({"sampling": 5}, {}), pods({}, {"sampling": 5}), pods({"sampling": 5}, {"sampling": 50}),
                    pods({"maxPathTagLength": 64}, {"sampling": 50})], "tracing of one proxy of a view")



@pytest.mark.parametrize("proxy", ["", "egressProxy: {host: egress.example.com, port: {number: 3128}}"],
                         ids=["same catch-all", "one with an egress proxy"])
def test_proxies_share_routes_exactly_when_their_catch_alls_agree(scratch: Path, proxy: str) -> None:
    """Two Sidecars importing the same, one of them sending unknown traffic to an egress proxy:
    routes are shared only when their allow_any routes go to the same place."""
    policy = ", outboundTrafficPolicy: {mode: ALLOW_ANY, " + proxy + "}" if proxy else ""
    scratch.write_text(TEAM.replace("HOST", "blue").replace(
        'egress: [{hosts: ["./blue.team.svc.cluster.local"]}]}\n---', 'egress: [{hosts: ["./blue.team.svc.cluster.local"]}]' + policy + "}\n---", 1))
    generation = Translator()(load_file(str(scratch)).resources)
    snapshot = generation.snapshot
    a, b = (generate(snapshot, snapshot.proxy(f"client-{x}.team"), generation.cache) for x in "ab")
    assert (a.assembled is b.assembled) == (not proxy)
    for config, name in ((a, "client-a.team"), (b, "client-b.team")):
        assert _rendered(config) == _rendered(generate(snapshot, snapshot.proxy(name)))


ONE_VIEW = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80, targetPort: 8080}], selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None, ports: [{name: tcp, port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: db, namespace: shop}
subsets: [{addresses: [{ip: 10.1.0.5}], ports: [{name: tcp, port: 5432}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - match: [{sourceLabels: {version: v2}}]
    route: [{destination: {host: web}}]
    timeout: 3s
  - route: [{destination: {host: web}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web-gold, namespace: shop}
spec:
  host: web
  workloadSelector: {matchLabels: {tier: gold}}
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gold-only, namespace: shop}
spec:
  selector: {matchLabels: {tier: gold}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict-audit, namespace: shop}
spec: {selector: {matchLabels: {audit: "yes"}}, mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: scoped, namespace: shop}
spec:
  workloadSelector: {labels: {role: scoped}}
  egress: [{hosts: ["./db.shop.svc.cluster.local"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: edge}
spec:
  ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "0.0.0.0:8080"}]
  egress: [{hosts: ["./*", "shop/web.shop.svc.cluster.local"]}]
""" + "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: web-{index}, namespace: shop, labels: {{app: web{extra}}}}}
spec: {{containers: [{{name: c, image: c, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: 10.1.0.2{index}, phase: Running}}
""" for index, extra in enumerate(["", "", ", service.istio.io/canonical-revision: v9"]))
"""A mesh in which each thing serve could read of a proxy shapes some proxy's config: the
headless `db` (a proxy at its endpoint's address binds no listener to itself), a VirtualService matching
source labels, a DestinationRule, an AuthorizationPolicy, a PeerAuthentication and a Sidecar
each selecting by a label of its own, and a namespace whose Sidecar ingress binds and forwards
to the proxy's own address; the `web` pods serve a service and differ in name, address and
canonical revision."""

VM = {"pod": "vm-0", "namespace": "shop", "ip": "10.2.0.1", "labels": {"app": "vm"}, "domain": "shop.svc.cluster.local",
      "type": "sidecar", "INTERCEPTION_MODE": "REDIRECT", "CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.30.0",
      "extensions": False}
"""A workload-less proxy served from its node alone (as a VM without a WorkloadEntry is), so
every field of its proxy comes from one node field."""

ONE_FIELD_APART: dict[str, tuple[dict[str, Any], bool]] = {
    "pod name": ({"pod": "vm-1"}, True),
    "istio version": ({"ISTIO_VERSION": "1.29.0"}, True),
    "metadata": ({"metadata": {"APP_CONTAINERS": "app,sidecar"}}, True),
    "ip: headless endpoint": ({"ip": "10.1.0.5"}, False),
    "labels: source labels": ({"labels": {"app": "vm", "version": "v2"}}, False),
    "labels: rule selector": ({"labels": {"app": "vm", "tier": "gold"}}, False),
    "labels: peer authentication": ({"labels": {"app": "vm", "audit": "yes"}}, False),
    "labels: sidecar selector": ({"labels": {"app": "vm", "role": "scoped"}}, False),
    "namespace": ({"namespace": "edge", "domain": "edge.svc.cluster.local"}, False),
    "ip: sidecar ingress": ({"namespace": "edge", "domain": "edge.svc.cluster.local", "ip": "10.2.0.9"}, False),
    "dns domain": ({"domain": "shop.svc.corp.example"}, False),
    "interception": ({"INTERCEPTION_MODE": "TPROXY"}, False),
    "cluster id": ({"CLUSTER_ID": "west"}, False),
    "istio-proxy build": ({"extensions": True}, False),
    "metadata: idle timeout": ({"metadata": {"IDLE_TIMEOUT": "5s"}}, False),
    "metadata: outbound exact balance": ({"metadata": {"OUTBOUND_LISTENER_EXACT_BALANCE": "true"}}, False),
    "proxy config: no proxyHeaders": ({"metadata": {"PROXY_CONFIG": {"concurrency": 2}}}, True),
    "proxy config: request ids off": ({"metadata": {"PROXY_CONFIG": {"proxyHeaders": {"requestId": {"disabled": True}}}}},
                                      False),
    "proxy config: attempts uncounted": (
        {"metadata": {"PROXY_CONFIG": {"proxyHeaders": {"attemptCount": {"disabled": True}}}}}, False),
    "proxy config: header case preserved": (
        {"metadata": {"PROXY_CONFIG": {"proxyHeaders": {"preserveHttp1HeaderCase": True}}}}, False),
    "proxy config: tracing sampled otherwise": ({"metadata": {"PROXY_CONFIG": {"tracing": {"sampling": 5}}}}, False),
    "proxy config: metadata exchange in mesh (outbound alone)": (
        {"extensions": True, "metadata": {"PROXY_CONFIG": {"proxyHeaders": {"metadataExchangeHeaders": {"mode": "IN_MESH"}}}}},
        False),
}
"""Proxies that differ from VM (or, for `ip: sidecar ingress`, from the `namespace` one) in one
field, and whether their config is the same as that one's: where it is not, a proxy given the
other's resources holds the wrong config."""


def _vm_node(changes: dict[str, Any]) -> Any:
    fields = {**VM, **changes}
    node = core_pb2.Node(id=f"{fields['type']}~{fields['ip']}~{fields['pod']}.{fields['namespace']}~{fields['domain']}")
    node.metadata.update({"NAMESPACE": fields["namespace"], "LABELS": fields["labels"], "INSTANCE_IPS": fields["ip"],
                          **{key: fields[key] for key in ("INTERCEPTION_MODE", "CLUSTER_ID", "ISTIO_VERSION")},
                          **fields.get("metadata", {})})
    if fields["extensions"]:
        node.extensions.add(name="istio.metadata_exchange")
    return node


def _one_view_nodes(snapshot: MeshSnapshot) -> dict[str, Any]:
    """Every node of the ONE_VIEW test, by name: the VM and its one-field variants, the web pods."""
    nodes = {"vm": _vm_node({}), **{name: _vm_node(changes) for name, (changes, _) in ONE_FIELD_APART.items()}}
    nodes["ip: sidecar ingress"] = _vm_node({**ONE_FIELD_APART["namespace"][0], "ip": "10.2.0.9"})
    for pod in ("web-0", "web-1", "web-2"):
        nodes[pod] = ads_bootstrap(snapshot.proxy(f"{pod}.shop"), "127.0.0.1", 0, admin_port=0).node
    return nodes


def _cold(resources: list[Any], node: Any) -> dict[str, dict[str, bytes]]:
    fresh = build_snapshot(resources)
    return _bytes(generate(fresh, MeshGeneration(fresh, GenerationCache()).proxy_for(node)).packed())


@settings(FUZZ, max_examples=examples(10))
@given(order=st.randoms(use_true_random=False))
def test_proxies_share_resources_only_when_nothing_they_read_differs(scratch: Path, order: random.Random) -> None:
    """serve hands sidecars made of the same parts one ProxyResources per generation. A part of
    the proxy left out of what decides that would hand one proxy another's config: whichever
    order the proxies ask in, each must receive what a cold translation gives it, although
    every one of them differs from another in one field alone (node metadata, address, labels,
    namespace, DNS domain, Sidecar...), and the mesh makes each of those fields count."""
    scratch.write_text(ONE_VIEW)
    resources = list(load_file(str(scratch)).resources)
    generation = Translator()(resources)
    nodes = _one_view_nodes(generation.snapshot)
    cold = {name: _cold(resources, node) for name, node in nodes.items()}
    for name, (_, same) in ONE_FIELD_APART.items():
        base = "namespace" if name == "ip: sidecar ingress" else "vm"
        assert (cold[name] == cold[base]) == same, f"{name}: the mesh does not make it count"
    assert cold["web-0"] == cold["web-1"] != cold["web-2"]
    names = sorted(nodes)
    order.shuffle(names)
    served = {name: generation.resources_for(nodes[name]) for name in names}
    for name in names:
        assert _bytes(served[name]) == cold[name], f"{name} was given another proxy's config"
    assert served["vm"] is served["pod name"] is served["istio version"] is served["metadata"]
