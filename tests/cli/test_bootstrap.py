"""`meshctl bootstrap`: the identity in a bootstrap is the workload's, found in a config, or
exactly the one the flags give; it is never guessed."""

from __future__ import annotations

import json

import pytest
from testsupport import EXAMPLES, run_cli


def _metadata(out: str) -> dict[str, object]:
    node = json.loads(out)["node"]
    return {"id": node["id"], **{key: node["metadata"][key] for key in ("NAMESPACE", "SERVICE_ACCOUNT", "INSTANCE_IPS", "LABELS")}}


def test_a_target_it_cannot_find_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "bootstrap", "web-1.shop")
    assert (code, out) == (64, "")
    assert err == ("error: web-1.shop: no --config-dir to read its identity from; give --config-dir DIR, or the "
                   "identity to build with --service-account SA (and --ip, --labels)\n")
    code, out, err = run_cli(capsys, "bootstrap", "ratings-v9", "--config-dir", str(EXAMPLES / "bookinfo"))
    assert (code, out) == (64, "")
    assert err.startswith('error: pod "ratings-v9" not found in namespace "default"; the input\'s pods: details-v1-')
    assert err.endswith("; or give the identity to build with --service-account SA (and --ip, --labels)\n")


def test_explicit_identity_is_built_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "bootstrap", "web-1.shop", "--service-account", "web", "--ip", "10.1.2.3",
                             "--labels", "app=web,version=v2", "-o", "json")
    assert code == 0
    assert _metadata(out) == {"id": "sidecar~10.1.2.3~web-1.shop~shop.svc.cluster.local", "NAMESPACE": "shop",
                              "SERVICE_ACCOUNT": "web", "INSTANCE_IPS": "10.1.2.3",
                              "LABELS": {"app": "web", "version": "v2"}}
    assert err == "web-1.shop: identity from the flags: service account shop/web, IP 10.1.2.3, labels app=web,version=v2\n"
    code, out, err = run_cli(capsys, "bootstrap", "web-1", "-n", "shop", "--service-account", "web", "-o", "json")
    assert code == 0 and _metadata(out)["INSTANCE_IPS"] == "127.0.0.1" and _metadata(out)["LABELS"] == {}
    assert err == "web-1.shop: identity from the flags: service account shop/web, IP 127.0.0.1, no labels\n"


def test_a_workload_of_the_config_keeps_its_identity_unless_flags_say_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    bookinfo = str(EXAMPLES / "bookinfo")
    code, out, err = run_cli(capsys, "bootstrap", "deploy/productpage-v1", "--config-dir", bookinfo, "-o", "json")
    assert (code, err) == (0, "")
    found = _metadata(out)
    assert found["SERVICE_ACCOUNT"] == "bookinfo-productpage" and found["LABELS"]["app"] == "productpage"
    code, out, err = run_cli(capsys, "bootstrap", "deploy/productpage-v1", "--config-dir", bookinfo,
                             "--service-account", "other", "-o", "json")  # fmt: skip
    assert code == 0 and _metadata(out)["SERVICE_ACCOUNT"] == "other"
    assert "service account default/other" in err


def test_bad_identity_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for flags, message in ((("--ip", "10.1.2"), "--ip: '10.1.2' is not an IP address"),
                           (("--labels", "app"), "--labels: 'app' is not KEY=VALUE[,KEY=VALUE...]"),
                           (("--service-account", "Web_1"), "--service-account: 'Web_1' is not a valid name")):
        code, _, err = run_cli(capsys, "bootstrap", "web-1.shop", "--service-account", "web", *flags)
        assert code == 64 and message in err, err
    code, _, err = run_cli(capsys, "bootstrap", "deploy/web.shop", "--service-account", "web")
    assert code == 64 and "deploy/web.shop: a Deployment's pods are found with --config-dir; or name the pod" in err
