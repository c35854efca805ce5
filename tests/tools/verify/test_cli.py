"""`python -m tools.verify` as a user runs it: the whole command with a stand-in kubectl answering from
recorded API responses, with a real kubectl against a fake API server, and its exit statuses.

The whole-stack checks run in a network namespace of the test's own holding the pinned 192.168.129.51, so
neither the DNS query nor the UDP probe leaves it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster
from tests.netns import NetNamespace, network_namespace
from tests.program import PROJECT_DIR
from tests.standin_kubectl import calls
from tests.system_programs import require_tool
from tests.tools.verify.kind_dev import PINNED, cluster_objects
from tests.tools.verify.servers import dnsmasq_command, running, serve_once
from tests.tools.verify.standin import (
    BROKEN,
    HEALTHY,
    lan_project,
    on_port,
    run_verify,
    serve,
    serve_refusal,
)
from tools.verify import cli

# --- The command, end to end, with a stand-in kubectl --------------------------------------------------


@pytest.fixture
def lan(tmp_path) -> Iterator[NetNamespace]:
    """A network namespace of the test's own holding the LAN's bootstrap address and, on its 127.0.0.1
    port 53, the real dnsmasq: whole-stack checks run there, so their probes never leave it."""
    with network_namespace(f"{PINNED}/32") as namespace:

        def answers() -> bool:
            dig = [
                require_tool("dig"),
                "+short",
                "+time=1",
                "+tries=1",
                "@127.0.0.1",
                "bootstrap.macula.local",
            ]
            result = subprocess.run(namespace.command(dig), capture_output=True, text=True, check=False)
            return result.stdout.strip() == str(PINNED)

        with running(namespace.command(dnsmasq_command(53)), tmp_path / "dnsmasq.log", answers):
            yield namespace


def test_healthy_stack(tmp_path, lan):
    with lan.socket() as bootstrap:
        bootstrap.bind((str(PINNED), 0))
        bootstrap.settimeout(30)
        udp_port = bootstrap.getsockname()[1]
        serve_once(bootstrap, lambda datagram: datagram)
        project = lan_project(tmp_path / "project", "bootstrap.macula.local", udp_port)
        kubectl_dir = tmp_path / "bin"
        kubectl_dir.mkdir()
        serve(kubectl_dir, HEALTHY, lambda text: on_port(text, udp_port))
        result = run_verify(
            kubectl_dir, "--stack", "lan", "--resolver", "127.0.0.1", "--timeout", "2",
            "--project-dir", str(project), namespace=lan,
        )  # fmt: skip
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "verify stack lan: context kind-macula-dev",
        "ok    controller      metallb-system/metallb-controller: 1/1 ready",
        "ok    speakers        metallb-system/metallb-speaker: 1/1 ready",
        "ok    pools           lan-pool (192.168.129.50-192.168.129.60)",
        "ok    advertisements  lan-advertisement (pools: lan-pool)",
        "ok    node-ips        1 node address, none inside a pool",
        "ok    lb-exclusion    macula-dev-control-plane: without "
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "skip  strict-arp      strictArp is off for this stack: kube-proxy is not checked",
        "ok    announced       speakers that may announce run on macula-dev-control-plane",
        "ok    service         macula/macula-bootstrap: LoadBalancer, external IP 192.168.129.51",
        "ok    dns             bootstrap.macula.local → 192.168.129.51 (asked 127.0.0.1:53)",
        f"ok    udp             192.168.129.51:{udp_port}/udp: a 1200-byte reply: "
        "reachable, and something answers",
        "skip  arp             not probed from here: no interface of this host is on the network of "
        "192.168.129.50; run verify on the LAN to probe it",
        "ok    no check failed for stack lan",
    ]
    assert result.returncode == 0
    # Every call went to the stack's context, never to whatever the kubeconfig has selected.
    assert all(call[:2] == ["--context", "kind-macula-dev"] for call in calls(kubectl_dir))
    assert len(calls(kubectl_dir)) == 8
    assert calls(kubectl_dir)[2][2:] == ["get", "nodes", "-o", "json", "--request-timeout=20s"]


def test_broken_stack_names_every_failing_check(tmp_path, lan):
    with lan.socket() as probe:
        # A port nothing listens on in the namespace: bound a moment, then closed.
        probe.bind((str(PINNED), 0))
        closed_port = probe.getsockname()[1]
    project = lan_project(tmp_path / "project", "override.macula.local", closed_port)
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(kubectl_dir, BROKEN, lambda text: on_port(text, closed_port))
    result = run_verify(
        kubectl_dir, "--stack", "lan", "--resolver", "127.0.0.1", "--timeout", "1",
        "--project-dir", str(project), namespace=lan,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "verify stack lan: context kind-macula-dev"
    assert [line[:22] for line in lines[1:13]] == [
        "FAIL  controller      ",
        "FAIL  speakers        ",
        "FAIL  pools           ",
        "FAIL  advertisements  ",
        "ok    node-ips        ",
        "FAIL  lb-exclusion    ",
        "skip  strict-arp      ",
        "FAIL  announced       ",
        "FAIL  service         ",
        "FAIL  dns             ",
        "FAIL  udp             ",
        "skip  arp             ",
    ]
    # The label kubeadm put back, and the command that takes it off again.
    assert lines[6].endswith(
        "node macula-dev-control-plane carries node.kubernetes.io/exclude-from-external-load-balancers "
        "again, so its speaker does not announce; take it off again: pulumi up --stack lan --replace "
        "'urn:pulumi:lan::macula-lan::macula:lan:ArpReadiness$command:local:Command::arp-readiness-include-"
        "macula-dev-control-plane'"
    )
    assert "the bootstrap Service has no serving endpoint (its pods are not ready)" in lines[8]
    assert "no L2Advertisement advertises pool lan-pool, so no speaker announces it" in lines[8]
    assert lines[1].endswith("0/1 ready; not every replica is ready")
    assert lines[2] == (
        "FAIL  speakers        metallb-system/metallb-speaker: 0/1 ready; not every speaker is ready; every "
        "node (macula-dev-control-plane) carries node.kubernetes.io/exclude-from-external-load-balancers, so "
        "no speaker announces: MetalLB 0.14.3 skips such nodes (set clearLoadBalancerExclusion, or add a "
        "worker node)"
    )
    assert lines[3].endswith("IPAddressPool lan-pool is missing (none present)")
    assert lines[4].endswith("L2Advertisement lan-advertisement is missing (none present)")
    assert "external IP <pending>; no external IP yet (pending)" in lines[9]
    assert "override.macula.local → 127.0.0.2, expected 192.168.129.51 (asked 127.0.0.1:53)" in lines[10]
    assert f"192.168.129.51:{closed_port}/udp: ICMP port unreachable" in lines[11]
    assert lines[13] == (
        "FAIL  9 of 12 checks failed for stack lan: "
        "controller, speakers, pools, advertisements, lb-exclusion, announced, service, dns, udp"
    )
    assert len(lines) == 14
    assert result.returncode == 1


def test_stack_without_bootstrap_skips_the_bootstrap_checks(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    # beam00's own range, in the otherwise recorded kind-dev objects.
    serve(
        kubectl_dir,
        HEALTHY,
        lambda text: text.replace("192.168.129.50-192.168.129.60", "192.168.129.70-192.168.129.80"),
    )
    result = run_verify(kubectl_dir, "--stack", "beam00")
    assert result.stdout.splitlines() == [
        "verify stack beam00: context beam00",
        "ok    controller      metallb-system/metallb-controller: 1/1 ready",
        "ok    speakers        metallb-system/metallb-speaker: 1/1 ready",
        "ok    pools           lan-pool (192.168.129.70-192.168.129.80)",
        "ok    advertisements  lan-advertisement (pools: lan-pool)",
        "ok    node-ips        1 node address, none inside a pool",
        "skip  lb-exclusion    no node is listed in clearLoadBalancerExclusion",
        "skip  strict-arp      strictArp is off for this stack: kube-proxy is not checked",
        "ok    announced       speakers that may announce run on macula-dev-control-plane",
        "skip  service         bootstrap is not configured for this stack",
        "skip  dns             bootstrap is not configured for this stack",
        "skip  udp             bootstrap is not configured for this stack",
        "skip  arp             not probed (--no-arp)",
        "ok    no check failed for stack beam00",
    ]
    assert result.returncode == 0
    assert all(call[:2] == ["--context", "beam00"] for call in calls(kubectl_dir))


def test_nodes_that_cannot_be_read_warn_the_speakers_check_and_keep_the_node_checks_from_being_made(
    tmp_path,
):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    # beam00's range; no recorded nodes, so the stand-in fails `get nodes` as a forbidden list would.
    serve(
        kubectl_dir,
        {key: name for key, name in HEALTHY.items() if key != "nodes"},
        lambda text: text.replace("192.168.129.50-192.168.129.60", "192.168.129.70-192.168.129.80"),
    )
    result = run_verify(kubectl_dir, "--stack", "beam00")
    lines = result.stdout.splitlines()
    assert lines[2] == (
        "warn  speakers        metallb-system/metallb-speaker: 1/1 ready; nodes not read (standin kubectl: "
        "nothing recorded for nodes), so whether any speaker may announce is unchecked"
    )
    assert lines[5] == "error node-ips        kubectl: standin kubectl: nothing recorded for nodes"
    assert lines[8] == "error announced       kubectl: standin kubectl: nothing recorded for nodes"
    assert lines[-1] == ("error 2 of 12 checks could not be made for stack beam00: node-ips, announced")
    assert result.returncode == 2
    # Three checks need the nodes; kubectl is asked for them once.
    assert sum(call[2:4] == ["get", "nodes"] for call in calls(kubectl_dir)) == 1


def test_unreachable_cluster_fails_every_kubernetes_check(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    refused = serve_refusal(kubectl_dir)
    result = run_verify(kubectl_dir, "--stack", "beam00")
    lines = result.stdout.splitlines()
    assert lines[1:5] == [
        f"error {name:<15} kubectl: {refused}"
        for name in ("controller", "speakers", "pools", "advertisements")
    ]
    assert lines[-1] == (
        "error 6 of 12 checks could not be made for stack beam00: controller, speakers, pools, "
        "advertisements, node-ips, announced"
    )
    # 2, not 1: an unreachable cluster is no failed check, and may hide one.
    assert result.returncode == 2


def test_unknown_stack(tmp_path):
    result = run_verify(tmp_path, "--stack", "beam99")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "verify: no stack 'beam99': there is no Pulumi.beam99.yaml (stacks: beam00, beam01, "
    )


# --- the command with a real kubectl against the fake API server -------------------------------------------


def beam_project(directory: Path, context: str = "beam00") -> Path:
    """A copy of the project whose beam00 also clears the exclusion label on the recorded node and turns
    strictARP on, so every Kubernetes check applies; it has no bootstrap, so nothing is probed."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (
        (PROJECT_DIR / "Pulumi.beam00.yaml")
        .read_text()
        .replace("macula-lan:kubeContext: beam00", f"macula-lan:kubeContext: {context}")
    )
    stack_file += "  macula-lan:clearLoadBalancerExclusion:\n    - macula-dev-control-plane\n"
    stack_file += "  macula-lan:strictArp: true\n"
    (directory / "Pulumi.beam00.yaml").write_text(stack_file)
    return directory


