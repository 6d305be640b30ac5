"""meshctl's workload tokens: a minted token proves its service account, and nothing else passes
(expired, early, another key, another audience or issuer, altered, not a JWS, not a bearer)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from meshctl.security.authenticate import (
    AuthenticationError,
    AuthenticatorChain,
    Caller,
    Credentials,
    bearer_token,
)
from meshctl.security.tokens import TokenAuthenticator, TokenSigner

NOW = 1_800_000_000.0
KEY = ec.generate_private_key(ec.SECP256R1())
SIGNER = TokenSigner(KEY)
CART = "spiffe://cluster.local/ns/shop/sa/cart"
AUTHENTICATOR = TokenAuthenticator(KEY.public_key(), "cluster.local", clock=lambda: NOW)


def bearer(token: str) -> Credentials:
    return Credentials({"authorization": (f"Bearer {token}",)}, "ipv4:127.0.0.1:1")


def test_a_minted_token_proves_its_service_account() -> None:
    token = SIGNER.mint("shop", "cart", pod="cart-0", ttl=600, now=NOW)
    assert AUTHENTICATOR.authenticate(bearer(token)) == Caller((CART,), "meshctl-token")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:shop:cart" and claims["aud"] == ["istio-ca"]
    assert claims["kubernetes.io"] == {"namespace": "shop", "pod": {"name": "cart-0"},
                                       "serviceaccount": {"name": "cart"}}
    assert claims["exp"] - claims["iat"] == 600


def _forge(claims: dict[str, object], header: dict[str, object] | None = None,
           key: ec.EllipticCurvePrivateKey = KEY) -> str:
    signer = TokenSigner(key)
    token = signer.sign(claims)
    if header is None:
        return token
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


GOOD = {"aud": ["istio-ca"], "exp": NOW + 60, "iat": NOW, "nbf": NOW, "iss": "meshctl",
        "sub": "system:serviceaccount:shop:cart"}
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(("token", "reason"), [
    (SIGNER.mint("shop", "cart", ttl=60, now=NOW - 61), "token expired 1s ago"),
    (SIGNER.mint("shop", "cart", ttl=600, now=NOW + 120), "token not valid for another 120s"),
    (TokenSigner(OTHER_KEY).mint("shop", "cart", now=NOW), "token signed by another key"),
    (_forge(GOOD, {"alg": "ES256", "kid": SIGNER.kid, "typ": "JWT"}, OTHER_KEY),
     "token signature does not verify"),
    (_forge(GOOD, {"alg": "none", "kid": SIGNER.kid}), "token algorithm 'none' is not ES256"),
    (_forge(GOOD, {"alg": "HS256", "kid": SIGNER.kid}), "token algorithm 'HS256' is not ES256"),
    (_forge({**GOOD, "aud": ["kubernetes"]}), "token audience is not 'istio-ca'"),
    (_forge({**GOOD, "iss": "someone"}), "token issuer 'someone' is not 'meshctl'"),
    (_forge({**GOOD, "sub": "alice"}), "token subject: 'alice' is not a service account"),
    (_forge({**GOOD, "sub": "system:serviceaccount::cart"}),
     "token subject: .system:serviceaccount::cart. names no namespace"),
    (_forge({k: v for k, v in GOOD.items() if k != "exp"}), "token has no expiry"),
    ("a.b", "malformed token (not a compact JWS of three parts)"),
    ("!!!.!!!.!!!", "malformed token"),
    (SIGNER.mint("shop", "cart", now=NOW)[:-4] + "AAAA", "token signature does not verify"),
    ("x" * 9000, "token longer than 8192 bytes"),
])  # fmt: skip
def test_refusals_say_why(token: str, reason: str) -> None:
    with pytest.raises(AuthenticationError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        AUTHENTICATOR.authenticate(bearer(token))


def test_altered_claims_do_not_verify() -> None:
    header, claims, signature = SIGNER.mint("shop", "cart", now=NOW).split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    decoded["sub"] = "system:serviceaccount:shop:admin"
    altered = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        AUTHENTICATOR.authenticate(bearer(f"{header}.{altered}.{signature}"))


@pytest.mark.parametrize(("metadata", "reason"), [
    ({}, "no authorization metadata"),
    ({"authorization": ("Basic abc",)}, "no bearer token"),
    ({"authorization": ("bearer abc",)}, "no bearer token"),
    ({"authorization": ("Bearer ",)}, "no bearer token"),
])  # fmt: skip
def test_bearer_token_is_read_as_istiod_reads_it(metadata: dict[str, tuple[str, ...]], reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        bearer_token(Credentials(metadata))
    assert bearer_token(Credentials({"authorization": ("Basic x", "Bearer tok")})) == "tok"


class _Refuses:
    name = "first"

    def authenticate(self, credentials: Credentials) -> Caller:
        raise AuthenticationError("never")


def test_chain_tries_in_order_and_joins_the_reasons() -> None:
    chain = AuthenticatorChain([_Refuses(), AUTHENTICATOR])
    token = SIGNER.mint("shop", "cart", now=NOW)
    assert chain.authenticate(bearer(token)).identities == (CART,)
    with pytest.raises(AuthenticationError, match="^first: never; meshctl-token: no authorization metadata$"):
        chain.authenticate(Credentials({}))
