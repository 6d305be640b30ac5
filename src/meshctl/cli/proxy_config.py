"""`meshctl proxy-config` (alias `pc`): what one Envoy holds, as istioctl prints it.

Every subcommand reads from exactly one place: a saved admin response (`-f FILE`, `-f -`), an
Envoy admin URL (`--admin`), or pods (`POD[.NS]`, `deploy/NAME[.NS]`, `-l SELECTOR`): the
source flags are one group, `ProxySourceFlags`. What each view asks Envoy for and how it
prints lives in `meshctl.inspect.proxyconfig`; a subcommand here holds its filter flags and
prints. Short output is plain text, byte for byte istioctl's, never coloured or truncated.

Module imports stay cheap (typer and the standard library): the library, protobuf and
kubernetes are imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from meshctl.cli.options import OutputOption, ProxySourceFlags, flag_group
from meshctl.formats import OutputFormat

if TYPE_CHECKING:
    from meshctl.inspect.acquire import DumpSource

_GO_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_GO_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class ProxyConfigGroup(TyperGroup):
    """Builds a subcommand only when it is called or listed, and resolves istioctl's aliases.

    Converting all ten subcommands (twice: `proxy-config` and `pc`) costs about as much as
    the rest of `meshctl --help`, so they are not registered on the Typer app up front.
    Also accepts istioctl's `--verbose=false` spelling of the `--no-verbose` flag.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        name = ALIASES.get(cmd_name, cmd_name)
        if name not in _COMMANDS:
            return None
        if name not in self.commands:
            single = typer.Typer(add_completion=False, rich_markup_mode=None)
            command = flag_group(_COMMANDS[name])  # unfold the ProxySourceFlags group into flags
            single.command(name, context_settings={"help_option_names": ["-h", "--help"]})(command)
            self.commands[name] = typer.main.get_command(single)
        return self.commands[name]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [_verbose_flag(arg) for arg in args])

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Typer suggests from the commands built so far, which here is none: suggest from every
        subcommand and alias instead (`clsuters`: did you mean 'clusters'?)."""
        import difflib

        from typer._click import exceptions as click_exceptions

        try:
            return super().resolve_command(ctx, args)
        except click_exceptions.UsageError as exc:
            matches = difflib.get_close_matches(args[0], [*_COMMANDS, *ALIASES]) if args else []
            suggested = list(dict.fromkeys(ALIASES.get(match, match) for match in matches))
            if suggested:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, suggested))}?"
            raise


def _verbose_flag(arg: str) -> str:
    name, equals, value = arg.partition("=")
    if name != "--verbose" or not equals:
        return arg
    if value in _GO_TRUE:
        return "--verbose"
    return "--no-verbose" if value in _GO_FALSE else arg


app = typer.Typer(
    name="proxy-config",
    cls=ProxyConfigGroup,
    help="""Show the clusters, listeners, routes, endpoints and secrets one Envoy holds.

    Examples:

    \b
      meshctl proxy-config clusters deploy/productpage-v1
      meshctl pc routes --admin http://127.0.0.1:15000 --wide
      meshctl pc all -f config_dump.json -o yaml
    """,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(parent: typer.Typer) -> None:
    """Add the group as `proxy-config` and as istioctl's hidden short form `pc`."""
    parent.add_typer(app, name="proxy-config")
    parent.add_typer(app, name="pc", hidden=True)


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


def note(text: str) -> None:
    """A remark about a view's data, on stderr so the table on stdout stays as it is."""
    from meshctl.cli.output import err

    err(f"note: {text}")


def _emit(where: ProxySourceFlags, render: Callable[[DumpSource], str | Iterable[str]]) -> None:
    """Print each source's output; with several sources, each under a `NAME:` line."""
    from meshctl.cli.output import out

    sources = where.location().sources()
    for index, source in enumerate(sources):
        if len(sources) > 1:
            if index:
                out("")
            out(f"{source.name}:")
        rendered = render(source)
        for chunk in [rendered] if isinstance(rendered, str) else rendered:
            out(chunk)


def clusters(
    fqdn: FqdnOpt = "",
    port: PortOpt = 0,
    subset: SubsetOpt = "",
    direction: DirectionOpt = "",
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """Clusters (CDS, active and static). Aliases: cluster, c.

    Examples:

    \b
      meshctl pc clusters deploy/productpage-v1 --fqdn reviews --direction outbound
      meshctl pc clusters -f config_dump.json --port 9080 -o json
    """
    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.clusters import ClusterFilter

    cluster_filter = ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction)
    _emit(where, lambda source: proxyconfig.clusters(source, cluster_filter, output))


