"""The webhooks as part of `meshctl serve`: one HTTPS server for `/inject` and `/validate`,
its certificate issued by serve's CA (the CA directory's root is the webhook configurations'
caBundle) for the control plane's Service names.

The injector reads the mesh config serve translates with (`defaultConfig`, the trust domain,
the ports): a file's (`--mesh-config`), or the cluster's `istio` ConfigMap as it changes
(`MeshFollower`), so an edit there reaches the next pod injected, as it does in istiod."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from meshctl.errors import BadInputError, MeshctlError
from meshctl.inject.settings import InjectSettings
from meshctl.security.ca import CertificateAuthority
from meshctl.webhooks.certificates import serving_credentials
from meshctl.webhooks.server import WebhookServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from meshctl.model.meshconfig import MeshConfig
    from meshctl.sources.base import ConfigSource, SourceUpdate

__all__ = ["MeshFollower", "start_webhooks", "start_webhooks_for_serve"]

log = logging.getLogger("meshctl.webhooks")


async def start_webhooks(address: str, settings: InjectSettings, ca: CertificateAuthority, *,
                         awaiting_mesh: str = "") -> WebhookServer:
    """Listen on `address` (HOST:PORT); raises MeshctlError when it cannot. `awaiting_mesh`:
    see WebhookServer."""
    from meshctl.addresses import split_address

    host, port = split_address(address)
    server = WebhookServer(settings, serving_credentials(ca, settings.control_plane), awaiting_mesh=awaiting_mesh,
                           ca_bundle=ca.roots_pem)
    try:
        await server.start(host, port)
    except OSError as exc:
        raise MeshctlError(f"cannot listen for webhooks on {address}: {exc.strerror or exc}") from None
    log.info("webhooks listening", extra={"address": f"{host}:{server.port}", "paths": "/inject /validate"})
    return server


async def start_webhooks_for_serve(address: str, image: str, ca_dir: str, trust_domain: str, revision: str,
                                   mesh: MeshConfig | None, *, mesh_configmap: str = "") -> WebhookServer:
    """serve's webhooks: sidecars pointed at the control plane of serve's own namespace (the
    pod's `POD_NAMESPACE`, as istiod reads it, in a cluster) and `revision`, with serve's mesh
    config (`--mesh-config`; or the one in `mesh_configmap`, NAMESPACE/NAME, which pods wait
    for: see MeshFollower; istiod's defaults otherwise), the certificate from the CA in `ca_dir`."""
    import os

    from meshctl.inject.settings import DEFAULT_IMAGE
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.security.cadir import open_ca_directory

    directory = open_ca_directory(ca_dir, trust_domain)
    settings = InjectSettings(image=image or DEFAULT_IMAGE,
                              istio_namespace=os.environ.get("POD_NAMESPACE") or "istio-system",
                              revision=revision, mesh=mesh or MeshConfig())
    return await start_webhooks(address, settings, CertificateAuthority(directory.bundle),
                                awaiting_mesh=f"ConfigMap {mesh_configmap}" if mesh is None and mesh_configmap else "")


class MeshFollower:
    """`source`, whose every update also gives the webhooks its mesh config, as the translator
    reads it from the same update (the cluster's `istio` ConfigMap; istiod's defaults without
    one), when it changed. One whose `defaultConfig` no proxy could run with is refused for
    injection and the last good one kept, saying so (the translator has refused it already
    if it was bad for xDS)."""

    def __init__(self, source: ConfigSource, server: WebhookServer) -> None:
        self.source = source
        self.server = server
        self._current: MeshConfig | None = None

    async def updates(self) -> AsyncIterator[SourceUpdate]:
        import contextlib

        async with contextlib.aclosing(self.source.updates()) as updates:  # type: ignore[type-var]
            async for update in updates:
                self._follow(update)
                yield update

    def _follow(self, update: SourceUpdate) -> None:
        from meshctl.inject.settings import check_mesh
        from meshctl.model.meshconfig import MeshConfig, mesh_in

        mesh = mesh_in(update.resources) or MeshConfig()
        if mesh == self._current:
            return
        try:
            check_mesh(mesh, "the mesh config")
        except BadInputError as exc:
            log.warning("mesh config refused for injection; pods are injected with the last good one",
                        extra={"problems": "; ".join(exc.problems)})
            return
        if self._current is not None:
            log.info("mesh config changed: pods are injected with it from now on")
        self._current = mesh
        self.server.use_mesh(mesh)
