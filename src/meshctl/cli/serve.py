"""`meshctl serve`: the embedded control plane (what istiod does for xDS and as a CA), fed by a
directory, a Kubernetes API server, or both (Istio config from files, the registry from the
cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from meshctl.cli.durations import duration_flag
from meshctl.cli.options import (DEFAULT_CA_DIR, ContextOption, InputNamespaceOption, IstioNamespaceOption,
                                 KubeconfigOption, LogFormatOption, LogLevelOption, MeshConfigOption)
from meshctl.xds.admission import DEFAULT_MAX_CONNECTIONS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from meshctl.kube.client import KubeClient
    from meshctl.kube.gatewaystatus import StatusReporting
    from meshctl.kube.lease import LeaderElector
    from meshctl.kube.webhookpatch import WebhookPatcher
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.sources.base import ConfigSource
    from meshctl.security.authenticate import Authenticator
    from meshctl.security.service import CaServer
    from meshctl.webhooks.server import WebhookServer
    from meshctl.sources.select import SourceChoice
    from meshctl.xds.generation import Translate
    from meshctl.xds.server import XdsServer

DEFAULT_TRANSLATOR = "meshctl.generate.translator:translate_resources"

ConfigDirOption = Annotated[
    str | None,
    typer.Option("--config-dir", help="Directory of Istio and Kubernetes YAML, watched for changes; with "
                 "--kubernetes, Istio and Gateway API config and Secrets (the cluster's Secret of a name wins).",
                 show_default=False),
]
KubernetesOption = Annotated[
    bool, typer.Option("--kubernetes", help="Watch the Kubernetes API (kubeconfig, or in-cluster config in a pod).")
]
XdsAddressOption = Annotated[str, typer.Option("--xds-address", help="HOST:PORT for ADS and CSDS (gRPC, plaintext).")]
DebugAddressOption = Annotated[str, typer.Option("--debug-address", help="HOST:PORT for /debug/*, /metrics and /ready; empty to disable.")]
AfterOption = Annotated[str, typer.Option("--debounce-after", help="Quiet period after the last change before pushing (0 pushes at once).")]
MaxOption = Annotated[str, typer.Option("--debounce-max", help="Longest a change may wait for the quiet period.")]
TranslatorOption = Annotated[str, typer.Option("--translator", hidden=True, help="MODULE:FUNCTION building the mesh config.")]
MaxConnectionsOption = Annotated[int, typer.Option(
    "--max-connections", help="Most ADS and CSDS streams open at once (one per sidecar); more are refused.")]
CaAddressOption = Annotated[str, typer.Option("--ca-address", help="HOST:PORT for the CA (Istio's CreateCertificate, TLS) and xDS over TLS; empty to disable.")]
XdsMtlsAddressOption = Annotated[str, typer.Option(
    "--xds-mtls-address", help="HOST:PORT for xDS over mutual TLS (client certificates from the CA): where gateways "
    "connect to be sent their credentialName Secrets; empty to disable.")]
CaDirOption = Annotated[str, typer.Option("--ca-dir", help="The CA's keys and certificates (Istio's cacerts layout); created with a new root if empty.")]
TrustDomainOption = Annotated[str, typer.Option("--trust-domain", help="The mesh's trust domain: spiffe://TRUST_DOMAIN/ns/NS/sa/SA.")]
WorkloadTtlOption = Annotated[str, typer.Option("--workload-cert-ttl", help="Lifetime of workload certificates whose CSR asks for none.")]
MaxWorkloadTtlOption = Annotated[str, typer.Option("--max-workload-cert-ttl", help="Longest lifetime a CSR may ask for; longer requests are refused.")]
WebhookAddressOption = Annotated[str, typer.Option("--webhook-address", help="HOST:PORT for the admission webhooks (/inject, /validate; HTTPS, a certificate from the CA); empty to disable.")]
SidecarImageOption = Annotated[str, typer.Option("--sidecar-image", help="Image of the sidecars /inject adds (meshctl's).", show_default=False)]
GraceOption = Annotated[str, typer.Option("--shutdown-grace", help="On SIGTERM, how long open streams get to end before they are cut.")]
LeaseOption = Annotated[
    str, typer.Option("--leader-lease", help="With --kubernetes: NAMESPACE/NAME of the Lease that elects the replica "
                      "doing once-per-cluster jobs; empty to not campaign.")
]


@dataclass(frozen=True, slots=True)
class CaSettings:
    """What serve's CA is started with."""

    address: str
    directory: str
    trust_domain: str
    default_ttl: float
    max_ttl: float
    xds_mtls_address: str = ""


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config_dir: ConfigDirOption = None,
    kubernetes: KubernetesOption = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    xds_address: XdsAddressOption = "127.0.0.1:15010",
    debug_address: DebugAddressOption = "127.0.0.1:15014",
    debounce_after: AfterOption = "100ms",
    debounce_max: MaxOption = "10s",
    namespace: InputNamespaceOption = "default",
    translator: TranslatorOption = DEFAULT_TRANSLATOR,
    ca_address: CaAddressOption = "127.0.0.1:15012",
    xds_mtls_address: XdsMtlsAddressOption = "",
    ca_dir: CaDirOption = DEFAULT_CA_DIR,
    trust_domain: TrustDomainOption = "cluster.local",
    workload_cert_ttl: WorkloadTtlOption = "24h",
    max_workload_cert_ttl: MaxWorkloadTtlOption = "2160h",
    shutdown_grace: GraceOption = "5s",
    leader_lease: LeaseOption = "",
    webhook_address: WebhookAddressOption = "",
    sidecar_image: SidecarImageOption = "",
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = "logfmt",
    max_connections: MaxConnectionsOption = DEFAULT_MAX_CONNECTIONS,
    mesh_config: MeshConfigOption = None,
    istio_namespace: IstioNamespaceOption = "istio-system",
) -> int:
    """Serve Envoy config over ADS (SotW and Delta) from a watched directory or a cluster, and sign
    workload certificates for authenticated agents, like istiod.

    With --kubernetes the mesh config is the `mesh` key of the `istio` ConfigMap in the
    --istioNamespace, watched as istiod watches it (a bad one is refused and the last good one
    kept), unless --mesh-config names a file. The injection webhook follows it too: an edit
    reaches the next pod injected.

    Exit 0 after SIGTERM, 130 after SIGINT, 64 on bad flags, 1 if it cannot start.

    Examples:

    \b
      meshctl serve --config-dir examples/bookinfo
      meshctl serve --config-dir mesh/ --xds-address 0.0.0.0:15010 --log-level debug --log-format json
      meshctl serve --config-dir mesh/ --ca-dir cacerts/ --ca-address 0.0.0.0:15012 --workload-cert-ttl 12h
      meshctl serve --kubernetes --context kind-mesh
      meshctl serve --kubernetes --config-dir istio-config/  # Istio config from files, the registry from the cluster
      meshctl serve --config-dir mesh/ --mesh-config istio-configmap.yaml
      meshctl serve --config-dir mesh/ --xds-mtls-address 0.0.0.0:15011
    """
    import asyncio

    from meshctl.cli.logs import configure_logging
    from meshctl.errors import UsageError

    if not config_dir and not kubernetes:
        raise UsageError("give --config-dir DIR, --kubernetes, or both")
    if (kubeconfig or context) and not kubernetes:
        raise UsageError("--kubeconfig and --context need --kubernetes")
    if config_dir and not Path(config_dir).is_dir():
        raise UsageError(f"--config-dir {config_dir!r} does not exist or is not a directory")
    grace = duration_flag(shutdown_grace, "--shutdown-grace")
    if leader_lease and (not kubernetes or leader_lease.count("/") != 1 or "" in leader_lease.split("/")):
        raise UsageError(f"--leader-lease must be NAMESPACE/NAME, with --kubernetes, not {leader_lease!r}")
    after = duration_flag(debounce_after, "--debounce-after")
    ceiling = duration_flag(debounce_max, "--debounce-max")
    ca = CaSettings(ca_address, ca_dir, trust_domain,
                    duration_flag(workload_cert_ttl, "--workload-cert-ttl", minimum=1),
                    duration_flag(max_workload_cert_ttl, "--max-workload-cert-ttl", minimum=1), xds_mtls_address)
    if xds_mtls_address and not ca_address:
        raise UsageError("--xds-mtls-address needs the CA (--ca-address): its certificates are the clients'")
    if max_connections < 1:
        raise UsageError(f"--max-connections must be at least 1, not {max_connections}")
    mesh = None
    if mesh_config is not None:
        from meshctl.model.meshconfig import read_mesh_config

        if translator != DEFAULT_TRANSLATOR:
            raise UsageError("--mesh-config works with the built-in translator only")
        mesh = read_mesh_config(mesh_config)
    client = None
    if kubernetes:  # before logging is set up: a kubeconfig that cannot be read is a plain error
        from meshctl.kube.client import load_client

        client = load_client(kubeconfig, context)
    configure_logging(log_level, log_format)
    from meshctl.sources.select import SourceChoice

    # In a cluster, istiod's revision comes from its pod's environment (install sets it).
    import os

    revision = os.environ.get("REVISION", "")
    revision = "" if revision == "default" else revision
    sources = SourceChoice(config_dir, client, debounce_after=after, debounce_max=ceiling, namespace=namespace,
                           mesh_namespace="" if mesh is not None else istio_namespace, mesh_revision=revision)
    return asyncio.run(_run(sources, xds_address, debug_address, translator, ca, grace, leader_lease, max_connections,
                            mesh, webhooks=(webhook_address, sidecar_image), revision=revision))


