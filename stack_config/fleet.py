"""The LAN plan and the fleet of stacks on it: where every cluster's pools may go, and where a new one fits.

Every cluster's nodes and clients share one LAN, so every pool must lie inside its subnet, stay clear of
the addresses the plan reserves (the primary host, the gateway, the DHCP scope) and overlap no other
stack's pool: two clusters answering ARP for one address break both. The plan is Pulumi.yaml's `lan`
value, which every stack reads; `stack_config.files` reads it and the other stacks' files.

A new cluster gets the first range that follows the runbook's own layout ("KinD dev: 50-60, beam00:
70-80, beam01: 90-100, etc."): it starts where the last octet is a multiple of ten, keeps at least nine
free addresses between it and any other cluster's range, avoids the addresses ending in .0 and .255 that
some clients mishandle, and is searched for upward from the fleet's first range, then from the start of
the subnet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stack_config.addresses import AddressError, parse_ip, parse_reserved
from stack_config.fields import Problems, check_keys, mapping, sequence, show, string
from stack_config.model import AddressBlock, IPNetwork, LanPlan, PoolConfig, Reservation

PLAN_KEY = "lan"
PLAN_FILE = "Pulumi.yaml"
# Free addresses kept between two clusters' ranges, and the step a range starts on (the runbook's 61-69
# and 81-89 between 50-60, 70-80 and 90-100).
GAP = 9
ALIGN = 10


@dataclass(frozen=True)
class Fleet:
    """The LAN plan, and every other stack's pools by stack name."""

    plan: LanPlan
    others: Mapping[str, tuple[PoolConfig, ...]]


class AllocationError(ValueError):
    """No range fits; the message says why."""


def _subnet(problems: Problems, key: str, value: Any) -> IPNetwork | None:
    text = string(problems, key, value)
    if text is None:
        return None
    address_text, _, prefix_text = text.strip().partition("/")
    try:
        address = parse_ip(address_text)
    except AddressError as error:
        problems.add(key, str(error))
        return None
    if not prefix_text.isascii() or not prefix_text.isdigit() or int(prefix_text) > address.max_prefixlen:
        problems.add(
            key,
            f"{show(text)} is not a network with a prefix length, such as 192.168.128.0/23",
        )
        return None
    network = ipaddress.ip_network(f"{address}/{prefix_text}", strict=False)
    if network.network_address != address:
        problems.add(
            key,
            f"{show(text)} has host bits set: a /{network.prefixlen} network starts at "
            f"{network.network_address}, so the one that holds {address} is {network} "
            f"({network.network_address} to {network.broadcast_address}). Write {network}",
        )
        return None
    return network


def parse_lan_plan(value: Any, namespace: str, source: str = PLAN_FILE) -> LanPlan:
    """Pulumi.yaml's `lan` value: `subnet` (one network, or a list of one per address family), and
    `reserved` entries of `addresses` (null until filled in) and `reason`. Raises ConfigError listing every
    problem."""
    problems = Problems(source, namespace)
    plan = mapping(problems, PLAN_KEY, value) or {}
    check_keys(problems, PLAN_KEY, plan, ("subnet", "reserved"))
    written = plan.get("subnet")
    entries = (
        [(f"{PLAN_KEY}.subnet[{i}]", v) for i, v in enumerate(written)]
        if isinstance(written, list)
        else [(f"{PLAN_KEY}.subnet", written)]
    )
    subnets = [subnet for key, entry in entries if (subnet := _subnet(problems, key, entry)) is not None]
    if len({subnet.version for subnet in subnets}) != len(subnets):
        problems.add(f"{PLAN_KEY}.subnet", "has two subnets of one address family; give one per family")
    if not entries:
        problems.add(f"{PLAN_KEY}.subnet", "is empty: the LAN plan needs the LAN's subnet")
    reservations: list[Reservation] = []
    for index, entry in enumerate(sequence(problems, f"{PLAN_KEY}.reserved", plan.get("reserved", [])) or []):
        key = f"{PLAN_KEY}.reserved[{index}]"
        fields = mapping(problems, key, entry)
        if fields is None:
            continue
        check_keys(problems, key, fields, ("addresses", "reason"))
        reason = string(problems, f"{key}.reason", fields.get("reason"))
        if "addresses" not in fields:
            problems.add(f"{key}.addresses", "is missing: give the addresses, or null until they are known")
            continue
        block = None
        if fields["addresses"] is not None:
            text = string(problems, f"{key}.addresses", fields["addresses"])
            if text is None:
                continue
            try:
                block = parse_reserved(text)
            except AddressError as error:
                problems.add(f"{key}.addresses", str(error))
                continue
            if subnets and not any(_inside(block, subnet) for subnet in subnets):
                problems.add(
                    f"{key}.addresses", f"{show(text)} is outside the LAN ({', '.join(map(str, subnets))})"
                )
        if reason is not None:
            reservations.append(Reservation(reason, block, f"{key}.addresses"))
    problems.raise_if_any("Invalid LAN plan")
    return LanPlan(tuple(subnets), tuple(reservations), source)


