"""The certificate authority (istiod's Citadel): signs workload CSRs the way Istio's CA does.

A workload's agent makes its own key and sends a CSR; the CA uses only the CSR's public key and
signs a certificate for the identities the caller *proved* (see authenticate.py), never for what
the CSR claims. Istio's rules, mirrored here:

- TTL: the requested `validity_duration` in seconds; zero or less means the CA default; more than
  the maximum is refused. The default is computed once, at start, as the configured default or
  the time left on the signing chain, whichever is shorter.
- Leaf: empty subject (CN = the first identity only when the CSR names a CN, Istio's "dual use"),
  a critical SAN extension (URI for `spiffe://`, IP for addresses, DNS otherwise), key usage
  digitalSignature + keyEncipherment, EKU serverAuth + clientAuth, CA=false, a random 128-bit
  serial, NotBefore two minutes back (clock skew), NotAfter clamped to the signing certificate's.
- Response: the leaf, then every certificate of the signing chain (`cert-chain.pem`, plugged-in
  CAs only) one PEM per element, then the root bundle unsplit as the last element.

meshctl refuses one thing Istio lets through: a CSR whose SANs name an identity the caller did
not prove (Istio ignores the CSR's SANs; refusing them turns a confused or hostile agent into a
clear error instead of a certificate it did not expect).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshctl.errors import MeshctlError
from meshctl.security.istiod import ISTIOD_NAMES
from meshctl.security.spiffe import PREFIX

__all__ = [
    "CLOCK_SKEW",
    "CertificateAuthority",
    "CsrError",
    "DEFAULT_WORKLOAD_TTL",
    "ISTIOD_NAMES",
    "MAX_WORKLOAD_TTL",
    "ROOT_LIFETIME",
    "SigningBundle",
    "SigningKey",
    "issued_by",
    "now_utc",
    "parse_csr",
    "self_signed_bundle",
    "self_signed_root",
]

DEFAULT_WORKLOAD_TTL = datetime.timedelta(hours=24)
MAX_WORKLOAD_TTL = datetime.timedelta(days=90)
ROOT_LIFETIME = datetime.timedelta(days=3650)
CLOCK_SKEW = datetime.timedelta(minutes=2)
_MAX_CN = 64

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CsrError(MeshctlError):
    """A CSR the CA will not sign; `reason` is a short word for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SigningBundle:
    """What the CA signs with, in Istio's `cacerts` terms: the signing key (`ca-key.pem`) and
    certificate (`ca-cert.pem`), the chain above it (`cert-chain.pem`: empty for a self-signed
    root) and the root bundle workloads trust (`root-cert.pem`, kept as written)."""

    key: SigningKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    roots_pem: bytes

    @property
    def chain_pem(self) -> list[str]:
        return [_pem(cert) for cert in self.chain]


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _one_newline(pem: str) -> str:
    """Istio's response element: one leading/trailing newline stripped, exactly one appended."""
    return pem.removeprefix("\n").removesuffix("\n") + "\n"


