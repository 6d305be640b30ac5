"""`analyze.run` as a whole, and `meshctl validate` on top of it: order, format, exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshctl import analyze
from meshctl.cli import main
from meshctl.config.loader import load

VIRTUAL_SERVICE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts:
  - {name}
  gateways:
  - {gateway}
  http:
  - route:
    - destination:
        host: {name}
"""


def _write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


def test_findings_sorted_by_file_then_line(tmp_path: Path) -> None:
    second = _write(tmp_path / "b.yaml", VIRTUAL_SERVICE.format(name="one", gateway="missing-one"))
    first = _write(tmp_path / "a.yaml", VIRTUAL_SERVICE.format(name="two", gateway="missing-two")
                   + "---\n" + VIRTUAL_SERVICE.format(name="three", gateway="missing-three"))
    result = load([second, first])
    assert result.problems == []
    findings = analyze.run(result.resources)
    assert [(finding.resource.origin.file, finding.line) for finding in findings] == [
        (first, 9), (first, 24), (second, 9)]
    assert [finding.message for finding in findings] == [
        'Referenced gateway not found: "missing-two"',
        'Referenced gateway not found: "missing-three"',
        'Referenced gateway not found: "missing-one"',
    ]


@pytest.mark.parametrize(
    ("text", "code", "summary"),
    [
        (VIRTUAL_SERVICE.format(name="reviews", gateway="mesh"), 0,
         "✔ 1 resource(s) valid, no issues found"),
        (VIRTUAL_SERVICE.format(name="reviews", gateway="missing"), 79,
         "1 error in 1 resource(s): 1 at or over Error"),
        (VIRTUAL_SERVICE.format(name="reviews", gateway="bad_ns/gateway"), 65,
         "1 problem(s) refuse objects; no findings in 0 valid resource(s)"),
        ("""
         apiVersion: networking.istio.io/v1
         kind: DestinationRule
         metadata:
           name: reviews
         spec:
           host: reveiws
         ---
         apiVersion: v1
         kind: Service
         metadata:
           name: reviews
         spec:
           ports:
           - name: http
             port: 9080
         """, 0, "✔ 2 resource(s) valid; 1 warning, below Error"),
    ],
    ids=["clean", "analyzer-error", "schema-error", "warning-only"],
)
def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, code: int,
                             summary: str) -> None:
    path = _write(tmp_path / "input.yaml", text)
    assert main(["validate", "-f", path]) == code
    assert capsys.readouterr().err.splitlines()[-1] == summary


def test_validate_prints_problems_and_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good.yaml", VIRTUAL_SERVICE.format(name="reviews", gateway="missing"))
    bad = _write(tmp_path / "bad.yaml", VIRTUAL_SERVICE.format(name="ratings", gateway="mesh").replace(
        "  - route:", "  - rout:"))
    assert main(["validate", "-f", good, "-f", bad]) == 65
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:11: VirtualService default/ratings: spec.http[0].rout: unknown field 'rout' (did you mean 'route'?)",
        f"Error [IST0101] (VirtualService default/reviews {good}:9) Referenced gateway not found: \"missing\"",
        "1 problem(s) refuse objects; 1 error in 1 valid resource(s)",
    ]


def test_validate_fails_at_the_threshold_and_prints_json_or_yaml(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings alone exit 0, as with istioctl; --failure-threshold Warning makes them 79; -o
    json|yaml print the messages as data on stdout, refused objects as IST0106 like Istio's."""
    import json

    import yaml

    warned = _write(tmp_path / "warn.yaml", """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec: {host: reveiws}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: reviews}
        spec: {ports: [{name: http, port: 9080}]}
        """)
    assert main(["validate", "-f", warned]) == 0
    assert main(["validate", "-f", warned, "--failure-threshold", "warning"]) == 79
    capsys.readouterr()
    bad = _write(tmp_path / "bad.yaml", VIRTUAL_SERVICE.format(name="ratings", gateway="mesh").replace("  - route:", "  - rout:"))
    for output, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        assert main(["validate", "-f", warned, "-f", bad, "-o", output]) == 65
        records = parse(capsys.readouterr().out)
        docs = "https://istio.io/v1.30/docs/reference/config/analysis"
        assert records == [  # meshctl analyze's messages, refused objects as Istio's IST0106
            {"code": "IST0106", "documentationUrl": f"{docs}/ist0106/?ref=istioctl-analyze", "level": "Error",
             "message": "Schema validation error: spec.http[0].rout: unknown field 'rout' (did you mean 'route'?)",
             "origin": "VirtualService default/ratings", "reference": f"{bad}:11"},
            {"code": "IST0174", "documentationUrl": f"{docs}/ist0174/?ref=istioctl-analyze", "level": "Warning",
             "message": "The host reveiws defined in the DestinationRule does not match any services in the mesh.",
             "origin": "DestinationRule default/reviews", "reference": f"{warned}:4"},
        ]
