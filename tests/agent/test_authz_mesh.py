"""AuthorizationPolicy and RequestAuthentication on real traffic: agent-run Envoys talking
mTLS (peer identities from the certificates their agents got from serve's CA), reviews'
sidecar enforcing the policies written into serve's watched directory.

productpage and ratings call reviews through their own sidecars; reviews' RBAC sees their
SPIFFE principals. Tokens are RS256 JWTs signed here with a test key whose JWKS is inline in
the RequestAuthentication.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_mesh import ACCOUNTS, SERVICE_PORT, AgentMesh
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from envoy_harness import RequestLoop

from meshctl.loopback import Processes, http_get, wait_until

PRODUCTPAGE, REVIEWS, RATINGS = "productpage-v1", "reviews-v1", "ratings-v1"
ISSUER = "testing@secure.istio.io"
DENIED = "RBAC: access denied"


def principal(pod: str) -> str:
    return f"cluster.local/ns/default/sa/{ACCOUNTS[pod]}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _number(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Issuer:
    """An RSA key that signs RS256 tokens, and its public half as a JWKS."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> str:
        numbers = self.key.public_key().public_numbers()
        return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "kid": "test", "use": "sig",
                                     "n": _number(numbers.n), "e": _number(numbers.e)}]})

    def token(self, subject: str, *, key: rsa.RSAPrivateKey | None = None) -> str:
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test"}).encode())
        now = int(time.time())
        payload = _b64(json.dumps({"iss": ISSUER, "sub": subject, "iat": now, "exp": now + 3600}).encode())
        signed = f"{header}.{payload}".encode()
        signature = (key or self.key).sign(signed, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentMesh]:
    with Processes() as processes:
        running = AgentMesh(tmp_path_factory.mktemp("authz"), processes)
        try:
            running.start()
            for pod in (REVIEWS, PRODUCTPAGE, RATINGS):
                running.sidecar(pod)
            for sidecar in running.sidecars.values():
                sidecar.wait_ready(60)
            for client in (PRODUCTPAGE, RATINGS):
                wait_until(lambda client=client: call(running, client)[0] == 200, 30,  # type: ignore[misc]
                           what=f"{client} to reach reviews over mTLS")
            yield running
        finally:
            running.stop()


@pytest.fixture
def policies(mesh: AgentMesh) -> Iterator[Path]:
    """The policy file in serve's directory; removed (and its removal seen) after each test."""
    path = mesh.config_dir / "policies.yaml"
    yield path
    path.unlink(missing_ok=True)
    wait_until(lambda: call(mesh, RATINGS)[0] == 200, 30, what="reviews to allow everyone again")


