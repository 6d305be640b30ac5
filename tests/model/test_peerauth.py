"""PeerAuthentication composition, table by table: the policies in, a workload's modes out
(security.md §3.1, Istio's ComposePeerAuthentication and its index-time de-duplication)."""

from __future__ import annotations

import pytest

from meshctl.model.peerauth import PeerAuthenticationIndex, WorkloadMTLS
from model.conftest import Resources

WORKLOAD = {"app": "reviews", "version": "v1"}


def policy(name: str, namespace: str, mode: str = "", *, selector: str = "", ports: str = "",
           created: str = "2024-01-01T00:00:00Z") -> str:
    lines = [f"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: {name}\n"
             f"  namespace: {namespace}\n  creationTimestamp: '{created}'\nspec:"]
    if selector:
        lines.append(f"  selector: {{matchLabels: {{{selector}}}}}")
    if mode:
        lines.append(f"  mtls: {{mode: {mode}}}")
    if ports:
        lines.append(f"  portLevelMtls: {{{ports}}}")
    if len(lines) == 1:
        lines.append("  {}")
    return "\n".join(lines) + "\n"


MESH_STRICT = policy("mesh", "istio-system", "STRICT")
NS_DISABLE = policy("ns", "default", "DISABLE")


@pytest.mark.parametrize(("documents", "expected"), [
    pytest.param([], WorkloadMTLS("PERMISSIVE"), id="nothing: PERMISSIVE"),
    pytest.param([MESH_STRICT], WorkloadMTLS("STRICT"), id="mesh-wide in the root namespace"),
    pytest.param([MESH_STRICT, NS_DISABLE], WorkloadMTLS("DISABLE"), id="namespace overrides mesh"),
    pytest.param([MESH_STRICT, policy("ns", "default", "UNSET")], WorkloadMTLS("STRICT"),
                 id="UNSET namespace inherits the mesh"),
    pytest.param([MESH_STRICT, policy("ns", "default")], WorkloadMTLS("STRICT"), id="no mtls at all inherits too"),
    pytest.param([NS_DISABLE, policy("w", "default", "STRICT", selector="app: reviews")], WorkloadMTLS("STRICT"),
                 id="workload overrides namespace"),
    pytest.param([NS_DISABLE, policy("w", "default", "STRICT", selector="app: ratings")], WorkloadMTLS("DISABLE"),
                 id="a selector for other workloads does not apply"),
    pytest.param([policy("w", "istio-system", "STRICT", selector="app: reviews")], WorkloadMTLS("PERMISSIVE"),
                 id="a root-namespace policy with a selector is ignored"),
    pytest.param([policy("w", "other", "STRICT")], WorkloadMTLS("PERMISSIVE"), id="another namespace's policy"),
    pytest.param([policy("new", "default", "STRICT", created="2024-02-01T00:00:00Z"),
                  policy("old", "default", "DISABLE", created="2023-01-01T00:00:00Z")], WorkloadMTLS("DISABLE"),
                 id="oldest namespace-wide policy wins, later ones dropped"),
    pytest.param([policy("b", "default", "STRICT", selector="app: reviews"),
                  policy("a", "default", "DISABLE", selector="version: v1")], WorkloadMTLS("DISABLE"),
                 id="same age: first by name"),
    pytest.param([MESH_STRICT, policy("w", "default", "UNSET", selector="app: reviews",
                                      ports="9080: {mode: DISABLE}, 8000: {mode: UNSET}, 7000: {mode: PERMISSIVE}")],
                 WorkloadMTLS("STRICT", ((7000, "PERMISSIVE"), (8000, "STRICT"), (9080, "DISABLE"))),
                 id="port level: UNSET ports take the workload's mode, ports ascending"),
])
def test_workload_composition(resources: Resources, documents: list[str], expected: WorkloadMTLS) -> None:
    index = PeerAuthenticationIndex.of(resources(*documents) if documents else [], "istio-system")
    assert index.for_workload("default", WORKLOAD) == expected


def test_port_lookup_falls_back_to_the_workload_mode() -> None:
    mtls = WorkloadMTLS("STRICT", ((9080, "DISABLE"),))
    assert (mtls.for_port(9080), mtls.for_port(9090), mtls.for_port(None), mtls.ports) == (
        "DISABLE", "STRICT", "STRICT", (9080,))


@pytest.mark.parametrize(("namespace", "expected"), [("default", "DISABLE"), ("istio-system", "STRICT"),
                                                     ("other", "STRICT")])
def test_namespace_mode_ignores_workload_policies(resources: Resources, namespace: str, expected: str) -> None:
    """Auto mTLS infers a service's mode from the mesh and namespace levels only."""
    documents = [MESH_STRICT, NS_DISABLE, policy("w", "other", "DISABLE", selector="app: reviews")]
    index = PeerAuthenticationIndex.of(resources(*documents), "istio-system")
    assert index.namespace_mode(namespace) == expected


def test_selector_policies_in_the_root_namespace_never_apply(resources: Resources) -> None:
    """Not even to the root namespace's own workloads: istiod takes a policy with a selector as
    workload-level only outside the root namespace."""
    index = PeerAuthenticationIndex.of(resources(policy("w", "istio-system", "STRICT", selector="app: reviews")),
                                       "istio-system")
    assert index.for_workload("istio-system", WORKLOAD) == WorkloadMTLS("PERMISSIVE")
