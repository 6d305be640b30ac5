"""`meshctl proxy-config` end to end through `meshctl.cli.main`: sources, exit codes, outputs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from dataclasses import dataclass, field

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
        (["pc", "ecds", "-f", GATEWAY], 1, "no configuration type type.googleapis.com/envoy.admin.v3.EcdsConfigDump"),
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


@dataclass
class FakePod:
    """A pod's admin endpoint: serves the sidecar dump and records log-level requests. It
    answers every path with the whole dump, as a file does, hence not `live`."""

    name: str
    posts: list[str] = field(default_factory=list)
    live: bool = False

    def get(self, path: str) -> bytes:
        return (DATA / "sidecar_dump.json").read_bytes()

    def post(self, path: str) -> bytes:
        self.posts.append(path)
        return b"active loggers:\n  admin: warning\n  http: warning\n"


@pytest.fixture
def pods(monkeypatch: pytest.MonkeyPatch) -> tuple[list[FakePod], list[tuple]]:
    """Stands in for meshctl.inspect.acquire.kube, which another engineer provides."""
    found = [FakePod("productpage-v1-abc.default"), FakePod("productpage-v1-def.default")]
    calls: list[tuple] = []

    def open_pod_sources(*args: object) -> list[FakePod]:
        calls.append(args)
        return found if args[1] else found[:1]

    module = types.ModuleType("meshctl.inspect.acquire.kube")
    module.open_pod_sources = open_pod_sources  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meshctl.inspect.acquire.kube", module)
    return found, calls


def test_live_sources_are_asked_for_the_table_fields_only() -> None:
    """The cluster table of a live Envoy costs a third less when Envoy masks each cluster down
    to the fields the table reads (the real-Envoy test in tests/status/test_e2e.py checks the
    table is unchanged)."""
    from meshctl.inspect.acquire import masked_clusters

    asked: list[str] = []
    answers = masked_clusters(types.SimpleNamespace(get=lambda path: asked.append(path) or b"{}"), ("name", "type"))
    assert asked == ["config_dump?resource=static_clusters&mask=cluster.name,cluster.type",
                     "config_dump?resource=dynamic_active_clusters&mask=cluster.name,cluster.type"]
    assert list(answers) == ["static_clusters", "dynamic_active_clusters"]


def test_pod_target(capsys: pytest.CaptureFixture[str], pods: tuple[list[FakePod], list[tuple]]) -> None:
    _, calls = pods
    code, out, _ = run_cli(
        capsys,
        "pc",
        "c",
        "deploy/productpage.default",
        "-c",
        "/tmp/kc",
        "--context",
        "kind",
        "--proxy-admin-port",
        "15001",
    )
    assert code == 0
    assert out == golden("clusters.txt")
    assert calls == [("deploy/productpage.default", None, None, "/tmp/kc", "kind", 15001)]


def test_selector_prints_each_pod(capsys: pytest.CaptureFixture[str], pods: tuple[list[FakePod], list[tuple]]) -> None:
    code, out, _ = run_cli(capsys, "pc", "b", "-l", "app=productpage", "-n", "default", "-o", "short")
    assert code == 0
    summary = golden("bootstrap.txt")
    assert out == f"productpage-v1-abc.default:\n{summary}\nproductpage-v1-def.default:\n{summary}"
    assert pods[1] == [(None, "app=productpage", "default", None, None, 15000)]


@pytest.mark.parametrize(
    ("argv", "posts"),
    [
        ([], ["logging"]),
        (["--level", "debug"], ["logging", "logging?level=debug"]),
        (["--level", "http:debug,level=warn"], ["logging", "logging?level=warning", "logging?http=debug"]),
        (["--level", "ns::admin=trace"], ["logging", "logging?admin=trace"]),
        (["-r"], ["logging", "logging?level=warning"]),
    ],
)
def test_log_levels(
    capsys: pytest.CaptureFixture[str], pods: tuple[list[FakePod], list[tuple]], argv: list[str], posts: list[str]
) -> None:
    code, out, _ = run_cli(capsys, "pc", "o", "productpage-v1-abc", *argv)
    assert code == 0
    assert pods[0][0].posts == posts
    assert out == "productpage-v1-abc.default:\nactive loggers:\n  admin: warning\n  http: warning\n"


@pytest.mark.parametrize(
    ("level", "message"),
    [("loud", "unrecognized logging level: loud"), ("redis:debug", "unrecognized logger name: redis")],
)
def test_log_level_errors(
    capsys: pytest.CaptureFixture[str], pods: tuple[list[FakePod], list[tuple]], level: str, message: str
) -> None:
    code, _, err = run_cli(capsys, "pc", "log", "pod", "--level", level)
    assert code == 64
    assert message in err


def test_group_module_imports_stay_cheap() -> None:
    """`meshctl --help` must stay fast: the group module may not pull in protobuf or the library."""
    heavy = ("google.protobuf", "envoy", "yaml", "cryptography", "kubernetes", "meshctl.inspect")
    probe = f"import sys, meshctl.cli.proxy_config; print([n for n in sys.modules if n.startswith({heavy!r})])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
