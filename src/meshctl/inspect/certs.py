"""What a proxy's certificates say: the facts istioctl shows, plus SANs, days left and trust.

istioctl reads only the *first* PEM block of a secret (Go's `pem.Decode`), so the table facts
come from that block; the chain check reads every certificate in the secret.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from meshctl.security.ca import issued_by

__all__ = ["CertFacts", "all_certificates", "cert_facts", "chain_reaches", "first_certificate"]

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[^-\r\n]*)-----\r?\n(?P<body>.*?)-----END (?P=label)-----",
    re.DOTALL,
)
_SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class CertFacts:
    """One certificate as the secrets table shows it."""

    is_ca: bool
    serial_number: str
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]
    trust_domain: str

    def valid_at(self, now: datetime) -> bool:
        """Strictly between NotBefore and NotAfter, as istioctl checks it."""
        return self.not_before < now < self.not_after

    def days_left(self, now: datetime) -> int:
        """Whole days until NotAfter, rounded down (negative once expired)."""
        return math.floor((self.not_after - now).total_seconds() / _SECONDS_PER_DAY)


def first_certificate(pem: bytes) -> x509.Certificate | None:
    """The certificate in the first well-formed PEM block, or None when that block is not one."""
    der = next(_pem_blocks(pem), None)
    return None if der is None else _load_der(der)


def all_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every PEM block that holds a certificate, in order."""
    certificates = [_load_der(der) for der in _pem_blocks(pem)]
    return [certificate for certificate in certificates if certificate is not None]


def cert_facts(certificate: x509.Certificate) -> CertFacts:
    return CertFacts(
        is_ca=_is_ca(certificate),
        serial_number=format(certificate.serial_number, "032x"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        sans=_sans(certificate),
        trust_domain=_spiffe_trust_domain(certificate),
    )


def chain_reaches(chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]) -> bool:
    """Each certificate is signed by the next, and the last is a root or signed by one."""
    if not chain:
        return False
    for child, issuer in itertools.pairwise(chain):
        if not issued_by(child, issuer):
            return False
    last = chain[-1]
    return any(last == root or issued_by(last, root) for root in roots)


def _pem_blocks(pem: bytes) -> Iterator[bytes]:
    """The decoded body of each PEM block whose base64 is valid (Go's `pem.Decode` skips others)."""
    for match in _PEM_BLOCK.finditer(pem):
        try:
            yield base64.b64decode(b"".join(match.group("body").split()), validate=True)
        except binascii.Error:
            continue


def _load_der(der: bytes) -> x509.Certificate | None:
    """The certificate, or None when it does not parse, extensions included (as Go's x509)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        certificate.extensions  # noqa: B018 - parsed lazily; a malformed one raises here
    except ValueError:
        return None
    return certificate


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _sans(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    values = [
        *names.get_values_for_type(x509.UniformResourceIdentifier),
        *names.get_values_for_type(x509.DNSName),
        *(str(address) for address in names.get_values_for_type(x509.IPAddress)),
    ]
    return tuple(values)


def _spiffe_trust_domain(certificate: x509.Certificate) -> str:
    for uri in _sans(certificate):
        if uri.startswith("spiffe://"):
            return uri.removeprefix("spiffe://").split("/", 1)[0]
    return ""
