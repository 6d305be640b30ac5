"""Workload tokens without Kubernetes: short-lived JWTs `meshctl token` mints and serve verifies.

In a cluster the agent presents the pod's projected service account token and istiod asks the
API server about it (TokenReview). Without one, serve is its own token issuer: a token is an
ES256 JWT signed with the CA directory's `token-key.pem`, shaped like a projected token (`sub`
`system:serviceaccount:NS:SA`, audience `istio-ca`, the pod under `kubernetes.io`), so the same
service-account rules turn it into a SPIFFE identity. Minting needs that key, as an
administrator's credential would; verifying needs only its public half.

Only what is needed is implemented: compact JWS, one algorithm (ES256), a `kid` naming the key,
and the registered claims `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`. Anything else is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from meshctl.security.authenticate import CA_AUDIENCE, AuthenticationError, Caller, Credentials, bearer_token
from meshctl.security.spiffe import NotAServiceAccountError, identity_of_user, service_account_user

__all__ = ["ALGORITHM", "ISSUER", "LEEWAY", "MAX_TOKEN", "TokenAuthenticator", "TokenSigner", "key_id"]

ISSUER = "meshctl"
ALGORITHM = "ES256"
MAX_TOKEN = 8192
# How far the minting host's clock may run ahead of serve's before `nbf` refuses a token.
LEEWAY = 60
_P256_BYTES = 32


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A short, stable name for a token key: base64url of the start of its SPKI's SHA-256."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(spki).digest()[:12])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Mints tokens with the CA directory's token key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, issuer: str = ISSUER) -> None:
        self.key = key
        self.issuer = issuer
        self.kid = key_id(key.public_key())

    def mint(self, namespace: str, service_account: str, *, pod: str = "", ttl: int = 3600,
             audience: str = CA_AUDIENCE, now: float | None = None) -> str:
        """A token for `namespace/service_account` (and `pod`), valid for `ttl` seconds."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "aud": [audience], "exp": issued + ttl, "iat": issued, "iss": self.issuer, "nbf": issued,
            "sub": service_account_user(namespace, service_account),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account},
                              **({"pod": {"name": pod}} if pod else {})},
        }
        return self.sign(claims)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact ES256 JWS of `claims`."""
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": "JWT"}
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(_P256_BYTES, 'big') + s.to_bytes(_P256_BYTES, 'big'))}"


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


class TokenAuthenticator:
    """The Authenticator for meshctl's own tokens: a bearer token signed by the token key,
    unexpired, for audience `istio-ca`, naming a service account → its SPIFFE identity."""

    name = "meshctl-token"

    def __init__(self, public_key: ec.EllipticCurvePublicKey, trust_domain: str, *, issuer: str = ISSUER,
                 audience: str = CA_AUDIENCE, clock: Callable[[], float] = time.time) -> None:
        self.public_key = public_key
        self.kid = key_id(public_key)
        self.trust_domain = trust_domain
        self.issuer = issuer
        self.audience = audience
        self.clock = clock

    def authenticate(self, credentials: Credentials) -> Caller:
        claims = self.verify(bearer_token(credentials))
        try:
            identity = identity_of_user(self.trust_domain, str(claims.get("sub", "")))
        except NotAServiceAccountError as exc:
            raise AuthenticationError(f"token subject: {exc}") from None
        return Caller((identity,), self.name)

    def verify(self, token: str) -> Mapping[str, Any]:
        """The claims of a token this key signed that is valid now; AuthenticationError otherwise."""
        if len(token) > MAX_TOKEN:
            raise AuthenticationError(f"token longer than {MAX_TOKEN} bytes")
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthenticationError("malformed token (not a compact JWS of three parts)")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed token (undecodable base64url or JSON)") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthenticationError("malformed token (header and claims must be JSON objects)")
        if header.get("alg") != ALGORITHM:
            raise AuthenticationError(f"token algorithm {header.get('alg')!r} is not {ALGORITHM}")
        if header.get("kid") != self.kid:
            raise AuthenticationError(f"token signed by another key (kid {str(header.get('kid'))[:40]!r}, "
                                      f"this CA's is {self.kid!r})")
        self._check_signature(f"{parts[0]}.{parts[1]}".encode(), signature)
        self._check_claims(claims)
        return claims

    def _check_signature(self, signing_input: bytes, signature: bytes) -> None:
        if len(signature) != 2 * _P256_BYTES:
            raise AuthenticationError("token signature has the wrong length for ES256")
        r = int.from_bytes(signature[:_P256_BYTES], "big")
        s = int.from_bytes(signature[_P256_BYTES:], "big")
        try:
            self.public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AuthenticationError("token signature does not verify (signed by another key, or altered)") from None

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        expires, not_before = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise AuthenticationError("token has no expiry (exp)")
        if not isinstance(not_before, int | float) or isinstance(not_before, bool):
            raise AuthenticationError("token nbf is not a number")
        if now >= expires:
            raise AuthenticationError(f"token expired {int(now - expires)}s ago")
        if not_before > now + LEEWAY:
            raise AuthenticationError(f"token not valid for another {int(not_before - now)}s")
        if claims.get("iss") != self.issuer:
            raise AuthenticationError(f"token issuer {str(claims.get('iss'))[:80]!r} is not {self.issuer!r}")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise AuthenticationError(f"token audience is not {self.audience!r}")
