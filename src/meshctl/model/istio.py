"""Istio's routing objects as the translator reads them: hosts normalised, visibility resolved.

The views keep the typed spec as is (Istio's own field names, so code reads like Istio's
documentation) and add what every proxy would otherwise recompute: FQDN hosts, gateway names,
export sets, and the creation order that decides precedence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from meshctl.config.kinds.mesh import MeshConfig
from meshctl.config.kinds.networking.destination_rule import DestinationRule, Subset, TrafficPolicy
from meshctl.config.kinds.networking.fields import Destination
from meshctl.config.kinds.networking.virtual_service import VirtualService, gateway_reference
from meshctl.config.resource import Resource
from meshctl.hostnames import fqdn, matches, specificity
from meshctl.model.selectors import export_set, selects, visible

__all__ = [
    "DestinationRuleView",
    "MESH_GATEWAY",
    "PARENTS_ANNOTATION",
    "ROUTE_SEMANTICS_ANNOTATION",
    "RuleIndex",
    "VirtualServiceView",
    "config_path",
    "gateway_name",
    "merge_destination_rules",
    "order_key",
    "quote_meta",
]

MESH_GATEWAY = "mesh"
# What Istio marks the VirtualServices it makes of Gateway API routes with: they are translated
# with the Gateway API's semantics (path-separated prefixes, 500 for missing backends).
ROUTE_SEMANTICS_ANNOTATION = "internal.istio.io/route-semantics"
# The Gateway API objects an Istio object was made of (`HTTPRoute/name.namespace`, ...).
PARENTS_ANNOTATION = "internal.istio.io/parents"


def config_path(resource: Resource) -> str:
    """Istio's metadata reference to a config object (`istio.config` in route/cluster metadata)."""
    kind = {"VirtualService": "virtual-service", "DestinationRule": "destination-rule"}.get(
        resource.kind, resource.kind.lower()
    )
    return f"/apis/{resource.group}/v1/namespaces/{resource.namespace}/{kind}/{resource.name}"


def order_key(resource: Resource) -> tuple[str, str, str]:
    """Istio's precedence: oldest first, then name, then namespace."""
    return (resource.created, resource.name, resource.namespace)


@dataclass(frozen=True, slots=True, eq=False)
class VirtualServiceView:
    """A VirtualService with its hosts expanded; `http_destinations` are the hosts its HTTP
    rules route or mirror to (what its routes depend on besides itself)."""

    resource: Resource
    spec: VirtualService
    hosts: tuple[str, ...]
    gateways: frozenset[str]
    export_to: frozenset[str]
    http_destinations: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        return self.resource.namespace

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def gateway_semantics(self) -> bool:
        """Made of a Gateway API route (see ROUTE_SEMANTICS_ANNOTATION)."""
        return self.resource.annotations.get(ROUTE_SEMANTICS_ANNOTATION) == "gateway"

    def host(self, host: str) -> str:
        """A destination host as written in this VS, expanded against its namespace (but for
        Gateway API routes, whose hosts are never short names: Istio leaves them as they are)."""
        return host if self.gateway_semantics else fqdn(host, self.resource.namespace)

    @classmethod
    def of(cls, resource: Resource, mesh: MeshConfig) -> VirtualServiceView:
        spec = resource.view_as(VirtualService)
        hosts = tuple(fqdn(h, resource.namespace) for h in spec.hosts)
        gateways = frozenset(gateway_name(g, resource.namespace) for g in spec.gateways or (MESH_GATEWAY,))
        literal = resource.annotations.get(ROUTE_SEMANTICS_ANNOTATION) == "gateway"
        destinations = {d.host if literal else fqdn(d.host, resource.namespace) for d in _http_destinations(spec)}
        exported = export_set(spec.export_to or mesh.default_virtual_service_export_to, resource.namespace)
        return cls(resource, spec, hosts, gateways, exported,
                   tuple(sorted(destinations)))


def _http_destinations(spec: VirtualService) -> Iterator[Destination]:
    for rule in spec.http:
        for route in rule.route:
            yield route.destination
        if rule.mirror is not None:
            yield rule.mirror
        for mirror in rule.mirrors:
            yield mirror.destination


