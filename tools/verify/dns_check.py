"""The dns check: one query, as dig makes it, through dnspython, and a verdict that a stale answer beside
the right one cannot fool."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from stack_config import IPAddress
from tools.verify.check import Check

DNS_PORT = 53
QTYPE_A = int(dns.rdatatype.A)
QTYPE_AAAA = int(dns.rdatatype.AAAA)
# CNAME chains longer than this are a loop, as resolvers treat them.
MAX_CNAMES = 16


class DnsError(Exception):
    """A DNS message dnspython could not read."""


@dataclass(frozen=True)
class DnsAnswer:
    rcode: int
    addresses: tuple[IPAddress, ...]
    # The CNAMEs followed from the asked name to the addresses, in order.
    cnames: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def rcode_name(self) -> str:
        return str(dns.rcode.to_text(dns.rcode.Rcode(self.rcode)))


def answer_of(response: dns.message.Message, name: str, qtype: int) -> DnsAnswer:
    """The addresses a response gives for `name`, following its CNAMEs."""
    current = dns.name.from_text(name)
    cnames: list[str] = []
    for _ in range(MAX_CNAMES):
        alias = response.get_rrset(response.answer, current, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if alias is None:
            break
        current = alias[0].target
        cnames.append(current.to_text(omit_final_dot=True))
    owners = {dns.name.from_text(name), *(dns.name.from_text(cname) for cname in cnames)}
    addresses = tuple(
        ipaddress.ip_address(record.address)
        for rrset in response.answer
        if rrset.name in owners and rrset.rdtype == qtype and rrset.rdclass == dns.rdataclass.IN
        for record in rrset
    )
    truncated = bool(response.flags & dns.flags.TC)
    return DnsAnswer(int(response.rcode()), addresses, tuple(cnames), truncated)


def resolve(name: str, server: tuple[str, int], timeout: float, qtype: int = QTYPE_A) -> DnsAnswer:
    """Ask `server` for `name` over UDP, recursion desired, as dig does. Raises TimeoutError,
    ConnectionRefusedError (nothing listens there) or DnsError."""
    family = socket.AF_INET6 if ipaddress.ip_address(server[0]).version == 6 else socket.AF_INET
    query = dns.message.make_query(name, dns.rdatatype.RdataType(qtype))
    # Connected, so the server's ICMP "port unreachable" surfaces as ConnectionRefusedError.
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(server)
        # dnspython waits on the sockets it is given with select(): they must not block. A datagram that
        # answers another query (another ID or question) is ignored, as resolvers do (ignore_errors).
        sock.setblocking(False)
        try:
            response = dns.query.udp(
                query,
                server[0],
                timeout=timeout,
                port=server[1],
                sock=sock,
                ignore_unexpected=True,
                ignore_errors=True,
            )
        except dns.exception.Timeout:
            raise TimeoutError from None
        except dns.exception.DNSException as error:
            raise DnsError(str(error) or type(error).__name__) from None
    return answer_of(response, name, qtype)


def parse_server(text: str, default_port: int = DNS_PORT) -> tuple[str, int]:
    """`IP`, `IP:PORT`, `IPv6` or `[IPv6]:PORT` as a (host, port) pair; ValueError otherwise."""
    host, port = text.strip(), default_port
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected [IPv6]:PORT")
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = int(port_text)
    address = ipaddress.ip_address(host)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is not from 1 to 65535")
    return str(address), port


def system_resolver(resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[str, int]:
    """The first `nameserver` of resolv.conf, as `dig` uses; 127.0.0.1 when there is none (resolv.conf(5))."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                return parse_server(fields[1].split("%")[0])
            except ValueError:
                continue
    return "127.0.0.1", DNS_PORT


def show_server(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def judge_dns(
    hostname: str,
    server_label: str,
    expected: Sequence[IPAddress],
    outcome: DnsAnswer | Exception,
    timeout: float,
) -> Check:
    """What the resolver said about `hostname`, against the IP(s) it should say."""
    want = ", ".join(map(str, expected))
    expecting = f", expected {want}" if want else ""
    asked = f"(asked {server_label})"
    if isinstance(outcome, TimeoutError):
        return Check("error", "dns", f"{hostname}: no answer from {server_label} within {timeout:g}s")
    if isinstance(outcome, ConnectionRefusedError):
        return Check(
            "error", "dns", f"{hostname}: {server_label} refused the query: no DNS server listens there"
        )
    if isinstance(outcome, Exception):
        return Check("error", "dns", f"{hostname}: {type(outcome).__name__}: {outcome} {asked}")
    via = f" via {' → '.join(outcome.cnames)}" if outcome.cnames else ""
    if outcome.rcode != 0:
        meaning = "no such name" if outcome.rcode == 3 else "the resolver failed"
        return Check(
            "FAIL",
            "dns",
            f"{hostname}: {outcome.rcode_name} ({meaning}){expecting} {asked}",
        )
    if not outcome.addresses:
        truncated = "; the answer was truncated (TC)" if outcome.truncated else ""
        return Check(
            "FAIL",
            "dns",
            f"{hostname}: the name exists but has no address record{truncated}{expecting} {asked}",
        )
    got = ", ".join(map(str, outcome.addresses))
    if not expected:
        return Check(
            "skip",
            "dns",
            f"{hostname} → {got}{via} {asked}; nothing to compare with: no IP is pinned and the "
            "Service has no external IP",
        )
    stray = [address for address in outcome.addresses if address not in expected]
    if stray and len(stray) < len(outcome.addresses):
        # A client takes any of the answers: a stale one beside the right one fails about half the time.
        return Check(
            "FAIL",
            "dns",
            f"{hostname} → {got}{via}{expecting} {asked}; {', '.join(map(str, stray))} is no address of "
            "the bootstrap Service, and clients that take it fail",
        )
    if not stray:
        return Check("ok", "dns", f"{hostname} → {got}{via} {asked}")
    hint = ""
    if any(address.is_loopback for address in outcome.addresses):
        hint = "; a loopback answer is a local override, such as the host dnsmasq's entry (see dnsFix)"
    return Check("FAIL", "dns", f"{hostname} → {got}{via}, expected {want} {asked}{hint}")


def dns_check(
    hostname: str, expected: Sequence[IPAddress], resolver: tuple[str, int] | None, timeout: float
) -> Check:
    """Ask `resolver` (else resolv.conf's first nameserver) for `hostname`, and judge the answer."""
    if resolver is not None:
        server, label = resolver, show_server(resolver)
    else:
        server = system_resolver()
        label = f"{show_server(server)}, the first nameserver of /etc/resolv.conf"
    qtype = QTYPE_AAAA if expected and expected[0].version == 6 else QTYPE_A
    outcome: DnsAnswer | Exception
    try:
        outcome = resolve(hostname, server, timeout, qtype)
    except (OSError, DnsError) as error:
        outcome = error
    return judge_dns(hostname, label, expected, outcome, timeout)
