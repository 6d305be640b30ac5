"""The fault-injection harness: the demo's reviews mesh with ten client sidecars, each carrying
a request loop, and `meshctl serve` (the real translator) on a config directory that a seeded
sequence of operations edits, breaks, swaps and restarts under it.

What the test expects of every operation is that no request fails (every configuration the
operations write routes only to subsets that exist and answer), and at the end that every Envoy
holds exactly what `meshctl translate` renders for it.
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from envoy.type.matcher.v3 import node_pb2
from hostile import Outcome, ads_call, eds_request, names
from serve_process import ReadyProbe, Serve

from meshctl.demo.mesh import SERVICE_PORT, VERSIONS, Client, Layout, routing_yaml, workloads_yaml
from meshctl.demo.runtime import Backends, plan_layout
from meshctl.loopback import EnvoyAdmin, Sidecar, free_port, mint_token, wait_until
from meshctl.resources import LISTENER, TYPE_PREFIX

TRANSLATOR = "meshctl.generate.translator:translate_resources"
ANSWERS = {f"reviews-{version}" for version in VERSIONS}


def write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class ReviewsLoop:
    """GETs reviews through one sidecar's outbound listener, back to back on a thread, keeping
    every answer that is not a reviews backend's (a failed request), with the time it came."""

    def __init__(self, client: Client, interval: float = 0.02) -> None:
        self.client = client
        self.interval = interval
        self.count = 0
        self.failures: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.client.bind, SERVICE_PORT, timeout=5)
                connection.request("GET", "/reviews/0", headers={"Host": "reviews"})
                response = connection.getresponse()
                status, body = response.status, response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                status, body = 0, f"{type(exc).__name__}: {exc}"
                if connection is not None:
                    connection.close()
                connection = None
            self.count += 1
            if status != 200 or body not in ANSWERS:
                self.failures.append((time.time(), status, body[:200]))
            self._stop.wait(self.interval)
        if connection is not None:
            connection.close()


