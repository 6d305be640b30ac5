"""A real `meshctl serve` with its CA on a TLS port, and a client that speaks Istio's
CreateCertificate to it the way istio-agent does (TLS verified against the mesh root under
istiod's name, the token as a bearer credential)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from meshctl.loopback import ControlPlane, http_get
from meshctl.prometheus import samples
from meshctl.security.cadir import read_token_key
from meshctl.security.tokens import TokenSigner
from meshctl.wire import ca_pb2, ca_pb2_grpc


class CaServe(ControlPlane):
    """`meshctl serve --ca-address` on an empty mesh, and a CA client's view of it."""

    @property
    def roots(self) -> bytes:
        return (self.ca_dir / "root-cert.pem").read_bytes()

    def signer(self) -> TokenSigner:
        return TokenSigner(read_token_key(self.ca_dir))

    def channel(self) -> grpc.Channel:
        return grpc.secure_channel(f"127.0.0.1:{self.ca_port}", grpc.ssl_channel_credentials(self.roots),
                                   options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")])

    def metrics(self) -> dict[str, float]:
        """`/metrics` as sample name (labels included) → value."""
        status, text = http_get(f"{self.debug_url}/metrics")
        assert status == 200
        return samples(text)


def create_certificate(stub: ca_pb2_grpc.IstioCertificateServiceStub, csr: str, token: str | None,
                       ttl: int = 0, extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """One CreateCertificate call as istio-agent makes it."""
    metadata = [("clusterid", "Kubernetes"), *extra]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    request = ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=ttl)
    return list(stub.CreateCertificate(request, metadata=metadata, timeout=10).cert_chain)
