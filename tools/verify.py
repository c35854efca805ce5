"""Check one stack end to end, as the runbook's "Verify MetalLB Status" and "Testing Accessibility" do.

    python -m tools.verify --stack kind-dev [--resolver IP[:PORT]] [--timeout S] [--strict-udp] [--no-arp]
    python -m tools.verify --all [--json]

It prints one line per check, `ok`, `FAIL`, `warn`, `skip` or `error`, then the check's name and what it
saw. What each check looks at, and what a UDP probe can and cannot prove, is written once, in the README's
"Verification" section. Exit status: 0 no check failed (warnings and skips allowed), 1 a check failed,
2 a check could not be made (`error`) or the stack cannot be read, which outranks a failure: a check not
made may hide one.

Kubernetes is read through `kubectl get -o json` only (`kubectl_get`); every judgement is a pure function of
what was read, so the tests run them against recorded API responses.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import secrets
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import yaml

import resource_names
from kube_client import DEFAULT_KUBECTL_TIMEOUT, Kubectl, KubectlError, kubectl_get, kubectl_items
from stack_config import (
    AdvertisementConfig,
    BootstrapConfig,
    ConfigError,
    IPAddress,
    PoolConfig,
    StackConfig,
)
from stack_config.addresses import AddressError, parse_block
from stack_config.files import Project, decode_cli_config, project_namespace, read_project
from tools import arp_probe
from tools.arguments import add_kubectl_timeout, seconds

PROJECT_DIR = Path(__file__).resolve().parent.parent
METALLB_NAMESPACE = "metallb-system"
CONTROLLER = "metallb-controller"
SPEAKER = "metallb-speaker"
# Fully qualified, so another API group's "ipaddresspools" cannot answer instead, and pinned to the
# version the program declares.
POOL_RESOURCE = "ipaddresspools.v1beta1.metallb.io"
ADVERTISEMENT_RESOURCE = "l2advertisements.v1beta1.metallb.io"
# Present with any value, it stops MetalLB 0.14.3's speaker on that node from announcing (not from running).
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# The chart's speaker pods (MetalLB 0.14.3's templates/speaker.yaml).
SPEAKER_PODS = "app.kubernetes.io/name=metallb,app.kubernetes.io/component=speaker"
# Long enough for Linux to give up on ARP (3 probes, 1 s apart) and say so; see probe_udp.
DEFAULT_TIMEOUT = 4.0

# `error`: the check could not be made (kubectl or the resolver could not be asked): not a failed check.
Status = Literal["ok", "FAIL", "warn", "skip", "error"]


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.name:<15} {self.detail}"


# --- Kubernetes: one thin function that runs kubectl, and pure judges of what it returned ------------


def _get(fields: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(fields, dict):
            return None
        fields = fields.get(key)
    return fields


def _generation_lag(obj: dict[str, Any]) -> str | None:
    generation = _get(obj, "metadata", "generation")
    observed = _get(obj, "status", "observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return f"status describes generation {observed}, the spec is at {generation}: rollout not seen yet"
    return None


def judge_controller(deployment: Any) -> Check:
    where = f"{METALLB_NAMESPACE}/{CONTROLLER}"
    if not isinstance(deployment, dict):
        return Check("FAIL", "controller", f"Deployment {where} not found: is MetalLB installed?")
    replicas = _get(deployment, "spec", "replicas")
    replicas = 1 if replicas is None else replicas  # the API server's default
    ready = _get(deployment, "status", "readyReplicas") or 0  # omitted while zero
    problems = []
    if replicas < 1:
        problems.append("scaled to 0 replicas")
    elif ready != replicas:
        problems.append("not every replica is ready")
    return _readiness("controller", deployment, f"{where}: {ready}/{replicas} ready", problems)


def judge_speakers(daemonset: Any, nodes: Any, context: str | None = None) -> Check:
    """The speaker DaemonSet's readiness, and whether any node lets its speaker announce.

    `nodes` is the `kubectl get nodes` List, or the KubectlError reading it raised.
    """
    where = f"{METALLB_NAMESPACE}/{SPEAKER}"
    if not isinstance(daemonset, dict):
        return Check("FAIL", "speakers", f"DaemonSet {where} not found: is MetalLB installed?")
    desired = _get(daemonset, "status", "desiredNumberScheduled") or 0
    ready = _get(daemonset, "status", "numberReady") or 0
    problems, notes = [], []
    if desired < 1:
        # The exclusion label does not stop scheduling; a selector or an untolerated taint does.
        on_context = f"--context {context} " if context else ""
        problems.append(
            "no node runs a speaker, so nobody answers ARP; check the DaemonSet's node selector and "
            f"tolerations (`kubectl {on_context}-n {METALLB_NAMESPACE} describe daemonset {SPEAKER}`)"
        )
    elif ready != desired:
        problems.append("not every speaker is ready")
    if isinstance(nodes, KubectlError):
        notes.append(f"nodes not read ({nodes}), so whether any speaker may announce is unchecked")
    else:
        found = _items(nodes)
        excluded = sorted(
            name
            for name, node in found.items()
            if EXCLUDE_LB_LABEL in (_get(node, "metadata", "labels") or {})
        )
        if found and len(excluded) == len(found):
            problems.append(
                f"every node ({', '.join(excluded)}) carries {EXCLUDE_LB_LABEL}, so no speaker announces: "
                "MetalLB 0.14.3 skips such nodes (set clearLoadBalancerExclusion, or add a worker node)"
            )
        elif excluded:
            notes.append(f"not announcing from {', '.join(excluded)} (excluded by {EXCLUDE_LB_LABEL})")
    check = _readiness("speakers", daemonset, f"{where}: {ready}/{desired} ready", problems, notes)
    # Unread nodes leave half the check undone, which is no failure of the speakers themselves.
    if check.status == "ok" and isinstance(nodes, KubectlError):
        return Check("warn", check.name, check.detail)
    return check


def _readiness(
    name: str, workload: dict[str, Any], detail: str, problems: list[str], notes: Sequence[str] = ()
) -> Check:
    """ok when nothing is wrong; a status that trails its spec is wrong too, as it may be stale."""
    if lag := _generation_lag(workload):
        problems.append(lag)
    return Check("FAIL" if problems else "ok", name, "; ".join([detail, *problems, *notes]))


def _address_key(text: str) -> tuple[str, str] | str:
    """One `addresses` entry as its first and last address, read as the stack's own are, so equal ranges
    written differently match; an entry that does not parse stays its text."""
    try:
        block = parse_block(text)
    except AddressError:
        return text
    return str(block.first), str(block.last)


def _items(listing: Any) -> dict[str, dict[str, Any]]:
    items = listing.get("items") if isinstance(listing, dict) else None
    return {
        item["metadata"]["name"]: item
        for item in items or []
        if isinstance(_get(item, "metadata", "name"), str)
    }


def judge_pools(listing: Any, pools: Sequence[PoolConfig]) -> Check:
    found = _items(listing)
    problems, described = [], []
    for pool in pools:
        expected = [block.text for block in pool.addresses]
        item = found.get(pool.name)
        if item is None:
            problems.append(f"IPAddressPool {pool.name} is missing")
            continue
        actual = _get(item, "spec", "addresses") or []
        if {_address_key(a) for a in actual} != {_address_key(e) for e in expected}:
            problems.append(
                f"IPAddressPool {pool.name} has addresses {', '.join(actual) or 'none'}, "
                f"the stack says {', '.join(expected)}"
            )
        described.append(f"{pool.name} ({', '.join(actual)})")
    extra = sorted(set(found) - {pool.name for pool in pools})
    if problems:
        present = f" (present: {', '.join(sorted(found))})" if found else " (none present)"
        return Check("FAIL", "pools", "; ".join(problems) + present)
    also = f"; also in the cluster: {', '.join(extra)}" if extra else ""
    return Check("ok", "pools", ", ".join(described) + also)


def judge_advertisements(
    listing: Any, advertisements: Sequence[AdvertisementConfig], pools: Sequence[PoolConfig]
) -> Check:
    found = _items(listing)
    all_pools = {pool.name for pool in pools}
    problems, described = [], []
    for advertisement in advertisements:
        item = found.get(advertisement.name)
        if item is None:
            problems.append(f"L2Advertisement {advertisement.name} is missing")
            continue
        actual = set(_get(item, "spec", "ipAddressPools") or [])
        if not actual and not _get(item, "spec", "ipAddressPoolSelectors"):
            actual = all_pools  # MetalLB: no pools and no selectors advertises every pool
        if actual != set(advertisement.pools):
            problems.append(
                f"L2Advertisement {advertisement.name} advertises "
                f"pools {', '.join(sorted(actual)) or 'none'}, "
                f"the stack says {', '.join(advertisement.pools)}"
            )
        described.append(f"{advertisement.name} (pools: {', '.join(sorted(actual))})")
    if problems:
        present = f" (present: {', '.join(sorted(found))})" if found else " (none present)"
        return Check("FAIL", "advertisements", "; ".join(problems) + present)
    return Check("ok", "advertisements", ", ".join(described))


def service_ips(service: Any) -> list[IPAddress]:
    """The IPs in `.status.loadBalancer.ingress`, in order."""
    ips = []
    for entry in _get(service, "status", "loadBalancer", "ingress") or []:
        try:
            ips.append(ipaddress.ip_address(entry.get("ip", "")))
        except (ValueError, AttributeError):
            continue
    return ips


def judge_service(
    service: Any, bootstrap: BootstrapConfig, pools: Sequence[PoolConfig], context: str | None = None
) -> Check:
    where = f"{bootstrap.namespace}/{bootstrap.service}"
    if not isinstance(service, dict):
        return Check("FAIL", "service", f"Service {where} not found")
    kind = _get(service, "spec", "type") or "ClusterIP"
    if kind != "LoadBalancer":
        return Check(
            "FAIL",
            "service",
            f"{where} is type {kind}, not LoadBalancer: has `pulumi up` run for this stack?",
        )
    problems = []
    ports = _get(service, "spec", "ports") or []
    if not any(p.get("port") == bootstrap.port and p.get("protocol", "TCP") == "UDP" for p in ports):
        shown = ", ".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "none"
        problems.append(f"no UDP port {bootstrap.port} (ports: {shown})")
    ips = service_ips(service)
    shown_ips = ", ".join(map(str, ips))
    on_context = f"--context {context} " if context else ""
    describe = (
        f"`kubectl {on_context}-n {bootstrap.namespace} describe service {bootstrap.service}` "
        "shows MetalLB's events"
    )
    if not ips:
        problems.append(f"no external IP yet (pending): MetalLB has not assigned one; {describe}")
    elif bootstrap.ip is not None and bootstrap.ip not in ips:
        problems.append(f"external IP {shown_ips}, expected {bootstrap.ip}; {describe}")
    elif bootstrap.ip is None:
        candidates = [pool for pool in pools if bootstrap.pool in (None, pool.name)]
        if not any(pool.contains(ip) for pool in candidates for ip in ips):
            names = ", ".join(pool.name for pool in candidates)
            problems.append(f"external IP {shown_ips} is in none of the stack's pools ({names})")
    detail = f"{where}: LoadBalancer, external IP {shown_ips or '<pending>'}"
    if problems:
        return Check("FAIL", "service", f"{detail}; {'; '.join(problems)}")
    return Check("ok", "service", detail)


# --- DNS: one query, as dig makes it, through dnspython -----------------------------------------------

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


def _show_server(server: tuple[str, int]) -> str:
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


# --- UDP: one probe, honest about what silence means -------------------------------------------------

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


# --- The run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    resolver: tuple[str, int] | None = None
    timeout: float = DEFAULT_TIMEOUT
    strict_udp: bool = False
    kubectl_timeout: float = DEFAULT_KUBECTL_TIMEOUT
    arp: bool = True
    # The Pulumi project, for the URNs of the commands a fix runs again.
    project: str = "macula-lan"


def _kube_check(name: str, fetch: Callable[[], Any], judge: Callable[[Any], Check]) -> tuple[Check, Any]:
    try:
        found = fetch()
    except KubectlError as error:
        return Check("error", name, f"kubectl: {error}"), None
    return judge(found), found


def _nodes(kubectl: Kubectl) -> Any:
    """The nodes List, or the KubectlError reading it raised: the speakers check does without them."""
    try:
        return kubectl_get(kubectl, "nodes", None)
    except KubectlError as error:
        return error


def node_addresses(nodes: Any) -> dict[str, list[IPAddress]]:
    """Each node's InternalIP addresses, by node name."""
    found: dict[str, list[IPAddress]] = {}
    for node in (nodes.get("items") or []) if isinstance(nodes, dict) else []:
        name = _get(node, "metadata", "name")
        for entry in _get(node, "status", "addresses") or []:
            if isinstance(entry, dict) and entry.get("type") == "InternalIP" and isinstance(name, str):
                try:
                    found.setdefault(name, []).append(ipaddress.ip_address(entry.get("address", "")))
                except ValueError:
                    continue
    return found


