"""Traffic capture: Istio's iptables rules for a sidecar, generated and applied.

`meshctl iptables` does what `istio-iptables` (run by the `istio-init` container) does: the
settings come from the same flags and environment variables (`settings`), the rules from a pure
function of them in Istio's exact emission order (`plan`, rendered by `rules` in
`iptables-restore` form), and applying them is a separate step that talks to the kernel
(`iptables`, `apply`, `routes`, `validation`).
"""

__all__: list[str] = []
