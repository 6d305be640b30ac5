"""proxy-status against a real `meshctl serve` configuring two real Envoys (status_world.py).

The tests share one running mesh and run in file order: the last ones freeze one Envoy
(SIGSTOP) and make the other reject a listener, and put everything back.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from status_world import NAMESPACE, World
from testsupport import run_cli

from meshctl.loopback import wait_until

PRODUCTPAGE, DETAILS = (f"{pod}.{NAMESPACE}" for pod in ("productpage-v1", "details-v1"))
ISTIOD = socket.gethostname()


def rows(table: str) -> dict[str, list[str]]:
    """Cells by proxy name; columns are at least five spaces apart (tabwriter padding)."""
    cells = [re.split(r" {2,}", line.rstrip()) for line in table.splitlines()[1:]]
    return {row[0]: row[1:] for row in cells}


@contextmanager
def frozen(world: World, pod: str) -> Iterator[None]:
    """The Envoy stopped (it can neither read nor acknowledge pushes), continued afterwards."""
    pid = world.envoys[pod].envoy_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_lists_both_proxies_synced(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "proxy-status", "--xds-address", world.xds_address, "--plaintext")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED", "TYPES"]
    assert rows(out) == {
        DETAILS: ["Kubernetes", ISTIOD, "1.30.0", "4 (CDS,LDS,EDS,RDS)"],
        PRODUCTPAGE: ["Kubernetes", ISTIOD, "1.30.0", "4 (CDS,LDS,EDS,RDS)"],
    }
    code, out, _ = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "-v", "1", "-n", NAMESPACE)
    assert out.splitlines()[0].split() == ["NAME", "CLUSTER", "CDS", "ECDS", "EDS", "LDS", "RDS", "ISTIOD", "VERSION"]
    for cells in rows(out).values():
        cds, ecds, eds, lds, rds = cells[1:6]
        assert ecds == "IGNORED" and cells[6:] == [ISTIOD, "1.30.0"]
        assert all(re.fullmatch(r"SYNCED \(\d+s\)", cell) for cell in (cds, eds, lds, rds))
    code, out, _ = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "-n", "elsewhere")
    assert code == 0 and rows(out) == {}
    code, out, _ = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "-o", "json")
    answer = json.loads(out)
    assert answer["typeUrl"] == "istio.io/debug/syncz"
    assert json.loads(answer["controlPlane"]["identifier"])["ID"] == ISTIOD
    assert sorted(r["node"]["id"] for r in answer["resources"]) == [DETAILS, PRODUCTPAGE]


def test_diff_of_a_proxy_in_sync(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dump = tmp_path / "productpage.json"
    dump.write_bytes(world.config_dump("productpage-v1"))
    for source in (["--file", str(dump)], ["--admin", world.admin_url("productpage-v1")]):
        code, out, err = run_cli(capsys, "ps", "productpage-v1", "--xds-address", world.xds_address, "--plaintext", *source)
        assert (code, err) == (0, "")
        clusters, listeners, routes = out.splitlines()
        assert (clusters, listeners) == ("Clusters Match", "Listeners Match")
        assert routes.startswith("Routes Match (RDS last loaded at ")
    code, out, _ = run_cli(capsys, "ps", "productpage-v1", "--xds-address", world.xds_address, "--plaintext", "--file",
                       str(dump), "--semantic")  # fmt: skip
    assert (code, out) == (0, "Clusters Match\nListeners Match\nRoutes Match\n")


def test_cluster_table_of_a_live_envoy_is_the_table_of_its_full_dump(
        world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Live, `proxy-config clusters` asks Envoy for only the fields its table reads (resource
    queries with a mask); from a saved dump it reads everything. The tables must not differ,
    the DestinationRule column (from cluster metadata) included."""
    dump = tmp_path / "productpage.json"
    dump.write_bytes(world.config_dump("productpage-v1"))
    live = run_cli(capsys, "pc", "clusters", "--admin", world.admin_url("productpage-v1"))
    saved = run_cli(capsys, "pc", "clusters", "--file", str(dump))
    assert live == saved
    code, out, _ = live
    assert code == 0 and "reviews.default.svc.cluster.local" in out
    assert [line for line in out.splitlines() if line.startswith("reviews.") and line.rstrip().endswith("reviews.default")]
    assert {"xds-grpc", "BlackHoleCluster"} <= {line.split()[0] for line in out.splitlines()}


