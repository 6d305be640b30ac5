"""Every object of the kinds meshctl reads, listed from the API server as plain JSON.

`meshctl analyze --kubernetes` analyzes what a cluster holds with the same code that analyzes
files, so objects come back as the documents a file would hold (`apiVersion` and `kind` set,
which list responses leave out). Istio's kinds are asked for at the newest version the cluster
serves; a kind whose CRD is not installed is skipped, as istioctl skips it. Deployments are
not read: the cluster's Pods are the workloads, and reading both would count each twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["CLUSTER_KINDS", "ListedKind", "list_objects"]


@dataclass(frozen=True, slots=True)
class ListedKind:
    kind: str
    group: str
    plural: str
    versions: tuple[str, ...] = ("v1",)

    def path(self, version: str) -> str:
        prefix = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        return f"{prefix}/{self.plural}"

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


_NETWORKING = ("v1", "v1beta1", "v1alpha3")
_SECURITY = ("v1", "v1beta1")

CLUSTER_KINDS: tuple[ListedKind, ...] = (
    ListedKind("Namespace", "", "namespaces"),
    ListedKind("Service", "", "services"),
    ListedKind("Pod", "", "pods"),
    ListedKind("VirtualService", "networking.istio.io", "virtualservices", _NETWORKING),
    ListedKind("DestinationRule", "networking.istio.io", "destinationrules", _NETWORKING),
    ListedKind("Gateway", "networking.istio.io", "gateways", _NETWORKING),
    ListedKind("ServiceEntry", "networking.istio.io", "serviceentries", _NETWORKING),
    ListedKind("Sidecar", "networking.istio.io", "sidecars", _NETWORKING),
    ListedKind("WorkloadEntry", "networking.istio.io", "workloadentries", _NETWORKING),
    ListedKind("PeerAuthentication", "security.istio.io", "peerauthentications", _SECURITY),
    ListedKind("AuthorizationPolicy", "security.istio.io", "authorizationpolicies", _SECURITY),
    ListedKind("RequestAuthentication", "security.istio.io", "requestauthentications", _SECURITY),
)


def _get(client: KubeClient, path: str) -> dict[str, Any] | None:
    """The JSON at `path`, or None when the server does not serve it (404)."""
    from kubernetes.client.exceptions import ApiException

    api = client.api
    with client.api_errors(f"cannot list {path}"):
        request = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=client.timeout)
        body: bytes = response.read()  # type: ignore[no-untyped-call]
        if response.status == 404:
            return None
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response, body=body.decode(errors="replace"))
    document = json.loads(body)
    return document if isinstance(document, dict) else None


def list_objects(client: KubeClient, kinds: Sequence[ListedKind] = CLUSTER_KINDS) -> Iterator[dict[str, Any]]:
    """Every object of `kinds` in every namespace, as a document with its kind."""
    for listed in kinds:
        for version in listed.versions:
            listing = _get(client, listed.path(version))
            if listing is None:
                continue
            for item in listing.get("items") or []:
                if isinstance(item, dict):
                    yield {"apiVersion": listed.api_version(version), "kind": listed.kind, **item}
            break
