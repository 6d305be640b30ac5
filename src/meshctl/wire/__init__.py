"""Istio APIs meshctl speaks on the wire, compiled from protos/ by scripts/gen_protos.py."""