def beam00_cluster(nodes: str = "nodes.json", strict_arp: str = "true") -> FakeKubeApi:
    """The recorded cluster, its pool on beam00's range."""
    objects = cluster_objects(nodes=nodes, strict_arp=strict_arp)
    for obj in objects:
        if obj["kind"] == "IPAddressPool":
            obj["spec"]["addresses"] = ["192.168.129.70-192.168.129.80"]
    return FakeKubeApi(objects)


def verify_beam00(api: FakeKubeApi, project: Path) -> subprocess.CompletedProcess[str]:
    with fake_cluster(api=api):
        return subprocess.run(
            [sys.executable, "-m", "tools.verify", "--stack", "beam00", "--no-arp",
             "--project-dir", str(project)],
            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def test_a_healthy_cluster_passes_through_a_real_kubectl_that_warns_on_stderr(tmp_path):
    api = beam00_cluster()
    api.broken_discovery = True

    result = verify_beam00(api, beam_project(tmp_path / "project"))

    assert [line[:22].rstrip() for line in result.stdout.splitlines()[1:10]] == [
        "ok    controller",
        "ok    speakers",
        "ok    pools",
        "ok    advertisements",
        "ok    node-ips",
        "ok    lb-exclusion",
        "ok    strict-arp",
        "ok    announced",
        "skip  service",
    ]
    # kubectl's discovery warnings stay kubectl's: verify prints none of them.
    assert result.stderr == ""
    assert ("GET", "/apis/metrics.k8s.io/v1beta1") in api.requests
    assert result.returncode == 0


def test_what_pulumi_cannot_see_fails_with_the_commands_that_put_it_right(tmp_path):
    api = beam00_cluster(nodes="nodes.excluded.json", strict_arp="false")

    result = verify_beam00(api, beam_project(tmp_path / "project"))

    lines = result.stdout.splitlines()
    target = "'urn:pulumi:beam00::macula-lan::macula:lan:ArpReadiness$command:local:Command::arp-readiness-"
    assert lines[6].startswith("FAIL  lb-exclusion    node macula-dev-control-plane carries")
    assert lines[6].endswith(f"pulumi up --stack beam00 --replace {target}include-macula-dev-control-plane'")
    assert lines[7].startswith("FAIL  strict-arp      kube-proxy's ipvs.strictARP is false")
    assert lines[7].endswith(f"pulumi up --stack beam00 --replace {target}strict-arp'")
    assert lines[8].startswith(
        "FAIL  announced       no speaker may announce pool lan-pool (macula-dev-control-plane: "
        "node.kubernetes.io/exclude-from-external-load-balancers)"
    )
    assert result.returncode == 1


def test_nodes_it_may_not_list_exit_2_as_checks_not_made(tmp_path):
    api = beam00_cluster()
    api.forbid("LIST", "nodes")

    result = verify_beam00(api, beam_project(tmp_path / "project"))

    assert result.stdout.splitlines()[-1] == (
        "error 3 of 12 checks could not be made for stack beam00: node-ips, lb-exclusion, announced"
    )
    assert result.returncode == 2


def test_an_unreachable_cluster_exits_2_with_every_kubernetes_check_not_made(tmp_path):
    result = verify_beam00(beam00_cluster(), beam_project(tmp_path / "project", UNREACHABLE_CONTEXT))

    lines = result.stdout.splitlines()
    # Refused is no silent server: every read is made, and each says what kubectl said.
    said = "kubectl: The connection to the server 127.0.0.1:"
    assert all(line[22:].startswith(said) for line in lines[1:9])
    assert all(line.startswith("error ") and "refused" in line for line in lines[1:9])
    assert lines[-1] == (
        "error 8 of 12 checks could not be made for stack beam00: controller, speakers, pools, "
        "advertisements, node-ips, lb-exclusion, strict-arp, announced"
    )
    assert result.returncode == 2


@pytest.mark.parametrize("which", [["--stack", "beam00"], ["--all"]], ids=["stack", "all"])
@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("name: [macula-lan\n", "verify: Pulumi.yaml is not valid YAML"),
        ("runtime: python\n", "verify: Pulumi.yaml has no project name"),
    ],
    ids=["not-yaml", "no-name"],
)
def test_a_project_file_it_cannot_read_exits_2_and_says_why(tmp_path, which, plan, message):
    project = beam_project(tmp_path / "project")
    (project / "Pulumi.yaml").write_text(plan)

    result = run_verify(tmp_path, *which, "--project-dir", str(project))

    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.returncode == 2


def test_answers_of_a_shape_no_api_server_gives_are_checks_not_made(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(kubectl_dir, HEALTHY, lambda _: '{"items": 5}')

    result = run_verify(kubectl_dir, "--stack", "beam00")

    assert "Traceback" not in result.stderr
    assert "error pools           kubectl's answer is not the API's shape (TypeError(" in result.stdout
    assert result.returncode == 2


def test_an_unforeseen_failure_exits_2_not_1_and_keeps_its_message_to_itself(monkeypatch, capsys):
    decrypted = "bootstrap.ip 192.168.129.99"

    def broken(argv):
        raise RuntimeError(decrypted)

    monkeypatch.setattr(cli, "main", broken)

    assert cli.run(["--stack", "beam00"]) == 2
    err = capsys.readouterr().err
    assert "in broken" in err  # where it happened
    assert err.endswith(
        "an unforeseen RuntimeError (where: above; its message is left out, as it may hold secret config)\n"
    )
    assert "192.168.129.99" not in err
