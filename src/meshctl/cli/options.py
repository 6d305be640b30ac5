"""Flags that several commands share, declared once, with istioctl's spellings.

`-f/--filename` and `-n/--namespace` for input files; `-c/--kubeconfig`, `--context` and
`-i/--istioNamespace` for the cluster; `-o short|json|yaml` for output. Flags that always come
together form a group (a frozen dataclass of annotated fields, such as `ProxySourceFlags`) that
a command takes as one typed parameter; `flag_group` unfolds it into the command's flags.

Module imports stay cheap (typer and the standard library), as for every command module.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from meshctl.formats import OutputFormat
from meshctl.targets import USAGE

if TYPE_CHECKING:
    from meshctl.inspect.acquire.location import Location

__all__ = [
    "ContextOption",
    "FilesOption",
    "InputNamespaceOption",
    "IstioNamespaceOption",
    "KubeconfigOption",
    "MeshConfigOption",
    "OutputOption",
    "ProxySourceFlags",
    "VerboseOption",
    "flag_group",
]

R = TypeVar("R")
# Where serve keeps its CA and `meshctl token` finds the key to sign tokens with.
DEFAULT_CA_DIR = "~/.meshctl/ca"

FilesOption = Annotated[
    list[str], typer.Option("-f", "--filename", help="File, directory (recursive) or - for stdin; repeatable.")
]
InputNamespaceOption = Annotated[str, typer.Option("-n", "--namespace", help="Namespace for resources that name none.")]
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Also list skipped objects of kinds meshctl does not read.")
]
MeshConfigOption = Annotated[
    str | None,
    typer.Option("--mesh-config", "--meshConfigFile", show_default=False,
                 help="Istio's MeshConfig YAML (the `mesh` key of the `istio` ConfigMap, or that ConfigMap); "
                      "default: istiod's built-in defaults."),
]
KubeconfigOption = Annotated[
    str | None, typer.Option("-c", "--kubeconfig", help="Kubernetes configuration file.", show_default=False)
]
ContextOption = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.", show_default=False)]
IstioNamespaceOption = Annotated[
    str,
    typer.Option("-i", "--istioNamespace", "--istio-namespace", envvar="MESHCTL_ISTIONAMESPACE",
                 help="Namespace of istiod."),
]
OutputOption = Annotated[OutputFormat, typer.Option("-o", "--output", help="Output format.")]
AdminOption = Annotated[
    str | None, typer.Option("--admin", help="Envoy admin URL, e.g. http://127.0.0.1:15000.", show_default=False)
]
ProxyAdminPortOption = Annotated[int, typer.Option("--proxy-admin-port", help="Envoy admin port in the pod.")]
TARGET_METAVAR = f"[{USAGE.replace(' or ', ' | ')}]"


@dataclass(frozen=True)
class ProxySourceFlags:
    """Where `proxy-config` reads proxies from: a pod (or a workload's first pod), every pod a
    selector matches, a saved admin response, or an admin URL."""

    target: Annotated[
        str | None,
        typer.Argument(metavar=TARGET_METAVAR, help="Pod to read (the first pod of a workload).", show_default=False),
    ] = None
    file: Annotated[
        str | None, typer.Option("-f", "--file", help="Saved Envoy admin JSON; - reads stdin.", show_default=False)
    ] = None
    admin: AdminOption = None
    selector: Annotated[
        str | None, typer.Option("-l", "--selector", help="Label selector of the pods to read.", show_default=False)
    ] = None
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="Namespace of the pod.", show_default=False)
    ] = None
    kubeconfig: KubeconfigOption = None
    context: ContextOption = None
    proxy_admin_port: ProxyAdminPortOption = 15000
    istio_namespace: Annotated[
        str,
        typer.Option("-i", "--istioNamespace", "--istio-namespace", envvar="MESHCTL_ISTIONAMESPACE",
                     help="Namespace of istiod. istioctl takes it on every command, so its command lines run "
                          "unchanged; proxy-config reads Envoy itself and asks no istiod."),
    ] = "istio-system"

    def location(self) -> Location:
        """The library's view of these flags; Kubernetes is loaded only if pods are read."""
        from meshctl.inspect.acquire.location import Location
        from meshctl.kube.client import lazy_client

        return Location(
            lazy_client(self.kubeconfig, self.context),
            target=self.target,
            file=self.file,
            admin=self.admin,
            selector=self.selector,
            namespace=self.namespace,
            admin_port=self.proxy_admin_port,
        )


def flag_group(command: Callable[..., R]) -> Callable[..., R]:
    """Let `command` take flag groups (dataclass parameters) instead of each of their flags.

    The returned function has the command's own parameters followed by every field of each
    group, which is what Typer reads to build the flags; when called, it packs those fields
    back into the group and calls `command`.
    """
    signature = inspect.signature(command, eval_str=True)
    groups = {
        name: param.annotation
        for name, param in signature.parameters.items()
        if isinstance(param.annotation, type) and dataclasses.is_dataclass(param.annotation)
    }
    own = [param for name, param in signature.parameters.items() if name not in groups]
    unfolded: list[inspect.Parameter] = []
    for group in groups.values():
        hints = typing.get_type_hints(group, include_extras=True)
        unfolded.extend(
            inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                              annotation=hints[field.name])
            for field in dataclasses.fields(group)
        )

    @functools.wraps(command)
    def unfold(**values: Any) -> R:
        for name, group in groups.items():
            values[name] = group(**{field.name: values.pop(field.name) for field in dataclasses.fields(group)})
        return command(**values)

    parameters = [*own, *unfolded]
    unfold.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    unfold.__annotations__ = {param.name: param.annotation for param in parameters}
    return unfold


LogLevelOption = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
LogFormatOption = Annotated[str, typer.Option("--log-format", help="logfmt (key=value lines) or json.")]
