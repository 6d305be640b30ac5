"""The CA's Kubernetes authenticator: a workload's ServiceAccount token, checked by the API
server with a TokenReview, as istiod's KubeJWTAuthenticator does (security.md §1.3).

The identity comes from the review, never from the CSR or anything else the caller says: the
API server names the token's user, which must be a service account (`system:serviceaccount:NS:
SA`, in the `system:serviceaccounts` group), and that account is the SPIFFE identity the CA
signs for. The token must be valid for the CA's audience (`istio-ca`), so a token minted for
another service (the API server's own audience, say) proves nothing here. A caller claiming to
be in another cluster (`clusterid` metadata) is refused: meshctl knows no remote clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from meshctl.kube.rest import ApiError
from meshctl.kube.tokenreview import review_token
from meshctl.security.authenticate import CA_AUDIENCE, AuthenticationError, Caller, Credentials, bearer_token
from meshctl.security.spiffe import NotAServiceAccountError, identity_of_user

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["KubernetesAuthenticator"]

SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
CLUSTER_ID_METADATA = "clusterid"


class KubernetesAuthenticator:
    """Authenticates Kubernetes ServiceAccount tokens with TokenReviews against `client`'s API
    server (blocking: the CA calls it off the event loop)."""

    name = "kubernetes"

    def __init__(self, client: KubeClient, trust_domain: str, *, audiences: Sequence[str] = (CA_AUDIENCE,),
                 cluster_id: str = "Kubernetes") -> None:
        self.client = client
        self.trust_domain = trust_domain
        self.audiences = tuple(audiences)
        self.cluster_id = cluster_id

    def authenticate(self, credentials: Credentials) -> Caller:
        token = bearer_token(credentials)
        claimed = credentials.values(CLUSTER_ID_METADATA)
        if len(claimed) == 1 and claimed[0] not in ("", self.cluster_id):
            raise AuthenticationError(f"client claims to be in cluster {claimed[0]!r}, this CA serves "
                                      f"{self.cluster_id!r} only")
        try:
            review = review_token(self.client, token, self.audiences)
        except (ApiError, OSError) as exc:
            raise AuthenticationError(f"the TokenReview failed: {exc}") from None
        if review.error:
            raise AuthenticationError(f"the token is refused: {review.error}")
        if not review.authenticated:
            raise AuthenticationError("the token is not authenticated")
        if SERVICE_ACCOUNTS_GROUP not in review.groups:
            raise AuthenticationError(f"{review.username!r} is not in the {SERVICE_ACCOUNTS_GROUP} group")
        try:
            identity = identity_of_user(self.trust_domain, review.username)
        except NotAServiceAccountError as exc:
            raise AuthenticationError(str(exc)) from None
        return Caller((identity,), self.name)
