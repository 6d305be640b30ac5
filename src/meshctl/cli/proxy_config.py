"""`meshctl proxy-config` (alias `pc`): what one Envoy holds, as istioctl prints it.

Every subcommand reads from exactly one place: a saved admin response (`-f FILE`, `-f -`), an
Envoy admin URL (`--admin`), or pods (`POD[.NS]`, `deploy/NAME[.NS]`, `-l SELECTOR`). It asks
Envoy for the narrowest slice of its admin API that the table needs. Short output is plain
text, byte for byte istioctl's, never coloured or truncated.

Module imports stay cheap (typer and the standard library): the library, protobuf and
kubernetes are imported inside the commands.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    from meshctl.inspect.acquire import DumpSource
    from meshctl.inspect.configdump import ConfigDump


class OutputFormat(enum.StrEnum):
    short = "short"
    json = "json"
    yaml = "yaml"


_GO_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_GO_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class _ProxyConfigGroup(TyperGroup):
    """Builds a subcommand only when it is called or listed, and resolves istioctl's aliases.

    Converting all ten subcommands (twice: `proxy-config` and `pc`) costs about as much as
    the rest of `meshctl --help`, so they are not registered on the Typer app up front.
    Also accepts istioctl's `--verbose=false` spelling of the `--no-verbose` flag.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        name = _ALIASES.get(cmd_name, cmd_name)
        if name not in _COMMANDS:
            return None
        if name not in self.commands:
            single = typer.Typer(add_completion=False, rich_markup_mode=None)
            single.command(name, context_settings={"help_option_names": ["-h", "--help"]})(_COMMANDS[name])
            self.commands[name] = typer.main.get_command(single)
        return self.commands[name]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [_verbose_flag(arg) for arg in args])


def _verbose_flag(arg: str) -> str:
    name, equals, value = arg.partition("=")
    if name != "--verbose" or not equals:
        return arg
    if value in _GO_TRUE:
        return "--verbose"
    return "--no-verbose" if value in _GO_FALSE else arg


app = typer.Typer(
    name="proxy-config",
    cls=_ProxyConfigGroup,
    help="Show the clusters, listeners, routes, endpoints and secrets one Envoy holds.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(parent: typer.Typer) -> None:
    """Add the group as `proxy-config` and as istioctl's hidden short form `pc`."""
    parent.add_typer(app, name="proxy-config")
    parent.add_typer(app, name="pc", hidden=True)


TargetArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[POD[.NS] | deploy/NAME[.NS]]", help="Pod to read (the first pod of a workload).", show_default=False
    ),
]
FileOpt = Annotated[
    str | None, typer.Option("-f", "--file", help="Saved Envoy admin JSON; - reads stdin.", show_default=False)
]
AdminOpt = Annotated[
    str | None, typer.Option("--admin", help="Envoy admin URL, e.g. http://127.0.0.1:15000.", show_default=False)
]
SelectorOpt = Annotated[
    str | None, typer.Option("-l", "--selector", help="Label selector of the pods to read.", show_default=False)
]
NamespaceOpt = Annotated[
    str | None, typer.Option("-n", "--namespace", help="Namespace of the pod.", show_default=False)
]
KubeconfigOpt = Annotated[
    str | None, typer.Option("-c", "--kubeconfig", help="Kubernetes configuration file.", show_default=False)
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.", show_default=False)]
AdminPortOpt = Annotated[int, typer.Option("--proxy-admin-port", help="Envoy admin port in the pod.")]
OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="Output format.")]
PortOpt = Annotated[int, typer.Option("--port", help="Filter by port.")]
AddressOpt = Annotated[str, typer.Option("--address", help="Filter by address (exact, any case).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose/--no-verbose", help="Show one row per filter chain or route.")]
ClusterNameOpt = Annotated[str, typer.Option("--cluster", help="Filter by cluster name (exact, any case).")]
StatusOpt = Annotated[str, typer.Option("--status", help="Filter by health status, e.g. healthy.")]
FqdnOpt = Annotated[str, typer.Option("--fqdn", help="Filter clusters by a substring of the FQDN.")]
SubsetOpt = Annotated[str, typer.Option("--subset", help="Filter clusters by a substring of the subset.")]
DirectionOpt = Annotated[str, typer.Option("--direction", help="Filter clusters by direction (inbound, outbound).")]
TypeOpt = Annotated[str, typer.Option("--type", help="Filter listeners by type: HTTP, TCP, HTTP+TCP, UNKNOWN.")]
RouteNameOpt = Annotated[str, typer.Option("--name", help="Filter routes by route configuration name.")]


