"""The dns check: dnspython's query against a real dnsmasq on loopback, and the verdict on its answers."""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.rrset
import pytest

from tests.dnsmasq import free_port
from tests.system_programs import require_tool
from tests.tools.verify.kind_dev import PINNED
from tests.tools.verify.servers import DNSMASQ_NAMES, dnsmasq_command, running
from tools.verify import dns_check
from tools.verify.check import Check
from tools.verify.dns_check import DnsAnswer

# --- DNS: dnspython's query against a real dnsmasq ------------------------------------------------------


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory) -> Iterator[tuple[str, int]]:
    # Free for UDP and TCP alike: dnsmasq listens on both.
    port = free_port()
    server = ("127.0.0.1", port)

    def answers() -> bool:
        try:
            dns_check.resolve("bootstrap.macula.local", server, 0.2)
        except (TimeoutError, ConnectionRefusedError):
            return False
        return True

    with running(dnsmasq_command(port), tmp_path_factory.mktemp("dnsmasq") / "log", answers):
        yield server


def test_resolves_through_dnsmasq(dnsmasq):
    answer = dns_check.resolve("bootstrap.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, (PINNED,))
    check = dns_check.judge_dns("bootstrap.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check == Check("ok", "dns", "bootstrap.macula.local → 192.168.129.51 (asked 127.0.0.1:N)")


def test_reports_the_override_the_resolver_answers(dnsmasq):
    answer = dns_check.resolve("override.macula.local", dnsmasq, 2)
    check = dns_check.judge_dns("override.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check.status == "FAIL"
    assert check.detail == (
        "override.macula.local → 127.0.0.2, expected 192.168.129.51 (asked 127.0.0.1:N); a loopback answer "
        "is a local override, such as the host dnsmasq's entry (see dnsFix)"
    )


def test_reports_nxdomain(dnsmasq):
    answer = dns_check.resolve("unknown.macula.local", dnsmasq, 2)
    assert (answer.rcode_name, answer.addresses) == ("NXDOMAIN", ())
    check = dns_check.judge_dns("unknown.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check == Check(
        "FAIL",
        "dns",
        "unknown.macula.local: NXDOMAIN (no such name), expected 192.168.129.51 (asked 127.0.0.1:N)",
    )


def test_reports_a_name_without_an_a_record(dnsmasq):
    answer = dns_check.resolve("v6only.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, ())
    check = dns_check.judge_dns("v6only.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check.detail.startswith("v6only.macula.local: the name exists but has no address record")
    assert dns_check.resolve("v6only.macula.local", dnsmasq, 2, dns_check.QTYPE_AAAA).addresses == (
        ipaddress.ip_address("fd00::51"),
    )


def test_follows_a_cname(dnsmasq):
    answer = dns_check.resolve("alias.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, (PINNED,), ("alias-target.macula.local",))
    check = dns_check.judge_dns("alias.macula.local", "r", [PINNED], answer, 2)
    assert check.detail == "alias.macula.local → 192.168.129.51 via alias-target.macula.local (asked r)"


def test_a_cname_chain_that_ends_elsewhere_fails(dnsmasq):
    answer = dns_check.resolve("elsewhere.macula.local", dnsmasq, 2)
    assert answer.cnames == ("stub.macula.local",)

    check = dns_check.judge_dns("elsewhere.macula.local", "r", [PINNED], answer, 2)

    assert check.status == "FAIL"
    assert "elsewhere.macula.local → 127.0.0.2 via stub.macula.local, expected 192.168.129.51" in check.detail


def test_a_stale_answer_beside_the_right_one_fails(dnsmasq):
    answer = dns_check.resolve("stale.macula.local", dnsmasq, 2)
    assert sorted(map(str, answer.addresses)) == ["127.0.0.2", "192.168.129.51"]

    check = dns_check.judge_dns("stale.macula.local", "r", [PINNED], answer, 2)

    assert check.status == "FAIL"
    assert "127.0.0.2 is no address of the bootstrap Service, and clients that take it fail" in check.detail


def test_reports_a_resolver_that_refuses(dnsmasq):
    answer = dns_check.resolve("example.org", dnsmasq, 2)
    check = dns_check.judge_dns("example.org", "r", [PINNED], answer, 2)
    assert check.detail == "example.org: REFUSED (the resolver failed), expected 192.168.129.51 (asked r)"


@pytest.mark.parametrize(
    "name", [*DNSMASQ_NAMES, "alias.macula.local", "v6only.macula.local", "unknown.macula.local"]
)
def test_answers_as_dig_does(dnsmasq, name):
    dig = require_tool("dig")
    host, port = dnsmasq
    output = subprocess.run(
        [dig, "+short", "+time=2", "+tries=1", f"@{host}", "-p", str(port), name, "A"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    dig_addresses = [ipaddress.ip_address(line) for line in output.split() if re.fullmatch(r"[\d.]+", line)]
    assert list(dns_check.resolve(name, dnsmasq, 2).addresses) == dig_addresses


@pytest.fixture
def silent_udp() -> Iterator[tuple[str, int]]:
    """A UDP socket that reads datagrams and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield "127.0.0.1", sock.getsockname()[1]


def test_dns_timeout(silent_udp):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        dns_check.resolve("bootstrap.macula.local", silent_udp, 0.3)
    assert 0.25 < time.monotonic() - started < 2
    check = dns_check.judge_dns("bootstrap.macula.local", "127.0.0.1:N", [PINNED], TimeoutError(), 0.3)
    # A resolver that does not answer kept the check from being made: an error, not a failed check.
    assert check == Check("error", "dns", "bootstrap.macula.local: no answer from 127.0.0.1:N within 0.3s")


def test_dns_server_not_listening():
    with pytest.raises(ConnectionRefusedError):
        dns_check.resolve("bootstrap.macula.local", ("127.0.0.1", free_port()), 2)


def test_dns_ignores_datagrams_that_do_not_answer_the_query():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))

        def answer_twice() -> None:
            wire, client = server.recvfrom(512)
            query = dns.message.from_wire(wire)
            for query_id, address in ((query.id ^ 1, "10.9.9.9"), (query.id, "192.168.129.51")):
                reply = dns.message.make_response(query)
                reply.id = query_id
                reply.answer.append(dns.rrset.from_text("bootstrap.macula.local.", 0, "IN", "A", address))
                server.sendto(reply.to_wire(), client)

        thread = threading.Thread(target=answer_twice, daemon=True)
        thread.start()
        answer = dns_check.resolve("bootstrap.macula.local", server.getsockname(), 2)
        thread.join(timeout=2)
    assert answer.addresses == (PINNED,)


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[fd00::53]", ("fd00::53", 53)),
    ],
)
def test_parse_server(text, server):
    assert dns_check.parse_server(text) == server


@pytest.mark.parametrize("text", ["resolver.lan", "127.0.0.1:0", "127.0.0.1:x", "[::1]5353"])
def test_parse_server_rejects(text):
    with pytest.raises(ValueError):
        dns_check.parse_server(text)


def test_system_resolver_is_resolv_confs_first_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch macula.local\nnameserver fe80::1%eth0\nnameserver 10.0.0.53\n")
    assert dns_check.system_resolver(conf) == ("fe80::1", 53)
    conf.write_text("options edns0\n")
    assert dns_check.system_resolver(conf) == ("127.0.0.1", 53)
    assert dns_check.system_resolver(tmp_path / "absent") == ("127.0.0.1", 53)
