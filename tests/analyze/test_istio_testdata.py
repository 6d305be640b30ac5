"""Istio's own analyzer test inputs, with the messages Istio's analyzer tests expect of them.

Each case is a row of the test grid in Istio's `pkg/config/analysis/analyzers/analyzers_test.go`:
one analyzer, by the name `istioctl analyze -L` lists it under, run on the inputs plus Istio's
default ingress gateway, and the messages compared as (code, origin) pairs, as a multiset (Gomega's
ConsistOf). `expected` is written as Istio's grid writes it: objects without a namespace have
none there, while meshctl puts them in `default`, so `Gateway httpbin-gateway` stands for
meshctl's `Gateway default/httpbin-gateway`.

A case where meshctl deliberately answers otherwise says why in `differs` and gives meshctl's
answer in `meshctl`; `schema` lists the IST0106 messages meshctl's loader adds on inputs that
are not valid Kubernetes or Istio objects (Istio's grid runs no schema analyzer there).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshctl import analyze
from meshctl.analyze.inputs import gather
from meshctl.config.kinds import KINDS
from meshctl.model.meshconfig import MeshConfig, read_mesh_config

TESTDATA = Path(__file__).parent / "istio" / "testdata"
CLUSTER_SCOPED = {info.kind for info in KINDS.values() if not info.namespaced}

Message = tuple[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    inputs: tuple[str, ...]
    analyzer: str
    expected: tuple[Message, ...]
    mesh_config: str = ""
    schema: tuple[Message, ...] = ()
    differs: str = ""
    meshctl: tuple[Message, ...] | None = None


def _case(name: str, inputs: str | tuple[str, ...], analyzer: str, *expected: Message, **options: object) -> Case:
    files = (inputs,) if isinstance(inputs, str) else inputs
    return Case(name, files, analyzer, expected, **options)  # type: ignore[arg-type]


def ns(kind: str, *names: str, code: str = "IST0106") -> tuple[Message, ...]:
    return tuple((code, f"{kind} {name}") for name in names)


GW_PORT = "gateway.IngressGatewayPortAnalyzer"
GW_CONFLICT = "gateway.ConflictingGatewayAnalyzer"
CA = "destinationrule.CaCertificateAnalyzer"
SUBSETS = "destinationrule.SubsetSelectPodAnalyzer"
PORT_NAME = "service.PortNameAnalyzer"
SIDECAR = "sidecar.SelectorAnalyzer"
UID = "applicationUID.Analyzer"
SE = "serviceentry.Analyzer"

DUPMATCHES: tuple[Message, ...] = (
    ("IST0130", "VirtualService duplicate-match"), ("IST0130", "VirtualService foo/sample-foo-cluster01"),
    ("IST0131", "VirtualService almost-duplicate-match"), ("IST0131", "VirtualService duplicate-match"),
    ("IST0130", "VirtualService duplicate-tcp-match"), ("IST0130", "VirtualService duplicate-empty-tcp"),
    ("IST0131", "VirtualService almost-duplicate-tcp-match"), ("IST0131", "VirtualService duplicate-tcp-match"),
    ("IST0130", "VirtualService none/tls-routing"), ("IST0131", "VirtualService none/tls-routing-almostmatch"),
    ("IST0131", "VirtualService none/tls-routing"), ("IST0131", "VirtualService non-method-get"),
    ("IST0131", "VirtualService overlapping-in-single-match"),
    ("IST0131", "VirtualService overlapping-in-two-matches"),
    ("IST0131", "VirtualService overlapping-mathes-with-different-methods"),
)

CASES = [
    _case("misannoted", "misannotated.yaml", "annotations.K8sAnalyzer",
          ("IST0108", "Service httpbin"), ("IST0125", "Pod invalid-annotations"), ("IST0107", "Pod grafana-test"),
          ("IST0107", "Deployment fortio-deploy"), ("IST0107", "Namespace staging"),
          ("IST0135", "Deployment fortio-deploy")),
    _case("gatewayNoWorkload", "gateway-no-workload.yaml", GW_PORT, ("IST0101", "Gateway httpbin-gateway"),
          schema=ns("Gateway", "httpbin-gateway")),
    _case("gatewayBadPort", "gateway-no-port.yaml", GW_PORT, ("IST0162", "Gateway httpbin-gateway")),
    _case("gatewayCorrectPort", "gateway-correct-port.yaml", GW_PORT),
    _case("gatewayCustomIngressGateway", "gateway-custom-ingressgateway.yaml", GW_PORT),
    _case("gatewayCustomIngressGatewayBadPort", "gateway-custom-ingressgateway-badport.yaml", GW_PORT,
          ("IST0162", "Gateway httpbin-gateway")),
    _case("gatewayCustomIngressGatewayBadPortWithoutTarget", "gateway-custom-ingressgateway-badport-notarget.yaml",
          GW_PORT, ("IST0162", "Gateway httpbin-gateway")),
    _case("gatewayCustomIngressGatewayTranslation", "gateway-custom-ingressgateway-translation.yaml", GW_PORT),
    _case("gatewayServiceMatchPod", "gateway-custom-ingressgateway-svcselector.yaml", GW_PORT,
          ("IST0162", "Gateway httpbin8002-gateway")),
    _case("conflicting gateways detect", "conflicting-gateways.yaml", GW_CONFLICT,
          ("IST0145", "Gateway alpha"), ("IST0145", "Gateway beta")),
    _case("gateways with different port are non-conflicting", "gateway-different-port.yaml", GW_CONFLICT),
    _case("conflicting gateways with multiple port declarations", "conflicting-gateways-multiple-ports.yaml",
          GW_CONFLICT, ("IST0145", "Gateway alpha"), ("IST0145", "Gateway beta"),
          schema=ns("Gateway", "default/beta", "default/alpha")),
    _case("conflicting gateways detect by sub selector", "conflicting-gateways-subSelector.yaml", GW_CONFLICT,
          ("IST0145", "Gateway alpha"), ("IST0145", "Gateway beta")),
    _case("conflicting gateways detect: no port", "conflicting-gateways-invalid-port.yaml", GW_CONFLICT,
          schema=ns("Gateway", "alpha", "beta")),
    _case("Analyze conflicting gateway with list type", "analyze-list-type.yaml", GW_CONFLICT,
          ("IST0145", "Gateway alpha"), ("IST0145", "Gateway alpha-l"), ("IST0145", "Gateway beta-l")),
    _case("certificate duplication in Gateway", "gateway-duplicate-certificate.yaml", "gateway.CertificateAnalyzer",
          ("IST0138", "Gateway istio-system/gateway-01-test-01"), ("IST0138", "Gateway istio-system/gateway-02-test-01"),
          ("IST0138", "Gateway istio-system/gateway-01-test-02"), ("IST0138", "Gateway default/gateway-01-test-03")),
    _case("istioInjection", "injection.yaml", "injection.Analyzer",
          ("IST0102", "Namespace bar"), ("IST0103", "Pod default/noninjectedpod"), ("IST0123", "Namespace busted"),
          differs="Istio's current grid also expects IST0123 on Namespaces multi-ns-1..3 of a newer injection.yaml "
                  "than the stored one; on the stored input its grid expected these three"),
    _case("portNameNotFollowConvention", "service-no-port-name.yaml", PORT_NAME,
          ("IST0118", "Service my-namespace1/my-service1"), ("IST0118", "Service my-namespace1/my-service1"),
          ("IST0118", "Service my-namespace2/my-service2"),
          schema=ns("Service", "my-namespace1/my-service1", "my-namespace1/my-service1")),
    _case("namedPort", "service-port-name.yaml", PORT_NAME),
    _case("unnamedPortInSystemNamespace", "service-no-port-name-system-namespace.yaml", PORT_NAME),
    _case("ExternalNameServiceTypeInvalidPortName", "incorrect-port-name-external-name-service-type.yaml", PORT_NAME,
          ("IST0150", "Service nginx-ns/nginx"), ("IST0150", "Service nginx-ns2/nginx-svc2"),
          ("IST0150", "Service nginx-ns3/nginx-svc3")),
    _case("ExternalNameServiceTypeValidPortName", "correct-port-name-external-name-service-type.yaml", PORT_NAME),
    _case("sidecarDefaultSelector", "sidecar-default-selector.yaml", SIDECAR,
          ("IST0111", "Sidecar ns2/has-conflict-2"), ("IST0111", "Sidecar ns2/has-conflict-1"),
          ("IST0167", "Sidecar ns-ambient/namespace-scoped"), ("IST0167", "Sidecar ns-ambient/pod-scoped"),
          schema=(*ns("Pod", "ns1/random-pod", "ns-ambient/random-pod-ambient"),
                  *ns("Sidecar", "ns-ambient/namespace-scoped", "ns-ambient/pod-scoped",
                      "ns-not-ambient/namespace-not-ambient", "ns-not-ambient-rev/namespace-not-ambient"))),
    _case("sidecarSelector", "sidecar-selector.yaml", SIDECAR,
          ("IST0101", "Sidecar default/maps-to-nonexistent"), ("IST0101", "Sidecar other/maps-to-different-ns"),
          ("IST0110", "Sidecar default/dupe-1"), ("IST0110", "Sidecar default/dupe-2"),
          ("IST0110", "Sidecar default/overlap-1"), ("IST0110", "Sidecar default/overlap-2"),
          schema=ns("Pod", "default/productpage", "other/productpage-other", "default/reviews", "default/ratings")),
    _case("virtualServiceConflictingMeshGatewayHosts", "virtualservice_conflictingmeshgatewayhosts.yaml",
          "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
          *ns("VirtualService", "team3/ratings", "team4/ratings", "foo/ratings", "bar/ratings", "foo/productpage",
              "foo/bogus-productpage", "team2/ratings", code="IST0109")),
    _case("virtualServiceConflictingMeshGatewayHostsWithExportTo",
          "virtualservice_conflictingmeshgatewayhosts_with_exportto.yaml",
          "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
          *ns("VirtualService", "foo/productpage", "bar/productpage", "foo/productpage-c", "bar/productpage-c",
              "foo/productpage-d", "bar/productpage-d", code="IST0109")),
    _case("virtualServiceDestinationHosts", "virtualservice_destinationhosts.yaml",
          "virtualservice.DestinationHostAnalyzer",
          *ns("VirtualService", "default/reviews-bogushost", "default/reviews-bookinfo-other",
              "default/reviews-mirror-bogushost", "default/reviews-bogusport", "istio-system/cross-namespace-details",
              "hello/hello-export-to-bogus", code="IST0101"),
          ("IST0112", "VirtualService default/reviews-2port-missing"),
          schema=(*ns("Service", "default/reviews-2port", "default/reviews-2port"),
                  *ns("ServiceEntry", "default-ignore/service-entry-ignore")),
          differs="Istio's current grid expects IST0101 twice on reviews-bogushost for a newer input than the stored "
                  "one, which has one bogus destination there; on the stored input its grid expected it once"),
    _case("virtualServiceDestinationRules", "virtualservice_destinationrules.yaml",
          "virtualservice.DestinationRuleAnalyzer",
          *ns("VirtualService", "default/reviews-bogussubset", "default/reviews-mirror-bogussubset", code="IST0101")),
    _case("virtualServiceGateways", "virtualservice_gateways.yaml", "virtualservice.GatewayAnalyzer",
          ("IST0101", "VirtualService httpbin-bogus"), ("IST0132", "VirtualService default/cross-test"),
          ("IST0132", "VirtualService httpbin-bogus"), ("IST0132", "VirtualService httpbin"),
          differs="a missing gateway is reported once, as IST0101; Istio also reports IST0132 on httpbin-bogus, "
                  "saying none of its hosts is among the hosts of the gateway that does not exist",
          meshctl=(("IST0101", "VirtualService httpbin-bogus"), ("IST0132", "VirtualService default/cross-test"),
                   ("IST0132", "VirtualService httpbin")),
          schema=(*ns("Gateway", "default/httpbin-gateway", "another/crossnamespace-gw"),
                  *ns("VirtualService", "default/httpbin", "default/httpbin-bogus", "default/httpbin-mesh",
                      "default/httpbin-mesh", "default/cross-test"))),
    _case("virtualServiceJWTClaimRoute", "virtualservice_jwtclaimroute.yaml", "virtualservice.JWTClaimRouteAnalyzer",
          ("IST0149", "VirtualService foo")),
    _case("virtualServiceInternalGatewayRef", "virtualservice_internal_gateway_ref.yaml",
          "virtualservice.GatewayAnalyzer", ("IST0165", "VirtualService httpbin")),
    _case("host defined in virtualservice not found in the gateway", "virtualservice_host_not_found_gateway.yaml",
          "virtualservice.GatewayAnalyzer",
          *ns("VirtualService", "default/testing-service-02-test-01", "default/testing-service-02-test-02",
              "default/testing-service-02-test-03", "default/testing-service-03-test-04", code="IST0132"),
          schema=ns("Gateway", "istio-system/testing-gateway-01-test-04")),
    _case("host defined in virtualservice not found in the gateway(beta version)",
          "virtualservice_host_not_found_gateway_beta.yaml", "virtualservice.GatewayAnalyzer",
          *ns("VirtualService", "default/testing-service-02-test-01", "default/testing-service-02-test-02",
              "default/testing-service-02-test-03", "default/testing-service-03-test-04", code="IST0132"),
          schema=ns("Gateway", "istio-system/testing-gateway-01-test-04")),
    _case("host defined in virtualservice not found in the gateway with ns",
          "virtualservice_host_not_found_gateway_with_ns_prefix.yaml", "virtualservice.GatewayAnalyzer",
          ("IST0132", "VirtualService default/testing-service-01-test-01")),
    _case("Route Rule no effect on Ingress", "virtualservice_route_rule_no_effects_ingress.yaml",
          "virtualservice.DestinationHostAnalyzer",
          ("IST0140", "VirtualService default/testing-service-01-test-01"),
          schema=ns("Service", "default/ratings")),
    _case("dupmatches", ("virtualservice_dupmatches.yaml", "virtualservice_overlappingmatches.yaml"),
          "schema.ValidationAnalyzer.VirtualService",
          *DUPMATCHES,
          differs="Istio's grid expects nothing of many-dups-case, a VirtualService whose 14 HTTP rules repeat two "
                  "matches; meshctl reports each repeated rule (IST0130) and match (IST0131), 12 of each, since "
                  "those rules can never be reached",
          meshctl=DUPMATCHES + ns("VirtualService", *["default/many-dups-case"] * 12, code="IST0130")
          + ns("VirtualService", *["default/many-dups-case"] * 12, code="IST0131")),
    _case("serviceMultipleDeployments", "deployment-multi-service.yaml", "deployment.MultiServiceAnalyzer",
          ("IST0116", "Deployment bookinfo/multiple-svc-multiple-prot"),
          ("IST0116", "Deployment bookinfo/multiple-without-port"),
          ("IST0137", "Deployment bookinfo/conflicting-ports"),
          schema=ns("Service", "bookinfo/details-http-v1", "bookinfo/conflicting-ports-2", "bookinfo/reviews-http-9080",
                    "bookinfo/reviews-http-9090", "bookinfo/productpage-http-v1")),
    _case("deploymentMultiServicesInDifferentNamespace", "deployment-multi-service-different-ns.yaml",
          "deployment.MultiServiceAnalyzer", schema=ns("Service", "bookinfo2/conflicting-ports-1")),
    _case("serviceWithNoSelector", "deployment-service-no-selector.yaml", "deployment.MultiServiceAnalyzer"),
    _case("authorizationpolicies", "authorizationpolicies.yaml", "auth.AuthorizationPoliciesAnalyzer",
          ("IST0127", "AuthorizationPolicy istio-system/meshwide-httpbin-v1"),
          ("IST0127", "AuthorizationPolicy httpbin-empty/httpbin-empty-namespace-wide"),
          ("IST0127", "AuthorizationPolicy httpbin/httpbin-nopods"),
          ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-ns"),
          ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-ns"),
          ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-not-ns"),
          ("IST0101", "AuthorizationPolicy httpbin/httpbin-bogus-not-ns"),
          ("IST0127", "AuthorizationPolicy test-ambient/no-workload"),
          schema=ns("ServiceEntry", "httpbin/istio")),
    _case("destinationrule with no cacert, simple at destinationlevel", "destinationrule-simple-destination.yaml", CA,
          ("IST0128", "DestinationRule db-tls")),
    _case("destinationrule with no cacert, mutual at destinationlevel", "destinationrule-mutual-destination.yaml", CA,
          ("IST0128", "DestinationRule db-mtls")),
    _case("destinationrule with no cacert, simple at portlevel", "destinationrule-simple-port.yaml", CA,
          ("IST0129", "DestinationRule db-tls")),
    _case("destinationrule with credentialname, simple at destinationlevel, no workloadSelector",
          "destinationrule-simple-destination-credentialname.yaml", CA, ("IST0128", "DestinationRule db-tls")),
    _case("destinationrule with credentialname, simple at destinationlevel, workloadSelector",
          "destinationrule-simple-destination-credentialname-selector.yaml", CA),
    _case("destinationrule with credentialname, simple at portlevel, no workloadSelector",
          "destinationrule-simple-port-credentialname.yaml", CA, ("IST0129", "DestinationRule db-tls")),
    _case("destinationrule with credentialname, simple at portlevel, workloadSelector",
          "destinationrule-simple-port-credentialname-selector.yaml", CA),
    _case("destinationrule with no cacert, mutual at portlevel", "destinationrule-mutual-port.yaml", CA,
          ("IST0129", "DestinationRule db-mtls")),
    _case("destinationrule with no cacert, mutual at destinationlevel and simple at port level",
          "destinationrule-compound-simple-mutual.yaml", CA,
          ("IST0128", "DestinationRule default/db-mtls"), ("IST0129", "DestinationRule default/db-mtls")),
    _case("destinationrule with no cacert, simple at destinationlevel and mutual at port level",
          "destinationrule-compound-mutual-simple.yaml", CA,
          ("IST0129", "DestinationRule db-mtls"), ("IST0128", "DestinationRule db-mtls")),
    _case("destinationrule with both cacerts", "destinationrule-with-ca.yaml", CA),
    _case("Application Pod SecurityContext with UID 1337", "pod-sec-uid.yaml", UID, ("IST0144", "Pod pod-sec-uid")),
    _case("Application Container SecurityContext with UID 1337", "pod-con-sec-uid.yaml", UID,
          ("IST0144", "Pod con-sec-uid")),
    _case("Deployment Pod SecurityContext with UID 1337", "deployment-pod-sec-uid.yaml", UID,
          ("IST0144", "Deployment deploy-pod-sec-uid")),
    _case("Deployment Container SecurityContext with UID 1337", "deployment-con-sec-uid.yaml", UID,
          ("IST0144", "Deployment deploy-con-sec-uid")),
    _case("missing Addresses and Protocol in Service Entry", "serviceentry-missing-addresses-protocol.yaml", SE,
          *ns("ServiceEntry", "default/service-entry-test-03", "default/service-entry-test-04",
              "default/service-entry-test-07", code="IST0134")),
    _case("missing Addresses and Protocol in Service Entry with ISTIO_META_DNS_AUTO_ALLOCATE enabled",
          "serviceentry-missing-addresses-protocol.yaml", SE,
          mesh_config="serviceentry-missing-addresses-protocol-mesh-cfg.yaml"),
    _case("DestinationRuleWithFakeHost", "destinationrule-with-fake-host.yaml", SUBSETS,
          ("IST0174", "DestinationRule default/fake-host"),
          differs="the input has no Service, ServiceEntry or workload: meshctl reads Istio config alone as not "
                  "describing the registry, as istioctl analyze without a cluster skips this analyzer; the same "
                  "input with any Service gets Istio's IST0174 (test_fake_host_with_a_registry)",
          meshctl=()),
    _case("DestinationRuleSubsetsNotSelectPods", "destinationrule-subsets-not-select-pods.yaml", SUBSETS,
          ("IST0173", "DestinationRule default/subsets-not-select-pods"),
          differs="the input has no pod, Deployment or WorkloadEntry: meshctl judges subsets only when the input "
                  "has workloads (a repository of Services and Istio config is not a cluster without pods), as "
                  "istioctl analyze without a cluster skips this analyzer; with any workload in the input it "
                  "reports Istio's IST0173 (test_subsets_with_workloads_in_the_input)",
          meshctl=()),
    _case("DestinationRuleSubsetsWithTopologyLabels", "destinationrule-subsets-with-topology-labels.yaml", SUBSETS),
    _case("DestinationRuleEmptyTopologyLabels", "destinationrule-empty-topology-labels.yaml", SUBSETS,
          ("IST0173", "DestinationRule default/empty-topology-labels")),
]


def _meshctl_origin(origin: str) -> str:
    """Istio's grid leaves namespace-less objects without a namespace; meshctl puts them in
    `default` (as istioctl analyze does outside its test harness)."""
    kind, _, name = origin.partition(" ")
    if "/" in name or kind in CLUSTER_SCOPED:
        return origin
    return f"{kind} default/{name}"


def _analysis(case: Case) -> tuple[list[analyze.Finding], list[analyze.Finding]]:
    mesh = read_mesh_config(str(TESTDATA / case.mesh_config)) if case.mesh_config else MeshConfig()
    gathered = gather([str(TESTDATA / name) for name in case.inputs], "default", mesh)
    assert gathered.file_errors == []
    findings = analyze.run(gathered.resources, gathered.mesh, {case.analyzer}, gathered.assumed)
    return findings, gathered.schema_findings


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_istio_analyzer_case(case: Case) -> None:
    assert case.analyzer in {analyzer.name for analyzer in analyze.ANALYZERS}
    findings, schema = _analysis(case)
    wanted = case.meshctl if case.meshctl is not None else case.expected
    assert Counter((item.code, item.origin) for item in findings) == Counter(
        (code, _meshctl_origin(origin)) for code, origin in wanted)
    assert Counter((item.code, item.origin) for item in schema) == Counter(
        (code, _meshctl_origin(origin)) for code, origin in case.schema)


def test_fake_host_with_a_registry(tmp_path: Path) -> None:
    """The IST0174 Istio expects of destinationrule-with-fake-host.yaml, once the input names
    any Service (so that it describes the registry)."""
    service = tmp_path / "service.yaml"
    service.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: real\nspec:\n  ports:\n  - name: http\n"
                       "    port: 80\n")
    gathered = gather([str(TESTDATA / "destinationrule-with-fake-host.yaml"), str(service)], "default", MeshConfig())
    findings = analyze.run(gathered.resources, gathered.mesh, {SUBSETS}, gathered.assumed)
    assert [(item.code, item.origin, item.message) for item in findings] == [
        ("IST0174", "DestinationRule default/fake-host",
         "The host fake-svc.default.svc.cluster.local defined in the DestinationRule does not match any services in "
         "the mesh.")]


def test_subsets_with_workloads_in_the_input(tmp_path: Path) -> None:
    """The IST0173 Istio expects of destinationrule-subsets-not-select-pods.yaml, once the input
    has a workload (here one that the Service does not select)."""
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: other\n  labels: {app: other}\nspec:\n"
                   "  containers:\n  - name: app\n")
    gathered = gather([str(TESTDATA / "destinationrule-subsets-not-select-pods.yaml"), str(pod)], "default",
                      MeshConfig())
    findings = analyze.run(gathered.resources, gathered.mesh, {SUBSETS}, gathered.assumed)
    assert [(item.code, item.origin, item.message) for item in findings] == [
        ("IST0173", "DestinationRule default/subsets-not-select-pods",
         "The Subset fake defined in the DestinationRule does not select any pods. Which may lead to 503 UH "
         "(NoHealthyUpstream).")]
