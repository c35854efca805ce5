"""The udp check: what one QUIC probe can and cannot tell, against real sockets."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.dnsmasq import free_port
from tests.tools.verify.kind_dev import PINNED
from tests.tools.verify.servers import serve_once
from tools.verify import quic_probe
from tools.verify.check import Check
from tools.verify.quic_probe import ProbeResult

# --- UDP: what one probe can and cannot tell ----------------------------------------------------------


@pytest.fixture
def udp_server() -> Iterator[tuple[socket.socket, int]]:
    """A bound UDP socket on 127.0.0.1 and its port; tests decide whether and how it answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock, sock.getsockname()[1]


LOOPBACK = ipaddress.ip_address("127.0.0.1")


def test_probe_is_a_quic_packet_of_a_reserved_version():
    packet = quic_probe.quic_probe(b"D" * 8, b"S" * 8)
    assert len(packet) == 1200
    assert packet[0] & 0xC0 == 0xC0
    (version,) = struct.unpack("!I", packet[1:5])
    assert version & 0x0F0F0F0F == 0x0A0A0A0A  # 0x?a?a?a?a, RFC 9000 section 15


def test_udp_echo_is_reachable(udp_server):
    sock, port = udp_server
    serve_once(sock, lambda datagram: datagram)
    result = quic_probe.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("reply", "a 1200-byte reply")
    check = quic_probe.judge_udp(LOOPBACK, port, result, 2, strict=False)
    assert check == Check(
        "ok", "udp", f"127.0.0.1:{port}/udp: a 1200-byte reply: reachable, and something answers"
    )


def test_udp_quic_version_negotiation_is_recognised(udp_server):
    sock, port = udp_server

    def negotiate(datagram: bytes) -> bytes:
        dcid = datagram[6 : 6 + datagram[5]]
        scid_at = 6 + datagram[5]
        scid = datagram[scid_at + 1 : scid_at + 1 + datagram[scid_at]]
        return (
            b"\x80\x00\x00\x00\x00"
            + bytes([len(scid)])
            + scid
            + bytes([len(dcid)])
            + dcid
            + b"\x00\x00\x00\x01"
        )

    serve_once(sock, negotiate)
    result = quic_probe.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("reply", "a QUIC Version Negotiation packet (server versions 0x00000001)")


def test_udp_closed_port_is_refused():
    port = free_port()
    result = quic_probe.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("refused")
    check = quic_probe.judge_udp(LOOPBACK, port, result, 2, strict=False)
    assert check.status == "FAIL"
    assert check.detail.startswith(
        f"127.0.0.1:{port}/udp: ICMP port unreachable: the host is up, but nothing listens"
    )


def test_udp_closed_port_is_refused_over_ipv6_too():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
            port = sock.getsockname()[1]
    except OSError as error:
        pytest.skip(f"no IPv6 loopback: {error}")
    assert quic_probe.probe_udp(ipaddress.ip_address("::1"), port, 2) == ProbeResult("refused")


def test_udp_silence_is_inconclusive(udp_server):
    _, port = udp_server
    started = time.monotonic()
    result = quic_probe.probe_udp(LOOPBACK, port, 0.3)
    assert 0.25 < time.monotonic() - started < 2
    assert result == ProbeResult("silent")
    check = quic_probe.judge_udp(LOOPBACK, port, result, 0.3, strict=False)
    assert check == Check(
        "warn",
        "udp",
        f"127.0.0.1:{port}/udp: no reply within 0.3s: the port may be open (QUIC servers ignore unknown "
        "datagrams) or filtered — inconclusive",
    )
    assert quic_probe.judge_udp(LOOPBACK, port, result, 0.3, strict=True).status == "FAIL"


def test_udp_unreachable_address_fails():
    check = quic_probe.judge_udp(
        PINNED, 4433, ProbeResult("unreachable", "No route to host"), 2, strict=False
    )
    assert check.status == "FAIL"
    assert check.detail.startswith("192.168.129.51:4433/udp: No route to host: the address cannot be reached")
