"""`python -m tools.verify`: its judges against recorded API responses, its DNS client against a real
dnsmasq, its UDP probe against real sockets, and the whole command against a stand-in kubectl.

Everything runs on loopback: the end-to-end stacks pin 127.0.0.51, so neither the DNS query nor the
UDP probe leaves this machine.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset
import pytest

from kube_client import KubectlError
from stack_config import load_stack_file_config
from stack_config.addresses import parse_block
from tests.dnsmasq import free_port as dns_port
from tests.netns import NetNamespace, network_namespace
from tests.program import PROJECT_DIR
from tests.standin_kubectl import calls, write_kubectl
from tests.system_programs import require_tool
from tools import arp_probe, verify
from tools.verify import Check, DnsAnswer, ProbeResult

RECORDED = Path(__file__).resolve().parent / "recorded_api"
KIND_DEV = load_stack_file_config(PROJECT_DIR, "kind-dev")
BEAM00 = load_stack_file_config(PROJECT_DIR, "beam00")
assert KIND_DEV.bootstrap is not None
BOOTSTRAP = KIND_DEV.bootstrap
PINNED = ipaddress.ip_address("192.168.129.51")


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- The Kubernetes judges, against recorded responses ------------------------------------------------


def test_every_recorded_response_is_used_and_is_kubectl_json():
    for path in RECORDED.glob("*.json"):
        body = json.loads(path.read_text())
        assert body["apiVersion"] and body["kind"], path.name
        if body["kind"] == "List":
            assert body["metadata"] == {"resourceVersion": ""}
            assert all(item["apiVersion"] in ("metallb.io/v1beta1", "v1") for item in body["items"])
    # The fleet status's tests read some of them too.
    source = Path(__file__).read_text() + Path(__file__).with_name("test_fleet_status.py").read_text()
    unused = [p.name for p in RECORDED.glob("*.json") if p.name not in source]
    assert not unused, f"recorded responses no test reads: {unused}"


def test_controller_ready():
    check = verify.judge_controller(recorded("deployment-metallb-controller.ready.json"))
    assert check == Check("ok", "controller", "metallb-system/metallb-controller: 1/1 ready")


def test_controller_not_ready():
    check = verify.judge_controller(recorded("deployment-metallb-controller.not-ready.json"))
    assert check.status == "FAIL"
    assert check.detail == "metallb-system/metallb-controller: 0/1 ready; not every replica is ready"


def test_controller_whose_status_lags_its_spec_is_not_ready():
    deployment = recorded("deployment-metallb-controller.ready.json")
    deployment["metadata"]["generation"] = 2
    check = verify.judge_controller(deployment)
    assert check.status == "FAIL"
    assert "status describes generation 1, the spec is at 2" in check.detail


def test_controller_scaled_to_zero():
    deployment = recorded("deployment-metallb-controller.ready.json")
    deployment["spec"]["replicas"] = 0
    deployment["status"] = {"observedGeneration": 1}
    check = verify.judge_controller(deployment)
    assert (check.status, check.detail) == (
        "FAIL",
        "metallb-system/metallb-controller: 0/0 ready; scaled to 0 replicas",
    )


def test_controller_missing():
    check = verify.judge_controller(None)
    assert check.status == "FAIL"
    assert check.detail == "Deployment metallb-system/metallb-controller not found: is MetalLB installed?"


def test_speakers_ready():
    check = verify.judge_speakers(recorded("daemonset-metallb-speaker.ready.json"), recorded("nodes.json"))
    assert check == Check("ok", "speakers", "metallb-system/metallb-speaker: 1/1 ready")


def test_speakers_not_ready():
    check = verify.judge_speakers(
        recorded("daemonset-metallb-speaker.not-ready.json"), recorded("nodes.json")
    )
    assert (check.status, check.detail) == (
        "FAIL",
        "metallb-system/metallb-speaker: 0/1 ready; not every speaker is ready",
    )


def test_speakers_on_excluded_nodes_only_announce_nowhere():
    # What a single-node KinD cluster looks like before clearLoadBalancerExclusion: the speaker runs.
    check = verify.judge_speakers(
        recorded("daemonset-metallb-speaker.ready.json"), recorded("nodes.excluded.json")
    )
    assert check == Check(
        "FAIL",
        "speakers",
        "metallb-system/metallb-speaker: 1/1 ready; every node (macula-dev-control-plane) carries "
        "node.kubernetes.io/exclude-from-external-load-balancers, so no speaker announces: MetalLB 0.14.3 "
        "skips such nodes (set clearLoadBalancerExclusion, or add a worker node)",
    )
    # MetalLB checks that the label is there, not what it says.
    nodes = recorded("nodes.json")
    nodes["items"][0]["metadata"]["labels"][verify.EXCLUDE_LB_LABEL] = "false"
    assert verify.judge_speakers(recorded("daemonset-metallb-speaker.ready.json"), nodes).status == "FAIL"


def test_speakers_name_the_excluded_nodes_when_another_may_announce():
    nodes = recorded("nodes.excluded.json")
    worker = json.loads(json.dumps(nodes["items"][0]))
    worker["metadata"]["name"] = "macula-dev-worker"
    # kubeadm puts both labels on control-plane nodes only.
    for label in ("node-role.kubernetes.io/control-plane", verify.EXCLUDE_LB_LABEL):
        del worker["metadata"]["labels"][label]
    nodes["items"].append(worker)
    daemonset = recorded("daemonset-metallb-speaker.ready.json")
    daemonset["status"].update(desiredNumberScheduled=2, numberReady=2)
    check = verify.judge_speakers(daemonset, nodes)
    assert check == Check(
        "ok",
        "speakers",
        "metallb-system/metallb-speaker: 2/2 ready; not announcing from macula-dev-control-plane "
        "(excluded by node.kubernetes.io/exclude-from-external-load-balancers)",
    )


def test_speakers_scheduled_nowhere_point_at_the_node_selector_and_tolerations():
    check = verify.judge_speakers(
        recorded("daemonset-metallb-speaker.unscheduled.json"), recorded("nodes.json"), "kind-macula-dev"
    )
    assert check == Check(
        "FAIL",
        "speakers",
        "metallb-system/metallb-speaker: 0/0 ready; no node runs a speaker, so nobody answers ARP; check "
        "the DaemonSet's node selector and tolerations "
        "(`kubectl --context kind-macula-dev -n metallb-system describe daemonset metallb-speaker`)",
    )


def test_speakers_without_readable_nodes_are_judged_but_warn():
    forbidden = KubectlError(
        'Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource "nodes" '
        'in API group "" at the cluster scope'
    )
    check = verify.judge_speakers(recorded("daemonset-metallb-speaker.ready.json"), forbidden)
    assert check == Check(
        "warn",
        "speakers",
        f"metallb-system/metallb-speaker: 1/1 ready; nodes not read ({forbidden}), "
        "so whether any speaker may announce is unchecked",
    )
    not_ready = verify.judge_speakers(recorded("daemonset-metallb-speaker.not-ready.json"), forbidden)
    assert not_ready.status == "FAIL"


def test_pools_present():
    check = verify.judge_pools(recorded("ipaddresspools.json"), KIND_DEV.pools)
    assert check == Check("ok", "pools", "lan-pool (192.168.129.50-192.168.129.60)")


def test_pool_missing():
    check = verify.judge_pools(recorded("ipaddresspools.empty.json"), KIND_DEV.pools)
    assert check == Check("FAIL", "pools", "IPAddressPool lan-pool is missing (none present)")


def test_pool_with_other_addresses():
    # beam00's pool is also called lan-pool, but has its own range.
    check = verify.judge_pools(recorded("ipaddresspools.json"), BEAM00.pools)
    assert check.status == "FAIL"
    assert check.detail == (
        "IPAddressPool lan-pool has addresses 192.168.129.50-192.168.129.60, "
        "the stack says 192.168.129.70-192.168.129.80 (present: lan-pool)"
    )


def test_pool_addresses_compare_by_value_not_spelling():
    listing = recorded("ipaddresspools.json")
    listing["items"][0]["spec"]["addresses"] = ["192.168.129.50 - 192.168.129.60"]
    assert verify.judge_pools(listing, KIND_DEV.pools).status == "ok"
    pool = dataclasses.replace(
        KIND_DEV.pools[0],
        addresses=(dataclasses.replace(KIND_DEV.pools[0].addresses[0], text="192.168.129.64/28"),),
    )
    listing["items"][0]["spec"]["addresses"] = ["192.168.129.64-192.168.129.79"]
    assert verify.judge_pools(listing, (pool,)).status == "ok"


def test_advertisements_present():
    check = verify.judge_advertisements(
        recorded("l2advertisements.json"), KIND_DEV.advertisements, KIND_DEV.pools
    )
    assert check == Check("ok", "advertisements", "lan-advertisement (pools: lan-pool)")


def test_advertisement_missing():
    check = verify.judge_advertisements(
        recorded("l2advertisements.empty.json"), KIND_DEV.advertisements, KIND_DEV.pools
    )
    assert check == Check(
        "FAIL", "advertisements", "L2Advertisement lan-advertisement is missing (none present)"
    )


def test_advertisement_of_other_pools():
    listing = recorded("l2advertisements.json")
    listing["items"][0]["spec"]["ipAddressPools"] = ["other-pool"]
    check = verify.judge_advertisements(listing, KIND_DEV.advertisements, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "advertises pools other-pool, the stack says lan-pool" in check.detail


def test_advertisement_without_pools_advertises_every_pool():
    listing = recorded("l2advertisements.json")
    del listing["items"][0]["spec"]["ipAddressPools"]
    check = verify.judge_advertisements(listing, KIND_DEV.advertisements, KIND_DEV.pools)
    assert check.status == "ok"


def test_service_with_the_pinned_ip():
    check = verify.judge_service(
        recorded("service-macula-bootstrap.loadbalancer.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check == Check(
        "ok", "service", "macula/macula-bootstrap: LoadBalancer, external IP 192.168.129.51"
    )


def test_service_still_clusterip():
    check = verify.judge_service(
        recorded("service-macula-bootstrap.clusterip.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check == Check(
        "FAIL",
        "service",
        "macula/macula-bootstrap is type ClusterIP, not LoadBalancer: has `pulumi up` run for this stack?",
    )


def test_service_pending():
    check = verify.judge_service(recorded("service-macula-bootstrap.pending.json"), BOOTSTRAP, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert check.detail.startswith(
        "macula/macula-bootstrap: LoadBalancer, external IP <pending>; no external IP yet (pending)"
    )


def test_service_with_another_ip():
    check = verify.judge_service(
        recorded("service-macula-bootstrap.wrong-ip.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check.status == "FAIL"
    assert "external IP 192.168.129.52, expected 192.168.129.51" in check.detail


def test_service_missing():
    check = verify.judge_service(None, BOOTSTRAP, KIND_DEV.pools)
    assert check == Check("FAIL", "service", "Service macula/macula-bootstrap not found")


def test_service_without_the_bootstrap_udp_port():
    service = recorded("service-macula-bootstrap.loadbalancer.json")
    service["spec"]["ports"][0]["protocol"] = "TCP"
    check = verify.judge_service(service, BOOTSTRAP, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "no UDP port 4433 (ports: 4433/TCP, 80/TCP)" in check.detail


def test_service_without_a_pinned_ip_needs_one_from_the_pools():
    unpinned = dataclasses.replace(BOOTSTRAP, ip=None)
    assert (
        verify.judge_service(
            recorded("service-macula-bootstrap.wrong-ip.json"), unpinned, KIND_DEV.pools
        ).status
        == "ok"
    )
    service = recorded("service-macula-bootstrap.loadbalancer.json")
    service["status"]["loadBalancer"]["ingress"][0]["ip"] = "10.0.0.7"
    check = verify.judge_service(service, unpinned, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "external IP 10.0.0.7 is in none of the stack's pools (lan-pool)" in check.detail


# --- DNS: dnspython's query against a real dnsmasq ------------------------------------------------------


DNSMASQ_NAMES = {
    "bootstrap.macula.local": "192.168.129.51",
    "override.macula.local": "127.0.0.2",  # the runbook's stale override
}


def dnsmasq_command(port: int) -> list[str]:
    """A real dnsmasq on 127.0.0.1, answering only for macula.local (NXDOMAIN for unknown names there)."""
    return [
        require_tool("dnsmasq"), "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
        "--pid-file=", "--log-facility=-", "--listen-address=127.0.0.1", "--bind-interfaces",
        f"--port={port}", "--local=/macula.local/",
        *(f"--address=/{name}/{ip}" for name, ip in DNSMASQ_NAMES.items()),
        "--host-record=v6only.macula.local,fd00::51",
        "--host-record=alias-target.macula.local,192.168.129.51",
        "--cname=alias.macula.local,alias-target.macula.local",
        # A CNAME chain that ends at a stale stub instead (dnsmasq follows a CNAME only to names it holds).
        "--host-record=stub.macula.local,127.0.0.2",
        "--cname=elsewhere.macula.local,stub.macula.local",
        # The right address beside the runbook's stub: clients get the stub about half the time.
        "--host-record=stale.macula.local,192.168.129.51",
        "--host-record=stale.macula.local,127.0.0.2",
    ]  # fmt: skip


@contextmanager
def running(command: list[str], log_path: Path, answers: Callable[[], bool]) -> Iterator[None]:
    """Runs a server until the block ends, once `answers()` says it serves."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while not answers():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{command[0]} did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield
        finally:
            process.terminate()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory) -> Iterator[tuple[str, int]]:
    # Free for UDP and TCP alike: dnsmasq listens on both.
    port = dns_port()
    server = ("127.0.0.1", port)

    def answers() -> bool:
        try:
            verify.resolve("bootstrap.macula.local", server, 0.2)
        except (TimeoutError, ConnectionRefusedError):
            return False
        return True

    with running(dnsmasq_command(port), tmp_path_factory.mktemp("dnsmasq") / "log", answers):
        yield server


