"""`meshctl bootstrap`: the Envoy bootstrap that runs a workload's sidecar against `meshctl serve`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from meshctl.cli.validate import NamespaceOption


class Format(str, Enum):
    yaml = "yaml"
    json = "json"


class Interception(str, Enum):
    REDIRECT = "REDIRECT"
    TPROXY = "TPROXY"
    NONE = "NONE"


def register(app: typer.Typer) -> None:
    app.command("bootstrap")(bootstrap)


def bootstrap(
    target: Annotated[str, typer.Argument(help="POD[.NS] or deploy/NAME[.NS].")],
    xds_address: Annotated[str, typer.Option("--xds-address", help="HOST:PORT of meshctl serve.")] = "127.0.0.1:15010",
    admin_port: Annotated[int, typer.Option("--admin-port", help="Envoy admin port (on 127.0.0.1).", min=0, max=65535)] = 15000,
    interception: Annotated[Interception, typer.Option("--interception-mode", help="NONE: real bound listeners, no iptables.")] = Interception.REDIRECT,
    config_dir: Annotated[str, typer.Option("--config-dir", help="Read the workload (IP, labels, service account) from here.")] = "",
    namespace: NamespaceOption = "default",
    delta: Annotated[bool, typer.Option("--delta", help="Use incremental xDS (DELTA_GRPC) instead of state of the world.")] = False,
    output: Annotated[Format, typer.Option("--output", "-o")] = Format.yaml,
) -> int:
    """Print an Envoy bootstrap making `envoy -c` that workload's sidecar, fed by meshctl serve."""
    import json

    import yaml
    from google.protobuf import json_format

    from meshctl.cli.output import out
    from meshctl.errors import UsageError
    from meshctl.generate.bootstrap import ads_bootstrap
    from meshctl.model import proxy as proxies

    host, _, port_text = xds_address.rpartition(":")
    if not host or not port_text.isdigit():
        raise UsageError(f"--xds-address must be HOST:PORT, not {xds_address!r}")
    if config_dir:
        proxy, account = _from_config(config_dir, target, namespace, interception.value)
    else:
        name, _, ns = target.removeprefix("pod/").rpartition(".") if "." in target else (target, "", namespace)
        if "/" in name:
            raise UsageError("deploy/NAME targets need --config-dir to find the Deployment")
        proxy = proxies.Proxy(id=f"{name}.{ns or namespace}", namespace=ns or namespace, ip="127.0.0.1",
                              dns_domain=f"{ns or namespace}.svc.cluster.local", interception=interception.value)
        account = "default"
    config = ads_bootstrap(proxy, host, int(port_text), admin_port=admin_port, delta=delta, service_account=account)
    text = json_format.MessageToJson(config, preserving_proto_field_name=True, indent=2)
    out(text if output is Format.json else yaml.safe_dump(json.loads(text), sort_keys=False))
    return 0


def _from_config(config_dir: str, target: str, namespace: str, interception: str) -> tuple[object, str]:
    from meshctl.config.loader import load
    from meshctl.errors import BadInputError, UsageError
    from meshctl.model.snapshot import UnknownTargetError, build_snapshot

    result = load([config_dir], namespace)
    if result.problems:
        raise BadInputError([str(p) for p in result.problems])
    snapshot = build_snapshot(result.resources)
    try:
        proxy = snapshot.proxy(target, namespace, interception=interception)
    except UnknownTargetError as exc:
        raise UsageError(str(exc)) from None
    account = proxy.workload.service_account if proxy.workload else "default"
    return proxy, account
