"""`meshctl kube-inject`: every supported kind and annotation against golden outputs (checked by
hand against Istio's own kube-inject testdata shapes), injecting twice changing nothing, the
istio-init arguments doing in `meshctl iptables` what the annotations ask, and Istio's
annotation checks refusing bad values with the file, line, object and annotation named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from testsupport import assert_matches_golden, run_cli

TESTDATA = Path(__file__).with_name("testdata")
CASES = sorted(path.stem for path in TESTDATA.glob("*.yaml"))


def inject(capsys: pytest.CaptureFixture[str], path: Path | str, *flags: str) -> str:
    code, out, err = run_cli(capsys, "kube-inject", "-f", str(path), *flags)
    assert code == 0, err
    return out


def documents(text: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def containers(obj: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod_spec(obj)
    (found,) = [c for c in [*spec.get("initContainers", ()), *spec["containers"]] if c["name"] == name]
    return found


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", ())}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = inject(capsys, TESTDATA / f"{case}.yaml")
    assert_matches_golden(TESTDATA / f"{case}.yaml.injected", out)


@pytest.mark.parametrize("case", CASES)
def test_injecting_twice_changes_nothing(case: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    once = inject(capsys, TESTDATA / f"{case}.yaml")
    (tmp_path / "once.yaml").write_text(once)
    assert inject(capsys, tmp_path / "once.yaml") == once


@pytest.mark.parametrize(("case", "kind", "owner"), [
    ("pod", "Pod", "kubernetes://apis/v1/namespaces/bookinfo/pods/details-v1"),
    ("deployment", "Deployment", "kubernetes://apis/apps/v1/namespaces/default/deployments/hello"),
    ("statefulset", "StatefulSet", "kubernetes://apis/apps/v1/namespaces/shop/statefulsets/ratings"),
    ("daemonset", "DaemonSet", "kubernetes://apis/apps/v1/namespaces/monitoring/daemonsets/node-agent"),
    ("replicaset", "ReplicaSet", "kubernetes://apis/apps/v1/namespaces/default/replicasets/frontend"),
    ("job", "Job", "kubernetes://apis/batch/v1/namespaces/default/jobs/pi"),
    ("cronjob", "CronJob", "kubernetes://apis/batch/v1/namespaces/default/cronjobs/hellocron"),
])
def test_every_kind_gets_both_containers(case: str, kind: str, owner: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (obj, *_) = documents(inject(capsys, TESTDATA / f"{case}.yaml"))
    assert obj["kind"] == kind
    spec = pod_spec(obj)
    assert spec["initContainers"][-1]["name"] == "istio-init"
    assert spec["containers"][-1]["name"] == "istio-proxy"
    proxy = containers(obj, "istio-proxy")
    assert proxy["args"][:2] == ["agent", "$(POD_NAME).$(POD_NAMESPACE)"]
    assert env(proxy)["ISTIO_META_OWNER"] == owner
    assert proxy["securityContext"]["runAsUser"] == 1337
    assert [p["containerPort"] for p in proxy["ports"]] == [15090]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    volumes = {v["name"] for v in spec["volumes"]}
    assert {"istio-token", "istiod-ca-cert", "workload-socket", "istio-envoy"} <= volumes
    init = containers(obj, "istio-init")
    assert init["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]


def test_other_kinds_pass_through_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    out = inject(capsys, TESTDATA / "deployment.yaml")
    assert "  name: hello   # the Deployment's Service\n" in out
    assert 'metadata: {name: settings}\ndata:\n  key: "value"\n---\n' in out


def test_a_list_is_injected_item_by_item(capsys: pytest.CaptureFixture[str]) -> None:
    (listed,) = documents(inject(capsys, TESTDATA / "list.yaml"))
    deployment, service = listed["items"]
    assert [c["name"] for c in pod_spec(deployment)["containers"]] == ["reviews", "istio-proxy"]
    assert service == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "default"},
                       "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "reviews"}}}


def test_skipped_workloads_are_unchanged_and_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "kube-inject", "-f", str(TESTDATA / "skipped.yaml"))
    assert code == 0
    assert documents(out) == documents((TESTDATA / "skipped.yaml").read_text())
    assert err.splitlines() == [
        '===> Skipping injection because Deployment "opted-out" has sidecar injection disabled',
        '===> Skipping injection because Pod "annotated-out" has sidecar injection disabled',
        '===> Skipping injection because DaemonSet "kube-net/host-net" has host networking enabled',
    ]


def istio_init_args(capsys: pytest.CaptureFixture[str], case: str) -> list[str]:
    (obj, *_) = documents(inject(capsys, TESTDATA / f"{case}.yaml"))
    args: list[str] = containers(obj, "istio-init")["args"]
    return args


def test_traffic_annotations_become_istio_iptables_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert istio_init_args(capsys, "traffic-annotations") == [
        "iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
        "-i", "10.96.0.0/12,fd00:10:96::/112", "-x", "10.96.0.1/32", "-b", "8080,8443",
        "-d", "15090,15021,8443,15030", "-q", "5432", "-o", "3306,6379", "-k", "net1", "-c", "eth1",
        "--log_output_level=default:info",
    ]


def test_default_istio_init_arguments_are_istios(capsys: pytest.CaptureFixture[str]) -> None:
    assert istio_init_args(capsys, "deployment") == [
        "iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
        "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info",
    ]


def test_istio_init_arguments_drive_meshctl_iptables(capsys: pytest.CaptureFixture[str]) -> None:
    """The injected arguments, given to `meshctl iptables --dry-run` as istio-init would run
    them, capture exactly what the annotations say."""
    args = istio_init_args(capsys, "traffic-annotations")
    code, rules, err = run_cli(capsys, *args, "--dry-run", "--pod-ips", "10.1.2.3,fd00::3")
    assert code == 0, err
    lines = rules.splitlines()
    assert "-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT" in lines
    assert "-A ISTIO_INBOUND -p tcp --dport 8443 -j ISTIO_IN_REDIRECT" in lines
    assert "-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN" in lines
    assert "-A ISTIO_OUTPUT -p tcp --dport 6379 -j RETURN" in lines
    assert "-A ISTIO_OUTPUT -d 10.96.0.1/32 -j RETURN" in lines
    assert "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT" in lines
    assert "-A ISTIO_OUTPUT -p tcp --dport 5432 -j ISTIO_REDIRECT" in lines
    assert not any("--dport 15030 -j ISTIO_IN_REDIRECT" in line for line in lines)


def test_tproxy_runs_the_proxy_as_root_in_the_proxy_group(capsys: pytest.CaptureFixture[str]) -> None:
    (pod,) = documents(inject(capsys, TESTDATA / "tproxy.yaml"))
    proxy = containers(pod, "istio-proxy")
    assert proxy["securityContext"]["runAsUser"] == 0
    assert proxy["securityContext"]["runAsGroup"] == 1337
    assert proxy["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
    assert env(proxy)["ISTIO_META_INTERCEPTION_MODE"] == "TPROXY"
    assert proxy["args"][proxy["args"].index("--interception-mode") + 1] == "TPROXY"
    init = containers(pod, "istio-init")
    assert init["args"][init["args"].index("-m") + 1] == "TPROXY"


def test_interception_none_has_no_istio_init(capsys: pytest.CaptureFixture[str]) -> None:
    (obj,) = documents(inject(capsys, TESTDATA / "interception-none.yaml"))
    assert "initContainers" not in pod_spec(obj)
    status = obj["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/status"]
    assert status.startswith('{"initContainers":null,"containers":["istio-proxy"],')


def test_proxy_config_annotation(capsys: pytest.CaptureFixture[str]) -> None:
    (obj,) = documents(inject(capsys, TESTDATA / "proxy-config.yaml"))
    spec = pod_spec(obj)
    assert [c["name"] for c in spec["containers"]] == ["istio-proxy", "orders"]  # the app waits for the proxy
    proxy = containers(obj, "istio-proxy")
    assert proxy["args"][-4:] == ["--concurrency", "4", "--termination-drain-duration", "20s"]
    assert env(proxy)["ISTIO_META_DNS_CAPTURE"] == "true"
    assert env(containers(obj, "istio-init")) == {"ISTIO_META_DNS_CAPTURE": "true"}  # --redirect-dns's variable
    assert env(proxy)["PROXY_CONFIG"] == ('{"holdApplicationUntilProxyStarts":true,"concurrency":4,'
                                          '"terminationDrainDuration":"20s","proxyMetadata":'
                                          '{"ISTIO_META_DNS_CAPTURE":"true"}}\n')


def test_resource_annotations_replace_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    (obj,) = documents(inject(capsys, TESTDATA / "resources.yaml"))
    expected = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    assert containers(obj, "istio-proxy")["resources"] == expected
    assert containers(obj, "istio-init")["resources"] == expected
    proxy = containers(obj, "istio-proxy")
    assert proxy["args"][proxy["args"].index("--proxy-log-level") + 1] == "debug"
    assert proxy["args"][proxy["args"].index("--log-level") + 1] == "debug"


def test_only_a_cpu_request_leaves_no_limits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = (TESTDATA / "tproxy.yaml").read_text().replace("sidecar.istio.io/interceptionMode: TPROXY",
                                                          "sidecar.istio.io/proxyCPU: 200m")
    (tmp_path / "cpu.yaml").write_text(text)
    (pod,) = documents(inject(capsys, tmp_path / "cpu.yaml"))
    assert containers(pod, "istio-proxy")["resources"] == {"requests": {"cpu": "200m"}}


def test_native_sidecar_runs_in_init_containers(capsys: pytest.CaptureFixture[str]) -> None:
    (pod,) = documents(inject(capsys, TESTDATA / "native-sidecar.yaml"))
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init", "istio-proxy", "setup"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
    assert containers(pod, "istio-proxy")["restartPolicy"] == "Always"
    assert pod["metadata"]["annotations"]["sidecar.istio.io/status"].startswith(
        '{"initContainers":["istio-init","istio-proxy"],"containers":null,')


def test_flags_and_mesh_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("trustDomain: example.org\nmeshId: mesh1\nproxyListenPort: 15101\n"
                    "defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true'}\n")
    (pod,) = documents(inject(capsys, TESTDATA / "tproxy.yaml", "--mesh-config", str(mesh), "--image",
                              "registry.example.com/meshctl:9", "-r", "canary", "-i", "mesh-system"))
    proxy = containers(pod, "istio-proxy")
    assert proxy["image"] == containers(pod, "istio-init")["image"] == "registry.example.com/meshctl:9"
    assert proxy["args"][proxy["args"].index("--xds-address") + 1] == "istiod-canary.mesh-system.svc:15010"
    assert proxy["args"][proxy["args"].index("--trust-domain") + 1] == "example.org"
    assert env(proxy)["ISTIO_META_MESH_ID"] == "mesh1"
    assert env(proxy)["TRUST_DOMAIN"] == "example.org"
    assert env(proxy)["CA_ADDR"] == "istiod-canary.mesh-system.svc:15012"
    assert env(proxy)["PROXY_CONFIG"] == '{"proxyMetadata":{"ISTIO_META_DNS_CAPTURE":"true"}}\n'
    init = containers(pod, "istio-init")
    assert init["args"][init["args"].index("-p") + 1] == "15101"
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "canary"
    assert pod["metadata"]["annotations"]["sidecar.istio.io/status"].endswith('"revision":"canary"}')


def test_stdin_and_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.yaml"
    with (TESTDATA / "job.yaml").open() as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        code, out, _ = run_cli(capsys, "kube-inject", "-f", "-", "-o", str(target))
    assert (code, out) == (0, "")
    assert target.read_text() == (TESTDATA / "job.yaml.injected").read_text()


BAD_ANNOTATIONS = [
    ("sidecar.istio.io/interceptionMode", "REDIRECTED",
     "interceptionMode invalid, use REDIRECT,TPROXY,NONE: REDIRECTED"),
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/8,10.96.0.1",
     "includeIPRanges invalid: failed parsing cidr '10.96.0.1': netip.ParsePrefix(\"10.96.0.1\"): no '/'"),
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "*",
     "excludeIPRanges invalid: failed parsing cidr '*': netip.ParsePrefix(\"*\"): no '/'"),
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.0/33",
     "excludeIPRanges invalid: failed parsing cidr '10.0.0.0/33': netip.ParsePrefix(\"10.0.0.0/33\"): "
     "prefix length out of range"),
    ("traffic.sidecar.istio.io/includeInboundPorts", "80,http",
     "includeInboundPorts invalid: failed parsing port 'http': failed parsing port 'http': "
     'strconv.ParseUint: parsing "http": invalid syntax'),
    ("traffic.sidecar.istio.io/excludeInboundPorts", "70000",
     "excludeInboundPorts invalid: failed parsing port '70000': failed parsing port '70000': "
     'strconv.ParseUint: parsing "70000": value out of range'),
    ("traffic.sidecar.istio.io/excludeOutboundPorts", "*",
     "excludeOutboundPorts invalid: failed parsing port '*': failed parsing port '*': "
     'strconv.ParseUint: parsing "*": invalid syntax'),
    ("status.sidecar.istio.io/port", "-1",
     "excludeInboundPorts invalid: failed parsing port '-1': strconv.ParseUint: parsing \"-1\": invalid syntax"),
    ("readiness.status.sidecar.istio.io/periodSeconds", "5s", 'strconv.ParseUint: parsing "5s": invalid syntax'),
    ("prometheus.istio.io/merge-metrics", "yes", 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ("proxy.istio.io/config", "holdApplication: true",
     'failed to convert to apply proxy config: unknown field "holdApplication" in v1alpha1.ProxyConfig'),
    ("proxy.istio.io/config", "concurrency: -2", "concurrency must be greater than or equal to 0, not -2"),
    ("sidecar.istio.io/proxyCPU", "lots",
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("sidecar.istio.io/proxyMemoryLimit", "1GB",
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_ANNOTATIONS, ids=[f"{n}={v}" for n, v, _ in BAD_ANNOTATIONS])
def test_bad_annotation_is_refused_with_istios_message(name: str, value: str, reason: str,
                                                       capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations:
        {name}: {yaml.safe_dump(value).splitlines()[0] if value != '*' else "'*'"}
    spec: {{containers: [{{name: web, image: web}}]}}
""")
    code, out, err = run_cli(capsys, "kube-inject", "-f", str(path))
    assert (code, out) == (65, "")
    field = f"spec.template.metadata.annotations[{name!r}]"
    assert err.strip() == f"error: {path}:10: Deployment shop/web: {field}: invalid value '{value}' for annotation '{name}': {reason}"


