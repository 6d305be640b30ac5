"""Shared pieces of the `meshctl serve` benchmarks (serve_convergence, serve_fanout, serve_delta,
serve_startup).

- `MeshDir`: the mesh of benchmarks/meshgen.py written one service per file, so that editing a
  service makes serve reload one small file (as a GitOps sync would), plus client workloads.
  Edits change one service's route, cluster or endpoints, or every service's cluster at once; a
  bulk edit is renamed into place in one burst so that serve sees it as one change.
- `ServeProcess`: the real `meshctl serve` as a subprocess, its JSON log read on a thread. The
  server's own `push` and `ACK` debug events (with `convergence_ms`, measured on the server's
  clock from the moment it started translating the change) say when every proxy converged.
- `EnvoyFleet`: real Envoys bootstrapped by `ads_bootstrap` as client sidecars, their
  certificates served by `SecretHost` (the agent's SDS server, one socket per Envoy, in this
  process: these benchmarks measure xDS, so no CSR goes over the network).
- The machine description and a plain table printer every benchmark ends with.

Every process started here is ended by its PID, also when a benchmark fails half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from meshgen import NAMESPACES, mesh_yaml

from meshctl.config.loader import load
from meshctl.envoybin import find_envoy
from meshctl.generate.bootstrap import ads_bootstrap
from meshctl.loopback import Envoy, free_port, port_free, stop_process
from meshctl.model.proxy import Proxy
from meshctl.model.snapshot import build_snapshot

HERE = os.path.dirname(os.path.abspath(__file__))

CLIENT_NAMESPACE = "clients"
SERVICE_PORT = 8080  # the port of every meshgen service, so client egress listeners bind it
_SUBSET_V2 = "{name: v2, labels: {version: v2}}"
_SUBSET_V2_LIMITED = "{name: v2, labels: {version: v2}, trafficPolicy: {connectionPool: {tcp: {maxConnections: 7}}}}"


# ---------------------------------------------------------------------------------------------
# Reporting


def machine_description() -> str:
    """Cores, CPU, Python, gRPC, protobuf backend and Envoy version: the figures mean little without."""
    import grpc
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    envoy = subprocess.run([find_envoy(), "--version"], capture_output=True, text=True, timeout=30).stdout
    envoy_version = envoy.strip().rsplit(" ", 1)[-1].split("/")[1] if "/" in envoy else "unknown"
    return (f"{os.cpu_count()} cores ({cpu or platform.machine()}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, grpcio {grpc.__version__}, "
            f"protobuf {protobuf_version} ({api_implementation.Type()}), Envoy {envoy_version}")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Plain columns wide enough for every cell: the first (the label) left-aligned, the figures
    right-aligned, floats with one decimal; rows shorter than the headers are left blank at the end."""
    cells = [list(headers)] + [[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row]
                               + [""] * (len(headers) - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        label, *figures = (cell.rjust(width) if i else cell.ljust(width)
                           for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
        print("  ".join([label, *figures]).rstrip())


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# ---------------------------------------------------------------------------------------------
# The mesh on disk


@dataclass(frozen=True, slots=True)
class Client:
    """A client workload in the `clients` namespace. With `bind`, it gets interception mode NONE
    and a Sidecar whose egress listener binds `bind:8080`, so many real Envoys can share the
    host; without, it is a default (REDIRECT) sidecar, for simulated clients that bind nothing.
    Simulated clients may be spread over namespaces of their own (see simulated_clients)."""

    name: str
    ip: str
    bind: str = ""
    namespace: str = CLIENT_NAMESPACE

    @property
    def proxy_id(self) -> str:
        return f"{self.name}.{self.namespace}"

    def yaml(self) -> str:
        annotations = "  annotations: {sidecar.istio.io/interceptionMode: NONE}\n" if self.bind else ""
        pod = (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {self.name}\n  namespace: {self.namespace}\n"
               f"  labels: {{app: client, client: {self.name}}}\n{annotations}"
               f"spec: {{serviceAccountName: client, containers: [{{name: app, image: app}}]}}\n"
               f"status: {{podIP: {self.ip}}}\n")
        if not self.bind:
            return pod
        return pod + (f"---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n"
                      f"metadata: {{name: {self.name}, namespace: {self.namespace}}}\nspec:\n"
                      f"  workloadSelector: {{labels: {{client: {self.name}}}}}\n  egress:\n"
                      f"  - port: {{number: {SERVICE_PORT}, protocol: HTTP, name: http}}\n"
                      f"    bind: {self.bind}\n    captureMode: NONE\n    hosts: [\"*/*\"]\n")


def envoy_clients(count: int) -> list[Client]:
    """Clients for real Envoys: each on its own loopback address (127.0.1.x, away from the
    demo's and the tests' 127.0.0.x) whose port 8080 is free right now."""
    clients: list[Client] = []
    for last in range(1, 255):
        address = f"127.0.1.{last}"
        if not port_free(address, SERVICE_PORT):
            continue
        clients.append(Client(f"client{len(clients)}", address, bind=address))
        if len(clients) == count:
            return clients
    raise SystemExit(f"fewer than {count} loopback addresses 127.0.1.x have port {SERVICE_PORT} free")


def simulated_clients(count: int, views: int = 1) -> list[Client]:
    """Clients that are only node identities (no listener is ever bound for them). With `views`
    above one they are spread round-robin over that many namespaces (`clients0`...), each with
    a Sidecar of its own (see view_sidecars), so they fall into `views` distinct views."""
    if views <= 1:
        return [Client(f"client{k}", f"10.200.{k // 256}.{k % 256}") for k in range(count)]
    return [Client(f"client{k}", f"10.200.{k // 256}.{k % 256}", namespace=f"{CLIENT_NAMESPACE}{k % views}")
            for k in range(count)]


def view_sidecars(clients: Iterable[Client]) -> str:
    """A namespace-wide Sidecar per client namespace other than the default one, as a mesh
    partitioned per team has: its own namespace, the first three service namespaces (where the
    benchmarks' edits happen, so every client is pushed) and one more of the other seven, so
    the views differ in content as well as in namespace."""
    namespaces = sorted({c.namespace for c in clients if c.namespace != CLIENT_NAMESPACE})
    docs = []
    for index, namespace in enumerate(namespaces):
        hosts = ", ".join(f'"{h}/*"' for h in (".", "ns0", "ns1", "ns2", f"ns{3 + index % (NAMESPACES - 3)}"))
        docs.append(f"apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
                    f"metadata: {{name: default, namespace: {namespace}}}\nspec:\n  egress:\n  - hosts: [{hosts}]\n")
    return "---\n".join(docs)


def _per_service(text: str) -> list[str]:
    """meshgen's documents grouped per service (each group starts with its Service)."""
    groups: list[list[str]] = []
    for doc in text.split("---\n"):
        if doc.startswith("apiVersion: v1\nkind: Service\n"):
            groups.append([])
        groups[-1].append(doc)
    return ["---\n".join(group) for group in groups]


class MeshDir:
    """`root/svcN.yaml` per service plus `root/clients.yaml`; edits are staged next to `root`
    and renamed in, so the watcher never sees a half-written file or a hidden temporary one.

    Three edits exist: a service's header-matched route flips between subsets v2 and v1 (its
    RouteConfiguration changes); its subset v2 gains or loses a connection limit of its own
    (exactly one Cluster changes, so its ClusterLoadAssignment is pushed again too); its v2 pod
    moves to another IP and back (the endpoints of two clusters change, nothing else)."""

    def __init__(self, base: Path, services: int, clients: Sequence[Client]) -> None:
        self.root = base / "mesh"
        self.stage = base / "stage"
        self.root.mkdir(parents=True)
        self.stage.mkdir()
        self.services = services
        self._variants = {"v2": _per_service(mesh_yaml(services)), "v1": _per_service(mesh_yaml(services, version="v1"))}
        self.route = ["v2"] * services
        self.subset_limit = [False] * services
        self.moved = [False] * services
        self.write({f"svc{i}.yaml": self._render(i) for i in range(services)})
        self.write({"clients.yaml": "---\n".join([*(c.yaml() for c in clients), *filter(None, [view_sidecars(clients)])])})

    def _render(self, index: int) -> str:
        text = self._variants[self.route[index]][index]
        if self.subset_limit[index]:
            text = text.replace(_SUBSET_V2, _SUBSET_V2_LIMITED)
        if self.moved[index]:
            head, marker, tail = text.rpartition("podIP: ")  # the last pod is the v2 one
            text = head + marker + f"10.250.{index // 256}.{index % 256}" + tail[tail.index("}"):]
        return text

    def write(self, files: Mapping[str, str]) -> float:
        """Stage every file, then rename them all in one burst; returns the wall time of the first rename."""
        for name, text in files.items():
            (self.stage / name).write_text(text)
        started = time.time()
        for name in files:
            os.replace(self.stage / name, self.root / name)
        return started

    def toggle_route(self, index: int) -> float:
        self.route[index] = "v1" if self.route[index] == "v2" else "v2"
        return self.write({f"svc{index}.yaml": self._render(index)})

    def toggle_endpoint(self, index: int) -> float:
        self.moved[index] = not self.moved[index]
        return self.write({f"svc{index}.yaml": self._render(index)})

    def toggle_subset_limit(self, indices: Iterable[int]) -> float:
        chosen = list(indices)
        for index in chosen:
            self.subset_limit[index] = not self.subset_limit[index]
        return self.write({f"svc{i}.yaml": self._render(i) for i in chosen})

    def proxies(self, clients: Iterable[Client]) -> list[Proxy]:
        """The sidecars of these clients, as `meshctl bootstrap --config-dir` would find them."""
        result = load([str(self.root)])
        if result.problems:
            raise SystemExit("\n".join(map(str, result.problems[:5])))
        snapshot = build_snapshot(result.resources)
        return [snapshot.proxy(c.proxy_id) for c in clients]


class Edit(Protocol):
    def apply(self, mesh: MeshDir) -> object: ...


def record(mesh: MeshDir, proxies: Sequence[Proxy], changes: Sequence[Edit]) -> dict[str, object]:
    """What serve's translator gives every proxy before and after each change, in raw_replay.py's
    recording format (nodes as the benchmarks' bootstraps present them). Each resource is
    serialized once, and proxies holding the same one share its bytes (in the pickle too)."""
    from meshctl.generate.translator import Translator

    nodes = [ads_bootstrap(p, "127.0.0.1", 0, admin_port=0, service_account=service_account(p)).node for p in proxies]
    translate = Translator()
    generations = []
    encoded: dict[int, tuple[object, bytes]] = {}

    def bytes_of(packed: Any) -> bytes:
        found = encoded.get(id(packed))
        if found is None or found[0] is not packed:
            found = encoded[id(packed)] = (packed, packed.to_any().SerializeToString())
        return found[1]

    for change in (None, *changes):
        if change is not None:
            change.apply(mesh)
        config = translate(load([str(mesh.root)]).resources)
        generations.append({node.id: {type_url: [(name, bytes_of(packed)) for name, packed in items.items()]
                                      for type_url, items in config.resources_for(node).items()} for node in nodes})
    return {"generations": generations}


# ---------------------------------------------------------------------------------------------
# meshctl serve


def meshctl_executable() -> str:
    """The `meshctl` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("meshctl")
    if not script.exists():
        raise SystemExit(f"no meshctl script next to {sys.executable}; install meshctl into this environment")
    return str(script)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (clock-tick resolution, 10 ms here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wall(stamp: str) -> float:
    """serve's log time (UTC, millisecond resolution) as a Unix timestamp."""
    parsed = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.replace(tzinfo=datetime.UTC).timestamp()


@dataclass
class Convergence:
    """One change as serve saw it: when each proxy ACKed the last of its pushes."""

    server_ms: dict[str, float]
    """Per proxy: serve's `convergence_ms` of its last ACK (from translation start to that ACK)."""
    wall_ms: dict[str, float]
    """Per proxy: from the file write to its last ACK, on the wall clock (1 ms resolution)."""
    generations: int
    translate_ms: float
    nacks: int


@dataclass
class _Tally:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    outstanding: set[tuple[str, str, str]] = field(default_factory=set)
    pushed: set[str] = field(default_factory=set)
    nacks: int = 0
    last: dict[str, dict[str, Any]] = field(default_factory=dict)


class ServeProcess:
    """`meshctl serve --log-format json` on a free port, every log event kept in order."""

    def __init__(self, config_dir: Path, *, log_level: str = "debug", debug_http: bool = False) -> None:
        self.config_dir = config_dir
        self.log_level = log_level
        self.xds_port = free_port()
        self.debug_port = free_port() if debug_http else 0
        self.events: list[dict[str, Any]] = []
        self.text: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    def argv(self) -> list[str]:
        debug = f"127.0.0.1:{self.debug_port}" if self.debug_port else ""
        return [meshctl_executable(), "serve", "--config-dir", str(self.config_dir),
                "--xds-address", f"127.0.0.1:{self.xds_port}", "--debug-address", debug,
                "--debounce-after", "0", "--log-level", self.log_level, "--log-format", "json", "--ca-address", ""]

    def start(self, timeout: float = 60.0) -> ServeProcess:
        """Start serve and wait until its first configuration is accepted."""
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda: any(e.get("msg") == "config accepted" for e in self.events), timeout, "config accepted")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            with self._changed:
                if isinstance(event, dict):
                    self.events.append(event)
                else:
                    self.text.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Until `check()` (called under the log lock) is truthy; fail with serve's last words."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = check()
                if found:
                    return found
                assert self.process is not None
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader_alive()):
                    tail = "\n".join(self.text[-5:] + [json.dumps(e) for e in self.events[-5:]])
                    raise SystemExit(f"meshctl serve: timed out waiting for {what}\n{tail}")
                self._changed.wait(min(left, 0.1))

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def mark(self) -> int:
        """A position in the log: `converged(since=mark)` looks only at later events."""
        with self._changed:
            return len(self.events)

    def converged(self, since: int, proxies: Sequence[str], *, written: float = 0.0, change: bool = True,
                  timeout: float = 30.0, quiet: float = 0.3) -> Convergence:
        """Wait until every proxy was pushed something after `since` and every push was answered,
        then `quiet` seconds more without a push; with `change`, a new config must come first."""
        wanted = set(proxies)
        while True:
            self.wait_for(lambda: self._settled(self._tally(since), wanted, change), timeout, "every proxy to ACK")
            seen = self.mark()
            time.sleep(quiet)
            with self._changed:
                tally = self._tally(since)
                if not any(e.get("msg") == "push" for e in self.events[seen:]):
                    break
        accepted = tally.accepted
        return Convergence(
            server_ms={p: e["convergence_ms"] for p, e in tally.last.items() if p in wanted},
            wall_ms={p: (_wall(e["time"]) - written) * 1e3 for p, e in tally.last.items() if p in wanted and written},
            generations=len(accepted),
            translate_ms=sum(e.get("translate_ms", 0.0) for e in accepted),
            nacks=tally.nacks,
        )

    @staticmethod
    def _settled(tally: _Tally, wanted: set[str], change: bool) -> bool:
        return (bool(tally.accepted) or not change) and wanted <= tally.pushed and not tally.outstanding

    def _tally(self, since: int) -> _Tally:
        tally = _Tally()
        for event in self.events[since:]:
            msg = event.get("msg", "")
            if msg == "config accepted":
                tally.accepted.append(event)
                continue
            key = (event.get("proxy", ""), event.get("type", ""), event.get("nonce", ""))
            if msg == "push":
                tally.outstanding.add(key)
                tally.pushed.add(key[0])
            elif msg == "ACK" or msg.startswith("NACK"):
                tally.outstanding.discard(key)
                if msg == "ACK":
                    previous = tally.last.get(key[0])
                    if previous is None or event["convergence_ms"] >= previous["convergence_ms"]:
                        tally.last[key[0]] = event
                else:
                    tally.nacks += 1
        return tally

    def rss_kb(self) -> int:
        assert self.process is not None
        return rss_kb(self.process.pid)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def metrics(self) -> dict[str, float]:
        """serve's /metrics (needs `debug_http=True`) as sample name with labels → value."""
        import urllib.request

        from meshctl.prometheus import samples

        with urllib.request.urlopen(f"http://127.0.0.1:{self.debug_port}/metrics", timeout=10) as response:
            return samples(response.read().decode())

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self._reader is not None:
            self._reader.join(5)


# ---------------------------------------------------------------------------------------------
# Envoys


def service_account(proxy: Proxy) -> str:
    """The account `meshctl bootstrap --config-dir` puts in the node metadata (SDS identity)."""
    return proxy.workload.service_account if proxy.workload else "default"


class SecretHost:
    """The agents' part for a fleet of benchmark Envoys, in this process: per Envoy a key and a
    certificate (signed by an in-memory CA for its identity), served by the agent's own SDS
    server on a socket of its own, all on one event loop thread."""

    def __init__(self) -> None:
        from meshctl.security.ca import CertificateAuthority, self_signed_bundle

        self.directory = Path(tempfile.mkdtemp(prefix="meshctl-bench-sds-"))
        self.authority = CertificateAuthority(self_signed_bundle("cluster.local"))
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.servers: list[Any] = []

    def socket_for(self, proxy: Proxy) -> str:
        """A socket serving `proxy`'s certificate, ready for its Envoy to connect to."""
        from meshctl.agent.certificate import WorkloadCertificate, certificate_request, new_key
        from meshctl.agent.sds import SdsServer
        from meshctl.security.spiffe import spiffe_id

        identity = spiffe_id("cluster.local", proxy.namespace, service_account(proxy))
        key = new_key()
        chain = self.authority.sign_csr(certificate_request(key, identity), [identity])
        server = SdsServer(self.directory / f"{len(self.servers)}.sock")
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(30)
        self.loop.call_soon_threadsafe(server.publish, WorkloadCertificate.from_answer(key, chain))
        self.servers.append(server)
        return str(server.path)

    def stop(self) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.stop(), self.loop).result(30)
        self.servers.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        shutil.rmtree(self.directory, ignore_errors=True)


