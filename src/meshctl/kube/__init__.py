"""The Kubernetes API, and the only package that talks to it.

- `client`: kubeconfig, context or in-cluster loading, the connection (`KubeClient`), error messages;
- `resources`: the kinds meshctl reads, as the API serves them (group, versions, plural, scope);
- `rest`: requests by path with JSON in and out (for watches, manifests and lists of any kind);
- `watch`: list + watch of one kind, as client-go's reflector (what `serve --kubernetes` runs);
- `apply`: creating, updating and deleting manifests (`meshctl install --apply`, `uninstall`);
- `lease`: leader election on a coordination.k8s.io Lease;
- `tokenreview`: whose a bearer token is (the CA's Kubernetes authenticator);
- `pods`: running pods by name, Deployment or selector (what a `Target` resolves to);
- `portforward`, `podexec`, `streams`: port-forwards and exec over websockets;
- `tokens`: ServiceAccount tokens (TokenRequest);
- `istiod`: the control plane's pods;
- `objects`: every object of the kinds meshctl reads (what `meshctl analyze --kubernetes` analyzes).

Operations are functions (or small classes) taking a `KubeClient`, grouped by job, so that
new jobs are new modules rather than a growing class.

Every module imports the `kubernetes` client lazily, inside the functions that call it:
importing it costs more than half a second, which every `meshctl --help` and every TAB
completion would otherwise pay. This package itself imports nothing but the standard library.
"""

__all__: list[str] = []
