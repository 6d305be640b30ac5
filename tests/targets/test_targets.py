"""The one target parser: every kubectl spelling of a pod or a Deployment, and what it refuses.

The same parse serves translate and bootstrap (offline, the model finds the workload) and
proxy-config and proxy-status (live, the API server does), so a spelling that works for one
command works for all; the last two tests check that through the model and the commands.
"""

from __future__ import annotations

import pytest
from testsupport import EXAMPLES, run_cli

from meshctl.config.loader import load
from meshctl.errors import UsageError
from meshctl.model.snapshot import UnknownTargetError, build_snapshot
from meshctl.targets import Target, TargetKind, parse_target

POD, DEPLOYMENT = TargetKind.POD, TargetKind.DEPLOYMENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web-1", Target(POD, "web-1", "dflt")),
        ("web-1.shop", Target(POD, "web-1", "shop")),
        ("my.dotted.pod.shop", Target(POD, "my.dotted.pod", "shop")),
        ("pod/web-1", Target(POD, "web-1", "dflt")),
        ("po/web-1.shop", Target(POD, "web-1", "shop")),
        ("pods/web-1.shop", Target(POD, "web-1", "shop")),
        ("Pod/web-1", Target(POD, "web-1", "dflt")),
        ("deploy/web", Target(DEPLOYMENT, "web", "dflt")),
        ("deploy/web.shop", Target(DEPLOYMENT, "web", "shop")),
        ("deployment/web.shop", Target(DEPLOYMENT, "web", "shop")),
        ("deployments/web.shop", Target(DEPLOYMENT, "web", "shop")),
        ("deployment.apps/web.shop", Target(DEPLOYMENT, "web", "shop")),
        ("deployments.apps/web", Target(DEPLOYMENT, "web", "dflt")),
        ("Deployment/web.shop", Target(DEPLOYMENT, "web", "shop")),
        ("DEPLOY/web", Target(DEPLOYMENT, "web", "dflt")),
    ],
)
def test_every_kubectl_spelling(text: str, expected: Target) -> None:
    assert parse_target(text, "dflt") == expected


def test_the_forms_print_as_the_commands_show_them() -> None:
    assert (str(parse_target("po/web-1.shop", "x")), parse_target("po/web-1.shop", "x").dotted) == (
        "web-1.shop",
        "web-1.shop",
    )
    assert str(parse_target("deployment.apps/web", "shop")) == "deploy/web.shop"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("svc/reviews", 'unsupported resource type "svc" in "svc/reviews"'),
        ("statefulset/db.shop", 'unsupported resource type "statefulset"'),
        ("replicaset.apps/web", 'unsupported resource type "replicaset.apps"'),
        ("deploy/pod/web", 'unsupported resource type "deploy/pod"'),
        ("web.", 'invalid target "web."'),
        (".shop", 'invalid target ".shop"'),
        ("deploy/", 'invalid target "deploy/"'),
        ("deploy/.shop", 'invalid target "deploy/.shop"'),
        ("", 'invalid target ""'),
    ],
)
def test_errors_name_the_target_and_the_accepted_forms(text: str, message: str) -> None:
    with pytest.raises(UsageError, match="POD\\[.NS\\]") as caught:
        parse_target(text, "dflt")
    assert message in str(caught.value)


def test_the_model_takes_every_spelling_the_cluster_does() -> None:
    """`deployment.apps/NAME` used to work live but not offline; now both parse alike."""
    snapshot = build_snapshot(load([str(EXAMPLES / "bookinfo")]).resources)
    by_deployment = [
        snapshot.proxy(text).id
        for text in ("deploy/productpage-v1.default", "deployment.apps/productpage-v1", "Deployments/productpage-v1")
    ]
    assert len(set(by_deployment)) == 1 and by_deployment[0].startswith("productpage-v1-")
    pod, namespace = by_deployment[0].rsplit(".", 1)
    by_pod = {snapshot.proxy(f"po/{pod}", namespace).id, snapshot.proxy(Target(POD, pod, namespace)).id}
    assert by_pod == {by_deployment[0]}
    with pytest.raises(UnknownTargetError, match='deployment "ghost" not found in namespace "default"'):
        snapshot.proxy("deployment.apps/ghost")
    with pytest.raises(UsageError, match='unsupported resource type "svc"'):
        snapshot.proxy("svc/productpage")


def test_translate_and_bootstrap_accept_what_proxy_config_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    bookinfo = str(EXAMPLES / "bookinfo")
    outputs = set()
    for spelling in ("deploy/productpage-v1", "deployment.apps/productpage-v1.default"):
        argv = ("translate", "-f", bookinfo, "--proxy", spelling, "-t", "clusters", "-o", "short")
        code, out, err = run_cli(capsys, *argv)
        assert (code, err) == (0, ""), err
        outputs.add(out)
    assert len(outputs) == 1 and "reviews.default.svc.cluster.local" in outputs.pop()
    code, out, _ = run_cli(capsys, "bootstrap", "po/web-1.shop", "--service-account", "web", "-o", "json")
    assert code == 0 and '"id": "sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local"' in out
    code, _, err = run_cli(capsys, "bootstrap", "svc/web")
    assert code == 64 and 'unsupported resource type "svc"' in err
