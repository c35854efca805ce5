"""stack_config.fleet: the LAN plan, the checks of every pool against it, and where a new cluster fits."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stack_config import ConfigError
from stack_config.files import read_fleet
from stack_config.fleet import AllocationError, allocate, free_ranges, parse_lan_plan
from stack_config.parsing import parse_other_stack_pools
from tests.program import PROJECT, PROJECT_DIR
from tests.stack_config.fleets import fleet_of
from tests.stack_config.test_parsing import error_of, valid_values

LAN = "192.168.128.0/23"
PRIMARY_HOST = {"addresses": "192.168.129.3", "reason": "the primary host"}


def plan_error(value: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_lan_plan(value, PROJECT)
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        (
            {"subnet": "192.168.129.0/23"},
            "lan.subnet",
            [
                "has host bits set",
                "the one that holds 192.168.129.0 is 192.168.128.0/23",
                "Write 192.168.128.0/23",
            ],
        ),
        ({"subnet": "192.168.128.0/255.255.254.0"}, "lan.subnet", ["not a network with a prefix length"]),
        ({"subnet": "192.168.128.0/33"}, "lan.subnet", ["not a network with a prefix length"]),
        ({}, "lan.subnet", ["expected a non-empty string"]),
        ({"subnet": ["192.168.128.0/23", "10.0.0.0/8"]}, "lan.subnet", ["two subnets of one address family"]),
        (
            {"subnet": LAN, "reserved": [{"addresses": "192.168.129.3"}]},
            "lan.reserved[0].reason",
            ["non-empty"],
        ),
        ({"subnet": LAN, "reserved": [{"reason": "gateway"}]}, "lan.reserved[0].addresses", ["is missing"]),
        (
            {"subnet": LAN, "reserved": [{"addresses": "10.0.0.1", "reason": "gateway"}]},
            "lan.reserved[0].addresses",
            ['"10.0.0.1" is outside the LAN (192.168.128.0/23)'],
        ),
        (
            {"subnet": LAN, "reserved": [{"addresses": "192.168.129.x", "reason": "gateway"}]},
            "lan.reserved[0].addresses",
            ["is not an IP address"],
        ),
        ({"subnet": LAN, "gateway": "192.168.128.1"}, "lan.gateway", ["unknown key"]),
        ("192.168.128.0/23", "lan", ["expected an object"]),
    ],
    ids=[
        *("runbook-host-bits", "netmask", "prefix-too-long", "no-subnet", "two-ipv4"),
        *(
            "no-reason",
            "no-addresses",
            "reserved-outside",
            "reserved-not-an-address",
            "unknown-key",
            "not-a-map",
        ),
    ],
)
def test_bad_lan_plans_name_pulumi_yaml_the_key_and_the_value(value: Any, key: str, words: list[str]):
    message = plan_error(value)
    assert message.startswith("Invalid LAN plan (Pulumi.yaml):")
    assert f"{PROJECT}:{key}:" in message
    for word in words:
        assert word in message


def test_the_committed_plan_is_the_runbooks_lan_with_its_reservations():
    plan = read_fleet(PROJECT_DIR, PROJECT, "kind-dev").plan
    assert [str(subnet) for subnet in plan.subnets] == [LAN]
    assert [(r.reason, r.addresses.describe() if r.addresses else None) for r in plan.reservations] == [
        ("the primary host (DNS host and ingress)", "192.168.129.3"),
        ("the gateway", None),
        ("the DHCP scope", None),
    ]


@pytest.mark.parametrize(
    ("addresses", "words"),
    [
        (
            "10.20.0.10-10.20.0.20",
            ['"10.20.0.10-10.20.0.20" of pool "p" is outside the LAN 192.168.128.0/23'],
        ),
        ("192.168.128.0/28", ["includes the network address of 192.168.128.0/23"]),
        ("192.168.129.250-192.168.129.255", ["includes the broadcast address of 192.168.128.0/23"]),
        (
            "192.168.129.0/29",
            ["includes 192.168.129.3, reserved for the primary host (Pulumi.yaml lan.reserved[0].addresses)"],
        ),
        ("fd00::/120", ["is IPv6, and the LAN plan (Pulumi.yaml lan.subnet) has no IPv6 subnet"]),
    ],
    ids=["outside", "network-address", "broadcast-address", "reserved", "no-ipv6-subnet"],
)
def test_a_pool_off_the_plan_is_refused_with_the_conflict_and_the_fix(addresses: str, words: list[str]):
    message = error_of(
        valid_values(pools=[{"name": "p", "addresses": [addresses]}]),
        fleet_of(subnet=LAN, reserved=[PRIMARY_HOST]),
    )
    assert "macula-lan:pools[0].addresses[0]:" in message
    for word in words:
        assert word in message
    assert "`make plan` lists the free ranges" in message or "no IPv6 subnet" in message


def test_a_placeholder_reservation_takes_nothing():
    fleet = fleet_of(subnet=LAN, reserved=[{"addresses": None, "reason": "the gateway"}])
    assert free_ranges(fleet.plan, {})[0].describe() == "192.168.128.1-192.168.129.254"


def test_a_new_cluster_gets_the_next_range_of_the_runbooks_layout():
    fleet = read_fleet(PROJECT_DIR, PROJECT, current_stack="")
    # kind-dev 50-60, beam00 70-80, beam01 90-100: next is 110, nine free addresses after 100.
    assert allocate(fleet.plan, fleet.others, 11).describe() == "192.168.129.110-192.168.129.120"
    assert allocate(fleet.plan, fleet.others, 30).describe() == "192.168.129.110-192.168.129.139"


def pools(**stacks: str) -> dict[str, Any]:
    return {
        stack: parse_other_stack_pools(PROJECT, stack, [{"name": "lan-pool", "addresses": [text]}])
        for stack, text in stacks.items()
    }


def test_a_range_straddling_a_reservation_is_skipped():
    dhcp = {"addresses": "192.168.129.115-192.168.129.119", "reason": "the DHCP scope"}
    fleet = fleet_of(subnet=LAN, reserved=[dhcp])
    taken = pools(a="192.168.129.50-192.168.129.100")
    assert allocate(fleet.plan, taken, 11).describe() == "192.168.129.120-192.168.129.130"


def test_a_range_never_holds_a_dot_0_or_a_dot_255():
    fleet = fleet_of(subnet=LAN)
    taken = pools(a="192.168.128.240-192.168.128.249")
    # 192.168.129.0 ends in .0, so the first range after 249 + 9 free starts at .10 of the next /24.
    block = allocate(fleet.plan, taken, 20)
    assert block.describe() == "192.168.129.10-192.168.129.29"
    with pytest.raises(AllocationError, match="none starts on a multiple of 10"):
        allocate(fleet.plan, taken, 255)


def test_a_full_subnet_and_a_size_that_does_not_fit_say_why():
    small = fleet_of(subnet="192.168.50.0/28")
    with pytest.raises(AllocationError, match="the largest free run is 4 addresses"):
        allocate(small.plan, pools(a="192.168.50.1-192.168.50.10"), 2)
    with pytest.raises(AllocationError, match=re.escape("20 addresses do not fit in 192.168.50.0/28")):
        allocate(small.plan, {}, 20)
    with pytest.raises(AllocationError, match="the largest free run is 0 addresses"):
        allocate(small.plan, pools(a="192.168.50.1-192.168.50.14"), 1)
