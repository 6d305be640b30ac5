"""The CA's gRPC face: istiod's `IstioCertificateService/CreateCertificate` on a TLS port.

Each call is authenticated first (the identity comes from the caller's credential, never from
the CSR), then signed by the CertificateAuthority. Refusals follow istiod: a caller who proves
nothing gets UNAUTHENTICATED "request authenticate failure" (the reason is logged, not told); a
CSR that does not parse or verify, asks for someone else's identity or too long a lifetime gets
INVALID_ARGUMENT "CSR signing error (<reason>)". Every refusal is logged and counted.

Authentication may block (a TokenReview is an HTTP call) and signing is CPU work, so both run in
a small thread pool: xDS, served by the same event loop, never waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from meshctl.errors import MeshctlError
from meshctl.prometheus import Counter, Gauge, Metric
from meshctl.security.authenticate import AuthenticationError, Authenticator, Credentials
from meshctl.security.ca import CertificateAuthority, CsrError
from meshctl.wire import ca_pb2, ca_pb2_grpc

__all__ = ["AUTHENTICATION_FAILURE", "CaMetrics", "CaServer", "CertificateService", "Refusal", "UNAUTHENTICATED"]

log = logging.getLogger("meshctl.ca")

AUTHENTICATION_FAILURE = "request authenticate failure"
UNAUTHENTICATED = "unauthenticated"
_MAX_LOGGED = 300


class CaMetrics:
    """The CA's counters, named as istiod's (`citadel_server_*`), plus refusals by reason."""

    def __init__(self) -> None:
        self.csrs = Counter("citadel_server_csr_count", "CSRs received.")
        self.authentication_failures = Counter("citadel_server_authentication_failure_count",
                                               "CSRs whose caller proved no identity.")
        self.parsing_errors = Counter("citadel_server_csr_parsing_err_count", "CSRs that did not parse or verify.")
        self.sign_errors = Counter("citadel_server_csr_sign_err_count",
                                   "CSRs refused or failed at signing, by error type.", ["error_type"])
        self.issued = Counter("citadel_server_success_cert_issuance_count", "Certificates issued.")
        self.refusals = Counter("meshctl_ca_refusals_total", "CSRs refused, by reason.", ["reason"])
        self.root_expiry = Gauge("citadel_server_root_cert_expiry_timestamp",
                                 "When the root certificate expires (Unix time).")

    def all(self) -> tuple[Metric, ...]:
        return (self.csrs, self.authentication_failures, self.parsing_errors, self.sign_errors, self.issued,
                self.refusals, self.root_expiry)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call the CA will not answer with certificates: the status and message the caller gets,
    a short reason (for metrics) and the detail (for the log)."""

    code: grpc.StatusCode
    message: str
    reason: str
    detail: str


def _credentials(context: grpc.aio.ServicerContext) -> Credentials:
    metadata: dict[str, tuple[str, ...]] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            metadata[key.lower()] = (*metadata.get(key.lower(), ()), value)
    return Credentials(metadata, context.peer() or "")


class CertificateService:
    """Authenticates, signs, counts and logs; `issue` does the work and may be called directly."""

    def __init__(self, authority: CertificateAuthority, authenticator: Authenticator, *,
                 metrics: CaMetrics | None = None, workers: int = 4) -> None:
        self.authority = authority
        self.authenticator = authenticator
        self.metrics = metrics or CaMetrics()
        self.metrics.root_expiry.set(authority.bundle.cert.not_valid_after_utc.timestamp())
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="meshctl-ca")

    async def CreateCertificate(self, request: ca_pb2.IstioCertificateRequest,  # noqa: N802 (gRPC's name)
                                context: grpc.aio.ServicerContext) -> ca_pb2.IstioCertificateResponse:
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._executor, self.issue, request, _credentials(context))
        if not isinstance(outcome, Refusal):
            return ca_pb2.IstioCertificateResponse(cert_chain=outcome)
        await context.abort(outcome.code, outcome.message)
        raise AssertionError("abort raises")

    def issue(self, request: ca_pb2.IstioCertificateRequest, credentials: Credentials) -> list[str] | Refusal:
        """The certificate chain for this request, or why not."""
        self.metrics.csrs.inc()
        try:
            caller = self.authenticator.authenticate(credentials)
        except AuthenticationError as exc:
            self.metrics.authentication_failures.inc()
            return self._refuse(Refusal(grpc.StatusCode.UNAUTHENTICATED, AUTHENTICATION_FAILURE, UNAUTHENTICATED,
                                        str(exc)), credentials)
        try:
            chain = self.authority.sign_csr(request.csr, caller.identities, request.validity_duration)
        except CsrError as exc:
            if exc.reason in ("malformed_csr", "bad_csr_signature"):
                self.metrics.parsing_errors.inc()
            else:
                self.metrics.sign_errors.inc(exc.reason)
            return self._refuse(Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"CSR signing error ({exc})", exc.reason,
                                        str(exc)), credentials, caller.identities)
        except (MeshctlError, ValueError, TypeError) as exc:
            self.metrics.sign_errors.inc("internal")
            return self._refuse(Refusal(grpc.StatusCode.INTERNAL, f"CSR signing error ({exc})", "internal", str(exc)),
                                credentials, caller.identities)
        self.metrics.issued.inc()
        log.info("certificate issued", extra={"identity": ",".join(caller.identities), "peer": credentials.peer,
                                             "authenticator": caller.authenticator})
        return chain

    def _refuse(self, refusal: Refusal, credentials: Credentials, identities: Sequence[str] = ()) -> Refusal:
        self.metrics.refusals.inc(refusal.reason)
        extra: dict[str, Any] = {"reason": refusal.reason, "code": refusal.code.name, "peer": credentials.peer,
                                 "detail": refusal.detail[:_MAX_LOGGED]}
        if identities:
            extra["identity"] = ",".join(identities)
        log.warning("CSR refused", extra=extra)
        return refusal

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class CaServer:
    """A TLS gRPC server (istiod's 15012) offering the certificate service, and whatever else
    `extra` registers on it (serve offers xDS there too)."""

    def __init__(self, address: str, service: CertificateService, key_pem: bytes, chain_pem: bytes, *,
                 options: Sequence[tuple[str, Any]] = (),
                 extra: Sequence[Callable[[grpc.aio.Server], None]] = ()) -> None:
        self.address = address
        self.service = service
        self._credentials = grpc.ssl_server_credentials([(key_pem, chain_pem)])
        self._options = tuple(options)
        self._extra = tuple(extra)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        server = grpc.aio.server(options=self._options)
        ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(self.service, server)  # type: ignore[no-untyped-call]
        for register in self._extra:
            register(server)
        try:
            port = server.add_secure_port(self.address, self._credentials)
        except RuntimeError as exc:
            raise MeshctlError(f"cannot listen for the CA on {self.address}: {exc}") from None
        if not port:
            raise MeshctlError(f"cannot listen for the CA on {self.address}: the address is in use or not local")
        await server.start()
        self._server = server
        self.port = int(port)
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
        self.service.close()
