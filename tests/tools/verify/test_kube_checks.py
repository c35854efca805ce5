"""The Kubernetes checks' judges against recorded API responses."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kube_client import KubectlError
from stack_config.addresses import parse_block
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster
from tests.tools.verify.kind_dev import (
    BEAM00,
    BOOTSTRAP,
    KIND_DEV,
    RECORDED,
    cluster_objects,
    kube_proxy,
    recorded,
)
from tools.verify import kube_checks
from tools.verify.check import Check
from tools.verify.cluster import EXCLUDE_LB_LABEL, ClusterReads

# --- The Kubernetes judges, against recorded responses ------------------------------------------------


def test_every_recorded_response_is_used_and_is_kubectl_json():
    for path in RECORDED.glob("*.json"):
        body = json.loads(path.read_text())
        assert body["apiVersion"] and body["kind"], path.name
        if body["kind"] == "List":
            assert body["metadata"] == {"resourceVersion": ""}
            assert all(
                item["apiVersion"] in ("metallb.io/v1beta1", "v1", "discovery.k8s.io/v1")
                for item in body["items"]
            )
    # Other checks' tests read some of them too.
    source = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    unused = [p.name for p in RECORDED.glob("*.json") if p.name not in source]
    assert not unused, f"recorded responses no test reads: {unused}"


def test_controller_ready():
    check = kube_checks.judge_controller(recorded("deployment-metallb-controller.ready.json"))
    assert check == Check("ok", "controller", "metallb-system/metallb-controller: 1/1 ready")


def test_controller_not_ready():
    check = kube_checks.judge_controller(recorded("deployment-metallb-controller.not-ready.json"))
    assert check.status == "FAIL"
    assert check.detail == "metallb-system/metallb-controller: 0/1 ready; not every replica is ready"


def test_controller_whose_status_lags_its_spec_is_not_ready():
    deployment = recorded("deployment-metallb-controller.ready.json")
    deployment["metadata"]["generation"] = 2
    check = kube_checks.judge_controller(deployment)
    assert check.status == "FAIL"
    assert "status describes generation 1, the spec is at 2" in check.detail


def test_controller_scaled_to_zero():
    deployment = recorded("deployment-metallb-controller.ready.json")
    deployment["spec"]["replicas"] = 0
    deployment["status"] = {"observedGeneration": 1}
    check = kube_checks.judge_controller(deployment)
    assert (check.status, check.detail) == (
        "FAIL",
        "metallb-system/metallb-controller: 0/0 ready; scaled to 0 replicas",
    )


def test_controller_missing():
    check = kube_checks.judge_controller(None)
    assert check.status == "FAIL"
    assert check.detail == "Deployment metallb-system/metallb-controller not found: is MetalLB installed?"


def test_speakers_ready():
    check = kube_checks.judge_speakers(
        recorded("daemonset-metallb-speaker.ready.json"), recorded("nodes.json")
    )
    assert check == Check("ok", "speakers", "metallb-system/metallb-speaker: 1/1 ready")


def test_speakers_not_ready():
    check = kube_checks.judge_speakers(
        recorded("daemonset-metallb-speaker.not-ready.json"), recorded("nodes.json")
    )
    assert (check.status, check.detail) == (
        "FAIL",
        "metallb-system/metallb-speaker: 0/1 ready; not every speaker is ready",
    )


def test_speakers_on_excluded_nodes_only_announce_nowhere():
    # What a single-node KinD cluster looks like before clearLoadBalancerExclusion: the speaker runs.
    check = kube_checks.judge_speakers(
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
    nodes["items"][0]["metadata"]["labels"][EXCLUDE_LB_LABEL] = "false"
    assert (
        kube_checks.judge_speakers(recorded("daemonset-metallb-speaker.ready.json"), nodes).status == "FAIL"
    )


def test_speakers_name_the_excluded_nodes_when_another_may_announce():
    nodes = recorded("nodes.excluded.json")
    worker = json.loads(json.dumps(nodes["items"][0]))
    worker["metadata"]["name"] = "macula-dev-worker"
    # kubeadm puts both labels on control-plane nodes only.
    for label in ("node-role.kubernetes.io/control-plane", EXCLUDE_LB_LABEL):
        del worker["metadata"]["labels"][label]
    nodes["items"].append(worker)
    daemonset = recorded("daemonset-metallb-speaker.ready.json")
    daemonset["status"].update(desiredNumberScheduled=2, numberReady=2)
    check = kube_checks.judge_speakers(daemonset, nodes)
    assert check == Check(
        "ok",
        "speakers",
        "metallb-system/metallb-speaker: 2/2 ready; not announcing from macula-dev-control-plane "
        "(excluded by node.kubernetes.io/exclude-from-external-load-balancers)",
    )


def test_speakers_scheduled_nowhere_point_at_the_node_selector_and_tolerations():
    check = kube_checks.judge_speakers(
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
    check = kube_checks.judge_speakers(recorded("daemonset-metallb-speaker.ready.json"), forbidden)
    assert check == Check(
        "warn",
        "speakers",
        f"metallb-system/metallb-speaker: 1/1 ready; nodes not read ({forbidden}), "
        "so whether any speaker may announce is unchecked",
    )
    not_ready = kube_checks.judge_speakers(recorded("daemonset-metallb-speaker.not-ready.json"), forbidden)
    assert not_ready.status == "FAIL"


def test_pools_present():
    check = kube_checks.judge_pools(recorded("ipaddresspools.json"), KIND_DEV.pools)
    assert check == Check("ok", "pools", "lan-pool (192.168.129.50-192.168.129.60)")


def test_pool_missing():
    check = kube_checks.judge_pools(recorded("ipaddresspools.empty.json"), KIND_DEV.pools)
    assert check == Check("FAIL", "pools", "IPAddressPool lan-pool is missing (none present)")


def test_pool_with_other_addresses():
    # beam00's pool is also called lan-pool, but has its own range.
    check = kube_checks.judge_pools(recorded("ipaddresspools.json"), BEAM00.pools)
    assert check.status == "FAIL"
    assert check.detail == (
        "IPAddressPool lan-pool has addresses 192.168.129.50-192.168.129.60, "
        "the stack says 192.168.129.70-192.168.129.80 (present: lan-pool)"
    )


def test_pool_addresses_compare_by_value_not_spelling():
    listing = recorded("ipaddresspools.json")
    listing["items"][0]["spec"]["addresses"] = ["192.168.129.50 - 192.168.129.60"]
    assert kube_checks.judge_pools(listing, KIND_DEV.pools).status == "ok"
    pool = dataclasses.replace(
        KIND_DEV.pools[0],
        addresses=(dataclasses.replace(KIND_DEV.pools[0].addresses[0], text="192.168.129.64/28"),),
    )
    listing["items"][0]["spec"]["addresses"] = ["192.168.129.64-192.168.129.79"]
    assert kube_checks.judge_pools(listing, (pool,)).status == "ok"


def test_advertisements_present():
    check = kube_checks.judge_advertisements(
        recorded("l2advertisements.json"), KIND_DEV.advertisements, KIND_DEV.pools
    )
    assert check == Check("ok", "advertisements", "lan-advertisement (pools: lan-pool)")


def test_advertisement_missing():
    check = kube_checks.judge_advertisements(
        recorded("l2advertisements.empty.json"), KIND_DEV.advertisements, KIND_DEV.pools
    )
    assert check == Check(
        "FAIL", "advertisements", "L2Advertisement lan-advertisement is missing (none present)"
    )


def test_advertisement_of_other_pools():
    listing = recorded("l2advertisements.json")
    listing["items"][0]["spec"]["ipAddressPools"] = ["other-pool"]
    check = kube_checks.judge_advertisements(listing, KIND_DEV.advertisements, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "advertises pools other-pool, the stack says lan-pool" in check.detail


def test_advertisement_without_pools_advertises_every_pool():
    listing = recorded("l2advertisements.json")
    del listing["items"][0]["spec"]["ipAddressPools"]
    check = kube_checks.judge_advertisements(listing, KIND_DEV.advertisements, KIND_DEV.pools)
    assert check.status == "ok"


def test_service_with_the_pinned_ip():
    check = kube_checks.judge_service(
        recorded("service-macula-bootstrap.loadbalancer.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check == Check(
        "ok", "service", "macula/macula-bootstrap: LoadBalancer, external IP 192.168.129.51"
    )


def test_service_still_clusterip():
    check = kube_checks.judge_service(
        recorded("service-macula-bootstrap.clusterip.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check == Check(
        "FAIL",
        "service",
        "macula/macula-bootstrap is type ClusterIP, not LoadBalancer: has `pulumi up` run for this stack?",
    )


def test_service_pending():
    check = kube_checks.judge_service(
        recorded("service-macula-bootstrap.pending.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check.status == "FAIL"
    assert check.detail.startswith(
        "macula/macula-bootstrap: LoadBalancer, external IP <pending>; no external IP yet (pending)"
    )


def test_service_with_another_ip():
    check = kube_checks.judge_service(
        recorded("service-macula-bootstrap.wrong-ip.json"), BOOTSTRAP, KIND_DEV.pools
    )
    assert check.status == "FAIL"
    assert "external IP 192.168.129.52, expected 192.168.129.51" in check.detail


def test_service_missing():
    check = kube_checks.judge_service(None, BOOTSTRAP, KIND_DEV.pools)
    assert check == Check("FAIL", "service", "Service macula/macula-bootstrap not found")


def test_service_without_the_bootstrap_udp_port():
    service = recorded("service-macula-bootstrap.loadbalancer.json")
    service["spec"]["ports"][0]["protocol"] = "TCP"
    check = kube_checks.judge_service(service, BOOTSTRAP, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "no UDP port 4433 (ports: 4433/TCP, 80/TCP)" in check.detail


def test_service_without_a_pinned_ip_needs_one_from_the_pools():
    unpinned = dataclasses.replace(BOOTSTRAP, ip=None)
    assert (
        kube_checks.judge_service(
            recorded("service-macula-bootstrap.wrong-ip.json"), unpinned, KIND_DEV.pools
        ).status
        == "ok"
    )
    service = recorded("service-macula-bootstrap.loadbalancer.json")
    service["status"]["loadBalancer"]["ingress"][0]["ip"] = "10.0.0.7"
    check = kube_checks.judge_service(service, unpinned, KIND_DEV.pools)
    assert check.status == "FAIL"
    assert "external IP 10.0.0.7 is in none of the stack's pools (lan-pool)" in check.detail


def test_a_node_address_inside_a_pool_fails():
    nodes = recorded("nodes.json")  # macula-dev-control-plane at 172.18.0.2
    inside = dataclasses.replace(KIND_DEV.pools[0], addresses=(parse_block("172.18.0.0/28"),))
    check = kube_checks.judge_node_addresses(nodes, [inside])
    assert check.status == "FAIL"
    assert check.detail.startswith(
        "node macula-dev-control-plane's InternalIP 172.18.0.2 lies inside pool lan-pool (172.18.0.0/28): "
        "MetalLB 0.14.3 would hand it to a Service"
    )
    assert kube_checks.judge_node_addresses(nodes, KIND_DEV.pools) == Check(
        "ok", "node-ips", "1 node address, none inside a pool"
    )


# --- what Pulumi cannot see: the label, strictARP, who announces ------------------------------------------


def test_strict_arp_as_kubeadm_records_it_in_ipvs_mode():
    configmap = recorded("configmap-kube-proxy.json")
    assert kube_checks.judge_strict_arp(configmap, "macula-lan", "beam00") == Check(
        "ok", "strict-arp", "kube-proxy's ipvs.strictARP is true"
    )


def test_strict_arp_turned_off_since_fails_with_the_command_that_turns_it_on():
    assert kube_checks.judge_strict_arp(kube_proxy("true"), "macula-lan", "beam00").status == "ok"
    check = kube_checks.judge_strict_arp(kube_proxy("false"), "macula-lan", "beam00")
    assert check.status == "FAIL"
    assert check.detail.endswith(
        "pulumi up --stack beam00 --replace "
        "'urn:pulumi:beam00::macula-lan::macula:lan:ArpReadiness$command:local:Command::arp-readiness-strict-arp'"
    )
    assert kube_checks.judge_strict_arp(None, "macula-lan", "beam00").status == "FAIL"


def test_a_listed_node_that_is_gone_is_named():
    check = kube_checks.judge_exclusion_label(
        recorded("nodes.json"), ["beam00-worker-7"], "macula-lan", "beam00"
    )
    assert check == Check("FAIL", "lb-exclusion", "node beam00-worker-7 does not exist")


def announcement(**changes: Any) -> kube_checks.AnnouncementReads:
    """kind-dev's cluster as recorded, healthy, as the announced check reads it; `changes` replace parts."""
    found = kube_checks.AnnouncementReads(
        pods=recorded("pods-metallb-speaker.json")["items"],
        nodes=recorded("nodes.json"),
        advertisements=recorded("l2advertisements.json"),
        pools=recorded("ipaddresspools.json"),
        service=recorded("service-macula-bootstrap.loadbalancer.json"),
        endpoint_slices=recorded("endpointslices-macula-bootstrap.json")["items"],
    )
    return dataclasses.replace(found, **changes)


