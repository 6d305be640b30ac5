"""Finding the control plane: the running istiod pods proxy-status asks when given no address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError
from meshctl.kube.pods import PodRef, running_pods

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["ISTIOD_LABEL", "REVISION_LABEL", "find_istiod_pods"]

ISTIOD_LABEL = "app=istiod"
REVISION_LABEL = "istio.io/rev"


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
