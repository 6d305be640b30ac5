"""`meshctl translate`: the Envoy config Istio would give one proxy, rendered offline."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import FilesOption, InputNamespaceOption, VerboseOption
from meshctl.formats import OutputFormat
from meshctl.targets import USAGE

if TYPE_CHECKING:
    from meshctl.generate.proxy import ProxyConfig
    from meshctl.model.proxy import Proxy


class Section(StrEnum):
    """`--type`: the values of `meshctl.inspect.rendered.SECTIONS`."""

    all = "all"
    listeners = "listeners"
    routes = "routes"
    clusters = "clusters"
    endpoints = "endpoints"


class Flavor(StrEnum):
    envoy = "envoy"
    istio_proxy = "istio-proxy"


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)


def translate(
    files: FilesOption,
    proxy: Annotated[str, typer.Option("--proxy", "-p", help=f"{USAGE} from the inputs.")],
    namespace: InputNamespaceOption = "default",
    section: Annotated[Section, typer.Option("--type", "-t", help="Which resources to show.")] = Section.all,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="json and yaml print an Envoy admin ConfigDump.")
    ] = OutputFormat.json,
    validate: Annotated[
        bool, typer.Option("--validate", help="Also run the config through `envoy --mode validate`.")
    ] = False,
    flavor: Annotated[Flavor, typer.Option(
        "--proxy-flavor",
        help="istio-proxy adds Istio's own filters (metadata exchange, ALPN), which plain Envoy cannot load.",
    )] = Flavor.envoy,
    verbose: VerboseOption = False,
) -> int:
    """Render the Envoy config (listeners, routes, clusters, endpoints) Istio would give one proxy."""
    from meshctl.cli.output import err, out, warn
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, ExitCode, UsageError
    from meshctl.generate.proxy import generate
    from meshctl.inspect.rendered import render
    from meshctl.model.snapshot import UnknownTargetError, build_snapshot

    result = load(files, namespace)
    if verbose:
        for note in result.notes:
            err(note)
    if result.problems:
        raise BadInputError([str(p) for p in result.problems])
    snapshot = build_snapshot(result.resources)
    try:
        target = snapshot.proxy(proxy, namespace, istio_extensions=flavor is Flavor.istio_proxy)
    except UnknownTargetError as exc:
        raise UsageError(str(exc)) from None
    config = generate(snapshot, target)
    for warning in config.warnings:
        warn(warning)
    out(render(config.packed(), section.value, output))
    if validate:
        return _validate(target, config)
    return ExitCode.OK


def _validate(target: Proxy, config: ProxyConfig) -> int:
    from meshctl.cli.output import err
    from meshctl.envoybin import validate_bootstrap
    from meshctl.errors import ExitCode
    from meshctl.generate.bootstrap import static_bootstrap

    verdict = validate_bootstrap(static_bootstrap(target, config))
    if verdict.ok:
        err("✔ envoy --mode validate accepted the configuration")
        return ExitCode.OK
    err("✘ envoy --mode validate rejected the configuration:")
    err(verdict.output)
    return ExitCode.BAD_INPUT
