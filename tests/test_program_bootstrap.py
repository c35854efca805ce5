"""The bootstrap Service, KinD's ARP fixes and the DNS fix, as the real program declares them under mocks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi.runtime import rpc

from components.bootstrap_service import endpoint
from components.dns_override import dns_fix_command, firewall_command
from tests.program import ASSIGNED_IP, PROJECT, STACKS, ProgramRun, run_program, stack_file_config
from tests.test_program import ADVERTISEMENT, LOCAL_COMMAND, POOL, REMOTE_COMMAND, SERVICE_PATCH

A_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
)


def unwrap_secret(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"], True
    return value, False


@pytest.fixture(scope="module")
def kind_dev() -> ProgramRun:
    return run_program("kind-dev")


def with_config(stack: str, **values: Any) -> dict[str, Any]:
    config = stack_file_config(stack)
    for key, value in values.items():
        if value is None:
            config.pop(f"{PROJECT}:{key}", None)
        else:
            config[f"{PROJECT}:{key}"] = value
    return config


def test_kind_dev_service_becomes_a_loadbalancer_on_the_pinned_ip(kind_dev):
    patch = kind_dev.one(SERVICE_PATCH)
    metadata = patch.inputs["metadata"]
    assert (metadata["namespace"], metadata["name"]) == ("macula", "macula-bootstrap")
    assert metadata["annotations"] == {
        "metallb.universe.tf/loadBalancerIPs": "192.168.129.51",
        "metallb.universe.tf/address-pool": "lan-pool",
        "external-dns.alpha.kubernetes.io/hostname": "bootstrap.macula.local",
        "pulumi.com/patchForce": "true",
        "pulumi.com/patchFieldManager": "pulumi-macula-lan",
        "pulumi.com/skipAwait": "true",
    }


def test_up_waits_for_the_address_within_the_stacks_bound_and_reports_what_the_cluster_says(kind_dev):
    # The provider's own wait would last 10 minutes and name no reason; this one is bounded and does.
    address = kind_dev.one(LOCAL_COMMAND, "bootstrap-address")
    create = address.inputs["create"]
    assert create.endswith(
        "wait-for-service-ip.sh --context kind-macula-dev --namespace macula --service macula-bootstrap "
        "--ip 192.168.129.51 --timeout 180"
    )
    assert kind_dev.depends_on(address, kind_dev.one(SERVICE_PATCH))
    # Read again when the cluster is rebuilt (the namespace's UID) or the annotations that decide the
    # address change; from inputs only, so a refresh that sees MetalLB's own annotations plans nothing.
    _, annotations = address.inputs["triggers"]
    assert "metallb-namespace" in str(address.dependencies)
    assert json.loads(annotations) == kind_dev.one(SERVICE_PATCH).inputs["metadata"]["annotations"]
    other_pool = run_program(
        "kind-dev", with_config("kind-dev", bootstrap={"pool": "lan-pool", "hostname": "b.macula.local"})
    )
    assert other_pool.one(LOCAL_COMMAND, "bootstrap-address").inputs["triggers"][1] != annotations
    longer = run_program(
        "kind-dev", with_config("kind-dev", bootstrap={"ip": "192.168.129.51", "assignTimeoutSeconds": 600})
    )
    assert longer.one(LOCAL_COMMAND, "bootstrap-address").inputs["create"].endswith("--timeout 600")


def test_an_ipv6_endpoint_has_its_address_in_brackets():
    assert endpoint("fd00::51", 4433) == "[fd00::51]:4433/udp"
    assert endpoint("192.168.129.51", 4433) == "192.168.129.51:4433/udp"
    assert endpoint(None, 4433) is None


def test_patch_takes_only_the_type_and_leaves_ports_to_the_owner(kind_dev):
    spec = kind_dev.one(SERVICE_PATCH).inputs["spec"]
    assert spec == {"type": "LoadBalancer"}, "ports, selector and loadBalancerIP must stay untouched"


def test_patch_waits_for_every_pool_advertisement_and_arp_fix(kind_dev):
    patch = kind_dev.one(SERVICE_PATCH)
    prerequisites = [
        *kind_dev.of_type(POOL),
        *kind_dev.of_type(ADVERTISEMENT),
        kind_dev.one(LOCAL_COMMAND, "arp-readiness-include-macula-dev-control-plane"),
    ]
    for prerequisite in prerequisites:
        assert kind_dev.depends_on(patch, prerequisite), prerequisite.name


def test_stack_outputs_name_ip_endpoint_hostname_and_pools(kind_dev):
    assert kind_dev.outputs["externalIp"] == "192.168.129.51"
    assert kind_dev.outputs["endpoint"] == "192.168.129.51:4433/udp"
    assert kind_dev.outputs["hostname"] == "bootstrap.macula.local"
    assert kind_dev.outputs["pools"] == {"lan-pool": ["192.168.129.50-192.168.129.60"]}


def test_unpinned_stack_lets_metallb_choose_and_reports_its_choice():
    config = with_config("beam00", bootstrap={"hostname": "bootstrap.beam00.macula.local"})
    run = run_program("beam00", config)
    annotations = run.one(SERVICE_PATCH).inputs["metadata"]["annotations"]
    assert "metallb.universe.tf/loadBalancerIPs" not in annotations
    assert "metallb.universe.tf/address-pool" not in annotations
    assert run.outputs["externalIp"] == ASSIGNED_IP
    assert run.outputs["endpoint"] == f"{ASSIGNED_IP}:4433/udp"


@pytest.mark.parametrize("stack", [s for s in STACKS if s != "kind-dev"])
def test_stacks_without_bootstrap_settings_leave_the_service_alone(stack):
    run = run_program(stack, with_config(stack, bootstrap=None))
    assert run.of_type(SERVICE_PATCH) == []
    assert "externalIp" not in run.outputs


def test_kind_dev_clears_the_speaker_exclusion_and_restores_it_on_destroy(kind_dev):
    include = kind_dev.one(LOCAL_COMMAND, "arp-readiness-include-macula-dev-control-plane")
    assert (
        "lb-exclusion-label.sh remove --context kind-macula-dev --node macula-dev-control-plane"
        in (include.inputs["create"])
    )
    assert (
        "lb-exclusion-label.sh restore --context kind-macula-dev --node macula-dev-control-plane"
        in (include.inputs["delete"])
    )
    # Re-run on a rebuilt cluster (new namespace UID), never merely on another `up`; the old record's
    # restore runs before the new removal.
    assert include.inputs["triggers"] and "metallb-namespace" in str(include.dependencies)
    assert include.delete_before_replace


def test_strict_arp_is_applied_only_when_asked():
    assert not [r for r in run_program("beam00").of_type(LOCAL_COMMAND) if "strict-arp" in r.name]
    run = run_program("beam00", with_config("beam00", strictArp=True))
    strict_arp = run.one(LOCAL_COMMAND, "arp-readiness-strict-arp")
    assert "kube-proxy-strict-arp.sh --context beam00" in strict_arp.inputs["create"]
    assert "delete" not in strict_arp.inputs


def test_dns_fix_runs_the_script_over_ssh_on_the_stack_dns_host(kind_dev):
    fix = kind_dev.one(REMOTE_COMMAND, "dns-override-dnsmasq")
    assert fix.inputs["create"] == dns_fix_command("bootstrap.macula.local")
    assert fix.inputs["create"].endswith("update-bootstrap-dns.sh bootstrap.macula.local")
    connection, _ = unwrap_secret(fix.inputs["connection"])
    assert (connection["host"], connection["port"], connection["user"]) == ("192.168.129.3", 22, "macula")
    assert "privateKey" not in connection, "without a configured key the provider uses ssh-agent"
    # No time-based or always-changing triggers: it runs again only when its text or inputs change.
    assert "triggers" not in fix.inputs


def test_dns_fix_takes_the_hosts_restart_command_and_pid_file():
    dns_fix = {
        "host": "192.168.129.3",
        "user": "macula",
        "restartCommand": "nmcli general reload dns-full",
        "pidFile": "/run/NetworkManager/dnsmasq.pid",
    }
    run = run_program("kind-dev", with_config("kind-dev", dnsFix=dns_fix))
    fix = run.one(REMOTE_COMMAND, "dns-override-dnsmasq")
    assert fix.inputs["create"] == dns_fix_command(
        "bootstrap.macula.local", "nmcli general reload dns-full", "/run/NetworkManager/dnsmasq.pid"
    )
    assert fix.inputs["create"].endswith(
        "update-bootstrap-dns.sh --restart-command 'nmcli general reload dns-full' "
        "--pid-file /run/NetworkManager/dnsmasq.pid bootstrap.macula.local"
    )


def test_firewall_port_is_opened_by_the_same_connection(kind_dev):
    firewall = kind_dev.one(REMOTE_COMMAND, "dns-override-firewall")
    assert firewall.inputs["create"] == firewall_command(4433)
    assert "4433/udp" in firewall.inputs["create"]


def test_firewall_is_left_alone_unless_asked():
    dns_fix = {"host": "192.168.129.3", "user": "macula"}
    run = run_program("kind-dev", with_config("kind-dev", dnsFix=dns_fix))
    assert [r.name for r in run.of_type(REMOTE_COMMAND)] == ["dns-override-dnsmasq"]


def test_private_key_and_host_key_reach_the_connection_as_secrets():
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxPZCk5K2hDjEwjW2HB4zX3jCM8Y3Q1yk5P9tQFv6lF"
    dns_fix = {"host": "dns.lan", "user": "macula", "port": 2222, "hostKey": host_key}
    config = with_config("kind-dev", dnsFix=dns_fix, sshPrivateKey=A_PRIVATE_KEY)
    run = run_program("kind-dev", config, secret_keys=[f"{PROJECT}:sshPrivateKey"])
    connection, secret = unwrap_secret(run.one(REMOTE_COMMAND, "dns-override-dnsmasq").inputs["connection"])
    assert secret, "the whole connection is stored as a secret"
    private_key, _ = unwrap_secret(connection["privateKey"])
    assert private_key == A_PRIVATE_KEY
    assert connection["hostKey"] == host_key
    assert connection["port"] == 2222
    assert A_PRIVATE_KEY not in str(run.outputs)


def test_stacks_without_dns_fix_run_nothing_remote():
    run = run_program("beam01")
    assert run.of_type(REMOTE_COMMAND) == []


def test_values_set_with_secret_stay_secret_in_inputs_and_outputs():
    secret = [f"{PROJECT}:{key}" for key in ("bootstrap", "pools", "kubeContext", "dnsFix")]
    run = run_program("kind-dev", stack_file_config("kind-dev"), secret_keys=secret)

    for name in ("externalIp", "endpoint", "hostname", "kubeContext", "pools"):
        _, is_secret = unwrap_secret(run.outputs[name])
        assert is_secret, f"output {name} came out in plaintext"
    assert unwrap_secret(run.outputs["externalIp"])[0] == "192.168.129.51"
    patch = run.one("kubernetes:core/v1:ServicePatch")
    assert unwrap_secret(patch.inputs["metadata"])[1], "the pinned IP annotation and the hostname"
    [pool] = run.of_type("kubernetes:metallb.io/v1beta1:IPAddressPool")
    assert unwrap_secret(pool.inputs["spec"])[1]
    [provider] = run.of_type("pulumi:providers:kubernetes")
    assert unwrap_secret(provider.inputs["context"])[1]
    # The commands' text names the context, and the DNS fix's its host and name.
    commands = [*run.of_type(LOCAL_COMMAND), *run.of_type(REMOTE_COMMAND)]
    assert len(commands) >= 4
    for step in commands:
        assert unwrap_secret(step.inputs["create"])[1], f"{step.name}'s command text came out in plaintext"
    # Without --secret they are plain values, as before.
    plain = run_program("kind-dev")
    assert plain.outputs["externalIp"] == "192.168.129.51"


def test_a_secret_context_keeps_every_command_that_names_it_secret():
    run = run_program("kind-dev", stack_file_config("kind-dev"), secret_keys=[f"{PROJECT}:kubeContext"])

    for step in run.of_type(LOCAL_COMMAND):
        assert unwrap_secret(step.inputs["create"])[1], f"{step.name}'s command text names the context"
    # Only what names the context: the bootstrap values themselves were not set with --secret.
    assert not unwrap_secret(run.one(SERVICE_PATCH).inputs["metadata"])[1]
    assert run.outputs["externalIp"] == "192.168.129.51"
