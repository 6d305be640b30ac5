"""Reading a mesh config: MeshConfig YAML or the `istio` ConfigMap, istiod's defaults and merge
rules, and refusal of anything Istio's API does not have (FILE:LINE: field: why, exit 65)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.errors import BadInputError
from meshctl.model.meshconfig import MeshConfig, mesh_config_text, read_mesh_config
from testsupport import EXAMPLES, run_cli

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    accessLogFile: /dev/stdout
    defaultConfig:
      discoveryAddress: istiod.istio-system.svc:15012
      proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}
    enablePrometheusMerge: true
    extensionProviders:
    - name: envoy
      envoyFileAccessLog: {path: /dev/stderr}
    - name: opa
      envoyExtAuthzGrpc: {service: opa.opa.svc.cluster.local, port: 9191, timeout: 1s}
    rootNamespace: istio-system
    trustDomain: cluster.local
    trustDomainAliases: [td2, old-td, td2]
  meshNetworks: 'networks: {}'
"""


def test_defaults_are_istiods_code_defaults() -> None:
    mesh = MeshConfig()
    assert (mesh.connect_timeout, mesh.dns_refresh_rate) == (10 * 10**9, 60 * 10**9)
    assert (mesh.outbound_mode, mesh.inbound_mode, mesh.enable_auto_mtls) == ("ALLOW_ANY", "PASSTHROUGH", True)
    assert (mesh.root_namespace, mesh.trust_domain, mesh.proxy_listen_port) == ("istio-system", "cluster.local", 15001)
    assert mesh.default_service_export_to == ("*",) and mesh.locality_lb_setting is not None
    assert [provider.name for provider in mesh.extension_providers] == ["prometheus", "stackdriver", "envoy"]
    assert mesh_config_text("", "empty.yaml") == mesh


