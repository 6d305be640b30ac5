"""What proxy-status needs without --xds-address: istiod pods, a local tunnel, a token."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import kmock
import pytest
from emulator import MeshEmulator
from seeds import add_pod

from meshctl.errors import MeshctlError
from meshctl.kube.client import KubeClient, load_client
from meshctl.kube.istiod import find_istiod_pods
from meshctl.kube.pods import PodRef
from meshctl.kube.portforward import forward_local
from meshctl.kube.tokens import service_account_token

ECHO_METHOD = "/meshctl.test.Echo/Shout"


@pytest.fixture
def client(kubeconfig: str) -> KubeClient:
    return load_client(kubeconfig, None, timeout=5)


@pytest.fixture
def tcp_echo() -> Iterator[tuple[str, int]]:
    """A loopback TCP server that answers every line with `<connection number>:<line>`."""
    counter = iter(range(1, 1000))

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            number = next(counter)
            for line in self.rfile:
                self.wfile.write(f"{number}:".encode() + line)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        yield server.server_address[:2]
        server.shutdown()


@pytest.fixture
def grpc_echo() -> Iterator[tuple[str, int]]:
    """A real gRPC server with one unary method that upper-cases its bytes."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    shout = grpc.unary_unary_rpc_method_handler(lambda request, context: request.upper())
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("meshctl.test.Echo", {"Shout": shout}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield "127.0.0.1", port
    server.stop(0)


def test_istiod_pods_by_label_and_revision(emulator: MeshEmulator, client: KubeClient) -> None:
    add_pod(
        emulator, "istiod-b", "istio-system", labels={"app": "istiod", "istio.io/rev": "default"}
    )
    add_pod(
        emulator, "istiod-a", "istio-system", labels={"app": "istiod", "istio.io/rev": "default"}
    )
    add_pod(
        emulator,
        "istiod-canary-a",
        "istio-system",
        labels={"app": "istiod", "istio.io/rev": "canary"},
    )
    add_pod(emulator, "istiod-c", "istio-system", labels={"app": "istiod"}, phase="Pending")
    add_pod(emulator, "istiod-x", "default", labels={"app": "istiod"})
    add_pod(emulator, "cp-1", "mesh", labels={"component": "pilot"})

    assert find_istiod_pods(client) == [
        PodRef("istiod-a", "istio-system"),
        PodRef("istiod-b", "istio-system"),
        PodRef("istiod-canary-a", "istio-system"),
    ]
    assert find_istiod_pods(client, revision="canary") == [PodRef("istiod-canary-a", "istio-system")]
    assert find_istiod_pods(client, "mesh", label="component=pilot") == [PodRef("cp-1", "mesh")]
    with pytest.raises(
        MeshctlError, match=r'no running istiod pods match "app=istiod,istio\.io/rev=blue"'
    ):
        find_istiod_pods(client, revision="blue")


def test_service_account_token_uses_the_token_request_api(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    specs = []

    def issue(request: kmock.Request) -> dict[str, Any]:
        specs.append(request.data["spec"])
        audiences = ",".join(request.data["spec"]["audiences"])
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": request.data["spec"],
            "status": {"token": f"jwt-for-{audiences}"},
        }

    emulator["post /api/v1/namespaces/istio-system/serviceaccounts/default/token"] << issue
    assert service_account_token(client, "istio-system", "default") == "jwt-for-istio-ca"
    assert specs == [{"audiences": ["istio-ca"], "expirationSeconds": 600}]


def test_service_account_token_for_a_missing_account(client: KubeClient) -> None:
    with pytest.raises(
        MeshctlError, match=r'^serviceaccounts "nobody" not found in namespace "istio-system"$'
    ):
        service_account_token(client, "istio-system", "nobody")


def test_local_forward_gives_each_connection_its_own_stream(
    emulator: MeshEmulator, client: KubeClient, tcp_echo: tuple[str, int]
) -> None:
    add_pod(emulator, "istiod-a", "istio-system")
    emulator.forwards["istio-system", "istiod-a", 15010] = tcp_echo
    with forward_local(client, PodRef("istiod-a", "istio-system"), 15010) as forward:
        assert forward.host == "127.0.0.1" and forward.port > 0
        address = (forward.host, forward.port)
        with socket.create_connection(address, timeout=5) as one, one.makefile("rb") as one_in:
            one.sendall(b"first\n")
            assert one_in.readline() == b"1:first\n"
            with socket.create_connection(address, timeout=5) as two, two.makefile("rb") as two_in:
                two.sendall(b"second\n")
                assert two_in.readline() == b"2:second\n"
                one.sendall(b"again\n")
                assert one_in.readline() == b"1:again\n"
    assert forward.errors == []
    assert len([r for r in emulator if r.subresource == "portforward"]) == 2


def test_local_forward_carries_grpc(
    emulator: MeshEmulator, client: KubeClient, grpc_echo: tuple[str, int]
) -> None:
    add_pod(emulator, "istiod-a", "istio-system")
    emulator.forwards["istio-system", "istiod-a", 15010] = grpc_echo
    no_proxy = [("grpc.enable_http_proxy", 0)]
    with (
        forward_local(client, PodRef("istiod-a", "istio-system"), 15010) as forward,
        grpc.insecure_channel(forward.address, options=no_proxy) as channel,
    ):
        shout = channel.unary_unary(ECHO_METHOD)
        assert shout(b"syncz", timeout=5) == b"SYNCZ"
        assert shout(b"config_dump", timeout=5) == b"CONFIG_DUMP"
    assert forward.errors == []


def test_local_forward_reports_a_closed_pod_port(
    emulator: MeshEmulator, client: KubeClient
) -> None:
    add_pod(emulator, "istiod-a", "istio-system")
    with (
        forward_local(client, PodRef("istiod-a", "istio-system"), 15012) as forward,
        socket.create_connection((forward.host, forward.port), timeout=5) as connection,
    ):
        assert connection.recv(10) == b""
    assert len(forward.errors) == 1
    assert "error forwarding port 15012 to pod istiod-a" in forward.errors[0]


def test_local_forward_checks_the_pod_first(client: KubeClient) -> None:
    with (
        pytest.raises(MeshctlError, match='pods "istiod-z" not found in namespace "istio-system"'),
        forward_local(client, PodRef("istiod-z", "istio-system"), 15012),
    ):
        pytest.fail("the block must not run for a missing pod")
