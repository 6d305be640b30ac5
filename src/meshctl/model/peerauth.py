"""PeerAuthentication composed for a workload, as istiod composes it (security.md §3.1).

Which policies count, and how they merge, decide whether a port accepts plaintext at all, so
the rules are Istio's to the letter: per namespace only the oldest selector-less policy counts
(later ones are dropped, as istiod drops them when it indexes); the mesh level is the root
namespace's, the namespace level the workload's own namespace's, the workload level the oldest
policy of the workload's namespace whose selector picks its labels (a root-namespace policy
with a selector is ignored). Starting from PERMISSIVE, each level that sets a mode other than
UNSET overrides the one above it; `portLevelMtls` comes from the workload level only, keyed by
the workload's (target) port, an UNSET entry taking the workload's mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from meshctl.config.kinds.security.peer_authentication import MutualTLS, PeerAuthentication
from meshctl.config.resource import Resource
from meshctl.model.istio import order_key
from meshctl.model.selectors import selects

__all__ = ["DISABLE", "PERMISSIVE", "STRICT", "PeerAuthenticationIndex", "WorkloadMTLS"]

PERMISSIVE = "PERMISSIVE"
STRICT = "STRICT"
DISABLE = "DISABLE"


@dataclass(frozen=True, slots=True)
class WorkloadMTLS:
    """The effective mTLS of one workload: its mode, and the modes of the ports that
    `portLevelMtls` sets (Istio's MergedPeerAuthentication), ports ascending."""

    mode: str = PERMISSIVE
    port_modes: tuple[tuple[int, str], ...] = ()

    def for_port(self, port: int | None) -> str:
        """The mode on `port` (a target port); the workload's mode for None or an unlisted port."""
        for number, mode in self.port_modes:
            if number == port:
                return mode
        return self.mode

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports `portLevelMtls` names, ascending."""
        return tuple(number for number, _ in self.port_modes)


def _sets_mode(mtls: MutualTLS | None) -> bool:
    return mtls is not None and mtls.mode not in ("", "UNSET")


def _selector(policy: PeerAuthentication) -> Mapping[str, str]:
    return policy.selector.match_labels if policy.selector is not None else {}


@dataclass(slots=True)
class PeerAuthenticationIndex:
    """Every PeerAuthentication of a snapshot, indexed by namespace; compositions are memoised
    per (namespace, labels), since every proxy of a Deployment asks the same question."""

    root_namespace: str
    namespace_wide: dict[str, PeerAuthentication] = field(default_factory=dict)
    by_selector: dict[str, list[PeerAuthentication]] = field(default_factory=dict)
    _workloads: dict[tuple[str, tuple[tuple[str, str], ...]], WorkloadMTLS] = field(default_factory=dict)

    @classmethod
    def of(cls, resources: Iterable[Resource], root_namespace: str) -> PeerAuthenticationIndex:
        index = cls(root_namespace)
        for resource in sorted(resources, key=order_key):
            policy = resource.view_as(PeerAuthentication)
            if _selector(policy):
                if resource.namespace != root_namespace:
                    index.by_selector.setdefault(resource.namespace, []).append(policy)
            else:
                index.namespace_wide.setdefault(resource.namespace, policy)
        return index

    def namespace_mode(self, namespace: str) -> str:
        """The mesh- and namespace-level mode, all that auto mTLS infers a service's mode from."""
        mode = PERMISSIVE
        levels = [self.root_namespace] if namespace == self.root_namespace else [self.root_namespace, namespace]
        for level in levels:
            policy = self.namespace_wide.get(level)
            if policy is not None and _sets_mode(policy.mtls):
                assert policy.mtls is not None
                mode = policy.mtls.mode
        return mode

    def for_workload(self, namespace: str, labels: Mapping[str, str]) -> WorkloadMTLS:
        """The composition for a workload of `namespace` carrying `labels`."""
        # Without a workload-level policy in the namespace, labels decide nothing: one entry.
        key = (namespace, tuple(sorted(labels.items())) if namespace in self.by_selector else ())
        found = self._workloads.get(key)
        if found is None:
            found = self._workloads[key] = self._compose(namespace, labels)
        return found

    def _compose(self, namespace: str, labels: Mapping[str, str]) -> WorkloadMTLS:
        mode = self.namespace_mode(namespace)
        workload = next((p for p in self.by_selector.get(namespace, ()) if selects(_selector(p), labels)), None)
        if workload is None:
            return WorkloadMTLS(mode)
        if _sets_mode(workload.mtls):
            assert workload.mtls is not None
            mode = workload.mtls.mode
        ports = tuple(sorted(
            (number, entry.mode if _sets_mode(entry) else mode) for number, entry in workload.port_level_mtls.items()
        ))
        return WorkloadMTLS(mode, ports)
