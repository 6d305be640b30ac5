"""istiod's names: the DNS names its serving certificate carries, under which a workload checks
the control plane it talks to (its CA, xds over TLS).

Kept apart from meshctl.security.ca, which loads cryptography's X.509 machinery: the agent
needs the name before that, to start its TLS handshake with the CA while cryptography loads.
"""

from __future__ import annotations

__all__ = ["ISTIOD_NAMES"]

# istiod's serving certificate names (the agent replaces `localhost` in CA_ADDR by the first).
ISTIOD_NAMES = ("istiod.istio-system.svc", "istiod-remote.istio-system.svc", "istio-pilot.istio-system.svc")
