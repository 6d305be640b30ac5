"""Envoy resource kinds and the packed resources translation hands to everything else.

The layer below both `generate` (which makes resources) and `xds` (which serves them), as
go-control-plane's `pkg/resource/v3` is: it knows Envoy's API, not Istio and not the transport.
`kinds` is the one table of xDS kinds, `packed` the serialized-once resource, `configdump` their
admin `/config_dump` form, and `consistency` the check that a proxy's resources refer only to
each other (imported on its own: it loads the Envoy protos it inspects).
"""

from meshctl.resources.configdump import to_config_dump
from meshctl.resources.kinds import (
    BY_TYPE_URL,
    CLUSTER,
    CONFIG_DUMP,
    DEBUG_PREFIX,
    ENDPOINT,
    EXTENSION_CONFIG,
    FULL_STATE,
    KINDS,
    LISTENER,
    PUSH_ORDER,
    ROUTE,
    SECRET,
    SYNCZ,
    TYPE_PREFIX,
    DumpSection,
    Kind,
    admin_class,
    push_rank,
    section_name,
    short_name,
    type_url_of,
)
from meshctl.resources.packed import Packed, Placeholder, ProxyResources, by_name

__all__ = [
    "BY_TYPE_URL", "CLUSTER", "CONFIG_DUMP", "DEBUG_PREFIX", "ENDPOINT", "EXTENSION_CONFIG", "FULL_STATE",
    "KINDS", "LISTENER", "PUSH_ORDER", "ROUTE", "SECRET", "SYNCZ", "TYPE_PREFIX",
    "DumpSection", "Kind", "Packed", "Placeholder", "ProxyResources",
    "admin_class", "by_name", "push_rank", "section_name", "short_name", "to_config_dump", "type_url_of",
]