def test_diff_of_a_tampered_dump(world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    document = json.loads(world.config_dump("productpage-v1"))
    [clusters] = [c for c in document["configs"] if c["@type"].endswith(".ClustersConfigDump")]
    name = f"outbound|{world.ports['http']}|v1|reviews.default.svc.cluster.local"
    [entry] = [e for e in clusters["dynamic_active_clusters"] if e["cluster"]["name"] == name]
    entry["cluster"]["connect_timeout"] = "3s"
    dump = tmp_path / "tampered.json"
    dump.write_text(json.dumps(document))
    argv = ("ps", "productpage-v1.default", "--xds-address", world.xds_address, "--plaintext", "--file", str(dump))
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0, "like istioctl, the diff itself is not an error"
    assert out.startswith("Clusters Don't Match\n--- Istiod Clusters\n+++ Envoy Clusters\n@@ -")
    assert '-            "connectTimeout": "10s",\n+            "connectTimeout": "3s",\n' in out
    assert out.split("\n\n", 1)[1].startswith("Listeners Match\nRoutes Match (RDS last loaded at ")
    code, out, _ = run_cli(capsys, *argv, "--semantic")
    assert code == 80
    assert out == f"Clusters Don't Match (1 changed)\n  ~ {name}\n      cluster.connect_timeout: \"10s\" -> \"3s\"\nListeners Match\nRoutes Match\n"
    code, out, _ = run_cli(capsys, *argv, "--semantic", "-o", "json")
    assert code == 80
    assert json.loads(out)["clusters"]["changed"] == {name: [{"path": "cluster.connect_timeout", "controlPlane": "10s", "envoy": "3s"}]}


def test_wait_returns_at_once_when_synced(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "--wait", "--timeout", "10s")
    assert code == 0
    assert "the proxies: 2 SYNCED after" in err
    assert set(rows(out)) == {DETAILS, PRODUCTPAGE}
    code, out, err = run_cli(capsys, "ps", "details-v1", "--xds-address", world.xds_address, "--plaintext", "--wait",
                         "--admin", world.admin_url("details-v1"))  # fmt: skip
    assert code == 0 and out.startswith("Clusters Match\nListeners Match\n") and f"{DETAILS}: 1 SYNCED" in err


def test_a_proxy_that_stops_acknowledging_is_stale(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with frozen(world, "details-v1"):
        world.write_mesh(connect_timeout="4s")
        wait_until(lambda: world.statuses("details-v1").get("Cluster") == "STALE"
                   and world.statuses("productpage-v1").get("Cluster") == "SYNCED", 10, what="details CDS STALE")  # fmt: skip
        code, out, _ = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "-v", "1")
        details, productpage = rows(out)[DETAILS], rows(out)[PRODUCTPAGE]
        assert re.fullmatch(r"STALE \(\d+s\)", details[1]) and productpage[1].startswith("SYNCED (")
        code, out, err = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "--wait", "--timeout", "1s")
        assert code == 80
        assert "the proxies: 1 of 2 not SYNCED after 1 s:" in err
        assert list(rows(out)) == [DETAILS] and rows(out)[DETAILS][1].startswith("STALE (")
        code, _, err = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "--wait", "--timeout", "1s",
                           "-n", "elsewhere")  # fmt: skip
        assert code == 80 and "the proxies of namespace elsewhere: none connected to the control plane after 1 s" in err
    code, _, err = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "--wait", "--timeout", "20s")
    assert code == 0, err


def test_a_config_envoy_rejects_is_an_error(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    unbindable = "192.0.2.1"  # TEST-NET-1: never a local address, so Envoy cannot bind the listener
    try:
        world.write_mesh(details_bind=unbindable)
        wait_until(lambda: world.statuses("details-v1").get("Listener") == "ERROR", 10, what="details LDS ERROR")
        code, out, _ = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "-v", "1")
        assert rows(out)[DETAILS][4].startswith("ERROR (") and rows(out)[PRODUCTPAGE][4].startswith("SYNCED (")
        code, out, err = run_cli(capsys, "ps", "--xds-address", world.xds_address, "--plaintext", "--wait", "--timeout", "1s")
        assert code == 80 and list(rows(out)) == [DETAILS]
        assert f"{DETAILS}: LDS rejected: Error adding/updating listener(s) {unbindable}_{world.ports['http']}: cannot bind" in err
        code, out, _ = run_cli(capsys, "ps", "details-v1", "--xds-address", world.xds_address, "--plaintext", "--admin",
                           world.admin_url("details-v1"), "--semantic")  # fmt: skip
        assert code == 80
        assert out.startswith(  # Envoy removed the old listener and could not add the new one
            "Clusters Match\nListeners Don't Match (1 only in the control plane)\n"
            f"  - {unbindable}_{world.ports['http']} (only in the control plane)\nRoutes "
        )
    finally:
        world.write_mesh()
    wait_until(world.all_synced, 10, what="SYNCED again")