def edited(document: Any, edit: Callable[[Any], None]) -> Any:
    copy = json.loads(json.dumps(document))
    edit(copy)
    return copy


def set_node_condition(kind: str, status: str) -> Callable[[Any], None]:
    def edit(nodes: Any) -> None:
        conditions = nodes["items"][0]["status"]["conditions"]
        conditions[:] = [c for c in conditions if c["type"] != kind] + [{"type": kind, "status": status}]

    return edit


def with_node_selectors(*selectors: Any) -> Callable[[Any], None]:
    def edit(listing: Any) -> None:
        listing["items"][0]["spec"]["nodeSelectors"] = list(selectors)

    return edit


LAN_POOL = {"lan-pool"}


def test_a_speaker_on_a_ready_node_with_a_serving_endpoint_announces():
    assert kube_checks.judge_announced(announcement(), LAN_POOL) == Check(
        "ok", "announced", "speakers that may announce run on macula-dev-control-plane"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"pods": edited(recorded("pods-metallb-speaker.json"), lambda d: d["items"][0]["status"].update(
                conditions=[{"type": "Ready", "status": "False"}]))["items"]},
            "macula-dev-control-plane: the speaker or its node is not ready",
        ),
        (
            {"nodes": edited(recorded("nodes.json"), set_node_condition("Ready", "Unknown"))},
            "macula-dev-control-plane: the speaker or its node is not ready",
        ),
        ({"nodes": recorded("nodes.excluded.json")}, f"macula-dev-control-plane: {EXCLUDE_LB_LABEL}"),
        (
            {"nodes": edited(recorded("nodes.json"), set_node_condition("NetworkUnavailable", "True"))},
            "macula-dev-control-plane: NetworkUnavailable",
        ),
        (
            {"advertisements": edited(recorded("l2advertisements.json"), with_node_selectors(
                {"matchLabels": {"macula.io/lan": "true"}}))},
            "macula-dev-control-plane: no L2Advertisement of pool lan-pool selects it (nodeSelectors)",
        ),
        ({"pods": []}, "no speaker pod runs"),
    ],
    ids=["speaker-not-ready", "node-not-ready", "excluded", "network-unavailable", "not-selected", "no-pod"],
)  # fmt: skip
def test_nobody_announces_and_the_check_says_why(changes, reason):
    check = kube_checks.judge_announced(announcement(**changes), LAN_POOL)

    assert check.status == "FAIL"
    assert check.detail.startswith(f"no speaker may announce pool lan-pool ({reason})")
    assert check.detail.endswith("the Service has its address, but nobody answers ARP for it")


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"kubernetes.io/hostname": "macula-dev-control-plane"}},
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]},
        {"matchExpressions": [{"key": "macula.io/no-lan", "operator": "DoesNotExist"}]},
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "NotIn", "values": ["windows"]}]},
    ],
)
def test_node_selectors_that_select_the_node_let_it_announce(selector):
    advertisements = edited(recorded("l2advertisements.json"), with_node_selectors(selector))
    assert kube_checks.judge_announced(announcement(advertisements=advertisements), LAN_POOL).status == "ok"


