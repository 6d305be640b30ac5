"""`meshctl translate`: the Envoy config Istio would give one proxy, rendered offline."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from meshctl.cli.validate import FilesOption, NamespaceOption, VerboseOption


class Output(str, Enum):
    json = "json"
    yaml = "yaml"
    short = "short"


class Section(str, Enum):
    all = "all"
    listeners = "listeners"
    routes = "routes"
    clusters = "clusters"
    endpoints = "endpoints"


class Flavor(str, Enum):
    envoy = "envoy"
    istio_proxy = "istio-proxy"


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)


def translate(
    files: FilesOption,
    proxy: Annotated[str, typer.Option("--proxy", "-p", help="POD[.NS] or deploy/NAME[.NS] from the inputs.")],
    namespace: NamespaceOption = "default",
    section: Annotated[Section, typer.Option("--type", "-t", help="Which resources to show.")] = Section.all,
    output: Annotated[Output, typer.Option("--output", "-o", help="json and yaml print an Envoy admin ConfigDump.")] = Output.json,
    validate: Annotated[bool, typer.Option("--validate", help="Also run the config through `envoy --mode validate`.")] = False,
    flavor: Annotated[Flavor, typer.Option(
        "--proxy-flavor", help="istio-proxy adds Istio's own filters (metadata exchange, ALPN), which plain Envoy cannot load.",
    )] = Flavor.envoy,
    verbose: VerboseOption = False,
) -> int:
    """Render the Envoy config (listeners, routes, clusters, endpoints) Istio would give one proxy."""
    from meshctl.cli.output import err, out, warn
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, ExitCode, UsageError
    from meshctl.generate.proxy import generate
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
    out(render(config.packed(), section.value, output.value))
    if validate:
        return _validate(target, config, err)
    return ExitCode.OK


def render(packed: object, section: str, output: str) -> str:
    """A ConfigDump of the chosen sections, as JSON (Envoy's snake_case), YAML or tables."""
    from google.protobuf import json_format

    from meshctl.xds import resources

    wanted = {
        "all": resources.PUSH_ORDER,
        "clusters": (resources.CLUSTER,),
        "endpoints": (resources.ENDPOINT,),
        "listeners": (resources.LISTENER,),
        "routes": (resources.ROUTE,),
    }[section]
    dump = resources.to_config_dump(packed, types=wanted)
    if output == "short":
        return _tables(dump, section)
    text = json_format.MessageToJson(dump, preserving_proto_field_name=True, indent=1)
    if output == "json":
        return text
    import json

    import yaml

    return yaml.safe_dump(json.loads(text), sort_keys=False, width=120)


def _tables(dump: object, section: str) -> str:
    """The sections as `meshctl proxy-config` (istioctl) tables, a blank line apart."""
    from google.protobuf import descriptor_pool

    from meshctl.inspect.configdump import ConfigDump
    from meshctl.inspect.tables.clusters import ClusterFilter, clusters_table
    from meshctl.inspect.tables.eds import eds_table
    from meshctl.inspect.tables.endpoints import EndpointFilter
    from meshctl.inspect.tables.listeners import ListenerFilter, listeners_table
    from meshctl.inspect.tables.routes import RouteFilter, routes_table

    parsed = ConfigDump(dump, descriptor_pool.Default())
    tables = {
        "clusters": lambda: clusters_table(parsed, ClusterFilter()),
        "listeners": lambda: listeners_table(parsed, ListenerFilter()),
        "routes": lambda: routes_table(parsed, RouteFilter(), wide=True),
        "endpoints": lambda: eds_table(parsed, EndpointFilter()),
    }
    chosen = list(tables) if section == "all" else [section]
    return "\n".join(tables[name]().rstrip("\n") + "\n" for name in chosen)


def _validate(target: object, config: object, err: object) -> int:
    import tempfile

    from google.protobuf import json_format

    from meshctl.envoybin import validate_config
    from meshctl.errors import ExitCode
    from meshctl.generate.bootstrap import static_bootstrap

    bootstrap = static_bootstrap(target, config)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="meshctl-bootstrap-") as handle:
        handle.write(json_format.MessageToJson(bootstrap))
        handle.flush()
        verdict = validate_config(handle.name)
    if verdict.ok:
        err("✔ envoy --mode validate accepted the configuration")
        return ExitCode.OK
    err("✘ envoy --mode validate rejected the configuration:")
    err(verdict.output)
    return ExitCode.BAD_INPUT
