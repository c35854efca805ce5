"""tools.arp_probe: the frames it builds and reads, and who answers, on a veth pair between two network
namespaces the test creates and removes. Nothing is sent on a real interface."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.netns import NetNamespace, add_address, link_with_veth, network_namespace
from tests.program import PROJECT_DIR
from tests.system_programs import require_tool
from tools.verify import arp_probe

MAC = bytes.fromhex("02aabbccddee")
HERE = ipaddress.IPv4Address("192.168.129.10")
TARGET = ipaddress.IPv4Address("192.168.129.55")


def test_a_request_is_a_broadcast_who_has_from_this_hosts_address():
    frame = arp_probe.encode_request(MAC, HERE, TARGET)
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12] == MAC
    assert frame[12:14] == b"\x08\x06"
    assert frame[14:22] == bytes.fromhex("0001080006040001")  # Ethernet, IPv4, 6, 4, request
    assert frame[22:28] == MAC and frame[28:32] == HERE.packed
    assert frame[32:38] == b"\x00" * 6 and frame[38:42] == TARGET.packed
    assert len(frame) == 42


def test_only_arp_replies_are_read():
    reply = bytearray(arp_probe.encode_request(MAC, TARGET, HERE))
    reply[20:22] = b"\x00\x02"
    assert arp_probe.decode_reply(bytes(reply)) == (TARGET, MAC)
    assert arp_probe.decode_reply(arp_probe.encode_request(MAC, TARGET, HERE)) is None  # a request
    assert arp_probe.decode_reply(bytes(reply[:30])) is None  # cut short
    ipv4 = bytes(reply[:12]) + b"\x08\x00" + bytes(reply[14:])
    assert arp_probe.decode_reply(ipv4) is None  # not ARP
    assert arp_probe.format_mac(MAC) == "02:aa:bb:cc:dd:ee"


@pytest.fixture
def lan() -> Iterator[tuple[NetNamespace, NetNamespace, str]]:
    """Two namespaces on one veth link: the prober's at 192.168.129.10/23, a LAN host at .20/23."""
    with network_namespace() as prober, network_namespace() as host:
        _, host_mac = link_with_veth(prober, "192.168.129.10/23", host, "192.168.129.20/23")
        yield prober, host, host_mac


def probe_in(
    namespace: NetNamespace, *targets: str, wrap: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    code = (
        "import ipaddress, json, sys; from tools.verify import arp_probe\n"
        "try:\n"
        "    found = arp_probe.probe([ipaddress.IPv4Address(t) for t in sys.argv[1:]], 1.0)\n"
        "except (arp_probe.NoPrivilegeError, arp_probe.NoInterfaceError) as error:\n"
        "    print(json.dumps({'error': type(error).__name__, 'message': str(error)}))\n"
        "else:\n"
        "    print(json.dumps({str(k): sorted(v) for k, v in found.items()}))\n"
    )
    command = namespace.command([*wrap, sys.executable, "-c", code, *targets])
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False)


def test_a_clean_address_gets_no_answer_and_a_taken_one_names_its_mac(lan):
    prober, host, host_mac = lan
    add_address(host, "b0", "192.168.129.55/32")  # another machine on the LAN holds a pool address

    result = probe_in(prober, "192.168.129.20", "192.168.129.55", "192.168.129.56")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "192.168.129.20": [host_mac],
        "192.168.129.55": [host_mac],
        "192.168.129.56": [],
    }


def test_without_cap_net_raw_it_says_so(lan):
    prober, _, _ = lan
    setpriv = require_tool("setpriv")
    drop = (setpriv, "--inh-caps=-net_raw", "--bounding-set=-net_raw", "--")

    result = probe_in(prober, "192.168.129.20", wrap=drop)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "error": "NoPrivilegeError",
        "message": "sending ARP needs CAP_NET_RAW (run as root, or grant the capability)",
    }


def test_off_the_lan_it_says_so(lan):
    prober, _, _ = lan

    result = probe_in(prober, "10.9.0.1")

    assert json.loads(result.stdout) == {
        "error": "NoInterfaceError",
        "message": "no interface of this host is on the network of 10.9.0.1",
    }
