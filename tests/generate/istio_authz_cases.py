"""Istio's RBAC builder test table (pilot/pkg/security/authz/builder/builder_test.go) as data:
each case is an input under data/istio_authz/{http,tcp}, the trust-domain bundle and extension
providers it runs with, and the golden files of the filters it must produce, in order.

Istio builds for a proxy in namespace `foo` labelled app=httpbin, version=v1, whose registry
holds `my-custom-ext-authz.foo.svc.cluster.local` in `foo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meshctl.config.kinds.mesh import ExtensionProvider
from meshctl.config.kinds.security.authorization_policy import AuthorizationPolicy
from meshctl.model.security import AuthzPolicy, dry_run

DATA = Path(__file__).parent / "data" / "istio_authz"
LABELS = {"app": "httpbin", "version": "v1"}
EXT_AUTHZ_HOST = "my-custom-ext-authz.foo.svc.cluster.local"



def _provider(kind: str, **authorizer: object) -> tuple[ExtensionProvider, ...]:
    """A provider called "default" as the mesh config spells it. Built without the mesh config's
    validation, as Istio's builder test does, so the builder's own checks are what is tested."""
    return (ExtensionProvider.of({"name": "default", kind: authorizer}),)


GRPC_NO_NAMESPACE = _provider("envoyExtAuthzGrpc", service=EXT_AUTHZ_HOST, port=9000, failOpen=True,
                              statusOnError="403")
GRPC_PROVIDER = _provider("envoyExtAuthzGrpc", service=f"foo/{EXT_AUTHZ_HOST}", port=9000, timeout="0.002s",
                          failOpen=True, statusOnError="403",
                          includeRequestBodyInCheck={"maxRequestBytes": 4096, "allowPartialMessage": True})
HTTP_PROVIDER = _provider(
    "envoyExtAuthzHttp", service=f"foo/{EXT_AUTHZ_HOST}", port=9000, timeout="10s", failOpen=True,
    statusOnError="403", pathPrefix="/check", clearRouteCache=True,
    includeRequestHeadersInCheck=["x-custom-id", "x-prefix-*", "*-suffix"],
    includeHeadersInCheck=["should-not-include-when-IncludeRequestHeadersInCheck-is-set"],
    includeAdditionalHeadersInCheck={"x-header-1": "value-1", "x-header-2": "value-2"},
    includeRequestBodyInCheck={"maxRequestBytes": 2048, "allowPartialMessage": True, "packAsBytes": True},
    headersToUpstreamOnAllow=["Authorization", "x-prefix-*", "*-suffix"],
    headersToDownstreamOnDeny=["Set-cookie", "x-prefix-*", "*-suffix"],
    headersToDownstreamOnAllow=["Set-cookie", "x-prefix-*", "*-suffix"],
)
INVALID_PROVIDER = _provider("envoyExtAuthzHttp", service="foo/my-custom-ext-authz", port=999999,
                             pathPrefix="check", statusOnError="999")


@dataclass(frozen=True)
class Case:
    name: str
    input: str
    want: tuple[str, ...]
    bundle: tuple[str, ...] = ("cluster.local",)
    providers: tuple[ExtensionProvider, ...] = ()
    custom: bool = field(default=False)


HTTP_CASES = (
    Case("allow-empty-rule", "allow-empty-rule-in.yaml", ("allow-empty-rule-out.yaml",)),
    Case("allow-full-rule", "allow-full-rule-in.yaml", ("allow-full-rule-out.yaml",)),
    Case("allow-nil-rule", "allow-nil-rule-in.yaml", ("allow-nil-rule-out.yaml",)),
    Case("allow-path", "allow-path-in.yaml", ("allow-path-out.yaml",)),
    Case("audit-full-rule", "audit-full-rule-in.yaml", ("audit-full-rule-out.yaml",)),
    Case("custom-grpc-provider-no-namespace", "custom-simple-http-in.yaml",
         ("custom-grpc-provider-no-namespace-out1.yaml", "custom-grpc-provider-no-namespace-out2.yaml"),
         providers=GRPC_NO_NAMESPACE, custom=True),
    Case("custom-grpc-provider", "custom-simple-http-in.yaml",
         ("custom-grpc-provider-out1.yaml", "custom-grpc-provider-out2.yaml"), providers=GRPC_PROVIDER, custom=True),
    Case("custom-http-provider", "custom-simple-http-in.yaml",
         ("custom-http-provider-out1.yaml", "custom-http-provider-out2.yaml"), providers=HTTP_PROVIDER, custom=True),
    Case("custom-bad-multiple-providers", "custom-bad-multiple-providers-in.yaml", ("custom-bad-out.yaml",),
         providers=HTTP_PROVIDER, custom=True),
    Case("custom-bad-invalid-config", "custom-simple-http-in.yaml", ("custom-bad-out.yaml",),
         providers=INVALID_PROVIDER, custom=True),
    Case("deny-and-allow", "deny-and-allow-in.yaml", ("deny-and-allow-out1.yaml", "deny-and-allow-out2.yaml")),
    Case("deny-empty-rule", "deny-empty-rule-in.yaml", ("deny-empty-rule-out.yaml",)),
    Case("dry-run-allow-and-deny", "dry-run-allow-and-deny-in.yaml",
         ("dry-run-allow-and-deny-out1.yaml", "dry-run-allow-and-deny-out2.yaml")),
    Case("dry-run-mix", "dry-run-mix-in.yaml", ("dry-run-mix-out.yaml",)),
    Case("multiple-policies", "multiple-policies-in.yaml", ("multiple-policies-out.yaml",)),
    Case("single-policy", "single-policy-in.yaml", ("single-policy-out.yaml",)),
    Case("trust-domain-one-alias", "simple-policy-td-aliases-in.yaml", ("simple-policy-td-aliases-out.yaml",),
         bundle=("td1", "cluster.local")),
    Case("trust-domain-multiple-aliases", "simple-policy-multiple-td-aliases-in.yaml",
         ("simple-policy-multiple-td-aliases-out.yaml",), bundle=("td1", "cluster.local", "some-td")),
    Case("trust-domain-wildcard-in-principal", "simple-policy-principal-with-wildcard-in.yaml",
         ("simple-policy-principal-with-wildcard-out.yaml",), bundle=("td1", "foobar")),
    Case("trust-domain-aliases-in-source-principal", "td-aliases-source-principal-in.yaml",
         ("td-aliases-source-principal-out.yaml",), bundle=("new-td", "old-td", "some-trustdomain")),
    Case("trust-domains", "trust-domains-in.yaml", ("trust-domains-out.yaml",)),
)

TCP_CASES = (
    Case("allow-both-http-tcp", "allow-both-http-tcp-in.yaml", ("allow-both-http-tcp-out.yaml",)),
    Case("allow-only-http", "allow-only-http-in.yaml", ("allow-only-http-out.yaml",)),
    Case("audit-both-http-tcp", "audit-both-http-tcp-in.yaml", ("audit-both-http-tcp-out.yaml",)),
    Case("custom-both-http-tcp", "custom-both-http-tcp-in.yaml",
         ("custom-both-http-tcp-out1.yaml", "custom-both-http-tcp-out2.yaml"), providers=GRPC_PROVIDER, custom=True),
    Case("custom-only-http", "allow-only-http-in.yaml", (), providers=HTTP_PROVIDER, custom=True),
    Case("deny-both-http-tcp", "deny-both-http-tcp-in.yaml", ("deny-both-http-tcp-out.yaml",)),
    Case("dry-run-mix", "dry-run-mix-in.yaml", ("dry-run-mix-out.yaml",)),
)


def policies(path: Path, *, custom: bool = False) -> list[AuthzPolicy]:
    """The policies of an input file that select Istio's test proxy, in Istio's order. Istio's
    custom-only-http case reads a CUSTOM input of its own; ours makes allow-only-http's rules CUSTOM."""
    out = []
    for document in yaml.safe_load_all(path.read_text()):
        if not document:
            continue
        spec = dict(document["spec"])
        if custom and spec.get("action") != "CUSTOM":
            spec.update(action="CUSTOM", provider={"name": "default"})
        metadata = document["metadata"]
        out.append(AuthzPolicy(metadata["namespace"], metadata["name"], AuthorizationPolicy.of(spec),
                               bool(dry_run(metadata.get("annotations") or {}))))
    selected = [p for p in out if p.spec.selector is None or
                all(LABELS.get(k) == v for k, v in p.spec.selector.match_labels.items())]
    return sorted(selected, key=lambda p: (p.name, p.namespace))


def lookup(host: str) -> Sequence[str]:
    return ("foo",) if host == EXT_AUTHZ_HOST else ()
