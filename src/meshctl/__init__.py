"""meshctl: render, serve and inspect the Envoy configuration of an Istio-style service mesh."""

__all__ = ["__version__"]

__version__ = "0.1.0"
