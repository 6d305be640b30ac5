"""The CA directory: made once with owner-only modes, the same root after a restart, Istio's
cacerts layout taken as it is, and every unusable directory refused with the file named."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshctl.security.ca import CertificateAuthority, self_signed_root
from meshctl.security.cadir import CaDirectoryError, open_ca_directory, read_token_key

NOW = datetime.datetime.now(datetime.UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_absent_directory_gets_a_ca_kept_across_restarts(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "ca"
    first = open_ca_directory(directory, "example.org")
    assert first.created and mode(directory) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem", "token-key.pem"]
    assert all(mode(p) == 0o600 for p in directory.iterdir())
    root = x509.load_pem_x509_certificate((directory / "root-cert.pem").read_bytes())
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "example.org"
    assert (directory / "ca-cert.pem").read_bytes() == (directory / "root-cert.pem").read_bytes()
    again = open_ca_directory(directory, "example.org")
    assert not again.created
    assert again.bundle.cert == first.bundle.cert and again.bundle.roots_pem == first.bundle.roots_pem
    assert again.token_key.private_numbers() == first.token_key.private_numbers()
    assert read_token_key(directory).private_numbers() == first.token_key.private_numbers()


def test_an_empty_existing_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir(mode=0o755)
    assert open_ca_directory(tmp_path / "ca", "cluster.local").created
    assert mode(tmp_path / "ca") == 0o700


def _write(directory: Path, **files: bytes) -> None:
    directory.mkdir(exist_ok=True)
    for name, data in files.items():
        (directory / name.removesuffix("_pem").replace("_", "-")).with_suffix(".pem").write_bytes(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _intermediate(root_key: ec.EllipticCurvePrivateKey, root: x509.Certificate, *, ca: bool = True
                  ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "intermediate")]))
        .issuer_name(root.subject).public_key(key.public_key()).serial_number(42)
        .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def test_istios_cacerts_layout_is_used_as_it_is(tmp_path: Path) -> None:
    root_key, root = self_signed_root("cluster.local")
    key, intermediate = _intermediate(root_key, root)
    directory = tmp_path / "cacerts"
    _write(directory, ca_cert_pem=_pem(intermediate), ca_key_pem=_key_pem(key), root_cert_pem=_pem(root),
           cert_chain_pem=_pem(intermediate) + _pem(root))
    opened = open_ca_directory(directory, "cluster.local")
    assert not opened.created and opened.bundle.chain == (intermediate, root)
    chain = CertificateAuthority(opened.bundle).sign_csr(_csr(), ["spiffe://cluster.local/ns/a/sa/b"])
    assert [x509.load_pem_x509_certificate(pem.encode()) for pem in chain[1:]] == [intermediate, root, root]
    assert (directory / "token-key.pem").exists() and mode(directory / "token-key.pem") == 0o600


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def test_unusable_directories_are_refused_naming_the_file(tmp_path: Path) -> None:
    root_key, root = self_signed_root("cluster.local")
    other_key = ec.generate_private_key(ec.SECP256R1())
    _, stranger_root = self_signed_root("elsewhere")
    leaf_key, not_a_ca = _intermediate(root_key, root, ca=False)
    cases = {
        "partial": ({"ca_cert_pem": _pem(root)}, r"missing ca-key.pem, root-cert.pem"),
        "wrong-key": ({"ca_cert_pem": _pem(root), "ca_key_pem": _key_pem(other_key), "root_cert_pem": _pem(root)},
                      r"ca-key.pem is not the key of .*ca-cert.pem"),
        "not-a-ca": ({"ca_cert_pem": _pem(not_a_ca), "ca_key_pem": _key_pem(leaf_key), "root_cert_pem": _pem(root)},
                     r"ca-cert.pem is not a CA certificate"),
        "foreign-root": ({"ca_cert_pem": _pem(root), "ca_key_pem": _key_pem(root_key),
                          "root_cert_pem": _pem(stranger_root)}, r"ca-cert.pem does not chain to any root in"),
        "garbage": ({"ca_cert_pem": b"hello", "ca_key_pem": _key_pem(root_key), "root_cert_pem": _pem(root)},
                    r"ca-cert.pem: not PEM certificates"),
        "bad-key": ({"ca_cert_pem": _pem(root), "ca_key_pem": b"nope", "root_cert_pem": _pem(root)},
                    r"ca-key.pem: not an unencrypted PEM private key"),
    }
    for name, (files, message) in cases.items():
        _write(tmp_path / name, **files)
        with pytest.raises(CaDirectoryError, match=message):
            open_ca_directory(tmp_path / name, "cluster.local")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CaDirectoryError, match="not a directory"):
        open_ca_directory(tmp_path / "file", "cluster.local")


def test_minting_needs_the_ca_directory(tmp_path: Path) -> None:
    with pytest.raises(CaDirectoryError, match=r"no token-key.pem in .*: start `meshctl serve --ca-dir"):
        read_token_key(tmp_path)
