"""`meshctl bootstrap`: the Envoy bootstrap that runs a workload's sidecar against `meshctl serve`.

The identity flags declared here are shared with `meshctl agent` and `meshctl token`, and so is
how a workload's identity is found from them (meshctl.cli.workload).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from meshctl.cli.options import InputNamespaceOption, MeshConfigOption
from meshctl.formats import DocumentFormat
from meshctl.model.secrets import AGENT_SOCKET
from meshctl.targets import USAGE


class Interception(StrEnum):
    REDIRECT = "REDIRECT"
    TPROXY = "TPROXY"
    NONE = "NONE"


def register(app: typer.Typer) -> None:
    app.command("bootstrap")(bootstrap)


ConfigDirOption = Annotated[str, typer.Option("--config-dir", help="Read the workload (IP, labels, service account) from here.")]
ServiceAccountOption = Annotated[str | None, typer.Option(
    "--service-account", help="The workload's service account: its identity when it is not in --config-dir.",
    show_default=False)]
IpOption = Annotated[str | None, typer.Option("--ip", help="The pod's IP (with --service-account; default 127.0.0.1).",
                                              show_default=False)]
LabelsOption = Annotated[str | None, typer.Option("--labels", help="The pod's labels, KEY=VALUE[,KEY=VALUE...].",
                                                  show_default=False)]
InterceptionOption = Annotated[Interception, typer.Option("--interception-mode", help="NONE: real bound listeners, no iptables.")]


class ControlPlaneAuth(StrEnum):
    NONE = "NONE"
    MUTUAL_TLS = "MUTUAL_TLS"


ControlPlaneAuthOption = Annotated[ControlPlaneAuth, typer.Option(
    "--control-plane-auth-policy",
    help="MUTUAL_TLS: Envoy connects to xDS with its workload certificate (serve --xds-mtls-address), proving "
         "its identity; a gateway needs it to be sent its credentialName Secrets.")]


def bootstrap(
    target: Annotated[str, typer.Argument(help=f"{USAGE}.")],
    xds_address: Annotated[
        list[str], typer.Option("--xds-address", help="HOST:PORT of meshctl serve; repeat for several replicas.")
    ] = ["127.0.0.1:15010"],  # noqa: B006 - typer's way to spell a list default
    admin_port: Annotated[int, typer.Option("--admin-port", help="Envoy admin port (on 127.0.0.1).", min=0, max=65535)] = 15000,
    interception: InterceptionOption = Interception.REDIRECT,
    config_dir: ConfigDirOption = "",
    namespace: InputNamespaceOption = "default",
    service_account: ServiceAccountOption = None,
    ip: IpOption = None,
    labels: LabelsOption = None,
    delta: Annotated[bool, typer.Option("--delta", help="Use incremental xDS (DELTA_GRPC) instead of state of the world.")] = False,
    sds_socket: Annotated[str, typer.Option("--sds-socket", help="The agent's SDS socket Envoy takes its certificates from.")] = AGENT_SOCKET,
    control_plane_auth: ControlPlaneAuthOption = ControlPlaneAuth.NONE,
    output: Annotated[DocumentFormat, typer.Option("--output", "-o")] = DocumentFormat.yaml,
    mesh_config: MeshConfigOption = None,
) -> int:
    """Print an Envoy bootstrap making `envoy -c` that workload's sidecar, fed by meshctl serve.

    The identity (namespace, service account, IP, labels) is the workload's in --config-dir, or
    exactly what --service-account, --ip and --labels say (they also override the config's); a
    target found nowhere without them is refused rather than given a guessed identity. Its
    certificates come from an agent's SDS socket: `meshctl agent` writes this same bootstrap and
    runs Envoy next to its SDS server; print it to run Envoy yourself next to an agent.

    Examples:

    \b
      meshctl bootstrap deploy/productpage-v1 --config-dir examples/bookinfo > productpage.yaml
      meshctl bootstrap web-0.shop --service-account web --ip 10.1.2.3 --labels app=web -o json
    """
    import json

    from google.protobuf import json_format

    from meshctl.cli.output import out
    from meshctl.cli.workload import workload_proxy
    from meshctl.errors import UsageError
    from meshctl.formats import to_yaml
    from meshctl.generate.bootstrap import ads_bootstrap

    addresses = []
    for address in xds_address:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            raise UsageError(f"--xds-address must be HOST:PORT, not {address!r}")
        addresses.append((host.strip("[]"), int(port_text)))
    from meshctl.model.meshconfig import read_mesh_config

    mesh = read_mesh_config(mesh_config) if mesh_config else None
    proxy, account = workload_proxy(target, config_dir, namespace, interception.value,
                                    service_account=service_account, ip=ip, labels=labels, mesh=mesh)
    (host, port), *more = addresses
    config = ads_bootstrap(proxy, host, port, admin_port=admin_port, delta=delta, service_account=account,
                           sds_socket=sds_socket, more_replicas=more, mesh=mesh,
                           control_plane_auth=control_plane_auth.value)
    text = json_format.MessageToJson(config, preserving_proto_field_name=True, indent=2)
    out(text if output is DocumentFormat.json else to_yaml(json.loads(text)))
    return 0
