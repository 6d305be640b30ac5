"""Istio's own inbound simulation cases (`pilot/pkg/networking/core/sidecar_simulation_test.go`,
TestInbound), written again against meshctl's translation and answered by `explain`.

Istio's test gives its proxy (1.1.1.1) three ports through a ServiceEntry with that endpoint:
70 TCP, 80 HTTP, 81 unnamed (protocol sniffing); here the same ports come from a Kubernetes
Service selecting the pod, as meshctl derives inbound ports. Each call is made in plaintext, in
TLS and in Istio mTLS under a mesh-wide PeerAuthentication of DISABLE, PERMISSIVE and STRICT,
and must end where Istio's simulation says: the same filter chain, virtual host and cluster,
or the same failure (no filter chain, TLS handshake, protocol error).
"""

from __future__ import annotations


import pytest

from explain_support import Direction, Result, Transport, result, run, subject

MESH = """apiVersion: v1
kind: Service
metadata: {name: se, namespace: default}
spec:
  selector: {app: foo}
  ports:
  - {name: tcp, port: 70}
  - {name: http, port: 80}
  - {name: auto, port: 81}
---
apiVersion: v1
kind: Pod
metadata: {name: foo, namespace: default, labels: {app: foo}}
spec: {containers: [{name: app, image: app}]}
status: {podIP: 1.1.1.1}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: MODE}
"""

NO_CHAIN = Result(error="no-filter-chain")
MTLS_ERROR = Result(error="tls-handshake")
PROTOCOL = Result(error="protocol-error")


def inbound(cluster: str, vhost: str = "", chain: str = "", listener: str = "") -> Result:
    return Result(listener=listener, chain=chain, vhost=vhost, cluster=cluster)


# (name, port, protocol, transport) -> results under DISABLE, PERMISSIVE, STRICT, as in TestInbound.
CASES = [
    ("tcp", 70, "tcp", Transport.plaintext, inbound("inbound|70||"), inbound("inbound|70||"), NO_CHAIN),
    ("http to tcp", 70, "http", Transport.plaintext, inbound("inbound|70||"), inbound("inbound|70||"), NO_CHAIN),
    ("tls to tcp", 70, "tcp", Transport.tls, inbound("inbound|70||"), inbound("inbound|70||"), MTLS_ERROR),
    ("https to tcp", 70, "http", Transport.tls, inbound("inbound|70||"), inbound("inbound|70||"), MTLS_ERROR),
    ("mtls tcp to tcp", 70, "tcp", Transport.mtls, inbound("inbound|70||"), inbound("inbound|70||"),
     inbound("inbound|70||")),
    ("mtls http to tcp", 70, "http", Transport.mtls, inbound("inbound|70||"), inbound("inbound|70||"),
     inbound("inbound|70||")),
    ("http", 80, "http", Transport.plaintext, inbound("inbound|80||", "inbound|http|80"),
     inbound("inbound|80||", "inbound|http|80"), NO_CHAIN),
    ("tls to http", 80, "tcp", Transport.tls, PROTOCOL, NO_CHAIN, MTLS_ERROR),
    ("https to http", 80, "http", Transport.tls, PROTOCOL, NO_CHAIN, MTLS_ERROR),
    ("mtls to http", 80, "http", Transport.mtls, PROTOCOL, inbound("inbound|80||", "inbound|http|80"),
     inbound("inbound|80||", "inbound|http|80")),
    ("tcp to http", 80, "tcp", Transport.plaintext, PROTOCOL, PROTOCOL, NO_CHAIN),
    ("auto port http", 81, "http", Transport.plaintext, inbound("inbound|81||", "inbound|http|81"),
     inbound("inbound|81||", "inbound|http|81"), NO_CHAIN),
    ("auto port http2", 81, "http2", Transport.plaintext, inbound("inbound|81||", "inbound|http|81"),
     inbound("inbound|81||", "inbound|http|81"), NO_CHAIN),
    ("auto port tcp", 81, "tcp", Transport.plaintext, inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"),
     inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"), NO_CHAIN),
    ("tls to auto port", 81, "tcp", Transport.tls, inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"),
     inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"), MTLS_ERROR),
    ("https to auto port", 81, "http", Transport.tls, inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"),
     inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"), MTLS_ERROR),
    ("mtls tcp to auto port", 81, "tcp", Transport.mtls, inbound("inbound|81||"),
     inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound"),
     inbound("inbound|81||", chain="0.0.0.0_81", listener="virtualInbound")),
    ("mtls http to auto port", 81, "http", Transport.mtls, inbound("inbound|81||"),
     inbound("inbound|81||", "inbound|http|81"), inbound("inbound|81||", "inbound|http|81")),
    ("passthrough http", 82, "http", Transport.plaintext,
     inbound("InboundPassthroughCluster", chain="virtualInbound-catchall-http"),
     inbound("InboundPassthroughCluster", chain="virtualInbound-catchall-http"), NO_CHAIN),
    ("passthrough tcp", 82, "tcp", Transport.plaintext, inbound("InboundPassthroughCluster", chain="virtualInbound"),
     inbound("InboundPassthroughCluster", chain="virtualInbound"), NO_CHAIN),
    ("passthrough tls", 82, "tcp", Transport.tls, inbound("InboundPassthroughCluster", chain="virtualInbound"),
     inbound("InboundPassthroughCluster"), MTLS_ERROR),
    ("passthrough https", 82, "http", Transport.tls, inbound("InboundPassthroughCluster"),
     inbound("InboundPassthroughCluster"), MTLS_ERROR),
    ("passthrough mtls", 82, "http", Transport.mtls, inbound("InboundPassthroughCluster"),
     inbound("InboundPassthroughCluster"), inbound("InboundPassthroughCluster")),
]
MODES = ("DISABLE", "PERMISSIVE", "STRICT")


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    directory = tmp_path_factory.mktemp("inbound")
    return {mode: subject(directory, MESH.replace("MODE", mode), "foo", f"{mode}.yaml") for mode in MODES}


def _compare(expected: Result, got: Result) -> None:
    """Only the fields Istio's expectation names are compared, as `simulation.Result.Matches` does."""
    if expected.error:
        assert got.error == expected.error, got
        return
    assert not got.error, got
    for field in ("listener", "chain", "vhost", "route", "cluster"):
        wanted = getattr(expected, field)
        if wanted:
            assert getattr(got, field) == wanted, (field, got)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_inbound_call(proxies: dict[str, object], mode: str, case: tuple) -> None:
    name, port, protocol, transport, *expected = case
    scheme = "tcp" if protocol == "tcp" else "http"
    explanation = run(proxies[mode], f"{scheme}://1.1.1.1:{port}/", direction=Direction.inbound,  # type: ignore[arg-type]
                      transport=transport, http2=protocol == "http2")
    _compare(expected[MODES.index(mode)], result(explanation))
