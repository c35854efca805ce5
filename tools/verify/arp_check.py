"""The arp check: who answers ARP for the pool addresses, probed from this host on the LAN."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from stack_config import IPAddress, PoolConfig, StackConfig
from tools.verify import arp_probe
from tools.verify.check import Check
from tools.verify.cluster import node_addresses

# At most this many pool addresses are probed: enough for the pools of a LAN, few enough to stay quick.
ARP_TARGET_LIMIT = 1024


def arp_targets(pools: Sequence[PoolConfig]) -> tuple[list[ipaddress.IPv4Address], bool]:
    """The pools' IPv4 addresses, up to ARP_TARGET_LIMIT, and whether there were more."""
    targets: list[ipaddress.IPv4Address] = []
    for pool in pools:
        for block in pool.addresses:
            if isinstance(block.first, ipaddress.IPv4Address):
                start = int(block.first)
                for value in range(start, min(int(block.last), start + ARP_TARGET_LIMIT) + 1):
                    targets.append(ipaddress.IPv4Address(value))
    return targets[:ARP_TARGET_LIMIT], len(targets) > ARP_TARGET_LIMIT


def judge_arp(
    answers: dict[ipaddress.IPv4Address, set[str]] | Exception,
    pool_addresses: Sequence[ipaddress.IPv4Address],
    pinned: Sequence[IPAddress],
    nodes: Mapping[str, Sequence[IPAddress]],
) -> Check:
    """Who answers ARP for the pool addresses: a node's MAC (a speaker announcing a Service's IP) is right;
    any other MAC is a second device on that address, an address conflict."""
    if isinstance(answers, arp_probe.NoInterfaceError):
        return Check("skip", "arp", f"not probed from here: {answers}; run verify on the LAN to probe it")
    if isinstance(answers, arp_probe.NoPrivilegeError):
        return Check("skip", "arp", f"not probed: {answers}")
    if isinstance(answers, Exception):
        return Check("error", "arp", f"could not probe: {answers}")
    node_answers = [
        answers[ip]
        for ips in nodes.values()
        for ip in ips
        if isinstance(ip, ipaddress.IPv4Address) and ip in answers
    ]
    node_macs = {mac for macs in node_answers for mac in macs}
    # Without a node's own answer its MAC is unknown, and so is whether another MAC is a conflict.
    node_on_lan = bool(node_macs)
    conflicts: list[str] = []
    unknown: list[str] = []
    for address in pool_addresses:
        for mac in sorted(answers.get(address, set()) - node_macs):
            (conflicts if node_on_lan else unknown).append(f"{address} answered by {mac}")
    pinned_silent = [
        str(ip) for ip in pinned if isinstance(ip, ipaddress.IPv4Address) and not answers.get(ip)
    ]
    if conflicts:
        return Check(
            "FAIL",
            "arp",
            "; ".join(conflicts) + ", which is no node's MAC: another device on the LAN has that address; "
            "take it out of the pools or off that device",
        )
    if unknown:
        return Check(
            "warn",
            "arp",
            "; ".join(unknown) + "; no node answers on this network, so whose MACs these are cannot be told",
        )
    plural = "es" if len(pool_addresses) != 1 else ""
    detail = f"{len(pool_addresses)} pool address{plural} probed, no device but a node answers"
    if pinned_silent:
        return Check("warn", "arp", f"{detail}; nobody answers for the pinned {', '.join(pinned_silent)}")
    return Check("ok", "arp", detail)


def arp_check(config: StackConfig, nodes: Any, wait: float) -> Check:
    """Probe the pools' IPv4 addresses and the nodes' own (`nodes` as read, or the error reading them)."""
    targets, more = arp_targets(config.pools)
    if not targets:
        return Check("skip", "arp", "the pools have no IPv4 address (ARP is IPv4's)")
    node_ips = node_addresses(nodes)
    pinned = [config.bootstrap.ip] if config.bootstrap and config.bootstrap.ip else []
    probed = [
        *targets,
        *(ip for ips in node_ips.values() for ip in ips if isinstance(ip, ipaddress.IPv4Address)),
    ]
    answers: dict[ipaddress.IPv4Address, set[str]] | Exception
    try:
        answers = arp_probe.probe(probed, wait)
    except (
        OSError,
        subprocess.SubprocessError,
        arp_probe.NoPrivilegeError,
        arp_probe.NoInterfaceError,
    ) as error:
        answers = error
    check = judge_arp(answers, targets, pinned, node_ips)
    if more and check.status != "skip":
        return Check(check.status, "arp", f"{check.detail} (the first {ARP_TARGET_LIMIT} pool addresses)")
    return check
