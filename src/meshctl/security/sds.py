"""Envoy's Secret Discovery Service: workload certificates (`default`) and roots (`ROOTCA`).

In Istio the istio-agent next to each Envoy serves these over a Unix socket; meshctl's
bootstraps point the `sds-grpc` cluster at `meshctl serve` instead, which answers from its own
CA. Identity comes from node metadata (`NAMESPACE`, `SERVICE_ACCOUNT`), as the injector writes it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc
from envoy.config.core.v3 import base_pb2 as core_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

from meshctl.model.node import claimed_account
from meshctl.model.secrets import ROOT_CERTIFICATE, WORKLOAD_CERTIFICATE
from meshctl.resources import SECRET

if TYPE_CHECKING:
    from meshctl.security.ca import CertificateAuthority, IssuedCertificate

log = logging.getLogger("meshctl.sds")


def identity_of(node: core_pb2.Node, trust_domain: str) -> str:
    """The SPIFFE id of a node, from the metadata the injector (or `meshctl bootstrap`) sets."""
    from meshctl.security.ca import spiffe_id  # loaded with the CA, on the first secret asked for

    return spiffe_id(trust_domain, *claimed_account(node))


class SecretService(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    """SotW SDS: answers every new subscription with freshly issued (cached) secrets.

    The CA is created on first use (`make_ca`), keeping key generation and the cryptography
    import out of the control plane's start-up.
    """

    def __init__(self, make_ca: Callable[[], CertificateAuthority],
                 identify: Callable[[core_pb2.Node], str] | None = None) -> None:
        self._make_ca = make_ca
        self._ca: CertificateAuthority | None = None
        self.identify = identify or (lambda node: identity_of(node, self.ca.trust_domain))
        self.issued: dict[str, IssuedCertificate] = {}
        self._nonces = itertools.count(1)

    @property
    def ca(self) -> CertificateAuthority:
        if self._ca is None:
            self._ca = self._make_ca()
        return self._ca

    def secret(self, name: str, identity: str) -> secret_pb2.Secret | None:
        if name == ROOT_CERTIFICATE:
            secret = secret_pb2.Secret(name=ROOT_CERTIFICATE)
            secret.validation_context.trusted_ca.inline_bytes = self.ca.root_pem
            return secret
        if name == WORKLOAD_CERTIFICATE:
            issued = self.issued.get(identity)
            if issued is None:
                issued = self.issued[identity] = self.ca.issue(identity)
            secret = secret_pb2.Secret(name=WORKLOAD_CERTIFICATE)
            secret.tls_certificate.certificate_chain.inline_bytes = issued.chain_pem
            secret.tls_certificate.private_key.inline_bytes = issued.key_pem
            return secret
        return None

    def _response(self, names: list[str], identity: str) -> discovery_pb2.DiscoveryResponse:
        response = discovery_pb2.DiscoveryResponse(type_url=SECRET, nonce=str(next(self._nonces)))
        versions = []
        for name in names:
            secret = self.secret(name, identity)
            if secret is None:
                continue
            response.resources.append(any_pb2.Any(type_url=SECRET, value=secret.SerializeToString()))
            versions.append(f"{name}:{self.issued[identity].serial if name == WORKLOAD_CERTIFICATE else 'root'}")
        response.version_info = ",".join(versions)
        return response

    async def StreamSecrets(self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
                            context: grpc.aio.ServicerContext) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        node: core_pb2.Node | None = None
        subscribed: tuple[str, ...] = ()
        async for request in request_iterator:
            if request.HasField("node") and request.node.id:
                node = request.node
            if request.HasField("error_detail"):
                log.warning("secret rejected", extra={"node": node.id if node else "", "error": request.error_detail.message})
                continue
            names = tuple(request.resource_names)
            if request.response_nonce and names == subscribed:
                continue
            subscribed = names
            identity = self.identify(node or core_pb2.Node())
            yield self._response(list(names), identity)

    async def FetchSecrets(self, request: discovery_pb2.DiscoveryRequest,
                           context: grpc.aio.ServicerContext) -> discovery_pb2.DiscoveryResponse:
        return self._response(list(request.resource_names), self.identify(request.node))


def register(server: grpc.aio.Server, service: SecretService) -> None:
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(service, server)
