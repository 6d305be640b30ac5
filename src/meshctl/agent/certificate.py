"""The workload's key and certificate, as the agent holds them: made, named, timed for rotation.

istio-agent makes a fresh key for every CSR (a rotation changes the key too), asks for the SAN
of the identity it was told (the CA decides what it really gets), and renews when a jittered
half of the certificate's lifetime has passed, lifetime measured from when the answer arrived.
meshctl uses EC P-256 keys (Istio's `ECC_SIGNATURE_ALGORITHM=ECDSA`): they are made in
microseconds, where an RSA key would cost a sidecar's start a noticeable pause.
"""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshctl.errors import MeshctlError

__all__ = ["BadAnswerError", "GRACE_JITTER", "GRACE_RATIO", "WorkloadCertificate", "certificate_request", "new_key"]

GRACE_RATIO = 0.5
GRACE_JITTER = 0.01


class BadAnswerError(MeshctlError):
    """The CA answered with something that is not a usable certificate chain for our key."""


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate_request(key: ec.EllipticCurvePrivateKey, identity: str) -> str:
    """A CSR as istio-agent makes it: subject with one empty Organization, the identity as a
    critical URI SAN, signed by the key."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "")]))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True, slots=True)
class WorkloadCertificate:
    """A key and the CA's answer for it. `chain` is the answer as the CA sent it (leaf first,
    the root bundle last); `received` is the wall-clock time it arrived, from which rotation
    is timed. The key prints as nothing (`repr=False`): it is never logged."""

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    chain: tuple[str, ...]
    received: float
    serial: int
    not_after: datetime.datetime

    @classmethod
    def from_answer(cls, key: ec.EllipticCurvePrivateKey, chain: list[str], received: float | None = None
                    ) -> WorkloadCertificate:
        """Check the CA's answer (at least a leaf and the roots, as istio-agent insists; the leaf
        certifies our key) and keep it."""
        if len(chain) < 2:
            raise BadAnswerError(f"the CA answered with {len(chain)} certificate(s); a leaf and the roots are needed")
        try:
            leaf = x509.load_pem_x509_certificate(chain[0].encode())
        except ValueError as exc:
            raise BadAnswerError(f"the CA's leaf certificate does not parse: {exc}") from None
        if leaf.public_key() != key.public_key():
            raise BadAnswerError("the CA's certificate is not for the key this agent sent")
        return cls(key, tuple(chain), time.time() if received is None else received, leaf.serial_number,
                   leaf.not_valid_after_utc)

    @property
    def chain_pem(self) -> bytes:
        """Envoy's certificate chain: every element of the answer, roots included (as Istio)."""
        return "".join(pem if pem.endswith("\n") else pem + "\n" for pem in self.chain).encode()

    @property
    def roots_pem(self) -> bytes:
        """The trusted roots: the answer's last element, each certificate once, sorted as text."""
        roots = sorted({pem.strip() + "\n" for pem in _split_pem(self.chain[-1])})
        return "".join(roots).encode()

    def key_pem(self) -> bytes:
        """The private key in PEM (SEC1 `EC PRIVATE KEY`, istio-agent's default format); only for
        the SDS answer to this agent's own Envoy."""
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption())

    def rotation_delay(self, now: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds until this certificate should be replaced: at `expiry - ratio x lifetime`, the
        ratio 0.5 moved up or down by up to 0.01 at random (Istio's grace period and jitter)."""
        jitter = (rng or random).uniform(0, GRACE_JITTER) * (rng or random).choice((-1, 1))
        ratio = min(max(GRACE_RATIO + jitter, 0.0), 1.0)
        expires = self.not_after.timestamp()
        rotate_at = expires - ratio * (expires - self.received)
        return max(0.0, rotate_at - (time.time() if now is None else now))


def _split_pem(bundle: str) -> list[str]:
    marker = "-----END CERTIFICATE-----"
    return [part + marker for part in bundle.split(marker) if "-----BEGIN CERTIFICATE-----" in part]
