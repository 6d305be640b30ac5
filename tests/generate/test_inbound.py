"""Inbound listeners from PeerAuthentication and the workload's own services (translation-spec
§2.7, security.md §3): a mesh in, the whole virtualInbound out.

Each listener is compared as a table of its chains (name, destination port, transport, ALPN,
the mTLS it terminates, its filters and where they lead) and its listener filters in full; the
inner messages (TLS contexts, chains) have their own constructor tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message as Proto
from protoassert import assert_proto_equal
from testsupport import peer_authentication

from meshctl import protocols
from meshctl.config.loader import load
from meshctl.generate import tls
from meshctl.generate.inbound import ChainOption, chain_options, listener_filters
from meshctl.generate.proxy import ProxyConfig
from meshctl.model.meshconfig import MeshConfig
from meshctl.model.snapshot import MeshSnapshot, build_snapshot

Mesh = Callable[..., MeshSnapshot]
ConfigFor = Callable[..., ProxyConfig]
WriteYaml = Callable[[str], Path]

REVIEWS = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec: {serviceAccountName: reviews, containers: [{name: r, image: r, ports: [{containerPort: 9080}]}]}
status: {podIP: 10.1.0.5}
"""
POD = "reviews-v1.default"


def sidecar_ingress(port: int, protocol: str, listener: str) -> str:
    """A Sidecar for reviews with one ingress listener (`listener`: its further fields)."""
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {port}, protocol: {protocol}, name: ingress}}
{listener}"""


STRICT = peer_authentication("  mtls: {mode: STRICT}")
DISABLE = peer_authentication("  mtls: {mode: DISABLE}")

# ALPN lists as the table below spells them.
MTLS_ANY = "istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2"
MTLS_HTTP = "istio-http/1.0,istio-http/1.1,istio-h2"
MTLS_TCP = "istio-peer-exchange,istio"
PLAIN_HTTP = "http/1.1,h2c"
BLACKHOLE = "virtualInbound-blackhole :15006 * - tcp_proxy>BlackHoleCluster"
# The catch-all passthrough chains in each mode.
PASSTHROUGH = {
    "PERMISSIVE": [
        f"virtualInbound-catchall-http * tls[{MTLS_HTTP}] mtls-http hcm>InboundPassthroughCluster",
        f"virtualInbound-catchall-http * raw_buffer[{PLAIN_HTTP}] - hcm>InboundPassthroughCluster",
        f"virtualInbound * tls[{MTLS_TCP}] mtls-tcp tcp_proxy>InboundPassthroughCluster",
        "virtualInbound * raw_buffer - tcp_proxy>InboundPassthroughCluster",
        "virtualInbound * tls - tcp_proxy>InboundPassthroughCluster",
    ],
    "STRICT": [
        f"virtualInbound-catchall-http * tls[{MTLS_HTTP}] mtls-http hcm>InboundPassthroughCluster",
        "virtualInbound * tls mtls-tcp tcp_proxy>InboundPassthroughCluster",
    ],
    "DISABLE": [
        f"virtualInbound-catchall-http * raw_buffer[{PLAIN_HTTP}] - hcm>InboundPassthroughCluster",
        "virtualInbound * raw_buffer - tcp_proxy>InboundPassthroughCluster",
    ],
}


def packed(message: Proto) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def _mtls(chain: lc.FilterChain) -> str:
    """Which Istio mTLS context a chain terminates: `mtls-http` or `mtls-tcp` (checked in full)."""
    if not chain.HasField("transport_socket"):
        return "-"
    context = tls_pb2.DownstreamTlsContext()
    chain.transport_socket.typed_config.Unpack(context)
    validation = tls.PeerValidation(("cluster.local",))
    for label, alpn in (("mtls-http", tls.INBOUND_ALPN_HTTP), ("mtls-tcp", tls.INBOUND_ALPN_TCP)):
        if context == tls.inbound_mtls(alpn, validation):
            return label
    return "other-tls"


def _filter(item: lc.Filter) -> str:
    if item.name == "envoy.filters.network.tcp_proxy":
        proxy = tcp_proxy_pb2.TcpProxy()
        item.typed_config.Unpack(proxy)
        assert proxy.stat_prefix == proxy.cluster
        return f"tcp_proxy>{proxy.cluster}"
    if item.name == "envoy.filters.network.http_connection_manager":
        manager = hcm_pb2.HttpConnectionManager()
        item.typed_config.Unpack(manager)
        (vhost,) = manager.route_config.virtual_hosts
        return f"hcm>{vhost.routes[0].route.cluster}"
    return item.name


def shape(listener: listener_pb2.Listener) -> list[str]:
    """One line per chain: `name :port transport[alpn] mtls filters`, `*` for no port."""
    lines = []
    for chain in listener.filter_chains:
        match = chain.filter_chain_match
        port = f":{match.destination_port.value}" if match.HasField("destination_port") else "*"
        transport = match.transport_protocol or "*"
        if match.application_protocols:
            transport += f"[{','.join(match.application_protocols)}]"
        lines.append(" ".join([chain.name, port, transport, _mtls(chain), *map(_filter, chain.filters)]))
    return lines


def port_range(port: int) -> lc.ListenerFilterChainMatchPredicate:
    return lc.ListenerFilterChainMatchPredicate(destination_port_range={"start": port, "end": port + 1})


def on_ports(*ports: int) -> lc.ListenerFilterChainMatchPredicate:
    if len(ports) == 1:
        return port_range(ports[0])
    return lc.ListenerFilterChainMatchPredicate(or_match={"rules": [port_range(p) for p in ports]})


ORIGINAL_DST = lc.ListenerFilter(name="envoy.filters.listener.original_dst", typed_config=packed(original_dst_pb2.OriginalDst()))


def tls_inspector(disabled: lc.ListenerFilterChainMatchPredicate | None = None) -> lc.ListenerFilter:
    return lc.ListenerFilter(name="envoy.filters.listener.tls_inspector",
                             typed_config=packed(tls_inspector_pb2.TlsInspector()), filter_disabled=disabled)


def http_inspector(disabled: lc.ListenerFilterChainMatchPredicate | None = None) -> lc.ListenerFilter:
    return lc.ListenerFilter(name="envoy.filters.listener.http_inspector",
                             typed_config=packed(http_inspector_pb2.HttpInspector()), filter_disabled=disabled)


def only_on(*ports: int) -> lc.ListenerFilterChainMatchPredicate:
    return lc.ListenerFilterChainMatchPredicate(not_match=on_ports(*ports))


def assert_listener_filters(listener: listener_pb2.Listener, expected: Sequence[lc.ListenerFilter]) -> None:
    actual = listener_pb2.Listener(listener_filters=listener.listener_filters)
    assert_proto_equal(actual, listener_pb2.Listener(listener_filters=list(expected)))


def listeners(config: ProxyConfig) -> dict[str, listener_pb2.Listener]:
    return {listener.name: listener for listener in config.listeners}


@pytest.fixture
def inbound(mesh: Mesh, config_for: ConfigFor, write_yaml: WriteYaml) -> Callable[..., listener_pb2.Listener]:
    """virtualInbound of reviews-v1 (or `target`) for REVIEWS plus more documents."""

    def build(*extra: str, target: str = POD, **options: object) -> listener_pb2.Listener:
        snapshot = mesh(write_yaml("---\n".join([REVIEWS, *extra])))
        return listeners(config_for(snapshot, target, **options))["virtualInbound"]

    return build


# -- chain options, by mode and protocol (filterchain_options.go) --------------------------------

@pytest.mark.parametrize(("mode", "protocol", "expected"), [
    ("STRICT", "HTTP", [ChainOption("tls", (), True, True)]),
    ("STRICT", "TCP", [ChainOption("tls", (), True, False)]),
    ("STRICT", protocols.UNSUPPORTED, [ChainOption("tls", tuple(MTLS_HTTP.split(",")), True, True),
                               ChainOption("tls", (), True, False)]),
    ("PERMISSIVE", "HTTP", [ChainOption("tls", tuple(MTLS_ANY.split(",")), True, True),
                            ChainOption("raw_buffer", (), False, True)]),
    ("PERMISSIVE", protocols.MONGO, [ChainOption("tls", tuple(MTLS_ANY.split(",")), True, False),
                                     ChainOption("tls", (), False, False), ChainOption("raw_buffer", (), False, False)]),
    ("PERMISSIVE", protocols.UNSUPPORTED, [
        ChainOption("tls", tuple(MTLS_HTTP.split(",")), True, True),
        ChainOption("raw_buffer", ("http/1.1", "h2c"), False, True),
        ChainOption("tls", tuple(MTLS_TCP.split(",")), True, False),
        ChainOption("raw_buffer", (), False, False),
        ChainOption("tls", (), False, False)]),
    ("DISABLE", protocols.GRPC, [ChainOption("raw_buffer", (), False, True)]),
    ("DISABLE", "TCP", [ChainOption("raw_buffer", (), False, False)]),
    ("DISABLE", protocols.UNSUPPORTED, [ChainOption("raw_buffer", ("http/1.1", "h2c"), False, True),
                                ChainOption("raw_buffer", (), False, False)]),
])
def test_chain_options(mode: str, protocol: str, expected: list[ChainOption]) -> None:
    assert chain_options(mode, protocol) == expected


# -- listener filters, from the chains (listener_inbound.go populateListenerFilters) -------------

def chain(port: int | None, transport: str = "", alpn: Sequence[str] = ()) -> lc.FilterChain:
    out = lc.FilterChain(filter_chain_match={"transport_protocol": transport, "application_protocols": list(alpn)})
    if port is not None:
        out.filter_chain_match.destination_port.value = port
    return out


PLAIN_HTTP_CHAIN = chain(None, "raw_buffer", ["http/1.1", "h2c"])


@pytest.mark.parametrize(("chains", "original_dst", "expected"), [
    pytest.param([chain(15006), chain(None, "tls"), PLAIN_HTTP_CHAIN, chain(9080, "tls"), chain(9080, "raw_buffer")],
                 True, [ORIGINAL_DST, tls_inspector(on_ports(15006)), http_inspector(on_ports(9080, 15006))],
                 id="permissive: TLS detection but on the loop guard, HTTP sniffing on undeclared ports"),
    pytest.param([chain(15006), chain(None, "tls"), chain(9080, "tls"), chain(9090, "tls")],
                 True, [ORIGINAL_DST, tls_inspector(on_ports(15006))], id="strict: no HTTP inspector at all"),
    pytest.param([chain(15006), chain(None, "raw_buffer"), PLAIN_HTTP_CHAIN, chain(9080, "raw_buffer")],
                 True, [ORIGINAL_DST, http_inspector(on_ports(9080, 15006))], id="disable: no TLS inspector at all"),
    pytest.param([chain(15006), chain(None, "tls"), chain(9080, "raw_buffer"), chain(9090, "tls")],
                 True, [ORIGINAL_DST, tls_inspector(on_ports(9080, 15006))],
                 id="strict with a DISABLE port: TLS detection off there, so TLS reaches its raw-buffer chain"),
    pytest.param([chain(15006), chain(None, "raw_buffer"), chain(9080, "tls"), chain(9090, "tls")],
                 True, [ORIGINAL_DST, tls_inspector(only_on(9080, 9090))],
                 id="disabled workload with mTLS ports: TLS detection on those ports only"),
    pytest.param([chain(15006), chain(None, "raw_buffer"), chain(9080, "tls", MTLS_HTTP.split(",")),
                  chain(9080, "raw_buffer", ["http/1.1", "h2c"])],
                 True, [ORIGINAL_DST, tls_inspector(only_on(9080)), http_inspector(on_ports(0, 15006))],
                 id="the catch-all needing no sniffing is listed as port 0, as istiod lists it"),
    pytest.param([chain(9080, "tls"), chain(9080, "raw_buffer")], False, [tls_inspector(only_on(9080))],
                 id="a bound listener: no original_dst, detection on its own port"),
])
def test_listener_filters(chains: list[lc.FilterChain], original_dst: bool, expected: list[lc.ListenerFilter]) -> None:
    actual = listener_filters(chains, original_dst=original_dst, original_src=False)
    assert_proto_equal(listener_pb2.Listener(listener_filters=actual), listener_pb2.Listener(listener_filters=expected))


# -- virtualInbound by PeerAuthentication ------------------------------------------------------

HTTP_9080 = {
    "PERMISSIVE": [f"0.0.0.0_9080 :9080 tls[{MTLS_ANY}] mtls-http hcm>inbound|9080||",
                   "0.0.0.0_9080 :9080 raw_buffer - hcm>inbound|9080||"],
    "STRICT": ["0.0.0.0_9080 :9080 tls mtls-http hcm>inbound|9080||"],
    "DISABLE": ["0.0.0.0_9080 :9080 raw_buffer - hcm>inbound|9080||"],
}


@pytest.mark.parametrize(("policies", "mode", "listener_filters_expected"), [
    pytest.param([], "PERMISSIVE", [ORIGINAL_DST, tls_inspector(on_ports(15006)), http_inspector(on_ports(9080, 15006))],
                 id="PERMISSIVE by default"),
    pytest.param([STRICT], "STRICT", [ORIGINAL_DST, tls_inspector(on_ports(15006))], id="STRICT mesh-wide"),
    pytest.param([DISABLE], "DISABLE", [ORIGINAL_DST, http_inspector(on_ports(9080, 15006))], id="DISABLE mesh-wide"),
    pytest.param([STRICT, peer_authentication("  mtls: {mode: DISABLE}", "default")], "DISABLE",
                 [ORIGINAL_DST, http_inspector(on_ports(9080, 15006))], id="namespace DISABLE over mesh STRICT"),
    pytest.param([DISABLE, peer_authentication("  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: STRICT}",
                                               "default", "reviews")], "STRICT",
                 [ORIGINAL_DST, tls_inspector(on_ports(15006))], id="workload STRICT over mesh DISABLE"),
    pytest.param([STRICT, peer_authentication("  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: UNSET}",
                                               "default", "reviews")], "STRICT",
                 [ORIGINAL_DST, tls_inspector(on_ports(15006))], id="workload UNSET inherits"),
])
def test_virtual_inbound_by_mode(inbound: Callable[..., listener_pb2.Listener], policies: list[str], mode: str,
                                 listener_filters_expected: list[lc.ListenerFilter]) -> None:
    listener = inbound(*policies)
    assert shape(listener) == [BLACKHOLE, *PASSTHROUGH[mode], *HTTP_9080[mode]]
    assert_listener_filters(listener, listener_filters_expected)


def test_port_level_disable_turns_tls_detection_off_on_that_port(inbound: Callable[..., listener_pb2.Listener]) -> None:
    """A STRICT workload whose 9080 is DISABLE: plaintext chains there, and no TLS inspector on
    9080, so even a TLS client lands on the raw-buffer chain instead of matching nothing."""
    listener = inbound(STRICT, peer_authentication(
        "  selector: {matchLabels: {app: reviews}}\n  portLevelMtls: {9080: {mode: DISABLE}}", "default", "reviews"))
    assert shape(listener) == [BLACKHOLE, *PASSTHROUGH["STRICT"], *HTTP_9080["DISABLE"]]
    assert_listener_filters(listener, [ORIGINAL_DST, tls_inspector(on_ports(9080, 15006))])


def test_port_level_modes_on_undeclared_ports_get_passthrough_chains(
        inbound: Callable[..., listener_pb2.Listener]) -> None:
    """`portLevelMtls` ports no service declares: passthrough chains of their own, in that port's
    mode, after the catch-all ones (STRICT 8000 refuses plaintext; DISABLE 8001 passes it)."""
    listener = inbound(peer_authentication(
        "  selector: {matchLabels: {app: reviews}}\n"
        "  portLevelMtls: {8001: {mode: DISABLE}, 8000: {mode: STRICT}, 9080: {mode: STRICT}}", "default", "reviews"))
    assert shape(listener) == [
        BLACKHOLE,
        *PASSTHROUGH["PERMISSIVE"],
        f"virtualInbound-catchall-http :8000 tls[{MTLS_HTTP}] mtls-http hcm>InboundPassthroughCluster",
        "virtualInbound :8000 tls mtls-tcp tcp_proxy>InboundPassthroughCluster",
        f"virtualInbound-catchall-http :8001 raw_buffer[{PLAIN_HTTP}] - hcm>InboundPassthroughCluster",
        "virtualInbound :8001 raw_buffer - tcp_proxy>InboundPassthroughCluster",
        *HTTP_9080["STRICT"],
    ]
    assert_listener_filters(listener, [ORIGINAL_DST, tls_inspector(on_ports(8001, 15006)),
                                       http_inspector(on_ports(8000, 9080, 15006))])


def test_sidecar_ingress_ports_get_no_passthrough_chains(inbound: Callable[..., listener_pb2.Listener]) -> None:
    """With Sidecar ingress, the ports it declares are the service ports: a port-level mode on
    one of them shapes its chains, not an extra passthrough set."""
    listener = inbound(peer_authentication(
        "  selector: {matchLabels: {app: reviews}}\n  portLevelMtls: {8000: {mode: STRICT}}", "default", "reviews"),
        sidecar_ingress(8000, "TCP", "    defaultEndpoint: 127.0.0.1:8000\n"))
    # Named for the pod's address, as Istio binds Sidecar ingress to instance_ip:port.
    assert shape(listener) == [BLACKHOLE, *PASSTHROUGH["PERMISSIVE"],
                               "10.1.0.5_8000 :8000 tls mtls-tcp tcp_proxy>inbound|8000||"]


def test_tcp_port_passes_the_applications_own_tls(inbound: Callable[..., listener_pb2.Listener]) -> None:
    listener = inbound("""
