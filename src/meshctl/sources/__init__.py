"""Where serve's configuration comes from: a watched directory now, Kubernetes later."""
