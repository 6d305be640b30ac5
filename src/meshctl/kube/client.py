"""One Kubernetes API server, reached as kubectl would: kubeconfig, context, credentials.

`load_client` reads the kubeconfig (`-c/--kubeconfig`, else `KUBECONFIG`, else
`~/.kube/config`) and picks a context; in a pod with none of those it uses the pod's own
ServiceAccount, as kubectl does (in-cluster config). The resulting `KubeClient` carries the
connection, the default namespace and the timeout every request and socket read is bounded by.
`lazy_client` defers all of that to the first call, for commands that often need no cluster.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshctlError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, AppsV1Api, Configuration, CoreV1Api

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TIMEOUT", "KubeClient", "in_cluster_client", "kubeconfig_path", "lazy_client",
           "load_client", "status_message"]

DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = 15.0
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"


def load_client(kubeconfig: str | None, context: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> KubeClient:
    """Connect as kubectl would: `-c/--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`.

    `context` picks a kubeconfig context (default: the current one). The context's namespace
    becomes `KubeClient.namespace`, the default for every call that is not given `-n`.
    `timeout` bounds every API request and every socket read.
    """
    import yaml
    from kubernetes import client, config

    if not kubeconfig and not os.environ.get("KUBECONFIG") and not Path("~/.kube/config").expanduser().exists() \
            and os.environ.get("KUBERNETES_SERVICE_HOST"):
        if context is not None:
            raise MeshctlError(f'context "{context}" given, but there is no kubeconfig: running in a pod, '
                               "meshctl uses the pod's service account")
        return in_cluster_client(timeout=timeout)
    path = kubeconfig_path(kubeconfig)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
        chosen = current
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                names = ", ".join(sorted(str(c.get("name")) for c in contexts))
                raise MeshctlError(f'context "{context}" not found in kubeconfig {path} ({names})')
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=path, context=chosen["name"], client_configuration=configuration, persist_config=False
        )
    except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise MeshctlError(f"cannot load kubeconfig {path}: {exc}; pass -c/--kubeconfig or set KUBECONFIG") from None
    namespace = (chosen.get("context") or {}).get("namespace") or DEFAULT_NAMESPACE
    return KubeClient(configuration, chosen["name"], namespace, timeout)


def kubeconfig_path(kubeconfig: str | None) -> str:
    """The kubeconfig to read, as kubectl picks it; MeshctlError saying so when it is missing
    (the client library would only say "Invalid kube-config file. No configuration found.")."""
    if kubeconfig:
        if not Path(kubeconfig).expanduser().exists():
            raise MeshctlError(f"kubeconfig {kubeconfig} does not exist (given with -c/--kubeconfig)")
        return kubeconfig
    listed = os.environ.get("KUBECONFIG")
    if listed:
        if not any(Path(part).expanduser().exists() for part in listed.split(os.pathsep) if part):
            raise MeshctlError(f"kubeconfig {listed} does not exist (none of the files KUBECONFIG names does)")
        return listed
    default = Path("~/.kube/config").expanduser()
    if not default.exists():
        raise MeshctlError(f"kubeconfig {default} does not exist (the default; pass -c/--kubeconfig or set KUBECONFIG)")
    return str(default)


def in_cluster_client(directory: str = SERVICE_ACCOUNT_DIR, *, timeout: float = DEFAULT_TIMEOUT) -> KubeClient:
    """The API server of the cluster this pod runs in, as its ServiceAccount (the token,
    CA and namespace Kubernetes mounts in `directory`; the token is re-read as it rotates)."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = client.Configuration()
    try:
        InClusterConfigLoader(os.path.join(directory, "token"), os.path.join(directory, "ca.crt")).load_and_set(
            configuration
        )
        with open(os.path.join(directory, "namespace")) as file:
            namespace = file.read().strip() or DEFAULT_NAMESPACE
    except (config.ConfigException, OSError) as exc:
        raise MeshctlError(f"cannot use the in-cluster config ({directory}): {exc}") from None
    return KubeClient(configuration, IN_CLUSTER, namespace, timeout)


def lazy_client(kubeconfig: str | None, context: str | None) -> Callable[[], KubeClient]:
    """`load_client` on first call only, then the same client: many invocations never need one
    (`--xds-address ... --plaintext`, a plain pod name with `--file`), and loading costs."""
    return functools.cache(functools.partial(load_client, kubeconfig, context))


class KubeClient:
    """A kubeconfig context's API server: the connection, its default namespace and timeout.

    The typed APIs it hands out share one REST connection pool. Streams (exec, port-forward)
    must not use it: `kubernetes.stream.stream` swaps `call_api` on the ApiClient it is given,
    so a REST call on a shared client during a stream would go over the websocket and fail;
    `meshctl.kube.streams` gives each stream a short-lived ApiClient of its own.
    """

    def __init__(self, configuration: Configuration, context: str, namespace: str, timeout: float) -> None:
        self.configuration = configuration
        self.context = context
        self.namespace = namespace
        self.timeout = timeout
        self._api: ApiClient = _logged_api_client()(configuration)

    @property
    def host(self) -> str:
        """The API server URL, for messages."""
        return str(self.configuration.host)

    @property
    def api(self) -> ApiClient:
        """The shared REST client itself, for requests no typed API covers (lists of any kind)."""
        return self._api

    def new_api_client(self) -> ApiClient:
        """A REST client with connections of its own, for a caller that holds one for long
        (a watch) and must not starve the shared pool."""
        from kubernetes.client import ApiClient

        return ApiClient(self.configuration)

    @property
    def core(self) -> CoreV1Api:
        """CoreV1Api on the shared REST client (never hand it to a stream)."""
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self._api)

    @property
    def apps(self) -> AppsV1Api:
        """AppsV1Api on the shared REST client."""
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self._api)

    @contextlib.contextmanager
    def api_errors(self, action: str, not_found: str | None = None) -> Iterator[None]:
        """Turn client exceptions into MeshctlErrors that say what failed and why.

        `action` says what was being done ("cannot read pod ..."); `not_found`, if given,
        replaces the whole message on HTTP 404, as kubectl's `pods "x" not found` does.
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            yield
        except ApiException as exc:
            if exc.status == 404 and not_found:
                raise MeshctlError(not_found) from None
            raise MeshctlError(f"{action}: {status_message(exc.body) or exc.reason} (HTTP {exc.status})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise MeshctlError(f"{action}: cannot reach the Kubernetes API at {self.host} ({reason})") from None


@functools.cache
def _logged_api_client() -> type[ApiClient]:
    """ApiClient, with each REST call logged for `--vklog` (the kubernetes package is imported
    only when a command needs the cluster)."""
    from kubernetes.client import ApiClient

    from meshctl.calllog import timed

    class LoggedApiClient(ApiClient):
        def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with timed(lambda: f"{method} {url}") as outcome:
                response = super().call_api(method, url, *args, **kwargs)
                outcome(f"HTTP {response.status}")
                return response

    return LoggedApiClient


def status_message(body: str | bytes | None) -> str | None:
    """The `message` of a Kubernetes Status document, or None if the body is not one."""
    try:
        document = json.loads(body or "")
    except ValueError:
        return None
    return document.get("message") if isinstance(document, dict) else None
