"""RequestAuthentication → Envoy's jwt_authn filter."""

from meshctl.generate.authn.jwt import JwtFilter, jwt_filter

__all__ = ["JwtFilter", "jwt_filter"]
