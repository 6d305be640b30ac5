"""`meshctl diff`: exactly the Envoy resources a change touches, for exactly the proxies that see
it, grouped; git revisions; exit codes and bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testsupport import BASE, TCP_DB, run_cli
from wholediff import reported, whole_diff

ROOT = Path(__file__).resolve().parents[2]
BOOKINFO = ROOT / "examples" / "bookinfo"
REVIEWS_VHOST = 'virtual_hosts["reviews.default.svc.cluster.local:9080"]'


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(BOOKINFO, old)
    shutil.copytree(BOOKINFO, new)
    return old, new


def diff_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 1) -> dict[str, Any]:
    got, out, err = run_cli(capsys, "diff", *argv, "-o", "json")
    assert got == code, err
    return json.loads(out)  # type: ignore[no-any-return]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unchanged_input_exits_0_without_translating(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    old, new = sides
    (new / "virtual-services.yaml").write_text("# reformatted\n" + (new / "virtual-services.yaml").read_text())
    code, out, _ = run_cli(capsys, "diff", str(old), str(new))
    assert (code, out) == (0, "no changes: both sides hold the same resources\n")


def test_one_line_route_change_is_exactly_that_route_for_every_proxy(capsys: pytest.CaptureFixture[str],
                                                                     sides: tuple[Path, Path]) -> None:
    old, new = sides
    _edit(new / "virtual-services.yaml", "        subset: v2\n", "        subset: v3\n")
    data = diff_json(capsys, str(old), str(new))
    assert data["inputs"] == [{"kind": "VirtualService", "namespace": "default", "name": "reviews", "change": "changed",
                               "location": f"{new}/virtual-services.yaml:3"}]
    [group] = data["groups"]
    assert len(group["proxies"]) == data["proxies"] == 6
    assert group["changes"] == [{"kind": "RouteConfiguration", "name": "9080", "change": "changed", "fields": [
        {"path": f"{REVIEWS_VHOST}.routes[0].route.cluster",
         "before": "outbound|9080|v2|reviews.default.svc.cluster.local",
         "after": "outbound|9080|v3|reviews.default.svc.cluster.local"},
    ]}]


OUTSIDER = ("apiVersion: v1\nkind: Pod\nmetadata: {name: outsider-1, namespace: other, labels: {app: outsider}}\n"
            "spec: {containers: [{name: app, image: app}]}\n")


def test_change_seen_by_some_proxies_only(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    """A VirtualService exported to its own namespace only: proxies elsewhere do not change."""
    old, new = sides
    for side in (old, new):
        (side / "outsider.yaml").write_text(OUTSIDER)
    _edit(old / "virtual-services.yaml", "  hosts:\n  - reviews\n", "  hosts:\n  - reviews\n  exportTo: [.]\n")
    _edit(new / "virtual-services.yaml", "  hosts:\n  - reviews\n", "  hosts:\n  - reviews\n  exportTo: [.]\n")
    _edit(new / "virtual-services.yaml", "      weight: 80\n", "      weight: 50\n")
    _edit(new / "virtual-services.yaml", "      weight: 20\n", "      weight: 50\n")
    data = diff_json(capsys, str(old), str(new))
    [group] = data["groups"]
    assert data["proxies"] == 7
    assert not any(proxy.endswith(".other") for proxy in group["proxies"])
    assert len(group["proxies"]) == 6
    paths = [field["path"] for field in group["changes"][0]["fields"]]
    assert paths == [f'{REVIEWS_VHOST}.routes[1].route.weighted_clusters.clusters'
                     f'["outbound|9080|v{v}|reviews.default.svc.cluster.local"].weight' for v in (1, 3)]


def test_cluster_change_and_groups(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    """A connection limit changes every proxy's reviews clusters, and the reviews pods' own
    inbound cluster as well (Istio applies it on the server side too): two groups."""
    old, new = sides
    _edit(new / "destination-rules.yaml", "maxConnections: 100", "maxConnections: 200")
    data = diff_json(capsys, str(old), str(new))
    clients, servers = data["groups"]
    assert [p.split("-")[0] for p in clients["proxies"]] == ["details", "productpage", "ratings"]
    assert [p.split("-")[0] for p in servers["proxies"]] == ["reviews"] * 3
    outbound = {("Cluster", f"outbound|9080|{subset}|reviews.default.svc.cluster.local") for subset in ("", "v1", "v2", "v3")}
    assert {(c["kind"], c["name"]) for c in clients["changes"]} == outbound
    assert {(c["kind"], c["name"]) for c in servers["changes"]} == outbound | {("Cluster", "inbound|9080||")}
    for change in clients["changes"] + servers["changes"]:
        assert change["fields"] == [{"path": "circuit_breakers.thresholds[0].max_connections", "before": 100,
                                     "after": 200}]


def test_added_and_removed_proxies(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    old, new = sides
    _edit(new / "services.yaml", "  name: ratings-v1\n  labels: {app: ratings, version: v1}\nspec:\n  replicas: 1",
          "  name: ratings-v1\n  labels: {app: ratings, version: v1}\nspec:\n  replicas: 2")
    data = diff_json(capsys, str(old), str(new))
    statuses = {g["status"] for g in data["groups"]}
    assert "added" in statuses
    [added] = [g for g in data["groups"] if g["status"] == "added"]
    assert added["proxies"][0].startswith("ratings-v1-")
    assert {c["kind"] for c in added["changes"]} == {"Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration"}
    # the new replica is a ratings endpoint for everyone else
    changed = [g for g in data["groups"] if g["status"] == "changed"]
    assert any(c["kind"] == "ClusterLoadAssignment" and "ratings" in c["name"] for g in changed for c in g["changes"])


def test_short_output(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    old, new = sides
    _edit(new / "virtual-services.yaml", "        subset: v2\n", "        subset: v3\n")
    code, out, _ = run_cli(capsys, "diff", str(old), str(new))
    assert code == 1
    lines = out.splitlines()
    assert lines[:2] == ["input changes:", f"  ~ VirtualService default/reviews ({new}/virtual-services.yaml:3)"]
    assert "proxy changes: 6 of 6 proxies, in 1 group" in lines
    assert "  ~ RouteConfiguration 9080" in lines
    assert (f'      {REVIEWS_VHOST}.routes[0].route.cluster: "outbound|9080|v2|reviews.default.svc.cluster.local" -> '
            '"outbound|9080|v3|reviews.default.svc.cluster.local"') in lines


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_git_revisions(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(BOOKINFO, repo / "mesh")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "bookinfo")
    _edit(repo / "mesh" / "virtual-services.yaml", "        subset: v2\n", "        subset: v3\n")
    _git(repo, "commit", "-q", "-am", "jason to v3")
    monkeypatch.chdir(repo)
    data = diff_json(capsys, "--git", "HEAD~1..HEAD", "mesh")
    assert data["inputs"][0]["location"] == "HEAD:mesh/virtual-services.yaml:3"
    assert data["groups"][0]["changes"][0]["name"] == "9080"
    assert diff_json(capsys, "HEAD~1:mesh", "HEAD:mesh") == data
    assert diff_json(capsys, "--git", "HEAD..", "mesh", code=0)["changed"] is False
    _edit(repo / "mesh" / "virtual-services.yaml", "        subset: v3\n", "        subset: v1\n")
    working = diff_json(capsys, "--git", "HEAD..", "mesh")
    assert working["inputs"][0]["location"] == "mesh/virtual-services.yaml:3"


def test_bad_input_and_usage(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = sides
    (new / "broken.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\n"
                                     "spec:\n  host: 7\n")
    code, _, err = run_cli(capsys, "diff", str(old), str(new))
    assert code == 65
    assert f"{new}/broken.yaml:5: DestinationRule default/x: spec.host:" in err
    code, _, err = run_cli(capsys, "diff", str(old))
    assert code == 64
    code, _, err = run_cli(capsys, "diff", str(old), str(tmp_path / "nowhere"))
    assert code == 64 and "no such file or directory" in err
    code, _, err = run_cli(capsys, "diff", "--git", "HEAD", str(old))
    assert code == 64 and "not a range" in err


def test_translates_once_per_view_for_routes_and_never_for_unaffected_proxies(sides: tuple[Path, Path]) -> None:
    """An HTTP route change is translated once per view (route configurations only); a change
    no proxy can see is translated for none; other changes proxy by proxy."""
    from meshctl.diff.compare import diff_meshes
    from meshctl.diff.inputs import load_sides, side

    old, new = sides
    _edit(new / "virtual-services.yaml", "        subset: v2\n", "        subset: v3\n")
    result = diff_meshes(*load_sides(side(str(old)), side(str(new)), "default"))
    assert (result.proxies, result.translated) == (6, 2)  # bookinfo's six proxies share one view

    _edit(new / "virtual-services.yaml", "  hosts:\n  - reviews\n", "  hosts:\n  - reviews\n  exportTo: [other]\n")
    _edit(old / "virtual-services.yaml", "  hosts:\n  - reviews\n", "  hosts:\n  - reviews\n  exportTo: [other]\n")
    result = diff_meshes(*load_sides(side(str(old)), side(str(new)), "default"))
    assert (result.translated, result.groups) == (0, ())

    _edit(new / "destination-rules.yaml", "maxConnections: 100", "maxConnections: 200")
    result = diff_meshes(*load_sides(side(str(old)), side(str(new)), "default"))
    assert result.translated == 12


def test_a_connection_pool_is_translated_once_per_view_and_where_it_is_the_proxys_own(sides: tuple[Path, Path]) -> None:
    """A DestinationRule's connection pool reaches clusters alone: the view's outbound clusters,
    built once for bookinfo's six proxies, and the inbound clusters of the three reviews pods,
    whose own service the rule is for; no other proxy's inbound side is built."""
    from meshctl.diff.compare import diff_meshes
    from meshctl.diff.inputs import load_sides, side

    old, new = sides
    _edit(new / "destination-rules.yaml", "maxConnections: 100", "maxConnections: 200")
    result = diff_meshes(*load_sides(side(str(old)), side(str(new)), "default"))
    assert result.translated == 2 * (1 + 3)
    own = {group.proxies: [c.name for c in group.changes if c.name.startswith("inbound|")] for group in result.groups}
    assert {proxies[0].split("-")[0]: names for proxies, names in own.items()} == {
        "details": [], "reviews": ["inbound|9080||"]}