@dataclass(frozen=True)
class _Where:
    """Where to read from, exactly as the user gave it."""

    target: str | None
    file: str | None
    admin: str | None
    selector: str | None
    namespace: str | None
    kubeconfig: str | None
    context: str | None
    admin_port: int

    def sources(self) -> list[DumpSource]:
        from meshctl.errors import UsageError
        from meshctl.inspect.acquire import AdminSource, FileSource

        if self.target is not None and self.selector is not None:
            raise UsageError("give a pod or -l/--selector, not both")
        given = [self.file is not None, self.admin is not None, self.target is not None or self.selector is not None]
        if sum(given) != 1:
            raise UsageError("give exactly one of: a pod, -l/--selector, -f/--file or --admin")
        if self.file is not None:
            return [FileSource(self.file)]
        if self.admin is not None:
            return [AdminSource(self.admin)]
        return self._pod_sources()

    def _pod_sources(self) -> list[DumpSource]:
        from meshctl.errors import MeshctlError

        try:
            from meshctl.inspect.acquire.kube import open_pod_sources
        except ModuleNotFoundError as exc:
            raise MeshctlError(f"reading pods is not available ({exc}); use -f or --admin") from None
        sources = open_pod_sources(
            self.target, self.selector, self.namespace, self.kubeconfig, self.context, self.admin_port
        )
        if not sources:
            raise MeshctlError("no pods matched")
        return sources


def _emit(sources: list[DumpSource], render: Callable[[DumpSource], Iterable[str]]) -> None:
    """Print each source's output; with several sources, each under a `NAME:` line."""
    from meshctl.cli.output import out

    for index, source in enumerate(sources):
        if len(sources) > 1:
            if index:
                out("")
            out(f"{source.name}:")
        for chunk in render(source):
            out(chunk)


def _dump(source: DumpSource, path: str, cluster_fields: tuple[str, ...] | None = None) -> ConfigDump:
    return _parse(source.get(path), source.name, cluster_fields)


def _parse(data: bytes, origin: str, cluster_fields: tuple[str, ...] | None = None) -> ConfigDump:
    from meshctl.inspect.configdump import parse_config_dump

    return parse_config_dump(data, origin, cluster_fields=cluster_fields)


def _structured(output: OutputFormat, data: Any) -> str:
    """`-o json` / `-o yaml` of JSON-ready data (lists of messages print as jsonpb arrays)."""
    from meshctl.inspect.protojson import data_text

    return data_text(data, as_yaml=output is OutputFormat.yaml)


def _messages(output: OutputFormat, messages: list[Any], dump: ConfigDump | None = None) -> str:
    from meshctl.inspect.protojson import message_list_json, message_object

    pool = dump.pool if dump is not None else None
    if output is OutputFormat.json:
        return message_list_json(messages, pool)
    return _structured(output, [message_object(message, pool) for message in messages])


def _message(output: OutputFormat, message: Any, dump: ConfigDump) -> str:
    from meshctl.inspect.protojson import message_json, message_object

    if output is OutputFormat.json:
        return message_json(message, dump.pool)
    return _structured(output, message_object(message, dump.pool))


