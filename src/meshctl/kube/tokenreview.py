"""TokenReview: asking the API server who a bearer token belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshctl.kube.rest import call_json

if TYPE_CHECKING:
    from meshctl.kube.client import KubeClient

__all__ = ["TokenReview", "review_token"]

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass(frozen=True, slots=True)
class TokenReview:
    """The API server's verdict on a token (`status` of an authentication.k8s.io/v1 TokenReview)."""

    authenticated: bool
    username: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()
    error: str = ""


def review_token(client: KubeClient, token: str, audiences: Sequence[str]) -> TokenReview:
    """Whether `token` is valid for one of `audiences`, and whose it is. Raises ApiError when the
    review itself fails (no permission to create TokenReviews, API server unreachable)."""
    answer = call_json(client.api, "POST", PATH, timeout=client.timeout, body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": list(audiences)},
    })
    status = answer.get("status") or {}
    user = status.get("user") or {}
    return TokenReview(
        authenticated=bool(status.get("authenticated")),
        username=str(user.get("username") or ""),
        groups=tuple(user.get("groups") or ()),
        extra={key: tuple(values or ()) for key, values in (user.get("extra") or {}).items()},
        audiences=tuple(status.get("audiences") or ()),
        error=str(status.get("error") or ""),
    )
