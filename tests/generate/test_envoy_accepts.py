"""Real Envoy judges everything the translator can emit (envoy --mode validate on a static bootstrap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import HttpConnectionManager

from meshctl.config.loader import load
from meshctl.envoybin import validate_bootstrap
from meshctl.generate.bootstrap import static_bootstrap
from meshctl.model.meshconfig import mesh_config_text
from meshctl.model.snapshot import build_snapshot

KITCHEN_SINK = Path(__file__).parent / "data" / "kitchen-sink.yaml"


def _envoy_verdict(snapshot, config_for, target: str) -> str:
    proxy = snapshot.proxy(target)
    config = config_for(snapshot, target)
    verdict = validate_bootstrap(static_bootstrap(proxy, config))
    assert verdict.ok, verdict.output
    return verdict.output


@pytest.mark.parametrize("target", ["deploy/web.shop", "deploy/api-v1.shop", "deploy/db.shop", "deploy/cache.shop"])
def test_every_feature_at_once_is_accepted_by_envoy(mesh, config_for, target: str) -> None:
    assert "OK" in _envoy_verdict(mesh(KITCHEN_SINK), config_for, target)


def test_validation_really_rejects_broken_config(mesh, config_for) -> None:
    """The oracle is not a rubber stamp: a negative connect timeout is refused."""
    snapshot = mesh(KITCHEN_SINK)
    proxy = snapshot.proxy("deploy/web.shop")
    config = config_for(snapshot, "deploy/web.shop")
    config.clusters[0].connect_timeout.seconds = -5
    verdict = validate_bootstrap(static_bootstrap(proxy, config))
    assert not verdict.ok
    assert "connect_timeout" in verdict.output.lower() or "duration" in verdict.output.lower()



POLICIES = Path(__file__).parent / "data" / "policies.yaml"
BOOKINFO = Path(__file__).parents[2] / "examples" / "bookinfo"


def test_security_policies_are_accepted_by_envoy(config_for) -> None:
    """RBAC (ALLOW, DENY, AUDIT, dry run, every matcher), CUSTOM with a gRPC authorizer, and
    jwt_authn with inline and remote keys, on HTTP and TCP inbound chains."""
    result = load([str(BOOKINFO), str(POLICIES)])
    assert not result.problems, result.problems
    mesh = mesh_config_text("trustDomainAliases: [old.example]\nextensionProviders:\n"
                            "- name: ext-authz-grpc\n"
                            "  envoyExtAuthzGrpc: {service: ext-authz.default.svc.cluster.local, port: 9000}\n",
                            "mesh.yaml")
    snapshot = build_snapshot(result.resources, mesh)
    config = config_for(snapshot, "deploy/reviews-v1")
    dumped = str(list(config.listeners))
    for name in ("envoy.filters.http.rbac", "envoy.filters.http.ext_authz", "envoy.filters.http.jwt_authn",
                 "envoy.filters.network.rbac", "envoy.filters.network.ext_authz", "old.example"):
        assert name in dumped, name
    verdict = validate_bootstrap(static_bootstrap(snapshot.proxy("deploy/reviews-v1"), config))
    assert verdict.ok, verdict.output


def _workloads() -> list[tuple[Path, str]]:
    """Every workload of every example and of the kitchen sink, as a translate target."""
    from meshctl.model.service import POD
    from testsupport import EXAMPLES

    cases = []
    for source in sorted(path for path in EXAMPLES.iterdir() if path.is_dir()) + [KITCHEN_SINK]:
        snapshot = build_snapshot(load([str(source)], "default").resources)
        cases.extend((source, w.proxy_id) for w in snapshot.registry.workloads if w.kind == POD)
    return cases


@pytest.mark.parametrize(("source", "target"), _workloads(), ids=lambda value: getattr(value, "name", value))
def test_plain_envoy_gets_no_deprecated_field(mesh, config_for, source: Path, target: str) -> None:
    """Under the default flavor nothing Envoy warns about as deprecated is sent (Istio's own
    max_grpc_timeout, match_subject_alt_names and DNS cluster fields go to istio-proxy only)."""
    import subprocess
    import tempfile

    from google.protobuf import json_format

    from meshctl.envoybin import find_envoy

    snapshot = mesh(source)
    config = config_for(snapshot, target)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        handle.write(json_format.MessageToJson(static_bootstrap(snapshot.proxy(target), config)))
        handle.flush()
        done = subprocess.run([find_envoy(), "--mode", "validate", "-c", handle.name, "-l", "warning",
                               "--disable-hot-restart", "--log-format", "%v"],
                              capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    deprecated = sorted({line[:160] for line in output.splitlines() if "deprecated" in line.lower()})
    assert deprecated == []


def test_every_proxy_header_knob_is_accepted_by_envoy(config_for) -> None:
    """proxyHeaders at their least default: no server name and its header passed through, no
    request ids, no attempt counts, routers without debug headers, XFCC sanitized and set with
    every detail, HTTP/1 header case preserved downstream and upstream (plain Envoy: no
    metadata exchange filter to skip headers on)."""
    result = load([str(BOOKINFO)])
    assert not result.problems, result.problems
    mesh = mesh_config_text(
        "defaultConfig:\n  proxyHeaders:\n    server: {disabled: true}\n    requestId: {disabled: true}\n"
        "    attemptCount: {disabled: true}\n    envoyDebugHeaders: {disabled: true}\n"
        "    forwardedClientCert: SANITIZE_SET\n"
        "    setCurrentClientCertDetails: {subject: true, cert: true, chain: true, dns: true, uri: true}\n"
        "    preserveHttp1HeaderCase: true\n", "mesh.yaml")
    snapshot = build_snapshot(result.resources, mesh)
    config = config_for(snapshot, "deploy/reviews-v1")
    managers = []
    for chain in (chain for listener in config.listeners for chain in listener.filter_chains):
        for found in chain.filters:
            if found.name == "envoy.filters.network.http_connection_manager":
                managers.append(HttpConnectionManager())
                assert found.typed_config.Unpack(managers[-1])
    assert managers and all(m.server_header_transformation == HttpConnectionManager.PASS_THROUGH and not m.server_name
               and m.HasField("generate_request_id")
               and m.http_protocol_options.header_key_format.stateful_formatter.name == "preserve_case" for m in managers)
    assert any(m.forward_client_cert_details == HttpConnectionManager.SANITIZE_SET and m.set_current_client_cert_details.chain
               for m in managers)
    verdict = validate_bootstrap(static_bootstrap(snapshot.proxy("deploy/reviews-v1"), config))
    assert verdict.ok, verdict.output
