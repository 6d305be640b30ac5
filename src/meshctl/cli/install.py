"""`meshctl install` and `meshctl uninstall`: serve as a control plane in a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshctl.cli.options import ContextOption, IstioNamespaceOption, KubeconfigOption
from meshctl.formats import DocumentFormat

if TYPE_CHECKING:
    from meshctl.install.manifests import Install


ReplicasOption = Annotated[int, typer.Option("--replicas", min=1, max=100, help="serve replicas in the Deployment.")]
RevisionOption = Annotated[str, typer.Option("-r", "--revision", help="Control plane revision (names get -REVISION).")]
ImageOption = Annotated[str, typer.Option("--image", help="Container image with meshctl.")]


def register(app: typer.Typer) -> None:
    app.command("install")(install)
    app.command("uninstall")(uninstall)


def install(
    replicas: ReplicasOption = 2,
    revision: RevisionOption = "",
    namespace: IstioNamespaceOption = "istio-system",
    image: ImageOption = "",
    output: Annotated[DocumentFormat, typer.Option("-o", "--output", help="Manifest format.")] = DocumentFormat.yaml,
    ca_bundle: Annotated[str, typer.Option(
        "--ca-bundle", help="The mesh's root certificate (root-cert.pem of the cacerts Secret): the webhook "
        "configurations' caBundle, so the API server can verify serve's webhooks.", show_default=False)] = "",
    apply: Annotated[bool, typer.Option("--apply", help="Create (or update) the objects through the API "
                                        "instead of printing them.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> int:
    """Print everything a cluster needs to run meshctl serve (pipe it to `kubectl apply -f -`),
    or `--apply` it: Istio's CRDs, RBAC, the Deployment, its Service and disruption budget, and
    the sidecar injection and validation webhook configurations.

    Examples:

    \b
      meshctl install | kubectl apply -f -
      meshctl install --replicas 3 --revision canary --apply --context prod
      meshctl install --ca-bundle ca/root-cert.pem | kubectl apply -f -
    """
    from meshctl.install.manifests import DEFAULT_IMAGE, Install, manifests

    plan = Install(namespace=namespace, replicas=replicas, revision=_revision(revision), image=image or DEFAULT_IMAGE,
                   ca_bundle=_ca_bundle(ca_bundle))
    if not ca_bundle:
        from meshctl.cli.output import err

        err("note: the webhook configurations carry no caBundle (--ca-bundle): serve's leading replica patches "
            "its CA's in once it runs; until then pods in namespaces labelled for injection are refused and Istio "
            "objects are not validated")
    objects = manifests(plan)
    if not apply:
        _print(objects, output)
        return 0
    from meshctl.cli.output import out
    from meshctl.kube.apply import apply_objects
    from meshctl.kube.client import load_client

    for outcome in apply_objects(load_client(kubeconfig, context), objects):
        out(str(outcome))
    return 0


def uninstall(
    revision: RevisionOption = "",
    namespace: IstioNamespaceOption = "istio-system",
    purge: Annotated[bool, typer.Option("--purge", help="Also delete Istio's CRDs (and every Istio object "
                                        "with them) and the namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> int:
    """Delete what `meshctl install` created; Istio's CRDs and configuration stay unless --purge.

    Examples:

    \b
      meshctl uninstall --revision canary
      meshctl uninstall --purge
    """
    from meshctl.cli.output import out
    from meshctl.install.manifests import Install, manifests
    from meshctl.kube.apply import delete_objects
    from meshctl.kube.client import load_client

    plan = Install(namespace=namespace, revision=_revision(revision))
    objects = [obj for obj in manifests(plan, with_crds=purge) if purge or obj["kind"] != "Namespace"]
    objects.append(_lease(plan))  # deleted first: objects go in reverse
    for outcome in delete_objects(load_client(kubeconfig, context), objects):
        out(str(outcome))
    return 0


def _lease(plan: Install) -> dict[str, Any]:
    """The Lease serve's replicas campaign on (they create it; uninstall removes it)."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": plan.lease, "namespace": plan.namespace}}


def _ca_bundle(path: str) -> bytes:
    from pathlib import Path

    from meshctl.errors import BadInputError
    from meshctl.security.cadir import CaDirectoryError, read_root_certificates

    if not path:
        return b""
    try:
        return read_root_certificates(Path(path))
    except CaDirectoryError as exc:
        raise BadInputError([str(exc)]) from None


def _revision(revision: str) -> str:
    from meshctl.config.values import is_dns1123_label
    from meshctl.errors import UsageError

    if revision and not is_dns1123_label(revision):
        raise UsageError(f"--revision {revision!r} must be a DNS-1123 label (lowercase letters, digits, '-')")
    return revision


def _print(objects: list[dict[str, Any]], output: DocumentFormat) -> None:
    from meshctl.cli.output import out
    from meshctl.formats import to_json, to_yaml

    if output is DocumentFormat.json:
        out(to_json({"apiVersion": "v1", "kind": "List", "items": objects}))
    else:
        out("---\n".join(to_yaml(obj) for obj in objects).rstrip("\n"))
