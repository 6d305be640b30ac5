"""SDS over ADS for gateways: the certificates a `credentialName` names, from Kubernetes Secrets.

istiod serves a gateway the Secrets its Gateways (and DestinationRules) name, and nobody else:
the Secret must sit in the gateway's own namespace (or, for Gateway API gateways, in one whose
ReferenceGrant lets that namespace's Gateways use it) and the gateway must have proved, with its
connection's credential, that it runs as a service account of that namespace (a node id says
nothing). meshctl serve keeps the same rules; they are the one way a private key it did not make
leaves it, as the gateway's certificate is the operator's secret for that gateway.

A certificate comes from the keys `cert`/`key`, else `tls.crt`/`tls.key`; the CA certificate a
MUTUAL server checks clients against (`NAME-cacert`) from the Secret `NAME-cacert`, else `NAME`,
keys `cacert`, else `ca.crt` (Istio's pilot/pkg/credentials/kube).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshctl.config.kinds.kubernetes import Secret, SecretValue
from meshctl.generate.context import ProxyContext
from meshctl.generate.gateway.tls import CA_SUFFIX, KUBERNETES_GATEWAY_SECRET, KUBERNETES_SECRET
from meshctl.model.gatewayapi import reference_granted

__all__ = ["WITHHELD", "ca_secret", "certificate_secret", "gateway_secrets"]

_CERT_KEYS = (("cert", "key"), ("tls.crt", "tls.key"))
# How a warning about a secret not sent begins: serve logs these (the gateway's TLS is down).
WITHHELD = "secret "
_CA_KEYS = (("cacert", "crl"), ("ca.crt", "ca.crl"))


def gateway_secrets(ctx: ProxyContext, names: Iterable[str],
                    service_accounts: Mapping[str, str] | None = None) -> list[secret_pb2.Secret]:
    """The secrets named, each as Envoy takes it over SDS; a secret the gateway may not have, or
    that does not exist, is left out with a warning (Envoy then waits for it, and the listener
    serves no TLS: the same as with istiod). `service_accounts` are those some secrets require
    of the gateway's proven identity (the Gateways Istio deploys for Gateway API Gateways)."""
    out: list[secret_pb2.Secret] = []
    proxy = ctx.proxy
    for name in names:
        if name.startswith(KUBERNETES_SECRET):
            namespace, secret = proxy.namespace, name[len(KUBERNETES_SECRET):]
        elif name.startswith(KUBERNETES_GATEWAY_SECRET):
            namespace, _, secret = name[len(KUBERNETES_GATEWAY_SECRET):].partition("/")
        else:
            ctx.warnings.append(f"secret {name}: only kubernetes:// and kubernetes-gateway:// credentials are served")
            continue
        if not proxy.verified_namespace:
            ctx.warnings.append(f"secret {name} not sent: the gateway has not proved its identity "
                                "(connect it over TLS with its workload certificate)")
            continue
        if proxy.verified_namespace != proxy.namespace or not _allowed(ctx, name, namespace, secret):
            ctx.warnings.append(f"secret {name} not sent: a gateway is only given Secrets of its own namespace "
                                f"({proxy.namespace}), to an identity of that namespace, or those a ReferenceGrant "
                                "lets its Gateways use")
            continue
        account = (service_accounts or {}).get(name)
        if account and not proxy.verified_identity.endswith(f"/sa/{account}"):
            ctx.warnings.append(f"secret {name} not sent: its Gateway is served by the service account {account}, "
                                "which the gateway has not proved to be")
            continue
        built = _ca_secret(ctx, name, namespace, secret) if secret.endswith(CA_SUFFIX) else \
            _certificate_secret(ctx, name, namespace, secret)
        if built is not None:
            out.append(built)
    return out


def _allowed(ctx: ProxyContext, name: str, namespace: str, secret: str) -> bool:
    """A Secret of the gateway's namespace, or (`kubernetes-gateway://`) one of another namespace
    that a ReferenceGrant there opens to the Gateways of the gateway's namespace."""
    proxy = ctx.proxy
    if namespace == proxy.namespace:
        return True
    if not name.startswith(KUBERNETES_GATEWAY_SECRET):
        return False
    return reference_granted(ctx.snapshot.reference_grants, "Gateway", proxy.namespace, "Secret", namespace,
                             secret.removesuffix(CA_SUFFIX))


def _lookup(ctx: ProxyContext, namespace: str, name: str) -> Secret | None:
    resource = ctx.snapshot.secrets.get((namespace, name))
    return resource.view_as(Secret) if resource is not None else None


def _certificate_secret(ctx: ProxyContext, resource_name: str, namespace: str, name: str) -> secret_pb2.Secret | None:
    found = _lookup(ctx, namespace, name)
    if found is None:
        ctx.warnings.append(f"secret {resource_name}: no Secret {namespace}/{name} in the inputs")
        return None
    for cert_key, private_key in _CERT_KEYS:
        chain, key = found.value(cert_key), found.value(private_key)
        if chain is not None and key is not None:
            return certificate_secret(resource_name, chain, key, found.value("tls.ocsp-staple"))
    ctx.warnings.append(f"secret {resource_name}: Secret {namespace}/{name} has neither tls.crt and tls.key "
                        "nor cert and key")
    return None


def _ca_secret(ctx: ProxyContext, resource_name: str, namespace: str, name: str) -> secret_pb2.Secret | None:
    found = _lookup(ctx, namespace, name) or _lookup(ctx, namespace, name[:-len(CA_SUFFIX)])
    if found is None:
        ctx.warnings.append(f"secret {resource_name}: no Secret {namespace}/{name} or "
                            f"{namespace}/{name[:-len(CA_SUFFIX)]} in the inputs")
        return None
    for ca_key, crl_key in _CA_KEYS:
        ca = found.value(ca_key)
        if ca is not None:
            return ca_secret(resource_name, ca, found.value(crl_key))
    ctx.warnings.append(f"secret {resource_name}: the Secret has neither ca.crt nor cacert")
    return None


def certificate_secret(name: str, chain: SecretValue, key: SecretValue,
                       ocsp_staple: SecretValue | None = None) -> secret_pb2.Secret:
    """A certificate and its key, inline."""
    out = secret_pb2.Secret(name=name)
    out.tls_certificate.certificate_chain.inline_bytes = chain.reveal()
    out.tls_certificate.private_key.inline_bytes = key.reveal()
    if ocsp_staple is not None:
        out.tls_certificate.ocsp_staple.inline_bytes = ocsp_staple.reveal()
    return out


def ca_secret(name: str, ca: SecretValue, crl: SecretValue | None = None) -> secret_pb2.Secret:
    """The CA certificates that client certificates are checked against (and a CRL), inline."""
    out = secret_pb2.Secret(name=name)
    out.validation_context.trusted_ca.inline_bytes = ca.reveal()
    if crl is not None:
        out.validation_context.crl.inline_bytes = crl.reveal()
    return out
