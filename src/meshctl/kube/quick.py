"""Names from the cluster in a few milliseconds, for shell completion.

A TAB must be answered within 100 ms, and importing the official client alone takes five times
that. Completion only needs the names of running pods, Deployments and namespaces, so this
module lists them with one plain HTTPS GET, reading the kubeconfig the way `client` does (the
same file, context and namespace rules) but only the credentials that need no code to run:
bearer tokens (inline or in a file), basic auth, client certificates in files, the cluster's CA
(inline or in a file) or `insecure-skip-tls-verify`. For anything else (exec plugins, auth
providers, certificates inline in the kubeconfig, which would have to be written to disk), it
falls back to the official client: slower, never wrong. It never raises; no names is an answer.
"""

from __future__ import annotations

import base64
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from meshctl.errors import MeshctlError
from meshctl.kube.client import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

__all__ = ["contexts", "names"]

TIMEOUT = 2.0
_PATHS = {
    "pods": "/api/v1/namespaces/{namespace}/pods?fieldSelector=status.phase%3DRunning",
    "deployments": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "namespaces": "/api/v1/namespaces",
}


def contexts(kubeconfig: str | None) -> list[str]:
    """The context names of the kubeconfig."""
    config = _config(kubeconfig)
    return [str(item.get("name")) for item in config.get("contexts", []) if item.get("name")] if config else []


def names(kubeconfig: str | None, context: str | None, namespace: str | None, resource: str) -> list[str]:
    """The names of `resource` (pods that run, Deployments, namespaces) in `namespace` (default:
    the context's), or none when the cluster cannot be asked."""
    config = _config(kubeconfig)
    if config is None:
        return []
    chosen = _named(config, "contexts", context or str(config.get("current-context") or ""))
    cluster = _named(config, "clusters", str(chosen.get("cluster", "")))
    user = _named(config, "users", str(chosen.get("user", "")))
    namespace = namespace or str(chosen.get("namespace") or DEFAULT_NAMESPACE)
    try:
        request = _request(cluster, user, _PATHS[resource].format(namespace=quote(namespace, safe="")))
        if request is None:
            return _official(kubeconfig, context, namespace, resource)
        listing = _get(*request)
    except (OSError, ValueError):
        return []
    if not isinstance(listing, dict):
        return []
    return [str(item["metadata"]["name"]) for item in listing.get("items", []) if item.get("metadata", {}).get("name")]


def _get(url: str, headers: dict[str, str], tls: ssl.SSLContext | None) -> Any:
    """One GET's JSON body. http.client rather than urllib.request, which imports hashlib (and
    with it OpenSSL) for authentication schemes the API server does not use."""
    import http.client

    parsed = urlsplit(url)
    connection = (http.client.HTTPSConnection(parsed.netloc, timeout=TIMEOUT, context=tls) if parsed.scheme == "https"
                  else http.client.HTTPConnection(parsed.netloc, timeout=TIMEOUT))
    try:
        connection.request("GET", f"{parsed.path}?{parsed.query}" if parsed.query else parsed.path, headers=headers)
        response = connection.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    finally:
        connection.close()


def _config(kubeconfig: str | None) -> dict[str, Any] | None:
    """The kubeconfig (the files KUBECONFIG lists merged as kubectl merges them: the first file
    to name an item wins), or None when there is none."""
    import yaml

    from meshctl.kube.client import kubeconfig_path

    try:
        path = kubeconfig_path(kubeconfig)
    except MeshctlError:
        return None
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for file in path.split(os.pathsep):
        try:
            with open(os.path.expanduser(file), encoding="utf-8") as handle:
                document = yaml.load(handle, Loader=loader)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(document, dict):
            continue
        merged.setdefault("current-context", document.get("current-context"))
        for key in ("clusters", "users", "contexts"):
            known = {item.get("name") for item in merged[key]}
            merged[key] += [item for item in document.get(key) or [] if isinstance(item, dict)
                            and item.get("name") not in known]
    return merged


def _named(config: Mapping[str, Any], key: str, name: str) -> dict[str, Any]:
    """The body of the named cluster, user or context (`{"name": n, "cluster": {...}}`)."""
    field = key[:-1]
    for item in config.get(key, []):
        if item.get("name") == name:
            body = item.get(field)
            return body if isinstance(body, dict) else {}
    return {}


def _request(cluster: Mapping[str, Any], user: Mapping[str, Any],
             path: str) -> tuple[str, dict[str, str], ssl.SSLContext | None] | None:
    """URL, headers and TLS context of a GET, or None when the credentials need the official
    client."""
    server = str(cluster.get("server", "")).rstrip("/")
    if not server or any(key in user for key in ("exec", "auth-provider", "client-key-data", "client-certificate-data")):
        return None
    headers = {"Accept": "application/json"}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(os.path.expanduser(str(user["tokenFile"])), encoding="utf-8") as handle:
            token = handle.read().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username") is not None:
        pair = f"{user.get('username')}:{user.get('password', '')}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    tls = None
    if server.startswith("https://"):
        import ssl

        tls = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            tls.load_verify_locations(cadata=base64.b64decode(str(cluster["certificate-authority-data"])).decode())
        elif cluster.get("certificate-authority"):
            tls.load_verify_locations(cafile=os.path.expanduser(str(cluster["certificate-authority"])))
        if user.get("client-certificate") and user.get("client-key"):
            tls.load_cert_chain(os.path.expanduser(str(user["client-certificate"])),
                                os.path.expanduser(str(user["client-key"])))
    return f"{server}{path}", headers, tls


def _official(kubeconfig: str | None, context: str | None, namespace: str, resource: str) -> list[str]:
    """The same list through the official client, for credentials only it can use."""
    from meshctl.kube.client import load_client

    items: list[Any]
    try:
        client = load_client(kubeconfig, context)
        with client.api_errors(f"cannot list {resource}"):
            if resource == "pods":
                items = client.core.list_namespaced_pod(namespace, field_selector="status.phase=Running",
                                                        _request_timeout=TIMEOUT).items
            elif resource == "deployments":
                items = client.apps.list_namespaced_deployment(namespace, _request_timeout=TIMEOUT).items
            else:
                items = client.core.list_namespace(_request_timeout=TIMEOUT).items
    except MeshctlError:
        return []
    return [item.metadata.name for item in items if item.metadata and item.metadata.name]
