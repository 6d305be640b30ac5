"""Follow one request through one proxy's Envoy config, step by step, as Envoy would.

The order is Envoy's: the listener the connection lands on (for a sidecar, the capture
listener, which hands the connection to the listener of its original destination), the
listener filters and the filter chain, TLS on that chain, then the network filters in order:
RBAC, and either a TCP proxy or the HTTP connection manager. For HTTP: the route configuration,
the virtual host, the first matching route; the HTTP filters before the router (RBAC, fault
injection, external authorization); the route's action; the cluster and its endpoints.

Every step names the config that decided it (`provenance`). Where the config holds no answer
(a dump without endpoints, a route that matches some requests at random), the explanation says
what is missing or forks (`result.Branch`), and never assumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshctl.explain import chains as chain_match
from meshctl.explain.address import WILDCARDS, RegistryResolver, infer_from_listeners
from meshctl.explain.matchers import Verdict as MatchVerdict
from meshctl.explain.matchers import combine, header_check
from meshctl.explain.protos import (
    DOWNSTREAM_TLS,
    EXT_AUTHZ,
    HCM,
    HTTP_FAULT,
    HTTP_RBAC,
    HTTP_RBAC_PER_ROUTE,
    JWT_AUTHN,
    NETWORK_RBAC,
    ORIGINAL_DST,
    ROUTER,
    TCP_PROXY,
    type_name,
    unpack,
)
from meshctl.explain.provenance import Names, config_path_of
from meshctl.explain.rbac import decide
from meshctl.explain.request import Direction, Request, Transport
from meshctl.explain.result import Branch, Explanation, Outcome, Rejected, Source, Step, Verdict
from meshctl.explain.routing import host_for_matching, match_route, normalize_path, route_label, select_virtual_host
from meshctl.explain.upstream import cluster_steps, weights
from meshctl.explain.view import ListenerInfo, ProxyView

__all__ = ["explain"]

_REDIRECT_CODES = {0: 301, 1: 302, 2: 303, 3: 307, 4: 308}


@dataclass(slots=True)
class _Tail:
    """The rest of a request's path from some step on: its steps, then an outcome or forks."""

    steps: list[Step] = field(default_factory=list)
    outcome: Outcome | None = None
    branches: list[Branch] = field(default_factory=list)

    def after(self, *steps: Step) -> _Tail:
        return _Tail([*steps, *self.steps], self.outcome, self.branches)

    def branch(self, condition: str) -> Branch:
        return Branch(condition, tuple(self.steps), self.outcome, tuple(self.branches))


def _end(verdict: Verdict, summary: str, *steps: Step, status: int | None = None, code: str = "") -> _Tail:
    if not code and verdict is Verdict.undetermined:
        code = "unknown"
    return _Tail(list(steps), Outcome(verdict, summary, status, code))


def explain(view: ProxyView, request: Request, provenance: Names | None = None,
            resolver: RegistryResolver | None = None) -> Explanation:
    """The path of `request` through the proxy `view` shows (module docstring). `resolver`
    answers DNS from the input files; without it, addresses come from the request or the
    proxy's own config."""
    return _Explainer(view, request, provenance or Names(), resolver).run()


