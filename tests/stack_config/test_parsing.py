"""stack_config.parsing: what a stack file may say, and the message a user gets when it says something
wrong."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from stack_config import (
    DEFAULT_CHART_REPOSITORY,
    DEFAULT_CHART_VERSION,
    ConfigError,
    Fleet,
    parse_stack_config,
)
from tests.program import PROJECT
from tests.stack_config.fleets import fleet_of

NAMESPACE = PROJECT


def valid_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kubeContext": "kind-test",
        "pools": [{"name": "lan-pool", "addresses": ["10.20.0.10-10.20.0.20"]}],
    }
    values.update(overrides)
    return values


def parse(
    values: dict[str, Any],
    fleet: Fleet | None = None,
    stack: str = "test",
    secret_keys: frozenset[str] = frozenset(),
):
    return parse_stack_config(stack, NAMESPACE, values, fleet or fleet_of(), secret_keys)


def error_of(
    values: dict[str, Any], fleet: Fleet | None = None, secret_keys: frozenset[str] = frozenset()
) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(values, fleet, secret_keys=secret_keys)
    return str(caught.value)


def test_minimal_stack_gets_chart_defaults_and_one_advertisement_of_every_pool():
    config = parse(valid_values())
    assert config.kube_context == "kind-test"
    assert config.chart.version == DEFAULT_CHART_VERSION == "0.14.3"
    assert config.chart.repository == DEFAULT_CHART_REPOSITORY
    assert config.chart.frr_enabled is False
    assert [(ad.name, ad.pools) for ad in config.advertisements] == [("lan-advertisement", ("lan-pool",))]


def test_cidr_and_range_become_first_and_last_addresses():
    config = parse(
        valid_values(pools=[{"name": "p", "addresses": ["10.0.0.0/30", "10.0.1.5-10.0.1.9", "fd00::/126"]}])
    )
    blocks = config.pools[0].addresses
    assert [(str(b.first), str(b.last)) for b in blocks] == [
        ("10.0.0.0", "10.0.0.3"),
        ("10.0.1.5", "10.0.1.9"),
        ("fd00::", "fd00::3"),
    ]
    assert config.pools[0].contains(ipaddress.ip_address("10.0.1.7"))


def test_optional_pool_and_advertisement_settings_are_kept():
    config = parse(
        valid_values(
            pools=[
                {
                    "name": "p",
                    "addresses": ["10.0.0.0/30"],
                    "autoAssign": False,
                    "avoidBuggyIPs": True,
                }
            ],
            advertisements=[
                {
                    "name": "a",
                    "pools": ["p"],
                    "interfaces": ["eth0"],
                    "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "n1"}}],
                }
            ],
        )
    )
    assert (config.pools[0].auto_assign, config.pools[0].avoid_buggy_ips) == (False, True)
    advertisement = config.advertisements[0]
    assert advertisement.interfaces == ("eth0",)
    assert advertisement.node_selectors == ({"matchLabels": {"kubernetes.io/hostname": "n1"}},)


# Each bad input, the key the message must name, and the words that must appear in it.
BAD_INPUTS: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "invalid address": (
        {"pools": [{"name": "p", "addresses": ["10.0.0.300/32"]}]},
        "pools[0].addresses[0]",
        ['"10.0.0.300/32"', "not a valid CIDR"],
    ),
    "invalid prefix length": (
        {"pools": [{"name": "p", "addresses": ["10.0.0.0/33"]}]},
        "pools[0].addresses[0]",
        ['"10.0.0.0/33"', "not a valid CIDR"],
    ),
    "host bits set in a CIDR": (
        {"pools": [{"name": "p", "addresses": ["192.168.129.51/24"]}]},
        "pools[0].addresses[0]",
        ['"192.168.129.51/24"', "host bits", "192.168.129.0/24"],
    ),
    "invalid range end": (
        {"pools": [{"name": "p", "addresses": ["10.0.0.1-10.0.0.x"]}]},
        "pools[0].addresses[0]",
        ['"10.0.0.1-10.0.0.x"', "not a range"],
    ),
    "reversed range": (
        {"pools": [{"name": "p", "addresses": ["192.168.129.60-192.168.129.50"]}]},
        "pools[0].addresses[0]",
        ['"192.168.129.60-192.168.129.50"', "reversed range"],
    ),
    "range mixing families": (
        {"pools": [{"name": "p", "addresses": ["10.0.0.1-fd00::1"]}]},
        "pools[0].addresses[0]",
        ['"10.0.0.1-fd00::1"', "mixes IPv4 and IPv6"],
    ),
    "bare address without prefix": (
        {"pools": [{"name": "p", "addresses": ["192.168.129.51"]}]},
        "pools[0].addresses[0]",
        ['"192.168.129.51"', "no prefix length", "192.168.129.51/32"],
    ),
    "empty address list": (
        {"pools": [{"name": "p", "addresses": []}]},
        "pools[0].addresses",
        ["is empty"],
    ),
    "addresses not a list": (
        {"pools": [{"name": "p", "addresses": "10.0.0.0/30"}]},
        "pools[0].addresses",
        ['expected a list, got "10.0.0.0/30"'],
    ),
    "no pools at all": ({"pools": []}, "pools", ["at least one pool"]),
    "pools key missing": ({"pools": None}, "pools", ["expected a list"]),
    "invalid pool name": (
        {"pools": [{"name": "LAN_Pool", "addresses": ["10.0.0.0/30"]}]},
        "pools[0].name",
        ['"LAN_Pool"', "not a valid Kubernetes object name"],
    ),
    "duplicate pool name": (
        {
            "pools": [
                {"name": "p", "addresses": ["10.0.0.0/30"]},
                {"name": "p", "addresses": ["10.0.1.0/30"]},
            ]
        },
        "pools",
        ['"p" is used more than once'],
    ),
    "autoAssign not a boolean": (
        {"pools": [{"name": "p", "addresses": ["10.0.0.0/30"], "autoAssign": "yes"}]},
        "pools[0].autoAssign",
        ['"yes"', "true or false"],
    ),
    "typo in a top-level key": (
        {"kubeContex": "kind-test"},
        "kubeContex",
        ["unknown key", "kubeContext"],
    ),
    "typo in a pool key": (
        {"pools": [{"name": "p", "adresses": ["10.0.0.0/30"], "addresses": ["10.0.1.0/30"]}]},
        "pools[0].adresses",
        ["unknown key", "addresses"],
    ),
    "typo in a chart key": (
        {"metallb": {"chartVersoin": "0.14.3"}},
        "metallb.chartVersoin",
        ["unknown key", "chartVersion"],
    ),
    "missing kube context": ({"kubeContext": None}, "kubeContext", ["non-empty string"]),
    "chart version not a version": (
        {"metallb": {"chartVersion": "latest"}},
        "metallb.chartVersion",
        ['"latest"', "not a chart version"],
    ),
    "chart repository not a URL": (
        {"metallb": {"chartRepository": "metallb.github.io/metallb"}},
        "metallb.chartRepository",
        ['"metallb.github.io/metallb"', "URL"],
    ),
    "chart path and repository both set": (
        {"metallb": {"chartPath": "./charts/metallb", "chartRepository": "https://x.example"}},
        "metallb.chartPath",
        ["not both"],
    ),
    "webhook timeout out of range": (
        {"metallb": {"webhookTimeoutSeconds": 5}},
        "metallb.webhookTimeoutSeconds",
        ["5", "10 to 3600"],
    ),
    "advertisement of an unknown pool": (
        {"advertisements": [{"name": "a", "pools": ["lan-pol"]}]},
        "advertisements[0].pools[0]",
        ['"lan-pol"', "not a pool of this stack", "lan-pool"],
    ),
    "node selector with a bad operator": (
        {
            "advertisements": [
                {
                    "name": "a",
                    "nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "Equals"}]}],
                }
            ]
        },
        "advertisements[0].nodeSelectors[0].matchExpressions[0].operator",
        ['"Equals"', "In, NotIn"],
    ),
    "empty advertisement list": (
        {"advertisements": []},
        "advertisements",
        ["is empty", "never announced"],
    ),
    "advertisement with an empty pool list": (
        {"advertisements": [{"name": "a", "pools": []}]},
        "advertisements[0].pools",
        ["is empty", "leave it out"],
    ),
    "pool that no advertisement announces": (
        {
            "pools": [
                {"name": "a", "addresses": ["10.20.0.0/28"]},
                {"name": "b", "addresses": ["10.20.1.0/28"]},
            ],
            "advertisements": [{"name": "only-a", "pools": ["a"]}],
        },
        "pools[1]",
        ['pool "b" is in no advertisement'],
    ),
    "chart path and version both set": (
        {"metallb": {"chartPath": "./charts/metallb", "chartVersion": "0.14.3"}},
        "metallb.chartPath",
        ["chartVersion, not both"],
    ),
    "kubeconfig starting with a tilde": (
        {"kubeconfig": "~/.kube/beam.yaml"},
        "kubeconfig",
        ['"~/.kube/beam.yaml"', "not expanded"],
    ),
    "pinned bootstrap IP outside every pool": (
        {"bootstrap": {"ip": "10.20.0.99"}},
        "bootstrap.ip",
        ['"10.20.0.99"', "outside any pool of this stack", "10.20.0.10-10.20.0.20"],
    ),
    "pinned bootstrap IP outside the named pool": (
        {
            "pools": [
                {"name": "a", "addresses": ["10.20.0.0/28"]},
                {"name": "b", "addresses": ["10.20.1.0/28"]},
            ],
            "bootstrap": {"ip": "10.20.0.5", "pool": "b"},
        },
        "bootstrap.ip",
        ['"10.20.0.5"', 'outside pool "b"', "10.20.1.0/28"],
    ),
    "pinned bootstrap IP that avoidBuggyIPs skips": (
        {
            "pools": [{"name": "p", "addresses": ["10.20.0.0/24"], "avoidBuggyIPs": True}],
            "bootstrap": {"ip": "10.20.0.255"},
        },
        "bootstrap.ip",
        ['"10.20.0.255"', "avoidBuggyIPs"],
    ),
    "bootstrap IP not an address": (
        {"bootstrap": {"ip": "10.20.0.1/32"}},
        "bootstrap.ip",
        ['"10.20.0.1/32"', "not an IP address"],
    ),
    "bootstrap pool not of this stack": (
        {"bootstrap": {"pool": "wan-pool"}},
        "bootstrap.pool",
        ['"wan-pool"', "not a pool of this stack"],
    ),
    "invalid bootstrap hostname": (
        {"bootstrap": {"hostname": "bootstrap_macula.local"}},
        "bootstrap.hostname",
        ['"bootstrap_macula.local"', "not a valid hostname"],
    ),
    "unqualified bootstrap hostname": (
        {"bootstrap": {"hostname": "bootstrap"}},
        "bootstrap.hostname",
        ['"bootstrap"', "fully qualified"],
    ),
    "bootstrap port out of range": (
        {"bootstrap": {"port": 70000}},
        "bootstrap.port",
        ["70000", "1 to 65535"],
    ),
    "DNS fix enabled without a host": (
        {"dnsFix": {"user": "macula"}},
        "dnsFix.host",
        ["is missing", "runs dnsmasq"],
    ),
    "DNS fix with an invalid host": (
        {"dnsFix": {"host": "dns host.lan", "user": "macula"}},
        "dnsFix.host",
        ['"dns host.lan"', "not a valid hostname"],
    ),
    "DNS fix SSH port out of range": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "port": 0}},
        "dnsFix.port",
        ["0", "1 to 65535"],
    ),
    "DNS fix without a user": (
        {"dnsFix": {"host": "192.168.129.3"}},
        "dnsFix.user",
        ["null", "not a login name"],
    ),
    "DNS fix with an invalid hostname to remove": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "hostname": "-bootstrap.local"}},
        "dnsFix.hostname",
        ['"-bootstrap.local"', "not a valid hostname"],
    ),
    "DNS fix host key not a public key line": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "hostKey": "SHA256:abcdef"}},
        "dnsFix.hostKey",
        ['"SHA256:abcdef"', "ssh-keyscan"],
    ),
    "assign timeout too short": (
        {"bootstrap": {"assignTimeoutSeconds": 5}},
        "bootstrap.assignTimeoutSeconds",
        ["5", "from 10 to 3600"],
    ),
    "assign timeout not a number": (
        {"bootstrap": {"assignTimeoutSeconds": "3m"}},
        "bootstrap.assignTimeoutSeconds",
        ['"3m"', "whole number of seconds"],
    ),
    "DNS fix conf dir, no longer used": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "confDir": "/etc/dnsmasq.d"}},
        "dnsFix.confDir",
        ["no longer used", "reads what the running dnsmasq reads", "remove the key"],
    ),
    "DNS fix restart command empty": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "restartCommand": "  "}},
        "dnsFix.restartCommand",
        ['"  "', "is not a shell command"],
    ),
    "DNS fix restart command not text": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "restartCommand": ["systemctl", "restart"]}},
        "dnsFix.restartCommand",
        ['["systemctl", "restart"]', "is not a shell command"],
    ),
    "DNS fix pid file not absolute": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "pidFile": "dnsmasq.pid"}},
        "dnsFix.pidFile",
        ['"dnsmasq.pid"', "is not an absolute path"],
    ),
    "typo in a DNS fix key": (
        {"dnsFix": {"host": "192.168.129.3", "user": "macula", "openFirewal": True}},
        "dnsFix.openFirewal",
        ["unknown key", "openFirewall"],
    ),
    "excluded node name invalid": (
        {"clearLoadBalancerExclusion": ["Macula_Node"]},
        "clearLoadBalancerExclusion[0]",
        ['"Macula_Node"', "not a valid Kubernetes object name"],
    ),
    "strictArp not a boolean": ({"strictArp": "on"}, "strictArp", ['"on"', "true or false"]),
    "two ranges of the stack overlap": (
        {
            "pools": [
                {"name": "a", "addresses": ["10.0.0.0/24"]},
                {"name": "b", "addresses": ["10.0.0.200-10.0.1.10"]},
            ]
        },
        "pools[1].addresses[0]",
        ['"10.0.0.200-10.0.1.10"', "overlaps", '"10.0.0.0/24"', 'pool "a"'],
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_names_stack_file_key_and_value(case: str):
    overrides, key, words = BAD_INPUTS[case]
    message = error_of(valid_values(**overrides))
    assert "Pulumi.test.yaml" in message
    assert f"{NAMESPACE}:{key}:" in message
    for word in words:
        assert word in message


def test_every_problem_is_reported_at_once():
    message = error_of(
        valid_values(
            kubeContext="",
            pools=[{"name": "p", "addresses": ["10.0.0.9-10.0.0.1", "10.1.0.1"]}],
        )
    )
    assert message.count("\n  - ") == 3


def test_range_overlapping_another_stack_names_that_stack():
    message = error_of(
        valid_values(pools=[{"name": "p", "addresses": ["192.168.129.75-192.168.129.85"]}]),
        fleet_of(
            {"beam00": [{"name": "lan-pool", "addresses": ["192.168.129.70-192.168.129.80"]}]},
            "192.168.128.0/23",
        ),
    )
    assert f"{NAMESPACE}:pools[0].addresses[0]" in message
    assert 'stack "beam00" (Pulumi.beam00.yaml)' in message
    assert '"192.168.129.70-192.168.129.80"' in message


def test_invalid_pools_in_another_stack_are_reported_against_that_file():
    with pytest.raises(ConfigError) as caught:
        fleet_of({"beam09": [{"name": "p", "addresses": ["nonsense"]}]})
    assert "Pulumi.beam09.yaml" in str(caught.value)
    assert '"nonsense"' in str(caught.value)


def test_bootstrap_and_dns_fix_defaults():
    config = parse(
        valid_values(
            bootstrap={"ip": "10.20.0.11", "hostname": "bootstrap.macula.local"},
            dnsFix={"host": "192.168.129.3", "user": "macula"},
        )
    )
    assert config.bootstrap is not None and config.dns_fix is not None
    assert (config.bootstrap.namespace, config.bootstrap.service) == ("macula", "macula-bootstrap")
    assert str(config.bootstrap.ip) == "10.20.0.11"
    assert config.bootstrap.port == 4433
    assert config.dns_fix.port == 22
    assert config.dns_fix.hostname == "bootstrap.macula.local"
    assert config.dns_fix.restart_command is None and config.dns_fix.pid_file is None
    assert config.dns_fix.open_firewall is False
    assert config.dns_fix.host_key is None and config.dns_fix.private_key is None


def test_dns_fix_can_be_switched_off_without_deleting_it():
    config = parse(valid_values(dnsFix={"enabled": False}))
    assert config.dns_fix is None


A_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
)


SECRET_KEY = frozenset({"sshPrivateKey"})


def test_private_key_reaches_the_config_but_never_its_repr():
    config = parse(
        valid_values(dnsFix={"host": "dns.lan", "user": "macula"}, sshPrivateKey=A_PRIVATE_KEY),
        secret_keys=SECRET_KEY,
    )
    assert config.dns_fix is not None
    assert config.dns_fix.private_key == A_PRIVATE_KEY
    assert "PRIVATE KEY" not in repr(config)


def test_a_malformed_private_key_is_rejected_without_echoing_it():
    almost_a_key = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-secret-material"
    message = error_of(
        valid_values(dnsFix={"host": "dns.lan", "user": "m"}, sshPrivateKey=almost_a_key),
        secret_keys=SECRET_KEY,
    )
    assert f"{NAMESPACE}:sshPrivateKey:" in message
    assert "value not shown" in message
    assert "secret-material" not in message
