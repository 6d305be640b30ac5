"""`meshctl analyze` end to end: output formats byte for byte, thresholds and exit codes,
suppression, namespaces, schema errors as messages, the default ingress gateway, mesh config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshctl.cli import main

NAMESPACE_FOO = """
apiVersion: v1
kind: Namespace
metadata:
  name: foo
"""

ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  gateways:
  - missing-gateway
  http:
  - route:
    - destination:
        host: reviews
"""

DOCS = "https://istio.io/v1.30/docs/reference/config/analysis"


def _write(tmp_path: Path, *parts: str, name: str = "mesh.yaml") -> str:
    path = tmp_path / name
    path.write_text("---\n".join(textwrap.dedent(part).lstrip() for part in parts))
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_log_lines_sorted_like_istioctl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(tmp_path, NAMESPACE_FOO, ROUTE)
    code, out, err = _run(capsys, "-f", file, "-A")
    assert out == (
        f'Error [IST0101] (VirtualService default/reviews {file}:14) Referenced gateway not found: "missing-gateway"\n'
        f"Info [IST0102] (Namespace foo {file}:4) The namespace is not enabled for Istio injection. Run 'kubectl "
        "label namespace foo istio-injection=enabled' to enable it, or 'kubectl label namespace foo "
        "istio-injection=disabled' to explicitly mark it as not needing injection.\n")
    assert code == 79
    assert err == (f"Error: Analyzers found issues when analyzing all namespaces.\nSee {DOCS} for more information "
                   "about causes and resolutions.\n")


def test_json_is_go_marshal_indent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(tmp_path, ROUTE.replace("missing-gateway", "a<b>&c"))
    code, out, _ = _run(capsys, "-f", file, "-o", "JSON")
    assert out == (
        "[\n"
        "\t{\n"
        '\t\t"code": "IST0101",\n'
        f'\t\t"documentationUrl": "{DOCS}/ist0101/?ref=istioctl-analyze",\n'
        '\t\t"level": "Error",\n'
        '\t\t"message": "Referenced gateway not found: \\"a\\u003cb\\u003e\\u0026c\\"",\n'
        '\t\t"origin": "VirtualService default/reviews",\n'
        f'\t\t"reference": "{file}:9"\n'
        "\t},\n"
        "\t{\n"
        '\t\t"code": "IST0106",\n'
        f'\t\t"documentationUrl": "{DOCS}/ist0106/?ref=istioctl-analyze",\n'
        '\t\t"level": "Error",\n'
        '\t\t"message": "Schema validation error: spec.gateways[0]: invalid gateway name \'a\\u003cb\\u003e\\u0026c\': '
        "'a\\u003cb\\u003e\\u0026c' is not a valid DNS name (label 'a\\u003cb\\u003e\\u0026c')\",\n"
        '\t\t"origin": "VirtualService default/reviews",\n'
        f'\t\t"reference": "{file}:9"\n'
        "\t}\n"
        "]\n")
    assert code == 79


def test_yaml_and_empty_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(tmp_path, ROUTE)
    code, out, _ = _run(capsys, "-f", file, "-o", "yaml")
    assert out == (
        "- code: IST0101\n"
        f"  documentationUrl: {DOCS}/ist0101/?ref=istioctl-analyze\n"
        "  level: Error\n"
        "  message: 'Referenced gateway not found: \"missing-gateway\"'\n"
        "  origin: VirtualService default/reviews\n"
        f"  reference: {file}:9\n"
        "\n")
    clean = _write(tmp_path, ROUTE.replace("  - missing-gateway\n", "  - mesh\n"), name="clean.yaml")
    for output, printed in (("json", "[]\n"), ("yaml", "[]\n\n"), ("log", "\n")):
        code, out, err = _run(capsys, "-f", clean, "-o", output)
        assert (code, out) == (0, printed)
        assert err == f"\u2714 No validation issues found when analyzing {clean}.\n"


@pytest.mark.parametrize(
    ("flags", "code", "shown"),
    [
        ((), 0, ["Info"]),
        (("--failure-threshold", "info"), 79, ["Info"]),
        (("--output-threshold", "WARNING"), 0, []),
        (("--output-threshold", "Error", "--failure-threshold", "Info"), 79, []),
    ],
)
def test_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], code: int,
                    shown: list[str]) -> None:
    file = _write(tmp_path, NAMESPACE_FOO)
    status, out, _ = _run(capsys, "-f", file, "-A", *flags)
    assert status == code
    assert [line.split(" ")[0] for line in out.splitlines() if line] == shown


