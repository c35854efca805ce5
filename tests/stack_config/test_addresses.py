"""stack_config.addresses: pool entries read as MetalLB 0.14.3 reads them, and refused where no client could
reach them."""

from __future__ import annotations

import ipaddress

import pytest

from stack_config import ConfigError
from stack_config.addresses import AddressError, parse_block
from tests.stack_config.fleets import fleet_of
from tests.stack_config.test_parsing import error_of, parse, valid_values


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("192.168.129.64/255.255.255.240", ["does not end in a prefix length", "not a netmask"]),
        ("fe80::1%eth0/128", ["has a zone", "does not accept"]),
        ("fd00::1%eth0-fd00::9", ["has a zone"]),
        (" 192.168.129.64/28", ["has spaces around it"]),
        ("::ffff:192.168.129.0/64", ["IPv4-mapped network shorter than /96"]),
        ("127.0.0.2/32", ["loopback addresses (127.0.0.0/8)"]),
        ("192.168.129.250-192.168.129.255", []),  # fine by itself; the LAN plan judges the subnet's edges
        ("224.0.0.10-224.0.0.20", ["multicast addresses (224.0.0.0/4)"]),
        ("169.254.10.0/24", ["link-local addresses (169.254.0.0/16)"]),
        ("0.0.0.0/32", ["the unspecified address"]),
        ("255.255.255.255/32", ["the broadcast address 255.255.255.255"]),
        ("::1/128", ["the loopback address ::1"]),
        ("fe80::/64", ["link-local addresses (fe80::/10)"]),
        ("ff02::1/128", ["multicast addresses (ff00::/8)"]),
        ("::/128", ["the unspecified address ::"]),
        ("::ffff:127.0.0.1-::ffff:127.0.0.9", ["loopback addresses"]),
    ],
    ids=[
        *("netmask", "zone-cidr", "zone-range", "spaces", "mapped-short", "loopback", "plain-range"),
        *("multicast", "link-local", "unspecified", "broadcast", "v6-loopback", "v6-link-local"),
        *("v6-multicast", "v6-unspecified", "mapped-loopback"),
    ],
)
def test_entries_metallb_or_the_lan_cannot_use_are_refused_with_the_reason(text: str, words: list[str]):
    if not words:
        assert parse_block(text).size == 6
        return
    with pytest.raises(AddressError) as caught:
        parse_block(text)
    assert str(caught.value).startswith(f'"{text}"')
    for word in words:
        assert word in str(caught.value)


def test_ipv4_mapped_forms_are_the_ipv4_addresses_metallb_reads():
    block = parse_block("::ffff:192.168.129.75-::ffff:192.168.129.85")
    assert (block.first, block.last) == (
        ipaddress.ip_address("192.168.129.75"),
        ipaddress.ip_address("192.168.129.85"),
    )
    network = parse_block("::ffff:192.168.129.0/120")
    assert (str(network.first), str(network.last)) == ("192.168.129.0", "192.168.129.255")


def test_a_mapped_range_overlapping_another_stack_is_caught():
    # Python's ipaddress reads it as IPv6 and MetalLB's Go as IPv4: read as Go does, it is beam00's range.
    message = error_of(
        valid_values(pools=[{"name": "p", "addresses": ["::ffff:192.168.129.75-::ffff:192.168.129.85"]}]),
        fleet_of(
            {"beam00": [{"name": "lan-pool", "addresses": ["192.168.129.70-192.168.129.80"]}]},
            subnet="192.168.128.0/23",
        ),
    )
    assert 'overlaps "192.168.129.70-192.168.129.80" of pool "lan-pool" in stack "beam00"' in message


def test_the_key_of_a_bad_entry_is_its_index_in_the_file_after_an_earlier_bad_one():
    message = error_of(
        valid_values(
            pools=[
                {"name": "a", "addresses": ["nonsense", "10.20.0.10-10.20.0.20"]},
                {"name": "p", "addresses": ["10.0.0.300/32", "10.20.0.15/32", "127.0.0.1/32"]},
            ]
        )
    )
    assert "macula-lan:pools[0].addresses[0]:" in message
    assert "macula-lan:pools[1].addresses[0]:" in message
    assert (
        'macula-lan:pools[1].addresses[1]: "10.20.0.15/32" of pool "p" overlaps "10.20.0.10-10.20.0.20" of '
        'pool "a" (pools[0].addresses[1])'
    ) in message
    assert 'macula-lan:pools[1].addresses[2]: "127.0.0.1/32" includes loopback addresses' in message


def test_a_valid_entry_keeps_the_text_and_position_written():
    config = parse(valid_values(pools=[{"name": "p", "addresses": ["10.0.1.0/29", "10.0.2.1 - 10.0.2.9"]}]))
    blocks = config.pools[0].addresses
    assert [(b.text, b.position, b.size) for b in blocks] == [
        ("10.0.1.0/29", 0, 8),
        ("10.0.2.1 - 10.0.2.9", 1, 9),
    ]
    with pytest.raises(ConfigError):
        parse(valid_values(pools=[{"name": "p", "addresses": ["10.0.1.0/29 "]}]))
