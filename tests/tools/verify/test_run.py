"""A stack's checks in order, as tools.verify.run makes them: what the bootstrap checks compare with and
probe when no IP is pinned, read through a real kubectl from the fake API server."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest

from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import fake_cluster
from tests.tools.verify.kind_dev import BOOTSTRAP, KIND_DEV, cluster_objects
from tests.tools.verify.servers import serve_once
from tools.verify.check import Check, summary
from tools.verify.cluster import ClusterReads
from tools.verify.run import Options, iter_checks


@pytest.fixture
def echo() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that echoes one datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        serve_once(sock, lambda datagram: datagram)
        yield int(sock.getsockname()[1])


def unpinned(port: int) -> FakeKubeApi:
    """kind-dev's cluster whose bootstrap Service holds 127.0.0.1 (so the probe stays on this host), its
    UDP port on `port`."""
    objects = cluster_objects()
    for obj in objects:
        if obj["kind"] == "Service":
            obj["status"]["loadBalancer"]["ingress"] = [{"ip": "127.0.0.1", "ipMode": "VIP"}]
            for entry in obj["spec"]["ports"]:
                if entry["protocol"] == "UDP":
                    entry["port"] = port
    return FakeKubeApi(objects)


def checks_of(api: FakeKubeApi, port: int) -> dict[str, Check]:
    config = dataclasses.replace(
        KIND_DEV, bootstrap=dataclasses.replace(BOOTSTRAP, ip=None, hostname=None, port=port)
    )
    with fake_cluster(api=api) as cluster:
        found = iter_checks(config, Options(timeout=2, arp=False), ClusterReads(cluster.kubectl()))
        return {check.name: check for check in found}


def test_without_a_pinned_ip_the_probe_goes_to_the_address_the_service_holds(echo):
    checks = checks_of(unpinned(echo), echo)

    assert checks["udp"].status == "ok"
    assert checks["udp"].detail.startswith(f"127.0.0.1:{echo}/udp: a 1200-byte reply")
    assert checks["dns"] == Check("skip", "dns", "no hostname configured (bootstrap.hostname)")
    # 127.0.0.1 is in none of kind-dev's pools: the service check fails it, the probe goes there all the same.
    assert checks["service"].status == "FAIL"


def test_without_a_pinned_ip_a_service_it_may_not_read_leaves_nothing_to_probe(echo):
    api = unpinned(echo)
    api.forbid("GET", "services", "macula")

    checks = checks_of(api, echo)

    assert checks["service"].status == "error"
    reason = "no IP is pinned and the Service could not be read (see service)"
    assert (checks["dns"], checks["udp"]) == (Check("skip", "dns", reason), Check("skip", "udp", reason))
    assert summary("kind-dev", list(checks.values()))[1] == 2


def test_checks_come_in_the_order_the_readme_lists_them(echo):
    names = list(checks_of(unpinned(echo), echo))

    assert names == [
        "controller", "speakers", "pools", "advertisements", "node-ips", "lb-exclusion", "strict-arp",
        "announced", "service", "dns", "udp", "arp",
    ]  # fmt: skip
