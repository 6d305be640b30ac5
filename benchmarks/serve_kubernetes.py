"""`meshctl serve --kubernetes` at cluster scale: `python benchmarks/serve_kubernetes.py`.

The cluster (benchmarks/kube_cluster.py) is the API emulator of tests/k8s in a process of its
own, speaking real HTTP on loopback to the official client in serve: S Services over ten
namespaces, P pods per Service (Ready, on ten Nodes with zones) and one EndpointSlice per
Service listing them by targetRef. Nothing else: this is the registry istiod's informers hold.

(a) Initial sync, 1,000 Services / 5,000 pods (target: first snapshot in 2 s). In this process,
    3 rounds: from starting the source (one list per kind) to its first update (every object
    reduced and validated), then the translator's first snapshot of it, with this process's CPU
    and the emulator's (both share the machine: the wall time is theirs together); and a serve
    subprocess from exec to `/ready` (adds Python's start-up and imports).
(b) One EndpointSlice change to every affected Envoy ACKed (target: 100 ms after the watch
    event). serve runs as a subprocess with `--debounce-after 0`; E real Envoys (clients with
    Sidecars binding their own loopback address and seeing every namespace, so each holds every
    Service) are connected. A round rewrites one Service's slice on the API server's loop (one
    endpoint leaves, or comes back), which is when the watch event leaves. Times are wall clock
    from that write to each Envoy's ACK of the push (serve's log, 1 ms resolution), and serve's
    own `convergence_ms` (from the start of translating); p50 and max over the Envoys, median
    over the rounds; and serve's CPU time per change, which a loaded machine does not inflate.
(c) serve's RSS with 10,000 pods (2,000 Services x 5): after the first snapshot, and after one
    Envoy seeing every Service has connected and ACKed (its generated config cached).

Nothing is asserted; the tables are the output.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kube_cluster import CLIENT_NAMESPACE, write_kubeconfig
from servebench import (
    EnvoyFleet,
    cpu_seconds,
    LineProcess,
    ServeProcess,
    envoy_clients,
    ended,
    machine_description,
    median,
    meshctl_executable,
    percentile,
    print_table,
)

from meshctl.loopback import http_get, wait_until
from meshctl.model.proxy import INTERCEPTION_NONE, Proxy


class ApiServer(LineProcess):
    """benchmarks/kube_cluster.py: the seeded emulator in a process of its own."""

    def __init__(self, services: int, pods: int, clients: dict[str, str] | None = None) -> None:
        super().__init__("kube_cluster.py", str(services), str(pods), *(f"{k}={v}" for k, v in (clients or {}).items()))
        self.url = str(self.read()["url"])

    def kubeconfig(self, directory: Path) -> str:
        return write_kubeconfig(self.url, directory / "kubeconfig")

    def set_slice(self, service: int, listed: int) -> float:
        """Rewrite a Service's slice with its first `listed` pods; the wall time of the write."""
        return float(self.ask(f"slice {service} {listed}")["written"])


class KubeServeProcess(ServeProcess):
    """servebench's ServeProcess, reading the cluster instead of a directory."""

    def __init__(self, kubeconfig: str, **options: Any) -> None:
        super().__init__(Path(kubeconfig), **options)
        self.kubeconfig = kubeconfig

    def argv(self) -> list[str]:
        debug = f"127.0.0.1:{self.debug_port}" if self.debug_port else ""
        return [meshctl_executable(), "serve", "--kubernetes", "--kubeconfig", self.kubeconfig,
                "--xds-address", f"127.0.0.1:{self.xds_port}", "--debug-address", debug,
                "--debounce-after", "0", "--log-level", self.log_level, "--log-format", "json", "--ca-address", ""]


def client_proxies(count: int) -> list[Proxy]:
    return [Proxy(id=f"{c.name}.{CLIENT_NAMESPACE}", namespace=CLIENT_NAMESPACE, ip=c.ip,
                  dns_domain=f"{CLIENT_NAMESPACE}.svc.cluster.local", labels={"app": "client", "client": c.name},
                  interception=INTERCEPTION_NONE) for c in envoy_clients(count)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}"


# ---------------------------------------------------------------------------------------------
# (a) initial sync


def initial_sync(services: int, pods: int, rounds: int, workdir: Path) -> None:
    from meshctl.generate.translator import Translator
    from meshctl.kube.client import load_client
    from meshctl.sources.kubernetes import KubernetesSource

    api = ApiServer(services, pods)
    with ended(api):
        client = load_client(api.kubeconfig(workdir), None)

        async def once() -> tuple[float, float, int, float, float]:
            started, cpu, api_cpu = time.perf_counter(), time.process_time(), cpu_seconds(api.process.pid)
            updates = KubernetesSource(client).updates()
            first = await anext(updates)
            listed, listed_cpu, api_listed = time.perf_counter(), time.process_time(), cpu_seconds(api.process.pid)
            Translator()(first.resources)
            translated = time.perf_counter()
            await updates.aclose()
            return listed - started, translated - listed, len(first.resources), listed_cpu - cpu, api_listed - api_cpu

        samples = [asyncio.run(once()) for _ in range(rounds)]
        ready = [serve_to_ready(api.kubeconfig(workdir)) for _ in range(rounds)]
    source = [s[0] for s in samples]
    cpu = [s[3] for s in samples]
    api_cpu = [s[4] for s in samples]
    snapshot = [s[1] for s in samples]
    total = [s[0] + s[1] for s in samples]
    print(f"\n(a) initial sync: {services} Services, {services * pods} pods, {services} EndpointSlices "
          f"({samples[0][2]} resources), {rounds} rounds")
    print_table(("phase", "median ms", "max ms"), [
        ("list every kind, reduce and validate (the source's first update)", _ms(median(source)), _ms(max(source))),
        ("  of which CPU in this process (parse, reduce, validate)", _ms(median(cpu)), _ms(max(cpu))),
        ("  meanwhile, the API emulator's CPU (its own process)", _ms(median(api_cpu)), _ms(max(api_cpu))),
        ("first snapshot (the translator)", _ms(median(snapshot)), _ms(max(snapshot))),
        ("to the first snapshot, in all (target <= 2000 ms)", _ms(median(total)), _ms(max(total))),
        ("serve subprocess, exec to /ready", _ms(median(ready)), _ms(max(ready))),
    ])


