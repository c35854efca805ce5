"""The udp check: one QUIC probe to the bootstrap address, honest about what silence means."""

from __future__ import annotations

import secrets
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Literal

from stack_config import IPAddress
from tools.verify.check import Check

# A version of the form 0x?a?a?a?a, reserved to make servers negotiate (RFC 9000 section 15).
QUIC_RESERVED_VERSION = 0x1A2A3A4A
QUIC_MIN_INITIAL_SIZE = 1200
# <linux/in.h> and <linux/in6.h>; the socket module does not name them.
_IP_RECVERR = 11
_IPV6_RECVERR = 25


@dataclass(frozen=True)
class ProbeResult:
    outcome: Literal["reply", "refused", "silent", "unreachable"]
    detail: str = ""


def quic_probe(dcid: bytes, scid: bytes) -> bytes:
    """A long-header QUIC packet of a reserved version, padded to 1200 bytes so a server may answer it."""
    packet = bytes([0xC0]) + struct.pack("!I", QUIC_RESERVED_VERSION)
    packet += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    return packet + bytes(QUIC_MIN_INITIAL_SIZE - len(packet))


def describe_reply(reply: bytes, dcid: bytes, scid: bytes) -> str:
    """A Version Negotiation packet (RFC 9000 17.2.1) answering our probe by its versions, else the size."""
    if len(reply) >= 7 and reply[0] & 0x80 and reply[1:5] == b"\x00\x00\x00\x00":
        position = 5
        echoed_dcid = reply[position + 1 : position + 1 + reply[position]]
        position += 1 + reply[position]
        echoed_scid = reply[position + 1 : position + 1 + reply[position]] if position < len(reply) else b""
        position += 1 + (reply[position] if position < len(reply) else 0)
        if echoed_dcid == scid and echoed_scid == dcid:
            body = reply[position:]
            versions = [f"0x{v:08x}" for (v,) in struct.iter_unpack("!I", body[: len(body) // 4 * 4])]
            return f"a QUIC Version Negotiation packet (server versions {', '.join(versions) or 'none'})"
    return f"a {len(reply)}-byte reply"


def probe_udp(ip: IPAddress, port: int, timeout: float) -> ProbeResult:
    dcid, scid = secrets.token_bytes(8), secrets.token_bytes(8)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if sys.platform == "linux":
            # Linux reports a neighbour that never answers ARP (or NDP) as a local error, which reaches
            # the socket only with IP_RECVERR: "No route to host" about 3 s after the datagram.
            level, option = (
                (socket.IPPROTO_IPV6, _IPV6_RECVERR) if ip.version == 6 else (socket.IPPROTO_IP, _IP_RECVERR)
            )
            sock.setsockopt(level, option, 1)
        try:
            # Connected, so the kernel hands ICMP errors for this destination back to this socket.
            sock.connect((str(ip), port))
            sock.send(quic_probe(dcid, scid))
            sock.settimeout(timeout)
            reply = sock.recv(65535)
        except ConnectionRefusedError:
            return ProbeResult("refused")
        except TimeoutError:
            return ProbeResult("silent")
        except OSError as error:
            return ProbeResult("unreachable", error.strerror or str(error))
    return ProbeResult("reply", describe_reply(reply, dcid, scid))


def judge_udp(ip: IPAddress, port: int, result: ProbeResult, timeout: float, *, strict: bool) -> Check:
    target = f"[{ip}]:{port}/udp" if ip.version == 6 else f"{ip}:{port}/udp"
    if result.outcome == "reply":
        return Check("ok", "udp", f"{target}: {result.detail}: reachable, and something answers")
    if result.outcome == "refused":
        return Check(
            "FAIL",
            "udp",
            f"{target}: ICMP port unreachable: the host is up, but nothing listens on the port or a "
            "firewall rejects it (is the bootstrap pod running, and is the Service's port right?)",
        )
    if result.outcome == "unreachable":
        return Check(
            "FAIL",
            "udp",
            f"{target}: {result.detail}: the address cannot be reached from here "
            "(on the same LAN: no speaker answers ARP for it)",
        )
    return Check(
        "FAIL" if strict else "warn",
        "udp",
        f"{target}: no reply within {timeout:g}s: the port may be open (QUIC servers ignore unknown "
        "datagrams) or filtered — inconclusive",
    )


def udp_check(ip: IPAddress, port: int, timeout: float, *, strict: bool) -> Check:
    return judge_udp(ip, port, probe_udp(ip, port, timeout), timeout, strict=strict)