def judge_node_addresses(nodes: Any, pools: Sequence[PoolConfig]) -> Check:
    """No node's InternalIP lies inside a pool: MetalLB 0.14.3 would hand it to a Service (0.15 refuses)."""
    if nodes is None:
        return Check("skip", "node-ips", "the nodes were not read (see speakers)")
    if isinstance(nodes, KubectlError):
        return Check("warn", "node-ips", f"cannot read the nodes, so cannot tell: {nodes}")
    addresses = node_addresses(nodes)
    problems = [
        f"node {node}'s InternalIP {ip} lies inside pool {pool.name} "
        f"({', '.join(block.text for block in pool.addresses)})"
        for node, ips in sorted(addresses.items())
        for ip in ips
        for pool in pools
        if pool.contains(ip)
    ]
    if problems:
        return Check(
            "FAIL",
            "node-ips",
            "; ".join(problems) + ": MetalLB 0.14.3 would hand it to a Service (0.15 refuses such a pool); "
            "take it out of the pool",
        )
    count = sum(len(ips) for ips in addresses.values())
    return Check("ok", "node-ips", f"{count} node address{'es' if count != 1 else ''}, none inside a pool")


ARP_READINESS_TYPES = ("macula:lan:ArpReadiness", "command:local:Command")


def _replace_command(project: str, stack: str, command: str) -> str:
    """The `pulumi up --replace` that runs one of the ArpReadiness commands again."""
    target = resource_names.urn(f"{project}/{stack}", ARP_READINESS_TYPES, f"arp-readiness-{command}")
    return f"pulumi up --stack {stack} --replace '{target}'"


