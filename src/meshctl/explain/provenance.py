"""Which Istio resource, and with input files which file and line, produced a piece of Envoy config.

Envoy config carries its origin the way istiod writes it: `filter_metadata.istio.config` on
routes, virtual hosts, clusters and filter chains names the object
(`/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews`), cluster metadata
`istio.services` names the Service, RBAC policy names carry the AuthorizationPolicy and rule
(`ns[default]-policy[deny-all]-rule[0]`), and Istio's cluster names carry host, port and subset.
`Names` reads only that, which is all a live proxy tells. `Inputs` maps the same names back to
the loaded resources, and from them to `file:line` and the field path inside: the HTTP rule
and match a route came from, the subset a cluster stands for, the pod behind an endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshctl.config.paths import FieldPath, format_path
from meshctl.explain.result import Source

if TYPE_CHECKING:
    from meshctl.config.resource import Resource
    from meshctl.model.snapshot import MeshSnapshot

__all__ = ["Inputs", "Names", "config_path_of", "parse_subset_key"]

_CONFIG_PATH = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<kind>[^/]+)/(?P<name>[^/]+)$")
_POLICY_NAME = re.compile(r"^ns\[(?P<ns>[^\]]*)\]-policy\[(?P<name>[^\]]*)\]-rule\[(?P<rule>\d+)\]$")


def config_path_of(metadata: Any) -> str:
    """`filter_metadata.istio.config` of an Envoy `Metadata`, or ""."""
    istio = metadata.filter_metadata.get("istio") if metadata is not None else None
    if istio is None or "config" not in istio.fields:
        return ""
    return str(istio.fields["config"].string_value)


def services_of(metadata: Any) -> list[tuple[str, str, str]]:
    """`(host, name, namespace)` of each entry of cluster metadata `istio.services`."""
    istio = metadata.filter_metadata.get("istio") if metadata is not None else None
    if istio is None or "services" not in istio.fields:
        return []
    found = []
    for item in istio.fields["services"].list_value.values:
        fields = item.struct_value.fields
        found.append(tuple(fields[key].string_value if key in fields else "" for key in ("host", "name", "namespace")))
    return found  # type: ignore[return-value]


def parse_subset_key(cluster: str) -> tuple[str, int, str, str] | None:
    """Istio's `direction|port|subset|host` cluster name, or None for other names."""
    parts = cluster.split("|")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]


def _kind(kebab: str) -> str:
    return "".join(part.title() for part in kebab.split("-"))


def _reference(path: str) -> tuple[str, str, str] | None:
    """(Kind, namespace, name) of an `istio.config` path."""
    found = _CONFIG_PATH.match(path)
    if found is None:
        return None
    return _kind(found["kind"]), found["ns"], found["name"]


class Names:
    """Provenance from the config alone: resource names, no files."""

    def config(self, path: str) -> Source | None:
        """The object an `istio.config` path names."""
        reference = _reference(path)
        if reference is None:
            return Source(path) if path else None
        kind, namespace, name = reference
        return Source(f"{kind} {namespace}/{name}")

    def route_rule(self, path: str, routes: Sequence[Any], index: int) -> Source | None:
        """The VirtualService behind the `index`th route of a virtual host."""
        return self.config(path)

    def service(self, host: str, namespace: str = "") -> Source | None:
        """The Service (or ServiceEntry) of a host, as cluster metadata or names tell."""
        if namespace and host.endswith(".svc.cluster.local"):
            return Source(f"Service {namespace}/{host.split('.', 1)[0]}")
        return None

    def subset(self, path: str, subset: str) -> Source | None:
        """The DestinationRule subset behind a subset cluster."""
        source = self.config(path)
        if source is None:
            return None
        return Source(source.ref, field=f"subset {subset}")

    def workload(self, address: str) -> Source | None:
        """The pod (or WorkloadEntry) serving at an address."""
        return None

    def tcp_split(self, stat_prefix: str) -> Source | None:
        """The VirtualService of a weighted TCP proxy, which Istio names it after (`NAME.NS`)."""
        return None

    def policy(self, name: str) -> Source | None:
        """The AuthorizationPolicy rule an RBAC policy was translated from."""
        found = _POLICY_NAME.match(name)
        if found is None:
            return None
        return Source(f"AuthorizationPolicy {found['ns']}/{found['name']}", field=f"spec.rules[{found['rule']}]")


class Inputs(Names):
    """Provenance with the input files: every name mapped to the resource's file and line."""

    def __init__(self, resources: Sequence[Resource], snapshot: MeshSnapshot) -> None:
        self._by_key = {(r.kind, r.namespace, r.name): r for r in resources}
        self._snapshot = snapshot

    def _source(self, resource: Resource, path: FieldPath = ()) -> Source:
        return Source(resource.ref(), resource.where(path), format_path(path) if path else "")

    def _resource(self, path: str) -> Resource | None:
        reference = _reference(path)
        return self._by_key.get(reference) if reference is not None else None

    def config(self, path: str) -> Source | None:
        resource = self._resource(path)
        return self._source(resource) if resource is not None else super().config(path)

    def route_rule(self, path: str, routes: Sequence[Any], index: int) -> Source | None:
        resource = self._resource(path)
        if resource is None:
            return super().route_rule(path, routes, index)
        from meshctl.explain.provenance_routes import rule_path

        field_path = rule_path(resource, path, routes, index)
        return self._source(resource, field_path or ())

    def service(self, host: str, namespace: str = "") -> Source | None:
        for service in self._snapshot.registry.services_for_host(host):
            if not namespace or service.namespace == namespace:
                return self._source(service.source)
        return super().service(host, namespace)

    def subset(self, path: str, subset: str) -> Source | None:
        resource = self._resource(path)
        if resource is None:
            return super().subset(path, subset)
        from meshctl.config.kinds.networking.destination_rule import DestinationRule

        if isinstance(resource.view, DestinationRule):
            for index, item in enumerate(resource.view.subsets):
                if item.name == subset:
                    return self._source(resource, ("spec", "subsets", index))
        return self._source(resource)

    def workload(self, address: str) -> Source | None:
        workload = self._snapshot.registry.workload_by_ip(address)
        if workload is None:
            return None
        source = workload.source
        if source.kind == "Pod" or source.kind == "WorkloadEntry":
            return self._source(source)
        return Source(source.ref(), source.where(), f"pod {workload.name}")

    def tcp_split(self, stat_prefix: str) -> Source | None:
        name, _, namespace = stat_prefix.rpartition(".")
        resource = self._by_key.get(("VirtualService", namespace, name))
        return self._source(resource, ("spec", "tcp")) if resource is not None else None

    def policy(self, name: str) -> Source | None:
        found = _POLICY_NAME.match(name)
        if found is None:
            return None
        resource = self._by_key.get(("AuthorizationPolicy", found["ns"], found["name"]))
        if resource is None:
            return super().policy(name)
        return self._source(resource, ("spec", "rules", int(found["rule"])))