async def _run(sources: SourceChoice, xds_address: str, debug_address: str, translator: str,
               ca_settings: CaSettings, grace: float, leader_lease: str, max_connections: int,
               mesh: MeshConfig | None, *, webhooks: tuple[str, str] = ("", ""), revision: str = "") -> int:
    import asyncio
    import signal

    from meshctl.cli.output import err
    from meshctl.errors import ExitCode
    from meshctl.model.node import ISTIO_NODES
    from meshctl.xds.server import XdsServer

    server = XdsServer(xds_address, debug_address or None, ISTIO_NODES, max_connections)
    await server.start()
    debug = f", debug HTTP on {debug_address.rsplit(':', 1)[0]}:{server.debug_port}" if debug_address else ""
    err(f"meshctl serve: xDS (ADS, CSDS) on {xds_address.rsplit(':', 1)[0]}:{server.xds_port}{debug}, "
        f"config from {sources.describe()}")
    ca: CaServer | None = None
    hooks: WebhookServer | None = None
    try:
        if ca_settings.address:
            ca = await _start_ca(ca_settings, server, _cluster_authenticators(sources, ca_settings))
        if webhooks[0]:
            from meshctl.webhooks.serving import start_webhooks_for_serve

            hooks = await start_webhooks_for_serve(*webhooks, ca_settings.directory, ca_settings.trust_domain,
                                                   revision, mesh, mesh_configmap=sources.mesh_configmap)
        translate = _load_translator(translator) if mesh is None else _mesh_translator(mesh)
        source = sources.build()
        if hooks is not None and mesh is None:
            from meshctl.webhooks.serving import MeshFollower

            source = MeshFollower(source, hooks)
    except BaseException:
        if hooks is not None:
            await hooks.stop()
        if ca is not None:
            await ca.stop()
        await server.stop()
        raise
    reporting = _status_reporting(sources, source, bool(leader_lease))
    server.feed(reporting or source, translate)
    loop = asyncio.get_running_loop()
    patcher = _webhook_patcher(sources, hooks, revision, bool(leader_lease)) if hooks is not None else None
    if patcher is not None:  # (a look at the cluster, off the event loop; nothing waits for it)
        loop.run_in_executor(None, _warn_of_injector_configmap, patcher.client, patcher.namespace, revision)
    elector = _campaign(sources, leader_lease, server, reporting, patcher) if leader_lease else None
    stopped = asyncio.Event()
    received: list[int] = []
    def on_signal(signum: int) -> None:
        received.append(signum)
        stopped.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    waiting = asyncio.create_task(stopped.wait())
    feeding = asyncio.create_task(server.wait())
    await asyncio.wait({waiting, feeding}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if patcher is not None:
        await asyncio.to_thread(patcher.stop)
    if hooks is not None:
        await hooks.stop()
    if ca is not None:
        await ca.stop()
    await server.stop(grace)
    if elector is not None:
        await asyncio.to_thread(elector.stop)
    if feeding.done() and not feeding.cancelled() and feeding.exception() is not None:
        raise feeding.exception()  # type: ignore[misc]
    return ExitCode.INTERRUPTED if received and received[0] == signal.SIGINT else ExitCode.OK


def _campaign(sources: SourceChoice, lease: str, server: XdsServer,
              reporting: StatusReporting | None, patcher: WebhookPatcher | None) -> LeaderElector:
    """Campaign for the Lease (serve's once-per-cluster jobs are the leader's: the Gateway API
    status, the webhook configurations' CA bundle); leadership is reported by the
    `meshctl_leader` gauge."""
    import os
    import socket

    from meshctl.kube.lease import LeaderElector

    assert sources.client is not None
    namespace, name = lease.split("/")
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    leader = server.cache.metrics.leader
    leader.set(0)

    def started() -> None:
        leader.set(1)
        if reporting is not None:
            reporting.nudge()
        if patcher is not None:
            patcher.nudge()

    elector = LeaderElector(sources.client, namespace, name, identity,
                            on_started=started, on_stopped=lambda: leader.set(0))
    if reporting is not None:
        reporting.writer.leading = lambda: elector.leading
    if patcher is not None:
        patcher.leading = lambda: elector.leading
    elector.start()
    return elector


def _webhook_patcher(sources: SourceChoice, hooks: WebhookServer, revision: str, elected: bool
                     ) -> WebhookPatcher | None:
    """Serving the webhooks to a cluster, serve keeps their configurations' CA bundle (and the
    validators' failurePolicy) as istiod does (from the leader when replicas elect one)."""
    if sources.client is None:
        return None
    from meshctl.kube.webhookpatch import WebhookPatcher

    patcher = WebhookPatcher(sources.client, hooks.settings.istio_namespace, revision, hooks.ca_bundle,
                             leading=(lambda: False) if elected else (lambda: True))
    patcher.start()
    return patcher


def _warn_of_injector_configmap(client: KubeClient, namespace: str, revision: str) -> None:
    """serve injects with its own flags and the mesh config, not with istiod's injector
    ConfigMap (its Go templates and Helm values): one in the cluster is named in the log, so
    that nobody believes its settings apply."""
    import logging

    from meshctl.kube.istiod import injector_configmap

    try:
        found = injector_configmap(client, namespace, revision)
    except Exception as exc:  # noqa: BLE001 - only a warning is at stake
        logging.getLogger("meshctl.webhooks").debug("could not look for istiod's injector ConfigMap",
                                                     extra={"error": str(exc)})
        return
    if found is not None:
        logging.getLogger("meshctl.webhooks").warning(
            "ConfigMap %s (istiod's injection templates and values) is not read: pods are injected with meshctl's "
            "sidecar, serve's --sidecar-image and the mesh config", found)


def _status_reporting(sources: SourceChoice, source: ConfigSource, elected: bool) -> StatusReporting | None:
    """Reading the Gateway API from a cluster, serve makes Istio's missing GatewayClasses and
    writes the status as Istio's controller does (from the leader when replicas elect one;
    until elected, nothing); reading it from files, never."""
    if sources.client is None or sources.config_dir:
        return None
    from meshctl.hostnames import DEFAULT_DOMAIN
    from meshctl.kube.gatewayclasses import DefaultClasses
    from meshctl.kube.gatewaystatus import GatewayStatusWriter, StatusReporting
    from meshctl.sources.kubernetes import ORIGIN

    writer = GatewayStatusWriter(sources.client, ORIGIN, DEFAULT_DOMAIN, leading=(lambda: False) if elected else
                                 (lambda: True), classes=DefaultClasses(sources.client))
    return StatusReporting(source, writer)


def _cluster_authenticators(sources: SourceChoice, settings: CaSettings) -> list[Authenticator]:
    """Reading a cluster, the CA also takes its ServiceAccount tokens, checked by TokenReview."""
    if sources.client is None:
        return []
    from meshctl.security.tokenreview import KubernetesAuthenticator

    return [KubernetesAuthenticator(sources.client, settings.trust_domain)]


async def _start_ca(settings: CaSettings, server: XdsServer,
                    authenticators: Sequence[Authenticator] = ()) -> CaServer:
    """istiod's CA on its TLS port: keys from the CA directory (made on first use), identities
    from meshctl's tokens and then from `authenticators` (Kubernetes' TokenReview when serve
    reads a cluster), xDS offered there too; its metrics on serve's `/metrics`."""
    import datetime

    from meshctl.cli.output import err
    from meshctl.security.authenticate import AuthenticatorChain
    from meshctl.security.ca import CertificateAuthority
    from meshctl.security.cadir import ROOT_CERT, open_ca_directory
    from meshctl.security.service import CaServer, CertificateService
    from meshctl.security.tokens import TokenAuthenticator

    directory = open_ca_directory(settings.directory, settings.trust_domain)
    authority = CertificateAuthority(directory.bundle, default_ttl=datetime.timedelta(seconds=settings.default_ttl),
                                     max_ttl=datetime.timedelta(seconds=settings.max_ttl))
    tokens = TokenAuthenticator(directory.token_key.public_key(), settings.trust_domain)
    service = CertificateService(authority, AuthenticatorChain([tokens, *authenticators]))
    server.cache.metrics.include(service.metrics.all())
    key_pem, chain_pem = authority.server_certificate()
    ca = CaServer(settings.address, service, key_pem, chain_pem, options=server.grpc_options, extra=[server.register])
    port = await ca.start()
    err(f"meshctl serve: CA (IstioCertificateService, xDS over TLS) on {settings.address.rsplit(':', 1)[0]}:{port}, "
        f"roots in {directory.path / ROOT_CERT}")
    if settings.xds_mtls_address:
        try:
            mtls = await server.listen_mutual_tls(settings.xds_mtls_address, key_pem, chain_pem, authority.roots_pem)
        except BaseException:
            await ca.stop()
            raise
        err(f"meshctl serve: xDS over mutual TLS (proxies prove their identity) on "
            f"{settings.xds_mtls_address.rsplit(':', 1)[0]}:{mtls}")
    return ca


def _mesh_translator(mesh: MeshConfig) -> Translate:
    """The built-in translator, translating every generation with this mesh config."""
    from meshctl.generate.translator import Translator

    return Translator(mesh)


def _load_translator(spec: str) -> Translate:
    """Import the translator only now: it is the heaviest part of the program."""
    import importlib

    from meshctl.errors import MeshctlError, UsageError

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--translator must be MODULE:FUNCTION, not {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise MeshctlError(f"cannot load the translator {spec}: {exc}") from None
