"""A generated mesh for benchmarks: N services, each with a VirtualService (header match to v2,
the rest to v1), a DestinationRule with two subsets and a connection limit, and three endpoints
(two v1, one v2; `pods` keeps the first few), spread over ten namespaces."""

from __future__ import annotations

from meshctl.config.loader import load_file
from meshctl.config.resource import Resource

NAMESPACES = 10


def mesh_yaml(count: int, *, version: str = "v2", pods: int = 3) -> str:
    docs = []
    for i in range(count):
        ns = f"ns{i % NAMESPACES}"
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: svc{i}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 8080}}]
  selector: {{app: svc{i}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: svc{i}, namespace: {ns}}}
spec:
  hosts: [svc{i}]
  http:
  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]
    route: [{{destination: {{host: svc{i}, subset: {version}}}}}]
  - route: [{{destination: {{host: svc{i}, subset: v1}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: svc{i}, namespace: {ns}}}
spec:
  host: svc{i}
  trafficPolicy: {{connectionPool: {{tcp: {{maxConnections: 100}}}}}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
""")
        for j in range(pods):
            index = i * 3 + j
            docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: svc{i}-{j}, namespace: {ns}, labels: {{app: svc{i}, version: v{1 if j < 2 else 2}}}}}
spec: {{serviceAccountName: svc{i}, containers: [{{name: app, image: app}}]}}
status: {{podIP: 10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}}}
""")
    return "---\n".join(docs)


def mesh_resources(count: int, directory: str, **options: str) -> list[Resource]:
    """Validated resources of a generated mesh (written to `directory` and loaded strictly)."""
    path = f"{directory}/mesh-{count}-{'-'.join(f'{k}={v}' for k, v in sorted(options.items()))}.yaml"
    with open(path, "w") as handle:
        handle.write(mesh_yaml(count, **options))
    result = load_file(path)
    if result.problems:
        raise SystemExit("\n".join(map(str, result.problems[:5])))
    return result.resources