class _Explainer:
    def __init__(self, view: ProxyView, request: Request, provenance: Names, resolver: RegistryResolver | None) -> None:
        self.view = view
        self.request = request
        self.provenance = provenance
        self.resolver = resolver
        self.notes: list[str] = []

    def run(self) -> Explanation:
        steps = self._destination()
        tail = self._listener().after(*steps)
        return Explanation(self.view.identity.name, self.request, tuple(tail.steps), tail.outcome,
                           tuple(tail.branches), tuple(self.notes))

    # --- where the connection goes ---------------------------------------------------------------

    def _destination(self) -> list[Step]:
        """The destination address and port, resolved as the application's DNS would."""
        request, identity = self.request, self.view.identity
        if request.direction is Direction.inbound:
            steps = []
            if self.resolver is not None:
                mapped = self.resolver.target_port(request.host, request.port, identity)
                if mapped is not None:
                    self.request = request = request.with_port(mapped[0])
                    steps.append(Step("port", str(mapped[0]), (mapped[1],)))
            if not request.address:
                if not identity.ip:
                    self.notes.append("the proxy's own address is unknown: give --address")
                self.request = request = request.with_address(identity.ip)
            facts = ("the connection arrives at the proxy's own workload",)
            return [*steps, Step("destination", f"{request.address or '(unknown)'}:{request.port}", facts)]
        if request.address:
            return []
        if self.resolver is not None:
            found = self.resolver.resolve(request.host, request.port, identity)
            if found is not None:
                self.request = request.with_address(found.address)
                return [Step("destination", f"{found.address}:{request.port}", (f"{request.host}: {found.how}",))]
            return [Step("destination", f"(unknown address):{request.port}",
                         (f"{request.host} is not a host of the mesh: DNS outside the mesh gives its address",))]
        return []

    def _listener(self) -> _Tail:
        if self.request.direction is Direction.inbound:
            return self._inbound_listener()
        return self._outbound_listener()

    def _on_port(self, infos: Sequence[ListenerInfo], port: int) -> list[ListenerInfo]:
        return [info for info in infos if any(p == port for _, p in info.addresses)]

    def _by_address(self, infos: Sequence[ListenerInfo], address: str, port: int) -> tuple[ListenerInfo | None, str]:
        """Envoy's pick for an address: the listener bound to it exactly, else a wildcard one."""
        for info in infos:
            if (address, port) in info.addresses:
                return info, f"bound to {address}:{port}"
        for info in infos:
            if any(a in WILDCARDS and p == port for a, p in info.addresses):
                shown = f"{address}:{port}" if address else f"port {port}"
                return info, f"bound to {_address(info, port)}, which takes {shown} (no listener is bound to that address)"
        return None, ""

    def _address_needed(self, candidates: Sequence[ListenerInfo], port: int) -> _Tail | None:
        """With the destination address unknown, find it in the config (a tail holding the step
        that says so), or stop when it matters (a tail with an outcome); None when it does not."""
        if self.request.address:
            return None
        bound = [info for info in candidates if any(a not in WILDCARDS and p == port for a, p in info.addresses)]
        if not bound:
            return None
        listeners = [self.view.listener(info.name) for info in bound]
        found = infer_from_listeners(listeners, self.request.host, port, self.view.identity)
        if found is not None:
            self.request = self.request.with_address(found.address)
            return _Tail([Step("destination", f"{found.address}:{port}", (f"{self.request.host}: {found.how}",))])
        names = ", ".join(info.name for info in bound)
        return _end(Verdict.undetermined, f"the address {self.request.host} resolves to is unknown, and port {port} "
                    f"has listeners bound to addresses ({names}); give --address (or the input files with -f)")

    def _outbound_listener(self) -> _Tail:
        infos = self.view.listener_infos()
        port = self.request.port
        capture = next((info for info in infos if info.use_original_dst and not info.inbound), None)
        on_port = self._on_port(infos, port)
        found = self._address_needed(on_port, port)
        if found is not None and found.outcome is not None:
            return found
        inferred = found.steps if found is not None else []
        address = self.request.address
        if capture is None:
            reachable = [info for info in on_port if info.bind_to_port]
            chosen, why = self._by_address(reachable, address, port) if address else (None, "")
            if chosen is None:
                bound = ", ".join(info.name for info in reachable) or "none"
                return _end(Verdict.bypassed, f"the connection to {address or self.request.host}:{port} does not reach "
                            f"this proxy: it captures no traffic (no listener with use_original_dst), and none of its "
                            f"listeners is bound to that address (bound on port {port}: {bound})", *inferred, code="no-listener")
            step = Step("listener", chosen.name, (why,), rejected=self._other_listeners(on_port, chosen))
            return self._chains(chosen, address, port).after(*inferred, step)
        capture_address = _address(capture, capture.addresses[0][1]) if capture.addresses else capture.name
        arrival = Step("listener", capture.name, (
            f"{capture_address}: iptables redirects the workload's outbound connections here",
            "use_original_dst: the connection is handed to the listener bound to its original destination",
        ))
        chosen, why = self._by_address(on_port, address, port)
        if chosen is None or chosen.name == capture.name:
            facts = (f"no listener is bound to {address or '(unknown address)'}:{port}: the connection stays here",)
            return self._chains(capture, address, port).after(*inferred, arrival, Step("listener", capture.name, facts))
        step = Step("listener", chosen.name, (f"original destination {address or '(unknown address)'}:{port}: {why}",),
                    rejected=self._other_listeners(on_port, chosen))
        return self._chains(chosen, address, port).after(*inferred, arrival, step)

    def _other_listeners(self, on_port: Sequence[ListenerInfo], chosen: ListenerInfo) -> tuple[Rejected, ...]:
        return tuple(Rejected(info.name, (f"bound to {_address(info, info.addresses[0][1])}",))
                     for info in on_port if info.name != chosen.name and info.addresses)

    def _inbound_listener(self) -> _Tail:
        infos = self.view.listener_infos()
        port = self.request.port
        address = self.request.address
        capture = None
        for info in infos:
            if info.inbound and _has_original_dst(self.view.listener(info.name)):
                capture = info
                break
        if capture is not None:
            where = _address(capture, capture.addresses[0][1]) if capture.addresses else capture.name
            step = Step("listener", capture.name, (
                f"{where}: iptables redirects connections to the workload here",
                f"original_dst restores the destination {address or '(unknown address)'}:{port}",
            ))
            return self._chains(capture, address, port).after(step)
        inbound = [info for info in self._on_port(infos, port) if info.inbound or not info.use_original_dst]
        chosen, why = self._by_address(inbound, address, port)
        if chosen is None:
            return _end(Verdict.bypassed, f"no listener takes {address}:{port} and the proxy captures no inbound "
                        "traffic: the connection goes straight to the application", code="no-listener")
        return self._chains(chosen, address, port).after(Step("listener", chosen.name, (why,)))

    # --- filter chain and network filters -------------------------------------------------------

    def _chains(self, info: ListenerInfo, address: str, port: int) -> _Tail:
        listener = self.view.listener(info.name)
        connection, facts = chain_match.inspect(listener, self.request, address, port)
        choice = chain_match.select_chain(listener, connection)
        rejected = tuple(Rejected(chain_match.chain_label(listener.filter_chains[index], index), (reason,))
                         for index, reason in choice.losers)
        if choice.undecidable:
            return _end(Verdict.undetermined, choice.undecidable, Step("filter-chain", "(undecided)", tuple(facts),
                                                                      rejected=rejected))
        if choice.chain is None or choice.index is None:
            facts.append("no filter chain matches and there is no default_filter_chain: Envoy closes the connection")
            return _end(Verdict.rejected, "no filter chain matches: the connection is closed",
                        Step("filter-chain", "none", tuple(facts), rejected=rejected), code="no-filter-chain")
        chain = choice.chain
        label = chain_match.chain_label(chain, choice.index)
        match = chain_match.describe_match(chain.filter_chain_match) if choice.index >= 0 else "no other chain matches"
        facts.append(f"matches {match}" if choice.index >= 0 else match)
        sources = self._config_sources(chain.metadata)
        step = Step("filter-chain", label, tuple(facts), sources, rejected)
        tls = self._tls(chain)
        if tls.outcome is not None:
            return tls.after(step)
        return self._filters(chain, connection, bool(tls.steps)).after(step, *tls.steps)

    def _config_sources(self, metadata: Any) -> tuple[Source, ...]:
        path = config_path_of(metadata)
        source = self.provenance.config(path) if path else None
        return (source,) if source is not None else ()

    def _tls(self, chain: Any) -> _Tail:
        """TLS termination on the chain: a step when it terminates, an end when the handshake fails."""
        socket = chain.transport_socket
        if not socket.HasField("typed_config") or type_name(socket.typed_config) != DOWNSTREAM_TLS:
            return _Tail()
        context = unpack(socket.typed_config)
        if context is None:
            return _Tail()
        transport = self.request.transport
        certs = [c.name for c in context.common_tls_context.tls_certificate_sds_secret_configs]
        istio = certs == ["default"]
        client_cert = context.require_client_certificate.value
        kind = "Istio mTLS" if istio and client_cert else ("mutual TLS" if client_cert else "TLS")
        step = Step("tls", kind, (f"the chain terminates {kind}" + (" (client certificate required)" if client_cert else ""),))
        if transport is Transport.plaintext:
            return _end(Verdict.rejected, f"the chain expects {kind} but the client sends plaintext: the handshake fails",
                        step, code="tls-handshake")
        if client_cert and transport is Transport.tls:
            return _end(Verdict.rejected, "the chain requires a client certificate (mTLS), which a plain TLS client "
                        "does not send: the handshake fails", step, code="tls-handshake")
        if transport is Transport.mtls and not istio:
            return _end(Verdict.rejected, "an Istio mTLS client does not accept this chain's certificate (not the "
                        "workload's Istio certificate): the handshake fails", step, code="tls-handshake")
        return _Tail([step])

    def _filters(self, chain: Any, connection: chain_match.Connection, terminated: bool) -> _Tail:
        request = self.request
        readable = terminated or request.transport is Transport.plaintext
        passed: list[str] = []
        for index, network_filter in enumerate(chain.filters):
            kind = type_name(network_filter.typed_config) if network_filter.HasField("typed_config") else ""
            config = unpack(network_filter.typed_config) if kind in (NETWORK_RBAC, HCM, TCP_PROXY) else None
            if kind == NETWORK_RBAC and config is not None:
                rest = chain.filters[index + 1:]
                return self._rbac(network_filter.name, config.rules, connection, http=False,
                                  then=lambda: self._terminal(rest, connection, readable, passed))
            if kind in (HCM, TCP_PROXY):
                return self._terminal(chain.filters[index:], connection, readable, passed)
            passed.append(network_filter.name)
        return _end(Verdict.undetermined, "the chain has no TCP proxy or HTTP connection manager explain can follow"
                    + (f" (filters: {', '.join(passed)})" if passed else ""))

    def _terminal(self, filters: Sequence[Any], connection: chain_match.Connection, readable: bool,
                  passed: list[str]) -> _Tail:
        for network_filter in filters:
            kind = type_name(network_filter.typed_config) if network_filter.HasField("typed_config") else ""
            config = unpack(network_filter.typed_config) if kind in (HCM, TCP_PROXY) else None
            if kind == TCP_PROXY and config is not None:
                return self._tcp_proxy(config, connection)
            if kind == HCM and config is not None:
                if not readable:
                    return _end(Verdict.rejected, "protocol error: the HTTP connection manager receives TLS bytes it "
                                "does not terminate", code="protocol-error")
                if not self.request.http:
                    return _end(Verdict.rejected, "protocol error: the chain expects HTTP but the connection carries "
                                "other bytes (TCP)", code="protocol-error")
                return self._http(config, connection)
            passed.append(network_filter.name)
        return _end(Verdict.undetermined, "the chain has no TCP proxy or HTTP connection manager explain can follow")

    def _rbac(self, name: str, rules: Any, connection: chain_match.Connection, *, http: bool,
              then: Callable[[], _Tail]) -> _Tail:
        decision = decide(rules, self.request, connection.dst_ip, connection.dst_port, http=http,
                          server_name=connection.server_name)
        sources = tuple(s for s in (self.provenance.policy(policy) for policy in (*decision.matched, *decision.undecided))
                        if s is not None)
        verdict = {True: "allowed", False: "denied", None: "undecided"}[decision.allowed]
        rejected = tuple(Rejected(policy, (why,), tuple(s for s in (self.provenance.policy(policy),) if s is not None))
                         for policy, why in decision.missed)
        step = Step("rbac", f"{name}: {decision.action} {verdict}", decision.reasons, sources, rejected)
        denial = (Outcome(Verdict.denied, "denied by RBAC: 403", 403, "rbac") if http
                  else Outcome(Verdict.denied, "denied by RBAC: the connection is closed", code="rbac"))
        if decision.allowed is False:
            return _Tail([step], denial)
        if decision.allowed is None:
            return _Tail([step], branches=[then().branch("if RBAC allows it"), Branch("if RBAC denies it", (), denial)])
        return then().after(step)

    # --- TCP ---------------------------------------------------------------------------------------

    def _tcp_proxy(self, config: Any, connection: chain_match.Connection) -> _Tail:
        dst = (connection.dst_ip, connection.dst_port)
        if config.cluster:
            step = Step("tcp-proxy", config.stat_prefix or config.cluster, (f"forwards the connection to {config.cluster}",))
            return self._cluster(config.cluster, dst).after(step)
        if config.HasField("weighted_clusters"):
            source = self.provenance.tcp_split(config.stat_prefix)
            step = Step("tcp-proxy", config.stat_prefix, ("splits connections between weighted clusters",),
                        (source,) if source is not None else ())
            return self._weighted(config.weighted_clusters.clusters, 0, dst).after(step)
        return _end(Verdict.undetermined, "the TCP proxy picks its cluster at run time (on-demand or a specifier)")

    def _cluster(self, name: str, dst: tuple[str, int]) -> _Tail:
        steps, outcome = cluster_steps(self.view, self.provenance, name, dst)
        return _Tail(steps, outcome)

    def _weighted(self, clusters: Sequence[Any], total: int, dst: tuple[str, int]) -> _Tail:
        branches = []
        for name, weight, percent in weights(clusters, total):
            if weight == 0:
                continue
            branches.append(self._cluster(name, dst).branch(f"weight {weight} ({percent:.4g}%)"))
        return _Tail(branches=branches)

    # --- HTTP ------------------------------------------------------------------------------------

    def _http(self, manager: Any, connection: chain_match.Connection) -> _Tail:
        request = self.request
        path = request.path
        if manager.normalize_path.value or manager.merge_slashes:
            path = normalize_path(path, manager.merge_slashes)
        facts = [f"{request.method} {request.authority}{request.path}"]
        if path != request.path:
            facts.append(f"path normalized to {path}")
        if manager.HasField("rds"):
            name = manager.rds.route_config_name
            hosts = (host_for_matching(request, False), host_for_matching(request, True))
            lookup = self.view.route_configuration(name, hosts)
            if lookup.found is None:
                why = lookup.why if not lookup.known else "it is not in the proxy's config (never received)"
                return _end(Verdict.undetermined, f"the routes come from RDS {name}, but {why}",
                            Step("route-config", name, tuple(facts)))
            config = lookup.found
            facts.insert(0, "from RDS")
        elif manager.HasField("route_config"):
            config = manager.route_config
            facts.insert(0, "inline in the HTTP connection manager")
        else:
            return _end(Verdict.undetermined, "the HTTP connection manager uses scoped routes, which explain does not "
                        "follow", Step("route-config", "(scoped)", tuple(facts)))
        step = Step("route-config", config.name or "(inline)", tuple(facts))
        return self._virtual_host(config, manager, connection, path).after(step)

    def _virtual_host(self, config: Any, manager: Any, connection: chain_match.Connection, path: str) -> _Tail:
        request = self.request
        choice = select_virtual_host(config, request)
        if choice.index is None:
            return _end(Verdict.rejected, f'no virtual host matches Host "{request.authority}": 404 (NR)',
                        Step("virtual-host", "none", (f'no domain matches "{request.authority}"',)), status=404,
                        code="no-virtual-host")
        vhost = config.virtual_hosts[choice.index]
        sources = self._config_sources(vhost.metadata) or self._service_sources(vhost.name)
        facts = [f'Host "{request.authority}" matches domain "{choice.domain}" ({choice.kind})']
        step = Step("virtual-host", vhost.name, tuple(facts), sources)
        tls_downstream = request.transport is not Transport.plaintext
        if vhost.require_tls in (1, 2) and not tls_downstream:
            location = f"https://{request.authority}{request.path}"
            return _end(Verdict.redirect, f"the virtual host requires TLS: 301 to {location}", step, status=301)
        if vhost.HasField("matcher"):
            return _end(Verdict.undetermined, "the virtual host picks routes with a matcher tree, which explain does "
                        "not evaluate", step)
        return self._routes(config, vhost, manager, connection, path, 0, []).after(step)

    def _service_sources(self, vhost_name: str) -> tuple[Source, ...]:
        host = vhost_name.rsplit(":", 1)[0]
        source = self.provenance.service(host) if host and "|" not in host else None
        return (source,) if source is not None else ()

    def _routes(self, config: Any, vhost: Any, manager: Any, connection: chain_match.Connection, path: str,
                start: int, rejected: list[Rejected]) -> _Tail:
        routes = vhost.routes
        tried, winner = match_route(routes[start:], self.request, path)
        rejected = list(rejected)
        for candidate in tried:
            index = start + candidate.index
            route = routes[index]
            if candidate.verdict is MatchVerdict.UNKNOWN:
                uncertain = [c.reason for c in candidate.checks if c.verdict is MatchVerdict.UNKNOWN]
                maybe = self._route(config, vhost, manager, connection, index, candidate.matched_reasons, rejected)
                assumed = [*rejected, Rejected(route_label(route, index), tuple(f"assumed not to match: {reason}"
                                                                             for reason in uncertain),
                                               self._route_sources(vhost, index))]
                otherwise = self._routes(config, vhost, manager, connection, path, index + 1, assumed)
                return _Tail(branches=[maybe.branch(f"if {route_label(route, index)} matches: "
                                                    + "; ".join(uncertain)), otherwise.branch("otherwise")])
            rejected.append(Rejected(route_label(route, index), tuple(candidate.reasons), self._route_sources(vhost, index)))
        if winner is None:
            return _end(Verdict.rejected, "no route matches: 404 (NR)",
                        Step("route", "none", ("no route of the virtual host matches",), rejected=tuple(rejected)),
                        status=404, code="no-route")
        index = start + winner.index
        return self._route(config, vhost, manager, connection, index, winner.matched_reasons, rejected)

    def _route_sources(self, vhost: Any, index: int) -> tuple[Source, ...]:
        route = vhost.routes[index]
        path = config_path_of(route.metadata)
        if path:
            source = self.provenance.route_rule(path, vhost.routes, index)
            return (source,) if source is not None else ()
        return self._service_sources(vhost.name)

    def _route(self, config: Any, vhost: Any, manager: Any, connection: chain_match.Connection, index: int,
               matched: Sequence[str], rejected: Sequence[Rejected]) -> _Tail:
        route = vhost.routes[index]
        facts = [f"matched: {'; '.join(matched)}"] + _route_facts(route)
        step = Step("route", route_label(route, index), tuple(facts), self._route_sources(vhost, index), tuple(rejected))
        return self._http_filters(list(manager.http_filters), 0, config, vhost, route, connection).after(step)

    def _http_filters(self, filters: Sequence[Any], start: int, config: Any, vhost: Any, route: Any,
                      connection: chain_match.Connection) -> _Tail:
        for position in range(start, len(filters)):
            http_filter = filters[position]
            if http_filter.disabled and http_filter.name not in route.typed_per_filter_config:
                continue
            kind = type_name(http_filter.typed_config) if http_filter.HasField("typed_config") else ""
            if kind == ROUTER:
                break
            override = _per_filter(http_filter.name, route, vhost, config)

            def rest(after: int = position + 1) -> _Tail:
                return self._http_filters(filters, after, config, vhost, route, connection)

            if kind == HTTP_RBAC:
                rules = self._http_rbac_rules(http_filter, override)
                if rules is None:
                    continue
                return self._rbac(http_filter.name, rules, connection, http=True, then=rest)
            if kind == HTTP_FAULT:
                fault = _fault(http_filter, override)
                if fault is not None:
                    return self._fault(http_filter.name, fault, rest)
            if kind == JWT_AUTHN:
                self.notes.append("JWT authentication (RequestAuthentication) runs first: a request with an invalid "
                                  "token is rejected with 401 whatever this explanation says")
            if kind == EXT_AUTHZ:
                allowed = rest()
                denial = Outcome(Verdict.denied, "denied by the external authorizer: 403", 403, "ext-authz")
                step = Step("ext-authz", http_filter.name, ("an external authorizer (CUSTOM policy) decides",))
                return _Tail([step], branches=[allowed.branch("if the external authorizer allows it"),
                                               Branch("if it denies it", (), denial)])
        return self._action(route, connection)

    def _http_rbac_rules(self, http_filter: Any, override: Any) -> Any | None:
        if override is not None and type_name(override) == HTTP_RBAC_PER_ROUTE:
            per_route = unpack(override)
            if per_route is not None:
                return per_route.rbac.rules if per_route.HasField("rbac") and per_route.rbac.HasField("rules") else None
        config = unpack(http_filter.typed_config)
        if config is None or not config.HasField("rules"):
            return None
        return config.rules

    def _fault(self, name: str, fault: Any, rest: Callable[[], _Tail]) -> _Tail:
        facts = []
        if fault.headers:
            checks = [header_check(header, self.request) for header in fault.headers]
            if combine(checks) is MatchVerdict.MISS:
                return rest()
        if fault.HasField("delay") and fault.delay.HasField("fixed_delay"):
            facts.append(f"delays {_percent(fault.delay.percentage):g}% of requests by "
                         f"{fault.delay.fixed_delay.ToMilliseconds() / 1000:g}s")
        if not (fault.HasField("abort") and (fault.abort.http_status or fault.abort.grpc_status)):
            after = rest()
            return after.after(Step("fault", name, tuple(facts))) if facts else after
        status = fault.abort.http_status
        share = _percent(fault.abort.percentage)
        what = f"HTTP {status}" if status else f"gRPC status {fault.abort.grpc_status}"
        facts.append(f"aborts {share:g}% of requests with {what}")
        step = Step("fault", name, tuple(facts))
        aborted = Outcome(Verdict.direct_response, f"aborted by fault injection: {what}", status or None, "fault")
        if share >= 100:
            return _Tail([step], aborted)
        return _Tail([step], branches=[Branch(f"{share:g}% of requests", (), aborted),
                                       rest().branch(f"the other {100 - share:g}%")])

    def _action(self, route: Any, connection: chain_match.Connection) -> _Tail:
        which = route.WhichOneof("action")
        dst = (connection.dst_ip, connection.dst_port)
        if which == "route":
            action = route.route
            specifier = action.WhichOneof("cluster_specifier")
            if specifier == "cluster":
                return self._cluster(action.cluster, dst)
            if specifier == "weighted_clusters":
                return self._weighted(action.weighted_clusters.clusters, action.weighted_clusters.total_weight.value, dst)
            if specifier == "cluster_header":
                values = self.request.header_values(action.cluster_header)
                if values:
                    return self._cluster(values[0], dst)
                return _end(Verdict.rejected, f"the route takes its cluster from header {action.cluster_header}, which "
                            "the request does not carry: 503", status=503, code="cluster-not-found")
            return _end(Verdict.undetermined, f"the route picks its cluster with {specifier}, which explain does not "
                        "evaluate")
        if which == "redirect":
            location, code = _redirect(route, self.request)
            return _end(Verdict.redirect, f"redirected: {code} to {location}", status=code)
        if which == "direct_response":
            response = route.direct_response
            body = response.body.inline_string or response.body.inline_bytes.decode(errors="replace")
            shown = f' "{body[:60]}"' if body else ""
            return _end(Verdict.direct_response, f"answered by the proxy: {response.status}{shown}", status=response.status)
        return _end(Verdict.undetermined, f"the route's action {which} does not forward the request")