@dataclass
class FaultMesh:
    """The running mesh and what the operations need to reach it. Each sidecar is `meshctl
    agent` running its Envoy, with a token for the client's service account and its certificate
    from serve's CA, as a pod's istio-proxy container would."""

    workdir: Path
    processes: Callable[..., Any]
    clients: int = 10
    layout: Layout = field(init=False)
    serve: Serve = field(init=False)
    backends: Backends = field(init=False)
    envoys: list[Sidecar] = field(default_factory=list)
    loops: list[ReviewsLoop] = field(default_factory=list)
    probes: list[ReadyProbe] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    extra: set[int] = field(default_factory=set)
    journal: list[str] = field(default_factory=list)
    _probe: ReadyProbe | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "mesh"

    def start(self) -> FaultMesh:
        from meshctl.security.cadir import open_ca_directory

        self.layout = plan_layout([f"client{i}" for i in range(self.clients)])
        self.config.mkdir(parents=True)
        documents = [d for d in workloads_yaml(self.layout).split("---\n") if "kind: DestinationRule" not in d]
        (self.config / "workloads.yaml").write_text("---\n".join(documents))
        self.write_rule(100)
        self.write_routing({"v1": 100})
        self.backends = Backends(self.layout)
        ca_dir = self.workdir / "ca"
        open_ca_directory(ca_dir, "cluster.local")
        # serve's own defaults: `rm -rf DIR` deletes file after file before the directory goes,
        # and the default debounce (100 ms) is what takes that, and the copy after it, as one change.
        self.serve = Serve(self.config, self.processes, self.workdir / "serve.log", ca_dir=ca_dir,
                           flags=("--log-level", "info", "--debounce-after", "100ms"), translator=TRANSLATOR).start()
        ports = _distinct_ports(2 * len(self.layout.clients))
        for client in self.layout.clients:
            token = mint_token(ca_dir, "default", client.service_account, self.workdir / f"{client.pod}.token",
                               pod=client.pod)
            self.envoys.append(Sidecar.start(
                f"{client.pod}.default", self.workdir, client.pod, xds_address=f"127.0.0.1:{self.serve.xds_port}",
                ca_address=f"127.0.0.1:{self.serve.ca_port}", ca_root=ca_dir / "root-cert.pem", token_file=token,
                service_account=client.service_account, admin_port=ports.pop(), status_port=ports.pop(),
                new_session=True))
        for envoy, client in zip(self.envoys, self.layout.clients, strict=True):
            envoy.wait_ready(60)
            wait_until(lambda c=client: _request(c) == 200, 30, what=f"{client.pod} to route to reviews")
        self.loops = [ReviewsLoop(client) for client in self.layout.clients]
        for loop in self.loops:
            loop.start()
        self._open_probe()
        return self

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        self._close_probe()
        for envoy in self.envoys:
            envoy.stop()
        self.backends.stop()

    def _open_probe(self) -> None:
        self._probe = ReadyProbe(self.serve).__enter__()

    def _close_probe(self) -> None:
        if self._probe is not None:
            self._probe.__exit__(None, None, None)
            self.probes.append(self._probe)
            self._probe = None

    # The files the operations write.

    def write_routing(self, split: dict[str, int]) -> None:
        write_atomic(self.config / "routing.yaml", routing_yaml(split))

    def write_rule(self, connections: int) -> None:
        subsets = "\n".join(f"  - {{name: {v}, labels: {{version: {v}}}}}" for v in VERSIONS)
        write_atomic(self.config / "rule.yaml", f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {{maxConnections: {connections}}}
  subsets:
{subsets}
""")

    # Waiting for the mesh to settle.

    def connected(self) -> bool:
        """Every sidecar has a stream to serve and serve has answered it (all types SYNCED)."""
        try:
            syncz = self.serve.json("/debug/syncz")
        except OSError:
            return False
        ids = {config["node"]["id"] for config in syncz
               if all(c.get("configStatus") == "SYNCED" for c in config.get("genericXdsConfigs", []))
               and len(config.get("genericXdsConfigs", [])) == 4}
        return all(f"{client.pod}.default" in ids for client in self.layout.clients)


def _distinct_ports(count: int) -> list[int]:
    """Free ports, no two alike: ten sidecars asking one at a time may be told the same one."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _request(client: Client) -> int:
    connection = http.client.HTTPConnection(client.bind, SERVICE_PORT, timeout=2)
    try:
        connection.request("GET", "/reviews/0", headers={"Host": "reviews"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


# The operations: each takes the mesh, does one thing to it, and says what it did.

def route_split(mesh: FaultMesh) -> str:
    """A valid routing edit: a new split over the three subsets (routes change)."""
    split = _split(mesh.rng)
    mesh.write_routing(split)
    return f"route {split}"


def _split(rng: random.Random) -> dict[str, int]:
    chosen = rng.sample(VERSIONS, rng.randint(1, 3))
    weights = [rng.randint(1, 10) for _ in chosen]
    split = {version: weight * 100 // sum(weights) for version, weight in zip(chosen, weights, strict=True)}
    split[chosen[0]] += 100 - sum(split.values())
    return split


def pool_change(mesh: FaultMesh) -> str:
    """A valid edit of every reviews cluster: Envoy re-creates them and needs their endpoints."""
    connections = mesh.rng.randint(1, 10_000)
    mesh.write_rule(connections)
    return f"maxConnections {connections}"


def extra_service(mesh: FaultMesh) -> str:
    """Clusters appear or disappear: a Service nobody routes to, added or removed."""
    number = mesh.rng.randint(0, 4)
    path = mesh.config / f"extra-{number}.yaml"
    if number in mesh.extra:
        path.unlink()
        mesh.extra.discard(number)
        return f"removed {path.name}"
    write_atomic(path, f"""apiVersion: v1
kind: Service
metadata: {{name: extra-{number}}}
spec:
  ports: [{{name: http, port: {9100 + number}}}]
  selector: {{app: extra-{number}}}
""")
    mesh.extra.add(number)
    return f"added {path.name}"


def bad_file(mesh: FaultMesh) -> str:
    """A file the loader refuses: new, or the routing file itself broken (its last good version
    keeps serving), to be fixed by a later edit."""
    if mesh.rng.random() < 0.5:
        write_atomic(mesh.config / "routing.yaml", routing_yaml({"v3": 100}).replace("  http:", "  htttp:"))
        return "broke routing.yaml"
    number = mesh.rng.randint(0, 2)
    write_atomic(mesh.config / f"bad-{number}.yaml",
                 "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: broken}\n"
                 f"spec: {{host: reviews, trafficPolicy: {{loadBalancer: {{simple: NOT_A_POLICY_{number}}}}}}}\n")
    return f"wrote bad-{number}.yaml"


def kill_restart(mesh: FaultMesh) -> str:
    """kill -9, an edit or two while serve is down, start again; done once every sidecar has
    resynchronised (Envoy's reconnection backoff is its own)."""
    mesh._close_probe()
    mesh.serve.kill()
    edits = [OPERATION_BY_NAME[name](mesh) for name in mesh.rng.sample(["route_split", "pool_change"], mesh.rng.randint(0, 2))]
    mesh.serve.start()
    mesh._open_probe()
    wait_until(mesh.connected, 30, what="every sidecar back in sync after the restart")
    return f"kill -9 and restart ({'; '.join(edits) or 'no edit'})"


def hostile_ads(mesh: FaultMesh) -> str:
    """An ADS client that misbehaves; serve must answer it (or refuse it) without anyone else
    noticing."""
    port = mesh.serve.xds_port
    pod = mesh.layout.clients[mesh.rng.randrange(len(mesh.layout.clients))].pod
    kind = mesh.rng.choice(["names", "garbage", "node", "types", "nack"])
    outcome: Outcome
    if kind == "names":
        outcome = ads_call(port, [eds_request(pod, names(mesh.rng.randint(10_000, 100_000)))])
        assert outcome.code is None, outcome.details
    elif kind == "garbage":
        outcome = ads_call(port, [mesh.rng.randbytes(mesh.rng.randint(1, 4096))])
    elif kind == "node":
        request = eds_request(pod, ["x"])
        request.node.id = "not-an-istio-node"
        outcome = ads_call(port, [request])
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    elif kind == "types":
        requests = [eds_request(pod, []) for _ in range(20)]
        for index, request in enumerate(requests):
            request.type_url = f"{TYPE_PREFIX}example.Kind{index}"
        outcome = ads_call(port, requests, responses=99)
        assert outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED, outcome
    else:
        request = discovery_pb2.DiscoveryRequest(type_url=LISTENER, response_nonce=str(mesh.rng.randint(1, 99)))
        request.node.CopyFrom(eds_request(pod, []).node)
        request.error_detail.message = "spoofed NACK"
        outcome = ads_call(port, [request], timeout=0.2)
    return f"hostile ADS ({kind}): {outcome.code.name if outcome.code else 'answered'}"


def hostile_csds(mesh: FaultMesh) -> str:
    """A CSDS client with a catastrophic or malformed regular expression, or too many matchers."""
    matchers = [node_pb2.NodeMatcher()]
    kind = mesh.rng.choice(["catastrophic", "malformed", "many"])
    if kind == "catastrophic":
        matchers[0].node_id.safe_regex.regex = "(.*.*)*X"
    elif kind == "malformed":
        matchers[0].node_id.safe_regex.regex = "(a)\\1"
    else:
        matchers *= 65
    with grpc.insecure_channel(f"127.0.0.1:{mesh.serve.xds_port}") as channel:
        stub = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(channel)
        try:
            answer = stub.FetchClientStatus(csds_pb2.ClientStatusRequest(node_matchers=matchers), timeout=5)
        except grpc.RpcError as exc:
            assert kind != "catastrophic" and exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            return f"hostile CSDS ({kind}): refused"
    assert kind == "catastrophic" and not answer.config
    return f"hostile CSDS ({kind}): answered"


def swap_directory(mesh: FaultMesh) -> str:
    """`rm -rf DIR; mkdir DIR; cp ...`: the same files, in a new directory at the same path."""
    saved = {path.name: path.read_bytes() for path in mesh.config.iterdir() if path.is_file()}
    shutil.rmtree(mesh.config)
    mesh.config.mkdir()
    for name, content in saved.items():
        (mesh.config / name).write_bytes(content)
    return "rm -rf and recreated the directory"


def replace_directory(mesh: FaultMesh) -> str:
    """`mv DIR DIR.old; mv NEW DIR` (a copy), then a routing edit in the new directory."""
    fresh = mesh.workdir / "mesh.new"
    shutil.copytree(mesh.config, fresh)
    old = mesh.workdir / "mesh.old"
    mesh.config.rename(old)
    fresh.rename(mesh.config)
    done = route_split(mesh)
    shutil.rmtree(old)
    return f"moved a new directory in ({done})"


def truncated_write(mesh: FaultMesh) -> str:
    """A writer that truncates the routing file and writes its new content a moment later."""
    path = mesh.config / "routing.yaml"
    path.write_text("")
    time.sleep(mesh.rng.choice([0.05, 0.3]))
    chosen = mesh.rng.choice(VERSIONS)
    path.write_text(routing_yaml({chosen: 100}))
    return f"truncated routing.yaml, then {chosen}"


Operation = Callable[[FaultMesh], str]
OPERATION_BY_NAME: dict[str, Operation] = {
    op.__name__: op for op in (route_split, pool_change, extra_service, bad_file, kill_restart, hostile_ads, hostile_csds,
                               swap_directory, replace_directory, truncated_write)
}
# Operation names with their weight in the random choice.
OPERATIONS: dict[str, int] = {
    "route_split": 30, "pool_change": 15, "extra_service": 12, "bad_file": 12, "kill_restart": 5, "hostile_ads": 12,
    "hostile_csds": 6, "swap_directory": 3, "replace_directory": 3, "truncated_write": 5,
}


def plan(seed: int, count: int) -> Iterator[tuple[str, float]]:
    """The seeded sequence of `count - 1` operations, each with the pause before it; the last
    operation is `final_edit`, a routing edit every sidecar must take."""
    rng = random.Random(seed)
    chosen = rng.choices(list(OPERATIONS), weights=list(OPERATIONS.values()), k=count - 1)
    for name in chosen:
        yield name, rng.choice([0.0, 0.0, 0.01, 0.05, 0.15])


def final_edit(mesh: FaultMesh) -> tuple[dict[str, Any], str, str]:
    """The last operation, a routing edit, with what `translate` renders for every client once
    it is made (computed from a copy first, so that the clock starts when the file changes) and
    the snapshot version serve will report for it."""
    split = _split(mesh.rng)
    scratch = mesh.workdir / "expected"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(mesh.config, scratch)
    (scratch / "routing.yaml").write_text(routing_yaml(split))
    expected, version = expected_dumps(scratch, mesh.layout.clients)
    mesh.write_routing(split)
    return expected, version, f"route {split} (the last operation)"


def expected_dumps(config: Path, clients: tuple[Client, ...]) -> tuple[dict[str, Any], str]:
    """What `meshctl translate --proxy POD.default -o json` renders for each client from the
    files serve accepts (each file on its own, as serve reads them; refused ones left out), and
    the snapshot's version."""
    from meshctl.config.loader import load_file
    from meshctl.generate.proxy import generate
    from meshctl.model.snapshot import build_snapshot
    from meshctl.resources import to_config_dump

    resources = []
    for path in sorted(config.glob("*.yaml")):
        if not path.name.startswith("."):
            result = load_file(str(path))
            if not result.problems:
                resources.extend(result.resources)
    snapshot = build_snapshot(resources)
    dumps = {client.pod: to_config_dump(generate(snapshot, snapshot.proxy(f"{client.pod}.default")).packed())
             for client in clients}
    return dumps, snapshot.version


def in_sync(mesh: FaultMesh, version: str) -> bool:
    """serve has taken config `version` and every sidecar has acknowledged all of it: the cheap
    sign that the sidecars may hold it, which `differences` then checks resource by resource."""
    try:
        return bool(mesh.serve.json("/debug/configz")["version"] == version and mesh.connected())
    except OSError:
        return False


def differences(expected: Any, envoy: EnvoyAdmin) -> list[str]:
    """Where an Envoy's dump differs from `translate`'s: clusters, listeners and routes as
    proxy-status compares them, and endpoints; empty when it holds exactly that."""
    from meshctl.status.sections import KINDS, ControlPlaneDump, EnvoyDump

    ours = ControlPlaneDump(discovery_pb2.DiscoveryResponse(resources=expected.configs))
    theirs = EnvoyDump(envoy.admin("config_dump?include_eds", timeout=2), envoy.name)
    found = [kind for kind in KINDS if ours.entries(kind) != theirs.entries(kind)]
    section = "envoy.admin.v3.EndpointsConfigDump"
    sent = _assignments(ours.section(section))
    held = _assignments(theirs.section(section))
    if any(held.get(name) != assignment for name, assignment in sent.items()):
        found.append("Endpoints")
    return found


def _assignments(section: dict[str, Any]) -> dict[str, Any]:
    """Endpoint assignments by cluster name, as Envoy shows them: it rebuilds them from its host
    sets, adding the defaults it applied (overprovisioning factor 140, an empty health check
    config per endpoint), which are dropped here; so are those of clusters with inline
    assignments (Envoy lists them too)."""
    out = {}
    for entry in section.get("dynamic_endpoint_configs", []):
        assignment = dict(entry["endpoint_config"])
        if assignment.get("policy") == {"overprovisioning_factor": 140}:
            del assignment["policy"]
        for locality in assignment.get("endpoints", []):
            for endpoint in locality.get("lb_endpoints", []):
                if endpoint.get("endpoint", {}).get("health_check_config") == {}:
                    del endpoint["endpoint"]["health_check_config"]
        out[assignment["cluster_name"]] = assignment
    return out
