"""`proxy-config secret`: istioctl's SDS secret summary (`compare/sds/{util,writer}.go`).

VALID CERT depends on the time, so the clock is a parameter. With `wide`, meshctl adds what
istioctl leaves out: the SANs, the days left, and whether a certificate chain reaches the
proxy's ROOTCA (each certificate signed by the next, the last one by a ROOTCA certificate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from meshctl.inspect.certs import CertFacts, all_certificates, cert_facts, chain_reaches, first_certificate
from meshctl.inspect.configdump import ConfigDump
from meshctl.inspect.tabwriter import tabulate

__all__ = ["NO_SECRETS", "ROOTCA", "SecretItem", "secret_items", "secrets_table"]

NO_SECRETS = "No active or warming secrets found.\n"
ROOTCA = "ROOTCA"
_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class SecretItem:
    """One row: a secret, or one trust domain of a SPIFFE trust bundle secret."""

    name: str
    state: str
    pem: bytes
    trust_domain: str
    facts: CertFacts | None


def secret_items(secrets: Any) -> list[SecretItem]:
    """Warming secrets, then active ones, as istioctl lists them.

    The certificate comes from the TLS certificate chain, else the validation context's trusted
    CA, else one row per trust domain of a SPIFFE validator. Secrets whose `version_info` is
    `uninitialized` still show ACTIVE: istioctl marks them on a copy that it then discards.
    """
    items = []
    for state, group in (("WARMING", secrets.dynamic_warming_secrets), ("ACTIVE", secrets.dynamic_active_secrets)):
        for secret in group:
            items.extend(_items(secret, state))
    return items


def secrets_table(dump: ConfigDump, now: datetime, prefixed: bool = False, wide: bool = False) -> str:
    """RESOURCE NAME / TYPE / STATUS / VALID CERT / SERIAL NUMBER / NOT AFTER / NOT BEFORE.

    TRUST DOMAIN is added only when every row has one (SPIFFE bundles); `prefixed` is the
    `proxy-config all` form (`secret/<name>`); `wide` appends SANS / DAYS LEFT / ROOTCA CHAIN.
    """
    secrets = dump.secrets()
    if not secrets.dynamic_active_secrets and not secrets.dynamic_warming_secrets:
        return NO_SECRETS
    items = secret_items(secrets)
    with_trust_domain = bool(items) and all(item.trust_domain for item in items)
    roots = _rootca_certificates(items)
    columns = ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"]
    if with_trust_domain:
        columns.append("TRUST DOMAIN")
    if wide:
        columns += ["SANS", "DAYS LEFT", "ROOTCA CHAIN"]
    lines = ["\t".join(columns) + "\n"]
    for item in items:
        cells = [f"secret/{item.name}" if prefixed else item.name, *_istioctl_cells(item, now)]
        if with_trust_domain:
            cells.append(item.trust_domain)
        if wide:
            cells += _wide_cells(item, now, roots)
        lines.append("\t".join(cells) + "\n")
    return tabulate("".join(lines), padding=5)


def _items(secret: Any, state: str) -> list[SecretItem]:
    from envoy.extensions.transport_sockets.tls.v3.secret_pb2 import Secret

    typed = Secret.FromString(secret.secret.value)
    chain = typed.tls_certificate.certificate_chain.inline_bytes
    trusted = typed.validation_context.trusted_ca.inline_bytes
    if chain or trusted:
        pem = chain or trusted
        facts = _facts(pem)
        return [SecretItem(secret.name, state, pem, "" if facts is None else facts.trust_domain, facts)]
    bundles = _spiffe_bundles(typed)
    if not bundles:
        return [SecretItem(secret.name, state, b"", "", None)]
    return [SecretItem(secret.name, state, pem, domain, _facts(pem)) for domain, pem in bundles]


def _facts(pem: bytes) -> CertFacts | None:
    """What istioctl reads: the first PEM block, when it is a certificate."""
    certificate = first_certificate(pem)
    return None if certificate is None else cert_facts(certificate)


def _spiffe_bundles(secret: Any) -> list[tuple[str, bytes]]:
    from envoy.extensions.transport_sockets.tls.v3.tls_spiffe_validator_config_pb2 import (
        SPIFFECertValidatorConfig,
    )

    validator = secret.validation_context.custom_validator_config
    if not validator.HasField("typed_config"):
        return []
    config = SPIFFECertValidatorConfig.FromString(validator.typed_config.value)
    return [(domain.name, domain.trust_bundle.inline_bytes) for domain in config.trust_domains]


def _istioctl_cells(item: SecretItem, now: datetime) -> list[str]:
    facts = item.facts
    if facts is None:
        return ["", item.state, "false", "", "", ""]
    kind = "CA" if facts.is_ca else "Cert Chain"
    valid = "true" if facts.valid_at(now) else "false"
    return [
        kind,
        item.state,
        valid,
        facts.serial_number,
        facts.not_after.strftime(_RFC3339),
        facts.not_before.strftime(_RFC3339),
    ]


def _wide_cells(item: SecretItem, now: datetime, roots: list[x509.Certificate]) -> list[str]:
    facts = item.facts
    if facts is None:
        return ["-", "-", "-"]
    sans = ",".join(facts.sans) or "-"
    if facts.is_ca or not roots:
        reaches = "-"
    else:
        reaches = "yes" if chain_reaches(all_certificates(item.pem), roots) else "no"
    return [sans, str(facts.days_left(now)), reaches]


def _rootca_certificates(items: list[SecretItem]) -> list[x509.Certificate]:
    return [certificate for item in items if item.name == ROOTCA for certificate in all_certificates(item.pem)]
