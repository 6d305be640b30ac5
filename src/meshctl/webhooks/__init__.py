"""Admission webhooks over HTTPS, as istiod serves them on its port 15017: `/inject` adds the
sidecar to pods as they are created (the same injection as `meshctl kube-inject`), `/validate`
refuses Istio objects `meshctl validate` would refuse, with the same messages.

`admission` reads and answers AdmissionReviews, `jsonpatch` turns an injected pod into the
patch the API server applies, `server` is the HTTPS server both share, and `configurations`
builds the Mutating- and ValidatingWebhookConfigurations that send the API server there.
"""

__all__: list[str] = []