def listeners(
    address: AddressOpt = "",
    port: PortOpt = 0,
    type_: TypeOpt = "",
    verbose: VerboseOpt = True,
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """Listeners (LDS), one row per filter chain. Aliases: listener, l.

    Examples:

    \b
      meshctl pc listeners productpage-v1-abc.default --port 15006
      meshctl pc listeners --admin http://127.0.0.1:15000 --type HTTP --verbose=false
    """
    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.listeners import ListenerFilter

    listener_filter = ListenerFilter(address=address, port=port, type=type_, verbose=verbose)
    _emit(where, lambda source: proxyconfig.listeners(source, listener_filter, output))


def routes(
    name: RouteNameOpt = "",
    verbose: VerboseOpt = True,
    wide: Annotated[
        bool, typer.Option("--wide", help="Show the whole match (headers, query) and add each route's destinations (with weights) and owning config.")
    ] = False,
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """Routes (RDS and inline route configurations). Aliases: route, r.

    Examples:

    \b
      meshctl pc routes deploy/productpage-v1 --name 9080 --wide
      meshctl pc routes -f config_dump.json -o yaml
    """
    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.routes import RouteFilter

    route_filter = RouteFilter(name=name, verbose=verbose)
    _emit(where, lambda source: proxyconfig.routes(source, route_filter, output, wide=wide))


def endpoints(
    address: AddressOpt = "",
    port: PortOpt = 0,
    cluster: ClusterNameOpt = "",
    status: StatusOpt = "",
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """Endpoints as Envoy sees them, from /clusters?format=json (a -f file must hold that JSON).
    Aliases: endpoint, ep.

    Examples:

    \b
      meshctl pc endpoints deploy/productpage-v1 --cluster 'outbound|9080||reviews.default.svc.cluster.local'
      meshctl pc endpoints --admin http://127.0.0.1:15000 --status unhealthy
    """
    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.endpoints import EndpointFilter

    endpoint_filter = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    _emit(where, lambda source: proxyconfig.endpoints(source, endpoint_filter, output))


def eds(
    address: Annotated[str, typer.Option("--address", help="Filter by address with port, e.g. 10.0.0.1:8080.")] = "",
    port: PortOpt = 0,
    cluster: ClusterNameOpt = "",
    status: StatusOpt = "",
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """Endpoints as the control plane sent them (the config dump's EDS section, with locality).

    Examples:

    \b
      meshctl pc eds deploy/productpage-v1 --port 9080
      meshctl pc eds -f config_dump.json   # a dump taken with /config_dump?include_eds
    """
    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.endpoints import EndpointFilter

    endpoint_filter = EndpointFilter(address=address, port=port, cluster=cluster, status=status)
    _emit(where, lambda source: proxyconfig.eds(source, endpoint_filter, output, note))


def secret(
    wide: Annotated[
        bool, typer.Option("--wide", help="Add SANs, days left and whether the chain reaches ROOTCA.")
    ] = False,
    output: OutputOption = OutputFormat.short,
    *,
    where: ProxySourceFlags,
) -> None:
    """SDS secrets with their certificates (VALID CERT is judged at the current time).
    Aliases: secrets, s.

    Examples:

    \b
      meshctl pc secret deploy/productpage-v1 --wide
      meshctl pc secret -f config_dump.json -o json
    """
    from datetime import UTC, datetime

    from meshctl.inspect import proxyconfig

    _emit(where, lambda source: proxyconfig.secrets(source, output, datetime.now(UTC), wide=wide))


def bootstrap(
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="Output format; short prints the versions.")
    ] = OutputFormat.json,
    *,
    where: ProxySourceFlags,
) -> None:
    """The bootstrap Envoy started with (JSON by default, as in istioctl). Alias: b.

    Examples:

    \b
      meshctl pc bootstrap deploy/productpage-v1 -o short
      meshctl pc bootstrap --admin http://127.0.0.1:15000 -o yaml
    """
    from meshctl.inspect import proxyconfig

    _emit(where, lambda source: proxyconfig.bootstrap(source, output))


def ecds(output: OutputOption = OutputFormat.short, *, where: ProxySourceFlags) -> None:
    """Extension configs delivered by ECDS (Wasm plugins, telemetry filters). Alias: ec.

    Examples:

    \b
      meshctl pc ecds deploy/productpage-v1
      meshctl pc ecds -f config_dump.json -o json
    """
    from meshctl.inspect import proxyconfig

    _emit(where, lambda source: proxyconfig.ecds(source, output))


def all_config(
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
    *,
    where: ProxySourceFlags,
) -> None:
    """Every summary in one go (bootstrap, clusters, listeners, routes, secrets, endpoints). Alias: a.

    Examples:

    \b
      meshctl pc all deploy/productpage-v1 --with-headers
      meshctl pc all --admin http://127.0.0.1:15000 -o json > config_dump.json
    """
    from datetime import UTC, datetime

    from meshctl.inspect import proxyconfig
    from meshctl.inspect.tables.clusters import ClusterFilter
    from meshctl.inspect.tables.endpoints import EndpointFilter
    from meshctl.inspect.tables.listeners import ListenerFilter
    from meshctl.inspect.tables.routes import RouteFilter
    from meshctl.inspect.tables.summary import SummaryFilters

    filters = SummaryFilters(
        clusters=ClusterFilter(fqdn=fqdn, port=port, subset=subset, direction=direction),
        listeners=ListenerFilter(address=address, port=port, type=type_, verbose=verbose),
        routes=RouteFilter(name=name, verbose=verbose),
        endpoints=EndpointFilter(address=address, port=port, cluster=cluster, status=status),
    )
    now = datetime.now(UTC)
    _emit(where, lambda source: proxyconfig.everything(source, filters, output, now, note, with_headers=with_headers))


def log(
    level: Annotated[
        str,
        typer.Option(
            "--level",
            help="LEVEL for all loggers, or LOGGER:LEVEL,... with trace, debug, info, warning, error, critical, off.",
        ),
    ] = "",
    reset: Annotated[bool, typer.Option("-r", "--reset", help="Set every logger back to warning.")] = False,
    *,
    where: ProxySourceFlags,
) -> None:
    """Show Envoy's logger levels, or set them. Alias: o.

    Examples:

    \b
      meshctl pc log deploy/productpage-v1 --level http:debug,router:debug
      meshctl pc log -l app=reviews --reset
    """
    from meshctl.cli.output import out
    from meshctl.errors import MeshctlError, UsageError
    from meshctl.inspect.loglevels import set_levels

    if reset and level:
        raise UsageError("--level cannot be combined with --reset")
    failures = []
    for source in where.location().sources():
        try:
            response = set_levels(source, level, reset)
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
ALIASES = {
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
