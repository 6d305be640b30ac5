"""SPIFFE identities as Istio spells them: `spiffe://<trust domain>/ns/<namespace>/sa/<account>`.

A workload's identity is its Kubernetes service account, scoped by a trust domain. Both ways a
caller proves one (a Kubernetes TokenReview, or a token `meshctl token` minted) end in a
service account user name, `system:serviceaccount:<namespace>:<account>`; both turn it into an
identity here, with the same rules and refusals.
"""

from __future__ import annotations

from meshctl.errors import MeshctlError

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "NotAServiceAccountError",
    "PREFIX",
    "identity_of_user",
    "service_account_of",
    "service_account_user",
    "spiffe_id",
]

PREFIX = "spiffe://"
DEFAULT_TRUST_DOMAIN = "cluster.local"
_SERVICE_ACCOUNT_USER = "system:serviceaccount"


class NotAServiceAccountError(MeshctlError):
    """A user name that is not a Kubernetes service account's."""


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """The identity of a service account. An `@` in the trust domain becomes `.`, as in Istio
    (trust domains are host names; some meshes were configured with an email-like one)."""
    return f"{PREFIX}{trust_domain.replace('@', '.')}/ns/{namespace}/sa/{service_account}"


def service_account_user(namespace: str, service_account: str) -> str:
    """The Kubernetes user name of a service account: `system:serviceaccount:NS:SA`."""
    return f"{_SERVICE_ACCOUNT_USER}:{namespace}:{service_account}"


def service_account_of(user: str) -> tuple[str, str]:
    """(namespace, account) of a service account user name; raises NotAServiceAccountError for
    anything else (Istio refuses a name that is not exactly four `:`-separated parts)."""
    parts = user.split(":")
    if len(parts) != 4 or f"{parts[0]}:{parts[1]}" != _SERVICE_ACCOUNT_USER:
        raise NotAServiceAccountError(f"{user!r} is not a service account (system:serviceaccount:NAMESPACE:NAME)")
    namespace, account = parts[2], parts[3]
    if not namespace or not account:
        raise NotAServiceAccountError(f"{user!r} names no namespace or no service account")
    return namespace, account


def identity_of_user(trust_domain: str, user: str) -> str:
    """The SPIFFE identity of a service account user name."""
    return spiffe_id(trust_domain, *service_account_of(user))
