"""ServiceAccount tokens as the API server issues (TokenRequest) and checks them (TokenReview).

A token issued here is an opaque random string remembered with the ServiceAccount, audiences,
expiry and (optionally) pod it was bound to. A TokenReview answers the way kube-apiserver's
authenticator does: unknown or expired tokens are not authenticated; a token is valid only for
an audience it was issued for (`spec.audiences` empty means the API server's own); an
authenticated token names `system:serviceaccount:NS:SA`, the groups
`system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`, and the
pod it is bound to in `extra`.
"""

from __future__ import annotations

import datetime
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    namespace: str
    service_account: str
    audiences: tuple[str, ...]
    expires: datetime.datetime
    pod: tuple[str, str] | None = None  # (name, uid)


class TokenAuthority:
    """The tokens this API server has issued."""

    def __init__(self) -> None:
        self.issued: dict[str, IssuedToken] = {}

    def issue(self, namespace: str, service_account: str, audiences: Sequence[str] = (API_AUDIENCE,),
              seconds: int = 3600, pod: tuple[str, str] | None = None) -> str:
        token = f"emulated.{secrets.token_urlsafe(24)}"
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        self.issued[token] = IssuedToken(namespace, service_account, tuple(audiences) or (API_AUDIENCE,), expires, pod)
        return token

    def token_request(self, namespace: str, service_account: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The answer to `POST .../serviceaccounts/NAME/token`."""
        spec = dict(body.get("spec") or {})
        seconds = int(spec.get("expirationSeconds") or 3600)
        bound = spec.get("boundObjectRef") or {}
        pod = (bound["name"], bound.get("uid", "")) if bound.get("kind") == "Pod" and bound.get("name") else None
        token = self.issue(namespace, service_account, spec.get("audiences") or (API_AUDIENCE,), seconds, pod)
        expires = self.issued[token].expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        spec.setdefault("audiences", list(self.issued[token].audiences))
        spec["expirationSeconds"] = seconds
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": service_account, "namespace": namespace},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires},
        }

    def review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The answer to `POST /apis/authentication.k8s.io/v1/tokenreviews`."""
        spec = dict(body.get("spec") or {})
        wanted = tuple(spec.get("audiences") or (API_AUDIENCE,))
        answer: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
        }
        issued = self.issued.get(str(spec.get("token") or ""))
        if issued is None or issued.expires < datetime.datetime.now(datetime.UTC):
            answer["status"] = {"authenticated": False, "error": "[invalid bearer token, token lookup failed]",
                                "user": {}}
            return answer
        shared = [audience for audience in wanted if audience in issued.audiences]
        if not shared:
            answer["status"] = {"authenticated": False, "user": {},
                                "error": "[invalid bearer token, token audiences "
                                         f"{list(issued.audiences)} is invalid for the target audiences {list(wanted)}]"}
            return answer
        extra: dict[str, list[str]] = {}
        if issued.pod is not None:
            extra["authentication.kubernetes.io/pod-name"] = [issued.pod[0]]
            extra["authentication.kubernetes.io/pod-uid"] = [issued.pod[1]]
        answer["status"] = {
            "authenticated": True,
            "audiences": shared,
            "user": {
                "username": f"system:serviceaccount:{issued.namespace}:{issued.service_account}",
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issued.namespace}/{issued.service_account}")),
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{issued.namespace}",
                           "system:authenticated"],
                "extra": extra,
            },
        }
        return answer
