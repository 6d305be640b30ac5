"""meshctl: render, serve and inspect the Envoy configuration of an Istio-style service mesh."""

__version__ = "0.1.0"
