"""`meshctl token`: a workload's token for the CA, when there is no Kubernetes to issue one."""

from __future__ import annotations

from typing import Annotated

import typer

from meshctl.cli.bootstrap import ConfigDirOption, ServiceAccountOption
from meshctl.cli.options import DEFAULT_CA_DIR, InputNamespaceOption
from meshctl.targets import USAGE



def register(app: typer.Typer) -> None:
    app.command("token")(token)


def token(
    target: Annotated[str, typer.Argument(help=f"{USAGE}: the workload the token is for.")],
    ca_dir: Annotated[str, typer.Option("--ca-dir", help="meshctl serve's CA directory (its token key signs the token).")] = DEFAULT_CA_DIR,
    ttl: Annotated[str, typer.Option("--ttl", help="How long the token is valid.")] = "1h",
    config_dir: ConfigDirOption = "",
    namespace: InputNamespaceOption = "default",
    service_account: ServiceAccountOption = None,
    trust_domain: Annotated[str, typer.Option("--trust-domain", help="Only to name the identity on stderr.")] = "cluster.local",
) -> int:
    """Print a token proving the workload's service account to meshctl serve's CA.

    What a projected service account token is in Kubernetes: `meshctl agent --token-file` sends
    it with each CSR, and the CA signs a certificate for spiffe://TRUST_DOMAIN/ns/NS/sa/SA.
    Minting one needs the CA directory, as an administrator's credential would.

    Examples:

    \b
      meshctl token deploy/productpage-v1 --config-dir examples/bookinfo > productpage.token
      meshctl token web-0.shop --service-account web --ttl 10m --ca-dir /etc/meshctl/ca
    """
    from meshctl.cli.workload import workload_proxy
    from meshctl.cli.durations import duration_flag
    from meshctl.cli.output import err, out
    from meshctl.security.cadir import read_token_key
    from meshctl.security.spiffe import spiffe_id
    from meshctl.security.tokens import TokenSigner

    seconds = duration_flag(ttl, "--ttl", minimum=1)
    proxy, account = workload_proxy(target, config_dir, namespace, "REDIRECT", service_account=service_account)
    signer = TokenSigner(read_token_key(ca_dir))
    out(signer.mint(proxy.namespace, account, pod=proxy.pod_name, ttl=int(seconds)))
    err(f"token for {spiffe_id(trust_domain, proxy.namespace, account)} (pod {proxy.id}), valid for {ttl}")
    return 0