def test_a_service_without_a_serving_endpoint_is_announced_by_nobody():
    slices = recorded("endpointslices-macula-bootstrap.not-ready.json")["items"]
    check = kube_checks.judge_announced(announcement(endpoint_slices=slices), LAN_POOL)
    assert check.status == "FAIL"
    assert check.detail.startswith("the bootstrap Service has no serving endpoint (its pods are not ready)")


def test_with_external_traffic_policy_local_only_nodes_with_an_endpoint_announce():
    elsewhere = edited(
        recorded("endpointslices-macula-bootstrap.json"),
        lambda d: d["items"][0]["endpoints"][0].update(nodeName="beam00-worker-2"),
    )["items"]
    local = edited(
        recorded("service-macula-bootstrap.loadbalancer.json"),
        lambda d: d["spec"].update(externalTrafficPolicy="Local"),
    )
    check = kube_checks.judge_announced(announcement(service=local, endpoint_slices=elsewhere), LAN_POOL)
    assert check.detail.startswith(
        "no speaker may announce pool lan-pool (macula-dev-control-plane: no serving endpoint on it "
        "(externalTrafficPolicy: Local))"
    )
    cluster_policy = kube_checks.judge_announced(announcement(endpoint_slices=elsewhere), LAN_POOL)
    assert cluster_policy.status == "ok"


