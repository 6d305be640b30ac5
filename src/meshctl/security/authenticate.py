"""Who is asking: the credentials a caller of the CA presents, and the authenticators that prove
an identity from them.

istiod's CA never believes a CSR about whom it is for: the identity comes from the caller's
credential, proved by the first authenticator of a chain that accepts it (Istio tries the client
certificate, then OIDC, then a Kubernetes TokenReview). meshctl's authenticators meet the small
`Authenticator` protocol below: one verifies the tokens `meshctl token` mints (tokens.py), the
Kubernetes one asks the API server (TokenReview). An authenticator may block (a TokenReview is
an HTTP call): the CA calls it off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from meshctl.errors import MeshctlError

__all__ = [
    "AUTHORIZATION",
    "AuthenticationError",
    "Authenticator",
    "AuthenticatorChain",
    "BEARER",
    "CA_AUDIENCE",
    "Caller",
    "Credentials",
    "bearer_token",
]

AUTHORIZATION = "authorization"
BEARER = "Bearer "
# The audience istio-agent's token is requested for, and that istiod's TokenReview asks for.
CA_AUDIENCE = "istio-ca"


class AuthenticationError(MeshctlError):
    """The credentials prove no identity. The message says why; the CA logs it and tells the
    caller only that authentication failed, as istiod does."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a caller presented: its gRPC metadata (keys lower-case, every value of each key, in
    order) and its peer address (for logs)."""

    metadata: Mapping[str, tuple[str, ...]]
    peer: str = ""

    def values(self, key: str) -> tuple[str, ...]:
        return self.metadata.get(key.lower(), ())


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the SPIFFE identities proved (at least one), and the name of the
    authenticator that proved them."""

    identities: tuple[str, ...]
    authenticator: str


class Authenticator(Protocol):
    """Proves who a caller is, or raises AuthenticationError saying why not."""

    @property
    def name(self) -> str:
        """Short name for logs and metrics (`meshctl-token`, `kubernetes`)."""
        ...

    def authenticate(self, credentials: Credentials) -> Caller:
        """The caller these credentials prove; never a Caller without identities."""
        ...


def bearer_token(credentials: Credentials) -> str:
    """The token of the first `authorization: Bearer <token>` value, as istiod reads it (the
    prefix is case-sensitive, one space). Raises AuthenticationError naming what is missing."""
    values = credentials.values(AUTHORIZATION)
    if not values:
        raise AuthenticationError("no authorization metadata")
    for value in values:
        if value.startswith(BEARER):
            token = value[len(BEARER):].strip()
            if token:
                return token
    raise AuthenticationError(f"no bearer token in the authorization metadata (expected {BEARER!r} and a token)")


class AuthenticatorChain:
    """Authenticators tried in order; the first that proves an identity wins. When all fail, the
    error joins each one's reason with `; `, as istiod's log does."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        if not authenticators:
            raise ValueError("an authenticator chain needs at least one authenticator")
        self.authenticators = tuple(authenticators)

    @property
    def name(self) -> str:
        return ",".join(a.name for a in self.authenticators)

    def authenticate(self, credentials: Credentials) -> Caller:
        reasons = []
        for authenticator in self.authenticators:
            try:
                caller = authenticator.authenticate(credentials)
            except AuthenticationError as exc:
                reasons.append(f"{authenticator.name}: {exc}")
                continue
            if caller.identities:
                return caller
            reasons.append(f"{authenticator.name}: no identity")
        raise AuthenticationError("; ".join(reasons))
