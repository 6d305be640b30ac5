"""What the agent is told, and what it does before its event loop runs: the SDS socket claimed,
Envoy's bootstrap written, Envoy started (or a running one taken over).

An agent's start is timed from its exec to Envoy holding its certificate, and Envoy's own boot
is most of it: so Envoy is started first, before asyncio, grpc, cryptography and the xDS
machinery are imported (meshctl.agent.runner does the rest while Envoy boots). Even the
bootstrap's protobuf messages are built in Envoy's own process, forked from the agent's before
it execs Envoy (EnvoyProcess.start), on the other core: this module imports only the standard
library and the proxy model, and, just before the fork, what both processes need next.

From here until the agent's signal handlers are in place (meshctl.agent.runner), SIGTERM,
SIGINT and the signals passed on to Envoy are held (meshctl.agent.signals): one that arrives
meanwhile is acted on then, so Envoy is never left running without its agent.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.agent import signals, socketpath
from meshctl.agent.envoy import BOOTSTRAP_FILE, EnvoyProcess, EnvoySettings
from meshctl.model.secrets import AUTH_NONE
from meshctl.security.spiffe import spiffe_id

if TYPE_CHECKING:
    from meshctl.agent.tokens import TokenSource
    from meshctl.model.proxy import Proxy

__all__ = ["AgentOptions", "SHARED_MODULES", "launch", "write_bootstrap"]

log = logging.getLogger("meshctl.agent")

# What both sides of the fork load next, loaded once before it: the protobuf runtime, the Envoy
# messages the bootstrap shares with the SDS server (core, TLS secrets) and meshctl.resources,
# some 110 modules. The child then loads only the rest of the bootstrap's messages, the agent
# grpc, cryptography and the xDS machinery: neither waits longer, and ~30 ms of CPU is not
# spent twice (it shows on a busy machine).
SHARED_MODULES = ("envoy.config.core.v3.config_source_pb2", "envoy.extensions.transport_sockets.tls.v3.secret_pb2",
                  "meshctl.resources")


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """Everything the agent is told (by `meshctl agent`'s flags)."""

    proxy: Proxy
    service_account: str
    trust_domain: str
    xds_host: str
    xds_port: int
    ca_address: str
    ca_roots: bytes
    token: TokenSource
    envoy: EnvoySettings
    workdir: Path
    sds_socket: Path
    admin_port: int = 15000
    status_host: str = "0.0.0.0"
    status_port: int = 15021
    delta: bool = False
    secret_ttl: int = 24 * 3600
    drain_duration: float = 5.0
    more_xds: tuple[tuple[str, int], ...] = ()
    """Further serve replicas: Envoy's stream reconnects to one of them when its own goes away."""
    control_plane_auth: str = "NONE"

    @property
    def identity(self) -> str:
        return spiffe_id(self.trust_domain, self.proxy.namespace, self.service_account)


def launch(options: AgentOptions) -> EnvoyProcess | None:
    """The start before the event loop: the work directory made, the SDS socket claimed (an
    agent that could not serve SDS starts nothing), the Envoy a previous agent left taken over,
    or a new one started, unless it needs its certificate to reach the control plane
    (MUTUAL_TLS: then it is started once SDS listens, and None is returned). The signals the
    agent handles are held from now on, until its handlers take them (`signals.release`)."""
    signals.hold()
    options.workdir.mkdir(parents=True, exist_ok=True)
    socketpath.claim(socketpath.checked(options.sds_socket))
    envoy = EnvoyProcess.adopt(options.workdir)
    if envoy is None and options.control_plane_auth == AUTH_NONE:
        for name in SHARED_MODULES:
            importlib.import_module(name)
        envoy = EnvoyProcess.start(options.envoy, options.workdir, lambda: write_bootstrap(options))
    return envoy


def write_bootstrap(options: AgentOptions) -> None:
    """Envoy's bootstrap in the work directory: what `meshctl bootstrap` prints for this
    workload, its secrets from the agent's SDS socket."""
    from google.protobuf import json_format

    from meshctl.generate.bootstrap import ads_bootstrap

    bootstrap = ads_bootstrap(options.proxy, options.xds_host, options.xds_port, admin_port=options.admin_port,
                              delta=options.delta, service_account=options.service_account,
                              sds_socket=str(socketpath.checked(options.sds_socket)), more_replicas=options.more_xds,
                              control_plane_auth=options.control_plane_auth)
    path = options.workdir / BOOTSTRAP_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json_format.MessageToJson(bootstrap, preserving_proto_field_name=True, indent=2))
    temporary.replace(path)
