"""Workload identity: `python benchmarks/identity.py [--seconds S] [--runs N] [--rotations N]`.

(a) CA signing rate, EC P-256 CSRs:
    - the CertificateAuthority alone (parse and verify the CSR, sign the leaf), in this process;
    - the whole CreateCertificate handler (token verified, CSR signed, counted, logged), in this
      process, one thread;
    - over gRPC and TLS to a real `meshctl serve` (its CA port), 8 client threads sharing one
      channel for S seconds; serve is one Python process (one core for the handler, the GIL),
      and its own CPU time is reported next to the wall-clock rate.
(b) Agent start to first certificate in Envoy, serve warm (running, CA up, config accepted):
    from the exec of `meshctl agent` to Envoy's ACK of its `default` secret (from the agent's own
    debug log, timestamps to the millisecond), split into: exec → Envoy started (interpreter,
    flags, and the bootstrap, which Envoy's own process writes before its exec), then SDS
    listening (before the certificate is asked for), Envoy's first SDS request, the certificate
    issued (key, CSR, CA call, all while Envoy boots), and last Envoy holding the certificate
    (→ ACK: the later of Envoy's request and the certificate). On a shared machine these
    wall-clock times are mostly waiting for a core, so the CPU time the agent and Envoy's
    process spent until the ACK is shown too (read when the ACK is seen, to the microsecond:
    the scheduler's count for each of the process's threads). N runs, one agent at a time, told
    its service account (no config directory read), one Envoy worker. Then the floor, in the
    same run: Envoy alone (the agent's bootstrap and flags) against a stand-in SDS that holds a
    certificate already, from its exec to its SDS request and its ACK. `--baseline-src DIR`
    alternates each run with the meshctl in DIR (e.g. main's: `git archive main src | tar -x -C
    DIR`), same machine state.
(c) Rotation push: an agent asking for 4 s certificates renews every ~2 s; for each renewal,
    the time from the new certificate being published to the SDS server to Envoy's ACK of it
    (the stream's `convergence_ms`), and the whole renewal (new key, CSR to the CA over TLS,
    answer checked) measured in this process with the agent's own CA client.

meshctl's modules are compiled to bytecode first (in its __pycache__ directories), as an
installed meshctl's are (pip compiles them at install): a source checkout run with
PYTHONDONTWRITEBYTECODE and no bytecode compiles every module it imports on every start, some
70 ms of CPU no deployed sidecar spends.

Best / median / max; nothing is asserted. Every process started is ended by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from servebench import cpu_seconds, machine_description, median, print_table

from meshctl.agent.caclient import CaClient
from meshctl.agent.tokens import token_file
from meshctl.agent.certificate import WorkloadCertificate, certificate_request, new_key
from meshctl.loopback import LOOPBACK, ControlPlane, Processes, free_port, wait_until
from meshctl.security.authenticate import Credentials
from meshctl.security.ca import CertificateAuthority, self_signed_bundle
from meshctl.security.cadir import read_token_key
from meshctl.security.service import CertificateService
from meshctl.security.spiffe import spiffe_id
from meshctl.security.tokens import TokenAuthenticator, TokenSigner
from meshctl.wire import ca_pb2

IDENTITY = spiffe_id("cluster.local", "default", "bench")
# The benchmarked sidecar and a peer it calls with Istio mTLS: its cluster for the peer needs
# the certificate, so Envoy asks for it as a sidecar in a mesh does (its listener binds loopback).
MESH = """\
apiVersion: v1
kind: Service
metadata: {{name: peer, namespace: default}}
spec: {{ports: [{{name: http, port: {port}}}], selector: {{app: peer}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: peer, namespace: default, labels: {{app: peer}}}}
spec: {{serviceAccountName: peer, containers: [{{name: app, image: app}}]}}
status: {{podIP: 127.0.0.2}}
---
apiVersion: v1
kind: Pod
metadata:
  name: bench
  namespace: default
  labels: {{app: bench}}
  annotations: {{sidecar.istio.io/interceptionMode: NONE}}
spec: {{serviceAccountName: bench, containers: [{{name: app, image: app}}]}}
status: {{podIP: 127.0.0.1}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: bench, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: bench}}}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
"""
_STAMP = re.compile(r"^time=(\S+) .*?msg=(\"[^\"]+\"|\S+)")


def csrs(count: int) -> list[str]:
    return [certificate_request(new_key(), IDENTITY) for _ in range(count)]


def rate(seconds: float, work: Sequence[object], call: object) -> float:
    """Calls per second of `call(item)` over `work`, repeated until `seconds` have passed."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in work:
            call(item)  # type: ignore[operator]
        done += len(work)
    return done / (time.perf_counter() - started)


