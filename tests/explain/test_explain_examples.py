"""`meshctl explain` on the examples and on small meshes: the path a request takes, why the
other candidates missed, and the file:line of the config behind each step; the same answers
from a saved dump as from the translation; bad input and usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testsupport import run_cli

ROOT = Path(__file__).resolve().parents[2]
BOOKINFO = "examples/bookinfo"
VIRTUAL_SERVICES = "examples/bookinfo/virtual-services.yaml"


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Input paths relative to the repository root, as a user would type them."""
    monkeypatch.chdir(ROOT)


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "explain", *argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def steps(data: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    return [step for step in data["steps"] if step["stage"] == stage]


def step(data: dict[str, Any], stage: str) -> dict[str, Any]:
    found = steps(data, stage)
    assert found, f"no {stage} step in {data['steps']}"
    return found[-1]


def test_jason_goes_to_v2_and_the_route_names_its_rule(capsys: pytest.CaptureFixture[str]) -> None:
    data = explain_json(capsys, "deploy/productpage-v1", "-f", BOOKINFO, "--url", "http://reviews:9080/reviews/1",
                        "-H", "end-user: jason")
    assert data["outcome"]["verdict"] == "forwarded"
    assert [s["name"] for s in steps(data, "listener")] == ["virtualOutbound", "0.0.0.0_9080"]
    assert step(data, "route-config")["name"] == "9080"
    assert step(data, "virtual-host")["name"] == "reviews.default.svc.cluster.local:9080"
    route = step(data, "route")
    assert route["name"] == "jason"
    assert route["sources"] == [{"resource": "VirtualService default/reviews", "location": f"{VIRTUAL_SERVICES}:13",
                                 "field": "spec.http[0].match[0]"}]
    cluster = step(data, "cluster")
    assert cluster["name"] == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert cluster["sources"][0] == {"resource": "DestinationRule default/reviews",
                                     "location": "examples/bookinfo/destination-rules.yaml:33",
                                     "field": "spec.subsets[1]"}
    assert "circuit breakers: at most 100 connections, 50 pending requests" in cluster["facts"]
    endpoints = step(data, "endpoints")
    assert endpoints["name"] == "1 endpoint, 1 healthy"
    assert endpoints["sources"][0]["resource"] == "Deployment default/reviews-v2"


def test_everyone_else_splits_80_20_and_hears_why_jason_did_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    data = explain_json(capsys, "deploy/productpage-v1", "-f", BOOKINFO, "--url", "http://reviews:9080/reviews/1",
                        "-H", "end-user: bob")
    route = step(data, "route")
    assert route["name"] == "canary"
    assert route["sources"][0]["field"] == "spec.http[1]"
    [jason] = route["rejected"]
    assert jason["name"] == "jason"
    assert jason["reasons"] == ['header end-user is "bob" (wanted exact "jason")']
    assert jason["sources"][0]["location"] == f"{VIRTUAL_SERVICES}:13"
    assert "outcome" not in data
    split = {b["condition"]: b["outcome"]["summary"] for b in data["branches"]}
    assert split == {
        "weight 80 (80%)": "forwarded to outbound|9080|v1|reviews.default.svc.cluster.local (1 endpoint, 1 healthy)",
        "weight 20 (20%)": "forwarded to outbound|9080|v3|reviews.default.svc.cluster.local (1 endpoint, 1 healthy)",
    }


def test_absent_header_and_fault_injection(capsys: pytest.CaptureFixture[str]) -> None:
    data = explain_json(capsys, "deploy/productpage-v1", "-f", BOOKINFO, "--url", "http://ratings:9080/ratings/0",
                        "-H", "x-chaos: abort")
    route = step(data, "route")
    assert route["name"] == "abort"
    assert route["rejected"][0]["reasons"] == ['header end-user is absent (wanted exact "jason")']
    assert data["outcome"] == {"verdict": "direct-response", "summary": "aborted by fault injection: HTTP 555",
                               "status": 555, "code": "fault"}


def test_short_output_reads_as_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explain", "deploy/productpage-v1", "-f", BOOKINFO, "--url",
                           "http://reviews:9080/reviews/1", "-H", "end-user: jason")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("GET http://reviews:9080/reviews/1 (outbound, HTTP/1.1, plaintext)")
    assert "route         jason" in lines
    assert f"              from VirtualService default/reviews ({VIRTUAL_SERVICES}:13 spec.http[0].match[0])" in lines
    assert lines[-1] == "=> forwarded to outbound|9080|v2|reviews.default.svc.cluster.local (1 endpoint, 1 healthy)"


