"""`meshctl proxy-status` (alias `ps`): are the proxies in sync with the control plane?

Without a pod: the sync status of every proxy connected to the control plane (meshctl serve or
istiod), as istioctl prints it. With a pod: istioctl's diff of what the control plane would send
that proxy against what its Envoy holds (from the pod, `--admin` or `--file`), or with
`--semantic` a resource-by-resource report. `--wait` makes either a CI gate: it first waits
until the selected proxies are SYNCED.

Exit codes: 0 done (and, with `--semantic`, no difference; the default diff exits 0 like
istioctl whatever it prints); 80 not in sync (`--wait` timed out, or `--semantic` found a
difference); 1 error; 64 usage error.

Module imports stay cheap (typer and the standard library); grpc, protobuf and kubernetes are
imported inside the command.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshctl.cli.options import (
    TARGET_METAVAR,
    ContextOption,
    IstioNamespaceOption,
    KubeconfigOption,
    ProxyAdminPortOption,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    from meshctl.status.client import DebugClient
    from meshctl.status.syncz import ProxySync


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def register(app: typer.Typer) -> None:
    """Add `proxy-status` and istioctl's hidden short form `ps`."""
    app.command("proxy-status")(proxy_status)
    app.command("ps", hidden=True)(proxy_status)


def proxy_status(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar=TARGET_METAVAR,
            help="Compare this proxy's Envoy config with the control plane's instead of listing all proxies.",
            show_default=False,
        ),
    ] = None,
    xds_address: Annotated[
        str | None,
        typer.Option("--xds-address", help="HOST:PORT of the control plane; default: every istiod pod, port-forwarded.",
                     show_default=False),
    ] = None,
    plaintext: Annotated[
        bool, typer.Option("--plaintext", help="No TLS and no token (istiod's 15010, meshctl serve).")
    ] = False,
    cert_dir: Annotated[
        str | None,
        typer.Option("--cert-dir", help="root-cert.pem to verify istiod with; cert-chain.pem and key.pem, if there, "
                     "to prove who asks instead of a token. Default root: the istio-ca-root-cert ConfigMap.",
                     show_default=False),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Skip verifying istiod's certificate and name (NOT SECURE).")
    ] = False,
    authority: Annotated[
        str | None,
        typer.Option("--authority", help="The name istiod's certificate must carry; default istiod.NS.svc (NS: -i).",
                     show_default=False),
    ] = None,
    xds_port: Annotated[int, typer.Option("--xds-port", help="istiod port to port-forward to.")] = 15012,
    xds_label: Annotated[
        str | None, typer.Option("--xds-label", help="Select istiod pods by this label instead of app=istiod.",
                                 show_default=False)
    ] = None,
    istio_namespace: IstioNamespaceOption = "istio-system",
    revision: Annotated[
        str | None, typer.Option("-r", "--revision", help="Ask only the istiod of this revision.", show_default=False)
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    namespace: Annotated[
        str | None,
        typer.Option("-n", "--namespace", help="Only proxies of this namespace; the pod's namespace.", show_default=False),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output", help="Output format.")] = OutputFormat.table,
    verbosity: Annotated[
        int, typer.Option("-v", "--verbosity", min=0, max=1, help="1 shows a column per xDS type with its age.")
    ] = 0,
    file: Annotated[
        str | None, typer.Option("-f", "--file", help="Envoy /config_dump JSON to compare; - reads stdin.",
                                 show_default=False)
    ] = None,
    admin: Annotated[
        str | None, typer.Option("--admin", help="Envoy admin URL to read the config dump from.", show_default=False)
    ] = None,
    proxy_admin_port: ProxyAdminPortOption = 15000,
    semantic: Annotated[
        bool,
        typer.Option("--semantic", help="Report changed, missing and extra resources by name and field, ignoring order."),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="First wait until the selected proxies are SYNCED; exit 80 on timeout.")
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long to wait for answers (and for --wait).")] = "30s",
) -> int:
    """Sync status of every proxy, or one proxy's config diffed against the control plane.

    Examples:

    \b
      meshctl proxy-status
      meshctl proxy-status --xds-address 127.0.0.1:15010 --plaintext --wait --timeout 60s
      meshctl proxy-status deploy/productpage-v1 --semantic
      meshctl proxy-status productpage-v1-pxs72s5xz5-l4lt4.default --admin http://127.0.0.1:15000 \\
        --xds-address 127.0.0.1:15010 --plaintext
    """
    from meshctl.errors import UsageError
    from meshctl.inspect.acquire.location import Location
    from meshctl.kube.client import lazy_client
    from meshctl.targets import USAGE

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's own log lines; its errors are explained instead
    seconds = _seconds(timeout)
    if plaintext and (cert_dir or insecure or authority):
        raise UsageError("--cert-dir, --insecure and --authority are about TLS; --plaintext has none")
    if target is None and (file or admin or semantic):
        raise UsageError(f"--file, --admin and --semantic compare one proxy: name it ({USAGE})")
    if target is not None and output is not OutputFormat.table and not semantic:
        raise UsageError("the istioctl diff is text only; -o json|yaml goes with --semantic")
    kube = lazy_client(kubeconfig, context)

    def control_planes() -> contextlib.AbstractContextManager[list[DebugClient]]:
        from meshctl.status.controlplanes import ControlPlaneOptions, open_control_planes

        options = ControlPlaneOptions(xds_address, plaintext, xds_port, istio_namespace, revision, xds_label, seconds,
                                      cert_dir, insecure, authority)
        return open_control_planes(options, kube)

    if target is None:
        with control_planes() as clients:
            if wait:
                return _exit_code(_wait(clients, _Selection(namespace, None), seconds, output, verbosity, show=True))
            _print_status(clients, namespace, output, verbosity)
            return 0
    from concurrent.futures import ThreadPoolExecutor

    location = Location(kube, target=target, file=file, admin=admin, namespace=namespace, admin_port=proxy_admin_port)
    proxy_id, source = location.proxy()
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="meshctl envoy dump"))
        stack.enter_context(_quick_thread_switches())
        # Envoy takes a while to write a big dump: ask it first and the control plane meanwhile,
        # unless the dump is to be read only once the proxy is in sync. A file is read before
        # anything else, so that a missing or unreadable one is what the user hears about.
        early = None if wait and source.live else pool.submit(source.get, "config_dump")
        if early is not None and not source.live:
            early.result()
        clients = stack.enter_context(control_planes())
        if wait and not _wait(clients, _Selection(None, proxy_id), seconds, output, verbosity, show=False):
            return _exit_code(False)
        fetched = early or pool.submit(source.get, "config_dump")
        return _print_comparison(clients, proxy_id, fetched, source.name, semantic, output)


