"""proxy-status tables and ages, from syncz answers built by hand like istioctl's test inputs."""

from __future__ import annotations

import json

import pytest
from status_support import NOW, assert_golden, client_config, syncz_answer

import meshctl.cli
from meshctl.formats import to_yaml
from meshctl.inspect.protojson import message_json, message_object
from meshctl.status.duration import human_duration
from meshctl.status.syncz import answers_in, read_syncz, select
from meshctl.status.tables import status_cell, status_table, verbose_status_table


def four_istiods() -> dict:
    """istioctl's multi-istiod case (one proxy per istiod), with push ages added."""
    return {
        "istiod1": syncz_answer("istiod1", [client_config(
            "proxy1", "cluster1", "1.20",
            {"CDS": ("STALE", 45), "LDS": ("SYNCED", 200), "RDS": ("NOT_SENT", None), "EDS": ("SYNCED", 3 * 3600),
             "ECDS": ("SYNCED", 3 * 86400)}, namespace="foo")]),
        "istiod2": syncz_answer("istiod2", [client_config(
            "proxy2", "cluster2", "1.19",
            {"CDS": ("STALE", 1), "LDS": ("SYNCED", 59), "RDS": ("SYNCED", 61), "EDS": ("STALE", 0.4),
             "ECDS": ("STALE", 600)}, namespace="bar")]),
        "istiod3": syncz_answer("istiod3", [client_config(
            "proxy3", "cluster3", "1.20",
            {"CDS": ("NOT_SENT", None), "LDS": ("ERROR", 125), "RDS": ("NOT_SENT", None), "EDS": ("STALE", None),
             "ECDS": ("NOT_SENT", None)}, namespace="foo", error="Invalid duration")]),
        "istiod4": syncz_answer("istiod4", [client_config(
            "proxy4", "cluster4", "1.20",
            {"CDS": ("UNKNOWN", None), "LDS": ("UNKNOWN", None), "RDS": ("UNKNOWN", None), "EDS": ("UNKNOWN", None),
             "ECDS": ("UNKNOWN", None)})]),
    }  # fmt: skip


def sidecars() -> dict:
    """One istiod, sidecars subscribed to the usual four types, listed out of order."""
    four = {"CDS": ("SYNCED", 90), "LDS": ("SYNCED", 90), "EDS": ("SYNCED", 91), "RDS": ("SYNCED", 92)}
    return {"istiod-7d4f74889d-mb5dh": syncz_answer("istiod-7d4f74889d-mb5dh", [
        client_config("reviews-v1-6584dd6f9d-kq2xz.bookinfo", "Kubernetes", "1.27.1", four),
        client_config("details-v1-55cddc9798-2mdwz.bookinfo", "Kubernetes", "1.27.1", four),
        client_config("istio-ingressgateway-b6cd68585-8mnj7.istio-system", "Kubernetes", "1.27.1",
                      {"CDS": ("SYNCED", 90), "LDS": ("SYNCED", 90), "EDS": ("SYNCED", 90)}),
    ], nonce="debug-1")}  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-2, "<invalid>"), (-1.9, "0s"), (-1, "0s"), (0, "0s"), (0.9, "0s"), (1, "1s"),
        (119.9, "119s"), (120, "2m"), (121, "2m1s"), (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"), (3 * 3600 + 1800, "3h30m"), (8 * 3600, "8h"), (48 * 3600 - 1, "47h"),
        (48 * 3600, "2d"), (191 * 3600, "7d23h"), (192 * 3600, "8d"), (729 * 86400, "729d"),
        (730 * 86400, "2y"), (731 * 86400, "2y1d"), (8 * 365 * 86400, "8y"),
    ],
)  # fmt: skip
def test_ages_follow_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_default_table_counts_subscribed_types() -> None:
    rows = read_syncz(four_istiods())
    assert [row.proxy_id for row in rows] == ["proxy1", "proxy2", "proxy3", "proxy4"]
    assert_golden("status_multi_istiod.txt", status_table(rows))


def test_verbose_table_has_a_column_per_type_with_ages() -> None:
    assert_golden("status_multi_istiod_verbose.txt", verbose_status_table(read_syncz(four_istiods()), NOW))


def test_rows_are_sorted_by_proxy_and_types_ordered_like_istioctl() -> None:
    rows = read_syncz(sidecars())
    assert_golden("status_sidecars.txt", status_table(rows))
    assert_golden("status_sidecars_verbose.txt", verbose_status_table(rows, NOW))


