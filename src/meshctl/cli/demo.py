"""`meshctl demo`: a real Envoy routing real requests the way a VirtualService says, live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from collections import Counter

    from rich.console import Console

    from meshctl.demo.mesh import Client
    from meshctl.demo.runtime import LocalMesh

JASON = {"end-user": "jason"}
SAMPLE = 200
EDIT_DEADLINE = 1.0


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    keep: Annotated[str, typer.Option("--workdir", help="Keep configs and logs in this directory (default: a temporary one).")] = "",
    capture: Annotated[bool, typer.Option("--capture", help="As root: each sidecar in a network namespace of its pod, "
                                          "its traffic captured with iptables instead of bound listeners.")] = False,
) -> int:
    """Run serve, Envoy sidecars, reviews v1-v3 and details locally; route, edit live, mTLS, authorize, show sync.

    Exit 0 only when every step checked out.

    Examples:

    \b
      meshctl demo
      meshctl demo --workdir /tmp/mesh   # keep the configs and the logs
      sudo meshctl demo --capture        # pods in network namespaces, traffic captured by iptables
    """
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from meshctl.demo.runtime import LocalMesh
    from meshctl.errors import ExitCode, MeshctlError

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    make = LocalMesh
    if capture:
        from meshctl.demo.captured import CapturedMesh, capture_problem

        problem = capture_problem()
        if problem:
            raise MeshctlError(problem)
        make = CapturedMesh
    with tempfile.TemporaryDirectory(prefix="meshctl-demo-") as scratch:
        workdir = Path(keep or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        mesh = make(workdir)
        try:
            with err.status("starting the mesh") as status:
                mesh.start(progress=lambda text: status.update(text))
            checks = [_header_routing(mesh, out), _live_edit(mesh, out, err), _mutual_tls(mesh, out),
                      _authorization(mesh, out), _proxy_status(mesh, out)]
            if capture:
                checks.append(_captured(mesh, out))
        except KeyboardInterrupt:
            err.print("interrupted; stopping every process the demo started")
            return ExitCode.INTERRUPTED
        finally:
            with err.status("stopping Envoy, serve and the backends"):
                mesh.stop()
    if keep:
        err.print(f"configs and logs kept in {workdir}")
    if all(checks):
        err.print("[green]✔ every step checked out[/green]")
        return ExitCode.OK
    err.print("[red]✘ some steps did not check out (see above)[/red]")
    return ExitCode.ERROR


def _counts_table(title: str, rows: list[tuple[str, Counter[str], str]]) -> str:
    """Answers per version, as a plain aligned table (kubectl-style, safe to pipe)."""
    from meshctl.demo.mesh import BACKENDS
    from meshctl.inspect.tabwriter import tabulate

    lines = [f"{title}\n", "\t".join(("REQUESTS", *(v.upper() for v in BACKENDS), "ERRORS", "EXPECTED")) + "\n"]
    for label, counts, expected in rows:
        errors = sum(n for answer, n in counts.items() if answer not in BACKENDS)
        lines.append("\t".join((label, *(str(counts.get(v, 0)) for v in BACKENDS), str(errors), expected)) + "\n")
    return tabulate("".join(lines), 3)


def _verdict(console: Console, ok: bool, text: str) -> bool:
    console.print(f"{'[green]✔[/green]' if ok else '[red]✘[/red]'} {text}")
    return ok


def _header_routing(mesh: LocalMesh, out: Console) -> bool:
    client = mesh.layout.clients[0]
    jason = mesh.sample(client, 20, JASON)
    others = mesh.sample(client, 20)
    out.print()
    out.print("[bold]1. Header routing[/bold] (VirtualService reviews: end-user: jason → v2, everyone else → v1)")
    out.print(_counts_table(f"through the {client.pod} sidecar", [
        ("end-user: jason", jason, "all v2"), ("no header", others, "all v1"),
    ]), end="", markup=False)
    return _verdict(out, jason == {"reviews-v2": 20} and others == {"reviews-v1": 20},
                    "jason lands on v2, everyone else on v1")


def _live_edit(mesh: LocalMesh, out: Console, err: Console) -> bool:
    import time

    from meshctl.errors import MeshctlError
    from meshctl.loopback import wait_until

    client = mesh.layout.clients[0]
    out.print()
    out.print("[bold]2. Live edit[/bold]: routing.yaml now splits everyone else 50/50 between v1 and v3")
    started = time.monotonic()
    mesh.write_routing({"v1": 50, "v3": 50})
    try:
        wait_until(lambda: mesh.requests(client, 1)[0][1] == "reviews-v3", 10, what="the edit to reach Envoy",
                   interval=0.005)
    except MeshctlError as exc:
        return _verdict(out, False, str(exc))
    took = time.monotonic() - started
    with err.status(f"sending {SAMPLE} requests"):
        split = mesh.sample(client, SAMPLE)
        jason = mesh.sample(client, 20, JASON)
    out.print(_counts_table(f"through the {client.pod} sidecar, after the edit", [
        ("no header", split, "~50/50 v1/v3"), ("end-user: jason", jason, "all v2"),
    ]), end="", markup=False)
    share = split.get("reviews-v3", 0) / SAMPLE
    ok = took <= EDIT_DEADLINE and 0.35 <= share <= 0.65 and split.get("reviews-v1", 0) + split.get("reviews-v3", 0) == SAMPLE
    ok = ok and jason == {"reviews-v2": 20}
    return _verdict(out, ok, f"the edit took effect {took * 1000:.0f} ms after the file changed "
                             f"(deadline {EDIT_DEADLINE * 1000:.0f} ms); v3 got {share:.0%} of {SAMPLE} requests")


def _mutual_tls(mesh: LocalMesh, out: Console) -> bool:
    """Who details saw calling, through each client's sidecar and from a plain client."""
    from meshctl.inspect.tabwriter import tabulate
    from meshctl.security.spiffe import spiffe_id

    server = mesh.layout.server
    lines = [f"CALLER\tSTATUS\tANSWERED BY\tIDENTITY {server.name.upper()} SAW (x-forwarded-client-cert)\n"]
    ok = True
    for client in mesh.layout.clients:
        status, answered, seen = mesh.seen_by_server(client)
        ok = ok and (status, answered, seen) == (200, server.name, spiffe_id("cluster.local", "default",
                                                                              client.service_account))
        lines.append(f"{client.pod} sidecar\t{status}\t{answered}\t{seen or '-'}\n")
    plaintext = mesh.plaintext_to_server()
    ok = ok and plaintext == 0
    lines.append(f"plain client, no sidecar\t{plaintext or 'refused'}\t-\t-\n")
    handshakes = mesh.handshakes()
    ok = ok and all(count > 0 for _, count in handshakes)
    out.print()
    out.print(f"[bold]3. Mutual TLS[/bold] (PeerAuthentication istio-system/default: STRICT); {server.name} runs "
              "behind a sidecar of its own")
    out.print(tabulate("".join(lines), 3), end="", markup=False)
    out.print("TLS handshakes so far: " + ", ".join(f"{name} {count}" for name, count in handshakes), markup=False)
    return _verdict(out, ok, f"the sidecars reach {server.name} over mTLS, each seen as itself; "
                             "plaintext straight at its sidecar is refused")