# Without a bootstrap there is no Service to follow: every pool must have someone to announce it.
NO_BOOTSTRAP = {"service": None, "endpoint_slices": None}


def test_a_pool_no_advertisement_names_is_announced_by_nobody():
    check = kube_checks.judge_announced(announcement(**NO_BOOTSTRAP), {"lan-pool", "other-pool"})
    assert check == Check(
        "FAIL",
        "announced",
        "no L2Advertisement advertises pool other-pool, so no speaker announces it: MetalLB assigns the "
        "pool's addresses, but nobody answers ARP for them",
    )
    # Neither pool names nor pool selectors: MetalLB advertises every pool.
    every_pool = edited(
        recorded("l2advertisements.json"), lambda d: d["items"][0]["spec"].pop("ipAddressPools")
    )
    found = announcement(advertisements=every_pool, **NO_BOOTSTRAP)
    assert kube_checks.judge_announced(found, {"lan-pool", "other-pool"}).status == "ok"


def test_each_pool_needs_a_speaker_its_own_advertisement_selects():
    two = edited(
        recorded("l2advertisements.json"),
        lambda d: d["items"].append(
            {**d["items"][0], "metadata": {"name": "other"}, "spec": {"ipAddressPools": ["other-pool"]}}
        ),
    )
    nobody_for_lan_pool = edited(two, with_node_selectors({"matchLabels": {"macula.io/lan": "true"}}))
    check = kube_checks.judge_announced(
        announcement(advertisements=nobody_for_lan_pool, **NO_BOOTSTRAP), {"lan-pool", "other-pool"}
    )
    assert check.detail.startswith(
        "no speaker may announce pool lan-pool (macula-dev-control-plane: no L2Advertisement of pool "
        "lan-pool selects it (nodeSelectors))"
    )


