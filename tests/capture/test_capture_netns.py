"""Real capture: `meshctl iptables` in a network namespace, a real Envoy, real traffic.

Two namespaces per mode, joined by a veth: the pod (10.77.0.2, default route to the node) and
the node (10.77.0.1) holding `meshctl serve`, the reviews backends (10.77.1.21-23:9080) and a
server outside the mesh (10.77.2.9:8080). The reviews ClusterIP 10.96.0.50 exists nowhere, as
with kube-proxy: it is routed out of the pod like any address, and only capture makes a call to
it work. (It is not put on a pod interface: traffic to a local address leaves through `lo`,
where Istio's rules deliberately leave non-proxy traffic alone.) The application (UID 1000)
calls `http://reviews:9080` (resolved through the pod's /etc/hosts); Envoy runs as the proxy
(REDIRECT: UID 1337; TPROXY: UID 0 with GID 1337, as Istio's injector runs it).

Envoy is started by `meshctl agent` in the pod, as the proxy user, as istio-proxy runs it: its
xDS and its CSR (with the pod's token) go to the real `meshctl serve` on the node, uncaptured
because they leave as the proxy user.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshctl.demo.mesh import BACKENDS, VERSIONS, routing_yaml
from meshctl.loopback import NameServer, Processes, wait_until
from meshctl.security.cadir import open_ca_directory
from capture_support import Netns, PeerServer, link, namespaces, pod_sidecar, require_capture_support

APP_UID = 1000
POD_IP, NODE_IP = "10.77.0.2", "10.77.0.1"
REVIEWS_IPS = dict(zip(VERSIONS, ("10.77.1.21", "10.77.1.22", "10.77.1.23"), strict=True))
REVIEWS_VIP, OUTSIDE = "10.96.0.50", ("10.77.2.9", 8080)
PORT = 9080
APP_CLIENT = Path(__file__).with_name("app_client.py")
JASON = {"end-user": "jason"}

MESH = f"""apiVersion: v1
kind: Service
metadata: {{name: reviews, namespace: default}}
spec:
  clusterIP: {REVIEWS_VIP}
  ports: [{{name: http, port: {PORT}}}]
  selector: {{app: reviews}}
---
apiVersion: v1
kind: Service
metadata: {{name: productpage, namespace: default}}
spec:
  clusterIP: 10.96.0.40
  ports: [{{name: http, port: {PORT}}}]
  selector: {{app: productpage}}
---
apiVersion: v1
kind: Pod
metadata: {{name: productpage-v1, namespace: default, labels: {{app: productpage, version: v1}}}}
spec:
  serviceAccountName: bookinfo-productpage
  containers: [{{name: productpage, image: productpage, ports: [{{containerPort: {PORT}}}]}}]
status: {{podIP: {POD_IP}}}
""" + "".join(f"""---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-{version}
  namespace: default
  labels: {{app: reviews, version: {version}}}
  annotations: {{sidecar.istio.io/inject: "false"}}
spec: {{containers: [{{name: reviews, image: reviews}}]}}
status: {{podIP: {ip}}}
""" for version, ip in REVIEWS_IPS.items()) + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
""" + "".join(f"  - {{name: {v}, labels: {{version: {v}}}}}\n" for v in VERSIONS) + "---\n" + routing_yaml()


@dataclass
class Pod:
    """The captured pod of one interception mode, and the node next to it."""

    mode: str
    pod: Netns
    node: Netns
    proxy: tuple[int, int]  # the (uid, gid) Envoy runs as

    def app(self, url: str, count: int = 1, headers: dict[str, str] | None = None,
            ids: tuple[int, int] = (APP_UID, APP_UID)) -> list[tuple[int, str]]:
        """GETs by a process of the pod running as `ids` (by default the application's)."""
        done = self.pod.run([sys.executable, str(APP_CLIENT), url, str(count), json.dumps(headers or {})], *ids,
                            timeout=60)
        assert done.returncode == 0, done.stderr
        return [(status, body) for status, body in json.loads(done.stdout)]

    def stat(self, name: str) -> int:
        """One Envoy counter (0 when Envoy has not created it yet)."""
        status, text = self.pod.get("127.0.0.1", 15000, f"/stats?filter=^{_escape(name)}$")
        assert status == 200, text
        values = [line.partition(": ")[2] for line in text.splitlines() if line.partition(": ")[0] == name]
        return int(values[0]) if values else 0


