"""`meshctl analyze`: Istio's analyzer messages for files or a cluster, as `istioctl analyze` prints them."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import ContextOption, IstioNamespaceOption, KubeconfigOption, MeshConfigOption

if TYPE_CHECKING:
    from meshctl.analyze.inputs import AnalysisInput

HELP = """Analyze Istio configuration and print Istio's validation messages (IST codes).

Reads files (`-f`, or as arguments; directories recursively, `-` for stdin) or, with
--kubernetes, what the cluster holds. Problems are messages, not refusals: an object that fails
its schema gets IST0106 and the rest is still analyzed. Objects without a namespace go to `-n`
(default `default`); only messages on that namespace's resources are shown unless `-A`.
Without an ingress gateway in the input, Istio's default one (istio-ingressgateway in the Istio
namespace) is assumed.

Exit 0 when no message reaches --failure-threshold (default Error), 79 when one does, 65 when
only files could not be read, 64 on a usage error.

Examples:

  meshctl analyze -f examples/bookinfo

  meshctl analyze --kubernetes -A -o json

  meshctl analyze -f mesh/ -S "IST0102=Namespace foo" -S "IST0101=VirtualService default/*"
"""


def register(app: typer.Typer) -> None:
    app.command("analyze", help=HELP)(analyze)


def analyze(
    arguments: Annotated[list[str] | None, typer.Argument(metavar="[FILE]...", show_default=False)] = None,
    files: Annotated[list[str] | None, typer.Option("-f", "--filename", show_default=False,
                                                   help="File, directory (recursive) or - for stdin; repeatable.")]
    = None,
    kubernetes: Annotated[bool, typer.Option("-k", "--kubernetes", help="Analyze what the cluster holds.")] = False,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces", help="Analyze all namespaces.")] = False,
    namespace: Annotated[str | None, typer.Option("-n", "--namespace", show_default=False,
                                                  help="Namespace to analyze, and of objects that name none "
                                                       "[default: default, or the kubeconfig context's].")] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="Output format: log, json or yaml.")] = "log",
    failure_threshold: Annotated[str, typer.Option("--failure-threshold",
                                                   help="The level at which messages make the exit code 79: "
                                                        "Info, Warning or Error.")] = "Error",
    output_threshold: Annotated[str, typer.Option("--output-threshold",
                                                  help="The level from which messages are shown.")] = "Info",
    suppress: Annotated[list[str] | None, typer.Option("-S", "--suppress", show_default=False,
                                                       help='Suppress a code on resources: "CODE=Kind namespace/name", '
                                                            "'*' as a wildcard; repeatable.")] = None,
    mesh_config: MeshConfigOption = None,
    color: Annotated[bool | None, typer.Option("--color/--no-color", show_default=False,
                                               help="Colour the levels [default: on a terminal, unless TERM=dumb]."
                                               )] = None,
    list_analyzers: Annotated[bool, typer.Option("-L", "--list-analyzers", help="List the analyzers and exit.")]
    = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Also list objects of kinds meshctl does not read.")]
    = False,
    istio_namespace: IstioNamespaceOption = "istio-system",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> int:
    from meshctl.analyze import report, run
    from meshctl.cli.output import err
    from meshctl.errors import ExitCode, UsageError

    output = output.lower()
    if output not in report.FORMATS:
        raise UsageError(f"{output} not a valid option for format. See meshctl analyze --help")
    failure = report.parse_level(failure_threshold, "--failure-threshold")
    shown = report.parse_level(output_threshold, "--output-threshold")
    suppressions, warnings = report.parse_suppressions(suppress or [])
    for warning in warnings:
        err(warning)
    if list_analyzers:
        return _list_analyzers()
    inputs = [*(arguments or []), *(files or [])]
    if not inputs and not kubernetes:
        raise UsageError("nothing to analyze: give files (-f FILE, or as arguments) or --kubernetes")

    gathered, target = _gather(inputs, kubernetes, all_namespaces, namespace, mesh_config, istio_namespace,
                               kubeconfig, context)
    if verbose:
        for note in gathered.notes:
            err(note)
    for problem in gathered.file_errors:
        err(f"Error(s) adding files: {problem}")
    findings = report.keep([*gathered.schema_findings, *run(gathered.resources, gathered.mesh, assumed=gathered.assumed)], target.namespace,
                           suppressions)
    printed = [item for item in findings if report.reaches([item], shown)]
    colored = color if color is not None else (sys.stdout.isatty() and os.environ.get("TERM", "").lower() != "dumb")
    sys.stdout.write(report.render(printed, output, colored) + "\n")
    if not printed:
        err(_clean_summary(target.text, gathered.files, bool(gathered.file_errors)))
    if report.reaches(findings, failure):
        err(f"Error: Analyzers found issues when analyzing {target.text}.\n"
            f"See {report.documentation_base()} for more information about causes and resolutions.")
        return ExitCode.FINDINGS
    if gathered.file_errors:
        err("Error: Some files couldn't be parsed.")
        return ExitCode.BAD_INPUT
    return ExitCode.OK


class _Target:
    """The namespace analyzed (None: all) and how istioctl names it in its summaries."""

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self.text = f"namespace: {namespace}" if namespace else "all namespaces"


def _gather(inputs: list[str], kubernetes: bool, all_namespaces: bool, namespace: str | None,
            mesh_config: str | None, istio_namespace: str, kubeconfig: str | None,
            context: str | None) -> tuple[AnalysisInput, _Target]:
    from meshctl.analyze.inputs import gather
    from meshctl.model.meshconfig import MeshConfig, read_mesh_config

    mesh = read_mesh_config(mesh_config) if mesh_config else MeshConfig()
    cluster = None
    if kubernetes:
        from meshctl.kube.client import load_client
        from meshctl.kube.objects import list_objects

        client = load_client(kubeconfig, context)
        namespace = namespace or client.namespace
        cluster = list(list_objects(client))
    selected = namespace or "default"
    gathered = gather(inputs, selected, mesh, istio_namespace, cluster)
    return gathered, _Target(None if all_namespaces else selected)


def _clean_summary(target: str, files: list[str], parse_errors: bool) -> str:
    if parse_errors:
        return f"No validation issues found when analyzing {target} (but 1 file could not be parsed)."
    if len(files) == 1:
        return f"\u2714 No validation issues found when analyzing {files[0]}."
    if files:
        listed = "".join(f"\n  - {file}" for file in files)
        return f"\u2714 No validation issues found when analyzing:{listed}"
    return f"\u2714 No validation issues found when analyzing {target}."


def _list_analyzers() -> int:
    from meshctl.analyze import ANALYZERS
    from meshctl.cli.output import out

    out("Available analyzers:")
    for analyzer in ANALYZERS:
        out(f"\t{analyzer.name}: {analyzer.description}")
    return 0