def judge_exclusion_label(nodes: Any, listed: Sequence[str], project: str, stack: str) -> Check:
    """The nodes clearLoadBalancerExclusion names still lack the exclusion label: kubeadm upgrades put it
    back, and the command that took it off never runs again by itself (pulumi-command has no read)."""
    if not listed:
        return Check("skip", "lb-exclusion", "no node is listed in clearLoadBalancerExclusion")
    if nodes is None:
        return Check("skip", "lb-exclusion", "the nodes were not read (see speakers)")
    if isinstance(nodes, KubectlError):
        return Check("error", "lb-exclusion", f"cannot read the nodes: {nodes}")
    found = _items(nodes)
    problems = []
    for node in listed:
        if node not in found:
            problems.append(f"node {node} does not exist")
        elif EXCLUDE_LB_LABEL in (_get(found[node], "metadata", "labels") or {}):
            problems.append(
                f"node {node} carries {EXCLUDE_LB_LABEL} again, so its speaker does not announce; take it "
                f"off again: {_replace_command(project, stack, f'include-{node}')}"
            )
    if problems:
        return Check("FAIL", "lb-exclusion", "; ".join(problems))
    return Check("ok", "lb-exclusion", f"{', '.join(listed)}: without {EXCLUDE_LB_LABEL}")