def _authorization(mesh: LocalMesh, out: Console) -> bool:
    """An AuthorizationPolicy on details admits productpage's identity only, then ratings' too:
    details' sidecar judges each caller by the SPIFFE ID in its mTLS certificate."""
    import functools

    from meshctl.errors import MeshctlError
    from meshctl.inspect.tabwriter import tabulate
    from meshctl.loopback import wait_until

    admitted, other = mesh.layout.clients[0], mesh.layout.clients[1]
    server = mesh.layout.server.name
    out.print()
    out.print(f"[bold]4. Authorization[/bold]: an AuthorizationPolicy lets only {admitted.pod} call {server}, "
              f"then {other.pod} too")
    rows = []
    ok = True
    for step, allowed in (("only " + admitted.name, [admitted]), (f"{admitted.name} and {other.name}", [admitted, other])):
        mesh.write_authorization(allowed)
        settled = 200 if other in allowed else 403
        try:
            wait_until(functools.partial(_answers, mesh, other, server, settled), 10,
                       what="the policy to reach details' sidecar", interval=0.01)
        except MeshctlError as exc:
            return _verdict(out, False, str(exc))
        for client in (admitted, other):
            counts = mesh.sample(client, 20, host=server)
            expected = 200 if client in allowed else 403
            rows.append(f"{step}\t{client.pod}\t{counts.get(server, 0)}\t{counts.get('HTTP 403', 0)}\t"
                        f"{'all 200' if expected == 200 else 'all 403'}\n")
            ok = ok and counts == ({server: 20} if expected == 200 else {"HTTP 403": 20})
    table = "POLICY ALLOWS\tCALLER\t200\t403 (RBAC: access denied)\tEXPECTED\n" + "".join(rows)
    out.print(tabulate(table, 3), end="", markup=False)
    return _verdict(out, ok, f"the {server} sidecar refused {other.pod} until the policy named it, "
                             f"and never refused {admitted.pod}")


def _answers(mesh: LocalMesh, client: Client, host: str, status: int) -> bool:
    return mesh.requests(client, 1, host=host)[0][0] == status


def _proxy_status(mesh: LocalMesh, out: Console) -> bool:
    """The sync table proxy-status prints for this control plane, asked over real gRPC."""
    from datetime import UTC, datetime

    from meshctl.status.controlplanes import ControlPlaneOptions, ask_syncz, open_control_planes
    from meshctl.status.syncz import read_syncz
    from meshctl.status.tables import verbose_status_table

    address = f"127.0.0.1:{mesh.xds_port}"
    options = ControlPlaneOptions(xds_address=address, plaintext=True, timeout=10)
    with open_control_planes(options, kube=_no_kubernetes) as clients:
        rows = read_syncz(ask_syncz(clients))
    out.print()
    out.print(f"[bold]5. meshctl proxy-status --xds-address {address} --plaintext -v 1[/bold]")
    out.print(verbose_status_table(rows, datetime.now(UTC)), end="", markup=False)
    return _verdict(out, len(rows) == len(mesh.envoys) and all(row.synced for row in rows),
                    f"{len(rows)} sidecars connected, every subscribed type SYNCED")


def _captured(mesh: LocalMesh, out: Console) -> bool:
    """Every request of the steps above reached Envoy through capture: the client sidecar's
    9080 listener counted one connection per request, each handed over by the 15001 capture."""
    from meshctl.demo.captured import CapturedMesh

    assert isinstance(mesh, CapturedMesh)
    out.print()
    out.print("[bold]6. Capture[/bold] (meshctl iptables in each pod, meshctl agent and Envoy as the proxy user)")
    for line in mesh.describe():
        out.print(line, markup=False)
    client = mesh.layout.clients[0]
    listener = "listener.0.0.0.0_9080.downstream_cx_total"
    accepted = int(mesh.counters(client, [listener])[listener])
    sent = 20 + 20 + SAMPLE + 20 + 2 * 20  # the requests of steps 1 to 3 (their waits come on top)
    return _verdict(out, accepted >= sent, f"{client.pod}'s Envoy accepted {accepted} captured connections on "
                                           f"port 9080 (at least the {sent} requests sent)")


def _no_kubernetes() -> NoReturn:
    raise AssertionError("a plaintext --xds-address never needs Kubernetes")
