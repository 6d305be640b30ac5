"""The agent's side of `IstioCertificateService/CreateCertificate`: TLS to the CA, the token as a
bearer credential, istio-agent's retries.

As istio-agent does: the token comes from a TokenSource (meshctl.agent.tokens), asked afresh
for every call; the CA's certificate is verified against the mesh root given to the agent,
under the name `istiod.istio-system.svc` when the address is an IP or names localhost; transient failures are retried up to five times, from 100 ms doubling,
with 10% jitter, and refusals (UNAUTHENTICATED, INVALID_ARGUMENT) are not retried here.
"""

from __future__ import annotations

import asyncio
import logging
import random

import grpc

from meshctl.agent.tokens import TokenSource
from meshctl.errors import MeshctlError
from meshctl.security.istiod import ISTIOD_NAMES
from meshctl.wire import ca_pb2, ca_pb2_grpc

__all__ = ["ATTEMPTS", "CALL_TIMEOUT", "CaCallError", "CaClient", "FIRST_BACKOFF", "TRANSIENT", "server_name"]

log = logging.getLogger("meshctl.agent")

TRANSIENT = frozenset({grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE})
ATTEMPTS = 5
FIRST_BACKOFF = 0.1
CALL_TIMEOUT = 10.0


class CaCallError(MeshctlError):
    """The CA refused or could not be reached; `code` is the gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def server_name(address: str) -> str:
    """The name to verify the CA's certificate under: its host, unless that is an IP or a
    localhost name (then istiod's own service name, which serve's certificate carries)."""
    from meshctl.config.values import is_ip

    host = address.rpartition(":")[0].strip("[]") or address
    return ISTIOD_NAMES[0] if is_ip(host) or "localhost" in host else host


class CaClient:
    """One TLS channel to the CA; `certify` turns a CSR into the CA's chain.

    The channel starts connecting when made, not at the first call: the TCP and TLS handshakes
    run in grpc's own threads while the agent loads cryptography and makes its key and CSR, so
    the first call costs one round trip (at an agent's start, some 10 ms sooner)."""

    def __init__(self, address: str, roots_pem: bytes, token: TokenSource, *, cluster_id: str = "Kubernetes") -> None:
        self.address = address
        self.token = token
        self.cluster_id = cluster_id
        credentials = grpc.ssl_channel_credentials(root_certificates=roots_pem)
        options = [("grpc.ssl_target_name_override", server_name(address))]
        self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._channel.get_state(try_to_connect=True)

    async def certify(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        """The CA's answer (leaf first, roots last), or CaCallError after the retries."""
        delay = FIRST_BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._call(csr_pem, ttl_seconds)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if code not in TRANSIENT or attempt == ATTEMPTS:
                    raise CaCallError(code, f"the CA at {self.address} answered {code.name}: {details}") from None
                log.info("CA call failed; retrying", extra={"code": code.name, "attempt": attempt, "detail": details})
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))
            delay *= 2
        raise AssertionError("unreachable")

    async def _call(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        request = ca_pb2.IstioCertificateRequest(csr=csr_pem, validity_duration=ttl_seconds)
        request.metadata.update({"CertSigner": ""})
        metadata = [("clusterid", self.cluster_id)]
        token = self.token()
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        answer = await self._stub.CreateCertificate(request, metadata=metadata, timeout=CALL_TIMEOUT)
        return list(answer.cert_chain)

    async def close(self) -> None:
        await self._channel.close()