class EnvoyFleet:
    """Real Envoys as the sidecars of client workloads (meshctl.loopback runs each one with
    --disable-hot-restart --concurrency 1 -l warning and its own admin port)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.envoys: list[Envoy] = []
        self.secrets: SecretHost | None = None

    def start(self, proxies: Iterable[Proxy], xds_port: int, *, delta: bool = False) -> EnvoyFleet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.secrets = self.secrets or SecretHost()
        for proxy in proxies:
            config = ads_bootstrap(proxy, "127.0.0.1", xds_port, admin_port=free_port(), delta=delta,
                                   service_account=service_account(proxy), sds_socket=self.secrets.socket_for(proxy))
            self.envoys.append(Envoy.start(config, self.workdir, proxy.id))
        return self

    def wait_live(self, timeout: float = 60.0) -> EnvoyFleet:
        deadline = time.monotonic() + timeout
        for envoy in self.envoys:
            envoy.wait_live(max(1.0, deadline - time.monotonic()))
        return self

    def stop(self) -> None:
        for envoy in self.envoys:
            envoy.stop()
        self.envoys.clear()
        if self.secrets is not None:
            self.secrets.stop()
            self.secrets = None


class LineProcess:
    """A helper script of this directory in a process of its own (raw_replay.py, ads_clients.py),
    driven by one command per line on stdin and answering one JSON object per line on stdout.
    """

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, script), *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.script = script

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.script} exited with {self.process.wait()}")
        answer = json.loads(line)
        if "error" in answer:
            raise SystemExit(f"{self.script}: {answer['error']}")
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def stop(self) -> None:
        stop_process(self.process)


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def ended(*things: Stoppable) -> Iterator[None]:
    """Stop these, in this order (Envoys before their server), whatever happens inside the block."""
    try:
        yield
    finally:
        for thing in things:
            thing.stop()
