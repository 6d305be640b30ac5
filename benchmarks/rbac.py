"""Requests/s through Envoy with and without a 20-rule AuthorizationPolicy: `python benchmarks/rbac.py [--seconds 3] [--rounds 3]`.

Two Envoys side by side, one worker each, the same listener and a direct response (so no
backend is measured): one carries the `envoy.filters.http.rbac` filter meshctl generates for an
ALLOW policy of 20 rules (paths, methods, header, source IP; only the last rule admits the
benchmark's `GET /`, so every request walks all 20), the other none. The load is
benchmarks/httpload.py (two processes per Envoy, keep-alive or one connection per request);
rounds alternate between the Envoys so both see the same machine load. Prints a table and the
machine; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from servebench import machine_description, median, percentile, print_table

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from meshctl.config.kinds.security.authorization_policy import AuthorizationPolicy
from meshctl.generate.authz import build_filters
from meshctl.generate.protobuf import typed
from meshctl.loopback import Envoy, free_port, wait_accepting
from meshctl.model.security import AuthzPolicy

LOAD = Path(__file__).with_name("httpload.py")
RULES = 20


def policy() -> AuthzPolicy:
    """19 rules GET / does not match (each fails on its path), then one it does."""
    rules = [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8", f"192.168.{i}.0/24"]}}],
              "to": [{"operation": {"methods": ["GET", "POST"], "paths": [f"/api/v{i}/*", f"/v{i}/items/{{*}}"]}}],
              "when": [{"key": "request.headers[x-tenant]", "values": [f"tenant-{i}", "shared-*"]}]}
             for i in range(RULES - 1)]
    rules.append({"from": [{"source": {"ipBlocks": ["127.0.0.0/8"]}}], "to": [{"operation": {"paths": ["/"]}}]})
    return AuthzPolicy("default", "twenty-rules", AuthorizationPolicy.of({"rules": rules}))


def bootstrap(port: int, with_rbac: bool) -> bootstrap_pb2.Bootstrap:
    manager = hcm.HttpConnectionManager(stat_prefix="bench", codec_type=hcm.HttpConnectionManager.AUTO)
    if with_rbac:
        manager.http_filters.extend(build_filters([policy()], bundle=("cluster.local",)).http)
    manager.http_filters.add(name="envoy.filters.http.router", typed_config=typed(router_pb2.Router()))
    route = manager.route_config.virtual_hosts.add(name="all", domains=["*"]).routes.add()
    route.match.prefix = "/"
    route.direct_response.status = 200
    route.direct_response.body.inline_string = "ok"
    config = bootstrap_pb2.Bootstrap()
    config.admin.address.socket_address.address = "127.0.0.1"
    config.admin.address.socket_address.port_value = 0
    listener = config.static_resources.listeners.add(name="bench")
    listener.address.socket_address.address = "127.0.0.1"
    listener.address.socket_address.port_value = port
    listener.filter_chains.add().filters.add(name="envoy.filters.network.http_connection_manager",
                                             typed_config=typed(manager))
    return config


def load(port: int, seconds: float, mode: str) -> tuple[int, int, list[float]]:
    """(requests, errors, latencies) of two httpload processes against one Envoy."""
    argv = [sys.executable, str(LOAD), "127.0.0.1", str(port), "bench", str(seconds), mode]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate()[0]) for p in processes]
    return (sum(r["requests"] for r in results), sum(r["errors"] for r in results),
            [v for r in results for v in r["latencies"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rbac-bench-") as scratch:
        ports = {"no policy": free_port(), f"{RULES}-rule ALLOW policy": free_port()}
        envoys = {name: Envoy.start(bootstrap(port, "rule" in name), Path(scratch), name.replace(" ", "-"))
                  for name, port in ports.items()}
        try:
            for name, port in ports.items():
                wait_accepting(port, 15, envoys[name].process, f"Envoy ({name})", logs=[envoys[name].log])
            rows = []
            for mode in ("keepalive", "close"):
                figures: dict[str, list[tuple[int, int, list[float]]]] = {name: [] for name in ports}
                for _ in range(args.rounds):
                    for name, port in ports.items():
                        figures[name].append(load(port, args.seconds, mode))
                for name in ports:
                    rates = [requests / args.seconds for requests, _, _ in figures[name]]
                    latencies = [v for _, _, values in figures[name] for v in values]
                    errors = sum(e for _, e, _ in figures[name])
                    rows.append((f"{name}, {mode}", median(rates), percentile(latencies, 0.5) * 1e6,
                                 percentile(latencies, 0.99) * 1e6, errors))
            print_table(("envoy", "requests/s (median)", "p50 µs", "p99 µs", "errors"), rows)
            print(machine_description())
        finally:
            for envoy in envoys.values():
                envoy.stop()


if __name__ == "__main__":
    main()