def test_a_proxy_neither_connected_nor_in_the_config_is_an_error(
        world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Asked about a proxy it does not know, the control plane must not make a config up for it
    (the diff against a real Envoy would print hundreds of false differences): every way of
    asking names the proxy and lists the ones that are connected."""
    import urllib.error
    import urllib.request

    dump = tmp_path / "productpage.json"
    dump.write_bytes(world.config_dump("productpage-v1"))
    for extra in ([], ["--semantic"]):
        code, out, err = run_cli(capsys, "ps", "ratings-v9.default", "--xds-address", world.xds_address, "--plaintext",
                                 "--file", str(dump), *extra)  # fmt: skip
        assert (code, out) == (1, "")
        assert err == (f"error: the control plane at {world.xds_address} knows no proxy ratings-v9.default (neither "
                       f"connected nor in its configuration); connected proxies: {DETAILS}, {PRODUCTPAGE}\n")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{world.debug_url}/debug/config_dump?proxyID=ratings-v9.default", timeout=5)
    assert refused.value.code == 404
    assert refused.value.read().decode() == (
        f"proxy ratings-v9.default is neither connected nor in the configuration; connected proxies: {DETAILS}, {PRODUCTPAGE}\n")
    # A proxy of the configuration that is not connected still gets what it would be sent.
    with urllib.request.urlopen(f"{world.debug_url}/debug/config_dump?proxyID=reviews-v1.default", timeout=5) as answer:
        assert json.load(answer)["configs"]


def test_a_deployment_read_through_admin_or_a_file_needs_no_kubernetes(
        world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Envoy says which pod it is (its bootstrap's node id): no kubeconfig is looked for."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    dump = tmp_path / "productpage.json"
    dump.write_bytes(world.config_dump("productpage-v1"))
    plane = ("--xds-address", world.xds_address, "--plaintext")
    for source in (["--admin", world.admin_url("productpage-v1")], ["--file", str(dump)]):
        code, out, err = run_cli(capsys, "ps", "deploy/productpage", *plane, *source, "--semantic")
        assert (code, out, err) == (0, "Clusters Match\nListeners Match\nRoutes Match\n", "")
    code, out, err = run_cli(capsys, "ps", "deploy/details", *plane, "--admin", world.admin_url("productpage-v1"))
    assert (code, out) == (1, "")
    assert err == (f"error: the Envoy at {world.admin_url('productpage-v1')} is the sidecar of {PRODUCTPAGE}, "
                   "not of a pod of deploy/details\n")


def test_a_dump_saved_as_yaml_compares_like_envoys_own(
        world: World, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "pc", "all", "--admin", world.admin_url("productpage-v1"), "-o", "yaml")
    assert code == 0 and out.startswith("configs:\n")
    saved = tmp_path / "productpage.yaml"
    saved.write_text(out)
    plane = ("--xds-address", world.xds_address, "--plaintext", "--file", str(saved))
    code, out, _ = run_cli(capsys, "ps", "productpage-v1", *plane, "--semantic")
    assert (code, out) == (0, "Clusters Match\nListeners Match\nRoutes Match\n")
    code, out, _ = run_cli(capsys, "ps", "productpage-v1", *plane)
    assert code == 0 and out.startswith("Clusters Match\nListeners Match\nRoutes Match")


def test_wide_routes_tell_the_header_route_apart(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "pc", "routes", "--admin", world.admin_url("productpage-v1"), "--wide")
    assert code == 0
    matches = [re.split(r" {5,}", line)[3] for line in out.splitlines() if "reviews.default.svc.cluster.local:" in line]
    assert matches == ["/* end-user=jason", "/*"]


def test_a_tab_completes_the_proxies_the_control_plane_lists(world: World, tmp_path: Path) -> None:
    import subprocess
    import sys

    def tab(line: str) -> list[str]:
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), _MESHCTL_COMPLETE="complete_bash", COMP_WORDS=line,
                   COMP_CWORD=str(len(line.split()) - (0 if line.endswith(" ") else 1)))
        done = subprocess.run([sys.executable, "-m", "meshctl"], env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, "")
        return done.stdout.split()

    assert tab(f"meshctl ps --xds-address {world.xds_address} --plaintext ") == [DETAILS, PRODUCTPAGE]
    assert tab(f"meshctl proxy-status --xds-address {world.xds_address} --plaintext prod") == [PRODUCTPAGE]
