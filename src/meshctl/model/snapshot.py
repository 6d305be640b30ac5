"""The immutable mesh snapshot every generator reads.

A snapshot is built once per accepted configuration and never changes afterwards; per-proxy
lookups (Sidecar scope, DestinationRule choice, PeerAuthentication mode) are memoised inside it,
which keeps generation cheap when many proxies share a namespace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from meshctl.config.resource import Resource
from meshctl.errors import MeshctlError
from meshctl.hostnames import DEFAULT_DOMAIN
from meshctl.model import gatewayapi
from meshctl.model import proxy as proxies
from meshctl.model.istio import (
    DestinationRuleView,
    RuleIndex,
    VirtualServiceView,
    merge_destination_rules,
    order_key,
)
from meshctl.model.changes import RoutingChanges, in_place
from meshctl.model.meshconfig import MeshConfig, mesh_in
from meshctl.model.peerauth import DISABLE, PERMISSIVE, STRICT, PeerAuthenticationIndex, WorkloadMTLS
from meshctl.model.proxy import Proxy
from meshctl.model.registry import Registry, build_registry, endpoint_objects_of
from meshctl.model.scope import SidecarScope, build_scope, select_sidecar
from meshctl.model.service import POD, Workload
from meshctl.targets import Target, parse_target

__all__ = ["DISABLE", "PERMISSIVE", "STRICT", "MeshSnapshot", "UnknownTargetError", "build_snapshot"]


class UnknownTargetError(MeshctlError):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class MeshSnapshot:
    mesh: MeshConfig
    registry: Registry
    virtual_services: tuple[VirtualServiceView, ...]
    destination_rules: tuple[DestinationRuleView, ...]
    sidecars: tuple[Resource, ...]
    gateways: tuple[Resource, ...]
    peer_authentications: tuple[Resource, ...]
    version: str
    authorization_policies: tuple[Resource, ...] = ()
    request_authentications: tuple[Resource, ...] = ()
    secrets: Mapping[tuple[str, str], Resource] = field(default_factory=dict, repr=False)
    reference_grants: tuple[Resource, ...] = ()
    warnings: tuple[str, ...] = ()
    """What the conversion of Gateway API objects could not translate."""
    kind_versions: Mapping[str, str] = field(default_factory=dict)
    mesh_key: int = 0
    rule_index: RuleIndex = field(repr=False, default=None)  # type: ignore[assignment]
    peer_authentication: PeerAuthenticationIndex = field(repr=False, default=None)  # type: ignore[assignment]
    _scopes: dict[tuple[str, int], SidecarScope] = field(default_factory=dict, repr=False)
    _imports: dict[tuple[str, tuple[Any, ...]], Any] = field(default_factory=dict, repr=False)
    _service_imports: dict[tuple[str, tuple[Any, ...]], Any] = field(default_factory=dict, repr=False)
    _rules: dict[tuple[str, str, str, tuple[Any, ...]], DestinationRuleView | None] = field(default_factory=dict, repr=False)
    _destination_inputs: dict[tuple[str, str, str, tuple[Any, ...]], tuple[Any, ...]] = field(default_factory=dict, repr=False)
    _versions_except: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)
    previous_version: str = ""
    """The version of the snapshot this one was built from (empty: none)."""
    routing_changes: RoutingChanges | None = None
    """What changed since `previous_version`, when that was VirtualServices edited in place,
    DestinationRules and endpoints, which leave every route table's layout as it was (see
    RoutingChanges); None otherwise."""
    _previous_imports: dict[tuple[str, tuple[Any, ...]], Any] = field(default_factory=dict, repr=False)

    def scope_for(self, proxy: Proxy) -> SidecarScope:
        """What the proxy sees: its Sidecar's imports; a gateway sees every service exported to
        its namespace, as no Sidecar applies to gateways (Istio's DefaultSidecarScopeForGateway)."""
        sidecar = None if proxy.is_router else select_sidecar(self.sidecars, proxy.namespace, proxy.labels,
                                                               self.mesh.root_namespace)
        key = (proxy.namespace, id(sidecar))
        scope = self._scopes.get(key)
        if scope is None:
            scope = build_scope(proxy.namespace, sidecar, self.registry.services,
                                self.virtual_services, self.mesh.outbound_mode, self._imports, self._service_imports,
                                self._carried_imports)
            self._scopes[key] = scope
        return scope

    def _carried_imports(self, key: tuple[str, tuple[Any, ...]]) -> Any:
        """The previous snapshot's imports for an egress listener with its changed
        VirtualServices put in place (see RoutingChanges), or None to compute them afresh."""
        changes = self.routing_changes
        found = self._previous_imports.get(key)
        if changes is None or found is None:
            return None
        return changes.carried(found, key[0])

    def destination_rule(self, proxy: Proxy, host: str, service_namespace: str) -> DestinationRuleView | None:
        """Istio's choice for (proxy, host): the proxy's namespace, then the service's, then root."""
        selector_key = tuple(sorted(proxy.labels.items())) if self.rule_index.has_selectors else ()
        key = (proxy.namespace, host, service_namespace, selector_key)
        if key in self._rules:
            return self._rules[key]
        found = None
        for namespace in (proxy.namespace, service_namespace, self.mesh.root_namespace):
            found = self.rule_index.best(namespace, host, proxy.namespace, proxy.labels)
            if found is not None:
                break
        self._rules[key] = found
        return found

    def destination_inputs(self, proxy: Proxy, vs: VirtualServiceView) -> tuple[Any, ...]:
        """Revisions of what a VirtualService's routes read from other resources, for this proxy:
        per destination host, the services of that name (aliases, subsets' services) and the
        DestinationRule Istio would apply (subsets, consistent hashing). A cache key made of
        these, rather than of every DestinationRule and Service in the mesh, lets an edit of one
        rebuild only the routes that lead to its host."""
        selector_key = tuple(sorted(proxy.labels.items())) if self.rule_index.has_selectors else ()
        key = (vs.resource.revision, vs.namespace, proxy.namespace, selector_key)
        found = self._destination_inputs.get(key)
        if found is None:
            inputs = []
            for host in vs.http_destinations:
                known = self.registry.services_for_host(host)
                rule = self.destination_rule(proxy, host, known[0].namespace if known else vs.namespace)
                inputs.append((tuple(s.source.revision for s in known), tuple(r.revision for r in rule.resources) if rule else None))
            found = self._destination_inputs[key] = tuple(inputs)
        return found

    def versions_of(self, *kinds: str) -> tuple[str, ...]:
        """Content versions of whole kinds, for cache keys of output that depends on all of them."""
        return tuple(self.kind_versions.get(kind, "") for kind in kinds)

    def versions_except(self, *kinds: str) -> str:
        """Content versions of every kind but these, for cache keys of output that reads none of them
        (found once per snapshot: every proxy's keys ask for the same few). One string
        (`KIND=VERSION;...`, kinds sorted) rather than a tuple of pairs: Python keeps a string's
        hash, and recomputes a tuple's, pair by pair, every time a key holding it is looked up,
        several times per proxy and change."""
        found = self._versions_except.get(kinds)
        if found is None:
            found = ";".join(f"{kind}={version}" for kind, version in sorted(self.kind_versions.items()) if kind not in kinds)
            self._versions_except[kinds] = found
        return found

    def mtls_mode(self, namespace: str, labels: Mapping[str, str] | None = None, port: int | None = None) -> str:
        """The effective PeerAuthentication mode: of the namespace (mesh and namespace levels,
        what auto mTLS infers from) without `labels`; of that workload's `port` with them."""
        if labels is None:
            return self.peer_authentication.namespace_mode(namespace)
        return self.workload_mtls(namespace, labels).for_port(port)

    def workload_mtls(self, namespace: str, labels: Mapping[str, str]) -> WorkloadMTLS:
        """A workload's composed PeerAuthentication: its mode and its port-level modes."""
        return self.peer_authentication.for_workload(namespace, labels)

    def proxy(self, target: Target | str, default_namespace: str = "default", **options: Any) -> Proxy:
        """The sidecar of a pod, or of a Deployment's first replica, as found in the registry.

        A string is parsed as the command line's targets are (`meshctl.targets`), with
        `default_namespace` for a target without `.NS`.
        """
        if isinstance(target, str):
            target = parse_target(target, default_namespace)
        name, namespace = target.name, target.namespace
        if target.is_pod:
            workload = self.registry.workload(target.dotted)
            if workload is None:
                raise UnknownTargetError(f'pod "{name}" not found in namespace "{namespace}"; {self._known_workloads()}')
        else:
            replicas = self.registry.replicas(namespace, name)
            if not replicas:
                raise UnknownTargetError(f'deployment "{name}" not found in namespace "{namespace}" (or it has no '
                                         f"replicas); {self._known_workloads(deployments=True)}")
            workload = replicas[0]
        return self.proxy_of(workload, **options)

    def proxy_of(self, workload: Workload, **options: Any) -> Proxy:
        """The sidecar (or gateway) of a workload, with the node metadata its agent would send
        (`proxies.workload_metadata`: the mesh's and the pod's proxyMetadata) and the
        proxyHeaders its pod's annotation sets over the mesh's (`proxies.workload_proxy_config`)."""
        default = self.mesh.default_config
        options.setdefault("metadata", proxies.workload_metadata(workload, default.view.proxy_metadata))
        proxy = proxies.for_workload(workload, trust_domain=self.mesh.trust_domain, **options)
        sent = proxies.workload_proxy_config(workload, default)
        return replace(proxy, proxy_config=sent) if sent else proxy

    def _known_workloads(self, *, deployments: bool = False) -> str:
        """What the input does define, for a target it does not: its pods (proxy IDs) or its
        Deployments, or that it has none."""
        pods = [w for w in self.registry.workloads if w.kind == POD]
        if deployments:
            names = sorted({f"deploy/{w.owner}.{w.namespace}" for w in pods if w.source.kind == "Deployment"})
            what = "Deployments"
        else:
            names = sorted(w.proxy_id for w in pods)
            what = "pods"
        if not names:
            return f"the input defines no {what}"
        shown = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
        return f"the input's {what}: {shown}"


_LISTED = 12
"""How many workloads a not-found message lists."""


ENDPOINT_KINDS = ("Endpoints", "EndpointSlice")
REGISTRY_KINDS = ("Service", "ServiceEntry", "Pod", "Deployment", "WorkloadEntry", "Namespace", "Node", *ENDPOINT_KINDS)


def build_snapshot(resources: Sequence[Resource], mesh: MeshConfig | None = None,
                   previous: MeshSnapshot | None = None) -> MeshSnapshot:
    """A snapshot of validated resources (order-independent: precedence comes from the objects).

    Given the `previous` snapshot, parts whose inputs did not change are reused rather than
    rebuilt: above all the service registry (and with it every endpoint it has computed), so a
    routing edit in a large mesh does not redo service discovery. Without a `mesh`, the mesh
    config is the cluster's among the resources (serve on Kubernetes), else istiod's defaults.
    """
    mesh = mesh or mesh_in(resources) or MeshConfig()
    converted = gatewayapi.convert(resources, DEFAULT_DOMAIN)
    if converted.resources:
        resources = [*resources, *converted.resources]
    by_kind: dict[str, list[Resource]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, []).append(resource)
    digest = hashlib.blake2b(digest_size=8)
    per_kind: dict[str, Any] = {}
    for resource in sorted(resources, key=lambda r: (r.kind, r.namespace, r.name)):
        digest.update(resource.revision.encode())
        per_kind.setdefault(resource.kind, hashlib.blake2b(digest_size=8)).update(resource.revision.encode())
    kind_versions = {kind: value.hexdigest() for kind, value in per_kind.items()}
    reuse = previous is not None and previous.mesh == mesh

    def unchanged(*kinds: str) -> bool:
        return reuse and all(previous.kind_versions.get(k) == kind_versions.get(k) for k in kinds)  # type: ignore[union-attr]

    if unchanged(*REGISTRY_KINDS):
        registry = previous.registry  # type: ignore[union-attr]
    elif unchanged(*(kind for kind in REGISTRY_KINDS if kind not in ENDPOINT_KINDS)):
        registry = previous.registry.with_endpoint_objects(endpoint_objects_of(resources))  # type: ignore[union-attr]
    else:
        registry = build_registry(resources, mesh)
    virtual_services, routing_changes = _virtual_services(by_kind.get("VirtualService", []), mesh, previous if reuse else None,
                                                          kind_versions)
    if unchanged("DestinationRule"):
        destination_rules, rule_index = previous.destination_rules, previous.rule_index  # type: ignore[union-attr]
    else:
        rules_by_ns: dict[str, list[DestinationRuleView]] = {}
        for resource in sorted(by_kind.get("DestinationRule", []), key=order_key):
            rules_by_ns.setdefault(resource.namespace, []).append(DestinationRuleView.of(resource, mesh))
        destination_rules = tuple(rule for rules in rules_by_ns.values() for rule in merge_destination_rules(rules))
        rule_index = RuleIndex(destination_rules)
    return MeshSnapshot(
        mesh=mesh,
        registry=registry,
        virtual_services=virtual_services,
        destination_rules=destination_rules,
        sidecars=tuple(by_kind.get("Sidecar", [])),
        gateways=tuple(by_kind.get("Gateway", [])),
        peer_authentications=tuple(by_kind.get("PeerAuthentication", [])),
        authorization_policies=tuple(by_kind.get("AuthorizationPolicy", [])),
        request_authentications=tuple(by_kind.get("RequestAuthentication", [])),
        version=digest.hexdigest(),
        secrets={(secret.namespace, secret.name): secret for secret in by_kind.get("Secret", [])},
        reference_grants=tuple(by_kind.get("ReferenceGrant", [])),
        warnings=tuple(converted.warnings),
        kind_versions=kind_versions,
        mesh_key=hash(repr(mesh)),
        rule_index=rule_index,
        peer_authentication=PeerAuthenticationIndex.of(by_kind.get("PeerAuthentication", []), mesh.root_namespace),
        previous_version=previous.version if previous is not None else "",
        routing_changes=routing_changes,
        **_lookups_kept(previous, registry, rule_index, mesh, routing_changes),
    )


def _virtual_services(resources: Sequence[Resource], mesh: MeshConfig, previous: MeshSnapshot | None,
                      kind_versions: Mapping[str, str]) -> tuple[tuple[VirtualServiceView, ...], RoutingChanges | None]:
    """The views of the VirtualServices, in precedence order, the previous snapshot's view
    kept for each very object it was made of; and, when nothing else changed but
    VirtualServices edited in place, DestinationRules and endpoints, those edits (objects read again count, even
    when equal in content: their views tell where they now are)."""
    before = {vs.resource.key: vs for vs in previous.virtual_services} if previous is not None else {}
    views = []
    replaced: dict[tuple[str, str, str], tuple[VirtualServiceView, VirtualServiceView]] = {}
    added = False
    for resource in sorted(resources, key=order_key):
        old = before.get(resource.key)
        added = added or old is None
        if old is not None and old.resource is resource:
            views.append(old)
            continue
        view = VirtualServiceView.of(resource, mesh)
        views.append(view)
        if old is not None:
            replaced[resource.key] = (old, view)
    changes = None
    if previous is not None and not added and len(before) == len(views) and all(in_place(a, b) for a, b in replaced.values()) and all(
            previous.kind_versions.get(kind) == version for kind, version in kind_versions.items()
            if kind not in ("VirtualService", "DestinationRule", *ENDPOINT_KINDS)) and set(previous.kind_versions) == set(kind_versions):
        changes = RoutingChanges(previous.version, replaced,
                                 rules=previous.kind_versions.get("DestinationRule") != kind_versions.get("DestinationRule"))
    return tuple(views), changes


def _lookups_kept(previous: MeshSnapshot | None, registry: Registry, rule_index: RuleIndex,
                  mesh: MeshConfig, routing_changes: RoutingChanges | None) -> dict[str, Any]:
    """The previous snapshot's memoised lookups whose inputs are the very same objects here:
    which DestinationRule applies (rules and mesh), what a VirtualService's routes read
    (services and rules), which services a Sidecar's egress imports (services). Shared rather
    than copied: what either snapshot adds holds for both. A routing edit in a large mesh then
    does not look up every rule again, and an endpoint change (a registry with the very same
    services) does not look at every service again. After VirtualServices edited in place
    (`routing_changes`), the previous imports of every egress listener, to carry over."""
    if previous is None or previous.mesh != mesh:
        return {}
    kept: dict[str, Any] = {}
    same_services = previous.registry.services is registry.services
    if same_services:
        kept["_service_imports"] = previous._service_imports
        if routing_changes is not None:
            kept["_previous_imports"] = previous._imports
    if previous.rule_index is rule_index:
        kept["_rules"] = previous._rules
        if same_services:
            kept["_destination_inputs"] = previous._destination_inputs
    return kept