def test_resolves_through_dnsmasq(dnsmasq):
    answer = verify.resolve("bootstrap.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, (PINNED,))
    check = verify.judge_dns("bootstrap.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check == Check("ok", "dns", "bootstrap.macula.local → 192.168.129.51 (asked 127.0.0.1:N)")


def test_reports_the_override_the_resolver_answers(dnsmasq):
    answer = verify.resolve("override.macula.local", dnsmasq, 2)
    check = verify.judge_dns("override.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check.status == "FAIL"
    assert check.detail == (
        "override.macula.local → 127.0.0.2, expected 192.168.129.51 (asked 127.0.0.1:N); a loopback answer "
        "is a local override, such as the host dnsmasq's entry (see dnsFix)"
    )


def test_reports_nxdomain(dnsmasq):
    answer = verify.resolve("unknown.macula.local", dnsmasq, 2)
    assert (answer.rcode_name, answer.addresses) == ("NXDOMAIN", ())
    check = verify.judge_dns("unknown.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check == Check(
        "FAIL",
        "dns",
        "unknown.macula.local: NXDOMAIN (no such name), expected 192.168.129.51 (asked 127.0.0.1:N)",
    )


def test_reports_a_name_without_an_a_record(dnsmasq):
    answer = verify.resolve("v6only.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, ())
    check = verify.judge_dns("v6only.macula.local", "127.0.0.1:N", [PINNED], answer, 2)
    assert check.detail.startswith("v6only.macula.local: the name exists but has no address record")
    assert verify.resolve("v6only.macula.local", dnsmasq, 2, verify.QTYPE_AAAA).addresses == (
        ipaddress.ip_address("fd00::51"),
    )


def test_follows_a_cname(dnsmasq):
    answer = verify.resolve("alias.macula.local", dnsmasq, 2)
    assert answer == DnsAnswer(0, (PINNED,), ("alias-target.macula.local",))
    check = verify.judge_dns("alias.macula.local", "r", [PINNED], answer, 2)
    assert check.detail == "alias.macula.local → 192.168.129.51 via alias-target.macula.local (asked r)"


def test_a_cname_chain_that_ends_elsewhere_fails(dnsmasq):
    answer = verify.resolve("elsewhere.macula.local", dnsmasq, 2)
    assert answer.cnames == ("stub.macula.local",)

    check = verify.judge_dns("elsewhere.macula.local", "r", [PINNED], answer, 2)

    assert check.status == "FAIL"
    assert "elsewhere.macula.local → 127.0.0.2 via stub.macula.local, expected 192.168.129.51" in check.detail


def test_a_stale_answer_beside_the_right_one_fails(dnsmasq):
    answer = verify.resolve("stale.macula.local", dnsmasq, 2)
    assert sorted(map(str, answer.addresses)) == ["127.0.0.2", "192.168.129.51"]

    check = verify.judge_dns("stale.macula.local", "r", [PINNED], answer, 2)

    assert check.status == "FAIL"
    assert "127.0.0.2 is no address of the bootstrap Service, and clients that take it fail" in check.detail


def test_reports_a_resolver_that_refuses(dnsmasq):
    answer = verify.resolve("example.org", dnsmasq, 2)
    check = verify.judge_dns("example.org", "r", [PINNED], answer, 2)
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
    assert list(verify.resolve(name, dnsmasq, 2).addresses) == dig_addresses


@pytest.fixture
def silent_udp() -> Iterator[tuple[str, int]]:
    """A UDP socket that reads datagrams and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield "127.0.0.1", sock.getsockname()[1]


def test_dns_timeout(silent_udp):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        verify.resolve("bootstrap.macula.local", silent_udp, 0.3)
    assert 0.25 < time.monotonic() - started < 2
    check = verify.judge_dns("bootstrap.macula.local", "127.0.0.1:N", [PINNED], TimeoutError(), 0.3)
    # A resolver that does not answer kept the check from being made: an error, not a failed check.
    assert check == Check("error", "dns", "bootstrap.macula.local: no answer from 127.0.0.1:N within 0.3s")


def test_dns_server_not_listening():
    with pytest.raises(ConnectionRefusedError):
        verify.resolve("bootstrap.macula.local", ("127.0.0.1", free_port()), 2)


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
        answer = verify.resolve("bootstrap.macula.local", server.getsockname(), 2)
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
    assert verify.parse_server(text) == server


@pytest.mark.parametrize("text", ["resolver.lan", "127.0.0.1:0", "127.0.0.1:x", "[::1]5353"])
def test_parse_server_rejects(text):
    with pytest.raises(ValueError):
        verify.parse_server(text)


def test_system_resolver_is_resolv_confs_first_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch macula.local\nnameserver fe80::1%eth0\nnameserver 10.0.0.53\n")
    assert verify.system_resolver(conf) == ("fe80::1", 53)
    conf.write_text("options edns0\n")
    assert verify.system_resolver(conf) == ("127.0.0.1", 53)
    assert verify.system_resolver(tmp_path / "absent") == ("127.0.0.1", 53)


# --- UDP: what one probe can and cannot tell ----------------------------------------------------------


@pytest.fixture
def udp_server() -> Iterator[tuple[socket.socket, int]]:
    """A bound UDP socket on 127.0.0.1 and its port; tests decide whether and how it answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock, sock.getsockname()[1]


def serve_once(sock: socket.socket, answer) -> threading.Thread:
    def run() -> None:
        try:
            datagram, client = sock.recvfrom(65535)
        except OSError:
            return
        sock.sendto(answer(datagram), client)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


LOOPBACK = ipaddress.ip_address("127.0.0.1")


def test_probe_is_a_quic_packet_of_a_reserved_version():
    packet = verify.quic_probe(b"D" * 8, b"S" * 8)
    assert len(packet) == 1200
    assert packet[0] & 0xC0 == 0xC0
    (version,) = struct.unpack("!I", packet[1:5])
    assert version & 0x0F0F0F0F == 0x0A0A0A0A  # 0x?a?a?a?a, RFC 9000 section 15


def test_udp_echo_is_reachable(udp_server):
    sock, port = udp_server
    serve_once(sock, lambda datagram: datagram)
    result = verify.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("reply", "a 1200-byte reply")
    check = verify.judge_udp(LOOPBACK, port, result, 2, strict=False)
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
    result = verify.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("reply", "a QUIC Version Negotiation packet (server versions 0x00000001)")


def test_udp_closed_port_is_refused():
    port = free_port()
    result = verify.probe_udp(LOOPBACK, port, 2)
    assert result == ProbeResult("refused")
    check = verify.judge_udp(LOOPBACK, port, result, 2, strict=False)
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
    assert verify.probe_udp(ipaddress.ip_address("::1"), port, 2) == ProbeResult("refused")


def test_udp_silence_is_inconclusive(udp_server):
    _, port = udp_server
    started = time.monotonic()
    result = verify.probe_udp(LOOPBACK, port, 0.3)
    assert 0.25 < time.monotonic() - started < 2
    assert result == ProbeResult("silent")
    check = verify.judge_udp(LOOPBACK, port, result, 0.3, strict=False)
    assert check == Check(
        "warn",
        "udp",
        f"127.0.0.1:{port}/udp: no reply within 0.3s: the port may be open (QUIC servers ignore unknown "
        "datagrams) or filtered — inconclusive",
    )
    assert verify.judge_udp(LOOPBACK, port, result, 0.3, strict=True).status == "FAIL"


def test_udp_unreachable_address_fails():
    check = verify.judge_udp(PINNED, 4433, ProbeResult("unreachable", "No route to host"), 2, strict=False)
    assert check.status == "FAIL"
    assert check.detail.startswith("192.168.129.51:4433/udp: No route to host: the address cannot be reached")


# --- The command, end to end, with a stand-in kubectl --------------------------------------------------

STANDIN_KUBECTL = """
args = sys.argv[1:]
get = args.index("get")
resource, rest = args[get + 1], args[get + 2 :]
name = rest[0] if rest and not rest[0].startswith("-") else None
with open(os.path.join(here, "objects.json")) as f:
    served = json.load(f)
key = f"{resource}/{name}" if name else resource
if "error" in served:
    sys.stderr.write(served["error"] + "\\n")
    sys.exit(1)
if key not in served:
    sys.stderr.write(f"standin kubectl: nothing recorded for {key}\\n")
    sys.exit(3)
if served[key] is not None:
    sys.stdout.write(served[key])
"""


def loopback(text: str, port: int | None = None) -> str:
    """Recorded text with kind-dev's LAN addresses moved onto loopback, so probes stay on this host, and
    the bootstrap port 4433 moved to `port`, a free one."""
    text = text.replace("192.168.129.", "127.0.0.")
    return text if port is None else on_port(text, port)


def on_port(text: str, port: int) -> str:
    """Recorded text with the bootstrap port 4433 moved to `port`."""
    return text.replace('"port": 4433', f'"port": {port}')


def serve(directory: Path, objects: Mapping[str, str | None], transform=loopback) -> None:
    write_kubectl(directory, STANDIN_KUBECTL)
    bodies = {
        key: None if name is None else transform((RECORDED / name).read_text())
        for key, name in objects.items()
    }
    (directory / "objects.json").write_text(json.dumps(bodies))


HEALTHY = {
    "deployments.v1.apps/metallb-controller": "deployment-metallb-controller.ready.json",
    "daemonsets.v1.apps/metallb-speaker": "daemonset-metallb-speaker.ready.json",
    "ipaddresspools.v1beta1.metallb.io": "ipaddresspools.json",
    "l2advertisements.v1beta1.metallb.io": "l2advertisements.json",
    "services/macula-bootstrap": "service-macula-bootstrap.loadbalancer.json",
    "nodes": "nodes.json",
    "pods": "pods-metallb-speaker.json",
}
BROKEN = {
    "deployments.v1.apps/metallb-controller": "deployment-metallb-controller.not-ready.json",
    "daemonsets.v1.apps/metallb-speaker": "daemonset-metallb-speaker.not-ready.json",
    "ipaddresspools.v1beta1.metallb.io": "ipaddresspools.empty.json",
    "l2advertisements.v1beta1.metallb.io": "l2advertisements.empty.json",
    "services/macula-bootstrap": "service-macula-bootstrap.pending.json",
    "nodes": "nodes.excluded.json",
    "pods": "pods-metallb-speaker.json",
}


def lan_project(directory: Path, hostname: str, port: int) -> Path:
    """A project holding the LAN plan and one stack, "lan", shaped like kind-dev, with `hostname` published
    and the bootstrap on `port`."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (PROJECT_DIR / "Pulumi.kind-dev.yaml").read_text()
    stack_file = stack_file.replace(
        "hostname: bootstrap.macula.local", f"hostname: {hostname}\n    port: {port}"
    )
    (directory / "Pulumi.lan.yaml").write_text(stack_file)
    return directory


def run_verify(
    kubectl_dir: Path, *args: str, namespace: NetNamespace | None = None
) -> subprocess.CompletedProcess[str]:
    """tools.verify with the stand-in kubectl; outside a namespace of the test's own it sends no ARP, so
    nothing reaches the test machine's own network."""
    env = {**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "tools.verify", *args, *([] if namespace else ["--no-arp"])]
    return subprocess.run(
        namespace.command(command) if namespace else command,
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def lan(tmp_path) -> Iterator[NetNamespace]:
    """A network namespace of the test's own holding the LAN's bootstrap address and, on its 127.0.0.1
    port 53, the real dnsmasq: whole-stack checks run there, so their probes never leave it."""
    with network_namespace(f"{PINNED}/32") as namespace:

        def answers() -> bool:
            dig = [
                require_tool("dig"),
                "+short",
                "+time=1",
                "+tries=1",
                "@127.0.0.1",
                "bootstrap.macula.local",
            ]
            result = subprocess.run(namespace.command(dig), capture_output=True, text=True, check=False)
            return result.stdout.strip() == str(PINNED)

        with running(namespace.command(dnsmasq_command(53)), tmp_path / "dnsmasq.log", answers):
            yield namespace


def test_healthy_stack(tmp_path, lan):
    with lan.socket() as bootstrap:
        bootstrap.bind((str(PINNED), 0))
        bootstrap.settimeout(30)
        udp_port = bootstrap.getsockname()[1]
        serve_once(bootstrap, lambda datagram: datagram)
        project = lan_project(tmp_path / "project", "bootstrap.macula.local", udp_port)
        kubectl_dir = tmp_path / "bin"
        kubectl_dir.mkdir()
        serve(kubectl_dir, HEALTHY, lambda text: on_port(text, udp_port))
        result = run_verify(
            kubectl_dir, "--stack", "lan", "--resolver", "127.0.0.1", "--timeout", "2",
            "--project-dir", str(project), namespace=lan,
        )  # fmt: skip
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "verify stack lan: context kind-macula-dev",
        "ok    controller      metallb-system/metallb-controller: 1/1 ready",
        "ok    speakers        metallb-system/metallb-speaker: 1/1 ready",
        "ok    pools           lan-pool (192.168.129.50-192.168.129.60)",
        "ok    advertisements  lan-advertisement (pools: lan-pool)",
        "ok    node-ips        1 node address, none inside a pool",
        "ok    lb-exclusion    macula-dev-control-plane: without "
        "node.kubernetes.io/exclude-from-external-load-balancers",
        "ok    announced       speakers that may announce run on macula-dev-control-plane",
        "ok    service         macula/macula-bootstrap: LoadBalancer, external IP 192.168.129.51",
        "ok    dns             bootstrap.macula.local → 192.168.129.51 (asked 127.0.0.1:53)",
        f"ok    udp             192.168.129.51:{udp_port}/udp: a 1200-byte reply: "
        "reachable, and something answers",
        "skip  arp             not probed from here: no interface of this host is on the network of "
        "192.168.129.50; run verify on the LAN to probe it",
        "ok    no check failed for stack lan",
    ]
    assert result.returncode == 0
    # Every call went to the stack's context, never to whatever the kubeconfig has selected.
    assert all(call[:2] == ["--context", "kind-macula-dev"] for call in calls(kubectl_dir))
    assert len(calls(kubectl_dir)) == 7
    assert calls(kubectl_dir)[2][2:] == ["get", "nodes", "-o", "json", "--request-timeout=20s"]


def test_broken_stack_names_every_failing_check(tmp_path, lan):
    with lan.socket() as probe:
        # A port nothing listens on in the namespace: bound a moment, then closed.
        probe.bind((str(PINNED), 0))
        closed_port = probe.getsockname()[1]
    project = lan_project(tmp_path / "project", "override.macula.local", closed_port)
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(kubectl_dir, BROKEN, lambda text: on_port(text, closed_port))
    result = run_verify(
        kubectl_dir, "--stack", "lan", "--resolver", "127.0.0.1", "--timeout", "1",
        "--project-dir", str(project), namespace=lan,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "verify stack lan: context kind-macula-dev"
    assert [line[:22] for line in lines[1:12]] == [
        "FAIL  controller      ",
        "FAIL  speakers        ",
        "FAIL  pools           ",
        "FAIL  advertisements  ",
        "ok    node-ips        ",
        "FAIL  lb-exclusion    ",
        "FAIL  announced       ",
        "FAIL  service         ",
        "FAIL  dns             ",
        "FAIL  udp             ",
        "skip  arp             ",
    ]
    # The label kubeadm put back, and the command that takes it off again.
    assert lines[6].endswith(
        "node macula-dev-control-plane carries node.kubernetes.io/exclude-from-external-load-balancers "
        "again, so its speaker does not announce; take it off again: pulumi up --stack lan --replace "
        "'urn:pulumi:lan::macula-lan::macula:lan:ArpReadiness$command:local:Command::arp-readiness-include-"
        "macula-dev-control-plane'"
    )
    assert "nobody answers ARP for it" in lines[7]
    assert lines[1].endswith("0/1 ready; not every replica is ready")
    assert lines[2] == (
        "FAIL  speakers        metallb-system/metallb-speaker: 0/1 ready; not every speaker is ready; every "
        "node (macula-dev-control-plane) carries node.kubernetes.io/exclude-from-external-load-balancers, so "
        "no speaker announces: MetalLB 0.14.3 skips such nodes (set clearLoadBalancerExclusion, or add a "
        "worker node)"
    )
    assert lines[3].endswith("IPAddressPool lan-pool is missing (none present)")
    assert lines[4].endswith("L2Advertisement lan-advertisement is missing (none present)")
    assert "external IP <pending>; no external IP yet (pending)" in lines[8]
    assert "override.macula.local → 127.0.0.2, expected 192.168.129.51 (asked 127.0.0.1:53)" in lines[9]
    assert f"192.168.129.51:{closed_port}/udp: ICMP port unreachable" in lines[10]
    assert lines[12] == (
        "FAIL  9 of 11 checks failed for stack lan: "
        "controller, speakers, pools, advertisements, lb-exclusion, announced, service, dns, udp"
    )
    assert len(lines) == 13
    assert result.returncode == 1


def test_stack_without_bootstrap_skips_the_bootstrap_checks(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    # beam00's own range, in the otherwise recorded kind-dev objects.
    serve(
        kubectl_dir,
        HEALTHY,
        lambda text: text.replace("192.168.129.50-192.168.129.60", "192.168.129.70-192.168.129.80"),
    )
    result = run_verify(kubectl_dir, "--stack", "beam00")
    assert result.stdout.splitlines() == [
        "verify stack beam00: context beam00",
        "ok    controller      metallb-system/metallb-controller: 1/1 ready",
        "ok    speakers        metallb-system/metallb-speaker: 1/1 ready",
        "ok    pools           lan-pool (192.168.129.70-192.168.129.80)",
        "ok    advertisements  lan-advertisement (pools: lan-pool)",
        "ok    node-ips        1 node address, none inside a pool",
        "skip  lb-exclusion    no node is listed in clearLoadBalancerExclusion",
        "ok    announced       speakers that may announce run on macula-dev-control-plane",
        "skip  service         bootstrap is not configured for this stack",
        "skip  dns             bootstrap is not configured for this stack",
        "skip  udp             bootstrap is not configured for this stack",
        "skip  arp             not probed (--no-arp)",
        "ok    no check failed for stack beam00",
    ]
    assert result.returncode == 0
    assert all(call[:2] == ["--context", "beam00"] for call in calls(kubectl_dir))


def test_nodes_that_cannot_be_read_leave_the_speakers_check_a_warning(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    # beam00's range; no recorded nodes, so the stand-in fails `get nodes` as a forbidden list would.
    serve(
        kubectl_dir,
        {key: name for key, name in HEALTHY.items() if key != "nodes"},
        lambda text: text.replace("192.168.129.50-192.168.129.60", "192.168.129.70-192.168.129.80"),
    )
    result = run_verify(kubectl_dir, "--stack", "beam00")
    lines = result.stdout.splitlines()
    assert lines[2] == (
        "warn  speakers        metallb-system/metallb-speaker: 1/1 ready; nodes not read (standin kubectl: "
        "nothing recorded for nodes), so whether any speaker may announce is unchecked"
    )
    assert lines[5] == (
        "warn  node-ips        cannot read the nodes, so cannot tell: standin kubectl: nothing recorded for "
        "nodes"
    )
    assert lines[-1] == "ok    no check failed for stack beam00 (2 warnings: speakers, node-ips)"
    assert result.returncode == 0


def test_unreachable_cluster_fails_every_kubernetes_check(tmp_path):
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    write_kubectl(kubectl_dir, STANDIN_KUBECTL)
    refused = (
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
    )
    (kubectl_dir / "objects.json").write_text(json.dumps({"error": refused}))
    result = run_verify(kubectl_dir, "--stack", "beam00")
    lines = result.stdout.splitlines()
    assert lines[1:5] == [
        f"error {name:<15} kubectl: {refused}"
        for name in ("controller", "speakers", "pools", "advertisements")
    ]
    assert lines[-1] == (
        "error 5 of 11 checks could not be made for stack beam00: controller, speakers, pools, "
        "advertisements, announced"
    )
    # 2, not 1: an unreachable cluster is no failed check, and may hide one.
    assert result.returncode == 2


def test_unknown_stack(tmp_path):
    result = run_verify(tmp_path, "--stack", "beam99")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "verify: no stack 'beam99': there is no Pulumi.beam99.yaml (stacks: beam00, beam01, "
    )


# --- stacks that keep values as secrets ---------------------------------------------------------------

# What `pulumi config --stack kind-dev --show-secrets --json` prints when bootstrap.ip was set with
# `--secret --path` (configValueJSON in pulumi's pkg/cmd/pulumi/config/config.go: `value` holds the JSON
# text, `objectValue` the object; the whole object counts as secret).
DECRYPTED = {
    "macula-lan:kubeContext": {"value": "kind-macula-dev", "secret": False},
    "macula-lan:pools": {
        "value": '[{"addresses":["192.168.129.50-192.168.129.60"],"name":"lan-pool"}]',
        "objectValue": [{"addresses": ["192.168.129.50-192.168.129.60"], "name": "lan-pool"}],
        "secret": False,
    },
    "macula-lan:bootstrap": {
        "value": '{"hostname":"bootstrap.macula.local","ip":"192.168.129.51","pool":"lan-pool"}',
        "objectValue": {"hostname": "bootstrap.macula.local", "ip": "192.168.129.51", "pool": "lan-pool"},
        "secret": True,
    },
}


def secret_project(directory: Path) -> Path:
    """A copy of the project whose kind-dev keeps bootstrap.ip encrypted, as `--secret --path` writes it."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (PROJECT_DIR / "Pulumi.kind-dev.yaml").read_text()
    stack_file = stack_file.replace("ip: 192.168.129.51", "ip:\n      secure: v1:c2VjcmV0:ZW5jcnlwdGVk")
    assert "secure:" in stack_file
    (directory / "Pulumi.kind-dev.yaml").write_text(stack_file)
    return directory


def fake_pulumi(directory: Path, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    pulumi = directory / "pulumi"
    pulumi.write_text(f"#!{sys.executable}\nimport json, sys\n{body}\n")
    pulumi.chmod(0o755)
    return pulumi


def test_a_stack_with_secret_values_is_decrypted_and_checked(tmp_path):
    project = secret_project(tmp_path / "project")
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", f"print(json.dumps({DECRYPTED!r}))")

    config = verify.read_stack_config(project, "kind-dev", str(pulumi))

    assert config.bootstrap is not None and str(config.bootstrap.ip) == "192.168.129.51"
    assert config.secret_keys == {"bootstrap"}


def test_secret_values_it_cannot_decrypt_are_named_and_exit_2(tmp_path):
    project = secret_project(tmp_path / "project")
    pulumi = fake_pulumi(
        tmp_path / "pulumi-bin",
        "sys.stderr.write('error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE\\n'); sys.exit(1)",
    )

    result = run_verify(
        tmp_path, "--stack", "kind-dev", "--project-dir", str(project), "--pulumi", str(pulumi)
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("verify: stack kind-dev keeps bootstrap as secrets")
    assert "(error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE)" in result.stderr
    # Without the values verify does not guess: a missing bootstrap would skip three checks as unset.
    assert "bootstrap is not configured" not in result.stdout


# --- the LAN: node addresses and ARP ---------------------------------------------------------------------


def test_a_node_address_inside_a_pool_fails():
    nodes = recorded("nodes.json")  # macula-dev-control-plane at 172.18.0.2
    inside = dataclasses.replace(KIND_DEV.pools[0], addresses=(parse_block("172.18.0.0/28"),))
    check = verify.judge_node_addresses(nodes, [inside])
    assert check.status == "FAIL"
    assert check.detail.startswith(
        "node macula-dev-control-plane's InternalIP 172.18.0.2 lies inside pool lan-pool (172.18.0.0/28): "
        "MetalLB 0.14.3 would hand it to a Service"
    )
    assert verify.judge_node_addresses(nodes, KIND_DEV.pools) == Check(
        "ok", "node-ips", "1 node address, none inside a pool"
    )
    assert verify.judge_node_addresses(None, KIND_DEV.pools).status == "skip"


NODE = ipaddress.IPv4Address("192.168.129.20")
NODE_MAC = "02:00:00:00:00:20"
POOL = [ipaddress.IPv4Address(f"192.168.129.{n}") for n in range(50, 53)]
PINNED_V4 = ipaddress.IPv4Address("192.168.129.51")


def arp(**answers: set[str]) -> dict[ipaddress.IPv4Address, set[str]]:
    found: dict[ipaddress.IPv4Address, set[str]] = {address: set() for address in [NODE, *POOL]}
    found.update({ipaddress.IPv4Address(k.replace("_", ".")): v for k, v in answers.items()})
    return found


def test_arp_answers_from_a_node_are_right_and_any_other_mac_is_a_conflict():
    nodes = {"node-1": [NODE]}
    announced = arp(**{"192_168_129_20": {NODE_MAC}, "192_168_129_51": {NODE_MAC}})
    assert verify.judge_arp(announced, POOL, [PINNED_V4], nodes) == Check(
        "ok", "arp", "3 pool addresses probed, no device but a node answers"
    )
    conflict = arp(**{"192_168_129_20": {NODE_MAC}, "192_168_129_52": {"02:00:00:00:00:99"}})
    check = verify.judge_arp(conflict, POOL, [], nodes)
    assert check.status == "FAIL"
    assert check.detail.startswith("192.168.129.52 answered by 02:00:00:00:00:99, which is no node's MAC")
    silent = arp(**{"192_168_129_20": {NODE_MAC}})
    assert verify.judge_arp(silent, POOL, [PINNED_V4], nodes).detail.endswith(
        "nobody answers for the pinned 192.168.129.51"
    )
    # No node answers on this network: a MAC cannot be told a node's or not.
    off_lan = verify.judge_arp(arp(**{"192_168_129_51": {NODE_MAC}}), POOL, [], {"node-1": [NODE]})
    assert off_lan.status == "warn"


def test_arp_that_cannot_be_sent_is_a_skip_that_says_why():
    denied = arp_probe.NoPrivilegeError(
        "sending ARP needs CAP_NET_RAW (run as root, or grant the capability)"
    )
    assert verify.judge_arp(denied, POOL, [], {}) == Check(
        "skip", "arp", "not probed: sending ARP needs CAP_NET_RAW (run as root, or grant the capability)"
    )
    elsewhere = arp_probe.NoInterfaceError("no interface of this host is on the network of 192.168.129.50")
    assert verify.judge_arp(elsewhere, POOL, [], {}).status == "skip"


# --- what Pulumi cannot see: the label, strictARP, who announces ------------------------------------------

KUBE_PROXY = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  strictARP: {strict}
"""


def kube_proxy(strict: str) -> dict[str, Any]:
    """kube-system/kube-proxy as kubeadm writes it (config.conf holds the KubeProxyConfiguration)."""
    return {"kind": "ConfigMap", "data": {"config.conf": KUBE_PROXY.format(strict=strict)}}


def test_strict_arp_turned_off_since_fails_with_the_command_that_turns_it_on():
    assert verify.judge_strict_arp(kube_proxy("true"), "macula-lan", "beam00").status == "ok"
    check = verify.judge_strict_arp(kube_proxy("false"), "macula-lan", "beam00")
    assert check.status == "FAIL"
    assert check.detail.endswith(
        "pulumi up --stack beam00 --replace "
        "'urn:pulumi:beam00::macula-lan::macula:lan:ArpReadiness$command:local:Command::arp-readiness-strict-arp'"
    )
    assert verify.judge_strict_arp(None, "macula-lan", "beam00").status == "FAIL"


def test_a_listed_node_that_is_gone_is_named():
    check = verify.judge_exclusion_label(recorded("nodes.json"), ["beam00-worker-7"], "macula-lan", "beam00")
    assert check == Check("FAIL", "lb-exclusion", "node beam00-worker-7 does not exist")


def test_nobody_announces_when_the_only_speaker_is_not_ready_or_its_node_is_not():
    pods = recorded("pods-metallb-speaker.json")["items"]
    nodes = recorded("nodes.json")
    assert verify.judge_announced(pods, nodes).status == "ok"
    not_ready = json.loads(json.dumps(pods))
    not_ready[0]["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert verify.judge_announced(not_ready, nodes).status == "FAIL"
    node_down = json.loads(json.dumps(nodes))
    for condition in node_down["items"][0]["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition["status"] = "Unknown"
    assert verify.judge_announced(pods, node_down).detail.startswith("no ready speaker runs on a Ready node")
