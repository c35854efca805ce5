"""The arp check's verdict on who answered ARP for the pool addresses."""

from __future__ import annotations

import ipaddress

from tools.verify import arp_check, arp_probe
from tools.verify.check import Check

NODE = ipaddress.IPv4Address("192.168.129.20")
NODE_MAC = "02:00:00:00:00:20"
POOL = [ipaddress.IPv4Address(f"192.168.129.{n}") for n in range(50, 53)]
PINNED_V4 = ipaddress.IPv4Address("192.168.129.51")


def arp(**answers: set[str]) -> dict[ipaddress.IPv4Address, set[str]]:
    found: dict[ipaddress.IPv4Address, set[str]] = {address: set() for address in [NODE, *POOL]}
    found.update({ipaddress.IPv4Address(k.replace("_", ".")): v for k, v in answers.items()})
    return found


def test_arp_answers_from_a_node_are_right_and_any_other_mac_is_a_conflict():
    nodes = {"node-1": [NODE]}
    announced = arp(**{"192_168_129_20": {NODE_MAC}, "192_168_129_51": {NODE_MAC}})
    assert arp_check.judge_arp(announced, POOL, [PINNED_V4], nodes) == Check(
        "ok", "arp", "3 pool addresses probed, no device but a node answers"
    )
    conflict = arp(**{"192_168_129_20": {NODE_MAC}, "192_168_129_52": {"02:00:00:00:00:99"}})
    check = arp_check.judge_arp(conflict, POOL, [], nodes)
    assert check.status == "FAIL"
    assert check.detail.startswith("192.168.129.52 answered by 02:00:00:00:00:99, which is no node's MAC")
    silent = arp(**{"192_168_129_20": {NODE_MAC}})
    assert arp_check.judge_arp(silent, POOL, [PINNED_V4], nodes).detail.endswith(
        "nobody answers for the pinned 192.168.129.51"
    )
    # No node answers on this network: a MAC cannot be told a node's or not.
    off_lan = arp_check.judge_arp(arp(**{"192_168_129_51": {NODE_MAC}}), POOL, [], {"node-1": [NODE]})
    assert off_lan.status == "warn"


def test_arp_that_cannot_be_sent_is_a_skip_that_says_why():
    denied = arp_probe.NoPrivilegeError(
        "sending ARP needs CAP_NET_RAW (run as root, or grant the capability)"
    )
    assert arp_check.judge_arp(denied, POOL, [], {}) == Check(
        "skip", "arp", "not probed: sending ARP needs CAP_NET_RAW (run as root, or grant the capability)"
    )
    elsewhere = arp_probe.NoInterfaceError("no interface of this host is on the network of 192.168.129.50")
    assert arp_check.judge_arp(elsewhere, POOL, [], {}).status == "skip"
