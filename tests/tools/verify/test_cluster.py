"""What verify reads from a cluster, with a real kubectl against the fake API server on loopback: each
object asked for once, a failure kept as the answer, and a hung API server that costs one timeout, not one
per check. And the fields verify picks out of what it read."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest

from kube_client import Kubectl, KubectlError
from tests.fake_kube_api import FakeKubeApi, silent_url, write_kubeconfig
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster
from tests.system_programs import require_tool
from tests.tools.verify.kind_dev import recorded
from tools.verify.cluster import (
    ClusterReads,
    field_at,
    has_exclusion_label,
    is_ready,
    is_serving,
    items_by_name,
    matches_selector,
    node_addresses,
    service_ips,
)


def node_reads(api_requests: list[tuple[str, str]]) -> int:
    return sum(1 for method, path in api_requests if method == "GET" and path.startswith("/api/v1/nodes"))


def test_each_object_is_asked_for_once_however_many_checks_read_it():
    with fake_cluster(recorded("nodes.json")["items"]) as cluster:
        reads = ClusterReads(cluster.kubectl())
        first = reads.get("nodes", None)
        assert reads.get("nodes", None) is first
        assert reads.nodes_or_error() is first
        assert node_reads(cluster.api.requests) == 1
        assert sorted(items_by_name(first)) == ["macula-dev-control-plane"]


def test_a_failed_read_is_kept_as_the_answer_and_other_reads_are_still_made():
    with fake_cluster([recorded("deployment-metallb-controller.ready.json")]) as cluster:
        cluster.api.forbid("LIST", "nodes")
        reads = ClusterReads(cluster.kubectl())
        with pytest.raises(KubectlError, match="Forbidden"):
            reads.get("nodes", None)
        error = reads.nodes_or_error()
        assert isinstance(error, KubectlError) and "Forbidden" in str(error)
        assert node_reads(cluster.api.requests) == 1
        # Denied is no sign of a silent server: the controller is still asked for.
        controller = reads.get("deployments.v1.apps", "metallb-system", "metallb-controller")
        assert controller["metadata"]["name"] == "metallb-controller"


def test_not_found_is_an_answer_and_could_not_ask_is_an_error():
    with fake_cluster() as cluster:
        reads = ClusterReads(cluster.kubectl())
        assert reads.get("deployments.v1.apps", "metallb-system", "metallb-controller") is None
        assert reads.items("pods", "metallb-system", "app.kubernetes.io/component=speaker") == []
        with pytest.raises(KubectlError, match="ipaddresspools"):
            reads.get("ipaddresspools.v1beta1.metallb.io", "metallb-system")  # no such type: no MetalLB
        unreachable = ClusterReads(cluster.kubectl(UNREACHABLE_CONTEXT))
        with pytest.raises(KubectlError, match="refused"):
            unreachable.get("nodes", None)


def test_a_hung_api_server_costs_one_timeout_then_nothing_more_is_asked(tmp_path: Path):
    with silent_url() as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"hung": url})
        kubectl = Kubectl("hung", str(kubeconfig), 1, require_tool("kubectl"))
        reads = ClusterReads(kubectl)
        started = time.monotonic()
        with pytest.raises(KubectlError):
            reads.get("deployments.v1.apps", "metallb-system", "metallb-controller")
        first = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(KubectlError, match=r"^not asked: the API server did not answer an earlier read"):
            reads.get("nodes", None)
        assert isinstance(reads.nodes_or_error(), KubectlError)
        later = time.monotonic() - started
    # kubectl alone retries its discovery for six to eight times --request-timeout; the call is cut.
    assert 1 <= first < 3
    assert later < 0.1


def test_a_cluster_that_hangs_after_answering_costs_one_timeout_too(tmp_path: Path, monkeypatch):
    """kubectl's discovery cache is warm, so it makes one request and stops at its own deadline, which is
    the timeout to the millisecond, fractions included."""
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "cache"))
    api = FakeKubeApi(recorded("nodes.json")["items"])
    with api.serve() as url:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"flaky": url})
        kubectl = Kubectl("flaky", str(kubeconfig), 1.5, require_tool("kubectl"))
        assert ClusterReads(kubectl).get("nodes", None) is not None
    port = int(url.rsplit(":", 1)[1])
    with silent_url(port):
        reads = ClusterReads(kubectl)
        started = time.monotonic()
        with pytest.raises(KubectlError):
            reads.get("deployments.v1.apps", "metallb-system", "metallb-controller")
        first = time.monotonic() - started
        with pytest.raises(KubectlError, match=r"^not asked"):
            reads.get("nodes", None)
        total = time.monotonic() - started
    assert 1.5 <= first < 2.5
    assert total - first < 0.1


def test_fields_are_picked_out_of_what_was_read():
    nodes = recorded("nodes.json")
    node = nodes["items"][0]
    assert field_at(node, "metadata", "name") == "macula-dev-control-plane"
    assert field_at(node, "metadata", "nothing", "deeper") is None
    assert field_at("not a mapping", "metadata") is None
    assert is_ready(node)
    assert not has_exclusion_label(node)
    assert has_exclusion_label(recorded("nodes.excluded.json")["items"][0])
    assert node_addresses(nodes) == {"macula-dev-control-plane": [ipaddress.ip_address("172.18.0.2")]}
    assert node_addresses(KubectlError("denied")) == {}
    assert service_ips(recorded("service-macula-bootstrap.loadbalancer.json")) == [
        ipaddress.ip_address("192.168.129.51")
    ]
    assert service_ips(recorded("service-macula-bootstrap.pending.json")) == []
    assert items_by_name({"items": [{"metadata": {}}, "junk"]}) == {}


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    """A selector of one matchExpressions requirement."""
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        requirement["values"] = list(values)
    return {"matchExpressions": [requirement]}


NODE = {"metadata": {"labels": {"kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}}}


@pytest.mark.parametrize(
    ("selector", "selects"),
    [
        ({}, True),
        ({"matchLabels": {"kubernetes.io/os": "linux"}}, True),
        ({"matchLabels": {"kubernetes.io/os": "windows"}}, False),
        ({"matchLabels": {"macula.io/lan": "true"}}, False),
        (expression("kubernetes.io/os", "In", "linux"), True),
        (expression("kubernetes.io/os", "In", "windows"), False),
        (expression("macula.io/lan", "In", "true"), False),
        (expression("kubernetes.io/os", "NotIn", "linux"), False),
        (expression("macula.io/lan", "NotIn", "true"), True),
        (expression("node-role.kubernetes.io/control-plane", "Exists"), True),
        (expression("macula.io/lan", "Exists"), False),
        (expression("macula.io/lan", "DoesNotExist"), True),
        (expression("kubernetes.io/os", "DoesNotExist"), False),
        (expression("kubernetes.io/os", "Gt", "1"), False),
        (
            {
                "matchLabels": {"kubernetes.io/os": "linux"},
                "matchExpressions": [{"key": "macula.io/lan", "operator": "Exists"}],
            },
            False,
        ),
    ],
)
def test_a_label_selector_selects_as_the_api_server_does(selector, selects):
    assert matches_selector(NODE, selector) is selects


@pytest.mark.parametrize(
    ("conditions", "serving"),
    [
        ({"ready": True, "serving": True, "terminating": False}, True),
        ({"ready": False, "serving": False}, False),
        # Terminating, no longer ready, still serving: MetalLB still announces for it.
        ({"ready": False, "serving": True, "terminating": True}, True),
        ({"ready": True, "serving": False}, False),
        ({"ready": False}, False),
        ({"ready": True}, True),
        ({}, True),  # neither said: the API's default is ready
    ],
)
def test_an_endpoint_serves_as_metallb_reads_its_conditions(conditions, serving):
    assert is_serving({"conditions": conditions}) is serving
