"""Istio's own analyzer test inputs, with the messages Istio's analyzer tests expect of them.

Each case runs one analyzer, by Istio's name, on the inputs plus Istio's default ingress
gateway, as Istio's test grid does (`analyzers_test.go`), and compares (code, origin) pairs as
a multiset (Gomega's ConsistOf). Objects without a namespace are in `default` here, where
Istio's test harness leaves them namespace-less: origins read `Gateway default/x` where Istio's
grid says `Gateway x`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshctl import analyze
from meshctl.analyze.inputs import gather
from meshctl.model.meshconfig import MeshConfig, read_mesh_config

TESTDATA = Path(__file__).parent / "istio" / "testdata"


@dataclass(frozen=True)
class Case:
    name: str
    inputs: tuple[str, ...]
    analyzer: str
    expected: tuple[tuple[str, str], ...]
    mesh_config: str = ""
    schema: tuple[tuple[str, str], ...] = field(default=())


CASES = [
    Case("gatewayNoWorkload", ("gateway-no-workload.yaml",), "gateway.IngressGatewayPortAnalyzer",
         (("IST0101", "Gateway default/httpbin-gateway"),),
         schema=(("IST0106", "Gateway default/httpbin-gateway"),)),
    Case("gatewayBadPort", ("gateway-no-port.yaml",), "gateway.IngressGatewayPortAnalyzer",
         (("IST0162", "Gateway default/httpbin-gateway"),)),
    Case("gatewayServiceMatchPod", ("gateway-custom-ingressgateway-svcselector.yaml",),
         "gateway.IngressGatewayPortAnalyzer", (("IST0162", "Gateway default/httpbin8002-gateway"),)),
    Case("conflicting gateways detect", ("conflicting-gateways.yaml",), "gateway.ConflictingGatewayAnalyzer",
         (("IST0145", "Gateway default/alpha"), ("IST0145", "Gateway default/beta"))),
    Case("conflicting gateways detect by sub selector", ("conflicting-gateways-subSelector.yaml",),
         "gateway.ConflictingGatewayAnalyzer",
         (("IST0145", "Gateway default/alpha"), ("IST0145", "Gateway default/beta"))),
    Case("certificate duplication in Gateway", ("gateway-duplicate-certificate.yaml",), "gateway.CertificateAnalyzer",
         (("IST0138", "Gateway istio-system/gateway-01-test-01"), ("IST0138", "Gateway istio-system/gateway-02-test-01"),
          ("IST0138", "Gateway istio-system/gateway-01-test-02"), ("IST0138", "Gateway default/gateway-01-test-03"))),
    Case("istioInjection", ("injection.yaml",), "injection.Analyzer",
         (("IST0102", "Namespace bar"), ("IST0103", "Pod default/noninjectedpod"), ("IST0123", "Namespace busted"))),
    Case("serviceMultipleDeployments", ("deployment-multi-service.yaml",), "deployment.MultiServiceAnalyzer",
         (("IST0116", "Deployment bookinfo/multiple-svc-multiple-prot"),
          ("IST0116", "Deployment bookinfo/multiple-without-port"),
          ("IST0137", "Deployment bookinfo/conflicting-ports")),
         schema=tuple(("IST0106", f"Service bookinfo/{name}") for name in (
             "details-http-v1", "conflicting-ports-2", "reviews-http-9080", "reviews-http-9090",
             "productpage-http-v1"))),
    Case("destinationrule with no cacert, mutual at destinationlevel and simple at port level",
         ("destinationrule-compound-simple-mutual.yaml",), "destinationrule.CaCertificateAnalyzer",
         (("IST0128", "DestinationRule default/db-mtls"), ("IST0129", "DestinationRule default/db-mtls"))),
    Case("missing Addresses and Protocol in Service Entry", ("serviceentry-missing-addresses-protocol.yaml",),
         "serviceentry.Analyzer",
         (("IST0134", "ServiceEntry default/service-entry-test-03"),
          ("IST0134", "ServiceEntry default/service-entry-test-04"),
          ("IST0134", "ServiceEntry default/service-entry-test-07"))),
    Case("missing Addresses and Protocol in Service Entry with ISTIO_META_DNS_AUTO_ALLOCATE enabled",
         ("serviceentry-missing-addresses-protocol.yaml",), "serviceentry.Analyzer", (),
         mesh_config="serviceentry-missing-addresses-protocol-mesh-cfg.yaml"),
]


def _analysis(case: Case) -> tuple[list[analyze.Finding], list[analyze.Finding]]:
    mesh = read_mesh_config(str(TESTDATA / case.mesh_config)) if case.mesh_config else MeshConfig()
    gathered = gather([str(TESTDATA / name) for name in case.inputs], "default", mesh)
    assert gathered.file_errors == []
    return analyze.run(gathered.resources, gathered.mesh, {case.analyzer}, gathered.assumed), gathered.schema_findings


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_istio_analyzer_case(case: Case) -> None:
    assert case.analyzer in {analyzer.name for analyzer in analyze.ANALYZERS}
    findings, schema = _analysis(case)
    assert Counter((item.code, item.origin) for item in findings) == Counter(case.expected)
    assert Counter((item.code, item.origin) for item in schema) == Counter(case.schema)
