"""The ADS debug client against a stand-in istiod: what it sends, TLS with a token, big answers,
and the errors a user sees."""

from __future__ import annotations

import socket

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from meshctl.loopback import free_port
from fake_istiod import FakeIstiod
from status_support import client_config, syncz_answer

from meshctl.errors import MeshctlError
from meshctl.resources import CONFIG_DUMP, SYNCZ
from meshctl.status.client import DebugClient, Endpoint
from meshctl.status.syncz import read_syncz


def syncz(request: discovery_pb2.DiscoveryRequest) -> discovery_pb2.DiscoveryResponse:
    answer = syncz_answer("istiod-a", [client_config("web.default", "Kubernetes", "1.28.0", {"CDS": ("SYNCED", 5)})])
    answer.type_url = request.type_url
    return answer


def test_asks_as_a_debug_client() -> None:
    with FakeIstiod(syncz) as istiod, DebugClient(Endpoint("istiod", istiod.address), namespace="mesh") as client:
        answer = client.ask(SYNCZ)
        client.ask(CONFIG_DUMP, ["web.default"])
    assert [row.proxy_id for row in read_syncz({"istiod": answer})] == ["web.default"]
    first, second = istiod.requests
    assert first.type_url == SYNCZ and list(first.resource_names) == []
    assert second.type_url == CONFIG_DUMP and list(second.resource_names) == ["web.default"]
    metadata = dict(first.node.metadata.fields)
    assert {key: value.string_value for key, value in metadata.items()} == {
        "GENERATOR": "event", "SERVICE_ACCOUNT": "default", "NAMESPACE": "mesh"
    }  # fmt: skip
    assert first.node.id.startswith("sidecar~0.0.0.0~meshctl-") and first.node.id.endswith(".mesh~mesh.svc.cluster.local")
    assert len(istiod.metadata) == 2, "one stream per question"
    assert all("authorization" not in metadata for metadata in istiod.metadata)


def test_tls_without_verification_and_a_bearer_token() -> None:
    with FakeIstiod(syncz, tls=True, token="jwt-123") as istiod:
        endpoint = Endpoint("istiod-a", istiod.address, tls=True, token="jwt-123", server_name="istiod.istio-system.svc")
        with DebugClient(endpoint) as client:
            assert len(client.ask(SYNCZ).resources) == 1
        assert istiod.metadata[0]["authorization"] == "Bearer jwt-123"
        with DebugClient(Endpoint("istiod-a", istiod.address, tls=True, token="wrong")) as client:
            with pytest.raises(MeshctlError, match=r"the control plane at istiod-a refused istio.io/debug/syncz: "
                                                   r"authentication failure \(istiod answers debug requests"):  # fmt: skip
                client.ask(SYNCZ)
        with DebugClient(Endpoint("istiod-a", istiod.address), timeout=5) as client:
            with pytest.raises(MeshctlError, match="cannot reach the control plane at istiod-a: .*leave out --plaintext"):
                client.ask(SYNCZ)


def test_answers_larger_than_grpc_default_limit() -> None:
    big = [client_config(f"pod-{i:05d}-{'x' * 200}.default", "Kubernetes", "1.28.0", {"CDS": ("SYNCED", 1)})
           for i in range(20000)]  # fmt: skip
    answer = syncz_answer("istiod-a", big)
    assert answer.ByteSize() > 4 * 1024 * 1024
    with FakeIstiod(lambda request: answer) as istiod, DebugClient(Endpoint("x", istiod.address)) as client:
        assert len(client.ask(SYNCZ).resources) == 20000


def test_errors_say_what_to_do() -> None:
    with FakeIstiod(lambda request: None) as silent, DebugClient(Endpoint("slow", silent.address), timeout=0.5) as client:
        with pytest.raises(MeshctlError, match=r"^the control plane at slow did not answer istio.io/debug/syncz within 0.5 s$"):
            client.ask(SYNCZ)
    closed = f"127.0.0.1:{free_port()}"
    with DebugClient(Endpoint(closed, closed), timeout=2) as client:
        with pytest.raises(MeshctlError, match=f"^cannot reach the control plane at {closed}: .*Connection refused"):
            client.ask(SYNCZ)
    with DebugClient(Endpoint("tls", closed, tls=True), timeout=2) as client:
        with pytest.raises(MeshctlError, match=f"^cannot reach the control plane at tls: TLS to 127.0.0.1:{closed.split(':')[1]} failed"):
            client.ask(SYNCZ)


def test_a_server_without_ads() -> None:
    import grpc
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with DebugClient(Endpoint("web", f"127.0.0.1:{port}"), timeout=5) as client:
            with pytest.raises(MeshctlError, match="does not serve ADS"):
                client.ask(SYNCZ)
    finally:
        server.stop(0)


def test_a_stream_that_ends_without_the_answer() -> None:
    other = discovery_pb2.DiscoveryResponse(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
    with FakeIstiod(lambda request: other, close=True) as istiod, DebugClient(Endpoint("odd", istiod.address), timeout=5) as client:
        with pytest.raises(MeshctlError, match="^the control plane at odd ended the stream without answering istio.io/debug/syncz$"):
            client.ask(SYNCZ)


def test_the_relay_never_listens_beyond_loopback() -> None:
    from meshctl.status.tlsrelay import TlsRelay

    with TlsRelay("127.0.0.1", 9, "x", 1) as relay:
        host, port = relay.address.rsplit(":", 1)
        assert host == "127.0.0.1"
        with socket.create_connection((host, int(port)), timeout=2) as connection:
            assert connection.recv(1) == b"", "the relay drops a connection it cannot carry"
        assert relay.failures and "TLS to 127.0.0.1:9 failed" in relay.failures[0]
