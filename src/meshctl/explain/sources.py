"""Where the explained proxy's config comes from, and what else the input files add.

Three sources, one result (a `ProxyView`): the input files translated exactly as `meshctl
translate` does (`-f` with a pod or Deployment), a saved dump (`--file`), or a live Envoy
(`--admin`, a pod through Kubernetes). Input files given with a dump or a live proxy are not
translated: they map what the proxy holds back to the resources and lines that produced it,
and answer DNS for host names as the cluster would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshctl.errors import BadInputError, UsageError
from meshctl.explain.address import RegistryResolver
from meshctl.explain.provenance import Inputs, Names
from meshctl.explain.view import Identity, PartsView, ProxyView, TranslatedView, document_view, live_view

if TYPE_CHECKING:
    from meshctl.inspect.acquire import DumpSource
    from meshctl.model.meshconfig import MeshConfig
    from meshctl.model.proxy import Proxy
    from meshctl.model.snapshot import MeshSnapshot

__all__ = ["Subject", "from_dump", "from_inputs", "from_live", "load_inputs"]


@dataclass(frozen=True, slots=True)
class Subject:
    """The proxy to explain, and what the input files tell about where its config came from."""

    view: ProxyView
    provenance: Names
    resolver: RegistryResolver | None = None


@dataclass(frozen=True, slots=True)
class _Inputs:
    provenance: Inputs
    snapshot: MeshSnapshot


def load_inputs(files: Sequence[str], namespace: str, mesh: MeshConfig | None = None) -> _Inputs:
    """The input files as a mesh snapshot (BadInputError with every problem, as translate)."""
    from meshctl.config.loader import load
    from meshctl.model.snapshot import build_snapshot

    result = load(files, namespace)
    if result.problems:
        raise BadInputError([str(problem) for problem in result.problems])
    snapshot = build_snapshot(result.resources, mesh)
    return _Inputs(Inputs(result.resources, snapshot), snapshot)


def _proxy(inputs: _Inputs, target: str, namespace: str) -> Proxy:
    from meshctl.model.snapshot import UnknownTargetError

    try:
        return inputs.snapshot.proxy(target, namespace)
    except UnknownTargetError as exc:
        raise UsageError(str(exc)) from None


def _identity(proxy: Proxy) -> Identity:
    return Identity(proxy.id, proxy.namespace, proxy.ip, proxy.dns_domain)


def from_inputs(files: Sequence[str], target: str, namespace: str, mesh: MeshConfig | None = None) -> Subject:
    """The proxy `target` as the input files translate it. A sidecar's resources are translated
    as the request reaches them (`ProxyParts`), a router's whole; the view's `warnings()` says
    what translating them had to say."""
    from meshctl.generate.proxy import ProxyParts, generate

    inputs = load_inputs(files, namespace, mesh)
    proxy = _proxy(inputs, target, namespace)
    identity = _identity(proxy)
    view: ProxyView = TranslatedView(generate(inputs.snapshot, proxy), identity) if proxy.is_router else \
        PartsView(ProxyParts(inputs.snapshot, proxy), identity)
    return Subject(view, inputs.provenance, RegistryResolver(inputs.snapshot))


def _with_inputs(view: ProxyView, files: Sequence[str], target: str | None, namespace: str,
                 mesh: MeshConfig | None) -> Subject:
    if not files:
        return Subject(view, Names())
    inputs = load_inputs(files, namespace, mesh)
    if target is not None:
        try:
            view.identity = _identity(_proxy(inputs, target, namespace))
        except UsageError:
            pass  # a live pod the files do not describe keeps the identity its Envoy reports
    return Subject(view, inputs.provenance, RegistryResolver(inputs.snapshot))


def from_dump(data: bytes, origin: str, files: Sequence[str] = (), target: str | None = None,
              namespace: str = "default", mesh: MeshConfig | None = None) -> Subject:
    """A saved config dump; with input files, traced back to them."""
    return _with_inputs(document_view(data, origin), files, target, namespace, mesh)


def from_live(source: DumpSource, files: Sequence[str] = (), target: str | None = None,
              namespace: str = "default", mesh: MeshConfig | None = None) -> Subject:
    """A running Envoy, asked for what the request touches; with input files, traced back to them."""
    return _with_inputs(live_view(source), files, target, namespace, mesh)
