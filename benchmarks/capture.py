"""Requests/s through a captured sidecar vs a bound one: `sudo python benchmarks/capture.py [--seconds 3] [--rounds 3]`.

Two pods side by side, each in its own network namespace linked to a node namespace that holds
`meshctl serve` and a fast backend (an Envoy answering every reviews address with a direct
response, so Python is not what is measured):

- captured: `meshctl iptables` (REDIRECT, istio-init's flags) and a REDIRECT sidecar; the app
  calls the reviews ClusterIP, which iptables sends to 15001;
- bound: no iptables, a sidecar with interception NONE whose Sidecar egress listener binds
  127.0.0.2:9080; the app calls that address.

Both Envoys run as UID 1337 with one worker; the load (benchmarks/httpload.py, two processes
running as UID 1000 in the pod) is either keep-alive or one connection per request, since
capture costs most per connection (a conntrack NAT entry per SYN). Rounds alternate between the
pods so both see the same machine load. Prints a table and the machine; asserts nothing. Needs
root, iptables and iproute2; every process and namespace is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from servebench import machine_description, median, percentile, print_table

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "capture"))

from capture_support import Netns, link, namespaces, pod_sidecar  # noqa: E402
from envoy.config.bootstrap.v3 import bootstrap_pb2  # noqa: E402
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: E402
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from meshctl.demo.mesh import VERSIONS, routing_yaml  # noqa: E402
from meshctl.envoybin import find_envoy  # noqa: E402
from meshctl.loopback import Processes, wait_until  # noqa: E402
from meshctl.security.cadir import open_ca_directory  # noqa: E402

LOAD = Path(__file__).with_name("httpload.py")
PORT, VIP = 9080, "10.96.0.50"
BACKENDS = dict(zip(VERSIONS, ("10.77.1.21", "10.77.1.22", "10.77.1.23"), strict=True))
CAPTURED_IP, BOUND_IP, BOUND_LISTENER = "10.77.0.2", "10.77.3.2", "127.0.0.2"


@dataclass(frozen=True)
class Side:
    label: str
    netns: Netns
    host: str  # where the app connects


def mesh_yaml() -> str:
    pods = "".join(f"""---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-{version}
  labels: {{app: reviews, version: {version}}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec: {{containers: [{{name: reviews, image: reviews}}]}}
status: {{podIP: {ip}}}
""" for version, ip in BACKENDS.items())
    clients = "".join(f"""---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
  annotations: {{sidecar.istio.io/interceptionMode: {mode}}}
spec: {{containers: [{{name: app, image: app}}]}}
status: {{podIP: {ip}}}
""" for name, mode, ip in (("captured", "REDIRECT", CAPTURED_IP), ("bound", "NONE", BOUND_IP)))
    subsets = "".join(f"  - {{name: {v}, labels: {{version: {v}}}}}\n" for v in VERSIONS)
    return f"""apiVersion: v1
kind: Service
metadata: {{name: reviews}}
spec:
  clusterIP: {VIP}
  ports: [{{name: http, port: {PORT}}}]
  selector: {{app: reviews}}
{pods}{clients}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: bound}}
spec:
  workloadSelector: {{labels: {{app: bound}}}}
  egress:
  - port: {{number: {PORT}, protocol: HTTP, name: http}}
    bind: {BOUND_LISTENER}
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  subsets:
{subsets}---
{routing_yaml()}"""


def backend_bootstrap() -> str:
    """An Envoy answering `reviews-vN` on each backend address: faster than any Python server."""
    config = bootstrap_pb2.Bootstrap()
    config.admin.address.socket_address.address = "127.0.0.1"
    config.admin.address.socket_address.port_value = 15100
    for version, ip in BACKENDS.items():
        listener = config.static_resources.listeners.add(name=f"reviews-{version}")
        listener.address.socket_address.address = ip
        listener.address.socket_address.port_value = PORT
        manager = hcm.HttpConnectionManager(stat_prefix=f"reviews-{version}")
        manager.http_filters.add(name="envoy.filters.http.router").typed_config.Pack(router_pb2.Router())
        host = manager.route_config.virtual_hosts.add(name="all", domains=["*"])
        route = host.routes.add()
        route.match.prefix = "/"
        route.direct_response.status = 200
        route.direct_response.body.inline_string = f"reviews-{version}"
        listener.filter_chains.add().filters.add(name="envoy.filters.network.http_connection_manager").typed_config.Pack(
            manager)
    return json_format.MessageToJson(config)


def load(side: Side, seconds: float, mode: str, clients: int = 2) -> tuple[float, list[float], int]:
    """requests/s, latencies (s) and errors of `clients` load processes run as UID 1000."""
    argv = [sys.executable, str(LOAD), side.host, str(PORT), "reviews", str(seconds), mode]
    processes = [subprocess.Popen(side.netns.argv(argv, 1000, 1000), stdout=subprocess.PIPE, text=True)
                 for _ in range(clients)]
    results = [json.loads(process.communicate(timeout=seconds + 60)[0]) for process in processes]
    latencies = [latency for result in results for latency in result["latencies"]]
    return sum(r["requests"] for r in results) / seconds, latencies, sum(r["errors"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/capture.py needs root (network namespaces and iptables)")
    workdir = Path(tempfile.mkdtemp(prefix="meshctl-capture-bench-"))
    tag = os.getpid() % 100000
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        node, captured, bound = stack.enter_context(namespaces(f"mcbn{tag}", f"mcbc{tag}", f"mcbb{tag}"))
        link(captured, f"{CAPTURED_IP}/24", node, "10.77.0.1/24")
        link(bound, f"{BOUND_IP}/24", node, "10.77.3.1/24")
        captured.ip("route", "add", "default", "via", "10.77.0.1")
        bound.ip("route", "add", "default", "via", "10.77.3.1")
        for ip in BACKENDS.values():
            node.ip("addr", "add", f"{ip}/32", "dev", "lo")
        start = stack.enter_context(Processes()).start
        log = stack.enter_context(open(workdir / "processes.log", "wb"))  # noqa: SIM115
        start(node.argv([find_envoy(), "--config-yaml", backend_bootstrap(), "--disable-hot-restart",
                         "--concurrency", "1", "-l", "error"]), stdout=log, stderr=subprocess.STDOUT)
        mesh = workdir / "mesh"
        mesh.mkdir()
        (mesh / "mesh.yaml").write_text(mesh_yaml())
        ca_dir = workdir / "ca"
        open_ca_directory(ca_dir, "cluster.local")
        start(node.argv([sys.executable, "-m", "meshctl", "serve", "--config-dir", str(mesh), "--xds-address",
                         "0.0.0.0:15010", "--debug-address", "127.0.0.1:15014", "--ca-address", "0.0.0.0:15012",
                         "--ca-dir", str(ca_dir)]), stdout=log, stderr=subprocess.STDOUT)
        subprocess.run(captured.argv([sys.executable, "-m", "meshctl", "iptables", "-u", "1337", "-m", "REDIRECT",
                                      "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"]), check=True)
        for netns, pod, mode, gateway in ((captured, "captured", "REDIRECT", "10.77.0.1"),
                                          (bound, "bound", "NONE", "10.77.3.1")):
            pod_sidecar(stack, netns, f"{pod}.default", (1337, 1337), ca_dir=ca_dir, config=mesh, account="default",
                        xds_address=f"{gateway}:15010", ca_address=f"{gateway}:15012", interception=mode)
        sides = [Side("captured (REDIRECT, iptables)", captured, VIP), Side("bound (NONE)", bound, BOUND_LISTENER)]
        for side in sides:
            wait_until(lambda s=side: load(s, 0.2, "close", 1)[0] > 0, timeout=60, interval=0.2,
                       what=f"the {side.label} sidecar to route")
        figures: dict[tuple[str, str], list[tuple[float, list[float], int]]] = {}
        for _ in range(args.rounds):
            for mode in ("keepalive", "close"):
                for side in sides:
                    figures.setdefault((mode, side.label), []).append(load(side, args.seconds, mode))
    rows = []
    for mode in ("keepalive", "close"):
        bound_rate = median(rate for rate, _, _ in figures[(mode, sides[1].label)])
        for side in sides:
            runs = figures[(mode, side.label)]
            rate = median(r for r, _, _ in runs)
            latencies = [latency * 1000 for _, values, _ in runs for latency in values]
            rows.append([f"{'keep-alive' if mode == 'keepalive' else 'connection per request'}: {side.label}",
                         f"{rate:,.0f}", f"{rate / bound_rate:.2f}", f"{percentile(latencies, 0.5):.2f}",
                         f"{percentile(latencies, 0.99):.2f}", sum(e for _, _, e in runs)])
    print(f"capture benchmark: {args.rounds} rounds of {args.seconds:g}s per pod and workload, 2 load processes")
    print_table(["workload: sidecar", "requests/s (median)", "vs bound", "p50 ms", "p99 ms", "errors"], rows)
    print(machine_description())


if __name__ == "__main__":
    main()
