"""`meshctl validate`: the strict loader's checks plus cross-resource analysis (IST codes)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshctl.cli.options import FilesOption, InputNamespaceOption, VerboseOption

if TYPE_CHECKING:
    from meshctl.analyze.finding import Finding
    from meshctl.config.loader import Problem

# The worst first, as istioctl ranks analyzer levels.
LEVELS = ("Error", "Warning", "Info")
SCHEMA_CODE = "IST0106"  # Istio's SchemaValidationError: what a schema or webhook rule refuses


class Format(enum.StrEnum):
    log = "log"
    json = "json"
    yaml = "yaml"


class Threshold(enum.StrEnum):
    Error = "Error"
    Warning = "Warning"
    Info = "Info"


HELP = """Check Istio and Kubernetes resources: schema, Istio's webhook rules and cross-references.

Every problem is reported at once: `FILE:LINE: Kind namespace/name: field: what is wrong` for
what Istio's admission webhook would refuse, `Level [CODE] (Kind namespace/name FILE:LINE)
message` for what its analyzers find.

Exit 0 when nothing reaches --failure-threshold (warnings alone do not, as with istioctl),
65 when an object is refused (bad input), 79 when a finding is at or over the threshold.

Examples:

\b
  meshctl validate -f examples/bookinfo
  kubectl get virtualservices -A -o yaml | meshctl validate -f - -o json
  meshctl validate -f mesh/ --failure-threshold Warning
"""


def register(app: typer.Typer) -> None:
    app.command("validate", help=HELP)(validate)
    app.command("analyze", help=ANALYZE_HELP, hidden=True,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True})(analyze)


ANALYZE_HELP = """Not built yet: `meshctl validate -f FILES` runs Istio's analyzers (IST codes) on files.

Example:

  meshctl validate -f examples/bookinfo -o json
"""


def analyze(context: typer.Context) -> int:
    """istioctl users type `analyze` first. It is refused with a pointer rather than made an
    alias of validate: `istioctl analyze` reads the live cluster by default and prints its own
    formats, so an alias would answer a different question in a different shape, and scripts
    written against it would change meaning when the real command arrives."""
    from meshctl.errors import UsageError

    raise UsageError("meshctl analyze is not built yet; `meshctl validate -f FILES` runs the same IST checks on "
                     "files (exit 79 when a finding reaches --failure-threshold)")


def validate(
    files: FilesOption,
    namespace: InputNamespaceOption = "default",
    output: Annotated[
        Format, typer.Option("-o", "--output", help="log: lines on stderr; json, yaml: a list on stdout.")
    ] = Format.log,
    failure_threshold: Annotated[
        Threshold, typer.Option("--failure-threshold", case_sensitive=False,
                                help="The level at which findings make the exit code 79.")
    ] = Threshold.Error,
    verbose: VerboseOption = False,
) -> int:
    from meshctl import analyze
    from meshctl.cli.output import err, out
    from meshctl.config.loader import load
    from meshctl.errors import ExitCode
    from meshctl.formats import structured_text

    result = load(files, namespace)
    if verbose:
        for note in result.notes:
            err(note)
    findings = analyze.run(result.resources)
    if output is Format.log:
        for problem in result.problems:
            err(str(problem))
        for finding in findings:
            err(str(finding))
    else:
        records = [_problem_record(problem) for problem in result.problems]
        records += [_finding_record(finding) for finding in findings]
        out(structured_text(records, as_yaml=output is Format.yaml))
    counts = {level: sum(1 for f in findings if f.level == level) for level in LEVELS}
    found = ", ".join(f"{count} {level.lower()}" for level, count in counts.items() if count) or "no findings"
    failing = sum(count for level, count in counts.items() if LEVELS.index(level) <= LEVELS.index(failure_threshold))
    if result.problems:
        err(f"{len(result.problems)} problem(s) refuse objects; {found} in {len(result.resources)} valid resource(s)")
        return ExitCode.BAD_INPUT
    if failing:
        err(f"{found} in {len(result.resources)} resource(s): {failing} at or over {failure_threshold.value}")
        return ExitCode.FINDINGS
    if any(counts.values()):
        err(f"✔ {len(result.resources)} resource(s) valid; {found}, below {failure_threshold.value}")
    else:
        err(f"✔ {len(result.resources)} resource(s) valid, no issues found")
    return ExitCode.OK


def _problem_record(problem: Problem) -> dict[str, Any]:
    """A refused object as analyzer-style data (Istio reports schema errors as IST0106); a file
    that could not be read at all has no code."""
    record: dict[str, Any] = {"level": "Error", "message": f"{problem.field}: {problem.message}" if problem.field
                              else problem.message}
    where = f"{problem.file}:{problem.line}" if problem.line else problem.file
    record["origin"] = f"{problem.subject} {where}" if problem.subject else where
    if problem.subject:
        record["code"] = SCHEMA_CODE
    return dict(sorted(record.items()))


def _finding_record(finding: Finding) -> dict[str, Any]:
    """An analyzer finding as `istioctl analyze -o json` has it (keys in Go's map order)."""
    record = {"code": finding.code, "level": finding.level, "message": finding.message,
              "origin": f"{finding.resource.ref()} {finding.resource.where(finding.path)}"}
    return dict(sorted(record.items()))
