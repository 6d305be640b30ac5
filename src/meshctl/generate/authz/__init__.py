"""AuthorizationPolicy → Envoy RBAC and ext_authz filters: value matchers, rule shapes, trust-domain
aliases, and the per-action filters a sidecar's inbound chains carry."""

from meshctl.generate.authz.builder import AuthzFilters, build_filters

__all__ = ["AuthzFilters", "build_filters"]
