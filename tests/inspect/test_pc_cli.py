"""`meshctl proxy-config` end to end through `meshctl.cli.main`: sources, exit codes, outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
import subprocess
import sys
import types

import pytest
import yaml
from inspect_support import DATA, GOLDEN
from testsupport import run_cli


def golden(name: str) -> str:
    return (GOLDEN / name).read_bytes().decode()


SIDECAR = str(DATA / "sidecar_dump.json")
GATEWAY = str(DATA / "gateway_dump_camel.json")
CLUSTERS = str(DATA / "clusters.json")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["proxy-config", "clusters", "-f", SIDECAR], "clusters.txt"),
        (["pc", "c", "-f", SIDECAR, "--port", "9080", "--direction", "outbound"], "clusters_port_9080_outbound.txt"),
        (["pc", "cluster", "--file", SIDECAR, "--fqdn", "reviews", "--subset", "v"], "clusters_fqdn_subset.txt"),
        (["pc", "listeners", "-f", SIDECAR], "listeners.txt"),
        (["pc", "l", "-f", SIDECAR, "--verbose=false"], "listeners_short.txt"),
        (["pc", "listener", "-f", SIDECAR, "--no-verbose"], "listeners_short.txt"),
        (["pc", "l", "-f", SIDECAR, "--address", "::", "--type", "http+tcp"], "listeners_additional_address.txt"),
        (["pc", "routes", "-f", SIDECAR], "routes.txt"),
        (["pc", "r", "-f", SIDECAR, "--verbose=0"], "routes_short.txt"),
        (["pc", "route", "-f", SIDECAR, "--wide"], "routes_wide.txt"),
        (["pc", "r", "-f", SIDECAR, "--name", "80"], "routes_name_80.txt"),
        (["pc", "endpoints", "-f", CLUSTERS], "endpoints.txt"),
        (["pc", "ep", "-f", CLUSTERS, "--status", "UnHealthy"], "endpoints_unhealthy.txt"),
        (
            ["pc", "endpoint", "-f", CLUSTERS, "--address", "10.244.0.31", "--port", "9080"],
            "endpoints_address_port.txt",
        ),
        (["pc", "eds", "-f", SIDECAR], "eds.txt"),
        (["pc", "eds", "-f", SIDECAR, "--port", "8081"], "eds_port_8081.txt"),
        (["pc", "ecds", "-f", SIDECAR], "ecds.txt"),
        (["pc", "ec", "-f", SIDECAR], "ecds.txt"),
        (["pc", "bootstrap", "-f", SIDECAR, "-o", "short"], "bootstrap.txt"),
        (["pc", "r", "-f", SIDECAR, "--name", "80", "-o", "yaml"], "routes_name_80.yaml"),
        (["pc", "c", "-f", SIDECAR, "--fqdn", "details", "-o", "json"], "clusters_details.json"),
    ],
)
def test_tables_from_files(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert out == golden(expected)


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((DATA / "sidecar_dump.json").read_bytes())))
    code, out, _ = run_cli(capsys, "pc", "clusters", "-f", "-")
    assert code == 0
    assert out == golden("clusters.txt")


def test_secrets_are_judged_now(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "pc", "secret", "-f", SIDECAR, "--wide")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[-5:] == ["SANS", "DAYS", "LEFT", "ROOTCA", "CHAIN"]
    assert rows[0].startswith("kubernetes://expired-cert ") and " false " in rows[0]


def test_all_summary_and_raw_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "pc", "a", "-f", GATEWAY, "--with-headers")
    assert code == 0
    assert out.startswith("------ BOOTSTRAP INFO ------\n\nIstio Version:       1.28.1\n")
    assert "\n------ ENDPOINTS INFO ------\n\nNAME                         STATUS" in out
    code, raw, _ = run_cli(capsys, "pc", "all", "-f", GATEWAY, "-o", "json")
    assert code == 0
    assert raw == (DATA / "gateway_dump_camel.json").read_text()
    code, text, _ = run_cli(capsys, "pc", "all", "-f", GATEWAY, "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(text) == json.loads((DATA / "gateway_dump_camel.json").read_bytes())


def test_structured_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "pc", "b", "-f", GATEWAY)
    assert code == 0
    assert json.loads(out)["bootstrap"]["node"]["userAgentBuildVersion"]["version"] == {
        "majorNumber": 1,
        "minorNumber": 36,
    }
    code, out, _ = run_cli(capsys, "pc", "ep", "-f", CLUSTERS, "--status", "unhealthy", "-o", "json")
    assert [status["name"] for status in json.loads(out)] == ["outbound|9080||reviews.default.svc.cluster.local"]
    code, out, _ = run_cli(capsys, "pc", "s", "-f", GATEWAY, "-o", "yaml")
    assert [secret["name"] for secret in yaml.safe_load(out)["dynamicActiveSecrets"]] == ["default", "ROOTCA"]
    code, out, _ = run_cli(capsys, "pc", "eds", "-f", SIDECAR, "--port", "8081", "-o", "json")
    assert [assignment["clusterName"] for assignment in json.loads(out)] == [
        "outbound|8080||web.default.svc.cluster.local"
    ]
    code, out, _ = run_cli(capsys, "pc", "ecds", "-f", SIDECAR, "-o", "json")
    assert len(json.loads(out)["ecdsFilters"]) == 6


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["pc", "clusters"], 64, "give exactly one of"),
        (["pc", "clusters", "-f", SIDECAR, "--admin", "http://127.0.0.1:1"], 64, "give exactly one of"),
        (["pc", "clusters", "pod-1", "-l", "app=x"], 64, "not both"),
        (["pc", "clusters", "-f", SIDECAR, "-o", "wide"], 64, "Invalid value"),
        (["pc", "clusters", "-f", str(DATA / "README.md")], 65, "not valid JSON"),
        (["pc", "clusters", "-f", CLUSTERS], 65, "looks like /clusters?format=json"),
        (["pc", "endpoints", "-f", SIDECAR], 65, "this is a /config_dump"),
        (["pc", "clusters", "-f", str(DATA / "missing.json")], 65, "cannot read"),
        (["pc", "log", "-f", SIDECAR], 1, "a file cannot be changed"),
        (["pc", "log", "-f", SIDECAR, "--level", "debug", "--reset"], 64, "cannot be combined"),
    ],
)
def test_errors(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str) -> None:
    got, out, err = run_cli(capsys, *argv)
    assert got == code
    assert message in err
    assert "Traceback" not in err and out == ""


def test_live_sources_are_asked_for_the_table_fields_only() -> None:
    """The cluster table of a live Envoy costs a third less when Envoy masks each cluster down
    to the fields the table reads (the real-Envoy test in tests/status/test_e2e.py checks the
    table is unchanged)."""
    from meshctl.inspect.proxyconfig import masked_clusters

    asked: list[str] = []
    answers = masked_clusters(types.SimpleNamespace(get=lambda path: asked.append(path) or b"{}"), ("name", "type"))
    assert asked == ["config_dump?resource=static_clusters&mask=cluster.name,cluster.type",
                     "config_dump?resource=dynamic_active_clusters&mask=cluster.name,cluster.type"]
    assert list(answers) == ["static_clusters", "dynamic_active_clusters"]


def test_group_module_imports_stay_cheap() -> None:
    """`meshctl --help` must stay fast: the group module may not pull in protobuf or the library."""
    heavy = ("google.protobuf", "envoy", "yaml", "cryptography", "kubernetes", "meshctl.inspect")
    probe = f"import sys, meshctl.cli.proxy_config; print([n for n in sys.modules if n.startswith({heavy!r})])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_empty_or_absent_sections_are_empty_tables(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A dump without ECDS has no ECDS to show: an empty table, as istioctl's error was not. A
    saved dump without EDS may just have been taken without `include_eds`: an empty table and
    a note on stderr that says how to include it."""
    code, out, err = run_cli(capsys, "pc", "ecds", "-f", GATEWAY)
    assert (code, out, err) == (0, "ECDS NAME     TYPE\n", "")
    document = json.loads((DATA / "sidecar_dump.json").read_text())
    document["configs"] = [c for c in document["configs"] if not c["@type"].endswith(".EndpointsConfigDump")]
    without_eds = tmp_path / "without-eds.json"
    without_eds.write_text(json.dumps(document))
    code, out, err = run_cli(capsys, "pc", "all", "-f", str(without_eds))
    assert code == 0
    assert out.endswith("\nNAME     STATUS     LOCALITY     CLUSTER\n") and "cluster/" in out
    assert err == (f"note: {without_eds} has no endpoints section: Envoy writes one only when asked for "
                   "/config_dump?include_eds (meshctl asks a live proxy that way)\n")
    code, out, err = run_cli(capsys, "pc", "eds", "-f", str(without_eds))
    assert (code, out) == (0, "NAME     STATUS     LOCALITY     CLUSTER\n") and err.startswith("note: ")