def test_the_service_is_judged_by_the_pool_metallb_allocated_it_from():
    # The recorded Service says lan-pool; whatever else the stack could have meant, that pool counts.
    assert kube_checks.judge_announced(announcement(), {"other-pool"}).status == "ok"
    unannotated = edited(
        recorded("service-macula-bootstrap.loadbalancer.json"),
        lambda d: d["metadata"]["annotations"].pop(kube_checks.ALLOCATED_FROM_POOL),
    )
    check = kube_checks.judge_announced(announcement(service=unannotated), {"other-pool"})
    assert check.detail.startswith("no L2Advertisement advertises pool other-pool")


def test_a_pool_selected_by_its_labels_is_advertised():
    labelled = edited(
        recorded("ipaddresspools.json"), lambda d: d["items"][0]["metadata"].update(labels={"lan": "yes"})
    )
    by_selector = edited(
        recorded("l2advertisements.json"),
        lambda d: d["items"][0]["spec"].update(
            ipAddressPools=[], ipAddressPoolSelectors=[{"matchLabels": {"lan": "yes"}}]
        ),
    )
    found = announcement(advertisements=by_selector, pools=labelled)
    assert kube_checks.judge_announced(found, LAN_POOL).status == "ok"
    assert (
        kube_checks.judge_announced(
            dataclasses.replace(found, pools=recorded("ipaddresspools.json")), LAN_POOL
        ).status
        == "FAIL"
    )