apiVersion: v1
kind: Service
metadata: {name: reviews-db, namespace: default}
spec:
  ports: [{name: tcp-db, port: 5432, targetPort: 15432}]
  selector: {app: reviews}
""")
    assert shape(listener)[-3:] == [
        f"0.0.0.0_15432 :15432 tls[{MTLS_ANY}] mtls-tcp tcp_proxy>inbound|15432||",
        "0.0.0.0_15432 :15432 tls - tcp_proxy>inbound|15432||",
        "0.0.0.0_15432 :15432 raw_buffer - tcp_proxy>inbound|15432||",
    ]


def test_inbound_http_forwards_the_callers_identity(inbound: Callable[..., listener_pb2.Listener]) -> None:
    """The application sees the caller's SPIFFE ID in x-forwarded-client-cert, as Istio sets it."""
    listener = inbound(STRICT)
    (service_chain,) = [c for c in listener.filter_chains if c.name == "0.0.0.0_9080"]
    manager = hcm_pb2.HttpConnectionManager()
    service_chain.filters[-1].typed_config.Unpack(manager)
    assert manager.forward_client_cert_details == hcm_pb2.HttpConnectionManager.APPEND_FORWARD
    assert_proto_equal(manager.set_current_client_cert_details,
                       hcm_pb2.HttpConnectionManager.SetCurrentClientCertDetails(subject={"value": True}, uri=True,
                                                                                   dns=True))
    assert manager.stat_prefix == "inbound_0.0.0.0_9080;"