def _address(info: ListenerInfo, port: int) -> str:
    for address, bound in info.addresses:
        if bound == port:
            return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return info.name


def _has_original_dst(listener: Any) -> bool:
    return any(
        (f.HasField("typed_config") and type_name(f.typed_config) == ORIGINAL_DST) or f.name == "envoy.filters.listener.original_dst"
        for f in listener.listener_filters
    )


def _per_filter(name: str, route: Any, vhost: Any, config: Any) -> Any | None:
    """The most specific per-filter config: route, then virtual host, then route configuration."""
    for holder in (route, vhost, config):
        if name in holder.typed_per_filter_config:
            return holder.typed_per_filter_config[name]
    return None


def _fault(http_filter: Any, override: Any) -> Any | None:
    config = unpack(override) if override is not None else unpack(http_filter.typed_config)
    if config is None or not (config.HasField("abort") or config.HasField("delay")):
        return None
    return config


def _percent(fraction: Any) -> float:
    denominator = {0: 100, 1: 10_000, 2: 1_000_000}.get(fraction.denominator, 100)
    return 100.0 * int(fraction.numerator) / denominator


def _route_facts(route: Any) -> list[str]:
    facts: list[str] = []
    if route.WhichOneof("action") != "route":
        return facts
    action = route.route
    if action.prefix_rewrite:
        facts.append(f'rewrites the path prefix to "{action.prefix_rewrite}"')
    if action.HasField("regex_rewrite"):
        facts.append(f'rewrites the path: "{action.regex_rewrite.pattern.regex}" -> "{action.regex_rewrite.substitution}"')
    if action.host_rewrite_literal:
        facts.append(f"rewrites Host to {action.host_rewrite_literal}")
    if action.HasField("timeout") and action.timeout.ToMilliseconds():
        facts.append(f"timeout {action.timeout.ToMilliseconds() / 1000:g}s")
    if action.HasField("retry_policy") and action.retry_policy.num_retries.value:
        facts.append(f"retries {action.retry_policy.num_retries.value} times on {action.retry_policy.retry_on}")
    for mirror in action.request_mirror_policies:
        facts.append(f"mirrors to {mirror.cluster}")
    return facts


def _redirect(route: Any, request: Request) -> tuple[str, int]:
    """Where a redirect action sends the request, and with which status."""
    redirect = route.redirect
    scheme = redirect.scheme_redirect or ("https" if redirect.https_redirect else request.scheme)
    host = redirect.host_redirect or request.authority.split(":", 1)[0]
    port = f":{redirect.port_redirect}" if redirect.port_redirect else ""
    if not redirect.host_redirect and not redirect.port_redirect and ":" in request.authority:
        port = ":" + request.authority.split(":", 1)[1]
    path = request.path
    if redirect.path_redirect:
        _, question, query = path.partition("?")
        path = redirect.path_redirect
        if question and "?" not in path:
            path += "?" + query  # the request's query string stays unless strip_query drops it
    elif redirect.prefix_rewrite:
        matched = route.match.prefix if route.match.WhichOneof("path_specifier") == "prefix" else ""
        path = redirect.prefix_rewrite + path[len(matched):]
    if redirect.strip_query:
        path = path.split("?", 1)[0]
    return f"{scheme}://{host}{port}{path}", _REDIRECT_CODES.get(redirect.response_code, 301)
