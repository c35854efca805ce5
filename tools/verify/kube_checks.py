"""The Kubernetes checks: a table of (name, read, judge).

Each check names what it reads from the cluster (through ClusterReads, so nothing is read twice) and
judges it with a pure function of what was read, so the tests judge recorded API responses too. A read
kubectl cannot answer makes the check `error`, never a verdict; only `speakers` reads the nodes as an
extra it can do without (nodes_or_error), and warns without them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

import resource_names
from kube_client import KubectlError
from stack_config import AdvertisementConfig, BootstrapConfig, PoolConfig, StackConfig
from stack_config.addresses import AddressError, parse_block
from tools.verify.check import Check
from tools.verify.cluster import (
    ADVERTISEMENT_RESOURCE,
    CONTROLLER,
    ENDPOINT_SLICES,
    EXCLUDE_LB_LABEL,
    METALLB_NAMESPACE,
    POOL_RESOURCE,
    SERVICE_NAME_LABEL,
    SPEAKER,
    SPEAKER_PODS,
    ClusterReads,
    field_at,
    has_condition,
    has_exclusion_label,
    is_ready,
    is_serving,
    items_by_name,
    matches_selector,
    node_addresses,
    service_ips,
)


def _generation_lag(obj: dict[str, Any]) -> str | None:
    generation = field_at(obj, "metadata", "generation")
    observed = field_at(obj, "status", "observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return f"status describes generation {observed}, the spec is at {generation}: rollout not seen yet"
    return None


def judge_controller(deployment: Any) -> Check:
    where = f"{METALLB_NAMESPACE}/{CONTROLLER}"
    if not isinstance(deployment, dict):
        return Check("FAIL", "controller", f"Deployment {where} not found: is MetalLB installed?")
    replicas = field_at(deployment, "spec", "replicas")
    replicas = 1 if replicas is None else replicas  # the API server's default
    ready = field_at(deployment, "status", "readyReplicas") or 0  # omitted while zero
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
    desired = field_at(daemonset, "status", "desiredNumberScheduled") or 0
    ready = field_at(daemonset, "status", "numberReady") or 0
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
        found = items_by_name(nodes)
        excluded = sorted(name for name, node in found.items() if has_exclusion_label(node))
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


def judge_pools(listing: Any, pools: Sequence[PoolConfig]) -> Check:
    found = items_by_name(listing)
    problems, described = [], []
    for pool in pools:
        expected = [block.text for block in pool.addresses]
        item = found.get(pool.name)
        if item is None:
            problems.append(f"IPAddressPool {pool.name} is missing")
            continue
        actual = field_at(item, "spec", "addresses") or []
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
    found = items_by_name(listing)
    all_pools = {pool.name for pool in pools}
    problems, described = [], []
    for advertisement in advertisements:
        item = found.get(advertisement.name)
        if item is None:
            problems.append(f"L2Advertisement {advertisement.name} is missing")
            continue
        actual = set(field_at(item, "spec", "ipAddressPools") or [])
        if not actual and not field_at(item, "spec", "ipAddressPoolSelectors"):
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


def judge_service(
    service: Any, bootstrap: BootstrapConfig, pools: Sequence[PoolConfig], context: str | None = None
) -> Check:
    where = f"{bootstrap.namespace}/{bootstrap.service}"
    if not isinstance(service, dict):
        return Check("FAIL", "service", f"Service {where} not found")
    kind = field_at(service, "spec", "type") or "ClusterIP"
    if kind != "LoadBalancer":
        return Check(
            "FAIL",
            "service",
            f"{where} is type {kind}, not LoadBalancer: has `pulumi up` run for this stack?",
        )
    problems = []
    ports = field_at(service, "spec", "ports") or []
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


def judge_node_addresses(nodes: Any, pools: Sequence[PoolConfig]) -> Check:
    """No node's InternalIP lies inside a pool: MetalLB 0.14.3 would hand it to a Service (0.15 refuses)."""
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
    found = items_by_name(nodes)
    problems = []
    for node in listed:
        if node not in found:
            problems.append(f"node {node} does not exist")
        elif has_exclusion_label(found[node]):
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
    text = (field_at(configmap, "data") or {}).get("config.conf")
    try:
        settings = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as error:
        return Check("error", "strict-arp", f"kube-system/kube-proxy config.conf is not YAML: {error}")
    strict = field_at(settings, "ipvs", "strictARP") if isinstance(settings, dict) else None
    if strict is True:
        return Check("ok", "strict-arp", "kube-proxy's ipvs.strictARP is true")
    return Check(
        "FAIL",
        "strict-arp",
        f"kube-proxy's ipvs.strictARP is {json.dumps(strict)}: it was turned off since; turn it on again: "
        f"{_replace_command(project, stack, 'strict-arp')}",
    )


@dataclass(frozen=True)
class AnnouncementReads:
    """What the announced check reads: the speakers, the nodes, MetalLB's L2 configuration, and the
    bootstrap Service with its EndpointSlices (None without a bootstrap)."""

    pods: Sequence[Any]
    nodes: Any
    advertisements: Any
    pools: Any
    service: Any = None
    endpoint_slices: Sequence[Any] | None = None