def test_the_pool_the_bootstrap_address_comes_from():
    assert kube_checks.announced_pools(KIND_DEV) == {"lan-pool"}
    assert kube_checks.announced_pools(BEAM00) == {"lan-pool"}
    unpinned = dataclasses.replace(KIND_DEV, bootstrap=dataclasses.replace(BOOTSTRAP, pool=None))
    assert kube_checks.announced_pools(unpinned) == {"lan-pool"}  # the pool holding 192.168.129.51


# --- the table, with a real kubectl against the fake API server ---------------------------------------------

# kind-dev as it is, with strictArp set too, so every row of the table applies.
EVERY_CHECK = dataclasses.replace(KIND_DEV, strict_arp=True)
REPLACE_LABEL_FIX = (
    "pulumi up --stack kind-dev --replace 'urn:pulumi:kind-dev::macula-lan::macula:lan:ArpReadiness"
    "$command:local:Command::arp-readiness-include-macula-dev-control-plane'"
)


def table(api: FakeKubeApi, context: str = "kind-macula-dev") -> dict[str, Check]:
    with fake_cluster(api=api) as cluster:
        reads = ClusterReads(cluster.kubectl(context))
        return {check.name: check for check in kube_checks.kube_checks(EVERY_CHECK, reads, "macula-lan")}


@pytest.mark.parametrize("broken_discovery", [False, True], ids=["healthy", "broken-aggregated-api"])
def test_every_check_passes_on_a_healthy_cluster_whatever_kubectl_warns(broken_discovery):
    api = FakeKubeApi(cluster_objects())
    api.broken_discovery = broken_discovery

    checks = table(api)

    assert {name: check.status for name, check in checks.items()} == {
        "controller": "ok",
        "speakers": "ok",
        "pools": "ok",
        "advertisements": "ok",
        "node-ips": "ok",
        "lb-exclusion": "ok",
        "strict-arp": "ok",
        "announced": "ok",
        "service": "ok",
    }
    assert checks["announced"].detail == "speakers that may announce run on macula-dev-control-plane"
    # Four checks look at the nodes; they are listed once.
    assert sum(1 for method, path in api.requests if (method, path) == ("GET", "/api/v1/nodes")) == 1
    if broken_discovery:
        assert ("GET", "/apis/metrics.k8s.io/v1beta1") in api.requests


def test_a_label_kubeadm_put_back_fails_with_the_command_that_takes_it_off_again():
    checks = table(FakeKubeApi(cluster_objects(nodes="nodes.excluded.json")))

    assert checks["lb-exclusion"] == Check(
        "FAIL",
        "lb-exclusion",
        f"node macula-dev-control-plane carries {EXCLUDE_LB_LABEL} again, so its speaker does not announce; "
        f"take it off again: {REPLACE_LABEL_FIX}",
    )
    assert checks["announced"].status == "FAIL"
    assert checks["speakers"].status == "FAIL"  # the only node is excluded
    assert checks["service"].status == "ok"  # the address is there all the same: nobody answers for it


