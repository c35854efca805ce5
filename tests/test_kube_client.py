"""kube_client: what it passes to kubectl (a recording stand-in), and what it makes of a real kubectl's
answers from a fake API server on loopback, faults included."""

from __future__ import annotations

import time
from typing import Any

import pytest

import kube_client
from kube_client import Kubectl, KubectlError, kubectl_get, kubectl_items
from tests.fake_kube_api import FakeKubeApi, custom_resource_definition
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster
from tests.standin_kubectl import calls, write_kubectl
from tests.tools.verify.kind_dev import RECORDED, recorded
from tools.verify.cluster import POOL_RESOURCE

POOL_CRD = custom_resource_definition("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool")


def recorded_items(name: str) -> list[dict[str, Any]]:
    return list(recorded(name)["items"])


def test_kubectl_get_passes_context_and_kubeconfig_and_parses_json(tmp_path):
    body = (RECORDED / "deployment-metallb-controller.ready.json").read_text()
    script = write_kubectl(tmp_path, f"sys.stdout.write({body!r})\n")
    kubectl = Kubectl("kind-macula-dev", "/srv/kube/config", 7, str(script))
    found = kubectl_get(kubectl, "deployments.v1.apps", "metallb-system", "metallb-controller")
    assert found["metadata"]["name"] == "metallb-controller"
    assert calls(tmp_path) == [
        [
            "--context", "kind-macula-dev", "--kubeconfig", "/srv/kube/config",
            "get", "deployments.v1.apps", "metallb-controller", "--ignore-not-found", "-n", "metallb-system",
            "-o", "json", "--request-timeout=7s",
        ]
    ]  # fmt: skip


def test_kubectl_get_lists_without_ignore_not_found(tmp_path):
    script = write_kubectl(tmp_path, 'print(\'{"kind": "List", "items": []}\')\n')
    found = kubectl_get(Kubectl("ctx", executable=str(script)), POOL_RESOURCE, "metallb-system")
    assert found == {"kind": "List", "items": []}
    assert calls(tmp_path) == [
        [
            "--context",
            "ctx",
            "get",
            POOL_RESOURCE,
            "-n",
            "metallb-system",
            "-o",
            "json",
            "--request-timeout=20s",
        ]
    ]


def test_kubectl_get_of_a_cluster_scoped_resource_names_no_namespace(tmp_path):
    script = write_kubectl(tmp_path, 'print(\'{"kind": "List", "items": []}\')\n')
    kubectl_get(Kubectl("ctx", executable=str(script)), "nodes", None)
    assert calls(tmp_path) == [["--context", "ctx", "get", "nodes", "-o", "json", "--request-timeout=20s"]]


def test_kubectl_get_reads_nothing_as_not_found(tmp_path):
    script = write_kubectl(tmp_path, "")
    assert kubectl_get(Kubectl("c", executable=str(script)), "services", "macula", "x") is None


def test_kubectl_get_reads_a_not_found_error_as_not_found(tmp_path):
    script = write_kubectl(
        tmp_path,
        "sys.stderr.write('Error from server (NotFound): services \"x\" not found\\n'); sys.exit(1)\n",
    )
    assert kubectl_get(Kubectl("c", executable=str(script)), "services", "macula", "x") is None


def test_kubectl_get_reports_kubectls_last_error_line(tmp_path):
    script = write_kubectl(
        tmp_path,
        "sys.stderr.write('E0304 10:15:02 memcache.go:265] couldn\\'t get current server API group list\\n'"
        "'error: the server doesn\\'t have a resource type \"ipaddresspools\"\\n'); sys.exit(1)\n",
    )
    with pytest.raises(
        KubectlError, match=r'^error: the server doesn\'t have a resource type "ipaddresspools"$'
    ):
        kubectl_get(Kubectl("c", executable=str(script)), POOL_RESOURCE, "metallb-system")


def test_kubectl_get_without_kubectl(tmp_path):
    with pytest.raises(KubectlError, match="not found on PATH"):
        kubectl_get(Kubectl("c", executable=str(tmp_path / "kubectl")), "services", "macula")


def test_kubectl_get_stops_a_hung_kubectl(tmp_path, monkeypatch):
    monkeypatch.setattr(kube_client, "KUBECTL_GRACE_SECONDS", 0.0)
    script = write_kubectl(tmp_path, "time.sleep(30)\n")
    started = time.monotonic()
    with pytest.raises(KubectlError, match=r"did not answer within 0\.5s"):
        kubectl_get(Kubectl("c", timeout=0.5, executable=str(script)), "services", "macula")
    assert time.monotonic() - started < 5