SIDECAR_REGISTRY_ONLY = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


@pytest.mark.parametrize(("registry_only", "url", "summary"), [
    (False, "http://example.com/", "passed through to the original destination (unknown address):80 (PassthroughCluster)"),
    (True, "http://example.com/", "dropped: BlackHoleCluster has no endpoints, the connection is closed"),
    (False, "http://unknown-host:9080/", "passed through to the original destination (unknown address):9080 "
                                          "(PassthroughCluster)"),
    (True, "http://unknown-host:9080/", "answered by the proxy: 502"),
])
def test_unknown_host(capsys: pytest.CaptureFixture[str], tmp_path: Path, registry_only: bool, url: str,
                      summary: str) -> None:
    files = ["-f", BOOKINFO]
    if registry_only:
        (tmp_path / "sidecar.yaml").write_text(SIDECAR_REGISTRY_ONLY)
        files += ["-f", str(tmp_path / "sidecar.yaml")]
    data = explain_json(capsys, "deploy/productpage-v1", *files, "--url", url)
    assert data["outcome"]["summary"] == summary
    assert step(data, "destination")["facts"] == [
        f"{url.split('/')[2].split(':')[0]} is not a host of the mesh: DNS outside the mesh gives its address"]
    if url.endswith(":9080/"):
        assert step(data, "virtual-host")["name"] == ("block_all" if registry_only else "allow_any")



def test_mesh_config_is_the_translations(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`--mesh-config` as translate reads it: REGISTRY_ONLY mesh-wide blocks an unknown host."""
    (tmp_path / "mesh.yaml").write_text("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
    data = explain_json(capsys, "deploy/productpage-v1", "-f", BOOKINFO, "--mesh-config", str(tmp_path / "mesh.yaml"),
                        "--url", "http://example.com/")
    assert data["outcome"]["summary"] == "dropped: BlackHoleCluster has no endpoints, the connection is closed"


TCP_MESH = """apiVersion: v1
kind: Service
metadata: {name: mysql, namespace: db}
spec:
  clusterIP: 10.96.7.7
  selector: {app: mysql}
  ports: [{name: tcp, port: 3306}]
---
apiVersion: v1
kind: Pod
metadata: {name: mysql-0, namespace: db, labels: {app: mysql, version: v1}}
spec: {containers: [{name: mysql, image: mysql}]}
status: {podIP: 10.1.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: mysql-1, namespace: db, labels: {app: mysql, version: v2}}
spec: {containers: [{name: mysql, image: mysql}]}
status: {podIP: 10.1.0.6}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mysql, namespace: db}
spec:
  host: mysql.db.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mysql, namespace: db}
