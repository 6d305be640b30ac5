"""`meshctl validate`: the strict loader's checks plus cross-resource analysis (IST codes)."""

from __future__ import annotations

import typer

from meshctl.cli.options import FilesOption, InputNamespaceOption, VerboseOption


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(files: FilesOption, namespace: InputNamespaceOption = "default", verbose: VerboseOption = False) -> int:
    """Check Istio and Kubernetes resources: schema, webhook rules and cross-references.

    Exit 0 when clean, 65 on errors, 79 when only warnings were found.
    """
    from meshctl import analyze
    from meshctl.cli.output import err
    from meshctl.config.loader import load
    from meshctl.errors import ExitCode

    result = load(files, namespace)
    if verbose:
        for note in result.notes:
            err(note)
    for problem in result.problems:
        err(str(problem))
    findings = analyze.run(result.resources)
    for finding in findings:
        err(str(finding))
    errors = len(result.problems) + sum(1 for f in findings if f.level == "Error")
    warnings = sum(1 for f in findings if f.level == "Warning")
    if errors:
        err(f"{errors} error(s), {warnings} warning(s) in {len(result.resources)} valid resource(s)")
        return ExitCode.BAD_INPUT
    if warnings:
        err(f"{warnings} warning(s) in {len(result.resources)} resource(s)")
        return ExitCode.FINDINGS
    err(f"✔ {len(result.resources)} resource(s) valid, no issues found")
    return ExitCode.OK
