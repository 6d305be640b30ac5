"""Finding the control plane: the running istiod pods proxy-status asks when given no address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError
from meshctl.kube.pods import PodRef, running_pods
from meshctl.model.injection import REVISION_LABEL

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["INJECTOR_CONFIGMAP", "ISTIOD_LABEL", "ROOT_CERT_CONFIGMAP", "find_istiod_pods", "injector_configmap",
           "root_certificate"]

ISTIOD_LABEL = "app=istiod"
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
ROOT_CERT_KEY = "root-cert.pem"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"
"""Where istiod's injector reads its template and Helm values (keys `config` and `values`)."""


def find_istiod_pods(
    client: KubeClient, namespace: str = "istio-system", revision: str | None = None, label: str | None = None
) -> list[PodRef]:
    """The running istiod pods of a namespace (`-i/--istioNamespace`), sorted by name.

    Selected by `app=istiod` (or `label`, from `--xds-label`), narrowed to one control plane
    revision by `istio.io/rev` when `revision` is set; none is an error that says what to check.
    """
    selector = label or ISTIOD_LABEL
    if revision:
        selector = f"{selector},{REVISION_LABEL}={revision}"
    pods = running_pods(client, namespace, selector)
    if not pods:
        raise MeshctlError(
            f'no running istiod pods match "{selector}" in namespace "{namespace}"; '
            "check -i/--istioNamespace and -r/--revision, or pass --xds-address"
        )
    return pods


def root_certificate(client: KubeClient, namespace: str) -> tuple[bytes, str]:
    """The mesh's root certificate (PEM), which istiod publishes in the `istio-ca-root-cert`
    ConfigMap of every namespace, and where it was read, for messages."""
    where = f"ConfigMap {namespace}/{ROOT_CERT_CONFIGMAP}"
    with client.api_errors(f"cannot read {where}", not_found=f"{where} not found"):
        configmap = client.core.read_namespaced_config_map(ROOT_CERT_CONFIGMAP, namespace, _request_timeout=client.timeout)
    pem = (configmap.data or {}).get(ROOT_CERT_KEY)
    if not pem:
        raise MeshctlError(f"{where} has no {ROOT_CERT_KEY}")
    return pem.encode(), where


def injector_configmap(client: KubeClient, namespace: str, revision: str) -> str | None:
    """`NAMESPACE/NAME` of the ConfigMap istiod's injector of `revision` would read its
    templates and values from (`istio-sidecar-injector[-REVISION]`), if the cluster has one."""
    name = f"{INJECTOR_CONFIGMAP}-{revision}" if revision and revision != "default" else INJECTOR_CONFIGMAP
    from meshctl.kube.rest import ApiError, call_json

    try:
        call_json(client.api, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}", timeout=client.timeout)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return f"{namespace}/{name}"
