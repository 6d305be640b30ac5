"""The CA's Kubernetes authenticator against the emulated API server: ServiceAccount tokens
from TokenRequest, checked with TokenReview; the identity is the review's, never the CSR's,
down to the certificate `meshctl serve --kubernetes` signs over TLS."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import grpc
import kmock
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from emulator import MeshEmulator

from meshctl.kube.client import KubeClient, load_client
from meshctl.security.authenticate import AuthenticationError, Credentials
from meshctl.security.tokenreview import KubernetesAuthenticator
from meshctl.wire import ca_pb2_grpc

sys.path.append(str(Path(__file__).resolve().parents[1] / "security"))  # the CA tests' client
from ca_world import CaServe, create_certificate  # noqa: E402 - after the path it lives on

TRUST_DOMAIN = "cluster.local"
REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"
PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/productpage"


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None)


@pytest.fixture
def authenticator(client: KubeClient) -> KubernetesAuthenticator:
    return KubernetesAuthenticator(client, TRUST_DOMAIN)


def token_for(client: KubeClient, account: str, audience: str = "istio-ca") -> str:
    """A token of `default/account`, issued by the API server (TokenRequest), as kubelet mounts one."""
    core = client.core
    core.create_namespaced_service_account("default", {"metadata": {"name": account}})
    request = {"spec": {"audiences": [audience], "expirationSeconds": 600}}
    return str(core.create_namespaced_service_account_token(account, "default", request).status.token)


def presenting(token: str, **metadata: str) -> Credentials:
    return Credentials({"authorization": (f"Bearer {token}",), **{k: (v,) for k, v in metadata.items()}}, "10.0.0.9:5")


def csr_for(identity: str) -> bytes:
    """A CSR asking for `identity`, as a workload that wants to be someone else would send."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mesh")]))
               .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM)


def test_a_service_account_token_proves_that_account(client: KubeClient, authenticator: KubernetesAuthenticator) -> None:
    caller = authenticator.authenticate(presenting(token_for(client, "reviews")))
    assert caller.identities == (REVIEWS,) and caller.authenticator == "kubernetes"


def test_a_token_for_another_account_cannot_get_that_identitys_certificate(
    client: KubeClient, kubeconfig: str, tmp_path: Path, processes: Any
) -> None:
    token_for(client, "reviews")
    productpage = token_for(client, "productpage")
    (tmp_path / "mesh").mkdir()
    serve = CaServe(processes, tmp_path / "mesh", tmp_path / "ca", tmp_path / "serve.log",
                    extra=["--kubernetes", "--kubeconfig", kubeconfig]).wait_ready()
    stub = ca_pb2_grpc.IstioCertificateServiceStub(serve.channel())
    with pytest.raises(grpc.RpcError) as impersonating:
        create_certificate(stub, csr_for(REVIEWS).decode(), productpage)  # productpage's token, reviews' CSR
    assert impersonating.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"authenticated as {PRODUCTPAGE}" in str(impersonating.value.details())
    chain = create_certificate(stub, csr_for(PRODUCTPAGE).decode(), productpage)  # its own identity: signed
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [PRODUCTPAGE]
    api_audience = token_for(client, "ratings", audience="https://kubernetes.default.svc.cluster.local")
    with pytest.raises(grpc.RpcError) as refused:
        create_certificate(stub, csr_for(REVIEWS).decode(), api_audience)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "token audiences" in serve.log.read_text()


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        (lambda c: presenting(token_for(c, "reviews", audience="https://kubernetes.default.svc.cluster.local")),
         "token audiences"),
        (lambda c: presenting("made-up"), "invalid bearer token"),
        (lambda c: Credentials({"authorization": (f"Basic {token_for(c, 'reviews')}",)}), "no bearer token"),
        (lambda c: Credentials({}), "no authorization metadata"),
        (lambda c: presenting(token_for(c, "reviews"), clusterid="cluster-2"), "claims to be in cluster 'cluster-2'"),
    ],
    ids=["audience-of-the-api-server", "unknown-token", "not-bearer", "no-token", "other-cluster"],
)
def test_what_proves_nothing_is_refused_and_says_why(
    client: KubeClient, authenticator: KubernetesAuthenticator, credentials: Any, reason: str
) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        authenticator.authenticate(credentials(client))


def test_only_a_service_account_user_is_an_identity(emulator: MeshEmulator, authenticator: KubernetesAuthenticator) -> None:
    def review_as(username: str, groups: list[str]) -> Any:
        return lambda request: {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                "spec": request.data["spec"],
                                "status": {"authenticated": True, "user": {"username": username, "groups": groups}}}

    emulator["post /apis/authentication.k8s.io/v1/tokenreviews"] << review_as("alice", ["system:authenticated"])
    with pytest.raises(AuthenticationError, match="'alice' is not in the system:serviceaccounts group"):
        authenticator.authenticate(presenting("alices-token"))


def test_a_review_the_api_server_refuses_is_an_authentication_failure(
    emulator: MeshEmulator, authenticator: KubernetesAuthenticator
) -> None:
    def forbidden(request: Any) -> Any:
        raise kmock.KubernetesError(status=403, reason="Forbidden", message=(
            'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:istio-system:istiod" '
            "cannot create resource"))

    emulator["post /apis/authentication.k8s.io/v1/tokenreviews"] << forbidden
    with pytest.raises(AuthenticationError, match="the TokenReview failed: tokenreviews.authentication.k8s.io is forbidden"):
        authenticator.authenticate(presenting("any"))
