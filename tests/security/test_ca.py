"""The CA issues what Envoy and Istio peers expect: SPIFFE URI SANs, chains to the root, 24 h."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshctl.security.ca import CertificateAuthority, spiffe_id

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)


def test_workload_certificate_carries_the_spiffe_id_and_chains_to_the_root() -> None:
    ca = CertificateAuthority("cluster.local", now=NOW)
    identity = spiffe_id("cluster.local", "default", "reviews")
    issued = ca.issue(identity, now=NOW)
    leaf, root = x509.load_pem_x509_certificates(issued.chain_pem)
    assert root.fingerprint(hashes.SHA256()) == ca.root_cert.fingerprint(hashes.SHA256())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster.local/ns/default/sa/reviews"]
    leaf.verify_directly_issued_by(root)
    assert leaf.not_valid_after_utc - NOW == datetime.timedelta(hours=24)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(issued.key_pem, None)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()


def test_csr_signing_uses_the_callers_identity_not_the_csrs() -> None:
    ca = CertificateAuthority("example.org", now=NOW)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://evil/ns/x/sa/y")]), False)
           .sign(key, hashes.SHA256()))
    chain = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM), spiffe_id("example.org", "ns", "sa"), now=NOW)
    leaf = x509.load_pem_x509_certificate(chain[0])
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example.org/ns/ns/sa/sa"]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(ValueError):
        ca.sign_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "spiffe://x")
