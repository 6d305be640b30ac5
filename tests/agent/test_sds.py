"""The agent's SDS server over a real Unix socket: it answers Envoy's SotW and Delta requests for
`default` and `ROOTCA`, pushes a new certificate to every stream watching it, tracks ACKs, and
guards its socket (a stale one is cleared, a live one refused, a too-long path named)."""

from __future__ import annotations

import asyncio
import datetime
import socket as sockets
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from meshctl.agent.certificate import BadAnswerError, WorkloadCertificate, certificate_request, new_key
from meshctl.agent.sds import SdsServer
from meshctl.errors import MeshctlError
from meshctl.resources import SECRET
from meshctl.security.ca import CertificateAuthority, self_signed_bundle

IDENTITY = "spiffe://cluster.local/ns/default/sa/web"
CA = CertificateAuthority(self_signed_bundle("cluster.local"))
NODE = base_pb2.Node(id="sidecar~127.0.0.1~web.default~default.svc.cluster.local")


def certificate() -> WorkloadCertificate:
    key = new_key()
    return WorkloadCertificate.from_answer(key, CA.sign_csr(certificate_request(key, IDENTITY), [IDENTITY], 3600))


@pytest.fixture
async def sds(tmp_path: Path) -> AsyncIterator[SdsServer]:
    server = SdsServer(tmp_path / "uds" / "socket")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def secrets(response: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    out = {}
    for resource in response.resources:
        secret = secret_pb2.Secret()
        resource.Unpack(secret)
        out[secret.name] = secret
    return out


def leaf_serial(secret: secret_pb2.Secret) -> int:
    return x509.load_pem_x509_certificates(secret.tls_certificate.certificate_chain.inline_bytes)[0].serial_number


async def test_sotw_answers_pushes_rotations_and_tracks_acks(sds: SdsServer) -> None:
    first = certificate()
    sds.publish(first)
    requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()

    async def outgoing() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            yield await requests.get()

    async with grpc.aio.insecure_channel(f"unix:{sds.path}") as channel:
        stream = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(outgoing())
        await requests.put(discovery_pb2.DiscoveryRequest(node=NODE, type_url=SECRET, resource_names=["default"]))
        response = await stream.read()
        held = secrets(response)
        assert list(held) == ["default"] and leaf_serial(held["default"]) == first.serial
        key = serialization.load_pem_private_key(held["default"].tls_certificate.private_key.inline_bytes, None)
        assert key.public_key() == first.key.public_key()
        assert held["default"].tls_certificate.private_key.inline_bytes.startswith(b"-----BEGIN EC PRIVATE KEY-----")
        assert sds.acknowledged("default") is False and sds.acknowledged("ROOTCA") is None
        await requests.put(discovery_pb2.DiscoveryRequest(type_url=SECRET, resource_names=["default"],
                                                          version_info=response.version_info,
                                                          response_nonce=response.nonce))
        await asyncio.sleep(0.05)
        assert sds.acknowledged("default") is True
        second = certificate()
        sds.publish(second)
        pushed = await asyncio.wait_for(stream.read(), 5)
        assert leaf_serial(secrets(pushed)["default"]) == second.serial and pushed.nonce != response.nonce
        await requests.put(discovery_pb2.DiscoveryRequest(type_url=SECRET, resource_names=["default", "ROOTCA"],
                                                          version_info=pushed.version_info,
                                                          response_nonce=pushed.nonce))
        roots = await asyncio.wait_for(stream.read(), 5)
        assert list(secrets(roots)) == ["ROOTCA"]  # only the newly asked-for name
        assert secrets(roots)["ROOTCA"].validation_context.trusted_ca.inline_bytes == CA.roots_pem
        stream.cancel()


async def test_delta_secrets_work_too(sds: SdsServer) -> None:
    sds.publish(certificate())

    async def one() -> AsyncIterator[discovery_pb2.DeltaDiscoveryRequest]:
        yield discovery_pb2.DeltaDiscoveryRequest(node=NODE, type_url=SECRET, resource_names_subscribe=["ROOTCA"])
        await asyncio.sleep(5)

    async with grpc.aio.insecure_channel(f"unix:{sds.path}") as channel:
        stream = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).DeltaSecrets(one())
        response = await asyncio.wait_for(stream.read(), 5)
        assert [r.name for r in response.resources] == ["ROOTCA"]
        stream.cancel()


