"""Kinds: a typo in an Istio kind is an error, not an object silently skipped (which made serve
withdraw the VirtualService being edited); kinds meshctl does not read are still skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.config.apigroups import ISTIO_KINDS
from meshctl.config.kinds import KINDS
from meshctl.config.loader import load
from meshctl.demo.mesh import routing_yaml

VIRTUAL_SERVICE = routing_yaml()


NETWORKING_KINDS = ("DestinationRule, EnvoyFilter, Gateway, ProxyConfig, ServiceEntry, Sidecar, VirtualService, "
                    "WorkloadEntry, WorkloadGroup")


@pytest.mark.parametrize(
    ("kind", "api_version", "message"),
    [
        ("VirtualSevice", "networking.istio.io/v1",
         "unknown kind 'VirtualSevice' in networking.istio.io; did you mean VirtualService?"),
        ("virtualservice", "networking.istio.io/v1beta1",
         "unknown kind 'virtualservice' in networking.istio.io; did you mean VirtualService?"),
        ("AuthorisationPolicy", "security.istio.io/v1",
         "unknown kind 'AuthorisationPolicy' in security.istio.io; did you mean AuthorizationPolicy?"),
        ("VirtualService", "security.istio.io/v1",
         "VirtualService is a kind of networking.istio.io, not of security.istio.io; "
         "use apiVersion networking.istio.io/v1"),
        ("Route", "networking.istio.io/v1",
         f"unknown kind 'Route' in networking.istio.io; its kinds are {NETWORKING_KINDS}"),
        ("DestinatonRule", "config.istio.io/v1alpha2",
         "unknown kind 'DestinatonRule' in config.istio.io; did you mean DestinationRule (networking.istio.io)?"),
        ("HTTPRoutes", "gateway.networking.k8s.io/v1",
         "unknown kind 'HTTPRoutes' in gateway.networking.k8s.io; did you mean HTTPRoute?"),
        ("ReferenceGrant", "networking.istio.io/v1",
         "ReferenceGrant is a kind of gateway.networking.k8s.io, not of networking.istio.io; "
         "use apiVersion gateway.networking.k8s.io/v1beta1"),
    ],
)
def test_an_unknown_kind_in_an_istio_group_is_an_error(tmp_path: Path, kind: str, api_version: str,
                                                        message: str) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(VIRTUAL_SERVICE.replace("kind: VirtualService", f"kind: {kind}")
                    .replace("networking.istio.io/v1", api_version))
    result = load([str(path)])
    assert [str(problem) for problem in result.problems] == [f"{path}:2: kind: {message}"]
    assert not result.resources


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [("EnvoyFilter", "networking.istio.io/v1alpha3"), ("Telemetry", "telemetry.istio.io/v1"),
     ("WasmPlugin", "extensions.istio.io/v1alpha1"), ("IstioOperator", "install.istio.io/v1alpha1"),
     ("rule", "config.istio.io/v1alpha2"), ("ConfigMap", "v1"), ("Servce", "v1"),
     ("BackendTLSPolicy", "gateway.networking.k8s.io/v1"), ("Certificate", "cert-manager.io/v1")],
)
def test_kinds_meshctl_does_not_read_are_still_skipped(tmp_path: Path, kind: str, api_version: str) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: x}}\nspec: {{}}\n")
    result = load([str(path)])
    assert not result.problems and not result.resources
    assert result.notes == [f"{path}:1: skipped {kind} ({api_version}): not a kind meshctl reads"]


def test_every_istio_kind_meshctl_reads_is_in_the_table_of_istio_kinds() -> None:
    read = {(group, kind) for group, kind in KINDS if group.endswith(".istio.io") or group == "gateway.networking.k8s.io"}
    assert read and all(kind in ISTIO_KINDS[group] for group, kind in read)
