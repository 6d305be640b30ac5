"""The agent's SDS server: `default` and `ROOTCA` to its own Envoy, over a Unix socket, and the
certificates a DestinationRule names by file (`file-cert:CERT~KEY`, `file-root:PATH`), read
from the host's files when Envoy asks for them, as istio-agent serves them.

The protocol work is the project's xDS stream machinery (meshctl.xds): a snapshot cache whose
"configuration" is the current certificate, published again on every rotation, so each
subscribed stream pushes the new secret, tracks the ACK, and never pushes unchanged bytes
twice. Only SotW matters to Envoy (`api_type: GRPC`); Delta comes with the machinery.

The socket is the only way in. Its directory is made 0700 and the socket 0600 (Istio uses
0750/0666 inside a pod; on a shared host only the agent's own user may ask for the key). A
socket left by an agent that died is removed; one that answers belongs to a live agent and is
an error, never stolen (meshctl.agent.socketpath).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from envoy.config.core.v3 import base_pb2 as core_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshctl.agent import socketpath
from meshctl.errors import MeshctlError, UnknownProxyError
from meshctl.model.secrets import ROOT_CERTIFICATE, WORKLOAD_CERTIFICATE, file_certificate_paths, file_root_path
from meshctl.resources import SECRET, Packed, ProxyResources
from meshctl.xds import ads
from meshctl.xds.cache import SnapshotCache

if TYPE_CHECKING:
    from meshctl.agent.certificate import WorkloadCertificate  # cryptography: loaded after SDS listens

__all__ = ["AgentNodes", "FileBackedSecrets", "SYSTEM_ROOTS", "SdsServer", "SecretGeneration"]

log = logging.getLogger("meshctl.agent")

@dataclass(frozen=True, slots=True)
class _Node:
    """Any node is this agent's own Envoy: the socket lets no one else in."""

    key: str
    proxy: bool = True
    shown: Mapping[str, str] = field(default_factory=dict)
    refusal: str = ""


class AgentNodes:
    """The node identity plug-in of the agent's SDS server."""

    def identify(self, node: core_pb2.Node) -> _Node:
        return _Node(node.id or "envoy")

    def stand_in(self, key: str) -> core_pb2.Node:
        raise UnknownProxyError(f"the agent serves only its own Envoy, not {key}")


class SecretGeneration:
    """The secrets of one certificate, as the cache's current generation (its version is the
    leaf's serial number). Built once: every stream of the agent's Envoy shares them."""

    def __init__(self, certificate: WorkloadCertificate) -> None:
        self.version = f"{certificate.serial:x}"
        workload = secret_pb2.Secret(name=WORKLOAD_CERTIFICATE)
        workload.tls_certificate.certificate_chain.inline_bytes = certificate.chain_pem
        workload.tls_certificate.private_key.inline_bytes = certificate.key_pem()
        roots = secret_pb2.Secret(name=ROOT_CERTIFICATE)
        roots.validation_context.trusted_ca.inline_bytes = certificate.roots_pem
        self._secrets = {
            WORKLOAD_CERTIFICATE: _packed(workload, self.version),
            ROOT_CERTIFICATE: _packed(roots, hashlib.blake2b(certificate.roots_pem, digest_size=8).hexdigest()),
        }

    def resources_for(self, node: core_pb2.Node) -> ProxyResources:
        return {SECRET: FileBackedSecrets(self._secrets)}

    def origins(self, resource: Packed) -> list[str]:
        """None: the secrets come from the agent's certificate or the host's files, not from
        config files."""
        return []


# Where hosts keep their CA bundle (`file-root:system`), in the order istio-agent looks.
SYSTEM_ROOTS = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


class FileBackedSecrets(Mapping[str, Packed]):
    """The workload's secrets, plus any secret Envoy names by file, read when asked for: a
    DestinationRule's MUTUAL client certificate and key (`file-cert:`) or CA certificates
    (`file-root:`, `system` for the host's bundle). Files are the operator's, on the proxy's own
    host; they are read again on every push, so an edited file is served from the next
    certificate rotation on. A file that cannot be read is not served (Envoy keeps waiting for
    it, as with istio-agent) and the agent says which and why."""

    def __init__(self, fixed: Mapping[str, Packed]) -> None:
        self._fixed = fixed

    def __getitem__(self, name: str) -> Packed:
        found = self._fixed.get(name) or _file_secret(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        """The workload's own secrets: the file-backed ones cannot be listed, only looked up."""
        return iter(self._fixed)

    def __len__(self) -> int:
        """Unbounded (any readable file is a key), so the stream looks the names Envoy asks
        for up one by one rather than listing this mapping (see xds.state._within)."""
        return sys.maxsize


def _file_secret(name: str) -> Packed | None:
    secret = secret_pb2.Secret(name=name)
    try:
        paths = file_certificate_paths(name)
        if paths is not None:
            secret.tls_certificate.certificate_chain.inline_bytes = Path(paths[0]).read_bytes()
            secret.tls_certificate.private_key.inline_bytes = Path(paths[1]).read_bytes()
        else:
            root = file_root_path(name)
            if root is None:
                return None
            if root == "system":
                root = next((path for path in SYSTEM_ROOTS if os.path.exists(path)), SYSTEM_ROOTS[0])
            secret.validation_context.trusted_ca.inline_bytes = Path(root).read_bytes()
    except OSError as exc:
        log.warning("cannot serve a secret from files", extra={"secret": name, "error": exc.strerror or str(exc)})
        return None
    content = secret.SerializeToString()
    return Packed(name, hashlib.blake2b(content, digest_size=8).hexdigest(), SECRET, content)


def _packed(secret: secret_pb2.Secret, version: str) -> Packed:
    return Packed(secret.name, version, SECRET, secret.SerializeToString())


class SdsServer:
    """gRPC SDS on a Unix socket, serving whatever certificate was last published."""

    def __init__(self, path: str | Path) -> None:
        self.path = socketpath.checked(path)
        self.cache = SnapshotCache(AgentNodes())
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        await asyncio.to_thread(socketpath.claim, self.path)
        server = grpc.aio.server(options=(("grpc.so_reuseport", 0),))
        ads.register_secrets(server, ads.AdsServicer(self.cache))
        address = f"unix:{self.path}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise MeshctlError(f"cannot serve SDS on {self.path}: {exc}") from None
        if not bound:
            raise MeshctlError(f"cannot serve SDS on {self.path}")
        await server.start()
        os.chmod(self.path, 0o600)
        self._server = server
        log.info("serving SDS", extra={"socket": str(self.path)})

    def publish(self, certificate: WorkloadCertificate) -> None:
        """Serve this certificate from now on; every subscribed stream pushes it."""
        self.cache.publish(SecretGeneration(certificate))

    def acknowledged(self, name: str) -> bool | None:
        """Whether Envoy acknowledged the secret `name` (None: Envoy has not asked for it)."""
        watches = [stream.watches[SECRET] for stream in self.cache.streams if SECRET in stream.watches
                   and name in stream.watches[SECRET].names]
        if not watches:
            return None
        return all(watch.version_acked and not watch.error for watch in watches)

    async def stop(self) -> None:
        self.cache.close_all()
        await asyncio.sleep(0)
        if self._server is not None:
            await self._server.stop(0.5)
        with contextlib.suppress(OSError):
            self.path.unlink()
