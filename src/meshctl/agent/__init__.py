"""`meshctl agent`: the in-pod agent (Istio's istio-agent / pilot-agent).

It makes the workload's key in memory, has the CA sign a CSR for it (authenticated by the pod's
token), serves the certificate and the roots to Envoy over SDS on a Unix socket, rotates them
at half their lifetime, writes Envoy's bootstrap and runs Envoy as its child. The key never
leaves this process except to its own Envoy, over a socket only their user can open.
"""

__all__: list[str] = []
