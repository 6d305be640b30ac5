"""Real Envoy processes, small HTTP backends and request loops for end-to-end tests.

Every process a test starts is tracked by the fixtures here and ended by its PID at teardown.
Envoys run with `--disable-hot-restart` (several may share the host), one worker, their own
admin port, and an Istio-style node id, so tests exercise what a sidecar would do.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from meshctl.demo.runtime import NameServer, stop_process
from meshctl.envoybin import find_envoy

T = TypeVar("T")
XDS_CLUSTER = "xds-grpc"


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def write_atomic(path: Path, text: str) -> None:
    """Write through a hidden temporary file and rename, as editors and `kubectl cp` do, so a
    watcher never reads a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def node_id(pod: str, namespace: str = "default", ip: str = "127.0.0.1") -> str:
    return f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"


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
class Envoy:
    """One Envoy process and its admin API."""

    config: bootstrap_pb2.Bootstrap
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def admin_port(self) -> int:
        return self.config.admin.address.socket_address.port_value

    @property
    def log_path(self) -> Path:
        return self.workdir / f"envoy-{self.admin_port}.log"

    def start(self) -> Envoy:
        path = self.workdir / f"envoy-{self.admin_port}.json"
        path.write_text(json_format.MessageToJson(self.config))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [find_envoy(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
                 "--drain-time-s", "1"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def admin(self, path: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=timeout) as response:
            return response.read()

    def is_live(self) -> bool:
        try:
            return self.admin("/ready", timeout=1).strip() == b"LIVE"
        except urllib.error.HTTPError:
            return False

    def wait_live(self, timeout: float = 10.0) -> Envoy:
        assert self.process is not None
        wait_until(lambda: self.process.poll() is None and self.is_live() or self._exited(), timeout, what="Envoy /ready LIVE")
        return self

    def _exited(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"Envoy exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
        return False

    def config_dump(self, include_eds: bool = False) -> dict[str, Any]:
        return json.loads(self.admin("/config_dump" + ("?include_eds" if include_eds else "")))

    def stats(self, prefix: str) -> dict[str, str]:
        """Stats whose name contains `prefix`, as name → value text."""
        out = {}
        for line in self.admin(f"/stats?filter={prefix}").decode().splitlines():
            name, _, value = line.partition(": ")
            out[name] = value
        return out

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of one GET; status 0 when the connection itself failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return 0, ""


@dataclass
class RequestLoop:
    """GETs `url` back to back on a thread until stopped, recording every outcome."""

    url: str
    interval: float = 0.005
    results: list[tuple[int, str]] = field(default_factory=list)
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
            self.results.append(get(self.url))
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
def envoys(tmp_path: Path) -> Iterator[Callable[..., Envoy]]:
    """Start Envoys with `envoys(bootstrap)`; all are stopped by PID when the test ends."""
    started: list[Envoy] = []

    def start(config: bootstrap_pb2.Bootstrap) -> Envoy:
        envoy = Envoy(config, tmp_path).start()
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


@contextlib.contextmanager
def started_processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes with the yielded `start(argv, **popen_kwargs)`; each is ended by PID on
    exit. For processes shared by more than one test (a module-scoped control plane)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, **kwargs)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_process(process)


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start helper processes with `processes(argv, **popen_kwargs)`; each is ended by PID."""
    with started_processes() as start:
        yield start
