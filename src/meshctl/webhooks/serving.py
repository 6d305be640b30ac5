"""The webhooks as part of `meshctl serve`: one HTTPS server for `/inject` and `/validate`,
its certificate issued by serve's CA (the CA directory's root is the webhook configurations'
caBundle) for the control plane's Service names."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from meshctl.errors import MeshctlError
from meshctl.inject.settings import InjectSettings
from meshctl.security.ca import CertificateAuthority
from meshctl.webhooks.certificates import serving_credentials
from meshctl.webhooks.server import WebhookServer

if TYPE_CHECKING:
    from meshctl.model.meshconfig import MeshConfig

__all__ = ["start_webhooks", "start_webhooks_for_serve"]

log = logging.getLogger("meshctl.webhooks")


async def start_webhooks(address: str, settings: InjectSettings, ca: CertificateAuthority) -> WebhookServer:
    """Listen on `address` (HOST:PORT); raises MeshctlError when it cannot."""
    from meshctl.addresses import split_address

    host, port = split_address(address)
    server = WebhookServer(settings, serving_credentials(ca, settings.control_plane))
    try:
        await server.start(host, port)
    except OSError as exc:
        raise MeshctlError(f"cannot listen for webhooks on {address}: {exc.strerror or exc}") from None
    log.info("webhooks listening", extra={"address": f"{host}:{server.port}", "paths": "/inject /validate"})
    return server


async def start_webhooks_for_serve(address: str, image: str, ca_dir: str, trust_domain: str, revision: str,
                                   mesh: MeshConfig | None) -> WebhookServer:
    """serve's webhooks: sidecars pointed at the control plane of serve's own namespace (the
    pod's `POD_NAMESPACE`, as istiod reads it, in a cluster) and `revision`, with serve's mesh
    config (`--mesh-config`; istiod's defaults otherwise), the certificate from the CA in `ca_dir`."""
    import os

    from meshctl.inject.settings import DEFAULT_IMAGE
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.security.cadir import open_ca_directory

    directory = open_ca_directory(ca_dir, trust_domain)
    settings = InjectSettings(image=image or DEFAULT_IMAGE,
                              istio_namespace=os.environ.get("POD_NAMESPACE") or "istio-system",
                              revision=revision, mesh=mesh or MeshConfig())
    return await start_webhooks(address, settings, CertificateAuthority(directory.bundle))
