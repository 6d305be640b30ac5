"""A small certificate authority issuing SPIFFE workload certificates, as istiod's Citadel does.

Every sidecar config refers to two SDS secrets: `default` (the workload's certificate and key)
and `ROOTCA` (the roots it trusts). Envoy waits for them before any mTLS cluster or listener
becomes active, so `meshctl serve` must issue them. Identities follow Istio:
`spiffe://<trust domain>/ns/<namespace>/sa/<service account>` as a URI SAN, 24 h lifetime.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_LIFETIME = datetime.timedelta(hours=24)
ROOT_LIFETIME = datetime.timedelta(days=3650)


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """PEM texts Envoy needs: the chain (leaf first, root last) and the leaf's private key."""

    chain_pem: bytes
    key_pem: bytes
    serial: int
    not_after: datetime.datetime


class CertificateAuthority:
    """A self-signed root held in memory (or loaded), signing short-lived workload certificates."""

    def __init__(self, trust_domain: str = "cluster.local", *, root_key: ec.EllipticCurvePrivateKey | None = None,
                 root_cert: x509.Certificate | None = None, now: datetime.datetime | None = None) -> None:
        self.trust_domain = trust_domain
        if root_key is None or root_cert is None:
            root_key, root_cert = _self_signed_root(trust_domain, now or _now())
        self.root_key = root_key
        self.root_cert = root_cert

    @property
    def root_pem(self) -> bytes:
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, identity: str, *, lifetime: datetime.timedelta = DEFAULT_LIFETIME,
              now: datetime.datetime | None = None) -> IssuedCertificate:
        """A fresh key and certificate for a SPIFFE identity."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(key.public_key(), identity, lifetime, now or _now())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.root_pem
        return IssuedCertificate(chain, key_pem, cert.serial_number, cert.not_valid_after_utc)

    def sign_csr(self, csr_pem: bytes, identity: str, *, lifetime: datetime.timedelta = DEFAULT_LIFETIME,
                 now: datetime.datetime | None = None) -> list[bytes]:
        """Istio's CreateCertificate: only the CSR's public key is used; the identity is the
        caller's. Returns the PEM chain, leaf first."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the CSR signature does not verify")
        cert = self._sign(csr.public_key(), identity, lifetime, now or _now())
        return [cert.public_bytes(serialization.Encoding.PEM), self.root_pem]

    def _sign(self, public_key: object, identity: str, lifetime: datetime.timedelta,
              now: datetime.datetime) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.root_cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + lifetime)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()), critical=False)
        )
        return builder.sign(self.root_key, hashes.SHA256())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _self_signed_root(trust_domain: str, now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                      x509.NameAttribute(NameOID.COMMON_NAME, "meshctl root CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert
