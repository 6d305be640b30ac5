"""Paths and helpers shared by test packages (tests/ is on sys.path via pytest's `pythonpath`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"


BASE = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.0.50
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.0.60
  ports: [{name: http, port: 9080}, {name: grpc-api, port: 9090}, {name: web, port: 7000}]
  selector: {app: ratings}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: default}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client, version: v1}}
    spec: {containers: [{name: c, image: c}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: default}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {serviceAccountName: reviews, containers: [{name: r, image: r, ports: [{containerPort: 9080}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2, namespace: default}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  template:
    metadata: {labels: {app: reviews, version: v2}}
    spec: {serviceAccountName: reviews, containers: [{name: r, image: r}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  template:
    metadata: {labels: {app: ratings}}
    spec: {serviceAccountName: ratings, containers: [{name: r, image: r}]}
"""

TCP_DB = """
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: 10.96.7.7
  ports: [{name: tcp-pg, port: 5432}]
  selector: {app: ratings}
"""
"""A plain TCP service beside BASE's (its listener is `10.96.7.7_5432`, served by ratings)."""


def tcp_db_rule(policy: str = "", subsets: str = "") -> str:
    """A DestinationRule for TCP_DB's service: `policy` and `subsets` are its spec's
    `trafficPolicy` and `subsets` (YAML, indented as spec fields)."""
    return f"""
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: db, namespace: default}}
spec:
  host: db
{policy}{subsets}"""

INGRESS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  template:
    metadata: {labels: {istio: ingressgateway}}
    spec: {containers: [{name: istio-proxy, image: proxyv2}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
"""
"""An ingress gateway beside BASE's workloads (`deploy/ingress.istio-system`), serving plain HTTP
on 8080 (its listener `0.0.0.0_8080`, route `http.8080`)."""


def peer_authentication(spec: str, namespace: str = "istio-system", name: str = "default") -> str:
    """A PeerAuthentication document; `spec` is its indented body (mesh-wide by default)."""
    return f"""apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{spec}
"""


def vhost(config: Any, route: str, name: str) -> Any:
    """A virtual host of a route configuration, by names."""
    (found,) = [r for r in config.routes if r.name == route]
    return {vh.name: vh for vh in found.virtual_hosts}[name]


def cluster(config: Any, name: str) -> Any:
    return {c.name: c for c in config.clusters}[name]


def connection_manager(config: Any, listener: str, transport: str = "raw_buffer") -> Any:
    """The HttpConnectionManager of the listener's first HTTP chain of that transport."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    found = {item.name: item for item in config.listeners}[listener]
    for chain in found.filter_chains:
        last = chain.filters[-1]
        if last.name == "envoy.filters.network.http_connection_manager" and (
                chain.filter_chain_match.transport_protocol in ("", transport)):
            manager = hcm_pb2.HttpConnectionManager()
            assert last.typed_config.Unpack(manager)
            return manager
    raise AssertionError(f"no HTTP chain in {listener}")


def changed(base: Any, text: str, cleared: tuple[str, ...] = ()) -> Any:
    """A copy of the message `base` with the `cleared` fields cleared, then `text` (text format) merged in."""
    from google.protobuf import text_format

    out = type(base)()
    out.CopyFrom(base)
    for name in cleared:
        out.ClearField(name)
    text_format.Merge(text, out)
    return out


def assert_matches_golden(path: Path, actual: str) -> None:
    """Byte-for-byte comparison with a golden file; MESHCTL_UPDATE_GOLDEN=1 rewrites it first
    (then review the diff by hand)."""
    if os.environ.get("MESHCTL_UPDATE_GOLDEN"):
        path.write_bytes(actual.encode())
    assert actual == path.read_bytes().decode(), f"{path.name} differs from the golden file"


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """`meshctl ARGV` run in-process: its exit code, stdout and stderr."""
    from meshctl.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_demo_routed(out: str) -> None:
    """What `meshctl demo` prints when its steps checked out, with or without capture: jason on
    v2, everyone else on v1, then 50/50 v1/v3 after the edit; under STRICT mTLS details seeing
    each client's SPIFFE ID and refusing a plaintext caller; ratings refused by details'
    AuthorizationPolicy until the policy names it, productpage never; every sidecar SYNCED."""
    assert re.search(r"^end-user: jason\s+0\s+20\s+0\s+0\s+all v2$", out, re.MULTILINE), out
    assert re.search(r"^no header\s+20\s+0\s+0\s+0\s+all v1$", out, re.MULTILINE), out
    split = re.search(r"^no header\s+(\d+)\s+0\s+(\d+)\s+0\s+~50/50 v1/v3$", out, re.MULTILINE)
    assert split and int(split[1]) + int(split[2]) == 200, out
    took = re.search(r"the edit took effect (\d+) ms after the file changed", out)
    assert took and int(took[1]) <= 1000, out
    synced = [line for line in out.splitlines() if "SYNCED (" in line]
    assert sorted(line.split()[0] for line in synced) == [
        "details-v1.default", "productpage-v1.default", "ratings-v1.default"], out
    for pod, account in (("productpage-v1", "bookinfo-productpage"), ("ratings-v1", "bookinfo-ratings")):
        assert re.search(rf"^{pod} sidecar\s+200\s+details\s+spiffe://cluster.local/ns/default/sa/{account}$",
                         out, re.MULTILINE), out
    assert re.search(r"^plain client, no sidecar\s+refused\s+-\s+-$", out, re.MULTILINE), out
    handshakes = re.search(r"^TLS handshakes so far: productpage-v1 (\d+), ratings-v1 (\d+), details-v1 (\d+)$", out,
                           re.MULTILINE)
    assert handshakes and all(int(count) > 0 for count in handshakes.groups()), out
    assert re.search(r"^only productpage\s+ratings-v1\s+0\s+20\s+all 403$", out, re.MULTILINE), out
    assert re.search(r"^only productpage\s+productpage-v1\s+20\s+0\s+all 200$", out, re.MULTILINE), out
    assert re.search(r"^productpage and ratings\s+ratings-v1\s+20\s+0\s+all 200$", out, re.MULTILINE), out
    assert all("NOT SENT" not in line and "STALE" not in line and "ERROR" not in line for line in synced)
    assert "✘" not in out