def judge_strict_arp(configmap: Any, project: str, stack: str) -> Check:
    """kube-proxy's configuration still has strictARP on (the ConfigMap kubeadm writes, config.conf)."""
    if not isinstance(configmap, dict):
        return Check("FAIL", "strict-arp", "ConfigMap kube-system/kube-proxy not found")
    text = (_get(configmap, "data") or {}).get("config.conf")
    try:
        settings = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as error:
        return Check("error", "strict-arp", f"kube-system/kube-proxy config.conf is not YAML: {error}")
    strict = _get(settings, "ipvs", "strictARP") if isinstance(settings, dict) else None
    if strict is True:
        return Check("ok", "strict-arp", "kube-proxy's ipvs.strictARP is true")
    return Check(
        "FAIL",
        "strict-arp",
        f"kube-proxy's ipvs.strictARP is {json.dumps(strict)}: it was turned off since; turn it on again: "
        f"{_replace_command(project, stack, 'strict-arp')}",
    )


def _ready(obj: Any) -> bool:
    conditions = _get(obj, "status", "conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def judge_announced(pods: Sequence[Any], nodes: Any) -> Check:
    """At least one speaker that may announce runs, ready, on a node that is Ready: MetalLB's controller
    writes the Service's address whether or not anyone answers ARP for it."""
    if nodes is None or isinstance(nodes, KubectlError):
        return Check("skip", "announced", "the nodes were not read (see speakers)")
    found = _items(nodes)
    able = []
    for pod in pods:
        node = found.get(_get(pod, "spec", "nodeName") or "")
        if node is None or not _ready(pod) or not _ready(node):
            continue
        if EXCLUDE_LB_LABEL in (_get(node, "metadata", "labels") or {}):
            continue
        able.append(_get(node, "metadata", "name"))
    if not able:
        return Check(
            "FAIL",
            "announced",
            "no ready speaker runs on a Ready node without "
            f"{EXCLUDE_LB_LABEL}: the Service has its address, but nobody answers ARP for it",
        )
    return Check("ok", "announced", f"speakers that may announce run on {', '.join(sorted(able))}")


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


def iter_checks(config: StackConfig, options: Options) -> Iterator[Check]:
    """Every check in order, each as soon as it is done."""
    kubectl = Kubectl(config.kube_context, config.kubeconfig, options.kubectl_timeout)
    project = options.project
    yield _kube_check(
        "controller",
        lambda: kubectl_get(kubectl, "deployments.v1.apps", METALLB_NAMESPACE, CONTROLLER),
        judge_controller,
    )[0]
    speakers_check, speakers_and_nodes = _kube_check(
        "speakers",
        lambda: (kubectl_get(kubectl, "daemonsets.v1.apps", METALLB_NAMESPACE, SPEAKER), _nodes(kubectl)),
        lambda found: judge_speakers(found[0], found[1], config.kube_context),
    )
    yield speakers_check
    nodes = speakers_and_nodes[1] if speakers_and_nodes else None
    yield _kube_check(
        "pools",
        lambda: kubectl_get(kubectl, POOL_RESOURCE, METALLB_NAMESPACE),
        lambda listing: judge_pools(listing, config.pools),
    )[0]
    yield _kube_check(
        "advertisements",
        lambda: kubectl_get(kubectl, ADVERTISEMENT_RESOURCE, METALLB_NAMESPACE),
        lambda listing: judge_advertisements(listing, config.advertisements, config.pools),
    )[0]
    yield judge_node_addresses(nodes, config.pools)
    yield judge_exclusion_label(nodes, config.clear_lb_exclusion, project, config.stack)
    if config.strict_arp:
        yield _kube_check(
            "strict-arp",
            lambda: kubectl_get(kubectl, "configmaps", "kube-system", "kube-proxy"),
            lambda found: judge_strict_arp(found, project, config.stack),
        )[0]
    yield _kube_check(
        "announced",
        lambda: kubectl_items(kubectl, ["pods"], namespace=METALLB_NAMESPACE, selector=SPEAKER_PODS),
        lambda pods: judge_announced(pods, nodes),
    )[0]
    yield from _bootstrap_checks(config, options, kubectl)
    yield (
        _arp_check(config, nodes, options.timeout)
        if options.arp
        else Check("skip", "arp", "not probed (--no-arp)")
    )


def _arp_check(config: StackConfig, nodes: Any, wait: float) -> Check:
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


def _bootstrap_checks(config: StackConfig, options: Options, kubectl: Kubectl) -> Iterator[Check]:
    bootstrap = config.bootstrap
    if bootstrap is None:
        for name in ("service", "dns", "udp"):
            yield Check("skip", name, "bootstrap is not configured for this stack")
        return

    service_check, service = _kube_check(
        "service",
        lambda: kubectl_get(kubectl, "services", bootstrap.namespace, bootstrap.service),
        lambda found: judge_service(found, bootstrap, config.pools, config.kube_context),
    )
    yield service_check
    # The stack file is the truth: a pinned IP is what DNS and clients should use, whatever the Service says.
    expected = [bootstrap.ip] if bootstrap.ip is not None else service_ips(service)

    if bootstrap.hostname is None:
        yield Check("skip", "dns", "no hostname configured (bootstrap.hostname)")
    else:
        if options.resolver is not None:
            server, label = options.resolver, _show_server(options.resolver)
        else:
            server = system_resolver()
            label = f"{_show_server(server)}, the first nameserver of /etc/resolv.conf"
        qtype = QTYPE_AAAA if expected and expected[0].version == 6 else QTYPE_A
        outcome: DnsAnswer | Exception
        try:
            outcome = resolve(bootstrap.hostname, server, options.timeout, qtype)
        except (OSError, DnsError) as error:
            outcome = error
        yield judge_dns(bootstrap.hostname, label, expected, outcome, options.timeout)

    if not expected:
        yield Check("skip", "udp", "no address to probe: no IP is pinned and the Service has none")
    else:
        result = probe_udp(expected[0], bootstrap.port, options.timeout)
        yield judge_udp(expected[0], bootstrap.port, result, options.timeout, strict=options.strict_udp)


def summary(stack: str, checks: Sequence[Check]) -> tuple[str, int]:
    """The last line and the exit code: 2 when a check could not be made (it may hide a failure), else 1
    when a check failed, else 0."""
    failed = [check.name for check in checks if check.status == "FAIL"]
    warned = [check.name for check in checks if check.status == "warn"]
    errors = [check.name for check in checks if check.status == "error"]
    if errors:
        also = f"; {len(failed)} failed: {', '.join(failed)}" if failed else ""
        return (
            f"error {len(errors)} of {len(checks)} checks could not be made for stack {stack}: "
            f"{', '.join(errors)}{also}",
            2,
        )
    if failed:
        return f"FAIL  {len(failed)} of {len(checks)} checks failed for stack {stack}: {', '.join(failed)}", 1
    warnings = (
        f" ({len(warned)} warning{'s' if len(warned) > 1 else ''}: {', '.join(warned)})" if warned else ""
    )
    return f"ok    no check failed for stack {stack}{warnings}", 0


def _server_argument(text: str) -> tuple[str, int]:
    try:
        return parse_server(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not IP[:PORT] or [IPv6]:PORT: {error}") from None


# Secret config verify has no use for: the SSH key is the DNS fix's, not a check's.
UNNEEDED_SECRETS = frozenset({"sshPrivateKey"})


def read_stack_config(
    project_dir: Path, stack: str, pulumi: str, project: Project | None = None
) -> StackConfig:
    """The stack's configuration (from `project`, when the caller has read it already). When it keeps
    values verify checks as secrets, they are decrypted with `pulumi config --show-secrets --json` (which
    needs the stack's passphrase); when that cannot be done, ConfigError names the values it cannot read."""
    project = project if project is not None else read_project(project_dir)
    needed = project.secrets.get(stack, frozenset()) - UNNEEDED_SECRETS
    if not needed:
        return project.stack_config(stack)
    command = [pulumi, "config", "--stack", stack, "--show-secrets", "--json"]
    why = ""
    try:
        result = subprocess.run(
            command, cwd=project_dir, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode == 0:
            return project.stack_config(
                stack, decode_cli_config(json.loads(result.stdout), project.namespace)
            )
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        why = str(error)
    raise ConfigError(
        f"stack {stack} keeps {', '.join(sorted(needed))} as secrets, and `{' '.join(command)}` could not "
        f"decrypt them ({why}); set PULUMI_CONFIG_PASSPHRASE (or _FILE) and run verify where pulumi runs"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.verify",
        description="Check a stack's MetalLB, bootstrap Service, DNS name and UDP port, one line per check.",
        epilog="Exit status: 0 no check failed (warnings allowed), 1 a check failed, "
        "2 a check could not be made or the stack cannot be read.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="the stack to check, as in Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="check every stack; print one table of the fleet")
    parser.add_argument("--json", action="store_true", help="with --all: print the fleet's status as JSON")
    parser.add_argument(
        "--resolver",
        metavar="IP[:PORT]",
        type=_server_argument,
        help="DNS server to ask, IP[:PORT] (default: the first nameserver of /etc/resolv.conf)",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=seconds(0.1, 600),
        default=DEFAULT_TIMEOUT,
        help=f"seconds the DNS query and the UDP probe wait for an answer (default {DEFAULT_TIMEOUT:g})",
    )
    add_kubectl_timeout(parser, DEFAULT_KUBECTL_TIMEOUT)
    parser.add_argument(
        "--strict-udp", action="store_true", help="count a UDP probe that gets no reply as a failure"
    )
    parser.add_argument(
        "--no-arp", action="store_true", help="send no ARP requests: skip the probe for address conflicts"
    )
    parser.add_argument(
        "--pulumi",
        default="pulumi",
        metavar="PATH",
        help="the Pulumi CLI that decrypts a stack's secret config (default: pulumi on PATH)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json and not args.all:
        parser.error("--json goes with --all")

    options = Options(
        args.resolver,
        args.timeout,
        args.strict_udp,
        args.kubectl_timeout,
        not args.no_arp,
        project_namespace(args.project_dir),
    )
    if args.all:
        from tools import fleet_status  # noqa: PLC0415 - it builds on this module

        statuses = fleet_status.fleet_status(args.project_dir, args.pulumi, options)
        print(fleet_status.status_json(statuses) if args.json else fleet_status.render_table(statuses))
        return fleet_status.exit_code(statuses)
    try:
        config = read_stack_config(args.project_dir, args.stack, args.pulumi)
    except ConfigError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    print(f"verify stack {config.stack}: context {config.kube_context}")
    checks = []
    for check in iter_checks(config, options):
        print(check.line(), flush=True)
        checks.append(check)
    last, code = summary(config.stack, checks)
    print(last)
    return code


if __name__ == "__main__":
    sys.exit(main())
