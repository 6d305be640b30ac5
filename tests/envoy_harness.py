"""Fixtures for end-to-end tests (real Envoys, HTTP backends, helper processes), a sidecar-like
bootstrap for the in-process control plane, and request loops.

The processes themselves are started by `meshctl.loopback`, which the demo and the benchmarks
use too; the fixtures here end every one by its PID at teardown. Envoys get an Istio-style node
id, so tests exercise what a sidecar would do.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from meshctl.loopback import Envoy, NameServer, Processes, http_get, wait_until
from meshctl.model import node as istio_node

XDS_CLUSTER = "xds-grpc"


def write_atomic(path: Path, text: str) -> None:
    """Write through a hidden temporary file and rename, as editors and `kubectl cp` do, so a
    watcher never reads a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def node_id(pod: str, namespace: str = "default", ip: str = "127.0.0.1") -> str:
    """The Istio node id of pod `pod`'s sidecar."""
    return istio_node.node_id(istio_node.SIDECAR, ip, f"{pod}.{namespace}", f"{namespace}.svc.cluster.local")


def bootstrap(
    node: str,
    *,
    xds_port: int,
    admin_port: int,
    delta: bool = False,
    namespace: str = "default",
    initial_fetch_timeout: float = 2.0,
) -> bootstrap_pb2.Bootstrap:
    """A sidecar-like bootstrap: ADS (SotW or Delta) over HTTP/2 to 127.0.0.1:`xds_port`."""
    config = bootstrap_pb2.Bootstrap()
    config.node.id = node
    config.node.cluster = "test"
    config.node.metadata.update({
        "NAMESPACE": namespace, "CLUSTER_ID": "Kubernetes", "ISTIO_VERSION": "1.27.0",
        "INTERCEPTION_MODE": "REDIRECT", "LABELS": {"app": "test"}, "PROXY_CONFIG": {},
    })
    config.admin.address.socket_address.CopyFrom(address_pb2.SocketAddress(address="127.0.0.1", port_value=admin_port))
    xds = config.static_resources.clusters.add(name=XDS_CLUSTER)
    xds.type = xds.STATIC
    xds.connect_timeout.FromMilliseconds(250)
    xds.load_assignment.cluster_name = XDS_CLUSTER
    lb = xds.load_assignment.endpoints.add().lb_endpoints.add()
    lb.endpoint.address.socket_address.CopyFrom(address_pb2.SocketAddress(address="127.0.0.1", port_value=xds_port))
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    xds.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Pack(options)
    ads = config.dynamic_resources.ads_config
    ads.api_type = config_source_pb2.ApiConfigSource.DELTA_GRPC if delta else config_source_pb2.ApiConfigSource.GRPC
    ads.transport_api_version = config_source_pb2.V3
    ads.set_node_on_first_message_only = True
    grpc_service = ads.grpc_services.add()
    grpc_service.envoy_grpc.cluster_name = XDS_CLUSTER
    backoff = grpc_service.envoy_grpc.retry_policy.retry_back_off
    backoff.base_interval.FromMilliseconds(100)
    backoff.max_interval.FromMilliseconds(500)
    for source in (config.dynamic_resources.cds_config, config.dynamic_resources.lds_config):
        source.ads.SetInParent()
        source.resource_api_version = config_source_pb2.V3
        source.initial_fetch_timeout.FromNanoseconds(int(initial_fetch_timeout * 1e9))
    return config


@dataclass
class RequestLoop:
    """GETs `url` back to back on a thread until stopped, recording every outcome and how long
    each took."""

    url: str
    interval: float = 0.005
    headers: Mapping[str, str] = field(default_factory=dict)
    results: list[tuple[int, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RequestLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = http_get(self.url, headers=self.headers)
            self.latencies.append(time.monotonic() - started)
            self.results.append(result)
            time.sleep(self.interval)

    @property
    def failures(self) -> list[tuple[int, str]]:
        return [r for r in self.results if not 200 <= r[0] < 300]

    def bodies(self) -> Counter[str]:
        return Counter(body for _, body in self.results)

    def wait_for_body(self, body: str, count: int = 3, timeout: float = 10.0) -> None:
        """Until the last `count` responses all carry `body` (the change reached the data path)."""
        wait_until(lambda: len(self.results) >= count and all(b == body for _, b in self.results[-count:]),
                   timeout, what=f"responses from {body!r}")


@pytest.fixture
def envoys(tmp_path: Path) -> Iterator[Callable[[bootstrap_pb2.Bootstrap], Envoy]]:
    """Start Envoys with `envoys(bootstrap)`; all are stopped by PID when the test ends."""
    started: list[Envoy] = []

    def start(config: bootstrap_pb2.Bootstrap) -> Envoy:
        envoy = Envoy.start(config, tmp_path, f"envoy-{len(started)}")
        started.append(envoy)
        return envoy

    yield start
    for envoy in started:
        envoy.stop()


@pytest.fixture
def backends() -> Iterator[Callable[[str], NameServer]]:
    """Start HTTP backends with `backends(name)`; all are shut down when the test ends."""
    started: list[NameServer] = []

    def start(name: str) -> NameServer:
        backend = NameServer(name)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start helper processes with `processes(argv, **popen_kwargs)`; each is ended by PID."""
    with Processes() as started:
        yield started.start