def read_announcement(reads: ClusterReads, config: StackConfig) -> AnnouncementReads:
    found = AnnouncementReads(
        pods=reads.items("pods", METALLB_NAMESPACE, SPEAKER_PODS),
        nodes=reads.get("nodes", None),
        advertisements=reads.get(ADVERTISEMENT_RESOURCE, METALLB_NAMESPACE),
        pools=reads.get(POOL_RESOURCE, METALLB_NAMESPACE),
    )
    bootstrap = config.bootstrap
    if bootstrap is None:
        return found
    return dataclasses.replace(
        found,
        service=reads.get("services", bootstrap.namespace, bootstrap.service),
        endpoint_slices=reads.items(
            ENDPOINT_SLICES, bootstrap.namespace, f"{SERVICE_NAME_LABEL}={bootstrap.service}"
        ),
    )


def announced_pools(config: StackConfig) -> set[str]:
    """The pools the bootstrap Service's address comes from; every pool without a bootstrap."""
    bootstrap = config.bootstrap
    if bootstrap is not None and bootstrap.pool is not None:
        return {bootstrap.pool}
    if bootstrap is not None and bootstrap.ip is not None:
        return {pool.name for pool in config.pools if pool.contains(bootstrap.ip)}
    return {pool.name for pool in config.pools}


def _advertises(advertisement: Any, pool_names: set[str], pools: Any) -> bool:
    """MetalLB 0.14.3: an L2Advertisement with neither pool names nor pool selectors advertises every pool."""
    names = set(field_at(advertisement, "spec", "ipAddressPools") or [])
    selectors = field_at(advertisement, "spec", "ipAddressPoolSelectors") or []
    if not names and not selectors:
        return True
    if names & pool_names:
        return True
    return any(
        matches_selector(pool, selector)
        for name, pool in items_by_name(pools).items()
        if name in pool_names
        for selector in selectors
    )


def _selects(advertisement: Any, node: Any) -> bool:
    """The advertisement's nodeSelectors select the node; without any, it selects every node."""
    selectors = field_at(advertisement, "spec", "nodeSelectors") or []
    return not selectors or any(matches_selector(node, selector) for selector in selectors)


# MetalLB's controller names the pool it took a Service's address from (0.14.3 controller/service.go).
ALLOCATED_FROM_POOL = "metallb.universe.tf/ip-allocated-from-pool"


def _may_announce(
    found: AnnouncementReads, advertisements: Sequence[Any], pool: str
) -> tuple[list[str], list[str]]:
    """The nodes whose speaker may announce `pool`'s addresses, and why each other speaker may not."""
    nodes = items_by_name(found.nodes)
    able, why_not = [], []
    for pod in found.pods:
        name = field_at(pod, "spec", "nodeName") or ""
        node = nodes.get(name)
        if node is None or not is_ready(pod) or not is_ready(node):
            why_not.append(f"{name or 'unscheduled'}: the speaker or its node is not ready")
        elif has_exclusion_label(node):
            why_not.append(f"{name}: {EXCLUDE_LB_LABEL}")
        elif has_condition(node, "NetworkUnavailable"):
            why_not.append(f"{name}: NetworkUnavailable")
        elif not any(_selects(ad, node) for ad in advertisements):
            why_not.append(f"{name}: no L2Advertisement of pool {pool} selects it (nodeSelectors)")
        else:
            able.append(name)
    return able, why_not


def judge_announced(found: AnnouncementReads, pool_names: set[str]) -> Check:
    """Someone may announce each pool's addresses, as MetalLB 0.14.3's speaker decides it (ShouldAnnounce
    and speakersForPool in speaker/layer2_controller.go, per pool): a ready speaker on a Ready node that
    is neither excluded nor NetworkUnavailable and that an L2Advertisement of the pool selects, and, for
    the bootstrap Service, a serving endpoint (on that node, with externalTrafficPolicy Local). The
    Service's pool is the one MetalLB says it allocated from, when it says so. MetalLB's controller
    writes the Service's address whether or not anyone announces it."""
    if found.endpoint_slices is not None and not isinstance(found.service, dict):
        return Check("skip", "announced", "the Service does not exist (see service)")
    allocated_from = (field_at(found.service, "metadata", "annotations") or {}).get(ALLOCATED_FROM_POOL)
    pools = {allocated_from} if isinstance(allocated_from, str) else pool_names
    serving: set[Any] | None = None
    if found.endpoint_slices is not None:
        serving = {
            field_at(endpoint, "nodeName")
            for endpoint_slice in found.endpoint_slices
            for endpoint in field_at(endpoint_slice, "endpoints") or []
            if is_serving(endpoint)
        }
    problems, announcing = [], set()
    if serving is not None and not serving:
        problems.append(
            "the bootstrap Service has no serving endpoint (its pods are not ready), and MetalLB's speakers "
            "announce nothing for such a Service"
        )
    local = field_at(found.service, "spec", "externalTrafficPolicy") == "Local"
    for pool in sorted(pools):
        advertisements = [
            ad for ad in items_by_name(found.advertisements).values() if _advertises(ad, {pool}, found.pools)
        ]
        if not advertisements:
            problems.append(f"no L2Advertisement advertises pool {pool}, so no speaker announces it")
            continue
        able, why_not = _may_announce(found, advertisements, pool)
        if local and serving is not None:
            why_not += [
                f"{name}: no serving endpoint on it (externalTrafficPolicy: Local)"
                for name in able
                if name not in serving
            ]
            able = [name for name in able if name in serving]
        if not able:
            reasons = "; ".join(sorted(why_not)) if why_not else "no speaker pod runs"
            problems.append(f"no speaker may announce pool {pool} ({reasons})")
        announcing.update(able)
    if problems:
        outcome = (
            "the Service has its address, but nobody answers ARP for it"
            if found.endpoint_slices is not None
            else "MetalLB assigns the pool's addresses, but nobody answers ARP for them"
        )
        return Check("FAIL", "announced", f"{'; '.join(problems)}: {outcome}")
    return Check("ok", "announced", f"speakers that may announce run on {', '.join(sorted(announcing))}")


