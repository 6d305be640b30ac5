"""Every object of the kinds meshctl reads, listed from the API server as plain JSON.

`meshctl analyze --kubernetes` analyzes what a cluster holds with the same code that analyzes
files, so objects come back as the documents a file would hold (`apiVersion` and `kind` set,
which list responses leave out). Istio's kinds are asked for at the newest version the cluster
serves; a kind whose CRD is not installed is skipped, as istioctl skips it. Deployments are
not read: the cluster's Pods are the workloads, and reading both would count each twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError
from meshctl.kube.resources import ISTIO, ApiResource, by_kind
from meshctl.kube.rest import ApiError, call_json

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["CLUSTER_KINDS", "list_objects"]

CLUSTER_KINDS: tuple[ApiResource, ...] = (by_kind("Namespace"), by_kind("Service"), by_kind("Pod"), *ISTIO)


def _get(client: KubeClient, path: str) -> dict[str, Any] | None:
    """The JSON at `path`, or None when the server does not serve it (404)."""
    with client.api_errors(f"cannot list {path}"):
        try:
            document = call_json(client.api, "GET", path, timeout=client.timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise MeshctlError(f"cannot list {path}: {exc} (HTTP {exc.status})") from None
    return document if isinstance(document, dict) else None


def list_objects(client: KubeClient, kinds: Sequence[ApiResource] = CLUSTER_KINDS) -> Iterator[dict[str, Any]]:
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