KITCHEN_SINK = ROOT / "tests" / "generate" / "data" / "kitchen-sink.yaml"
# One-resource changes that take diff's shortcuts (route configurations per view; clusters,
# endpoints and routes for DestinationRules, clusters alone for their connection pools and
# outlier detection; the inbound listeners of the proxies whose policy filters change), each
# checked against translating every proxy whole ("" before: appended).
SHORTCUT_EDITS = {
    "route subset": ("    route: [{destination: {host: api, subset: v2}}]", "    route: [{destination: {host: api, subset: v1}}]"),
    "connection pool": ("maxConnections: 50", "maxConnections: 60"),
    "port's connection pool": ("http: {maxConcurrentStreams: 64}", "http: {maxConcurrentStreams: 32}"),
    "outlier detection": ("consecutive5xxErrors: 7", "consecutive5xxErrors: 9"),
    "connection pool added": ("    tls: {mode: DISABLE}\n  subsets:", "    tls: {mode: DISABLE}\n    connectionPool: {tcp: {maxConnections: 3}}\n  subsets:"),
    "subset's connection pool added": ("      tls: {mode: ISTIO_MUTUAL}\n", "      tls: {mode: ISTIO_MUTUAL}\n      connectionPool: {tcp: {maxConnections: 9}}\n"),
    "consistent hash": ("      simple: ROUND_ROBIN\n", "      consistentHash: {httpHeaderName: x-user}\n"),
    # What an outbound tcp_proxy reads of a rule: listeners change too.
    "source-IP hashing": ("consistentHash: {useSourceIp: true}", "consistentHash: {httpHeaderName: x-db}"),
    "TCP idle timeout": ("      consistentHash: {useSourceIp: true}\n    tls: {mode: DISABLE}\n",
                         "      consistentHash: {useSourceIp: true}\n    tls: {mode: DISABLE}\n"
                         "    connectionPool: {tcp: {idleTimeout: 45m}}\n"),
    "subset removed": ("  - {name: b, labels: {version: b}}\n", ""),
    "TLS mode": ("    tls: {mode: DISABLE}\n", "    tls: {mode: ISTIO_MUTUAL}\n"),
    "rule exported elsewhere": ("spec:\n  host: db\n", "spec:\n  host: db\n  exportTo: [other]\n"),
    "authorization policy added": ("", "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                                       "metadata: {name: api, namespace: shop}\nspec:\n  selector: {matchLabels: {version: v1}}\n"
                                       "  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]}]\n"),
    "request authentication added": ("", "---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\n"
                                         "metadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n"
                                         "  jwtRules: [{issuer: https://issuer.example, jwks: '{\"keys\": [{\"kty\": \"RSA\", "
                                         "\"e\": \"AQAB\", \"n\": \"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX\"}]}'}]\n"),
}


