"""The CA's directory (`--ca-dir`): its key material, kept across restarts, in Istio's layout.

istiod keeps its self-signed CA in the `istio-ca-secret` and takes a plugged-in one from the
`cacerts` secret; both hold the same four files, and so does this directory:

- `ca-key.pem`, `ca-cert.pem`: the key and certificate the CA signs with;
- `root-cert.pem`: the roots workloads trust (the `istio-ca-root-cert` ConfigMap's content);
- `cert-chain.pem`: the chain from `ca-cert.pem` up to the root; empty for a self-signed root.

An empty or missing directory gets a new self-signed root (directory 0700, files 0600), so a
restarted serve signs with the same root and the mesh keeps trusting itself. A directory an
operator filled from Istio's `cacerts` is used as it is: its chain goes to every workload.

meshctl adds `token-key.pem`: the key `meshctl token` signs workload tokens with and serve
verifies them with when there is no Kubernetes to ask. Whoever can read this directory can
mint any identity, exactly as whoever holds `ca-key.pem` can.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshctl.errors import MeshctlError
from meshctl.security.ca import SigningBundle, SigningKey, issued_by, now_utc, self_signed_root

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "CERT_CHAIN",
    "CaDirectory",
    "CaDirectoryError",
    "ROOT_CERT",
    "TOKEN_KEY",
    "open_ca_directory",
    "read_root_certificates",
    "read_token_key",
]

log = logging.getLogger("meshctl.ca")

CA_KEY = "ca-key.pem"
CA_CERT = "ca-cert.pem"
ROOT_CERT = "root-cert.pem"
CERT_CHAIN = "cert-chain.pem"
TOKEN_KEY = "token-key.pem"
_CA_FILES = (CA_KEY, CA_CERT, ROOT_CERT)


class CaDirectoryError(MeshctlError):
    """The CA directory cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class CaDirectory:
    """What the directory holds, loaded: the signing bundle and the token key."""

    path: Path
    bundle: SigningBundle
    token_key: ec.EllipticCurvePrivateKey
    created: bool


def open_ca_directory(path: str | Path, trust_domain: str) -> CaDirectory:
    """Load the CA in `path`, making a self-signed one first if the directory is empty or absent."""
    directory = Path(path).expanduser()
    created = False
    if not directory.exists() or (directory.is_dir() and not any(directory.iterdir())):
        _create(directory, trust_domain)
        created = True
    if not directory.is_dir():
        raise CaDirectoryError(f"--ca-dir {directory}: not a directory")
    present = [name for name in _CA_FILES if (directory / name).is_file()]
    if len(present) != len(_CA_FILES):
        missing = ", ".join(name for name in _CA_FILES if name not in present)
        raise CaDirectoryError(f"--ca-dir {directory}: missing {missing} (a CA directory holds {', '.join(_CA_FILES)} "
                               f"and optionally {CERT_CHAIN}, as Istio's cacerts; an empty directory gets a new CA)")
    bundle = _load_bundle(directory)
    token_key_path = directory / TOKEN_KEY
    if not token_key_path.exists():
        _write_private(token_key_path, _key_pem(ec.generate_private_key(ec.SECP256R1())))
    token_key = _load_key(token_key_path)
    if not isinstance(token_key, ec.EllipticCurvePrivateKey):
        raise CaDirectoryError(f"{token_key_path}: the token key must be an EC key")
    _warn_if_exposed(directory)
    return CaDirectory(directory, bundle, token_key, created)