def _escape(name: str) -> str:
    return "".join("\\" + c if c in ".|[]()" else c for c in name)


@pytest.fixture(scope="module", params=["REDIRECT", "TPROXY"])
def captured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    require_capture_support()
    mode: str = request.param
    workdir = tmp_path_factory.mktemp(f"capture-{mode.lower()}")
    (workdir / "mesh").mkdir()
    (workdir / "mesh" / "mesh.yaml").write_text(MESH)
    tag = f"{os.getpid() % 100000}{mode[0].lower()}"
    with ExitStack() as stack:
        pod, node = stack.enter_context(namespaces(f"mcp{tag}p", f"mcp{tag}n"))
        link(pod, f"{POD_IP}/24", node, f"{NODE_IP}/24")
        pod.ip("route", "add", "default", "via", NODE_IP)
        for address in [*REVIEWS_IPS.values(), OUTSIDE[0]]:
            node.ip("addr", "add", f"{address}/32", "dev", "lo")
        pod.hosts({"reviews": REVIEWS_VIP})
        servers: list[NameServer | PeerServer] = [
            node.call(functools.partial(NameServer, name, ip, PORT)) for name, ip in zip(BACKENDS, REVIEWS_IPS.values(), strict=True)
        ]
        servers += [node.call(functools.partial(PeerServer, "outside", *OUTSIDE)),
                    pod.call(functools.partial(PeerServer, "productpage", "0.0.0.0", PORT))]
        for server in servers:
            stack.callback(server.stop)
        start = stack.enter_context(Processes()).start
        logs = stack.enter_context(open(workdir / "processes.log", "wb"))  # noqa: SIM115
        ca_dir = workdir / "ca"
        open_ca_directory(ca_dir, "cluster.local")
        start(node.argv([sys.executable, "-m", "meshctl", "serve", "--config-dir", str(workdir / "mesh"),
                         "--xds-address", f"{NODE_IP}:15010", "--debug-address", "127.0.0.1:15014",
                         "--ca-address", f"{NODE_IP}:15012", "--ca-dir", str(ca_dir)]),
              stdout=logs, stderr=subprocess.STDOUT)
        # TPROXY's proxy is root (Envoy needs CAP_NET_ADMIN for transparent sockets) in GID 1337.
        proxy = (1337, 1337) if mode == "REDIRECT" else (0, 1337)
        applied = pod.run([sys.executable, "-m", "meshctl", "iptables", "-p", "15001", "-z", "15006", "-u", "1337",
                           "-m", mode, "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"])
        assert applied.returncode == 0, applied.stderr
        sidecar = pod_sidecar(stack, pod, "productpage-v1.default", proxy, ca_dir=ca_dir, config=workdir / "mesh",
                              account="bookinfo-productpage", xds_address=f"{NODE_IP}:15010",
                              ca_address=f"{NODE_IP}:15012", interception=mode)
        captured = Pod(mode, pod, node, proxy)

        def routed() -> bool:
            sidecar.envoy_pid  # noqa: B018 - raises with the agent's log if it exited
            return captured.app(f"http://reviews:{PORT}/")[0][1] == "reviews-v1"

        wait_until(routed, timeout=60, interval=0.2, what=f"the {mode} pod's Envoy to route reviews")
        yield captured


