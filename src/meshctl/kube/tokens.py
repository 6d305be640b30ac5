"""ServiceAccount tokens, from the TokenRequest API.

istiod's secure xDS port (15012) answers debug requests only from an authenticated identity;
istioctl presents a short-lived token of `istio-system/default` for audience `istio-ca`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["service_account_token"]


def service_account_token(
    client: KubeClient, namespace: str, name: str, audience: str = "istio-ca", expiration_seconds: int = 600
) -> str:
    """A token for ServiceAccount `namespace/name`, valid for `audience` and `expiration_seconds`."""
    from kubernetes.client import AuthenticationV1TokenRequest, V1TokenRequestSpec

    body = AuthenticationV1TokenRequest(
        spec=V1TokenRequestSpec(audiences=[audience], expiration_seconds=expiration_seconds)
    )
    with client.api_errors(
        f'cannot create a token for service account "{name}" in namespace "{namespace}"',
        not_found=f'serviceaccounts "{name}" not found in namespace "{namespace}"',
    ):
        answer = client.core.create_namespaced_service_account_token(
            name, namespace, body, _request_timeout=client.timeout
        )
    token = answer.status.token if answer.status else None
    if not token:
        raise MeshctlError(f'the API server returned no token for service account "{name}"')
    return token
