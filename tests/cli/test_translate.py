"""`meshctl translate`: the README's headline, a lone VirtualService, renders as typed; a
workload that is not in the inputs is answered with the ones that are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from testsupport import EXAMPLES, run_cli

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, port: {number: 9080}}}]
  - route:
    - {destination: {host: reviews, port: {number: 9080}}, weight: 75}
    - {destination: {host: ratings.shop.svc.cluster.local, port: {number: 9080}}, weight: 25}
  - route: [{destination: {host: api.example.com}}]
"""


@pytest.fixture
def vs(tmp_path: Path) -> str:
    path = tmp_path / "vs.yaml"
    path.write_text(VIRTUAL_SERVICE)
    return str(path)


def test_a_lone_virtual_service_renders_for_a_generic_sidecar(vs: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "translate", "-f", vs)
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("------")] == [
        "------ CLUSTER INFO ------", "------ LISTENER INFO ------", "------ ROUTE INFO ------",
        "------ ENDPOINTS INFO ------"]  # fmt: skip
    clusters = {line.split()[0] for line in out.split("------ LISTENER INFO")[0].splitlines()[3:] if line}
    assert {"reviews.shop.svc.cluster.local", "ratings.shop.svc.cluster.local"} <= clusters
    section = out.split("------ ROUTE INFO ------\n\n")[1].split("\n\n")[0]
    routes = [re.split(r" {5,}", line) for line in section.splitlines()[1:]]
    assert [(row[0], row[3]) for row in routes if row[1].startswith("reviews.")] == [
        ("9080", "/* end-user=jason"), ("9080", "/*")]
    assert "0.0.0.0   9080" in out, "the listener the made-up port calls for"
    assert err.splitlines() == [
        "note: Service shop/ratings made up (port 9080/http, no endpoints): named by VirtualService shop/reviews, "
        "absent from the input",
        "note: Service shop/reviews made up (port 9080/http, no endpoints): named by VirtualService shop/reviews, "
        "absent from the input",
        "note: api.example.com (named by VirtualService shop/reviews) is not a Kubernetes service name: nothing "
        "made up for it; a ServiceEntry would define it",
        "note: rendered for a generic sidecar in namespace shop (name a workload with --proxy)",
    ]
    code, out, _ = run_cli(capsys, "translate", "-f", vs, "-o", "json", "-t", "clusters")
    dump = json.loads(out)
    names = {entry["cluster"]["name"] for entry in dump["configs"][0]["dynamic_active_clusters"]}
    assert {"outbound|9080||reviews.shop.svc.cluster.local", "outbound|9080||ratings.shop.svc.cluster.local"} <= names


def test_services_of_the_input_are_not_made_up(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "translate", "-f", str(EXAMPLES / "bookinfo"), "-t", "routes")
    assert code == 0 and "made up" not in err
    assert "the input spans namespaces" not in err and "generic sidecar in namespace default" in err


def test_inputs_in_several_namespaces_say_which_is_rendered(vs: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(VIRTUAL_SERVICE.replace("namespace: shop", "namespace: web"))
    code, _, err = run_cli(capsys, "translate", "-f", vs, "-f", str(other), "-n", "web", "-t", "routes")
    assert code == 0
    assert ("note: the input spans namespaces shop, web: rendering for a sidecar in web (choose with -n, or name a "
            "workload with --proxy)") in err.splitlines()


def test_a_proxy_not_in_the_input_lists_those_that_are(vs: str, capsys: pytest.CaptureFixture[str]) -> None:
    bookinfo = str(EXAMPLES / "bookinfo")
    code, out, err = run_cli(capsys, "translate", "-f", bookinfo, "--proxy", "ghost")
    assert (code, out) == (64, "")
    assert err.startswith('error: pod "ghost" not found in namespace "default"; the input\'s pods: details-v1-')
    code, _, err = run_cli(capsys, "translate", "-f", bookinfo, "--proxy", "deploy/ghost")
    assert code == 64 and err == (
        'error: deployment "ghost" not found in namespace "default" (or it has no replicas); the input\'s '
        "Deployments: deploy/details-v1.default, deploy/productpage-v1.default, deploy/ratings-v1.default, "
        "deploy/reviews-v1.default, deploy/reviews-v2.default, deploy/reviews-v3.default\n")
    code, _, err = run_cli(capsys, "translate", "-f", vs, "--proxy", "web-1")
    assert code == 64 and err == 'error: pod "web-1" not found in namespace "default"; the input defines no pods\n'