def test_service_call_is_captured_and_routed_by_the_virtual_service(captured: Pod) -> None:
    """UID 1000 calls the ClusterIP by name: captured (15001, handed to the 9080 listener),
    routed by the VirtualService, sent to the chosen backend from the pod's address."""
    listener = captured.stat("listener.0.0.0.0_9080.downstream_cx_total")
    v2 = captured.stat("cluster.outbound|9080|v2|reviews.default.svc.cluster.local;.upstream_rq_total")
    assert captured.app(f"http://reviews:{PORT}/", 3, JASON) == [(200, "reviews-v2")] * 3
    assert captured.app(f"http://reviews:{PORT}/", 3) == [(200, "reviews-v1")] * 3
    assert captured.stat("cluster.outbound|9080|v2|reviews.default.svc.cluster.local;.upstream_rq_total") == v2 + 3
    # Exactly the application's six connections: Envoy's own to the backends were not captured
    # back into it (they would show here, and loop).
    assert captured.stat("listener.0.0.0.0_9080.downstream_cx_total") == listener + 6


def test_call_outside_the_mesh_goes_through_the_passthrough_cluster(captured: Pod) -> None:
    catch_all = captured.stat("listener.0.0.0.0_15001.downstream_cx_total")
    passthrough = captured.stat("cluster.PassthroughCluster;.upstream_cx_total")
    assert captured.app(f"http://{OUTSIDE[0]}:{OUTSIDE[1]}/", 2) == [(200, f"outside {POD_IP}")] * 2
    assert captured.stat("listener.0.0.0.0_15001.downstream_cx_total") == catch_all + 2
    assert captured.stat("cluster.PassthroughCluster;.upstream_cx_total") == passthrough + 2


def test_inbound_call_is_captured_and_delivered_to_the_app(captured: Pod) -> None:
    """From the node to the pod's port: captured on 15006 and handed to the application, which
    sees Envoy's passthrough address (REDIRECT) or the caller's own (TPROXY keeps it)."""
    inbound = captured.stat("listener.0.0.0.0_15006.downstream_cx_total")
    status, body = captured.node.get(POD_IP, PORT, "/")
    source = "127.0.0.6" if captured.mode == "REDIRECT" else NODE_IP
    assert (status, body) == (200, f"productpage {source}")
    assert captured.stat("listener.0.0.0.0_15006.downstream_cx_total") == inbound + 1
    assert captured.stat("cluster.inbound|9080||;.upstream_rq_total") >= 1


def test_the_proxys_own_connections_are_not_captured(captured: Pod) -> None:
    """A process with the proxy's identity reaches the outside server directly: 15001 and the
    PassthroughCluster see nothing."""
    catch_all = captured.stat("listener.0.0.0.0_15001.downstream_cx_total")
    assert captured.app(f"http://{OUTSIDE[0]}:{OUTSIDE[1]}/", 2, ids=captured.proxy) == [(200, f"outside {POD_IP}")] * 2
    assert captured.stat("listener.0.0.0.0_15001.downstream_cx_total") == catch_all


def test_rules_are_istios_and_rerunning_changes_nothing(captured: Pod) -> None:
    """The kernel holds the planned chains (TPROXY: in mangle, with its policy route), and a
    second run with the same flags finds them and leaves them alone."""
    saved = captured.pod.run(["iptables-save"]).stdout
    table = "mangle" if captured.mode == "TPROXY" else "nat"
    assert ":ISTIO_INBOUND" in saved.split(f"*{table}")[1].split("COMMIT")[0]
    again = captured.pod.run([sys.executable, "-m", "meshctl", "iptables", "-u", "1337", "-m", captured.mode, "-i",
                              "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"])
    assert again.returncode == 0 and "unchanged" in again.stderr, again.stderr
    assert captured.pod.run(["iptables-save"]).stdout.count("-A ") == saved.count("-A ")
    if captured.mode == "TPROXY":
        assert captured.pod.run(["ip", "rule", "list", "fwmark", "1337"]).stdout.count("lookup 133") == 1
        assert "local default dev lo" in captured.pod.run(["ip", "route", "show", "table", "133"]).stdout
