"""A network namespace of the test's own, where the LAN's addresses exist without touching any real network.

`network_namespace()` creates a named namespace with its loopback up and the given addresses on it, and
deletes it afterwards. Programs run in it through `ip netns exec`; sockets the test itself needs there come
from `NetNamespace.socket`, which creates them on a thread that has entered the namespace (a socket stays
in the namespace it was created in). Nothing sent in it leaves it. Needs root and iproute2.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from tests.sshd import require_root
from tests.system_programs import require_tool

CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class NetNamespace:
    name: str

    def command(self, args: Sequence[str]) -> list[str]:
        """`args`, run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """A socket that lives in the namespace."""
        made: list[socket.socket | BaseException] = []

        def enter_and_make() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/run/netns/{self.name}") as handle:
                    if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {self.name}")
                made.append(socket.socket(family, kind))
            except BaseException as error:  # handed to the caller's thread below
                made.append(error)

        # setns changes only this thread's namespace, and the thread ends right after.
        thread = threading.Thread(target=enter_and_make)
        thread.start()
        thread.join()
        result = made[0]
        if isinstance(result, BaseException):
            raise result
        return result


@contextmanager
def network_namespace(*addresses: str) -> Iterator[NetNamespace]:
    """A fresh namespace whose loopback is up and also holds `addresses` (each as ADDRESS/PREFIX)."""
    require_root()
    require_tool("ip")
    namespace = NetNamespace(f"macula-test-{uuid.uuid4().hex[:8]}")
    _ip("netns", "add", namespace.name)
    try:
        _ip("-n", namespace.name, "link", "set", "lo", "up")
        for address in addresses:
            _ip("-n", namespace.name, "addr", "add", address, "dev", "lo")
        yield namespace
    finally:
        _ip("netns", "delete", namespace.name)
        assert not os.path.exists(f"/run/netns/{namespace.name}")


def link_with_veth(a: NetNamespace, address_a: str, b: NetNamespace, address_b: str) -> tuple[str, str]:
    """A veth pair between two namespaces, `a0` in a holding address_a and `b0` in b holding address_b
    (each ADDRESS/PREFIX), both up; returns their MAC addresses."""
    _ip("link", "add", "a0", "netns", a.name, "type", "veth", "peer", "name", "b0", "netns", b.name)
    macs = []
    for namespace, device, address in ((a, "a0", address_a), (b, "b0", address_b)):
        _ip("-n", namespace.name, "addr", "add", address, "dev", device)
        _ip("-n", namespace.name, "link", "set", device, "up")
        listing = subprocess.run(
            ["ip", "-n", namespace.name, "-json", "link", "show", device],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        macs.append(json.loads(listing.stdout)[0]["address"])
    return macs[0], macs[1]


def add_address(namespace: NetNamespace, device: str, address: str) -> None:
    _ip("-n", namespace.name, "addr", "add", address, "dev", device)