def test_cells() -> None:
    [proxy1, _, proxy3, proxy4] = read_syncz(four_istiods())
    cells = {t.type_url.rsplit(".", 1)[-1]: status_cell(t, NOW) for t in proxy1.types}
    assert cells == {"Cluster": "STALE (45s)", "Listener": "SYNCED (3m20s)", "RouteConfiguration": "NOT SENT",
                     "ClusterLoadAssignment": "SYNCED (3h)", "TypedExtensionConfig": "SYNCED (3d)"}  # fmt: skip
    assert [status_cell(t, NOW) for t in proxy3.types if t.status in ("ERROR", "STALE")] == ["STALE", "ERROR (2m5s)"]
    assert [t.error for t in proxy3.types if t.error] == ["Invalid duration"]
    assert {status_cell(t, NOW) for t in proxy4.types} == {"IGNORED"}
    assert status_cell(None, NOW) == "IGNORED"


def test_synced_means_every_subscribed_type_synced() -> None:
    rows = {row.proxy_id: row for row in read_syncz({**four_istiods(), **sidecars()})}
    assert [proxy for proxy, row in sorted(rows.items()) if row.synced] == [
        "details-v1-55cddc9798-2mdwz.bookinfo",
        "istio-ingressgateway-b6cd68585-8mnj7.istio-system",
        "reviews-v1-6584dd6f9d-kq2xz.bookinfo",
    ]
    assert not rows["proxy4"].synced, "a proxy subscribed to nothing is not synced yet"


def test_selection_by_namespace_and_proxy() -> None:
    rows = read_syncz({**four_istiods(), **sidecars()})
    assert [row.proxy_id for row in select(rows, "foo")] == ["proxy1", "proxy3"]
    assert [row.proxy_id for row in select(rows, "bookinfo")] == [
        "details-v1-55cddc9798-2mdwz.bookinfo", "reviews-v1-6584dd6f9d-kq2xz.bookinfo"
    ]  # fmt: skip
    assert [row.proxy_id for row in select(rows, proxy_id="proxy2")] == ["proxy2"]


def test_legacy_per_type_status_is_read() -> None:
    from envoy.service.status.v3 import csds_pb2

    config = csds_pb2.ClientConfig()
    config.node.id = "old.default"
    config.xds_config.add(status=csds_pb2.SYNCED).cluster_config.SetInParent()
    config.xds_config.add(status=csds_pb2.STALE).listener_config.SetInParent()
    [row] = read_syncz({"istiod-old": syncz_answer("istiod-old", [config])})
    assert status_table([row]).splitlines()[1].split() == ["old.default", "istiod-old", "2", "(CDS,LDS)"]
    assert verbose_status_table([row], NOW).splitlines()[1].split()[1:6] == ["SYNCED", "IGNORED", "IGNORED", "STALE", "IGNORED"]


def test_json_and_yaml_print_each_answer_as_received() -> None:
    answers = four_istiods()
    istiod1 = answers["istiod1"]
    assert_golden("status_istiod1.json", message_json(istiod1) + "\n")
    assert_golden("status_istiod1.yaml", to_yaml(message_object(istiod1)))
    only_foo = answers_in(answers, "foo")
    assert [len(response.resources) for response in only_foo.values()] == [1, 0, 1, 0]
    assert json.loads(message_json(only_foo["istiod3"]))["resources"][0]["node"]["id"] == "proxy3"


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [
        (["ps", "--file", "dump.json"], "--file, --admin and --semantic compare one proxy"),
        (["ps", "web", "--file", "a", "--admin", "b"], "give --file or --admin, not both"),
        (["ps", "web", "--file", "a", "-o", "json"], "the istioctl diff is text only"),
        (["ps", "--timeout", "soon"], "--timeout: 'soon' is not a positive duration"),
        (["ps", "-v", "2"], "Invalid value for '-v' / '--verbosity'"),
    ]:
        assert meshctl.cli.main(argv) == 64, argv
        assert message in capsys.readouterr().err


def test_cli_without_a_control_plane_explains(capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch) -> None:
    from meshctl.loopback import free_port

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    address = f"127.0.0.1:{free_port()}"
    assert meshctl.cli.main(["ps", "--xds-address", address, "--plaintext", "--timeout", "2s"]) == 1
    assert f"error: cannot reach the control plane at {address}" in capsys.readouterr().err
    assert meshctl.cli.main(["ps", "--xds-address", address]) == 1
    err = capsys.readouterr().err
    assert "none of the files KUBECONFIG names does" in err and "for a plaintext port, such as istiod's 15010 or meshctl serve, add --plaintext" in err
    compare = ["ps", "web.default", "--xds-address", address, "--plaintext", "--timeout", "2s"]
    assert meshctl.cli.main([*compare, "--admin", f"http://{address}"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the control plane" in err and "is web.default a proxy" not in err
    assert meshctl.cli.main([*compare, "--file", str(tmp_path / "missing.json")]) == 65
    assert capsys.readouterr().err == f"error: cannot read {tmp_path / 'missing.json'}: No such file or directory\n"
