"""The ADS debug client against a stand-in istiod: what it sends, TLS with a token, big answers,
and the errors a user sees."""

from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from meshctl.loopback import free_port
from fake_istiod import Authority, FakeIstiod
from status_support import client_config, syncz_answer

from meshctl.errors import MeshctlError
from meshctl.resources import CONFIG_DUMP, SYNCZ
from meshctl.status.client import DebugClient, Endpoint, Tls
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


def test_tls_verified_against_the_mesh_root_with_a_bearer_token() -> None:
    with FakeIstiod(syncz, tls=True, token="jwt-123") as istiod:
        verified = Tls("istiod.istio-system.svc", istiod.root.pem, "root.pem")
        with DebugClient(Endpoint("istiod-a", istiod.address, verified, "jwt-123")) as client:
            assert len(client.ask(SYNCZ).resources) == 1
        assert istiod.metadata[0]["authorization"] == "Bearer jwt-123"
        with DebugClient(Endpoint("istiod-a", istiod.address, verified, "wrong")) as client:
            with pytest.raises(MeshctlError, match=r"the control plane at istiod-a refused istio.io/debug/syncz: "
                                                   r"authentication failure \(istiod answers debug requests"):  # fmt: skip
                client.ask(SYNCZ)
        with DebugClient(Endpoint("istiod-a", istiod.address), timeout=5) as client:
            with pytest.raises(MeshctlError, match="cannot reach the control plane at istiod-a: .*leave out --plaintext"):
                client.ask(SYNCZ)


def test_a_certificate_that_does_not_verify_is_refused_unless_insecure() -> None:
    """istioctl never verifies istiod; here a server that is not who it should be is refused."""
    with FakeIstiod(syncz, tls=True, token="t") as istiod:
        stranger = Tls("istiod.istio-system.svc", Authority.create("other").pem, "ConfigMap istio-system/istio-ca-root-cert")
        with DebugClient(Endpoint("istiod-a", istiod.address, stranger, "t"), timeout=5) as client:
            with pytest.raises(MeshctlError) as untrusted:
                client.ask(SYNCZ)
        assert str(untrusted.value) == (
            "cannot reach the control plane at istiod-a: its certificate does not verify against the mesh's root "
            "(ConfigMap istio-system/istio-ca-root-cert): unable to get local issuer certificate; give the root with "
            "--cert-dir DIR (DIR/root-cert.pem), or skip verification with --insecure")
        misnamed = Tls("istiod.mesh.svc", istiod.root.pem, "root.pem")
        with DebugClient(Endpoint("istiod-a", istiod.address, misnamed, "t"), timeout=5) as client:
            with pytest.raises(MeshctlError) as wrong_name:
                client.ask(SYNCZ)
        assert str(wrong_name.value) == (
            "cannot reach the control plane at istiod-a: its certificate does not name istiod.mesh.svc; give the "
            "name it carries with --authority, or skip verification with --insecure")
        for insecure in (Tls("istiod.mesh.svc"), Tls("istiod.istio-system.svc")):
            with DebugClient(Endpoint("istiod-a", istiod.address, insecure, "t"), timeout=5) as client:
                assert len(client.ask(SYNCZ).resources) == 1


def test_a_client_certificate_instead_of_a_token() -> None:
    clients = Authority.create("clients")
    with FakeIstiod(syncz, tls=True, client_root=clients) as istiod:
        key, chain = clients.issue("meshctl.istio-system.svc")
        mutual = Tls("istiod.istio-system.svc", istiod.root.pem, "root.pem", chain, key)
        with DebugClient(Endpoint("istiod-a", istiod.address, mutual), timeout=5) as client:
            assert len(client.ask(SYNCZ).resources) == 1
        with DebugClient(Endpoint("istiod-a", istiod.address, Tls("istiod.istio-system.svc", istiod.root.pem)), timeout=5) as client:
            with pytest.raises(MeshctlError, match="^cannot reach the control plane at istiod-a"):
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
    with DebugClient(Endpoint("tls", closed, Tls("istiod.istio-system.svc", Authority.create().pem)), timeout=2) as client:
        with pytest.raises(MeshctlError, match="^cannot reach the control plane at tls: .*Connection refused$"):
            client.ask(SYNCZ)
    with pytest.raises(MeshctlError, match=f"^cannot reach the control plane at tls: TLS to {closed} failed: .*refused"):
        with DebugClient(Endpoint("tls", closed, Tls("istiod.istio-system.svc")), timeout=2):
            pass


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


def test_the_tls_flags_of_proxy_status(tmp_path, monkeypatch, capsys) -> None:
    """--cert-dir gives the root (and here a client certificate, so no cluster is needed at
    all), --authority the name, --insecure skips the check."""
    from testsupport import run_cli

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    clients = Authority.create("clients")

    def cert_dir(name: str, root: bytes) -> str:
        directory = tmp_path / name
        directory.mkdir()
        key, chain = clients.issue("meshctl")
        (directory / "root-cert.pem").write_bytes(root)
        (directory / "cert-chain.pem").write_bytes(chain)
        (directory / "key.pem").write_bytes(key)
        return str(directory)

    with FakeIstiod(syncz, tls=True, client_root=clients) as istiod:
        good, stranger = cert_dir("good", istiod.root.pem), cert_dir("stranger", Authority.create("x").pem)
        code, out, err = run_cli(capsys, "ps", "--xds-address", istiod.address, "--cert-dir", good)
        assert (code, err) == (0, "") and out.splitlines()[1].split()[0] == "web.default"
        code, _, err = run_cli(capsys, "ps", "--xds-address", istiod.address, "--cert-dir", stranger, "--timeout", "5s")
        assert code == 1 and f"its certificate does not verify against the mesh's root ({stranger}/root-cert.pem): " in err
        code, _, err = run_cli(capsys, "ps", "--xds-address", istiod.address, "--cert-dir", good, "--authority",
                               "istiod.mesh.svc", "--timeout", "5s")  # fmt: skip
        assert code == 1 and "its certificate does not name istiod.mesh.svc" in err
        code, out, err = run_cli(capsys, "ps", "--xds-address", istiod.address, "--cert-dir", stranger, "--insecure")
        assert (code, err) == (0, "") and "web.default" in out
    code, _, err = run_cli(capsys, "ps", "--xds-address", istiod.address, "--plaintext", "--insecure")
    assert code == 64 and "--plaintext has none" in err
