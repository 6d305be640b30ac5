"""The node metadata key under which the xDS server states who a stream's peer proved to be.

Shared by the transport, which writes it (the SPIFFE id of the client certificate on the
mutual-TLS port, removing whatever a client sent under the key), and the mesh model, which reads
it as a proxy's verified identity; neither layer may import the other, so the word lives here.
"""

from __future__ import annotations

__all__ = ["PEER_IDENTITY"]

PEER_IDENTITY = "meshctl.io/peer-identity"
