"""Where serve's configuration comes from: a watched directory now, Kubernetes later."""

__all__: list[str] = []