@pytest.mark.parametrize("edit", sorted(SHORTCUT_EDITS))
def test_shortcuts_agree_with_translating_every_proxy_whole(tmp_path: Path, edit: str) -> None:
    from meshctl.diff.compare import diff_meshes
    from meshctl.diff.inputs import load_sides, side

    before, after = SHORTCUT_EDITS[edit]
    text = KITCHEN_SINK.read_text()
    assert not before or text.count(before) == 1, edit
    (tmp_path / "old.yaml").write_text(text)
    (tmp_path / "new.yaml").write_text(text.replace(before, after) if before else text + after)
    old, new = load_sides(side(str(tmp_path / "old.yaml")), side(str(tmp_path / "new.yaml")), "default")
    expected = whole_diff(old.resources, new.resources)
    assert expected, f"{edit} changes nothing: the test would prove nothing"
    assert reported(diff_meshes(old, new)) == expected


TCP_MESH = BASE + "---" + TCP_DB + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
"""


POOL = "    connectionPool: {tcp: {maxConnections: 10}}\n"


@pytest.mark.parametrize("pool", [POOL + "    tunnel: {targetHost: proxy.example.com, targetPort: 3128}\n",
                                  "    connectionPool: {tcp: {maxConnections: 10, idleTimeout: 5m}}\n"],
                         ids=["tunnel", "TCP idle timeout"])
def test_a_rule_starting_to_shape_tcp_proxies_reaches_listeners(tmp_path: Path, pool: str) -> None:
    """No rule shapes a tcp_proxy before (diff could take the clusters-and-routes shortcut); the
    edit makes one do so (a tunnel, an idle timeout): the listeners of its host change too."""
    from meshctl.diff.compare import diff_meshes
    from meshctl.diff.inputs import load_sides, side

    (tmp_path / "old.yaml").write_text(TCP_MESH)
    (tmp_path / "new.yaml").write_text(TCP_MESH.replace(POOL, pool))
    old, new = load_sides(side(str(tmp_path / "old.yaml")), side(str(tmp_path / "new.yaml")), "default")
    expected = whole_diff(old.resources, new.resources)
    assert any(change.kind == "Listener" for _, changes in expected.values() for change in changes)
    assert reported(diff_meshes(old, new)) == expected


def test_mesh_config_applies_to_both_sides(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    """`--mesh-config` as translate reads it, for both sides: with VirtualServices exported to
    their own namespace by default, a proxy in another namespace no longer sees a route change."""
    old, new = sides
    for side in (old, new):
        (side / "outsider.yaml").write_text(OUTSIDER)
    _edit(new / "virtual-services.yaml", "        subset: v2\n", "        subset: v3\n")
    (tmp_path / "mesh.yaml").write_text('defaultVirtualServiceExportTo: ["."]\n')
    default, own_namespace = ({proxy for group in diff_json(capsys, str(old), str(new), *extra)["groups"]
                               for proxy in group["proxies"]}
                              for extra in ([], ["--mesh-config", str(tmp_path / "mesh.yaml")]))
    assert default - own_namespace == {"outsider-1.other"}
    (tmp_path / "bad.yaml").write_text("outboundTrafficPolicy: {mode: SOMETIMES}\n")
    code, _, err = run_cli(capsys, "diff", str(old), str(new), "--mesh-config", str(tmp_path / "bad.yaml"))
    assert code == 65 and f"{tmp_path}/bad.yaml:1" in err


def test_a_policy_reads_as_the_filters_it_inserts(capsys: pytest.CaptureFixture[str], sides: tuple[Path, Path]) -> None:
    """An AuthorizationPolicy for ratings: only the ratings proxy changes, and each inbound
    chain reads as one RBAC filter inserted (an HTTP filter, or a network filter before
    tcp_proxy), not as every filter after it changing, nor as a whole chain replaced."""
    old, new = sides
    (new / "authz.yaml").write_text("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                                    "metadata: {name: ratings, namespace: default}\n"
                                    "spec:\n  selector: {matchLabels: {app: ratings}}\n"
                                    "  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-reviews]}}]}]\n")
    data = diff_json(capsys, str(old), str(new))
    [group] = data["groups"]
    assert [proxy.split("-")[0] for proxy in group["proxies"]] == ["ratings"]
    [change] = group["changes"]
    assert (change["kind"], change["name"]) == ("Listener", "virtualInbound")
    inserted = {field["after"]["name"] for field in change["fields"]}
    assert inserted == {"envoy.filters.http.rbac", "envoy.filters.network.rbac"}
    for field in change["fields"]:
        assert "before" not in field, field["path"]
        assert re.fullmatch(r"filter_chains\[\d+\]\.filters\[0\](\.typed_config\.http_filters\[\d+\])?", field["path"])


def test_a_gateway_is_diffed_as_a_gateway(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A VirtualService bound to a Gateway changes the gateway's own route configuration (its
    `http.8080` and its HTTPS twin), not a sidecar's: the per-view shortcuts follow a sidecar's structure, so a
    gateway is translated whole on both sides."""
    old, new = tmp_path / "old", tmp_path / "new"
    for side in (old, new):
        shutil.copytree(BOOKINFO, side)
        shutil.copy(ROOT / "examples" / "gateway" / "ingress.yaml", side / "ingress.yaml")
    _edit(new / "ingress.yaml", "  - match: [{uri: {prefix: /reviews}}]\n", "  - match: [{uri: {prefix: /critics}}]\n")
    data = diff_json(capsys, str(old), str(new))
    [group] = data["groups"]
    assert group["proxies"] == [next(p for p in group["proxies"] if p.startswith("istio-ingressgateway"))]
    assert [(c["kind"], c["name"], c["change"]) for c in group["changes"]] == [
        ("RouteConfiguration", "http.8080", "changed"), ("RouteConfiguration", "https.443.https.bookinfo.istio-system",
                                                          "changed")]
    for change in group["changes"]:
        assert ("/reviews", "/critics") in {(f["before"], f["after"]) for f in change["fields"]}