def _applies_to_every_stack(_: StackConfig) -> str | None:
    return None


def _no_bootstrap(config: StackConfig) -> str | None:
    return None if config.bootstrap is not None else "bootstrap is not configured for this stack"


def _bootstrap(config: StackConfig) -> BootstrapConfig:
    assert config.bootstrap is not None, "skipped without bootstrap"
    return config.bootstrap


@dataclass(frozen=True)
class KubeCheck:
    name: str
    # What the check reads; a KubectlError it raises makes the check `error`.
    read: Callable[[ClusterReads, StackConfig], Any]
    # The verdict on what was read; the third argument is the Pulumi project, for the URNs of fixes.
    judge: Callable[[Any, StackConfig, str], Check]
    # Why the check does not apply to a stack, or None when it does.
    skip: Callable[[StackConfig], str | None] = _applies_to_every_stack


KUBE_CHECKS = (
    KubeCheck(
        "controller",
        lambda reads, _: reads.get("deployments.v1.apps", METALLB_NAMESPACE, CONTROLLER),
        lambda deployment, _, __: judge_controller(deployment),
    ),
    KubeCheck(
        "speakers",
        lambda reads, _: (
            reads.get("daemonsets.v1.apps", METALLB_NAMESPACE, SPEAKER),
            reads.nodes_or_error(),
        ),
        lambda found, config, _: judge_speakers(found[0], found[1], config.kube_context),
    ),
    KubeCheck(
        "pools",
        lambda reads, _: reads.get(POOL_RESOURCE, METALLB_NAMESPACE),
        lambda listing, config, _: judge_pools(listing, config.pools),
    ),
    KubeCheck(
        "advertisements",
        lambda reads, _: reads.get(ADVERTISEMENT_RESOURCE, METALLB_NAMESPACE),
        lambda listing, config, _: judge_advertisements(listing, config.advertisements, config.pools),
    ),
    KubeCheck(
        "node-ips",
        lambda reads, _: reads.get("nodes", None),
        lambda nodes, config, _: judge_node_addresses(nodes, config.pools),
    ),
    KubeCheck(
        "lb-exclusion",
        lambda reads, _: reads.get("nodes", None),
        lambda nodes, config, project: judge_exclusion_label(
            nodes, config.clear_lb_exclusion, project, config.stack
        ),
        lambda config: (
            None if config.clear_lb_exclusion else "no node is listed in clearLoadBalancerExclusion"
        ),
    ),
    KubeCheck(
        "strict-arp",
        lambda reads, _: reads.get("configmaps", "kube-system", "kube-proxy"),
        lambda configmap, config, project: judge_strict_arp(configmap, project, config.stack),
        lambda config: (
            None if config.strict_arp else "strictArp is off for this stack: kube-proxy is not checked"
        ),
    ),
    KubeCheck(
        "announced",
        read_announcement,
        lambda found, config, _: judge_announced(found, announced_pools(config)),
    ),
    KubeCheck(
        "service",
        lambda reads, config: reads.get("services", _bootstrap(config).namespace, _bootstrap(config).service),
        lambda service, config, _: judge_service(
            service, _bootstrap(config), config.pools, config.kube_context
        ),
        _no_bootstrap,
    ),
)


def kube_checks(config: StackConfig, reads: ClusterReads, project: str) -> Iterator[Check]:
    """Every check of the table in order, each as soon as it is made."""
    for check in KUBE_CHECKS:
        reason = check.skip(config)
        if reason is not None:
            yield Check("skip", check.name, reason)
            continue
        try:
            found = check.read(reads, config)
        except KubectlError as error:
            yield Check("error", check.name, f"kubectl: {error}")
            continue
        try:
            verdict = check.judge(found, config, project)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            # An answer of a shape no API server gives: the check could not be made, others still are.
            verdict = Check("error", check.name, f"kubectl's answer is not the API's shape ({error!r})")
        yield verdict
