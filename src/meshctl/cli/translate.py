"""`meshctl translate`: the Envoy config Istio would give one proxy, rendered offline."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import FilesOption, InputNamespaceOption, MeshConfigOption, VerboseOption
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
    proxy: Annotated[
        str | None,
        typer.Option("--proxy", "-p", help=f"{USAGE} from the inputs; without it, a generic sidecar of their namespace.",
                     show_default=False),
    ] = None,
    namespace: InputNamespaceOption = "default",
    section: Annotated[Section, typer.Option("--type", "-t", help="Which resources to show.")] = Section.all,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="short: tables; json and yaml: an Envoy admin ConfigDump.")
    ] = OutputFormat.short,
    validate: Annotated[
        bool, typer.Option("--validate", help="Also run the config through `envoy --mode validate`.")
    ] = False,
    flavor: Annotated[Flavor, typer.Option(
        "--proxy-flavor",
        help="istio-proxy adds Istio's own filters (metadata exchange, ALPN), which plain Envoy cannot load.",
    )] = Flavor.envoy,
    mesh_config: MeshConfigOption = None,
    verbose: VerboseOption = False,
) -> int:
    """Render the Envoy config (listeners, routes, clusters, endpoints) Istio would give one proxy.

    Without --proxy it renders for a generic sidecar in the namespace of the inputs, and makes
    up (saying so on stderr) the Services the config names but the inputs lack, so a lone
    VirtualService shows the routes, clusters and listeners it produces.

    Examples:

    \b
      meshctl translate -f vs.yaml
      meshctl translate -f examples/bookinfo --proxy deploy/productpage-v1 -t routes
      meshctl translate -f examples/bookinfo -p deploy/reviews-v1 -o json --validate > reviews.json
      meshctl translate -f examples/bookinfo -p deploy/productpage-v1 --mesh-config mesh.yaml -t clusters
    """
    from meshctl.cli.output import err, out, warn
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, ExitCode, UsageError
    from meshctl.generate.proxy import generate
    from meshctl.inspect.rendered import render
    from meshctl.model import proxy as proxies
    from meshctl.model.implied import implied_services, sidecar_namespace
    from meshctl.model.meshconfig import MeshConfig, read_mesh_config
    from meshctl.model.snapshot import UnknownTargetError, build_snapshot

    mesh = read_mesh_config(mesh_config) if mesh_config else MeshConfig()
    result = load(files, namespace)
    if verbose:
        for note in result.notes:
            err(note)
    if result.problems:
        raise BadInputError([str(p) for p in result.problems])
    istio_extensions = flavor is Flavor.istio_proxy
    if proxy is None:
        implied = implied_services(result.resources)
        for note in implied.notes:
            err(f"note: {note}")
        where, choice = sidecar_namespace(result.resources, namespace)
        if choice:
            err(f"note: {choice}")
        snapshot = build_snapshot([*result.resources, *implied.services], mesh)
        target = proxies.generic_sidecar(where, istio_extensions=istio_extensions)
        err(f"note: rendered for a generic sidecar in namespace {where} (name a workload with --proxy)")
    else:
        snapshot = build_snapshot(result.resources, mesh)
        try:
            target = snapshot.proxy(proxy, namespace, istio_extensions=istio_extensions)
        except UnknownTargetError as exc:
            raise UsageError(str(exc)) from None
    config = generate(snapshot, target)
    for warning in (*snapshot.warnings, *config.warnings):
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
