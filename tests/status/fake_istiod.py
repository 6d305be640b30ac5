"""A stand-in for istiod's debug answers over ADS, plaintext or TLS, to test the client alone.

It answers every `istio.io/debug/*` request with a canned response and records what it was
asked (the request and the call's metadata), so tests can check the node a debug client
presents and the bearer token it sends on 15012.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from envoy.service.discovery.v3 import discovery_pb2

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"

Answer = Callable[[Any], Any]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass(frozen=True)
class Authority:
    """A throwaway CA (the mesh's root, as istiod's self-signed CA would be) that signs leaves."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str = "cluster.local") -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return cls(key, certificate)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, dns_name: str) -> tuple[bytes, bytes]:
        """(key PEM, certificate PEM) of a leaf for `dns_name`, signed by this authority."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(_name(dns_name)).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        return _pem_key(key), certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeIstiod:
    """A gRPC server on 127.0.0.1 answering ADS debug requests with `answer(request)`.

    With `tls`, it serves a certificate for `name` signed by `root`, and asks clients for a
    certificate signed by `client_root` when one is given.

    `answer` may return None to keep silent (the client then hits its deadline); `close` ends
    the stream after the first answer.
    """

    answer: Answer
    close: bool = False
    tls: bool = False
    token: str | None = None
    name: str = "istiod.istio-system.svc"
    root: Authority = field(default_factory=Authority.create)
    client_root: Authority | None = None
    requests: list[Any] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: Any = None

    def __enter__(self) -> FakeIstiod:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                   options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])  # fmt: skip
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
            response_serializer=discovery_pb2.DiscoveryResponse.SerializeToString,
        )  # fmt: skip
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"StreamAggregatedResources": handler}),)
        )
        if self.tls:
            key, cert = self.root.issue(self.name)
            clients = self.client_root.pem if self.client_root else None
            credentials = grpc.ssl_server_credentials([(key, cert)], clients, require_client_auth=clients is not None)
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _stream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        metadata = dict(context.invocation_metadata())
        self.metadata.append(metadata)
        if self.token is not None and metadata.get("authorization") != f"Bearer {self.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "authentication failure")
        for request in requests:
            self.requests.append(request)
            response = self.answer(request)
            if response is None:
                while context.is_active():  # silent until the client gives up
                    time.sleep(0.02)
                return
            yield response
            if self.close:
                return
