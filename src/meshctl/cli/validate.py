"""`meshctl validate`: the strict loader's checks plus cross-resource analysis (IST codes)."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from meshctl.cli.options import FilesOption, InputNamespaceOption, MeshConfigOption, VerboseOption


class Format(enum.StrEnum):
    """`meshctl analyze`'s formats (meshctl.analyze.report.FORMATS)."""

    log = "log"
    json = "json"
    yaml = "yaml"


HELP = """Check Istio and Kubernetes resources: schema, Istio's webhook rules and cross-references.

Every problem is reported at once: `FILE:LINE: Kind namespace/name: field: what is wrong` for
what Istio's admission webhook would refuse, `Level [CODE] (Kind namespace/name FILE:LINE)
message` for what its analyzers find. With -o json or yaml, both are messages on stdout in
`meshctl analyze`'s format, refused objects as Istio's IST0106.

Exit 0 when nothing reaches --failure-threshold (warnings alone do not, as with istioctl),
65 when an object is refused (bad input), 79 when a finding is at or over the threshold.

Examples:

\b
  meshctl validate -f examples/bookinfo
  kubectl get virtualservices -A -o yaml | meshctl validate -f - -o json
  meshctl validate -f mesh/ --failure-threshold Warning
  meshctl validate -f mesh/ --mesh-config istio-configmap.yaml
"""


def register(app: typer.Typer) -> None:
    app.command("validate", help=HELP)(validate)


def validate(
    files: FilesOption,
    namespace: InputNamespaceOption = "default",
    output: Annotated[
        Format, typer.Option("-o", "--output", help="log: lines on stderr; json, yaml: the messages on stdout.")
    ] = Format.log,
    failure_threshold: Annotated[
        str, typer.Option("--failure-threshold", help="The level at which findings make the exit code 79: "
                                                       "Info, Warning or Error.")
    ] = "Error",
    mesh_config: MeshConfigOption = None,
    verbose: VerboseOption = False,
) -> int:
    from meshctl import analyze
    from meshctl.analyze import report
    from meshctl.analyze.inputs import schema_findings
    from meshctl.analyze.messages import LEVELS
    from meshctl.cli.output import err, out
    from meshctl.config.loader import load
    from meshctl.errors import ExitCode
    from meshctl.model.meshconfig import read_mesh_config

    mesh = read_mesh_config(mesh_config) if mesh_config else None
    threshold = report.parse_level(failure_threshold, "--failure-threshold")
    result = load(files, namespace)
    if verbose:
        for note in result.notes:
            err(note)
    findings = analyze.run(result.resources, mesh)
    if output is Format.log:
        for problem in result.problems:
            err(str(problem))
        for finding in findings:
            err(str(finding))
    else:
        owned = {id(problem) for rejected in result.rejected for problem in rejected.problems}
        for problem in result.problems:  # an unreadable file is no object's message
            if id(problem) not in owned:
                err(str(problem))
        out(report.render([*schema_findings(result.rejected), *findings], output.value))
    counts = {level: sum(1 for finding in findings if finding.level == level) for level in LEVELS}
    found = ", ".join(f"{count} {level.lower()}" for level, count in counts.items() if count) or "no findings"
    failing = [finding for finding in findings if report.reaches([finding], threshold)]
    if result.problems:
        err(f"{len(result.problems)} problem(s) refuse objects; {found} in {len(result.resources)} valid resource(s)")
        return ExitCode.BAD_INPUT
    if failing:
        err(f"{found} in {len(result.resources)} resource(s): {len(failing)} at or over {threshold}")
        return ExitCode.FINDINGS
    if findings:
        err(f"✔ {len(result.resources)} resource(s) valid; {found}, below {threshold}")
    else:
        err(f"✔ {len(result.resources)} resource(s) valid, no issues found")
    return ExitCode.OK
