"""The webhooks as part of `meshctl serve`: one HTTPS server for `/inject` and `/validate`,
its certificate issued by serve's CA (the CA directory's root is the webhook configurations'
caBundle) for the control plane's Service names."""

from __future__ import annotations

import logging

from meshctl.errors import MeshctlError
from meshctl.inject.settings import InjectSettings
from meshctl.security.ca import CertificateAuthority
from meshctl.webhooks.certificates import serving_credentials
from meshctl.webhooks.server import WebhookServer

log = logging.getLogger("meshctl.webhooks")


async def start_webhooks(address: str, settings: InjectSettings, ca: CertificateAuthority) -> WebhookServer:
    """Listen on `address` (HOST:PORT); raises MeshctlError when it cannot."""
    from meshctl.xds.server import split_address

    host, port = split_address(address)
    server = WebhookServer(settings, serving_credentials(ca, settings.control_plane))
    try:
        await server.start(host, port)
    except OSError as exc:
        raise MeshctlError(f"cannot listen for webhooks on {address}: {exc.strerror or exc}") from None
    log.info("webhooks listening", extra={"address": f"{host}:{server.port}", "paths": "/inject /validate"})
    return server


async def start_webhooks_for_serve(address: str, image: str, ca_dir: str, trust_domain: str) -> WebhookServer:
    """serve's webhooks: sidecars pointed at the control plane of serve's own namespace and
    revision (the pod's `POD_NAMESPACE` and `REVISION`, as istiod reads them, in a cluster),
    the certificate from the CA in `ca_dir`."""
    import os

    from meshctl.inject.settings import DEFAULT_IMAGE
    from meshctl.security.cadir import open_ca_directory

    directory = open_ca_directory(ca_dir, trust_domain)
    revision = os.environ.get("REVISION", "")
    settings = InjectSettings(image=image or DEFAULT_IMAGE,
                              istio_namespace=os.environ.get("POD_NAMESPACE") or "istio-system",
                              revision="" if revision == "default" else revision)
    return await start_webhooks(address, settings, CertificateAuthority(directory.bundle))
