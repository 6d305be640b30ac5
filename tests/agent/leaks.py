"""Finding private key material in text and bytes: PEM private key blocks, and every encoding of
the keys a test knows (DER in PKCS#8 and SEC1, base64 and base64url of those, the private
scalar in hex and base64)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def encodings(key: ec.EllipticCurvePrivateKey) -> dict[str, bytes]:
    """Byte strings any one of which, found in an output, means the key leaked into it."""
    forms: dict[str, bytes] = {}
    for name, form in (("pkcs8", serialization.PrivateFormat.PKCS8),
                       ("sec1", serialization.PrivateFormat.TraditionalOpenSSL)):
        der = key.private_bytes(serialization.Encoding.DER, form, serialization.NoEncryption())
        forms[f"{name} DER"] = der
        forms[f"{name} base64"] = base64.b64encode(der)
        forms[f"{name} base64url"] = base64.urlsafe_b64encode(der).rstrip(b"=")
        pem = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
        body = b"".join(pem.splitlines()[1:-1])
        forms[f"{name} PEM line"] = pem.splitlines()[1]  # the first 64 characters, as a PEM prints them
        forms[f"{name} PEM body"] = body
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    forms["scalar"] = scalar
    forms["scalar hex"] = scalar.hex().encode()
    forms["scalar HEX"] = scalar.hex().upper().encode()
    forms["scalar base64"] = base64.b64encode(scalar).rstrip(b"=")
    forms["scalar base64url"] = base64.urlsafe_b64encode(scalar).rstrip(b"=")
    return forms


def findings(outputs: Mapping[str, bytes], keys: Mapping[str, ec.EllipticCurvePrivateKey]) -> list[str]:
    """`source: what` for every output holding a PEM private key block or an encoding of a key."""
    found = []
    known = {f"{key_name} {form}": data for key_name, key in keys.items() for form, data in encodings(key).items()}
    for source, data in outputs.items():
        if PEM_PRIVATE_KEY.search(data):
            found.append(f"{source}: a PEM private key block")
        found.extend(f"{source}: {what}" for what, needle in known.items() if needle in data)
    return found


def texts(pairs: Iterable[tuple[str, bytes | str]]) -> dict[str, bytes]:
    return {name: value.encode() if isinstance(value, str) else value for name, value in pairs}