@contextlib.contextmanager
def _quick_thread_switches() -> Iterator[None]:
    """Let the thread reading Envoy's dump take the interpreter back within half a millisecond.

    Each time data arrives it needs the GIL, which the main thread, busy converting the control
    plane's answer, holds for Python's default switch interval (5 ms) at a time: that made a
    4 MB dump arrive twice as slowly as Envoy sent it.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _seconds(text: str) -> float:
    from meshctl.config.values import parse_duration
    from meshctl.errors import UsageError

    nanos = parse_duration(text)
    if nanos is None or nanos <= 0:
        raise UsageError(f"--timeout: {text!r} is not a positive duration like 30s or 2m")
    return nanos / 1e9


@dataclass(frozen=True)
class _Selection:
    """Which proxies --wait waits for: those of a namespace, or one proxy, or all."""

    namespace: str | None
    proxy_id: str | None

    def __str__(self) -> str:
        if self.proxy_id:
            return self.proxy_id
        return "the proxies" + (f" of namespace {self.namespace}" if self.namespace else "")


def _wait(
    clients: Sequence[DebugClient],
    selection: _Selection,
    seconds: float,
    output: OutputFormat,
    verbosity: int,
    *,
    show: bool,
) -> bool:
    """Wait for sync; print the outcome: the table when `show`; on timeout the laggards, one
    column per type, and the reason the proxy gave for each rejected push (its NACK)."""
    from meshctl.cli.output import err
    from meshctl.status.controlplanes import ask_syncz
    from meshctl.resources import short_name
    from meshctl.status.syncz import read_syncz, select
    from meshctl.status.wait import wait_for_sync

    answers: dict[str, Any] = {}

    def poll(question_timeout: float) -> list[ProxySync]:
        answers.clear()
        answers.update(ask_syncz(clients, question_timeout))
        return select(read_syncz(answers), selection.namespace, selection.proxy_id)

    result = wait_for_sync(poll, seconds)
    if result.synced:
        err(f"{selection}: {len(result.proxies)} SYNCED after {result.waited:.1f} s")
        if show:
            _render_status(answers, result.proxies, selection.namespace, output, verbosity)
        return True
    if not result.proxies:
        err(f"{selection}: none connected to the control plane after {seconds:g} s")
        return False
    err(f"{selection}: {len(result.laggards)} of {len(result.proxies)} not SYNCED after {seconds:g} s:")
    _render_status(answers, result.laggards, selection.namespace, output, 1)
    for proxy in result.laggards:
        for status in proxy.types:
            if status.error:
                err(f"{proxy.proxy_id}: {short_name(status.type_url)} rejected: {status.error.strip()}")
    return False


def _print_status(clients: Sequence[DebugClient], namespace: str | None, output: OutputFormat, verbosity: int) -> None:
    from meshctl.status.controlplanes import ask_syncz
    from meshctl.status.syncz import read_syncz, select

    answers = ask_syncz(clients)
    _render_status(answers, select(read_syncz(answers), namespace), namespace, output, verbosity)


def _render_status(
    answers: dict[str, Any], rows: Sequence[ProxySync], namespace: str | None, output: OutputFormat, verbosity: int
) -> None:
    """The table of `rows`, or with -o json|yaml each control plane's answer as it came
    (restricted to the namespace), as istioctl prints them."""
    from datetime import UTC, datetime

    from meshctl.cli.output import out
    from meshctl.inspect.configdump import binary_pool
    from meshctl.inspect.protojson import message_text
    from meshctl.status.syncz import answers_in
    from meshctl.status.tables import status_table, verbose_status_table

    if output is OutputFormat.table:
        out(verbose_status_table(rows, datetime.now(UTC)) if verbosity else status_table(rows))
        return
    for response in (answers_in(answers, namespace) if namespace else answers).values():
        pool = binary_pool(response)
        out(message_text(response, pool, as_yaml=output is OutputFormat.yaml))


def _print_comparison(
    clients: Sequence[DebugClient],
    proxy_id: str,
    fetched: Future[bytes],
    origin: str,
    semantic: bool,
    output: OutputFormat,
) -> int:
    """Ask the control plane and convert its answer while Envoy's dump is still on its way
    (`fetched`), then compare."""
    from meshctl.cli.output import out
    from meshctl.status.controlplanes import ask_config_dump
    from meshctl.status.sections import EnvoyDump

    expected = ask_config_dump(clients, proxy_id)
    expected.prepare()
    envoy = EnvoyDump(fetched.result(), origin)
    if not semantic:
        from meshctl.status.compare import compare, comparison_text, routes_loaded

        loaded = routes_loaded(envoy)
        out(comparison_text(compare(expected, envoy), loaded.astimezone() if loaded else None))
        return 0
    from meshctl.status.semantic import report_data, report_text, semantic_diff

    reports = semantic_diff(expected, envoy)
    if output is OutputFormat.table:
        out(report_text(reports))
    else:
        from meshctl.formats import structured_text

        out(structured_text(report_data(reports), as_yaml=output is OutputFormat.yaml))
    return _exit_code(all(report.matches for report in reports))


def _exit_code(in_sync: bool) -> int:
    from meshctl.errors import ExitCode

    return ExitCode.OK if in_sync else ExitCode.NOT_SYNCED
