"""`meshctl kube-inject`: istioctl kube-inject, adding meshctl's sidecar to workload YAML.

Exit codes: 0 written, 64 usage, 65 an object whose annotations Istio's injector would refuse
(every one named, nothing written), or input that cannot be read.
"""

from __future__ import annotations

from typing import Annotated

import typer

from meshctl.cli.options import IstioNamespaceOption

EXAMPLES = """\b
Examples:
  # Inject a Deployment and apply it
  meshctl kube-inject -f samples/bookinfo.yaml | kubectl apply -f -
\b
  # From stdin, against a revisioned control plane, with the mesh config of the cluster
  kubectl get deploy reviews -o yaml | meshctl kube-inject -f - -r canary --mesh-config mesh.yaml
\b
  # Another image for istio-init and istio-proxy, written to a file
  meshctl kube-inject -f app.yaml --image registry.example.com/meshctl:0.1.0 -o app-injected.yaml
"""


def register(app: typer.Typer) -> None:
    app.command("kube-inject", epilog=EXAMPLES)(kube_inject)


def kube_inject(
    filename: Annotated[str, typer.Option("-f", "--filename", help="Workload YAML (multi-document), or - for stdin.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Write here instead of stdout.")] = "",
    image: Annotated[str, typer.Option("--image", help="Image of istio-init and istio-proxy (meshctl's).",
                                       show_default=False)] = "",
    mesh_config: Annotated[str, typer.Option(
        "--mesh-config", "--meshConfigFile", help="Mesh config file (the `mesh` key of the istio ConfigMap): "
        "trust domain, ports, defaultConfig.", show_default=False)] = "",
    revision: Annotated[str, typer.Option("-r", "--revision", help="Control plane revision (istiod-REVISION).")] = "",
    istio_namespace: IstioNamespaceOption = "istio-system",
    cluster_id: Annotated[str, typer.Option("--cluster-id", help="ISTIO_META_CLUSTER_ID of the proxies.")
                          ] = "Kubernetes",
    network: Annotated[str, typer.Option("--network", help="ISTIO_META_NETWORK of the proxies.")] = "",
    native_sidecars: Annotated[bool, typer.Option(
        "--native-sidecars", help="istio-proxy as a Kubernetes native sidecar (an init container that keeps "
        "running), unless a pod says otherwise.")] = False,
) -> int:
    """Add the istio-init and istio-proxy containers (meshctl iptables, meshctl agent) to every
    Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob; other objects pass
    through unchanged. Injecting an injected workload changes nothing."""
    from meshctl.cli.output import err, out
    from meshctl.config.documents import decode, parse_text
    from meshctl.config.files import STDIN, UnreadableFile, read_bytes
    from meshctl.errors import BadInputError
    from meshctl.inject.settings import DEFAULT_IMAGE, InjectSettings, check_mesh
    from meshctl.inject.workloads import inject_documents
    from meshctl.model.meshconfig import MeshConfig, read_mesh_config

    mesh = MeshConfig()
    if mesh_config:
        mesh = read_mesh_config(mesh_config)
        check_mesh(mesh, mesh_config)
    settings = InjectSettings(image=image or DEFAULT_IMAGE, istio_namespace=istio_namespace, revision=revision,
                              cluster_id=cluster_id, network=network, mesh=mesh, native_sidecars=native_sidecars)
    source = STDIN if filename == "-" else filename
    try:
        text, error = decode(read_bytes(source), source)
    except UnreadableFile as exc:
        raise BadInputError([f"{source}: {exc}"]) from None
    if error is not None or text is None:
        raise BadInputError([str(error)])
    documents, errors = parse_text(text, source)
    if errors:
        raise BadInputError([str(e) for e in errors])
    outcome = inject_documents(text, documents, settings)
    if outcome.problems:
        raise BadInputError(outcome.problems)
    for note in outcome.notes:
        err(note)
    if output:
        from pathlib import Path

        Path(output).write_text(outcome.text, encoding="utf-8")
    else:
        out(outcome.text.removesuffix("\n"))
    return 0
