"""The certificate a TLS server presents, read without verifying it (for `--insecure`).

gRPC's TLS credentials always verify the server. To skip that on request, as istioctl's
`--insecure` does, the client first reads the server's own certificate over a plain TLS
handshake and then gives gRPC exactly that certificate as the root to trust, with a name it
carries: the channel is encrypted to that server and nothing is checked about who it is.
"""

from __future__ import annotations

import socket
import ssl

__all__ = ["presented_certificate"]


def presented_certificate(address: str, server_name: str, timeout: float) -> tuple[bytes, str]:
    """The PEM certificate the server at `HOST:PORT` presents (asked with SNI `server_name` and
    ALPN h2, as gRPC asks), and a name it is valid for. Raises OSError when there is no TLS
    server to ask."""
    from cryptography import x509

    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as connection:
            der = connection.getpeercert(binary_form=True)
    if not der:
        raise OSError("the server presented no certificate")
    certificate = x509.load_der_x509_certificate(der)
    return ssl.DER_cert_to_PEM_cert(der).encode(), _a_name_of(certificate, server_name)


def _a_name_of(certificate: object, preferred: str) -> str:
    """`preferred` if the certificate carries it, else its first DNS name, IP address or CN:
    the name gRPC then checks it against."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    assert isinstance(certificate, x509.Certificate)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        dns = names.get_values_for_type(x509.DNSName)
        if preferred in dns:
            return preferred
        if dns:
            return str(dns[0])
        addresses = names.get_values_for_type(x509.IPAddress)
        if addresses:
            return str(addresses[0])
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else preferred
