"""`meshctl explain`: which listener, chain, route, cluster and endpoints a request takes through
one proxy, why not the others, and which Istio resource (file:line) decided each step.

The proxy comes from the input files (`-f` and a pod or Deployment, translated as `meshctl
translate` does), a saved dump (`--file`), or a live Envoy (`--admin`, or a pod through
Kubernetes). Input files given with a dump or a live Envoy trace its config back to them.

Exit codes: 0 explained (whatever the request's fate), 1 error, 64 usage, 65 bad input.
Module imports stay cheap (typer and the standard library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.options import (
    AdminOption,
    ContextOption,
    KubeconfigOption,
    MeshConfigOption,
    OutputOption,
    ProxyAdminPortOption,
    TARGET_METAVAR,
)
from meshctl.formats import OutputFormat

if TYPE_CHECKING:
    from meshctl.explain.request import Request
    from meshctl.explain.sources import Subject
    from meshctl.inspect.acquire import DumpSource


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


def explain(
    target: Annotated[
        str | None,
        typer.Argument(metavar=TARGET_METAVAR, show_default=False,
                       help="The proxy: from the input files (-f), or a live pod. Optional with --file or --admin."),
    ] = None,
    url: Annotated[str, typer.Option("--url", "-u", show_default=False,
                                     help="The request: http://HOST[:PORT]/PATH, https://, grpc://, tcp://HOST:PORT, tls://.")] = "",
    method: Annotated[str, typer.Option("-X", "--request", help="HTTP method.")] = "GET",
    headers: Annotated[list[str] | None, typer.Option("-H", "--header", show_default=False,
                                                      help="'name: value'; repeatable.")] = None,
    inbound: Annotated[bool, typer.Option("--inbound", help="The request arrives at the proxy's workload "
                                                            "(captured to 15006) instead of leaving it.")] = False,
    port: Annotated[int | None, typer.Option("--port", show_default=False, min=1, max=65535,
                                             help="Destination port, instead of the URL's.")] = None,
    address: Annotated[str | None, typer.Option("--address", show_default=False,
                                                help="Destination IP the application connects to; default: the "
                                                     "URL's host resolved through the mesh.")] = None,
    from_ip: Annotated[str | None, typer.Option("--from-ip", show_default=False, help="Source IP of the connection.")] = None,
    from_principal: Annotated[str, typer.Option("--from-principal", show_default=False,
                                                help="The peer's SPIFFE identity, for RBAC on mTLS connections.")] = "",
    tls: Annotated[bool, typer.Option("--tls", help="The application speaks TLS (SNI from the host or --sni).")] = False,
    mtls: Annotated[bool, typer.Option("--mtls", help="Istio mutual TLS from a peer sidecar (default with --inbound).")] = False,
    plaintext: Annotated[bool, typer.Option("--plaintext", help="Plaintext, also for --inbound.")] = False,
    sni: Annotated[str | None, typer.Option("--sni", show_default=False, help="TLS server name.")] = None,
    alpn: Annotated[str, typer.Option("--alpn", show_default=False, help="TLS ALPN list, comma separated.")] = "",
    http2: Annotated[bool, typer.Option("--http2", help="HTTP/2 (h2c in plaintext).")] = False,
    files: Annotated[list[str] | None, typer.Option("-f", "--filename", show_default=False,
                                                    help="Input files (or directories, - for stdin); repeatable.")] = None,
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="Namespace for resources and targets that name none.")] = "default",
    mesh_config: MeshConfigOption = None,
    file: Annotated[str | None, typer.Option("--file", show_default=False,
                                             help="A saved Envoy /config_dump (take it with ?include_eds for endpoints).")] = None,
    admin: AdminOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    proxy_admin_port: ProxyAdminPortOption = 15000,
    output: OutputOption = OutputFormat.short,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="List every candidate passed over.")] = False,
) -> int:
    """Follow a request through one proxy: listener, filter chain, route, cluster, endpoints.

    Each step names the Istio resource that decided it, and with input files (-f) its file,
    line and field; for each route passed over, why it did not match. Where the config cannot
    decide (a random fraction, a JWT claim, endpoints a dump lacks) the answer forks or says
    what is missing.

    Examples:

    \b
      meshctl explain deploy/productpage-v1 -f examples/bookinfo --url http://reviews:9080/reviews/1 -H 'end-user: jason'
      meshctl explain deploy/reviews-v1 -f examples/bookinfo --inbound --url http://reviews:9080/ --from-principal spiffe://cluster.local/ns/default/sa/bookinfo-productpage
      meshctl explain --file productpage-dump.json --url http://reviews:9080/ --address 10.96.171.247 -o json
      meshctl explain productpage-v1-6b746f74dc-9stp2.default --url http://reviews:9080/
    """
    from meshctl.errors import ExitCode, UsageError

    if not url:
        raise UsageError("give the request with --url, e.g. --url http://reviews:9080/reviews/1")
    if sum([tls, mtls, plaintext]) > 1:
        raise UsageError("give at most one of --tls, --mtls and --plaintext")
    if file is not None and admin is not None:
        raise UsageError("give --file or --admin, not both")
    request = _request(url, method, headers or [], inbound, port, address, from_ip, from_principal,
                       tls, mtls, plaintext, sni, alpn, http2)
    live = _asked_early(admin, request) if admin is not None else None
    # Imported once Envoy has its questions: it answers them while these load.
    from meshctl.cli.output import out, warn
    from meshctl.explain.engine import explain as follow
    from meshctl.explain.render import explanation_text
    from meshctl.formats import structured_text

    subject = _subject(target, files or [], namespace, mesh_config, file, live, kubeconfig, context,
                       proxy_admin_port)
    explanation = follow(subject.view, request, subject.provenance, subject.resolver)
    for warning in subject.view.warnings():
        warn(warning)
    if output is OutputFormat.short:
        out(explanation_text(explanation, verbose=verbose))
    else:
        out(structured_text(explanation.data(), as_yaml=output is OutputFormat.yaml))
    return ExitCode.OK


def _request(url: str, method: str, headers: list[str], inbound: bool, port: int | None, address: str | None,
             from_ip: str | None, principal: str, tls: bool, mtls: bool, plaintext: bool, sni: str | None,
             alpn: str, http2: bool) -> Request:
    from meshctl.explain.request import Direction, Transport, parse_request

    transport = Transport.tls if tls else Transport.mtls if mtls else Transport.plaintext if plaintext else None
    return parse_request(
        url, method=method, headers=headers, direction=Direction.inbound if inbound else Direction.outbound,
        port=port, address=address, source_ip=from_ip, transport=transport, sni=sni,
        alpn=[item.strip() for item in alpn.split(",") if item.strip()], http2=http2, principal=principal,
    )


def _asked_early(admin: str, request: Request) -> DumpSource:
    """The Envoy at `admin`, asked at once, in the background, for what explain reads first:
    its node, its listeners and, for an HTTP request leaving a sidecar, the route configuration
    Istio names after the destination port (a guess: a gateway's are named otherwise)."""
    from meshctl.explain.request import Direction
    from meshctl.inspect.acquire import AdminSource
    from meshctl.inspect.acquire.early import EarlySource
    from meshctl.inspect.adminpaths import LISTENERS_PATH, SERVER_INFO_PATH, by_name

    paths = [SERVER_INFO_PATH, LISTENERS_PATH]
    if request.http and request.direction is Direction.outbound:
        paths.append(by_name("dynamic_route_configs", str(request.port)))
    return EarlySource(AdminSource(admin), paths)


def _subject(target: str | None, files: list[str], namespace: str, mesh_config: str | None, file: str | None,
             live: DumpSource | None, kubeconfig: str | None, context: str | None,
             admin_port: int) -> Subject:
    from meshctl.errors import UsageError
    from meshctl.explain import sources
    from meshctl.targets import USAGE

    mesh = None
    if files or mesh_config:  # only input files read it: the Istio kinds' schemas are slow to import
        from meshctl.model.meshconfig import MeshConfig, read_mesh_config

        mesh = read_mesh_config(mesh_config) if mesh_config else MeshConfig()
    if file is not None:
        from meshctl.inspect.acquire import FileSource

        dump = FileSource(file)
        return sources.from_dump(dump.get("config_dump"), dump.name, files, target, namespace, mesh)
    if live is not None:
        return sources.from_live(live, files, target, namespace, mesh)
    if target is None:
        raise UsageError(f"name the proxy ({USAGE}), or give --file or --admin")
    if files:
        return sources.from_inputs(files, target, namespace, mesh)
    from meshctl.inspect.acquire.location import Location
    from meshctl.kube.client import lazy_client

    location = Location(lazy_client(kubeconfig, context), target=target, namespace=namespace, admin_port=admin_port)
    _, source = location.proxy()
    return sources.from_live(source)
