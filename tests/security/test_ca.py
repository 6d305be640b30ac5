"""The CA signs what Istio's CA signs: the caller's identity, Istio's leaf template, TTL rules,
the response layout; and refuses CSRs that do not parse, do not verify, ask for another
identity or too long a lifetime."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshctl.security.ca import CertificateAuthority, CsrError, SigningBundle, self_signed_bundle, self_signed_root

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


def csr(key: ec.EllipticCurvePrivateKey | None = None, sans: Sequence[str] = (), common_name: str = "") -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(s) for s in sans]),
                                        critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(self_signed_bundle("cluster.local", NOW), now=NOW)


def test_leaf_follows_istios_template(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    chain = ca.sign_csr(csr(key, [REVIEWS]), [REVIEWS], 3600, now=NOW)
    assert len(chain) == 2 and all(pem.endswith("-----END CERTIFICATE-----\n") for pem in chain)
    assert chain[1] == ca.roots_pem.decode()
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    root = x509.load_pem_x509_certificate(chain[1].encode())
    leaf.verify_directly_issued_by(root)
    assert leaf.public_key() == key.public_key()
    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == [REVIEWS]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert 0 < leaf.serial_number < 2**128
    assert leaf.not_valid_before_utc == NOW - datetime.timedelta(minutes=2)
    assert leaf.not_valid_after_utc == NOW + datetime.timedelta(hours=1)


def test_identity_is_the_callers_never_the_csrs(ca: CertificateAuthority) -> None:
    leaf = x509.load_pem_x509_certificate(ca.sign_csr(csr(), [REVIEWS], now=NOW)[0].encode())
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [REVIEWS]
    with pytest.raises(CsrError, match="the CSR asks for spiffe://cluster.local/ns/default/sa/ratings, but the caller "
                                       "was authenticated as spiffe://cluster.local/ns/default/sa/reviews") as refused:
        ca.sign_csr(csr(sans=["spiffe://cluster.local/ns/default/sa/ratings"]), [REVIEWS], now=NOW)
    assert refused.value.reason == "identity_mismatch"


def test_common_name_only_when_the_csr_names_one(ca: CertificateAuthority) -> None:
    leaf = x509.load_pem_x509_certificate(ca.sign_csr(csr(common_name="anything"), [REVIEWS], now=NOW)[0].encode())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == REVIEWS


def test_ttl_rules(ca: CertificateAuthority) -> None:
    def lifetime(seconds: int) -> datetime.timedelta:
        leaf = x509.load_pem_x509_certificate(ca.sign_csr(csr(), [REVIEWS], seconds, now=NOW)[0].encode())
        return leaf.not_valid_after_utc - NOW

    assert lifetime(0) == lifetime(-5) == datetime.timedelta(hours=24)
    assert lifetime(10) == datetime.timedelta(seconds=10)
    assert lifetime(90 * 86400) == datetime.timedelta(days=90)
    with pytest.raises(CsrError, match=r"^requested TTL 2160h0m1s is greater than the max allowed TTL 2160h0m0s$"):
        ca.sign_csr(csr(), [REVIEWS], 90 * 86400 + 1, now=NOW)


def test_leaf_never_outlives_the_signer() -> None:
    key, root = self_signed_root("cluster.local", NOW, lifetime=datetime.timedelta(hours=1))
    bundle = SigningBundle(key, root, (), root.public_bytes(serialization.Encoding.PEM))
    short = CertificateAuthority(bundle, now=NOW)
    leaf = x509.load_pem_x509_certificate(short.sign_csr(csr(), [REVIEWS], 7200, now=NOW)[0].encode())
    assert leaf.not_valid_after_utc == root.not_valid_after_utc


@pytest.mark.parametrize(("text", "reason", "message"), [
    ("", "malformed_csr", "failed to parse the CSR"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "malformed_csr",
     "failed to parse the CSR"),
    ("not pem at all", "malformed_csr", "failed to parse the CSR"),
])  # fmt: skip
def test_malformed_csrs_are_refused(ca: CertificateAuthority, text: str, reason: str, message: str) -> None:
    with pytest.raises(CsrError, match=message) as refused:
        ca.sign_csr(text, [REVIEWS], now=NOW)
    assert refused.value.reason == reason


def test_a_csr_whose_signature_does_not_verify_is_refused(ca: CertificateAuthority) -> None:
    pem = csr(sans=[REVIEWS])
    request = x509.load_pem_x509_csr(pem.encode())
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrError, match="signature does not verify") as refused:
        ca.sign_csr(tampered, [REVIEWS], now=NOW)
    assert refused.value.reason == "bad_csr_signature"


def test_plugged_in_ca_delivers_its_chain_and_caps_the_default_ttl() -> None:
    root_key, root = self_signed_root("cluster.local", NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "inter")]))
        .issuer_name(root.subject).public_key(key.public_key()).serial_number(7)
        .not_valid_before(NOW - datetime.timedelta(hours=1)).not_valid_after(NOW + datetime.timedelta(hours=5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    pem = [c.public_bytes(serialization.Encoding.PEM) for c in (intermediate, root)]
    plugged = CertificateAuthority(SigningBundle(key, intermediate, (intermediate, root), pem[1]), now=NOW)
    assert plugged.default_ttl == datetime.timedelta(hours=5)
    chain = plugged.sign_csr(csr(), [REVIEWS], now=NOW)
    assert chain[1:] == [pem[0].decode(), pem[1].decode(), pem[1].decode()]  # the root twice, as in Istio
    x509.load_pem_x509_certificate(chain[0].encode()).verify_directly_issued_by(intermediate)


def test_serving_certificate_names_istiod() -> None:
    authority = CertificateAuthority(self_signed_bundle("cluster.local"))
    key_pem, chain_pem = authority.server_certificate()
    leaf, root = x509.load_pem_x509_certificates(chain_pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["istio-pilot.istio-system.svc", "istiod-remote.istio-system.svc", "istiod.istio-system.svc"]
    assert serialization.load_pem_private_key(key_pem, None).public_key() == leaf.public_key()
    leaf.verify_directly_issued_by(root)