def clusters(
    target: TargetArg = None,
    fqdn: FqdnOpt = "",
    port: PortOpt = 0,
    subset: SubsetOpt = "",
    direction: DirectionOpt = "",
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Clusters (CDS, active and static). Aliases: cluster, c."""
    from meshctl.inspect.acquire import masked_clusters
    from meshctl.inspect.configdump import parse_cluster_answers
    from meshctl.inspect.tables.clusters import TABLE_FIELDS, ClusterFilter, clusters_table, sorted_clusters

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    cluster_filter = ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction)

    def render(source: DumpSource) -> Iterator[str]:
        short = output is OutputFormat.short
        if short and source.live:
            yield clusters_table(parse_cluster_answers(masked_clusters(source, TABLE_FIELDS), source.name), cluster_filter)
            return
        dump = _dump(source, "config_dump?mask=dynamic_active_clusters,static_clusters", TABLE_FIELDS if short else None)
        if short:
            yield clusters_table(dump, cluster_filter)
        else:
            yield _messages(output, sorted_clusters(dump, cluster_filter), dump)

    _emit(where.sources(), render)


def listeners(
    target: TargetArg = None,
    address: AddressOpt = "",
    port: PortOpt = 0,
    type_: TypeOpt = "",
    verbose: VerboseOpt = True,
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Listeners (LDS), one row per filter chain. Aliases: listener, l."""
    from meshctl.inspect.tables.listeners import ListenerFilter, dump_listeners, listeners_table

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    listener_filter = ListenerFilter(address=address, port=port, type=type_, verbose=verbose)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?mask=dynamic_listeners,static_listeners")
        if output is OutputFormat.short:
            yield listeners_table(dump, listener_filter)
        else:
            yield _messages(output, [item for item in dump_listeners(dump) if listener_filter.matches(item)], dump)

    _emit(where.sources(), render)


def routes(
    target: TargetArg = None,
    name: RouteNameOpt = "",
    verbose: VerboseOpt = True,
    wide: Annotated[
        bool, typer.Option("--wide", help="Add each route's destination clusters (with weights) and owning config.")
    ] = False,
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Routes (RDS and inline route configurations). Aliases: route, r."""
    from meshctl.inspect.tables.routes import RouteFilter, routes_table, sorted_route_configs

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    route_filter = RouteFilter(name=name, verbose=verbose)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?mask=dynamic_route_configs,static_route_configs")
        if output is OutputFormat.short:
            yield routes_table(dump, route_filter, wide=wide)
        else:
            yield _messages(output, [item for item in sorted_route_configs(dump) if route_filter.matches(item)], dump)

    _emit(where.sources(), render)


def endpoints(
    target: TargetArg = None,
    address: AddressOpt = "",
    port: PortOpt = 0,
    cluster: ClusterNameOpt = "",
    status: StatusOpt = "",
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Endpoints as Envoy sees them, from /clusters?format=json (a -f file must hold that JSON).
    Aliases: endpoint, ep."""
    from meshctl.inspect.configdump import parse_clusters
    from meshctl.inspect.tables.endpoints import EndpointFilter, endpoints_table, matching_cluster_statuses

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    endpoint_filter = EndpointFilter(address=address, port=port, cluster=cluster, status=status)

    def render(source: DumpSource) -> Iterator[str]:
        clusters_message = parse_clusters(source.get("clusters?format=json"), source.name)
        if output is OutputFormat.short:
            yield endpoints_table(clusters_message, endpoint_filter)
        else:
            yield _messages(output, matching_cluster_statuses(clusters_message, endpoint_filter))

    _emit(where.sources(), render)


def eds(
    target: TargetArg = None,
    address: Annotated[str, typer.Option("--address", help="Filter by address with port, e.g. 10.0.0.1:8080.")] = "",
    port: PortOpt = 0,
    cluster: ClusterNameOpt = "",
    status: StatusOpt = "",
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Endpoints as the control plane sent them (the config dump's EDS section, with locality)."""
    from meshctl.inspect.tables.eds import eds_table, filtered_assignments
    from meshctl.inspect.tables.endpoints import EndpointFilter

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    endpoint_filter = EndpointFilter(address=address, port=port, cluster=cluster, status=status)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?include_eds&mask=dynamic_endpoint_configs,static_endpoint_configs")
        if output is OutputFormat.short:
            yield eds_table(dump, endpoint_filter)
        else:
            yield _messages(output, filtered_assignments(dump, endpoint_filter), dump)

    _emit(where.sources(), render)


def secret(
    target: TargetArg = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Add SANs, days left and whether the chain reaches ROOTCA.")
    ] = False,
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """SDS secrets with their certificates (VALID CERT is judged at the current time).
    Aliases: secrets, s."""
    from datetime import UTC, datetime

    from meshctl.inspect.tables.secrets import secrets_table

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?mask=dynamic_active_secrets,dynamic_warming_secrets")
        if output is OutputFormat.short:
            yield secrets_table(dump, datetime.now(UTC), wide=wide)
        else:
            yield _message(output, dump.secrets(), dump)

    _emit(where.sources(), render)


def bootstrap(
    target: TargetArg = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="Output format; short prints the versions.")
    ] = OutputFormat.json,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """The bootstrap Envoy started with (JSON by default, as in istioctl). Alias: b."""
    from meshctl.inspect.tables.bootstrap import bootstrap_summary

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?mask=bootstrap")
        if output is OutputFormat.short:
            yield bootstrap_summary(dump)
        else:
            yield _message(output, dump.bootstrap(), dump)

    _emit(where.sources(), render)


def ecds(
    target: TargetArg = None,
    output: OutputOpt = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Extension configs delivered by ECDS (Wasm plugins, telemetry filters). Alias: ec."""
    from meshctl.inspect.tables.ecds import ecds_table

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)

    def render(source: DumpSource) -> Iterator[str]:
        dump = _dump(source, "config_dump?mask=ecds_filters")
        yield ecds_table(dump) if output is OutputFormat.short else _message(output, dump.ecds(), dump)

    _emit(where.sources(), render)


def all_config(
    target: TargetArg = None,
    fqdn: FqdnOpt = "",
    port: Annotated[int, typer.Option("--port", help="Filter clusters, listeners and endpoints by port.")] = 0,
    subset: SubsetOpt = "",
    direction: DirectionOpt = "",
    address: AddressOpt = "",
    type_: TypeOpt = "",
    name: RouteNameOpt = "",
    cluster: ClusterNameOpt = "",
    status: StatusOpt = "",
    verbose: VerboseOpt = True,
    with_headers: Annotated[bool, typer.Option("--with-headers", help="Put a banner before each section.")] = False,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="Output format; json and yaml print the whole dump.")
    ] = OutputFormat.short,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Every summary in one go (bootstrap, clusters, listeners, routes, secrets, endpoints). Alias: a."""
    from datetime import UTC, datetime

    from meshctl.inspect.tables.clusters import ClusterFilter
    from meshctl.inspect.tables.endpoints import EndpointFilter
    from meshctl.inspect.tables.listeners import ListenerFilter
    from meshctl.inspect.tables.routes import RouteFilter
    from meshctl.inspect.tables.summary import SummaryFilters, full_summary

    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    filters = SummaryFilters(
        clusters=ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction),
        listeners=ListenerFilter(address=address, port=port, type=type_, verbose=verbose),
        routes=RouteFilter(name=name, verbose=verbose),
        endpoints=EndpointFilter(address=address, port=port, cluster=cluster, status=status),
    )

    def render(source: DumpSource) -> Iterator[str]:
        data = source.get("config_dump?include_eds")
        dump = _parse(data, source.name)
        if output is OutputFormat.short:
            yield from full_summary(dump, filters, datetime.now(UTC), with_headers=with_headers)
        elif output is OutputFormat.json:
            yield data.decode()
        else:
            import json

            from meshctl.inspect.protojson import to_yaml

            yield to_yaml(json.loads(data))

    _emit(where.sources(), render)


def log(
    target: TargetArg = None,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            help="LEVEL for all loggers, or LOGGER:LEVEL,... with trace, debug, info, warning, error, critical, off.",
        ),
    ] = "",
    reset: Annotated[bool, typer.Option("-r", "--reset", help="Set every logger back to warning.")] = False,
    file: FileOpt = None,
    admin: AdminOpt = None,
    selector: SelectorOpt = None,
    namespace: NamespaceOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    proxy_admin_port: AdminPortOpt = 15000,
) -> None:
    """Show Envoy's logger levels, or set them. Alias: o."""
    from meshctl.cli.output import out
    from meshctl.errors import MeshctlError, UsageError
    from meshctl.inspect.loglevels import requested_levels

    if reset and level:
        raise UsageError("--level cannot be combined with --reset")
    where = _Where(target, file, admin, selector, namespace, kubeconfig, context, proxy_admin_port)
    failures = []
    for source in where.sources():
        try:
            response = loggers = source.post("logging").decode()
            for logger, value in requested_levels(level, reset, loggers):
                response = source.post(f"logging?{logger}={value}").decode()
        except UsageError:
            raise
        except MeshctlError as exc:
            failures.append(f"{source.name}: cannot set log levels: {exc}")
            continue
        out(f"{source.name}:\n{response}")
    if failures:
        raise MeshctlError("\n".join(failures))


_COMMANDS: dict[str, Callable[..., None]] = {
    "clusters": clusters,
    "listeners": listeners,
    "routes": routes,
    "endpoints": endpoints,
    "eds": eds,
    "secret": secret,
    "bootstrap": bootstrap,
    "ecds": ecds,
    "all": all_config,
    "log": log,
}
_ALIASES = {
    "cluster": "clusters",
    "c": "clusters",
    "listener": "listeners",
    "l": "listeners",
    "route": "routes",
    "r": "routes",
    "endpoint": "endpoints",
    "ep": "endpoints",
    "secrets": "secret",
    "s": "secret",
    "b": "bootstrap",
    "ec": "ecds",
    "a": "all",
    "o": "log",
}
