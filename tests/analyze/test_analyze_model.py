"""Analysis reads the mesh model translation reads: one Workload per WorkloadEntry, one registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshctl.analyze.context import AnalysisContext
from meshctl.config.loader import load_file
from meshctl.model.snapshot import build_snapshot

AnalyzeYaml = Callable[..., Any]  # the analyze_yaml fixture: documents in, an Analysis out

SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: vm
spec:
  hosts:
  - vm.example.com
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - name: http
    number: 80
    protocol: HTTP
  workloadSelector:
    labels:
      app: vm
"""

# The labels that select this entry are in its metadata; its spec says version v0, which its
# metadata overrides (Istio's ConvertWorkloadEntry merges metadata labels over the spec's).
WORKLOAD_ENTRY = """
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
  labels:
    app: vm
    version: v1
spec:
  address: 10.3.0.1
  labels:
    version: v0
    zone: a
"""

DESTINATION_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: vm
spec:
  host: vm.example.com
  subsets:
  - name: v1
    labels:
      version: v1
"""

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: vm-gateway
spec:
  selector:
    app: vm
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
"""


def test_a_workload_entry_has_the_same_labels_for_analysis_and_translation(
        analyze_yaml: AnalyzeYaml) -> None:
    """Analysis once read a WorkloadEntry's spec labels only, translation its metadata labels too:
    a subset and a gateway selector that translation honoured were reported as selecting nothing."""
    run = analyze_yaml(SERVICE_ENTRY, WORKLOAD_ENTRY, DESTINATION_RULE, GATEWAY)
    assert run.lines() == []
    snapshot = build_snapshot(load_file(run.file).resources)
    (service,) = snapshot.registry.services_for_host("vm.example.com")
    (endpoint,) = snapshot.registry.endpoints(service, service.ports[0])
    assert (endpoint.address, dict(endpoint.labels)) == ("10.3.0.1", {"app": "vm", "version": "v1", "zone": "a"})


def test_a_subset_the_workload_entry_does_not_carry_is_reported(analyze_yaml: AnalyzeYaml) -> None:
    run = analyze_yaml(SERVICE_ENTRY, WORKLOAD_ENTRY, DESTINATION_RULE.replace("version: v1", "version: v0"))
    assert run.codes() == ["IST0173"]


def _deployment(name: str, replicas: int) -> str:
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: {replicas}
      selector:
        matchLabels:
          app: reviews
      template:
        metadata:
          labels:
            app: reviews
        spec:
          containers:
          - name: app
    """


def _sidecar(name: str) -> str:
    return f"""
    apiVersion: networking.istio.io/v1
    kind: Sidecar
    metadata:
      name: {name}
    spec:
      workloadSelector:
        labels:
          app: reviews
      egress:
      - hosts:
        - "./*"
    """


def test_a_deployments_replicas_are_checked_once_under_its_name(analyze_yaml: AnalyzeYaml) -> None:
    run = analyze_yaml(_deployment("reviews", 3), _sidecar("first"), _sidecar("second"))
    message = ('The Sidecars [first second] in namespace "default" select the same workload pod "reviews", '
               "which can lead to undefined behavior.")
    assert run.lines() == [
        f"Error [IST0110] (Sidecar default/first {run.where('workloadSelector:', 1)}) {message}",
        f"Error [IST0110] (Sidecar default/second {run.where('workloadSelector:', 2)}) {message}",
    ]


def test_analysis_and_translation_share_one_registry(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(SERVICE_ENTRY + "---\n" + WORKLOAD_ENTRY)
    resources = load_file(str(path)).resources
    ctx = AnalysisContext(resources)
    (workload,) = ctx.registry.workloads
    assert (workload.name, workload.kind, workload.source.kind) == ("vm-1", "WorkloadEntry", "WorkloadEntry")
    found = ctx.lookup("vm.example.com", "other")
    assert found is not None and found.hostname == "vm.example.com"
