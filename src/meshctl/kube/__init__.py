"""The Kubernetes API, and the only package that talks to it.

- `client`: kubeconfig and context loading, the connection (`KubeClient`), error messages;
- `pods`: running pods by name, Deployment or selector (what a `Target` resolves to);
- `portforward`, `podexec`, `streams`: port-forwards and exec over websockets;
- `tokens`: ServiceAccount tokens (TokenRequest);
- `istiod`: the control plane's pods;
- `objects`: every object of the kinds meshctl reads (what `meshctl analyze --kubernetes` analyzes).

Operations are functions taking a `KubeClient`, grouped by job, so that new jobs (watching
config, TokenReview, applying manifests) are new modules rather than a growing class.

Every module imports the `kubernetes` client lazily, inside the functions that call it:
importing it costs more than half a second, which every `meshctl --help` and every TAB
completion would otherwise pay. This package itself imports nothing but the standard library.
"""