def test_the_whole_configmap_is_read_and_merged_as_istiod_does(tmp_path: Path) -> None:
    file = tmp_path / "istio.yaml"
    file.write_text(CONFIGMAP)
    mesh = read_mesh_config(str(file))
    assert mesh.access_log_file == "/dev/stdout"
    assert mesh.metadata("ISTIO_META_DNS_CAPTURE") == "true"
    # injection hands the proxy the whole defaultConfig, fields xDS does not read included
    assert mesh.default_config.fields == {"discoveryAddress": "istiod.istio-system.svc:15012",
                                          "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}
    assert (mesh.mesh_id, mesh.mesh_identity) == ("", "cluster.local")
    assert mesh.trust_domain_aliases == ("old-td", "td2")
    assert [provider.name for provider in mesh.extension_providers] == ["prometheus", "stackdriver", "envoy", "opa"]
    opa = mesh.provider("opa")
    assert opa is not None and opa.envoy_ext_authz_grpc is not None
    assert (opa.envoy_ext_authz_grpc.service, opa.envoy_ext_authz_grpc.port) == ("opa.opa.svc.cluster.local", 9191)


@pytest.mark.parametrize(("text", "expected"), [
    ("outboundTrafficPolicy: {mode: ALLOW_ALL}\n",
     "mesh.yaml:1: outboundTrafficPolicy.mode: invalid value 'ALLOW_ALL': must be one of REGISTRY_ONLY, ALLOW_ANY, "
     "ALLOW_ANY_DYNAMIC_DNS"),
    ("trustDomain: td\nenableAutoMTLS: false\n",
     "mesh.yaml:2: enableAutoMTLS: unknown field 'enableAutoMTLS' (did you mean 'enableAutoMtls'?)"),
    ("defaultConfig:\n  proxyMetdata: {A: b}\n",
     "mesh.yaml:2: defaultConfig.proxyMetdata: unknown field 'proxyMetdata' (did you mean 'proxyMetadata'?)"),
    ("connectTimeout: soon\n",
     "mesh.yaml:1: connectTimeout: invalid duration 'soon' (use e.g. '10s', '500ms', '1m30s')"),
    ("defaultConfig:\n  proxyHeaders:\n    forwardedClientCert: APPEND\n",
     "mesh.yaml:3: defaultConfig.proxyHeaders.forwardedClientCert: invalid value 'APPEND': must be one of UNDEFINED, "
     "SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY"),
    ("defaultConfig:\n  proxyHeaders:\n    setCurrentClientCertDetails: {subject: yes please}\n",
     "mesh.yaml:3: defaultConfig.proxyHeaders.setCurrentClientCertDetails.subject: expected a boolean, got a string"),
    ("extensionProviders:\n- name: Bad_Name\n  envoyExtAuthzHttp: {service: a, port: 70000}\n",
     "mesh.yaml:2: extensionProviders[0].name: invalid provider name 'Bad_Name': at most 63 lower-case letters, "
     "digits and '-', starting and ending with a letter or digit"),
    ("extensionProviders:\n- name: opa\n  envoyExtAuthzGrpc:\n    service: opa\n    port: 9191\n    pathPrefix: /x\n",
     "mesh.yaml:6: extensionProviders[0].envoyExtAuthzGrpc.pathPrefix: not a field of a gRPC authorizer "
     "(envoyExtAuthzHttp has it)"),
    ("extensionProviders:\n- name: opa\n  envoyExtAuthzHttp:\n    service: opa\n    port: 9191\n    timeout: soon\n",
     "mesh.yaml:6: extensionProviders[0].envoyExtAuthzHttp.timeout: invalid duration 'soon' "
     "(use e.g. '10s', '500ms', '1m30s')"),
])
def test_bad_fields_are_refused_at_their_line(text: str, expected: str) -> None:
    with pytest.raises(BadInputError) as raised:
        mesh_config_text(text, "mesh.yaml")
    assert expected in raised.value.problems


def test_an_authorizer_is_typed_down_to_every_ext_authz_knob() -> None:
    """AuthorizationPolicy CUSTOM reads its provider from this one model (no reader of its own)."""
    mesh = mesh_config_text("""
extensionProviders:
- name: ext
  envoyExtAuthzHttp:
    service: foo/ext.foo.svc.cluster.local
    port: 8000
    timeout: 250ms
    failOpen: true
    pathPrefix: /check
    includeRequestHeadersInCheck: [x-user]
    includeAdditionalHeadersInCheck: {x-from: mesh}
    includeRequestBodyInCheck: {maxRequestBytes: 1024, packAsBytes: true}
    headersToUpstreamOnAllow: [x-verdict]
""", "mesh.yaml")
    provider = mesh.provider("ext")
    assert provider is not None and provider.envoy_ext_authz_grpc is None
    authorizer = provider.authorizer
    assert authorizer is not None and authorizer is provider.envoy_ext_authz_http
    assert (authorizer.port, authorizer.timeout, authorizer.fail_open) == (8000, 250_000_000, True)
    assert authorizer.include_additional_headers_in_check == {"x-from": "mesh"}
    assert authorizer.include_request_body_in_check is not None
    assert (authorizer.include_request_body_in_check.max_request_bytes,
            authorizer.include_request_body_in_check.pack_as_bytes) == (1024, True)
    envoy = mesh.provider("envoy")  # a built-in access log provider: no authorizer
    assert envoy is not None and envoy.authorizer is None


def test_a_bad_field_in_the_configmap_names_its_line_in_the_file(tmp_path: Path) -> None:
    file = tmp_path / "istio.yaml"
    file.write_text(CONFIGMAP.replace("    rootNamespace: istio-system\n", "    rootNamespce: istio-system\n"))
    with pytest.raises(BadInputError) as raised:
        read_mesh_config(str(file))
    assert raised.value.problems == [
        f"{file}:16: rootNamespce: unknown field 'rootNamespce' (did you mean 'rootNamespace'?)"]


@pytest.mark.parametrize("command", [
    ["translate", "-f", str(EXAMPLES / "bookinfo"), "-p", "deploy/productpage-v1"],
    ["validate", "-f", str(EXAMPLES / "bookinfo")],
    ["bootstrap", "deploy/productpage-v1", "--config-dir", str(EXAMPLES / "bookinfo")],
    ["serve", "--config-dir", str(EXAMPLES / "bookinfo")],
])
def test_every_command_refuses_a_bad_mesh_config_with_exit_65(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              command: list[str]) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("outboundTrafficPolicy:\n  mode: NOPE\n")
    code, out, err = run_cli(capsys, *command, "--mesh-config", str(mesh))
    assert (code, out) == (65, "")
    assert f"{mesh}:2: outboundTrafficPolicy.mode: invalid value 'NOPE'" in err


def test_translate_renders_with_the_mesh_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
    code, out, _ = run_cli(capsys, "translate", "-f", str(EXAMPLES / "bookinfo"), "-p", "deploy/productpage-v1",
                           "-t", "routes", "--mesh-config", str(mesh))
    assert code == 0 and "block_all" in out and "allow_any" not in out


def test_bootstrap_carries_proxy_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("defaultConfig: {proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true', OTHER: x}}\n")
    code, out, _ = run_cli(capsys, "bootstrap", "deploy/productpage-v1", "--config-dir", str(EXAMPLES / "bookinfo"),
                           "-o", "json", "--mesh-config", str(mesh))
    assert code == 0
    assert '"DNS_CAPTURE": "true"' in out and "OTHER" not in out
