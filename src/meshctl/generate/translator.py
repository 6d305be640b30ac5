"""The real translator behind `meshctl serve`: resources → one immutable mesh generation.

The ADS server hands every accepted configuration to `translate_resources` and then asks the
result what each connected proxy should hold (the `Generation` contract of meshctl.xds, met
here by shape, without importing the transport). Proxies are recognised by Istio's node id and
metadata; their config is exactly what `meshctl translate --proxy POD.NS` renders, produced by
the same `generate` function. One GenerationCache lives across generations, so a change
regenerates only what it touches and proxies sharing inputs share serialized bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.config.resource import Resource
from meshctl.errors import MeshctlError
from meshctl.generate.attribution import attributed, sources
from meshctl.generate.cache import GenerationCache
from meshctl.generate.gateway.secrets import WITHHELD
from meshctl.generate.proxy import ProxyConfig, generate, packed_resources
from meshctl.memokeys import Same
from meshctl.model import proxy as proxies
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.node import parse_node
from meshctl.model.proxy import Proxy
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from meshctl.resources import Packed, ProxyResources

__all__ = ["MeshGeneration", "Translator", "translate_resources"]

log = logging.getLogger("meshctl.xds")


class MeshGeneration:
    """One accepted configuration: a snapshot that answers "what should this node hold?"."""

    def __init__(self, snapshot: MeshSnapshot, cache: GenerationCache, resources: Sequence[Resource] = ()) -> None:
        self.snapshot = snapshot
        self.cache = cache
        self.resources = resources
        self.version = snapshot.version
        self._logged: set[tuple[str, str]] = set()

    def proxy_for(self, node: core_pb2.Node) -> Proxy:
        """The proxy a node is (see model.proxy.for_node); UnknownProxyError when the
        registry has no workload for it and its metadata names no namespace."""
        parsed = self.cache.get(("node", Same(node)), lambda: parse_node(node))
        found = proxies.workload_of(parsed, self.snapshot.registry)
        # A new snapshot makes new Workload objects for every pod even when one pod changed;
        # the first one of equal content stands for them all, so an unchanged pod keeps its proxy.
        workload = None if found is None else self.cache.get(("workload", *found.content_key()), lambda: found)
        # Reading a node's metadata costs more than the rest of an unchanged proxy's generation:
        # a stream presents the same node object to every generation, so it is read once (the
        # identity its connection proved is in that object, written by the server).
        return self.cache.get(("proxy", Same(node), Same(workload)),
                              lambda: proxies.for_node(parsed, workload, verified_identity=parsed.verified_identity))

    def config_for(self, node: core_pb2.Node) -> ProxyConfig:
        """The node's config; a gateway's secret that is withheld or missing is logged (once
        per proxy and config), as its TLS servers cannot work without it."""
        return self._config(self.proxy_for(node))

    def _config(self, proxy: Proxy) -> ProxyConfig:
        config = generate(self.snapshot, proxy, self.cache)
        if proxy.is_router:
            for warning in config.warnings:
                if warning.startswith(WITHHELD) and (proxy.id, warning) not in self._logged:
                    self._logged.add((proxy.id, warning))
                    log.warning(warning, extra={"proxy": proxy.id, "config": self.version})
        return config

    def resources_for(self, node: core_pb2.Node) -> ProxyResources:
        """This node's resources; a failure other than an unknown proxy is a GenerationError
        naming the input objects it happened on, so serve can report it for this proxy alone.
        A sidecar's are shared with every sidecar made of the same parts (see
        generate.proxy.packed_resources): per proxy, little more than finding them."""
        try:
            proxy = self.proxy_for(node)
            if proxy.is_router:
                return self._config(proxy).packed()
            return packed_resources(self.snapshot, proxy, self.cache)
        except MeshctlError:
            raise
        except Exception as exc:  # a value or a bug the translator trips on, for this proxy only
            raise attributed(exc) from exc

    def origins(self, resource: Packed) -> list[str]:
        """The input objects `resource` was made from, for a NACK of it (see attribution.sources)."""
        return [f"{r.where()}: {r.ref()}" for r in sources(self.resources, resource)]


class Translator:
    """Callable `Translate` (see meshctl.xds.generation) keeping one cache across generations,
    and the last snapshot, whose registry and rule index a new one reuses when their kinds are
    unchanged; every generation is translated with the same mesh config."""

    def __init__(self, mesh: MeshConfig | None = None) -> None:
        self.cache = GenerationCache()
        self.mesh = mesh
        self.previous: MeshSnapshot | None = None

    def __call__(self, resources: Sequence[Resource]) -> MeshGeneration:
        before = self.previous.warnings if self.previous is not None else ()
        self.previous = build_snapshot(resources, self.mesh, previous=self.previous)
        for warning in self.previous.warnings:
            if warning not in before:
                log.warning(warning)
        return MeshGeneration(self.previous, self.cache, resources)


translate_resources = Translator()