def test_strict_arp_turned_off_on_the_cluster_fails_with_its_fix():
    checks = table(FakeKubeApi(cluster_objects(strict_arp="false")))

    assert checks["strict-arp"].status == "FAIL"
    assert checks["strict-arp"].detail.startswith("kube-proxy's ipvs.strictARP is false: it was turned off")
    assert checks["strict-arp"].detail.endswith("::arp-readiness-strict-arp'")


def test_nodes_it_may_not_list_warn_the_speakers_check_and_keep_the_checks_that_need_them_from_being_made():
    api = FakeKubeApi(cluster_objects())
    api.forbid("LIST", "nodes")

    checks = table(api)

    assert checks["speakers"].status == "warn"
    assert "nodes not read (Error from server (Forbidden): nodes is forbidden" in checks["speakers"].detail
    for name in ("node-ips", "lb-exclusion", "announced"):
        assert checks[name].status == "error", name
        assert checks[name].detail.startswith("kubectl: Error from server (Forbidden): nodes is forbidden")
    assert checks["controller"].status == "ok"


@pytest.mark.parametrize(
    ("plural", "namespace", "name"),
    [("daemonsets", "metallb-system", "speakers"), ("configmaps", "kube-system", "strict-arp")],
)
def test_an_object_it_may_not_read_keeps_only_the_check_that_reads_it_from_being_made(
    plural, namespace, name
):
    api = FakeKubeApi(cluster_objects())
    api.forbid("GET", plural, namespace)

    checks = table(api)

    assert checks[name].status == "error"
    assert f'cannot get resource "{plural}"' in checks[name].detail
    # The nodes and the rest are read on their own: every other check is still made.
    assert {other: check.status for other, check in checks.items() if other != name} == {
        other: "ok" for other in checks if other != name
    }


def test_a_cluster_without_metallb_is_told_apart_from_one_that_cannot_be_asked():
    checks = table(FakeKubeApi([*recorded("nodes.json")["items"]]))

    # Not found: the objects are not there.
    assert checks["controller"] == Check(
        "FAIL", "controller", "Deployment metallb-system/metallb-controller not found: is MetalLB installed?"
    )
    assert checks["speakers"].detail.startswith("DaemonSet metallb-system/metallb-speaker not found")
    assert checks["strict-arp"] == Check("FAIL", "strict-arp", "ConfigMap kube-system/kube-proxy not found")
    assert checks["service"] == Check("FAIL", "service", "Service macula/macula-bootstrap not found")
    # Could not ask: without MetalLB's CRDs the API server has no such type to list.
    assert checks["pools"].status == "error"
    assert 'the server doesn\'t have a resource type "ipaddresspools"' in checks["pools"].detail
    assert checks["advertisements"].status == "error"
    assert checks["announced"].status == "error"  # it reads the advertisements too


def test_an_unreachable_cluster_makes_no_check_and_fails_none():
    checks = table(FakeKubeApi(cluster_objects()), UNREACHABLE_CONTEXT)

    assert {check.status for check in checks.values()} == {"error"}
    # Refused is no silent server: every read is made, none is "not asked".
    assert all(check.detail.startswith("kubectl: The connection to the server") for check in checks.values())


def test_a_check_that_does_not_apply_says_why_and_asks_nothing():
    api = FakeKubeApi(cluster_objects())
    with fake_cluster(api=api) as cluster:
        reads = ClusterReads(cluster.kubectl("beam00"))
        checks = {check.name: check for check in kube_checks.kube_checks(BEAM00, reads, "macula-lan")}

    assert checks["lb-exclusion"] == Check(
        "skip", "lb-exclusion", "no node is listed in clearLoadBalancerExclusion"
    )
    assert checks["strict-arp"] == Check(
        "skip", "strict-arp", "strictArp is off for this stack: kube-proxy is not checked"
    )
    assert checks["service"] == Check("skip", "service", "bootstrap is not configured for this stack")
    assert not any("kube-proxy" in path or "/services" in path for _, path in api.requests)
