"""`meshctl iptables`: istio-iptables, the rules `istio-init` installs to capture a pod's traffic.

Every istio-iptables flag, under its long and one-letter name, with its environment variable
(flag beats variable). `--dry-run` prints the rules in iptables-restore form; otherwise they are
applied atomically, and running again with the same flags changes nothing.

Exit codes: 0 done, 1 error (iptables missing, not root, rules refused), 64 usage, 126 the
`--run-validation` probe was not captured.
"""

from __future__ import annotations

from typing import Annotated

import typer

EXAMPLES = """\b
Examples:
  # The rules istio-init installs for a pod with ports 9080 and 9443, printed
  meshctl iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b 9080,9443 -d 15090,15021,15020 --dry-run
\b
  # Install them in this network namespace (root); running it again changes nothing
  sudo ip netns exec pod1 meshctl iptables -i '*' -b '*' -d 15090,15021,15020
\b
  # TPROXY inbound (mangle table and policy routing), DNS to the agent on 15053
  meshctl iptables -m TPROXY -i '*' -b '*' --redirect-dns
\b
  # Settings from the environment, as in an istio-init container
  ISTIO_SERVICE_CIDR='*' ISTIO_INBOUND_PORTS='*' meshctl iptables --dry-run
\b
  # Replace the rules of an earlier run with other flags, or remove them
  meshctl iptables -i 10.96.0.0/12 -b '*' --reconcile
  meshctl iptables --cleanup-only
"""

def register(app: typer.Typer) -> None:
    app.command("iptables", epilog=EXAMPLES)(iptables)


