"""serve's CA over real gRPC and TLS: a token gets its identity certified; every kind of bad
request is refused, with istiod's status and message, logged and counted, over a thousand
randomized attempts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from ca_world import CaServe, create_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FUZZ, examples

from meshctl.security.ca import self_signed_root
from meshctl.security.spiffe import spiffe_id
from meshctl.security.tokens import TokenSigner
from meshctl.wire import ca_pb2_grpc

AUTH_FAILURE = (grpc.StatusCode.UNAUTHENTICATED, "request authenticate failure")
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
FOREIGN = TokenSigner(ec.generate_private_key(ec.SECP256R1()))


def csr(key: ec.EllipticCurvePrivateKey, *identities: str) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if identities:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(i) for i in identities]), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def stub(ca_serve: CaServe) -> Iterator[ca_pb2_grpc.IstioCertificateServiceStub]:
    with ca_serve.channel() as channel:
        yield ca_pb2_grpc.IstioCertificateServiceStub(channel)


def refusal(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code(), exc.details()  # type: ignore[attr-defined]
    raise AssertionError("the CA issued a certificate it should have refused")


def test_a_token_gets_its_identity_certified(ca_serve: CaServe, stub: ca_pb2_grpc.IstioCertificateServiceStub) -> None:
    before = ca_serve.metrics()
    key = ec.generate_private_key(ec.SECP256R1())
    identity = spiffe_id("cluster.local", "shop", "cart")
    chain = create_certificate(stub, csr(key, identity), ca_serve.signer().mint("shop", "cart"), ttl=3600)
    assert len(chain) == 2 and chain[-1] == ca_serve.roots.decode()
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    assert leaf.public_key() == key.public_key()
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [identity]
    assert 3590 <= (leaf.not_valid_after_utc.timestamp() - time.time()) <= 3600
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_serve.roots))
    # No SAN in the CSR at all: the caller's identity, 24 h (the default).
    answer = create_certificate(stub, csr(key), ca_serve.signer().mint("a", "b"))
    bare = x509.load_pem_x509_certificate(answer[0].encode())
    assert bare.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [spiffe_id("cluster.local", "a", "b")]
    assert 86390 <= bare.not_valid_after_utc.timestamp() - time.time() <= 86400
    assert _increase(before, ca_serve.metrics(), "citadel_server_success_cert_issuance_count") == 2
    assert 'identity=spiffe://cluster.local/ns/shop/sa/cart' in ca_serve.log.read_text()


def test_ttl_over_the_maximum_is_refused(ca_serve: CaServe, stub: ca_pb2_grpc.IstioCertificateServiceStub) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    code, message = refusal(lambda: create_certificate(stub, csr(key), ca_serve.signer().mint("a", "b"), ttl=49 * 3600))
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT,
                               "CSR signing error (requested TTL 49h0m0s is greater than the max allowed TTL 48h0m0s)")


def _malformed(draw: st.DrawFn, key: ec.EllipticCurvePrivateKey, identity: str) -> str:
    good = csr(key, identity)
    kind = draw(st.sampled_from(["bytes", "truncated", "signature", "not-pem", "empty"]))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=300)).decode("latin-1")
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 40))]
    if kind == "signature":
        der = bytearray(x509.load_pem_x509_csr(good.encode()).public_bytes(serialization.Encoding.DER))
        der[-draw(st.integers(1, 8))] ^= draw(st.integers(1, 255))
        try:
            return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
        except ValueError:
            return good.replace("MII", "MIJ", 1)
    if kind == "not-pem":
        body = draw(st.text(max_size=200))
        return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"
    return ""


KINDS = ("other-identity", "no-token", "expired-token", "foreign-key", "malformed-csr")


@st.composite
def bad_requests(draw: st.DrawFn, signer: TokenSigner,
                 kind: str) -> tuple[str, str, str | None, tuple[grpc.StatusCode, str]]:
    """(kind, CSR, token, the refusal expected) for a bad request of that kind."""
    namespace, account = draw(NAMES), draw(NAMES)
    identity = spiffe_id("cluster.local", namespace, account)
    key = ec.generate_private_key(ec.SECP256R1())
    if kind == "other-identity":
        other = (draw(NAMES), draw(NAMES))
        if other == (namespace, account):
            other = (namespace, account + "x")
        wanted = spiffe_id("cluster.local", *other)
        return kind, csr(key, wanted), signer.mint(namespace, account), (
            grpc.StatusCode.INVALID_ARGUMENT,
            f"CSR signing error (the CSR asks for {wanted}, but the caller was authenticated as {identity})")
    if kind == "no-token":
        return kind, csr(key, identity), draw(st.sampled_from([None, ""])), AUTH_FAILURE
    if kind == "expired-token":
        ttl = draw(st.integers(1, 7200))
        issued = time.time() - ttl - draw(st.integers(1, 10**6))
        return kind, csr(key, identity), signer.mint(namespace, account, ttl=ttl, now=issued), AUTH_FAILURE
    if kind == "foreign-key":
        return kind, csr(key, identity), FOREIGN.mint(namespace, account), AUTH_FAILURE
    text = _malformed(draw, key, identity)
    return kind, text, signer.mint(namespace, account), (grpc.StatusCode.INVALID_ARGUMENT, "")


# What each kind of bad request is counted as, besides meshctl_ca_refusals_total{reason}.
COUNTED = {"other-identity": 'meshctl_ca_refusals_total{reason="identity_mismatch"}',
           "no-token": "citadel_server_authentication_failure_count",
           "expired-token": "citadel_server_authentication_failure_count",
           "foreign-key": "citadel_server_authentication_failure_count",
           "malformed-csr": "citadel_server_csr_parsing_err_count"}
LOGGED = {"other-identity": "reason=identity_mismatch code=INVALID_ARGUMENT",
          "no-token": "no authorization metadata", "expired-token": "token expired",
          "foreign-key": "token signed by another key", "malformed-csr": "code=INVALID_ARGUMENT"}


@pytest.mark.parametrize("kind", KINDS)
def test_two_hundred_bad_requests_of_each_kind_are_all_refused(
        ca_serve: CaServe, stub: ca_pb2_grpc.IstioCertificateServiceStub, kind: str) -> None:
    """A thousand randomized attempts in all (five kinds), every one refused as istiod would."""
    signer = ca_serve.signer()
    before = ca_serve.metrics()
    sent = Counter[str]()

    @settings(FUZZ, max_examples=examples(200))
    @given(bad_requests(signer, kind))
    def attempt(request: tuple[str, str, str | None, tuple[grpc.StatusCode, str]]) -> None:
        _, text, token, expected = request
        sent[kind] += 1
        code, message = refusal(lambda: create_certificate(stub, text, token))
        if kind == "malformed-csr":
            assert code == expected[0] and message.startswith("CSR signing error (") and (
                "failed to parse the CSR" in message or "signature does not verify" in message), message
        else:
            assert (code, message) == expected

    log_before = len(ca_serve.log.read_text())
    attempt()
    assert sent[kind] >= examples(200)
    after = ca_serve.metrics()
    refused = sum(v - before.get(k, 0) for k, v in after.items() if k.startswith("meshctl_ca_refusals_total"))
    assert refused == sent[kind]
    assert _increase(before, after, COUNTED[kind]) == sent[kind]
    assert _increase(before, after, "citadel_server_success_cert_issuance_count") == 0
    log = ca_serve.log.read_text()[log_before:]
    assert log.count('msg="CSR refused"') == sent[kind] and log.count(LOGGED[kind]) >= 1


def _increase(before: dict[str, float], after: dict[str, float], sample: str) -> float:
    return after.get(sample, 0) - before.get(sample, 0)


def test_xds_is_offered_on_the_tls_port_too(ca_serve: CaServe) -> None:
    with ca_serve.channel() as channel:
        answer = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel).FetchClientStatus(
            csds_pb2.ClientStatusRequest(), timeout=10)
    assert list(answer.config) == []  # nobody connected, but the question was answered over TLS


def test_plaintext_and_unverified_callers_get_nothing(ca_serve: CaServe) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ca_serve.ca_port}") as channel:
        code, _ = refusal(lambda: create_certificate(ca_pb2_grpc.IstioCertificateServiceStub(channel), "", None))
    assert code == grpc.StatusCode.UNAVAILABLE
    _, stranger = self_signed_root("elsewhere")
    credentials = grpc.ssl_channel_credentials(stranger.public_bytes(serialization.Encoding.PEM))
    with grpc.secure_channel(f"127.0.0.1:{ca_serve.ca_port}", credentials,
                             options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")]) as channel:
        code, _ = refusal(lambda: create_certificate(ca_pb2_grpc.IstioCertificateServiceStub(channel), "", None))
    assert code == grpc.StatusCode.UNAVAILABLE  # the client does not trust a CA of another mesh