def serve_to_ready(kubeconfig: str) -> float:
    serve = KubeServeProcess(kubeconfig, log_level="info", debug_http=True)
    started = time.perf_counter()
    serve.process = subprocess.Popen(serve.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with ended(serve):
        wait_until(lambda: http_get(f"http://127.0.0.1:{serve.debug_port}/ready", 1)[0] == 200, 120,
                   what="serve /ready", interval=0.01)
        return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# (b) one EndpointSlice change to every affected Envoy


def slice_change(services: int, pods: int, envoys: int, rounds: int, workdir: Path) -> None:
    proxies = client_proxies(envoys)
    api = ApiServer(services, pods, {p.pod_name: p.ip for p in proxies})
    serve = KubeServeProcess(api.kubeconfig(workdir))
    fleet = EnvoyFleet(workdir / "envoys")
    with ended(fleet, serve, api):
        serve.start(timeout=180)
        fleet.start(proxies, serve.xds_port).wait_live(180)
        ids = [p.id for p in proxies]
        serve.converged(0, ids, change=False, timeout=180)
        wall: list[Sequence[float]] = []
        server: list[Sequence[float]] = []
        cpu: list[float] = []
        for round_ in range(rounds):
            service = (round_ // 2 * 37) % services  # one endpoint leaves, then comes back
            since, used = serve.mark(), serve.cpu_seconds()
            written = api.set_slice(service, pods - 1 if round_ % 2 == 0 else pods)
            result = serve.converged(since, ids, written=written, timeout=60)
            cpu.append(serve.cpu_seconds() - used)
            wall.append(list(result.wall_ms.values()))
            server.append(list(result.server_ms.values()))
    print(f"\n(b) one EndpointSlice change, {services} Services / {services * pods} pods, {envoys} "
          f"Envoy{'s' if envoys != 1 else ''} holding every Service, {rounds} rounds (median of the rounds)")
    print_table(("measure", "p50 over Envoys ms", "max over Envoys ms"), [
        ("watch event -> ACK, wall clock (target <= 100 ms)",
         f"{median(percentile(r, 0.5) for r in wall):.0f}", f"{median(max(r) for r in wall):.0f}"),
        ("translation start -> ACK (serve's clock)",
         f"{median(percentile(r, 0.5) for r in server):.0f}", f"{median(max(r) for r in server):.0f}"),
    ])
    print(f"serve's CPU per change (from the write to the last ACK and 0.3 s of quiet after it): "
          f"median {median(cpu) * 1e3:.0f} ms, max {max(cpu) * 1e3:.0f} ms")


# ---------------------------------------------------------------------------------------------
# (c) memory


def memory(services: int, pods: int, workdir: Path) -> None:
    proxies = client_proxies(1)
    api = ApiServer(services, pods, {p.pod_name: p.ip for p in proxies})
    serve = KubeServeProcess(api.kubeconfig(workdir))
    fleet = EnvoyFleet(workdir / "rss-envoy")
    with ended(fleet, serve, api):
        serve.start(timeout=300)
        time.sleep(1.0)
        first = serve.rss_kb()
        fleet.start(proxies, serve.xds_port).wait_live(300)
        serve.converged(0, [p.id for p in proxies], change=False, timeout=300)
        time.sleep(1.0)
        connected = serve.rss_kb()
    print(f"\n(c) serve's RSS, {services} Services / {services * pods} pods / {services} EndpointSlices "
          "(target <= 300 MB)")
    print_table(("when", "RSS MB"), [("first snapshot, no proxy", f"{first / 1024:.0f}"),
                                     ("one Envoy holding every Service, ACKed", f"{connected / 1024:.0f}")])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=5, help="pods per Service")
    parser.add_argument("--envoys", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rss-services", type=int, default=2000)
    parser.add_argument("--only", choices=("sync", "change", "memory"))
    args = parser.parse_args()
    print(machine_description())
    with tempfile.TemporaryDirectory(prefix="meshctl-kube-bench-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "sync"):
            initial_sync(args.services, args.pods, 3, workdir)
        if args.only in (None, "change"):
            slice_change(args.services, args.pods, args.envoys, args.rounds, workdir)
        if args.only in (None, "memory"):
            memory(args.rss_services, args.pods, workdir)


if __name__ == "__main__":
    main()