spec:
  hosts: [mysql.db.svc.cluster.local]
  tcp:
  - route:
    - destination: {host: mysql.db.svc.cluster.local, subset: v1}
      weight: 90
    - destination: {host: mysql.db.svc.cluster.local, subset: v2}
      weight: 10
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default, labels: {app: app}}
spec: {containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.9}
"""


def test_tcp_weighted_by_virtual_service(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mesh = tmp_path / "db.yaml"
    mesh.write_text(TCP_MESH)
    data = explain_json(capsys, "app", "-f", str(mesh), "--url", "tcp://mysql.db:3306")
    assert step(data, "destination")["name"] == "10.96.7.7:3306"
    assert step(data, "listener")["name"] == "10.96.7.7_3306"
    proxy = step(data, "tcp-proxy")
    assert proxy["sources"] == [{"resource": "VirtualService db/mysql", "location": f"{mesh}:35", "field": "spec.tcp"}]
    weights = {b["condition"]: [s["name"] for s in b["steps"] if s["stage"] == "cluster"] for b in data["branches"]}
    assert weights == {"weight 90 (90%)": ["outbound|3306|v1|mysql.db.svc.cluster.local"],
                       "weight 10 (10%)": ["outbound|3306|v2|mysql.db.svc.cluster.local"]}


def test_inbound_default_route_and_strict_plaintext(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = explain_json(capsys, "deploy/reviews-v1", "-f", BOOKINFO, "--inbound", "--url", "http://reviews:9080/reviews/1")
    assert [s["name"] for s in steps(data, "listener")] == ["virtualInbound"]
    assert step(data, "filter-chain")["name"] == "0.0.0.0_9080"
    assert step(data, "tls")["name"] == "Istio mTLS"
    assert step(data, "virtual-host")["name"] == "inbound|http|9080"
    assert step(data, "cluster")["name"] == "inbound|9080||"
    assert data["outcome"]["verdict"] == "forwarded"
    strict = tmp_path / "strict.yaml"
    strict.write_text("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
                      "metadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n")
    data = explain_json(capsys, "deploy/reviews-v1", "-f", BOOKINFO, "-f", str(strict), "--inbound", "--plaintext",
                        "--url", "http://reviews:9080/reviews/1")
    assert data["outcome"]["code"] == "no-filter-chain"


ROUTING = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http:
  - name: old-api
    match: [{uri: {prefix: /v1/}}]
    redirect: {uri: /v2/, redirectCode: 308}
  - name: admin
    match: [{uri: {regex: "/admin/[0-9]+"}, method: {exact: POST}}]
    route: [{destination: {host: web}}]
  - name: search
    match: [{uri: {exact: /search}, queryParams: {q: {prefix: "mesh"}}}]
    route: [{destination: {host: web}}]
  - name: teapot
    match: [{uri: {prefix: /tea}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: default, labels: {app: web}}
spec: {containers: [{name: web, image: web}]}
status: {podIP: 10.1.0.20}
"""


@pytest.fixture
def routing(tmp_path: Path) -> str:
    path = tmp_path / "web.yaml"
    path.write_text(ROUTING)
    return str(path)


def test_redirect(capsys: pytest.CaptureFixture[str], routing: str) -> None:
    data = explain_json(capsys, "web-0", "-f", routing, "--url", "http://web/v1/items?x=1")
    assert data["outcome"] == {"verdict": "redirect", "summary": "redirected: 308 to http://web/v2/?x=1",
                               "status": 308}


def test_direct_response_after_every_earlier_route_missed(capsys: pytest.CaptureFixture[str], routing: str) -> None:
    data = explain_json(capsys, "web-0", "-f", routing, "--url", "http://web/teapot")
    assert data["outcome"]["summary"] == 'answered by the proxy: 418 "short and stout"'
    reasons = {r["name"]: r["reasons"] for r in step(data, "route")["rejected"]}
    assert reasons == {
        "old-api": ['path "/teapot" (wanted prefix "/v1/")'],
        "admin": ['path "/teapot" (wanted regex "/admin/[0-9]+")', 'header :method is "GET" (wanted exact "POST")'],
        "search": ['path "/teapot" (wanted exactly "/search")', "query parameter q is absent (wanted prefix \"mesh\")"],
    }


def test_method_and_query_matches(capsys: pytest.CaptureFixture[str], routing: str) -> None:
    assert step(explain_json(capsys, "web-0", "-f", routing, "-X", "POST", "--url", "http://web/admin/42"),
                "route")["name"] == "admin"
    assert step(explain_json(capsys, "web-0", "-f", routing, "--url", "http://web/search?q=meshctl"),
                "route")["name"] == "search"
    data = explain_json(capsys, "web-0", "-f", routing, "--url", "http://web/search?q=envoy")
    assert data["outcome"]["code"] == "no-route"
    assert data["outcome"]["status"] == 404


def test_dump_gives_the_same_answers_as_the_translation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, dump, _ = run_cli(capsys, "translate", "-f", BOOKINFO, "--proxy", "deploy/productpage-v1", "-o", "json")
    assert code == 0
    path = tmp_path / "dump.json"
    path.write_text(dump)
    url = ["--url", "http://reviews:9080/reviews/1", "-H", "end-user: jason"]
    translated = explain_json(capsys, "deploy/productpage-v1", "-f", BOOKINFO, *url)
    from_dump = explain_json(capsys, "--file", str(path), *url, "--address", translated["request"]["destination"]["address"])
    traced = explain_json(capsys, "deploy/productpage-v1", "--file", str(path), "-f", BOOKINFO, *url)

    def path_of(data: dict[str, Any]) -> list[tuple[str, str]]:
        return [(s["stage"], s["name"]) for s in data["steps"] if s["stage"] != "destination"]

    assert path_of(from_dump) == path_of(translated)
    assert from_dump["outcome"] == translated["outcome"]
    assert step(from_dump, "route")["sources"] == [{"resource": "VirtualService default/reviews"}]
    assert traced["steps"] == translated["steps"]
    assert traced["outcome"] == translated["outcome"]


