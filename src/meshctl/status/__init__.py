"""`proxy-status`: what a control plane says about its proxies, and whether each proxy holds it.

Two questions, both asked over ADS exactly as istioctl asks istiod (so the answers come from
`meshctl serve` and istiod alike): `istio.io/debug/syncz` gives every connected proxy's
per-type sync status; `istio.io/debug/config_dump` gives what the control plane would send one
proxy, to be compared with what that Envoy holds. The modules here hold the client, the
tables, the two diffs and the wait loop; only `meshctl.cli.proxy_status` prints.
"""

__all__: list[str] = []
