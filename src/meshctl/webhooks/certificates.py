"""The webhook server's certificate, issued by the mesh's CA for the names the API server dials.

The API server calls `https://istiod.istio-system.svc:443/inject` and checks the certificate
against the webhook configuration's `caBundle`, the mesh's root (CA_DIR/root-cert.pem): so the
certificate names the Service (`istiod[-REV].NS.svc`), and its key is made by the CA object in
this process and stays here.
"""

from __future__ import annotations

from meshctl.security.ca import CertificateAuthority
from meshctl.webhooks.server import Credentials

__all__ = ["service_names", "serving_credentials"]


def service_names(service: str) -> list[str]:
    """The DNS names of a Service `NAME.NS.svc` as clients may spell it."""
    name, namespace = service.split(".")[:2]
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}"]


def serving_credentials(ca: CertificateAuthority, service: str) -> Credentials:
    """A fresh key and a certificate for `service`'s names, chained to the CA's roots."""
    key_pem, chain_pem = ca.server_certificate(service_names(service))
    return Credentials(chain_pem, key_pem)