def test_dump_without_endpoints_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, dump, _ = run_cli(capsys, "translate", "-f", BOOKINFO, "--proxy", "deploy/productpage-v1", "-o", "json")
    document = json.loads(dump)
    document["configs"] = [c for c in document["configs"] if not c["@type"].endswith("EndpointsConfigDump")]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(document))
    data = explain_json(capsys, "--file", str(path), "--url", "http://reviews:9080/", "-H", "end-user: jason",
                        "--address", "10.96.0.1")
    assert data["outcome"]["verdict"] == "undetermined"
    assert "holds no endpoints" in data["outcome"]["summary"]


def test_dump_without_route_configuration_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, dump, _ = run_cli(capsys, "translate", "-f", BOOKINFO, "--proxy", "deploy/productpage-v1", "-o", "json")
    document = json.loads(dump)
    for section in document["configs"]:
        if section["@type"].endswith("RoutesConfigDump"):
            section["dynamic_route_configs"] = []
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(document))
    data = explain_json(capsys, "--file", str(path), "--url", "http://reviews:9080/", "--address", "10.96.0.1")
    assert data["outcome"]["verdict"] == "undetermined"
    assert data["outcome"]["summary"] == ("the routes come from RDS 9080, but it is not in the proxy's config "
                                          "(never received)")


def test_bad_input_and_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: 3\n")
    code, out, err = run_cli(capsys, "explain", "x", "-f", str(bad), "--url", "http://a/")
    assert code == 65
    assert f"{bad}:5: VirtualService default/x: spec.hosts:" in err
    code, _, err = run_cli(capsys, "explain", "deploy/productpage-v1", "-f", BOOKINFO)
    assert code == 64 and "--url" in err
    code, _, err = run_cli(capsys, "explain", "nobody", "-f", BOOKINFO, "--url", "http://reviews:9080/")
    assert code == 64 and 'pod "nobody" not found' in err
    code, _, err = run_cli(capsys, "explain", "deploy/productpage-v1", "-f", BOOKINFO, "--url", "ftp://x/")
    assert code == 64 and "unsupported scheme" in err
    code, _, err = run_cli(capsys, "explain", "--file", str(tmp_path / "missing.json"), "--url", "http://x/")
    assert code == 65 and "cannot read" in err
    notjson = tmp_path / "dump.json"
    notjson.write_text("{")
    code, _, err = run_cli(capsys, "explain", "--file", str(notjson), "--url", "http://x/")
    assert code == 65 and "not valid JSON" in err


AUTHORIZATION = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}
    to:
    - operation: {methods: [GET]}
"""


@pytest.mark.parametrize(("caller", "method", "verdict"), [
    ("bookinfo-productpage", "GET", "forwarded"),
    ("bookinfo-ratings", "GET", "denied"),
    ("bookinfo-productpage", "DELETE", "denied"),
])
def test_inbound_rbac_from_the_translated_authorization_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               caller: str, method: str, verdict: str) -> None:
    policy = tmp_path / "authz.yaml"
    policy.write_text(AUTHORIZATION)
    data = explain_json(capsys, "deploy/reviews-v1", "-f", BOOKINFO, "-f", str(policy), "--inbound", "-X", method,
                        "--url", "http://reviews:9080/reviews/1",
                        "--from-principal", f"spiffe://cluster.local/ns/default/sa/{caller}")
    assert data["outcome"]["verdict"] == verdict
    rbac = step(data, "rbac")
    name = "ns[default]-policy[reviews-viewer]-rule[0]"
    source = {"resource": "AuthorizationPolicy default/reviews-viewer", "location": f"{policy}:8", "field": "spec.rules[0]"}
    if verdict == "forwarded":
        assert rbac["sources"] == [source]
    else:
        why = "no principal matches the peer" if caller != "bookinfo-productpage" else "no permission matches the request"
        assert rbac["rejected"] == [{"name": name, "reasons": [why], "sources": [source]}]