# --- A real kubectl against a fake API server ------------------------------------------------------------


def cluster_objects() -> list[dict[str, Any]]:
    return [
        recorded("deployment-metallb-controller.ready.json"),
        *recorded_items("nodes.json"),
        POOL_CRD,
        *recorded_items("ipaddresspools.json"),
    ]


def without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "uid", "generation")}
    return {**obj, "metadata": metadata}


def test_kubectl_get_against_the_real_kubectl():
    """The contract the stand-ins assume, checked against a real kubectl."""
    with fake_cluster(cluster_objects()) as cluster:

        def get(resource: str, namespace: str | None, name: str | None = None) -> Any:
            return kubectl_get(cluster.kubectl(), resource, namespace, name)

        controller = get("deployments.v1.apps", "metallb-system", "metallb-controller")
        assert without_server_fields(controller) == without_server_fields(
            recorded("deployment-metallb-controller.ready.json")
        )
        assert get("services", "macula", "macula-bootstrap") is None
        # kubectl turns the typed lists into the generic List the recordings hold.
        pools = get(POOL_RESOURCE, "metallb-system")
        assert pools["kind"] == "List"
        assert [p["metadata"]["name"] for p in pools["items"]] == ["lan-pool"]
        assert [n["metadata"]["name"] for n in get("nodes", None)["items"]] == ["macula-dev-control-plane"]
        with pytest.raises(KubectlError, match="the server doesn't have a resource type"):
            get("bgppeers.v1beta2.metallb.io", "metallb-system")
        with pytest.raises(KubectlError, match='context "nowhere" does not exist'):
            kubectl_get(cluster.kubectl("nowhere"), "services", "macula")


def test_items_of_named_objects_leave_out_the_missing_ones():
    with fake_cluster(cluster_objects()) as cluster:
        found = kubectl_items(
            cluster.kubectl(),
            ["customresourcedefinitions.apiextensions.k8s.io/ipaddresspools.metallb.io", "nodes/gone"],
        )
        assert [obj["metadata"]["name"] for obj in found] == ["ipaddresspools.metallb.io"]
        assert kubectl_items(cluster.kubectl(), ["nodes/gone", "namespaces/gone"]) == []


def test_items_filter_by_label_across_namespaces():
    with fake_cluster(cluster_objects()) as cluster:
        found = kubectl_items(
            cluster.kubectl(),
            ["deployments.apps,daemonsets.apps"],
            all_namespaces=True,
            selector="app.kubernetes.io/component=controller",
        )
        assert [obj["metadata"]["name"] for obj in found] == ["metallb-controller"]
        assert (
            kubectl_items(cluster.kubectl(), ["deployments.apps"], all_namespaces=True, selector="app=none")
            == []
        )


def test_items_read_stdout_only_while_kubectl_warns_about_a_broken_aggregated_api():
    api = FakeKubeApi(cluster_objects())
    api.broken_discovery = True
    with fake_cluster(api=api) as cluster:
        found = kubectl_items(cluster.kubectl(), ["deployments.apps"], namespace="metallb-system")
    assert [obj["metadata"]["name"] for obj in found] == ["metallb-controller"]
    assert ("GET", "/apis/metrics.k8s.io/v1beta1") in api.requests


def test_a_denied_list_is_an_error_not_an_empty_answer():
    api = FakeKubeApi(cluster_objects())
    api.forbid("LIST", "secrets", "metallb-system")
    with fake_cluster(api=api) as cluster, pytest.raises(KubectlError, match="forbidden"):
        kubectl_items(cluster.kubectl(), ["secrets"], namespace="metallb-system")


def test_a_denied_get_is_an_error_not_a_missing_object():
    api = FakeKubeApi(cluster_objects())
    api.forbid("GET", "namespaces")
    with fake_cluster(api=api) as cluster, pytest.raises(KubectlError, match="forbidden"):
        kubectl_items(cluster.kubectl(), ["namespaces/metallb-system"])


def test_an_unreachable_cluster_is_an_error():
    with fake_cluster() as cluster, pytest.raises(KubectlError, match="refused"):
        kubectl_items(cluster.kubectl(UNREACHABLE_CONTEXT), ["namespaces/metallb-system"])


def test_kubectl_items_refuses_a_list_whose_items_are_no_list(tmp_path):
    script = write_kubectl(tmp_path, 'print(\'{"kind": "List", "items": 5}\')\n')
    with pytest.raises(KubectlError, match="a List whose items are no list"):
        kubectl_items(Kubectl("ctx", executable=str(script)), ["pods"], namespace="metallb-system")