def call(mesh: AgentMesh, client: str, path: str = "/reviews/1", token: str | None = None) -> tuple[int, str]:
    headers = {"Host": "reviews"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return http_get(f"http://{mesh.addresses[client]}:{SERVICE_PORT}{path}", headers=headers)


def allow(*clients: str, paths: str = '["/reviews/*"]') -> str:
    names = ", ".join(f'"{principal(c)}"' for c in clients)
    return f"""\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: reviews-viewers, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  rules:
  - from: [{{source: {{principals: [{names}]}}}}]
    to: [{{operation: {{methods: ["GET"], paths: {paths}}}}}]
"""


def outcome(mesh: AgentMesh, client: str, path: str = "/reviews/1", token: str | None = None) -> int:
    return call(mesh, client, path, token)[0]


def settle(mesh: AgentMesh, expected: dict[tuple[str, str], int], what: str) -> None:
    """Until every (client, path) gets its expected status: the policy reached reviews' Envoy."""
    wait_until(lambda: all(outcome(mesh, client, path) == status for (client, path), status in expected.items()),
               30, what=what, interval=0.1)


def test_allow_admits_productpage_and_refuses_ratings(mesh: AgentMesh, policies: Path) -> None:
    policies.write_text(allow(PRODUCTPAGE))
    settle(mesh, {(PRODUCTPAGE, "/reviews/1"): 200, (RATINGS, "/reviews/1"): 403}, what="the ALLOW policy")
    status, body = call(mesh, RATINGS)
    assert (status, body) == (403, DENIED)
    status, body = call(mesh, PRODUCTPAGE)
    assert status == 200 and f"URI=spiffe://{principal(PRODUCTPAGE)}" in body  # reviews' app saw the peer
    assert outcome(mesh, PRODUCTPAGE, "/details/1") == 403  # outside GET /reviews/*
    denied = sum(int(v) for k, v in mesh.sidecars[REVIEWS].stats("http.").items() if k.endswith(".rbac.denied"))
    assert denied >= 3  # Envoy's own count of the refusals above


def test_deny_wins_over_allow(mesh: AgentMesh, policies: Path) -> None:
    deny = f"""\
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: no-secrets, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  action: DENY
  rules:
  - from: [{{source: {{principals: ["{principal(PRODUCTPAGE)}"]}}}}]
    to: [{{operation: {{paths: ["/reviews/secret"]}}}}]
"""
    policies.write_text(allow(PRODUCTPAGE) + deny)
    settle(mesh, {(PRODUCTPAGE, "/reviews/secret"): 403, (PRODUCTPAGE, "/reviews/1"): 200,
                  (RATINGS, "/reviews/1"): 403}, what="DENY beside ALLOW")
    assert call(mesh, PRODUCTPAGE, "/reviews/secret") == (403, DENIED)


def test_live_edit_flips_outcome_without_failing_allowed_callers(mesh: AgentMesh, policies: Path) -> None:
    policies.write_text(allow(PRODUCTPAGE))
    settle(mesh, {(PRODUCTPAGE, "/reviews/1"): 200, (RATINGS, "/reviews/1"): 403}, what="productpage only")
    url = f"http://{mesh.addresses[PRODUCTPAGE]}:{SERVICE_PORT}/reviews/1"
    with RequestLoop(url, headers={"Host": "reviews"}) as loop:
        for _ in range(2):
            policies.write_text(allow(PRODUCTPAGE, RATINGS))
            settle(mesh, {(RATINGS, "/reviews/1"): 200}, what="ratings admitted by the edit")
            policies.write_text(allow(PRODUCTPAGE))
            settle(mesh, {(RATINGS, "/reviews/1"): 403}, what="ratings refused again")
        wait_until(lambda: len(loop.results) >= 20, 30, what="twenty requests from productpage")
    assert loop.failures == [], loop.failures[:5]


def test_jwt_valid_bad_signature_and_missing_token(mesh: AgentMesh, policies: Path) -> None:
    issuer = Issuer()
    jwks = issuer.jwks().replace("'", "''")
    policies.write_text(f"""\
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  jwtRules:
  - issuer: {ISSUER}
    jwks: '{jwks}'
""")
    good = issuer.token("alice")
    forged = issuer.token("alice", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    wait_until(lambda: outcome(mesh, PRODUCTPAGE, token=forged) == 401, 30, what="jwt_authn on reviews", interval=0.1)
    assert outcome(mesh, PRODUCTPAGE, token=good) == 200
    assert outcome(mesh, PRODUCTPAGE) == 200  # no token: no request identity, but nothing requires one
    policies.write_text(policies.read_text() + f"""\
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: reviews}}}}
  rules:
  - from: [{{source: {{requestPrincipals: ["{ISSUER}/*"]}}}}]
""")
    wait_until(lambda: outcome(mesh, PRODUCTPAGE) == 403, 30, what="the requestPrincipals policy", interval=0.1)
    assert call(mesh, PRODUCTPAGE) == (403, DENIED)
    assert outcome(mesh, PRODUCTPAGE, token=good) == 200
    assert outcome(mesh, PRODUCTPAGE, token=forged) == 401
    other = Issuer()
    assert outcome(mesh, PRODUCTPAGE, token=other.token("mallory")) == 401