@pytest.mark.parametrize(
    "args",
    [("-o", "table"), ("--failure-threshold", "fatal"), ("-S", "IST0102"), ("-S", "IST0102=a=b"), ()],
    ids=["format", "threshold", "suppress-no-equals", "suppress-two-equals", "no-input"],
)
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    file = _write(tmp_path, NAMESPACE_FOO)
    code, out, _ = _run(capsys, *(("-f", file) if args else ()), *args)
    assert (code, out) == (64, "")


def test_suppression_by_flag_and_annotation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bar = NAMESPACE_FOO.replace("foo", "bar")
    quiet = NAMESPACE_FOO.replace("foo", "quiet") + "  annotations:\n    galley.istio.io/analyze-suppress: IST0108,IST0102\n"
    file = _write(tmp_path, NAMESPACE_FOO, bar, quiet, ROUTE)
    code, out, err = _run(capsys, "-f", file, "-A", "-S", "IST0102=Namespace foo", "-S", "IST0101=VirtualService default/*",
                          "-S", "IST9999=Pod x")
    assert [line.split(") ")[0] for line in out.splitlines()] == [f"Info [IST0102] (Namespace bar {file}:9"]
    assert code == 0
    assert err.splitlines()[0] == ("Warning: Supplied message code 'IST9999' is an unknown message code and will not "
                                   "have any effect.")
    code, out, _ = _run(capsys, "-f", file, "-A", "-S", "IST0102=*")
    assert [line.split(" ")[1] for line in out.splitlines()] == ["[IST0101]"]


def test_schema_error_is_a_message_and_analysis_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = ROUTE.replace("name: reviews", "name: ratings").replace("  - route:", "  - rout:")
    file = _write(tmp_path, ROUTE, broken)
    code, out, _ = _run(capsys, "-f", file)
    assert out.splitlines() == [  # the broken one is analyzed too, without the field it does not know
        f'Error [IST0101] (VirtualService default/ratings {file}:23) Referenced gateway not found: "missing-gateway"',
        f'Error [IST0101] (VirtualService default/reviews {file}:9) Referenced gateway not found: "missing-gateway"',
        f"Error [IST0106] (VirtualService default/ratings {file}:25) Schema validation error: spec.http[0].rout: "
        "unknown field 'rout' (did you mean 'route'?)",
    ]
    assert code == 79


def test_namespace_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = ROUTE.replace("name: reviews", "name: reviews\n  namespace: other")
    file = _write(tmp_path, ROUTE, other)
    _, out, _ = _run(capsys, "-f", file)
    assert [line.split(" (")[1].split(" ")[1] for line in out.splitlines()] == ["default/reviews"]
    _, out, _ = _run(capsys, "-f", file, "-n", "other")
    assert [line.split(" (")[1].split(" ")[1] for line in out.splitlines()] == ["other/reviews"]
    _, out, _ = _run(capsys, "-f", file, "-A")
    assert [line.split(" (")[1].split(" ")[1] for line in out.splitlines()] == ["default/reviews", "other/reviews"]


GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ["*"]
"""


def test_default_ingress_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, GATEWAY.format(port=80), name="good.yaml")
    assert _run(capsys, "-f", good, "-A")[:2] == (0, "\n")
    bad = _write(tmp_path, GATEWAY.format(port=8080), name="bad.yaml")
    code, out, _ = _run(capsys, "-f", bad, "-A")
    assert out == (f"Warning [IST0162] (Gateway istio-system/public {bad}:10) The gateway is listening on a target "
                   "port (port 8080) that is not defined in the Service associated with its workload instances (Pod "
                   "selector istio=ingressgateway). If you need to access the gateway port through the gateway "
                   "Service, it will not be available.\n")
    assert code == 0
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("ingressControllerMode: \"OFF\"\n")
    code, out, _ = _run(capsys, "-f", bad, "-A", "--meshConfigFile", str(mesh))
    assert (code, out) == (0, "\n")  # no gateway assumed: no workloads to check the Gateway against


def test_mesh_config_problems_are_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(tmp_path, ROUTE)
    mesh = tmp_path / "meshconfig.yaml"
    mesh.write_text("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: true\n")
    code, out, err = _run(capsys, "-f", file, "--mesh-config", str(mesh))
    assert (code, out) == (65, "")
    assert err == f"error: {mesh}:3: defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE: expected a string, got a boolean\n"


def test_unreadable_file_exits_65_after_analysing_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, NAMESPACE_FOO.replace("foo", "default") + "  labels: {istio-injection: enabled}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    code, out, err = _run(capsys, "-f", good, "-f", str(bad))
    assert (code, out) == (65, "\n")
    assert err.splitlines()[-2:] == [
        "No validation issues found when analyzing namespace: default (but 1 file could not be parsed).",
        "Error: Some files couldn't be parsed.",
    ]


def test_list_analyzers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-L")
    assert code == 0
    assert "\tgateway.ConflictingGatewayAnalyzer: Checks a gateway's selector, port number and hosts" in out.splitlines()
