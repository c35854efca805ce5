"""Who answers ARP for a set of IPv4 addresses on the local network: a raw-socket prober, and nothing else.

It sends one ARP probe per target, broadcast on the interface whose IPv4 network holds the targets: an
ARP request whose sender address is 0.0.0.0 (RFC 5227's duplicate-address probe), so that no host learns
a mapping from it. It then collects the replies for a while and reports, per target, the MAC addresses
that answered. A host whose address it is answers (Linux does, for probes too), and so does a MetalLB
speaker announcing it (0.14.3's internal/layer2/arp.go answers every request for an address it
announces). It never sends anything but ARP requests, and only on that interface.

It needs CAP_NET_RAW for the AF_PACKET socket; without it, NoPrivilegeError. With no non-loopback
interface on the targets' network, NoInterfaceError.

The frame layout (RFC 826, over Ethernet II): destination MAC, source MAC, ethertype 0x0806; then
hardware type 1 (Ethernet), protocol type 0x0800 (IPv4), lengths 6 and 4, operation (1 request, 2 reply),
sender MAC and IPv4, target MAC and IPv4.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ETH_P_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST = b"\xff" * 6
_ARP = struct.Struct("!HHBBH6s4s6s4s")


class NoPrivilegeError(Exception):
    """The raw socket needs CAP_NET_RAW."""


class NoInterfaceError(Exception):
    """No interface of this host is on the targets' network."""


@dataclass(frozen=True)
class Interface:
    name: str
    mac: bytes
    address: ipaddress.IPv4Address
    network: ipaddress.IPv4Network


def format_mac(mac: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in mac)


PROBE_SENDER = ipaddress.IPv4Address("0.0.0.0")


def encode_request(
    source_mac: bytes, source_ip: ipaddress.IPv4Address, target: ipaddress.IPv4Address
) -> bytes:
    """A broadcast Ethernet frame asking who has `target`; a probe when `source_ip` is PROBE_SENDER."""
    ethernet = BROADCAST + source_mac + struct.pack("!H", ETH_P_ARP)
    arp = _ARP.pack(1, 0x0800, 6, 4, ARP_REQUEST, source_mac, source_ip.packed, b"\x00" * 6, target.packed)
    return ethernet + arp


def decode_reply(frame: bytes) -> tuple[ipaddress.IPv4Address, bytes] | None:
    """(the address answered for, the MAC that answers) of an ARP reply frame; None for anything else."""
    if len(frame) < 14 + _ARP.size or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, operation, sender_mac, sender_ip, _, _ = _ARP.unpack(frame[14 : 14 + _ARP.size])
    if (htype, ptype, hlen, plen, operation) != (1, 0x0800, 6, 4, ARP_REPLY):
        return None
    return ipaddress.IPv4Address(sender_ip), sender_mac


def interface_for(target: ipaddress.IPv4Address) -> Interface:
    """The non-loopback interface whose IPv4 network holds `target` (from `ip -json address`)."""
    listing = subprocess.run(
        ["ip", "-json", "-4", "address", "show"], capture_output=True, text=True, timeout=10, check=True
    )
    for link in json.loads(listing.stdout):
        if "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            network = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if target in network:
                mac = bytes.fromhex(
                    Path(f"/sys/class/net/{link['ifname']}/address").read_text().strip().replace(":", "")
                )
                return Interface(link["ifname"], mac, ipaddress.IPv4Address(info["local"]), network)
    raise NoInterfaceError(f"no interface of this host is on the network of {target}")


def probe(targets: Iterable[ipaddress.IPv4Address], wait: float) -> dict[ipaddress.IPv4Address, set[str]]:
    """The MACs that answer for each target within `wait` seconds; a target nobody answers maps to {}.
    The first target picks the interface; targets off its network are not asked."""
    wanted = list(dict.fromkeys(targets))
    answers: dict[ipaddress.IPv4Address, set[str]] = {target: set() for target in wanted}
    if not wanted:
        return answers
    interface = interface_for(wanted[0])
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    except PermissionError:
        raise NoPrivilegeError(
            "sending ARP needs CAP_NET_RAW (run as root, or grant the capability)"
        ) from None
    with sock:
        sock.bind((interface.name, ETH_P_ARP))
        for target in wanted:
            if target in interface.network and target != interface.address:
                sock.send(encode_request(interface.mac, PROBE_SENDER, target))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                frame = sock.recv(65535)
            except TimeoutError:
                break
            reply = decode_reply(frame)
            if reply is not None and reply[0] in answers:
                answers[reply[0]].add(format_mac(reply[1]))
    return answers
