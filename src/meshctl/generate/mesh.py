"""The real translator behind `meshctl serve`: resources → one immutable mesh generation.

The ADS server hands every accepted configuration to `translate_resources` and then asks the
result what each connected proxy should hold. Proxies are recognised by Istio's node id and
metadata; their config is exactly what `meshctl translate --proxy POD.NS` renders, produced by
the same `generate` function. One GenerationCache lives across generations, so a change
regenerates only what it touches and proxies sharing inputs share serialized bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from envoy.config.core.v3 import base_pb2 as core_pb2

from meshctl.config.resource import Resource
from meshctl.generate.cache import GenerationCache
from meshctl.generate.proxy import ProxyConfig, generate
from meshctl.model import proxy as proxies
from meshctl.model.proxy import Proxy
from meshctl.model.snapshot import MeshSnapshot, build_snapshot
from meshctl.xds.node import parse_node
from meshctl.xds.resources import ProxyResources
from meshctl.xds.seam import UnknownProxyError


class MeshGeneration:
    """One accepted configuration: a snapshot that answers "what should this node hold?"."""

    def __init__(self, snapshot: MeshSnapshot, cache: GenerationCache) -> None:
        self.snapshot = snapshot
        self.cache = cache
        self.version = snapshot.version

    def proxy_for(self, node: core_pb2.Node) -> Proxy:
        """The proxy a node is: its workload from the registry, refined by node metadata.

        A node whose pod is not in the registry is still served from its metadata (namespace
        and labels), as istiod serves VMs without WorkloadEntries, but only when it names a
        namespace; otherwise there is nothing to base its config on.
        """
        parsed = parse_node(node)
        extensions = any(ext.name.startswith("istio.") for ext in node.extensions)
        workload = self.snapshot.registry.workload(parsed.id)
        interception = parsed.metadata.get("INTERCEPTION_MODE")
        if workload is not None:
            proxy = proxies.for_workload(workload, interception=interception, istio_extensions=extensions,
                                         domain=self.snapshot.mesh.domain)
        elif parsed.namespace and "NAMESPACE" in parsed.metadata:
            proxy = Proxy(id=parsed.id, namespace=parsed.namespace, ip=parsed.ips[0] if parsed.ips else "",
                          dns_domain=parsed.dns_domain, labels=dict(parsed.labels),
                          interception=interception or proxies.INTERCEPTION_REDIRECT, istio_extensions=extensions)
        else:
            raise UnknownProxyError(f"proxy {parsed.id} is not a workload in the configuration")
        if parsed.cluster_id:
            proxy = replace(proxy, cluster_id=parsed.cluster_id)
        if parsed.istio_version:
            proxy = replace(proxy, istio_version=parsed.istio_version)
        return proxy

    def config_for(self, node: core_pb2.Node) -> ProxyConfig:
        return generate(self.snapshot, self.proxy_for(node), self.cache)

    def resources_for(self, node: core_pb2.Node) -> ProxyResources:
        return self.config_for(node).packed()


class Translator:
    """Callable `Translate` (see meshctl.xds.seam) keeping one cache across generations, and
    the last snapshot, whose registry and rule index a new one reuses when their kinds are
    unchanged."""

    def __init__(self) -> None:
        self.cache = GenerationCache()
        self.previous: MeshSnapshot | None = None

    def __call__(self, resources: Sequence[Resource]) -> MeshGeneration:
        self.previous = build_snapshot(resources, previous=self.previous)
        return MeshGeneration(self.previous, self.cache)


translate_resources = Translator()