def test_istio_proxy_flavor_matches_istiod(inbound: Callable[..., listener_pb2.Listener]) -> None:
    """istio-proxy: metadata exchange first on every chain (the loop guard too), and the SAN
    matchers in the deprecated field istiod still emits."""
    listener = inbound(STRICT, istio_extensions=True)
    assert [[f.name for f in c.filters][0] for c in listener.filter_chains] == ["istio.metadata_exchange"] * 4
    context = tls_pb2.DownstreamTlsContext()
    listener.filter_chains[-1].transport_socket.typed_config.Unpack(context)
    assert_proto_equal(context, tls.inbound_mtls(tls.INBOUND_ALPN_HTTP,
                                                 tls.PeerValidation(("cluster.local",), typed=False)))


def test_trust_domain_aliases_are_accepted_peers(config_for: ConfigFor, write_yaml: WriteYaml) -> None:
    """Peers of the mesh's trust domain and of each alias (a migration's old domain) get in."""
    loaded = load([str(write_yaml(REVIEWS + "---\n" + STRICT))], "default")
    snapshot = build_snapshot(loaded.resources, MeshConfig(trust_domain="new.example",
                                                           trust_domain_aliases=("cluster.local",)))
    listener = listeners(config_for(snapshot, POD))["virtualInbound"]
    context = tls_pb2.DownstreamTlsContext()
    listener.filter_chains[-1].transport_socket.typed_config.Unpack(context)
    assert_proto_equal(context, tls.inbound_mtls(tls.INBOUND_ALPN_HTTP,
                                                 tls.PeerValidation(("new.example", "cluster.local"))))