class CertificateAuthority:
    """Signs CSRs with a SigningBundle. Immutable after construction; safe to share across threads."""

    def __init__(self, bundle: SigningBundle, *, default_ttl: datetime.timedelta = DEFAULT_WORKLOAD_TTL,
                 max_ttl: datetime.timedelta = MAX_WORKLOAD_TTL, now: datetime.datetime | None = None) -> None:
        now = now or now_utc()
        if bundle.cert.not_valid_after_utc <= now:
            raise MeshctlError(f"the CA certificate expired at {bundle.cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
        self.bundle = bundle
        self.max_ttl = max_ttl
        self.default_ttl = default_ttl
        if bundle.chain:
            # A plugged-in CA: never hand out certificates outliving the chain (Istio's minTTL).
            left = min(cert.not_valid_after_utc for cert in bundle.chain) - now
            self.default_ttl = max(min(default_ttl, left), datetime.timedelta(0))
        self._issuer_key_id = _key_identifier(bundle.cert)
        self._tail = [_one_newline(pem) for pem in bundle.chain_pem] + [bundle.roots_pem.decode()]

    @property
    def roots_pem(self) -> bytes:
        return self.bundle.roots_pem

    def sign_csr(self, csr_pem: str | bytes, identities: Sequence[str], requested_seconds: int = 0,
                 now: datetime.datetime | None = None) -> list[str]:
        """Istio's CreateCertificate answer for an authenticated caller: `[leaf, chain..., roots]`.
        Raises CsrError for a CSR that does not parse or verify, asks for identities the caller
        does not have, or asks for too long a lifetime."""
        csr = parse_csr(csr_pem)
        requested = _requested_identities(csr)
        foreign = [name for name in requested if name not in identities]
        if foreign:
            asked = ", ".join(name[:200] for name in foreign[:4])
            raise CsrError("identity_mismatch", f"the CSR asks for {asked}, but the caller was authenticated as "
                                                f"{', '.join(identities)}")
        ttl = self.lifetime(requested_seconds)
        common_name = bool(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
        leaf = self.sign(csr.public_key(), identities, ttl, now or now_utc(), common_name=common_name)
        return [_one_newline(_pem(leaf)), *self._tail]

    def lifetime(self, requested_seconds: int) -> datetime.timedelta:
        if requested_seconds <= 0:
            return self.default_ttl
        requested = datetime.timedelta(seconds=requested_seconds)
        if requested > self.max_ttl:
            raise CsrError("ttl", f"requested TTL {_go_duration(requested)} is greater than the max allowed TTL "
                                  f"{_go_duration(self.max_ttl)}")
        return requested

    def sign(self, public_key: object, identities: Sequence[str], ttl: datetime.timedelta, now: datetime.datetime,
             *, common_name: bool = False) -> x509.Certificate:
        """A leaf certificate for `identities` (its SANs) and `public_key`."""
        if not identities:
            raise CsrError("identity_mismatch", "no identity to certify")
        subject = x509.Name([])
        if common_name and len(identities[0]) <= _MAX_CN:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identities[0])])
        not_after = min(now + ttl, self.bundle.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.bundle.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier(self._issuer_key_id, None, None), critical=False)
            .add_extension(x509.SubjectAlternativeName([_general_name(i) for i in identities]), critical=True)
        )
        return builder.sign(self.bundle.key, hashes.SHA256())

    def server_certificate(self, names: Sequence[str] = ISTIOD_NAMES, now: datetime.datetime | None = None,
                           lifetime: datetime.timedelta = datetime.timedelta(days=365)) -> tuple[bytes, bytes]:
        """(key PEM, chain PEM) for serve's own TLS port, as istiod issues its serving certificate
        from its CA. The key is made here and stays in this process (gRPC is handed it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = self.sign(key.public_key(), sorted(names), lifetime, now or now_utc())
        chain = _pem(leaf) + "".join(self.bundle.chain_pem or [_pem(self.bundle.cert)])
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return key_pem, chain.encode()


def parse_csr(csr_pem: str | bytes) -> x509.CertificateSigningRequest:
    """A CSR whose signature verifies, or CsrError (`malformed_csr`, `bad_csr_signature`)."""
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    try:
        csr = x509.load_pem_x509_csr(data)
        public_key = csr.public_key()
    except (ValueError, TypeError) as exc:
        raise CsrError("malformed_csr", f"failed to parse the CSR: {exc}") from None
    if not isinstance(public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise CsrError("malformed_csr", f"the CSR's key is a {type(public_key).__name__}; an EC or RSA key is needed")
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise CsrError("bad_csr_signature", "the CSR's signature does not verify with its own public key")
    return csr


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `child` (names match and the signature verifies)."""
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _requested_identities(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise CsrError("malformed_csr", f"the CSR's extensions do not parse: {exc}") from None
    out: list[str] = []
    for name in sans:
        value = name.value
        out.append(str(value) if isinstance(name, x509.IPAddress) else value if isinstance(value, str) else repr(value))
    return out


def _general_name(identity: str) -> x509.GeneralName:
    """Istio's SAN rule: an IP if it parses as one, a URI for `spiffe://`, DNS otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        pass
    if identity.startswith(PREFIX):
        return x509.UniformResourceIdentifier(identity)
    return x509.DNSName(identity)


def _serial() -> int:
    """A random positive serial number below 2^128, as Go's CA picks it."""
    while True:
        serial = int.from_bytes(os.urandom(16), "big")
        if serial:
            return serial


def _key_identifier(cert: x509.Certificate) -> bytes:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _go_duration(value: datetime.timedelta) -> str:
    """A lifetime as Go prints a time.Duration (`2160h0m0s`), as istiod's messages show it."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def self_signed_root(
    trust_domain: str, now: datetime.datetime | None = None, lifetime: datetime.timedelta = ROOT_LIFETIME,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new root (key and certificate): Organization = the trust domain, CA, keyCertSign."""
    now = now or now_utc()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def self_signed_bundle(trust_domain: str, now: datetime.datetime | None = None) -> SigningBundle:
    """A fresh in-memory CA (tests, benchmarks): the root signs, and is the only root."""
    key, cert = self_signed_root(trust_domain, now)
    return SigningBundle(key, cert, (), _pem(cert).encode())
