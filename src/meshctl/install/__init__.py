"""What `meshctl install` puts in a cluster: the control plane's manifests and Istio's CRDs."""

__all__: list[str] = []