def _inside(block: AddressBlock, subnet: IPNetwork) -> bool:
    return (
        block.first.version == subnet.version
        and int(subnet.network_address) <= int(block.first)
        and int(block.last) <= int(subnet.broadcast_address)
    )


def _subnet_edges(subnet: IPNetwork) -> dict[int, str]:
    """The subnet's network and broadcast addresses, which no host may use (IPv4 subnets of 4 or more)."""
    if subnet.version != 4 or subnet.num_addresses < 4:
        return {}
    return {
        int(subnet.network_address): f"the network address of {subnet}",
        int(subnet.broadcast_address): f"the broadcast address of {subnet}",
    }


def indexed_blocks(pools: tuple[PoolConfig, ...]) -> list[tuple[str, PoolConfig, AddressBlock]]:
    """Every address entry of the pools, with its key as written in the stack file."""
    return [
        (f"pools[{pool.index}].addresses[{block.position}]", pool, block)
        for pool in pools
        for block in pool.addresses
    ]


def check_pools_against_fleet(problems: Problems, pools: tuple[PoolConfig, ...], fleet: Fleet) -> None:
    """Every pool entry inside the LAN, clear of its reservations and of every other stack's pools."""
    plan = fleet.plan
    hint = "`make plan` lists the free ranges"
    for key, pool, block in indexed_blocks(pools):
        where = f"{show(block.text)} of pool {show(pool.name)}"
        subnet = plan.subnet_for(block.first.version)
        if subnet is None:
            problems.add(
                key,
                f"{where} is IPv{block.first.version}, and the LAN plan ({plan.source} {PLAN_KEY}.subnet) "
                f"has no IPv{block.first.version} subnet",
            )
            continue
        if not _inside(block, subnet):
            problems.add(
                key,
                f"{where} is outside the LAN {subnet} ({plan.source} {PLAN_KEY}.subnet), where no client "
                f"would reach it; {hint}",
            )
            continue
        for address, what in _subnet_edges(subnet).items():
            if int(block.first) <= address <= int(block.last):
                problems.add(key, f"{where} includes {what}; {hint}")
        for reservation in plan.reservations:
            if reservation.addresses is not None and block.overlaps(reservation.addresses):
                problems.add(
                    key,
                    f"{where} includes {reservation.addresses.describe()}, reserved for {reservation.reason} "
                    f"({plan.source} {reservation.key}); {hint}",
                )
        for other_stack, other_pools in sorted(fleet.others.items()):
            for _, other_pool, other in indexed_blocks(other_pools):
                if block.overlaps(other):
                    problems.add(
                        key,
                        f"{where} overlaps {show(other.text)} of pool {show(other_pool.name)} in stack "
                        f"{show(other_stack)} (Pulumi.{other_stack}.yaml); every cluster on the LAN needs "
                        f"its own range; {hint}",
                    )


def _usable(subnet: IPNetwork) -> tuple[int, int]:
    edges = _subnet_edges(subnet)
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    return (first + 1, last - 1) if edges else (first, last)