def iptables(
    ctx: typer.Context,
    envoy_port: Annotated[str | None, typer.Option(
        "--envoy-port", "-p", show_default=False,
        help="Port all outbound TCP is redirected to (default 15001; no variable).")] = None,
    inbound_capture_port: Annotated[str | None, typer.Option(
        "--inbound-capture-port", "-z", show_default=False,
        help="Port all inbound TCP is redirected to (default $INBOUND_CAPTURE_PORT or 15006).")] = None,
    inbound_tunnel_port: Annotated[str | None, typer.Option(
        "--inbound-tunnel-port", "-e", show_default=False,
        help="HBONE tunnel port, never captured (default 15008).")] = None,
    proxy_uid: Annotated[str | None, typer.Option(
        "--proxy-uid", "-u", show_default=False,
        help="UIDs (comma list) whose traffic is not captured: the proxy's (default: uid of $ENVOY_USER, else 1337).")
    ] = None,
    proxy_gid: Annotated[str | None, typer.Option(
        "--proxy-gid", "-g", show_default=False, help="GIDs whose traffic is not captured (default: the UIDs).")] = None,
    istio_inbound_interception_mode: Annotated[str | None, typer.Option(
        "--istio-inbound-interception-mode", "-m", show_default=False,
        help="REDIRECT or TPROXY (anything but TPROXY means REDIRECT).")] = None,
    istio_inbound_tproxy_mark: Annotated[str | None, typer.Option(
        "--istio-inbound-tproxy-mark", "-t", show_default=False, help="TPROXY packet mark (default 1337).")] = None,
    istio_inbound_tproxy_route_table: Annotated[str | None, typer.Option(
        "--istio-inbound-tproxy-route-table", "-r", show_default=False,
        help="Routing table for TPROXY's marked packets (default 133).")] = None,
    istio_inbound_ports: Annotated[str | None, typer.Option(
        "--istio-inbound-ports", "-b", show_default=False,
        help="Inbound ports to capture, or '*' for all; empty: no inbound capture.")] = None,
    istio_local_exclude_ports: Annotated[str | None, typer.Option(
        "--istio-local-exclude-ports", "-d", show_default=False,
        help="Inbound ports not to capture (only with -b '*').")] = None,
    istio_exclude_interfaces: Annotated[str | None, typer.Option(
        "--istio-exclude-interfaces", "-c", show_default=False,
        help="Interfaces whose traffic is never captured.")] = None,
    istio_service_cidr: Annotated[str | None, typer.Option(
        "--istio-service-cidr", "-i", show_default=False,
        help="Outbound CIDRs to capture, or '*' for all; empty: no outbound capture.")] = None,
    istio_service_exclude_cidr: Annotated[str | None, typer.Option(
        "--istio-service-exclude-cidr", "-x", show_default=False,
        help="Outbound CIDRs never captured (checked before -i).")] = None,
    istio_outbound_ports: Annotated[str | None, typer.Option(
        "--istio-outbound-ports", "-q", show_default=False,
        help="Outbound ports always captured, whatever the address.")] = None,
    istio_local_outbound_ports_exclude: Annotated[str | None, typer.Option(
        "--istio-local-outbound-ports-exclude", "-o", show_default=False,
        help="Outbound ports never captured.")] = None,
    kube_virt_interfaces: Annotated[str | None, typer.Option(
        "--kube-virt-interfaces", "-k", show_default=False,
        help="Interfaces (KubeVirt VMs) whose inbound traffic is treated as outbound.")] = None,
    dry_run: Annotated[bool | None, typer.Option(
        "--dry-run", "-n", show_default=False,
        help="Print the rules (iptables-restore form, IPv4 then IPv6) instead of applying them.")] = None,
    iptables_probe_port: Annotated[str | None, typer.Option(
        "--iptables-probe-port", show_default=False, help="Port the validation probe dials (default 15002).")] = None,
    probe_timeout: Annotated[str | None, typer.Option(
        "--probe-timeout", show_default=False, help="How long validation waits, as a Go duration (default 5s).")
    ] = None,
    redirect_dns: Annotated[bool | None, typer.Option(
        "--redirect-dns", show_default=False,
        help="Capture DNS to resolv.conf's servers, to the agent on 15053 ($REDIRECT_DNS, $ISTIO_META_DNS_CAPTURE).")
    ] = None,
    drop_invalid: Annotated[bool | None, typer.Option(
        "--drop-invalid", show_default=False,
        help="Drop packets conntrack finds INVALID instead of letting them reset connections ($INVALID_DROP).")
    ] = None,
    dual_stack: Annotated[bool | None, typer.Option(
        "--dual-stack", show_default=False, help="IPv6 rules as soon as the pod has an IPv6 address ($ISTIO_DUAL_STACK).")
    ] = None,
    capture_all_dns: Annotated[bool | None, typer.Option(
        "--capture-all-dns", show_default=False, help="With --redirect-dns: capture DNS to any server.")] = None,
    network_namespace: Annotated[str | None, typer.Option(
        "--network-namespace", show_default=False,
        help="Apply in this network namespace (a path: /var/run/netns/NAME, /proc/PID/ns/net).")] = None,
    cni_mode: Annotated[bool | None, typer.Option(
        "--cni-mode", show_default=False, help="Accepted for istio-cni's sake; changes nothing here.")] = None,
    skip_rule_apply: Annotated[bool | None, typer.Option(
        "--skip-rule-apply", show_default=False, help="Do not apply the rules (with --run-validation: only check).")
    ] = None,
    run_validation: Annotated[bool | None, typer.Option(
        "--run-validation", show_default=False,
        help="Check that a connection from this process is captured; exit 126 if not (run as the proxy user).")
    ] = None,
    reconcile: Annotated[bool | None, typer.Option(
        "--reconcile", show_default=False, help="Replace rules of an earlier run that differ from these.")] = None,
    cleanup_only: Annotated[bool | None, typer.Option(
        "--cleanup-only", show_default=False, help="Remove Istio's chains and rules, and apply nothing.")] = None,
    force_apply: Annotated[bool | None, typer.Option(
        "--force-apply", show_default=False, help="Apply even when matching rules are already there.")] = None,
    native_nftables: Annotated[bool | None, typer.Option(
        "--native-nftables", show_default=False, help="istio-nftables mode: not supported by meshctl.")] = None,
    force_iptables_binary: Annotated[str | None, typer.Option(
        "--force-iptables-binary", show_default=False, help="legacy or nft (default: detected as istio-iptables does).")
    ] = None,
    pod_ips: Annotated[str | None, typer.Option(
        "--pod-ips", show_default=False,
        help="meshctl only: the pod's addresses (comma list) instead of this namespace's; decides IPv6.")] = None,
    resolv_conf: Annotated[str, typer.Option(
        "--resolv-conf", help="meshctl only: where --redirect-dns reads the DNS servers.")] = "/etc/resolv.conf",
    log_output_level: Annotated[str | None, typer.Option(
        "--log_output_level", show_default=False,
        help="Accepted for istio-init's arguments; meshctl prints warnings and errors only.")] = None,
) -> int:
    """Capture a pod's traffic for its sidecar with Istio's iptables rules (istio-iptables)."""
    import os

    from meshctl.capture import apply, plan, pod, settings, validation
    from meshctl.capture.config import split
    from meshctl.cli.output import err, out, warn
    from meshctl.errors import MeshctlError

    # The istio-iptables flags are the parameters named after them (settings.FLAGS).
    given = {flag.name: ctx.params[flag.field] for flag in settings.FLAGS}
    flags = settings.read_flags(given, os.environ)
    if flags.native_nftables:
        raise MeshctlError("--native-nftables (istio-nftables) is not supported: meshctl writes iptables rules")
    if flags.network_namespace:
        pod.enter_network_namespace(flags.network_namespace)
    local = pod.LocalPod(tuple(split(pod_ips)) if pod_ips is not None else None, resolv_conf)
    settled = settings.settle(flags, os.environ, local)
    for note in plan.warnings(settled.config, resolv_conf):
        warn(note)
    ruleset = plan.build_rules(settled.config)
    if flags.dry_run:
        out(ruleset.payloads())
    elif not flags.skip_rule_apply:
        options = apply.Options(flags.reconcile, flags.cleanup_only, flags.force_apply, flags.force_iptables_binary)
        outcome = apply.install(ruleset, settled.config, options)
        counts = f" (IPv4: {len(ruleset.ipv4)} rules, IPv6: {len(ruleset.ipv6)})"
        err(f"iptables rules {outcome.value}{'' if outcome is apply.Outcome.CLEANED else counts}")
    if flags.run_validation:
        validation.validate(settled.config, settled.host_ip, flags.iptables_probe_port, flags.probe_timeout)
        err("iptables validation passed: the probe connection was captured")
    return 0
