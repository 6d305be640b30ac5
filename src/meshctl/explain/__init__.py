"""`meshctl explain`: the path of one request through one proxy's Envoy config, and why.

`request` says what is sent, `view` where the proxy's config comes from (a translation, a dump,
a live Envoy), `engine` follows the request step by step (with `chains`, `routing`, `rbac`,
`upstream` and `matchers` for Envoy's own rules), `provenance` names the Istio resources and
lines behind each step, `result` holds the answer and `render` prints it.
"""

__all__: list[str] = []