def _pool_spans(stacks: Mapping[str, tuple[PoolConfig, ...]]) -> list[tuple[int, int]]:
    """Every pool entry of every stack as its first and last address."""
    return [(int(b.first), int(b.last)) for pools in stacks.values() for _, _, b in indexed_blocks(pools)]


def _reserved_spans(plan: LanPlan) -> list[tuple[int, int]]:
    """Every reservation whose addresses are known, as its first and last address."""
    return [(int(r.addresses.first), int(r.addresses.last)) for r in plan.reservations if r.addresses]


def free_ranges(plan: LanPlan, stacks: Mapping[str, tuple[PoolConfig, ...]]) -> list[AddressBlock]:
    """The runs of the IPv4 subnet's host addresses that no pool and no reservation takes, lowest first."""
    subnet = _ipv4_subnet(plan)
    taken = sorted(_pool_spans(stacks) + _reserved_spans(plan))
    start, end = _usable(subnet)
    free: list[AddressBlock] = []
    for first, last in taken:
        if first > start and start <= end:
            free.append(_block(subnet, start, min(first - 1, end)))
        start = max(start, last + 1)
    if start <= end:
        free.append(_block(subnet, start, end))
    return free


def _ipv4_subnet(plan: LanPlan) -> IPNetwork:
    subnet = plan.subnet_for(4)
    if subnet is None:
        raise AllocationError("the LAN plan has no IPv4 subnet, and allocation plans IPv4 only")
    return subnet


def _block(subnet: IPNetwork, first: int, last: int) -> AddressBlock:
    address = ipaddress.IPv4Address if subnet.version == 4 else ipaddress.IPv6Address
    start, stop = address(first), address(last)
    text = str(start) if first == last else f"{start}-{stop}"
    return AddressBlock(text, start, stop)


def _aligned(low: int, high: int) -> Iterator[int]:
    """The addresses from low to high whose last octet is a multiple of ALIGN."""
    base = low & ~0xFF
    while base <= high:
        yield from (base + octet for octet in range(0, 256, ALIGN) if low <= base + octet <= high)
        base += 256


def _candidate_starts(subnet: IPNetwork, pivot: int) -> Iterator[int]:
    """Aligned starts from the pivot to the end of the subnet, then from the start of the subnet."""
    start, end = _usable(subnet)
    yield from _aligned(max(start, pivot), end)
    yield from _aligned(start, min(end, pivot - 1))


def allocate(plan: LanPlan, stacks: Mapping[str, tuple[PoolConfig, ...]], size: int) -> AddressBlock:
    """The first range of `size` addresses that fits the plan and the layout policy (module docstring)."""
    subnet = _ipv4_subnet(plan)
    usable_first, usable_last = _usable(subnet)
    if not 1 <= size <= usable_last - usable_first + 1:
        raise AllocationError(f"{size} addresses do not fit in {subnet}")
    pools = _pool_spans(stacks)
    reserved = _reserved_spans(plan)
    pivot = min((first for first, _ in pools if _inside_int(first, subnet)), default=usable_first)
    for first in _candidate_starts(subnet, pivot):
        last = first + size - 1
        if last > usable_last:
            continue
        # A run of 255 or more always holds a .0 or a .255.
        if size > 254 or (first & 0xFF) == 0 or (first & 0xFF) + size - 1 > 254:
            continue
        if any(first <= r_last and r_first <= last for r_first, r_last in reserved):
            continue
        if any(first <= p_last + GAP and p_first - GAP <= last for p_first, p_last in pools):
            continue
        return _block(subnet, first, last)
    largest = max((block.size for block in free_ranges(plan, stacks)), default=0)
    raise AllocationError(
        f"no range of {size} addresses fits in {subnet}: none starts on a multiple of {ALIGN}, avoids "
        f".0 and .255, misses every reservation and keeps {GAP} free addresses from every other cluster's "
        f"range (the largest free run is {largest} addresses)"
    )


def _inside_int(address: int, subnet: IPNetwork) -> bool:
    return int(subnet.network_address) <= address <= int(subnet.broadcast_address)