async def test_the_socket_is_private(sds: SdsServer) -> None:
    assert stat.S_IMODE(sds.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sds.path.parent.stat().st_mode) == 0o700


async def test_a_live_socket_is_refused_and_a_stale_one_cleared(sds: SdsServer, tmp_path: Path) -> None:
    with pytest.raises(MeshctlError, match="another process serves SDS on .*is another agent running for this Envoy"):
        await SdsServer(sds.path).start()
    stale = tmp_path / "stale" / "socket"
    stale.parent.mkdir()
    left = sockets.socket(sockets.AF_UNIX)
    left.bind(str(stale))
    left.close()  # bound, never listening, its owner gone: what a killed agent leaves
    second = SdsServer(stale)
    await second.start()
    await second.stop()
    assert not stale.exists()


def test_a_path_too_long_for_a_unix_socket_is_named(tmp_path: Path) -> None:
    with pytest.raises(MeshctlError, match=r"a Unix socket path holds at most 107: choose a shorter one"):
        SdsServer(tmp_path / ("x" * 120) / "socket")


def test_rotation_is_due_at_half_the_lifetime_give_or_take_one_percent() -> None:
    issued = certificate()
    lifetime = issued.not_after.timestamp() - issued.received
    delays = [issued.rotation_delay(now=issued.received) / lifetime for _ in range(500)]
    assert 0.49 <= min(delays) < 0.4999 and 0.5001 < max(delays) <= 0.51
    assert issued.rotation_delay(now=issued.not_after.timestamp() + 1) == 0


def test_an_answer_for_another_key_or_without_roots_is_refused() -> None:
    key = new_key()
    chain = CA.sign_csr(certificate_request(key, IDENTITY), [IDENTITY])
    with pytest.raises(BadAnswerError, match="not for the key this agent sent"):
        WorkloadCertificate.from_answer(new_key(), chain)
    with pytest.raises(BadAnswerError, match="a leaf and the roots are needed"):
        WorkloadCertificate.from_answer(key, chain[:1])
    held = WorkloadCertificate.from_answer(key, chain, received=0.0)
    assert held.not_after > datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    assert "key=" not in repr(held)


async def test_secrets_named_by_file_are_read_when_asked_for(sds: SdsServer, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A DestinationRule's file certificates (`file-cert:`, `file-root:`) come from the host's
    files, as istio-agent serves them; a file that cannot be read is not served and is named."""
    sds.publish(certificate())
    (tmp_path / "client.pem").write_bytes(b"CHAIN")
    (tmp_path / "client-key.pem").write_bytes(b"KEY")
    (tmp_path / "ca.pem").write_bytes(b"ROOTS")
    wanted = [f"file-cert:{tmp_path / 'client.pem'}~{tmp_path / 'client-key.pem'}", f"file-root:{tmp_path / 'ca.pem'}",
              f"file-root:{tmp_path / 'missing.pem'}"]

    async def one() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        yield discovery_pb2.DiscoveryRequest(node=NODE, type_url=SECRET, resource_names=wanted)
        await asyncio.sleep(5)

    async with grpc.aio.insecure_channel(f"unix:{sds.path}") as channel:
        stream = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(one())
        held = secrets(await asyncio.wait_for(stream.read(), 5))
        stream.cancel()
    assert sorted(held) == sorted(wanted[:2])
    certificate_secret = held[wanted[0]].tls_certificate
    assert (certificate_secret.certificate_chain.inline_bytes, certificate_secret.private_key.inline_bytes) == (
        b"CHAIN", b"KEY")
    assert held[wanted[1]].validation_context.trusted_ca.inline_bytes == b"ROOTS"
    refusal = [r for r in caplog.records if r.getMessage() == "cannot serve a secret from files"]
    assert refusal and refusal[0].secret == wanted[2] and "No such file" in refusal[0].error  # type: ignore[attr-defined]
