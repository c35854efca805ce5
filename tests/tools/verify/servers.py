"""The servers verify's tests talk to, all on loopback or in a namespace of the test's own: a real dnsmasq,
UDP sockets that answer once."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.system_programs import require_tool

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
