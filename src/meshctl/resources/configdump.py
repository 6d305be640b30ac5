"""Packed resources as Envoy's admin `/config_dump` shows them.

`translate -o json`, serve's `istio.io/debug/config_dump` and the expected side of `proxy-status`
all render the same objects this way, so tools that read a real Envoy's dump read these too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from meshctl.resources.kinds import KINDS, PUSH_ORDER, SECRET
from meshctl.resources.packed import ProxyResources

REDACTED = "[redacted]"

if TYPE_CHECKING:
    from envoy.admin.v3 import config_dump_pb2

__all__ = ["REDACTED", "redacted", "to_config_dump"]


def to_config_dump(resources: ProxyResources, version_info: str = "",
                   types: Iterable[str] = PUSH_ORDER) -> config_dump_pb2.ConfigDump:
    """The resources as Envoy's admin `/config_dump` shows dynamic config (with `include_eds`).

    One section per kind the resources hold (even none of it), in push order; `types` picks
    which kinds appear. Sections that carry a version (clusters, listeners) get `version_info`;
    every entry carries its resource's own version. The admin protos (they pull in the whole
    bootstrap tree) are imported here, not at start-up: serve opens its port before it needs them.
    Secrets show as Envoy shows them: private keys and generic secrets `[redacted]`.
    """
    from envoy.admin.v3 import config_dump_pb2

    wanted = set(types)
    dump = config_dump_pb2.ConfigDump()
    for kind in KINDS:
        if kind.dump is None or kind.type_url not in wanted or kind.type_url not in resources:
            continue
        section = kind.dump.section_class()()
        if version_info and "version_info" in section.DESCRIPTOR.fields_by_name:
            section.version_info = version_info
        entries = getattr(section, kind.dump.entries)
        *path, leaf = kind.dump.resource.split(".")
        for item in resources[kind.type_url].values():
            entry = entries.add()
            if "name" in entry.DESCRIPTOR.fields_by_name:
                entry.name = item.name
            holder = entry
            for step in path:
                holder = getattr(holder, step)
            holder.version_info = item.version
            getattr(holder, leaf).CopyFrom(redacted(item.to_any()) if kind.type_url == SECRET else item.to_any())
        dump.configs.add().Pack(section)
    return dump


def redacted(packed: Any) -> Any:
    """A packed Secret with what Envoy marks sensitive replaced by `[redacted]`, as Envoy's own
    `/config_dump` shows it: the private key and a generic secret. The certificate stays."""
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
    from google.protobuf import any_pb2

    secret = secret_pb2.Secret.FromString(packed.value)
    for source in (secret.tls_certificate.private_key, secret.tls_certificate.password, secret.generic_secret.secret):
        which = source.WhichOneof("specifier")
        if which is None:
            continue
        if which == "inline_bytes":
            source.inline_bytes = REDACTED.encode()
        else:
            setattr(source, which, REDACTED)
    if secret.tls_certificate.HasField("private_key_provider"):
        secret.tls_certificate.ClearField("private_key_provider")
    return any_pb2.Any(type_url=packed.type_url, value=secret.SerializeToString(deterministic=True))