def test_every_bad_annotation_of_every_object_is_reported(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""apiVersion: v1
kind: Pod
metadata:
  name: a
  annotations:
    sidecar.istio.io/interceptionMode: X
    traffic.sidecar.istio.io/excludeInboundPorts: "y"
spec: {containers: [{name: a, image: a}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: b
  annotations: {sidecar.istio.io/proxyMemory: "z"}
spec: {containers: [{name: b, image: b}]}
""")
    code, _, err = run_cli(capsys, "kube-inject", "-f", str(path))
    assert code == 65
    assert [line.removeprefix("error: ").split(": ")[0:2] for line in err.splitlines()] == [
        [f"{path}:6", "Pod default/a"], [f"{path}:7", "Pod default/a"], [f"{path}:14", "Pod default/b"]]


def test_a_bad_mesh_default_config_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("defaultConfig:\n  statusPort: 99999\n")
    code, _, err = run_cli(capsys, "kube-inject", "-f", str(TESTDATA / "pod.yaml"), "--mesh-config", str(mesh))
    assert code == 65
    assert err.strip() == f"error: {mesh}: defaultConfig: statusPort: port number 99999 must be in the range 1..65535"


def test_unreadable_input_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: Pod\nmetadata: {name: [\n")
    code, _, err = run_cli(capsys, "kube-inject", "-f", str(path))
    assert code == 65
    assert err.startswith(f"error: {path}:3: invalid YAML")
    code, _, err = run_cli(capsys, "kube-inject", "-f", str(tmp_path / "missing.yaml"))
    assert code == 65
    assert "missing.yaml" in err


def parsed(args: list[str]) -> dict[str, Any]:
    """A container's arguments parsed by meshctl's own command line, as the image's entrypoint
    would parse them (types, ranges and choices checked), without running the command."""
    import typer

    from meshctl.cli import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    with group.make_context("meshctl", list(args)) as context:
        command = group.get_command(context, args[0])
        assert command is not None, args[0]
        with command.make_context(args[0], list(args[1:]), parent=context) as sub:
            return dict(sub.params)


@pytest.mark.parametrize("case", ["pod", "deployment", "tproxy", "proxy-config", "resources", "native-sidecar"])
def test_injected_command_lines_are_meshctls(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    (obj, *_) = documents(inject(capsys, TESTDATA / f"{case}.yaml"))
    proxy = containers(obj, "istio-proxy")
    agent = parsed(proxy["args"])
    assert agent["target"] == "$(POD_NAME).$(POD_NAMESPACE)"
    assert (agent["service_account"], agent["ip"]) == ("$(SERVICE_ACCOUNT)", "$(INSTANCE_IP)")
    defined = {item["name"] for item in proxy["env"]}
    assert {"POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT", "INSTANCE_IP"} <= defined  # what $(VAR) expands
    assert agent["token_file"] == "/var/run/secrets/tokens/istio-token"
    assert agent["ca_root_cert"] == "/var/run/secrets/istio/root-cert.pem"
    mounts = {mount["mountPath"] for mount in proxy["volumeMounts"]}
    assert {"/var/run/secrets/tokens", "/var/run/secrets/istio", "/var/run/secrets/workload-spiffe-uds",
            "/etc/istio/proxy"} <= mounts
    assert agent["status_port"] == proxy["readinessProbe"]["httpGet"]["port"] == 15021
    mode = env(proxy)["ISTIO_META_INTERCEPTION_MODE"]
    assert agent["interception"] == mode
    labels = dict(item.split("=", 1) for item in agent["labels"].split(","))
    assert labels["security.istio.io/tlsMode"] == "istio"
    if case == "proxy-config":
        assert (agent["concurrency"], agent["drain"]) == (4, "20s")
    if "istio-init" in [c["name"] for c in pod_spec(obj).get("initContainers", ())]:
        init = parsed(containers(obj, "istio-init")["args"])
        assert init["istio_inbound_interception_mode"] == mode


def test_command_line_parsing_refuses_what_meshctl_refuses() -> None:
    """`parsed` above really checks: a value the agent does not take is refused."""
    import typer

    for bad in (["agent", "p.ns", "--interception-mode", "CAPTURE"], ["agent", "p.ns", "--status-port", "70000"],
                ["agent", "p.ns", "--no-such-flag"], ["iptables", "--no-such-flag"]):
        with pytest.raises(typer._click.exceptions.UsageError):
            parsed(bad)


def test_the_pods_own_istio_proxy_is_merged_over_the_injected_one(capsys: pytest.CaptureFixture[str]) -> None:
    (obj,) = documents(inject(capsys, TESTDATA / "user-proxy.yaml"))
    assert [c["name"] for c in pod_spec(obj)["containers"]] == ["tuned", "istio-proxy"]
    proxy = containers(obj, "istio-proxy")
    assert proxy["image"] == "ghcr.io/meshctl/meshctl:0.1.0"  # `auto`
    assert proxy["resources"] == {"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    assert env(proxy)["EXTRA_FLAG"] == "on"
    assert env(proxy)["TRUST_DOMAIN"] == "example.org"
    assert proxy["args"][0] == "agent"
    annotations = obj["spec"]["template"]["metadata"]["annotations"]
    assert annotations["proxy.istio.io/overrides"].startswith('{"containers":[{"name":"istio-proxy","image":"auto"')