def gateway_name(name: str, namespace: str) -> str:
    """`mesh` stays; `gw` and `./gw` become `<ns>/gw`; `ns/gw` stays; the old
    `gw.ns[.svc.cluster.local]` form becomes `ns/gw` (Istio's resolveGatewayName)."""
    if name == MESH_GATEWAY:
        return name
    ns, short = gateway_reference(name, namespace)
    return f"{namespace if ns == '.' else ns}/{short}"


@dataclass(frozen=True, slots=True, eq=False)
class DestinationRuleView:
    """One DestinationRule, or several with the same host merged (subsets concatenated)."""

    resources: tuple[Resource, ...]
    host: str
    export_to: frozenset[str]
    traffic_policy: TrafficPolicy | None
    subsets: tuple[Subset, ...]
    selector: Mapping[str, str] | None

    @property
    def resource(self) -> Resource:
        return self.resources[0]

    @property
    def namespace(self) -> str:
        return self.resources[0].namespace

    @classmethod
    def of(cls, resource: Resource, mesh: MeshConfig) -> DestinationRuleView:
        spec = resource.view_as(DestinationRule)
        return cls(
            (resource,),
            fqdn(spec.host, resource.namespace),
            export_set(spec.export_to or mesh.default_destination_rule_export_to, resource.namespace),
            spec.traffic_policy,
            spec.subsets,
            (spec.workload_selector.match_labels if spec.workload_selector else None) or None,
        )

    def merged_with(self, other: DestinationRuleView) -> DestinationRuleView:
        """Istio's merge of same-host rules: subsets appended (first name wins), first policy kept."""
        names = {subset.name for subset in self.subsets}
        extra = tuple(s for s in other.subsets if s.name not in names)
        return DestinationRuleView(
            self.resources + other.resources,
            self.host,
            self.export_to,
            self.traffic_policy or other.traffic_policy,
            self.subsets + extra,
            self.selector,
        )

    def subset(self, name: str) -> Subset | None:
        for subset in self.subsets:
            if subset.name == name:
                return subset
        return None


def merge_destination_rules(rules: Sequence[DestinationRuleView]) -> list[DestinationRuleView]:
    """Merge rules of one namespace with identical host and selector, oldest first."""
    merged: dict[tuple[str, tuple[tuple[str, str], ...] | None], DestinationRuleView] = {}
    for rule in rules:
        selector = tuple(sorted(rule.selector.items())) if rule.selector else None
        key = (rule.host, selector)
        existing = merged.get(key)
        merged[key] = existing.merged_with(rule) if existing else rule
    return list(merged.values())


class RuleIndex:
    """DestinationRules by namespace and host, so each lookup costs a dict access, not a scan."""

    def __init__(self, rules: Sequence[DestinationRuleView]) -> None:
        self.exact: dict[tuple[str, str], list[DestinationRuleView]] = {}
        self.wildcards: dict[str, list[DestinationRuleView]] = {}
        self.has_selectors = any(rule.selector for rule in rules)
        for rule in rules:
            if rule.host.startswith("*"):
                self.wildcards.setdefault(rule.namespace, []).append(rule)
            else:
                self.exact.setdefault((rule.namespace, rule.host), []).append(rule)

    def best(self, namespace: str, host: str, client_namespace: str,
             labels: Mapping[str, str]) -> DestinationRuleView | None:
        """The rule of `namespace` visible to the client whose host matches `host` most
        specifically (exact beats wildcard)."""
        for rule in self.exact.get((namespace, host), ()):
            if _applies(rule, client_namespace, labels):
                return rule
        candidates = [
            rule for rule in self.wildcards.get(namespace, ())
            if matches(rule.host, host) and _applies(rule, client_namespace, labels)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda rule: specificity(rule.host))


def _applies(rule: DestinationRuleView, namespace: str, labels: Mapping[str, str]) -> bool:
    if not visible(rule.export_to, namespace):
        return False
    return not rule.selector or selects(rule.selector, labels)


_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Text as a regex matching it literally, escaped as Go's regexp.QuoteMeta does (Python's
    re.escape escapes more, which would change the bytes Istio sends)."""
    return "".join("\\" + char if char in _REGEX_SPECIAL else char for char in text)
