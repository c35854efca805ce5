"""The one parser of pool addresses: it reads an entry the way MetalLB 0.14.3 does, and refuses what no LAN
client could reach.

MetalLB reads every `addresses` entry of an IPAddressPool with `ParseCIDR` in `internal/config/config.go`
(tag v0.14.3): an entry without "-" goes whole to Go's `net.ParseCIDR`; an entry with "-" is split at the
first "-", and each side, trimmed of spaces, goes to `net.ParseIP`. Go's parsers differ from Python's
`ipaddress` in ways that matter here:
- an IPv4-mapped IPv6 address (`::ffff:192.168.129.75`) is IPv4 to Go (`net.IP.To4`), and so is a
  mapped network with a prefix of 96 or more; they are normalised to IPv4, so that the overlap checks
  compare them with the IPv4 ranges they are;
- `net.ParseCIDR` takes only a decimal prefix length: netmask notation (`/255.255.255.240`) is refused;
- neither takes a zone (`fe80::1%eth0`);
- `net.ParseCIDR` does not trim, so a CIDR with spaces around it is refused.
MetalLB accepts loopback, multicast, link-local, unspecified and broadcast addresses and would hand them
out; nobody on the LAN could reach them, so they are refused here.
"""

from __future__ import annotations

import ipaddress

from stack_config.model import AddressBlock, IPAddress

_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")

# Ranges no pool may touch, with what they are.
SPECIAL_PURPOSE = tuple(
    (ipaddress.ip_network(network), what)
    for network, what in (
        ("0.0.0.0/8", "the unspecified address and 'this network' (0.0.0.0/8)"),
        ("127.0.0.0/8", "loopback addresses (127.0.0.0/8)"),
        ("169.254.0.0/16", "link-local addresses (169.254.0.0/16)"),
        ("224.0.0.0/4", "multicast addresses (224.0.0.0/4)"),
        ("255.255.255.255/32", "the broadcast address 255.255.255.255"),
        ("::/128", "the unspecified address ::"),
        ("::1/128", "the loopback address ::1"),
        ("fe80::/10", "link-local addresses (fe80::/10)"),
        ("ff00::/8", "multicast addresses (ff00::/8)"),
    )
)


class AddressError(ValueError):
    """An entry MetalLB would refuse, or that no LAN client could reach; the message says why."""


def parse_ip(text: str) -> IPAddress:
    """One address as Go's net.ParseIP reads it: no zone, IPv4-mapped IPv6 as IPv4."""
    if "%" in text:
        raise AddressError(f'"{text}" has a zone (the part from "%"), which MetalLB does not accept')
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise AddressError(f'"{text}" is not an IP address') from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_cidr(text: str) -> AddressBlock:
    try:
        return _read_cidr(text)
    except AddressError as error:
        if str(error).startswith(f'"{text}"'):
            raise
        raise AddressError(f'"{text}" is not a valid CIDR: {error}') from None


def _read_cidr(text: str) -> AddressBlock:
    if text != text.strip():
        raise AddressError(f'"{text}" has spaces around it, which MetalLB does not accept in a CIDR')
    address_text, _, prefix_text = text.partition("/")
    if not prefix_text.isascii() or not prefix_text.isdigit():
        raise AddressError(
            f'"{text}" does not end in a prefix length: MetalLB takes a CIDR such as 192.168.129.64/28, '
            "not a netmask"
        )
    address = parse_ip(address_text)
    prefix = int(prefix_text)
    written = ipaddress.ip_address(address_text)
    if written.version == 6 and address.version == 4:
        if prefix < 96:
            raise AddressError(
                f'"{text}" is an IPv4-mapped network shorter than /96, which mixes IPv4 and IPv6'
            )
        prefix -= 96
    try:
        network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    except ValueError:
        raise AddressError("the prefix length is longer than the address") from None
    if network.network_address != address:
        raise AddressError(
            f'"{text}" has host bits set; MetalLB would hand out all of {network}. Write {network} if that '
            "is meant"
        )
    return AddressBlock(text, network.network_address, network.broadcast_address)


def _parse_range(text: str) -> AddressBlock:
    first_text, _, last_text = text.partition("-")
    try:
        first, last = parse_ip(first_text.strip()), parse_ip(last_text.strip())
    except AddressError as error:
        raise AddressError(f'"{text}" is not a range of two IP addresses (first-last): {error}') from None
    if first.version != last.version:
        raise AddressError(f'"{text}" mixes IPv4 and IPv6 addresses')
    if int(first) > int(last):
        raise AddressError(f'"{text}" is a reversed range: {first} comes after {last}')
    return AddressBlock(text, first, last)


def special_purpose(block: AddressBlock) -> str | None:
    """What special-purpose addresses the block includes, if any."""
    for network, what in SPECIAL_PURPOSE:
        if network.version == block.first.version and (
            int(block.first) <= int(network.broadcast_address)
            and int(network.network_address) <= int(block.last)
        ):
            return what
    return None


def _read_entry(text: str, *, bare_address: bool) -> AddressBlock:
    if "-" in text:
        return _parse_range(text)
    if "/" in text:
        return _parse_cidr(text)
    address = parse_ip(text.strip())
    if bare_address:
        return AddressBlock(text, address, address)
    single = "32" if address.version == 4 else "128"
    raise AddressError(
        f'"{text}" has no prefix length, which MetalLB rejects; write {address}/{single} for a single address'
    )


def parse_block(text: str, position: int = 0) -> AddressBlock:
    """A pool entry, a CIDR or a `first-last` range, read as MetalLB reads it; AddressError otherwise."""
    block = _read_entry(text, bare_address=False)
    what = special_purpose(block)
    if what is not None:
        raise AddressError(
            f'"{text}" includes {what}, which MetalLB would hand out but no client on the LAN can reach'
        )
    return AddressBlock(text, block.first, block.last, position)


def parse_reserved(text: str) -> AddressBlock:
    """A reservation: an address, a CIDR or a range. Special-purpose addresses are no error here."""
    return _read_entry(text, bare_address=True)