def test_sidecar_ingress_capture_none_binds_its_own_listener(mesh: Mesh, config_for: ConfigFor,
                                                             write_yaml: WriteYaml) -> None:
    snapshot = mesh(write_yaml(REVIEWS + "---" + sidecar_ingress(
        9080, "HTTP", "    bind: 127.0.0.5\n    captureMode: NONE\n    defaultEndpoint: 127.0.0.1:19080\n")))
    found = listeners(config_for(snapshot, POD))
    assert shape(found["virtualInbound"]) == [BLACKHOLE, *PASSTHROUGH["PERMISSIVE"]]
    bound = found["127.0.0.5_9080"]
    assert (bound.address.socket_address.address, bound.address.socket_address.port_value) == ("127.0.0.5", 9080)
    assert shape(bound) == [f"127.0.0.5_9080 :9080 tls[{MTLS_ANY}] mtls-http hcm>inbound|9080||",
                            "127.0.0.5_9080 :9080 raw_buffer - hcm>inbound|9080||"]
    assert_listener_filters(bound, [tls_inspector(only_on(9080))])


# -- ServiceEntry and WorkloadEntry as the proxy's own services (issue 9 §1) -------------------

SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews-legacy, namespace: {namespace}}}
spec:
  hosts: [reviews-legacy.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 7070, name: tcp-legacy, protocol: TCP, targetPort: 17070}}]
  endpoints: [{{address: 10.1.0.5}}]