def read_token_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """The token signing key alone (`meshctl token`); the CA must have been created by serve."""
    directory = Path(path).expanduser()
    key_path = directory / TOKEN_KEY
    if not key_path.is_file():
        raise CaDirectoryError(f"no {TOKEN_KEY} in {directory}: start `meshctl serve --ca-dir {directory}` once "
                               "to create the CA, or give the --ca-dir serve uses")
    key = _load_key(key_path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaDirectoryError(f"{key_path}: the token key must be an EC key")
    return key


def _create(directory: Path, trust_domain: str) -> None:
    """A new self-signed CA, written whole: into a fresh directory renamed into place (so two
    processes starting at once agree on one CA), or file by file into an empty one."""
    key, cert = self_signed_root(trust_domain, now_utc())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    files = {CA_KEY: _key_pem(key), CA_CERT: cert_pem, ROOT_CERT: cert_pem, CERT_CHAIN: b"",
             TOKEN_KEY: _key_pem(ec.generate_private_key(ec.SECP256R1()))}
    if directory.exists():
        for name, data in files.items():
            _write_private(directory / name, data)
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        for name, data in files.items():
            _write_private(staging / name, data)
        try:
            staging.rename(directory)
        except OSError:  # another process made it first: use theirs
            for name in files:
                (staging / name).unlink()
            staging.rmdir()
            return
    os.chmod(directory, 0o700)
    log.info("created a self-signed CA", extra={"dir": str(directory), "trust_domain": trust_domain,
                                                  "not_after": cert.not_valid_after_utc.isoformat()})


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only; never overwrite."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CaDirectoryError(f"{path} appeared while the CA was being created; start again") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), None)
    except (ValueError, TypeError) as exc:
        raise CaDirectoryError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    except OSError as exc:
        raise CaDirectoryError(f"{path}: {exc.strerror}") from None


def _load_certs(path: Path, *, may_be_empty: bool = False) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CaDirectoryError(f"{path}: {exc.strerror}") from None
    if not data.strip():
        if may_be_empty:
            return []
        raise CaDirectoryError(f"{path}: empty (PEM certificates expected)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CaDirectoryError(f"{path}: not PEM certificates ({exc})") from None


def read_root_certificates(path: Path) -> bytes:
    """A root-certificate file as given (PEM), for a webhook configuration's `caBundle`: checked
    to hold certificates and nothing else, since a key would be printed into a manifest."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaDirectoryError(f"{path}: {exc.strerror}") from None
    if b"PRIVATE KEY-----" in data:
        raise CaDirectoryError(f"{path}: holds a private key; give the mesh's root certificate only ({ROOT_CERT})")
    _load_certs(path)
    return data


def _load_bundle(directory: Path) -> SigningBundle:
    key = _load_key(directory / CA_KEY)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CaDirectoryError(f"{directory / CA_KEY}: an EC or RSA key is needed, not {type(key).__name__}")
    signing: SigningKey = key
    cert = _load_certs(directory / CA_CERT)[0]
    roots = _load_certs(directory / ROOT_CERT)
    chain = tuple(_load_certs(directory / CERT_CHAIN, may_be_empty=True))
    _check(directory, signing, cert, chain, roots)
    return SigningBundle(signing, cert, chain, (directory / ROOT_CERT).read_bytes())


def _check(directory: Path, key: SigningKey, cert: x509.Certificate, chain: tuple[x509.Certificate, ...],
           roots: list[x509.Certificate]) -> None:
    """Refuse a CA that would issue certificates nobody can verify."""
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise CaDirectoryError(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CaDirectoryError(f"{directory / CA_CERT} is not a CA certificate (basicConstraints CA:TRUE)")
    if cert.not_valid_after_utc <= now_utc():
        raise CaDirectoryError(f"{directory / CA_CERT} expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
    path = [cert, *[c for c in chain if c != cert]]
    for child, parent in itertools.pairwise(path):
        if not issued_by(child, parent):
            raise CaDirectoryError(f"{directory / CERT_CHAIN}: {child.subject.rfc4514_string() or 'a certificate'} "
                                   f"is not issued by the next one, {parent.subject.rfc4514_string()}")
    top = path[-1]
    if not any(top == root or issued_by(top, root) for root in roots):
        raise CaDirectoryError(f"{directory / CA_CERT} does not chain to any root in {directory / ROOT_CERT}")


def _warn_if_exposed(directory: Path) -> None:
    """Key files others can read are a mesh-wide secret shared with them: say so."""
    for name in (CA_KEY, TOKEN_KEY):
        with contextlib.suppress(OSError):
            mode = (directory / name).stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning("a CA key is readable by others than its owner; chmod 600 it",
                            extra={"file": str(directory / name), "mode": oct(mode & 0o777)})
