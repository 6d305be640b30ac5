"""What a change of input can reach in a proxy's config: the knowledge `meshctl diff` needs to
translate only what may have changed, kept beside the generators that do the reading.

A VirtualService's HTTP routes are read only by route configurations (its TCP and TLS routes
become listener filter chains); route configurations are shared by every proxy with the same
view (`view_of`). So a change to HTTP routes alone changes, for all proxies of one view, the
same route configurations and nothing else: one translation per view tells it for all.

A DestinationRule is read by clusters (outbound, and the inbound cluster of a workload serving
its host), endpoints (subsets, locality) and routes (subsets, consistent hashing), never by
listeners, which name clusters and route configurations but not their policies. So a change to
DestinationRules alone is told by those: per view for the outbound clusters, endpoints and
routes, per proxy for its inbound clusters (`generate.proxy.cluster_parts`).

AuthorizationPolicies and RequestAuthentications are read only for the filters they add to
inbound chains (`generate.inbound_policy`): a change to them alone changes the inbound
listeners of the proxies whose filters change, and nothing else.
"""

from __future__ import annotations

from meshctl.config.kinds.networking.virtual_service import VirtualService
from meshctl.config.resource import Resource

__all__ = ["POLICY_KINDS", "policies_only", "routes_only", "rules_only"]

POLICY_KINDS = ("AuthorizationPolicy", "RequestAuthentication")


def routes_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) can change route configurations only."""
    for resource in (old, new):
        if resource is None:
            continue
        if not isinstance(resource.view, VirtualService) or resource.view.tcp or resource.view.tls:
            return False
    return old is not None or new is not None


def rules_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) is a DestinationRule change, which
    reaches clusters, endpoints and route configurations only."""
    return (old is not None or new is not None) and all(
        resource is None or resource.kind == "DestinationRule" for resource in (old, new))


def policies_only(old: Resource | None, new: Resource | None) -> bool:
    """Whether replacing `old` by `new` (either may be missing) is an AuthorizationPolicy or
    RequestAuthentication change, which reaches inbound listeners only."""
    return (old is not None or new is not None) and all(
        resource is None or resource.kind in POLICY_KINDS for resource in (old, new))