"""


def test_service_entry_endpoint_at_the_proxys_address_is_its_service(mesh: Mesh, config_for: ConfigFor,
                                                                     write_yaml: WriteYaml) -> None:
    config = config_for(mesh(write_yaml(REVIEWS + "---\n" + SERVICE_ENTRY.format(namespace="default"))), POD)
    assert shape(listeners(config)["virtualInbound"])[-3:] == [
        f"0.0.0.0_17070 :17070 tls[{MTLS_ANY}] mtls-tcp tcp_proxy>inbound|17070||",
        "0.0.0.0_17070 :17070 tls - tcp_proxy>inbound|17070||",
        "0.0.0.0_17070 :17070 raw_buffer - tcp_proxy>inbound|17070||",
    ]
    assert [c.name for c in config.clusters if c.name.startswith("inbound|")] == ["inbound|9080||", "inbound|17070||"]


def test_service_entry_of_another_namespace_is_not(mesh: Mesh, config_for: ConfigFor, write_yaml: WriteYaml) -> None:
    """As in Kubernetes, a namespace cannot make a port of another namespace's workload a service."""
    config = config_for(mesh(write_yaml(REVIEWS + "---\n" + SERVICE_ENTRY.format(namespace="other"))), POD)
    assert [c.name for c in config.clusters if c.name.startswith("inbound|")] == ["inbound|9080||"]


