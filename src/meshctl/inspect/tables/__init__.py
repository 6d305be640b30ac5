"""istioctl's `proxy-config` short tables, one small module per table.

Each table is a pure function from parsed admin data plus filters to the exact text istioctl
prints (`istioctl/pkg/writer/envoy/configdump/*.go`, `.../envoy/clusters/clusters.go`,
`.../compare/sds/writer.go`). Extra columns meshctl offers beyond istioctl are opt-in and never
change the default output.
"""

__all__: list[str] = []
