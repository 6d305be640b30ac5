"""Applying, re-applying, reconciling and removing the rules with real iptables, each test in a
network namespace of its own (no Envoy: what the kernel holds is the point here)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture_support import Netns, namespaces, require_capture_support

EVERYTHING = ["-m", "TPROXY", "-b", "*", "-d", "15020", "-i", "10.96.0.0/12,fd00:96::/108", "-k", "vm0",
              "-x", "10.96.0.1/32,fd00:96::1/128", "-q", "3306", "-o", "25", "-c", "eth9", "--drop-invalid",
              "--redirect-dns", "-u", "1337"]


@pytest.fixture
def pod() -> Iterator[Netns]:
    require_capture_support()
    with namespaces(f"mca{os.getpid() % 100000}") as (netns,):
        netns.ip("addr", "add", "10.78.0.2/32", "dev", "lo")
        yield netns


def meshctl(pod: Netns, *argv: str, uid: int | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = pod.run([sys.executable, "-m", "meshctl", "iptables", *argv], uid, uid,
                   env={**os.environ, **(env or {})}, timeout=60)
    return done.returncode, done.stdout + done.stderr


def saved(pod: Netns, binary: str = "iptables-save") -> str:
    done = pod.run([binary])
    assert done.returncode == 0, done.stderr
    return done.stdout


def rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A ")]


def test_every_match_and_target_loads_in_both_families_and_cleans_up(pod: Netns, tmp_path: Path) -> None:
    """TPROXY, DNS with conntrack zones, interfaces, ports, CIDRs of both families, drop-invalid,
    owner groups: the kernel takes all of it; a second run finds it intact (`iptables -C` on
    every rule); `--cleanup-only` leaves no rule at all behind, built-in chains included."""
    pod.ip("-6", "addr", "add", "fd00::2/128", "dev", "lo")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.96.0.10\nnameserver fd00::a\n")
    argv = [*EVERYTHING, "--resolv-conf", str(resolv), "--dual-stack"]
    env = {"ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE": "42"}
    code, output = meshctl(pod, *argv, env=env)
    assert code == 0, output
    assert "applied (IPv4: " in output
    v4, v6 = saved(pod), saved(pod, "ip6tables-save")
    assert ":ISTIO_TPROXY" in v4 and ":ISTIO_TPROXY" in v6 and ":ISTIO_DROP" in v4
    assert "-j CT --zone 2" in v6 and "--gid-owner 42" in v4 and "fd00::a/128" in v6
    assert "fwmark 0x539 lookup 133" in pod.run(["ip", "-6", "rule"]).stdout
    assert "inet6 ::6/128" in pod.run(["ip", "-6", "addr", "show", "dev", "lo"]).stdout

    code, output = meshctl(pod, *argv, env=env)
    assert code == 0 and "unchanged" in output, output
    assert (rules(saved(pod)), rules(saved(pod, "ip6tables-save"))) == (rules(v4), rules(v6))

    code, output = meshctl(pod, *argv, "--cleanup-only", env=env)
    assert code == 0 and "removed" in output, output
    assert rules(saved(pod)) == [] and rules(saved(pod, "ip6tables-save")) == []
    assert "ISTIO" not in saved(pod) + saved(pod, "ip6tables-save")


def test_differing_rules_fail_unless_reconciled(pod: Netns) -> None:
    assert meshctl(pod, "-u", "1337", "-i", "10.0.0.0/8", "-b", "*")[0] == 0
    code, output = meshctl(pod, "-u", "1337", "-i", "10.96.0.0/12", "-b", "*")
    assert code == 1
    assert "Chain already exists" in output and "run again with --reconcile" in output
    code, output = meshctl(pod, "-u", "1337", "-i", "10.96.0.0/12", "-b", "*", "--reconcile")
    assert code == 0 and "reconciled" in output, output
    nat = saved(pod)
    assert "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT" in nat and "10.0.0.0/8" not in nat
    assert rules(pod.run(["iptables-save", "-t", "filter"]).stdout) == []  # the guardrails are gone again


def test_cleanup_with_other_flags_still_removes_every_istio_chain(pod: Netns) -> None:
    """Chains and the jumps to them go whatever flags made them; rules Istio adds to built-in
    chains without a jump (TPROXY's marks, interface exclusions) go with the flags that made
    them, as in istio-iptables."""
    made_with = ("-u", "1337", "-i", "*", "-b", "8080", "-m", "TPROXY", "-c", "eth9")
    assert meshctl(pod, *made_with)[0] == 0
    assert meshctl(pod, "--cleanup-only")[0] == 0
    assert "ISTIO" not in saved(pod)
    assert any("CONNMARK" in rule for rule in rules(saved(pod)))
    assert meshctl(pod, *made_with, "--cleanup-only")[0] == 0
    assert rules(saved(pod)) == []


def test_dry_run_changes_nothing(pod: Netns) -> None:
    code, output = meshctl(pod, "-n", "-u", "1337", "-i", "*", "-b", "*")
    assert code == 0 and output.startswith("* nat\n-N ISTIO_INBOUND\n")
    assert "ISTIO" not in saved(pod)


def test_validation_passes_only_for_the_proxy(pod: Netns) -> None:
    """The probe to 127.0.0.6 is redirected to the capture port for UID 1337 and no one else."""
    assert meshctl(pod, "-u", "1337", "-i", "*", "-b", "*")[0] == 0
    probe = ("--skip-rule-apply", "--run-validation", "--probe-timeout", "1500ms", "-u", "1337")
    code, output = meshctl(pod, *probe, uid=1337)
    assert code == 0 and "validation passed" in output, output
    code, output = meshctl(pod, *probe, uid=1000)
    assert code == 126
    assert "iptables validation failed: a connection to 127.0.0.6 port 15002 was not redirected" in output


def test_network_namespace_flag_applies_there(pod: Netns) -> None:
    """`--network-namespace` applies inside that namespace (run here from another one)."""
    with namespaces(f"mcb{os.getpid() % 100000}") as (other,):
        done = other.run([sys.executable, "-m", "meshctl", "iptables", "-u", "1337", "-i", "*",
                          "--network-namespace", pod.path])
        assert done.returncode == 0, done.stderr
        assert "ISTIO_OUTPUT" in saved(pod) and "ISTIO" not in saved(other)