def test_workload_entry_selected_by_a_service_entry_serves_its_ports(mesh: Mesh, config_for: ConfigFor,
                                                                     write_yaml: WriteYaml) -> None:
    """A VM's sidecar (a WorkloadEntry) serves the ports of the ServiceEntry selecting it, on
    the port numbers its own `ports` map gives them."""
    snapshot = mesh(write_yaml("""
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: default}
spec:
  address: 10.2.0.9
  labels: {app: legacy}
  serviceAccount: legacy
  ports: {http-legacy: 18080}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http-legacy, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
  workloadSelector: {labels: {app: legacy}}
"""))
    config = config_for(snapshot, "vm-1.default")
    assert shape(listeners(config)["virtualInbound"])[-4:] == [
        f"0.0.0.0_9090 :9090 tls[{MTLS_ANY}] mtls-http hcm>inbound|9090||",
        "0.0.0.0_9090 :9090 raw_buffer - hcm>inbound|9090||",
        f"0.0.0.0_18080 :18080 tls[{MTLS_ANY}] mtls-http hcm>inbound|18080||",
        "0.0.0.0_18080 :18080 raw_buffer - hcm>inbound|18080||",
    ]
    assert [c.name for c in config.clusters if c.name.startswith("inbound|")] == ["inbound|9090||", "inbound|18080||"]