def in_process(seconds: float) -> list[list[object]]:
    authority = CertificateAuthority(self_signed_bundle("cluster.local"))
    signer = TokenSigner(new_key())
    service = CertificateService(authority, TokenAuthenticator(signer.key.public_key(), "cluster.local"))
    credentials = Credentials({"authorization": (f"Bearer {signer.mint('default', 'bench')}",)})
    requests = [ca_pb2.IstioCertificateRequest(csr=csr) for csr in csrs(200)]
    alone = rate(seconds, [r.csr for r in requests], lambda csr: authority.sign_csr(csr, [IDENTITY]))
    handler = rate(seconds, requests, lambda request: service.issue(request, credentials))
    service.close()
    return [["CertificateAuthority.sign_csr, in process", f"{alone:,.0f}", ""],
            ["CreateCertificate handler (token + sign), in process", f"{handler:,.0f}", ""]]


def over_grpc(serve: ControlPlane, seconds: float) -> list[object]:
    import grpc

    from meshctl.wire import ca_pb2_grpc

    ca_dir, ca_port = serve.ca_dir, serve.ca_port
    token = TokenSigner(read_token_key(ca_dir)).mint("default", "bench")
    requests = [ca_pb2.IstioCertificateRequest(csr=csr) for csr in csrs(200)]
    credentials = grpc.ssl_channel_credentials((ca_dir / "root-cert.pem").read_bytes())
    channel = grpc.secure_channel(f"127.0.0.1:{ca_port}", credentials,
                                  options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")])
    stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
    metadata = [("authorization", f"Bearer {token}")]
    stub.CreateCertificate(requests[0], metadata=metadata, timeout=10)
    counts = [0] * 8
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < stop:
            stub.CreateCertificate(requests[counts[index] % len(requests)], metadata=metadata, timeout=10)
            counts[index] += 1

    cpu_before, started = cpu_seconds(serve.process.pid), time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(counts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, cpu_seconds(serve.process.pid) - cpu_before
    channel.close()
    return ["CreateCertificate over gRPC+TLS to meshctl serve (8 clients)", f"{sum(counts) / elapsed:,.0f}",
            f"{sum(counts) / cpu:,.0f}" if cpu else "?"]


def _events(log: Path) -> list[tuple[float, str, str]]:
    """(Unix time, message, line) of each agent log event, in order."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        found = _STAMP.match(line)
        if found:
            stamp = datetime.datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
            out.append((stamp.timestamp(), found.group(2).strip('"'), line))
    return out


MILESTONES = {  # table row → the agent's log event that marks it
    "Envoy started": "started Envoy",
    "SDS listening": "serving SDS",
    "Envoy asks for its certificate": "connected",
    "certificate issued": "certificate issued",
}


def agent_start(serve: ControlPlane, token: Path, workdir: Path, runs: int, baseline: Path | None
                ) -> tuple[list[list[object]], dict[str, list[float]]]:
    """exec → each milestone of the agent's start, ms, per run (alternating with the baseline's
    agent when there is one); also each run's Envoy start → Envoy's SDS request."""
    kinds = ["this"] + (["baseline"] if baseline else [])
    phases = {kind: {name: [] for name in [*MILESTONES, "Envoy holds it (ACK)"]} for kind in kinds}
    cpu: dict[str, dict[str, list[float]]] = {kind: {"agent": [], "Envoy process": []} for kind in kinds}
    asked: dict[str, list[float]] = {kind: [] for kind in kinds}
    for run in range(runs):
        for kind in kinds:
            sidecar_dir = workdir / f"start-{run}-{kind}"
            sidecar_dir.mkdir()
            wrap = (lambda argv: ["env", f"PYTHONPATH={baseline}", *argv]) if kind == "baseline" else None
            exec_time = time.time()
            sidecar = serve.sidecar("bench.default", sidecar_dir, "bench", token, service_account="bench",
                                    log_level="debug", wrap=wrap)
            try:
                wait_until(lambda: sum(1 for _, message, line in _events(sidecar.log)
                                       if message == "ACK" and "type=SDS" in line) >= 1, 60,
                           what="Envoy's first SDS ACK")
                events = _events(sidecar.log)
                first = {message: stamp for stamp, message, _ in reversed(events)}
                ack = min(stamp for stamp, message, line in events if message == "ACK" and "type=SDS" in line
                          and stamp >= first["certificate issued"])
                for name, message in MILESTONES.items():
                    phases[kind][name].append((first[message] - exec_time) * 1e3)
                phases[kind]["Envoy holds it (ACK)"].append((ack - exec_time) * 1e3)
                asked[kind].append((first["connected"] - first["started Envoy"]) * 1e3)
                cpu[kind]["agent"].append(_cpu_ms(sidecar.process.pid))
                cpu[kind]["Envoy process"].append(_cpu_ms(sidecar.envoy_pid))
            finally:
                sidecar.stop()
    rows: list[list[object]] = []
    for name in phases["this"]:
        rows.append([f"exec → {name}", *(cell for kind in kinds for cell in _spread(phases[kind][name], 0))])
    for name in cpu["this"]:
        rows.append([f"CPU of the {name} until the ACK", *(cell for kind in kinds for cell in _spread(cpu[kind][name], 0))])
    rows.append(["Envoy started → its SDS request", *(cell for kind in kinds for cell in _spread(asked[kind], 0))])
    return rows, asked


def _cpu_ms(pid: int) -> float:
    """The CPU time of process `pid`'s threads so far, ms, from the scheduler's own count (ns):
    /proc's user and system times come in 10 ms ticks, as coarse as the differences sought.
    Threads that already ended are not counted (the agent's and Envoy's live on)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e6


def envoy_floor(serve: ControlPlane, token: Path, workdir: Path, runs: int) -> list[list[object]]:
    """Envoy alone, as the agent runs it (the same bootstrap, written by the agent's own code,
    the same flags), against a stand-in SDS server in this process that holds a certificate
    already: Envoy's exec → its SDS request → its ACK. The agent's start cannot beat this."""
    import logging

    from meshctl.agent.envoy import EnvoyProcess, EnvoySettings
    from meshctl.agent.launch import AgentOptions, write_bootstrap
    from meshctl.agent.sds import SdsServer
    from meshctl.envoybin import find_envoy
    from meshctl.model.proxy import Proxy

    seen: list[tuple[float, str]] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.created, record.getMessage()))

    handler = Seen()
    for name in ("meshctl.xds", "meshctl.agent"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    proxy = Proxy(id="bench.default", namespace="default", ip="127.0.0.1", dns_domain="default.svc.cluster.local",
                  interception="NONE")
    socket_dir = Path(tempfile.mkdtemp(prefix="meshctl-sds-"))
    started: list[float] = []
    asked: list[float] = []
    acked: list[float] = []

    async def measure() -> None:
        client = CaClient(serve.ca_address, (serve.ca_dir / "root-cert.pem").read_bytes(), token_file(token))
        key = new_key()
        certificate = WorkloadCertificate.from_answer(key, await client.certify(certificate_request(key, IDENTITY), 3600))
        await client.close()
        sds = SdsServer(socket_dir / "socket")
        await sds.start()
        sds.publish(certificate)
        try:
            for run in range(runs):
                options = AgentOptions(
                    proxy=proxy, service_account="bench", trust_domain="cluster.local", xds_host=LOOPBACK,
                    xds_port=serve.xds_port, ca_address=serve.ca_address, ca_roots=b"", token=token_file(token),
                    envoy=EnvoySettings(find_envoy(), concurrency=1, log_level="error"), workdir=workdir / f"floor-{run}",
                    sds_socket=socket_dir / "socket", admin_port=free_port())
                options.workdir.mkdir()
                write_bootstrap(options)
                seen.clear()
                envoy = EnvoyProcess.start(options.envoy, options.workdir)
                envoy.watch()
                try:
                    while not any(message == "ACK" for _, message in seen):
                        await asyncio.sleep(0.005)
                    begin = next(stamp for stamp, message in seen if message == "started Envoy")
                    started.append(begin)
                    asked.append((next(stamp for stamp, message in seen if message == "connected") - begin) * 1e3)
                    acked.append((next(stamp for stamp, message in seen if message == "ACK") - begin) * 1e3)
                finally:
                    await envoy.stop()
                    await asyncio.sleep(0.1)  # the stream's end, before the next Envoy's start
        finally:
            await sds.stop()

    try:
        asyncio.run(measure())
    finally:
        for name in ("meshctl.xds", "meshctl.agent"):
            logging.getLogger(name).removeHandler(handler)
    return [["Envoy alone: started → its SDS request", *_spread(asked, 0)],
            ["Envoy alone: started → ACK (certificate ready)", *_spread(acked, 0)]]


def rotation(serve: ControlPlane, token: Path, workdir: Path, rotations: int) -> list[list[object]]:
    sidecar = serve.sidecar("bench.default", workdir, "rotating", token, service_account="bench", log_level="debug",
                            secret_ttl="4s")
    try:
        def pushes() -> list[float]:
            """convergence_ms of the first SDS ACK after each renewal (not the first certificate)."""
            out, renewed = [], False
            issued = 0
            for _, message, line in _events(sidecar.log):
                if message == "certificate issued":
                    issued += 1
                    renewed = issued > 1
                elif message == "ACK" and "type=SDS" in line and renewed:
                    out.append(float(re.search(r"convergence_ms=([0-9.]+)", line).group(1)))  # type: ignore[union-attr]
                    renewed = False
            return out

        wait_until(lambda: len(pushes()) >= rotations, 10 + 3 * rotations, what=f"{rotations} renewals")
        values = pushes()[:rotations]
    finally:
        sidecar.stop()

    async def renewals() -> list[float]:
        client = CaClient(serve.ca_address, (serve.ca_dir / "root-cert.pem").read_bytes(), token_file(token))
        times = []
        for _ in range(rotations + 1):
            started = time.perf_counter()
            key = new_key()
            WorkloadCertificate.from_answer(key, await client.certify(certificate_request(key, IDENTITY), 4))
            times.append((time.perf_counter() - started) * 1e3)
        await client.close()
        return times[1:]  # the first one also opens the TLS channel

    renewal = asyncio.run(renewals())
    return [["new certificate published → Envoy's ACK", *_spread(values)],
            ["renewal: key + CSR + CA over TLS + check", *_spread(renewal)]]


def _spread(values: Sequence[float], digits: int = 1) -> list[str]:
    return [f"{value:.{digits}f}" for value in (min(values), median(values), max(values))]


def compile_meshctl(baseline: Path | None = None) -> None:
    """meshctl's bytecode in its package's __pycache__ directories, as pip leaves it (and the
    baseline's)."""
    import compileall

    import meshctl

    compileall.compile_dir(Path(meshctl.__file__).parent, quiet=1)
    if baseline is not None:
        compileall.compile_dir(baseline / "meshctl", quiet=1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rotations", type=int, default=10)
    parser.add_argument("--only", choices=("signing", "start", "rotation"), help="run one part only")
    parser.add_argument("--baseline-src", type=Path, help="(b) also for the meshctl in this src directory (e.g. "
                        "`git archive main src | tar -x -C DIR`, then DIR/src), runs alternating")
    args = parser.parse_args(argv)
    load = f"{os.getloadavg()[0]:.1f}"
    parts = {args.only} if args.only else {"signing", "start", "rotation"}
    signing = in_process(args.seconds) if "signing" in parts else []
    with tempfile.TemporaryDirectory(prefix="meshctl-identity-bench-") as scratch, Processes() as processes:
        work = Path(scratch)
        compile_meshctl(args.baseline_src)
        (work / "mesh").mkdir()
        (work / "mesh" / "mesh.yaml").write_text(MESH.format(port=free_port()))
        serve = ControlPlane(processes.start, work / "mesh", work / "ca", work / "serve.log",
                             extra=["--log-level", "warning"]).wait_ready()
        if "signing" in parts:
            signing.append(over_grpc(serve, args.seconds))
        token = serve.token("default", "bench", work / "token")
        if "start" in parts:
            start, _ = agent_start(serve, token, work, args.runs, args.baseline_src)
            start += envoy_floor(serve, token, work, args.runs)
        if "rotation" in parts:
            rotations = rotation(serve, token, work, args.rotations)
    if "signing" in parts:
        print("(a) CA signing rate, EC P-256 CSRs (target: 300/s on one core)")
        print_table(["path", "CSRs/s (wall)", "CSRs per CPU-second of serve"], signing)
        print()
    if "start" in parts:
        print(f"(b) agent start to first certificate in Envoy, serve warm, ms, {args.runs} runs (target: 150 ms)")
        columns = ["best", "median", "max"]
        if args.baseline_src:
            columns = [*columns, *(f"{name} (baseline)" for name in columns)]
        print_table(["milestone", *columns], start)
        print()
    if "rotation" in parts:
        print(f"(c) rotation, ms, {args.rotations} renewals of 4 s certificates (target: push ≤ 50 ms)")
        print_table(["step", "best", "median", "max"], rotations)
        print()
    print(machine_description())
    print(f"load average before and after: {load}, {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
