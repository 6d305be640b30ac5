"""networking.istio.io: one module per kind, named after Istio's proto files.

Field names follow the istio.io/api v1 messages in their JSON (camelCase) form; deprecated
fields that people still write (`mirrorPercent`, `allowOrigin`, `consecutiveErrors`,
`minimumRingSize`, `warmupDurationSecs`) are accepted. v1, v1beta1 and v1alpha3 share one schema:
the versions differ in storage, not in fields.

Each message is a `@message` class (see `meshctl.config.messages`): its fields give both the
schema and the typed view generators read. Each rule of Istio's validating webhook sits on the
message it constrains and only runs once that message's shape is clean, so it can read fields
without defending against wrong types. Rules that need to see several messages at once (a
VirtualService's hosts against its gateways, a route against the VirtualService being a
delegate) sit on the enclosing message.
"""

from meshctl.config.kinds.networking.destination_rule import DestinationRule
from meshctl.config.kinds.networking.gateway import Gateway
from meshctl.config.kinds.networking.service_entry import ServiceEntry
from meshctl.config.kinds.networking.sidecar import Sidecar
from meshctl.config.kinds.networking.virtual_service import VirtualService
from meshctl.config.kinds.networking.workload_entry import WorkloadEntry

__all__ = ["DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "VirtualService", "WorkloadEntry"]
